//! Draws a [`Screen`] onto any RGB565 `DrawTarget`.
//!
//! Layout is for a 320×240 landscape panel (ST7789): every screen fills the whole panel with one
//! background colour that alone says the outcome, a big headline, then what was scanned, then — on a
//! white strip at the bottom — what the person should do now.
//!
//! Design: drawing is a pure function of the [`Screen`] value, so the golden tests, the simulator and
//! the board all produce the same pixels; the board's band renderer relies on drawing the same screen
//! twice giving the same result.

use core::fmt::Write;
use embedded_graphics::{
    pixelcolor::Rgb565,
    prelude::*,
    primitives::{PrimitiveStyle, PrimitiveStyleBuilder, Rectangle, RoundedRectangle},
};
use hallmark_link::Verdict;
use u8g2_fonts::{
    types::{FontColor, HorizontalAlignment, VerticalPosition},
    FontRenderer,
};

use crate::icons::{draw_mark, Mark};
use crate::screen::{Screen, VerdictView};
use crate::text::{fit, width, Line};
use crate::theme::*;

/// Panel width the layout is made for.
pub const WIDTH: u32 = 320;
/// Panel height the layout is made for.
pub const HEIGHT: u32 = 240;
/// Side margin for text.
const MARGIN: u32 = 10;
/// Top of the bottom instruction strip.
const STRIP_TOP: i32 = 184;

