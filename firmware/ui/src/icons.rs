//! The marks beside a verdict: a check, a cross, a question mark, an exclamation mark, each in a
//! filled disc. Drawn from primitives (no bitmaps), so they scale with the diameter and cost no flash.

use embedded_graphics::{
    pixelcolor::Rgb565,
    prelude::*,
    primitives::{Circle, Line, Polyline, PrimitiveStyle},
};
use u8g2_fonts::types::{FontColor, HorizontalAlignment, VerticalPosition};

use crate::theme::HEADLINE;

/// Which mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Check,
    Cross,
    Question,
    Exclamation,
}

/// Draws `mark` in `ink` on a disc of `disc` colour, `diameter` pixels wide, centred on `center`.
pub fn draw_mark<D>(
    target: &mut D,
    mark: Mark,
    center: Point,
    diameter: u32,
    disc: Rgb565,
    ink: Rgb565,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb565>,
{
    Circle::with_center(center, diameter)
        .into_styled(PrimitiveStyle::with_fill(disc))
        .draw(target)?;
    let d = diameter as i32;
    let stroke = PrimitiveStyle::with_stroke(ink, (diameter / 8).max(2));
    let at = |fx: i32, fy: i32| center + Point::new(d * fx / 100, d * fy / 100);
    match mark {
        Mark::Check => {
            Polyline::new(&[at(-26, 2), at(-8, 20), at(26, -18)])
                .into_styled(stroke)
                .draw(target)?;
        }
        Mark::Cross => {
            Line::new(at(-20, -20), at(20, 20))
                .into_styled(stroke)
                .draw(target)?;
            Line::new(at(-20, 20), at(20, -20))
                .into_styled(stroke)
                .draw(target)?;
        }
        Mark::Question | Mark::Exclamation => {
            let s = if mark == Mark::Question { "?" } else { "!" };
            crate::render::ok_or_display(HEADLINE.render_aligned(
                s,
                center,
                VerticalPosition::Center,
                HorizontalAlignment::Center,
                FontColor::Transparent(ink),
                target,
            ))?;
        }
    }
    Ok(())
}