/// Draws `screen`, covering every pixel of the 320×240 area.
pub fn draw<D>(screen: &Screen, target: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb565>,
{
    match screen {
        Screen::Idle => idle(target),
        Screen::Scanning => scanning(target),
        Screen::Verdict(v) => verdict(v, target),
        Screen::Updating { brand, progress } => updating(brand, *progress, target),
        Screen::AgentError { detail } => agent_error(detail, target),
        Screen::Offline => offline(target),
    }
}

/// Turns a u8g2 result into the display's own error.
///
/// Design: the fonts ignore unknown glyphs and text is drawn without a background colour, so the only
/// error u8g2 can return is the display's; the others are unreachable and are not turned into panics.
pub(crate) fn ok_or_display<T, E>(r: Result<T, u8g2_fonts::Error<E>>) -> Result<(), E> {
    match r {
        Ok(_) => Ok(()),
        Err(u8g2_fonts::Error::DisplayError(e)) => Err(e),
        Err(_) => Ok(()),
    }
}

/// Draws one line of text, shortened to the panel width, centred on (WIDTH/2, `y`).
fn centered<D>(
    target: &mut D,
    font: &FontRenderer,
    s: &str,
    y: i32,
    color: Rgb565,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb565>,
{
    let line = fit(font, s, WIDTH - 2 * MARGIN);
    ok_or_display(font.render_aligned(
        line.as_str(),
        Point::new(WIDTH as i32 / 2, y),
        VerticalPosition::Center,
        HorizontalAlignment::Center,
        FontColor::Transparent(color),
        target,
    ))
}

/// A headline in the big font, or in the narrower one when it would not fit otherwise.
fn headline<D>(target: &mut D, s: &str, y: i32, color: Rgb565) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb565>,
{
    let font = if width(&HEADLINE, s) <= WIDTH - 2 * MARGIN {
        &HEADLINE
    } else {
        &HEADLINE_NARROW
    };
    centered(target, font, s, y, color)
}

fn background<D>(target: &mut D, color: Rgb565) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb565>,
{
    target.fill_solid(
        &Rectangle::new(Point::zero(), Size::new(WIDTH, HEIGHT)),
        color,
    )
}

/// The white strip at the bottom with one or two lines of instruction in `ink`.
fn instruction<D>(target: &mut D, lines: &[&str], ink: Rgb565) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb565>,
{
    let strip = Rectangle::new(
        Point::new(0, STRIP_TOP),
        Size::new(WIDTH, HEIGHT - STRIP_TOP as u32),
    );
    target.fill_solid(&strip, WHITE)?;
    let mid = STRIP_TOP + (HEIGHT as i32 - STRIP_TOP) / 2;
    match lines {
        [one] => centered(target, &BODY, one, mid, ink),
        [first, second, ..] => {
            centered(target, &BODY, first, mid - 13, ink)?;
            centered(target, &BODY, second, mid + 13, ink)
        }
        [] => Ok(()),
    }
}

fn idle<D: DrawTarget<Color = Rgb565>>(target: &mut D) -> Result<(), D::Error> {
    background(target, IDLE_BG)?;
    target.fill_solid(
        &Rectangle::new(Point::new(40, 48), Size::new(240, 4)),
        ACCENT,
    )?;
    headline(target, "Scan an item", 100, WHITE)?;
    target.fill_solid(
        &Rectangle::new(Point::new(40, 148), Size::new(240, 4)),
        ACCENT,
    )?;
    centered(target, &BODY, "Show it to the camera", 186, MUTED)?;
    centered(target, &SMALL, "or press the button", 216, MUTED)
}

fn scanning<D: DrawTarget<Color = Rgb565>>(target: &mut D) -> Result<(), D::Error> {
    background(target, SCANNING_BG)?;
    // Three dots as a "working" sign that needs no animation.
    for i in 0..3 {
        embedded_graphics::primitives::Circle::with_center(Point::new(124 + i * 36, 56), 22)
            .into_styled(PrimitiveStyle::with_fill(WHITE))
            .draw(target)?;
    }
    headline(target, "Scanning", 116, WHITE)?;
    centered(target, &BODY, "Hold the item still", 176, WHITE)
}

fn verdict<D: DrawTarget<Color = Rgb565>>(v: &VerdictView, target: &mut D) -> Result<(), D::Error> {
    let (bg, ink, mark, title, todo): (_, _, _, _, &[&str]) = match v.verdict {
        Verdict::Genuine => (
            GENUINE_BG,
            WHITE,
            Mark::Check,
            "GENUINE",
            &["Item is genuine"],
        ),
        Verdict::Counterfeit => (
            COUNTERFEIT_BG,
            WHITE,
            Mark::Cross,
            "COUNTERFEIT",
            &["Keep the item,", "call a supervisor"],
        ),
        Verdict::Inconclusive => (
            INCONCLUSIVE_BG,
            BLACK,
            Mark::Question,
            "INCONCLUSIVE",
            &["Scan again"],
        ),
        Verdict::NoProduct => (
            NO_PRODUCT_BG,
            WHITE,
            Mark::Question,
            "NO PRODUCT",
            &["Place the item", "under the camera"],
        ),
    };
    background(target, bg)?;
    draw_mark(target, mark, Point::new(WIDTH as i32 / 2, 36), 60, ink, bg)?;
    headline(target, title, 92, ink)?;
    if v.verdict != Verdict::NoProduct {
        centered(target, &BODY, &v.product, 130, ink)?;
        let mut line = Line::new();
        let _ = write!(line, "{}  \u{b7}  {}%", v.brand, v.confidence.percent());
        centered(target, &SMALL, &line, 160, ink)?;
    }
    // Text on the white strip: the verdict colour, except amber which is too pale on white.
    let strip_ink = if v.verdict == Verdict::Inconclusive {
        BLACK
    } else {
        bg
    };
    instruction(target, todo, strip_ink)?;
    if v.link_lost {
        link_lost_marker(target)?;
    }
    Ok(())
}

/// A small dark tag in the top-left corner, "LINK LOST" in the warning colour: the verdict below it
/// is still valid, but the agent is not answering.
fn link_lost_marker<D: DrawTarget<Color = Rgb565>>(target: &mut D) -> Result<(), D::Error> {
    const TEXT: &str = "LINK LOST";
    let tag = Rectangle::new(Point::new(6, 6), Size::new(width(&SMALL, TEXT) + 16, 26));
    RoundedRectangle::with_equal_corners(tag, Size::new(6, 6))
        .into_styled(
            PrimitiveStyleBuilder::new()
                .fill_color(DARK_BG)
                .stroke_color(WARNING)
                .stroke_width(2)
                .build(),
        )
        .draw(target)?;
    ok_or_display(SMALL.render_aligned(
        TEXT,
        tag.center(),
        VerticalPosition::Center,
        HorizontalAlignment::Center,
        FontColor::Transparent(WARNING),
        target,
    ))
}

fn updating<D: DrawTarget<Color = Rgb565>>(
    brand: &str,
    progress: u8,
    target: &mut D,
) -> Result<(), D::Error> {
    background(target, DARK_BG)?;
    headline(target, "Updating", 52, WHITE)?;
    let mut line = Line::new();
    let _ = write!(line, "{brand} model");
    centered(target, &BODY, &line, 96, MUTED)?;
    let bar = Rectangle::new(Point::new(30, 124), Size::new(WIDTH - 60, 36));
    bar.into_styled(PrimitiveStyle::with_stroke(WHITE, 3))
        .draw(target)?;
    let inner = bar.size.width - 12;
    let filled = inner * u32::from(progress.min(100)) / 100;
    target.fill_solid(
        &Rectangle::new(bar.top_left + Point::new(6, 6), Size::new(filled, 24)),
        ACCENT,
    )?;
    let mut pct = Line::new();
    let _ = write!(pct, "{}%", progress.min(100));
    centered(target, &BODY, &pct, 186, WHITE)?;
    centered(target, &SMALL, "Scanning resumes when done", 220, MUTED)
}

fn agent_error<D: DrawTarget<Color = Rgb565>>(
    detail: &str,
    target: &mut D,
) -> Result<(), D::Error> {
    background(target, DARK_BG)?;
    draw_mark(
        target,
        Mark::Exclamation,
        Point::new(WIDTH as i32 / 2, 36),
        60,
        ERROR,
        DARK_BG,
    )?;
    headline(target, "AGENT ERROR", 92, ERROR)?;
    centered(target, &SMALL, detail, 136, WHITE)?;
    instruction(target, &["Do not sort items,", "call a supervisor"], BLACK)
}

fn offline<D: DrawTarget<Color = Rgb565>>(target: &mut D) -> Result<(), D::Error> {
    background(target, DARK_BG)?;
    draw_mark(
        target,
        Mark::Exclamation,
        Point::new(WIDTH as i32 / 2, 36),
        60,
        WARNING,
        DARK_BG,
    )?;
    headline(target, "AGENT OFFLINE", 92, WARNING)?;
    centered(target, &BODY, "No link to the PC", 136, WHITE)?;
    instruction(target, &["Do not sort items,", "check the cable"], BLACK)
}
