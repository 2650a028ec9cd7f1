//! A `DrawTarget` that keeps only a horizontal band of rows of a larger screen.
//!
//! The board has 128 KiB of RAM and a 320×240 RGB565 frame is 150 KiB, so it renders the screen once
//! per band into a small buffer and sends each band to the panel in one SPI burst. The simulator and
//! the golden tests use a single band as tall as the screen, i.e. a plain framebuffer.
//!
//! [`BandPainter`] does the same in steps, one band per call, so a board can hand the CPU back to its
//! executor between bands (a full redraw takes ~100 ms on the board; a reject must not wait for it),
//! and can start over at once when a newer screen arrives mid-redraw.
//!
//! Design: the target reports the *full* screen size, so layout code never knows it is banded; pixels
//! outside the band are dropped. Rendering is deterministic, so the bands join seamlessly — a test
//! checks banded output against the full framebuffer pixel for pixel.

use core::convert::Infallible;
use embedded_graphics::{pixelcolor::Rgb565, prelude::*, primitives::Rectangle};

/// Draws `screen` onto `panel` through `buf`, one band at a time: each band is rendered into `buf`
/// and sent with a single `fill_contiguous` (one address window, one burst of pixels on an SPI panel).
/// `buf` must hold at least one row of the panel.
pub fn draw_banded<D>(
    screen: &crate::Screen,
    buf: &mut [Rgb565],
    panel: &mut D,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb565> + OriginDimensions,
{
    let size = panel.size();
    let mut painter = BandPainter::new(size.width, size.height);
    painter.start(screen.clone());
    while let Some(band) = painter.next_band(buf) {
        panel.fill_contiguous(&band.area, band.pixels.iter().copied())?;
    }
    Ok(())
}

/// One rendered band: where it goes on the panel, and its pixels row by row (exactly
/// `area.size.width × area.size.height` of them) — what one `fill_contiguous` sends.
#[derive(Debug, PartialEq, Eq)]
pub struct Band<'b> {
    pub area: Rectangle,
    pub pixels: &'b [Rgb565],
}

/// Draws a [`Screen`](crate::Screen) in steps: each [`BandPainter::next_band`] renders the next band
/// into the caller's buffer and returns it for sending, so the caller decides what runs in between.
///
/// Design: [`BandPainter::start`] always begins at the top, also in the middle of a redraw — the
/// newest screen wins and a half-drawn older one is never finished. When the last band has been
/// returned the painter is idle and `next_band` returns `None` until the next `start`.
#[derive(Debug, Clone)]
pub struct BandPainter {
    width: u32,
    height: u32,
    screen: Option<crate::Screen>,
    top: u32,
}

impl BandPainter {
    /// An idle painter for a `width × height` panel.
    pub fn new(width: u32, height: u32) -> Self {
        BandPainter {
            width,
            height,
            screen: None,
            top: 0,
        }
    }

    /// Starts drawing `screen` from the top band, dropping any drawing under way.
    pub fn start(&mut self, screen: crate::Screen) {
        self.screen = Some(screen);
        self.top = 0;
    }

    /// Whether bands of a screen are still to be drawn.
    pub fn is_busy(&self) -> bool {
        self.screen.is_some()
    }

    /// Renders the next band into `buf` (as many rows as it holds) and returns it; `None` when idle.
    /// A `buf` shorter than one row cannot draw anything: the drawing is dropped.
    pub fn next_band<'b>(&mut self, buf: &'b mut [Rgb565]) -> Option<Band<'b>> {
        let screen = self.screen.as_ref()?;
        let mut target = BandTarget::new(buf, self.width, self.height);
        if target.rows == 0 || self.top >= self.height {
            self.screen = None;
            return None;
        }
        target.set_top(self.top);
        // Infallible: the band is memory.
        let Ok(()) = crate::render::draw(screen, &mut target);
        let area = target.area();
        let rows = target.rows;
        self.top += rows;
        if self.top >= self.height {
            self.screen = None;
        }
        let len = (area.size.width * area.size.height) as usize;
        Some(Band {
            area,
            pixels: &buf[..len],
        })
    }
}

/// Rows `top .. top + rows` of a `width × height` screen, backed by a caller-provided slice.
pub struct BandTarget<'a> {
    buf: &'a mut [Rgb565],
    width: u32,
    height: u32,
    top: u32,
    rows: u32,
}

impl<'a> BandTarget<'a> {
    /// A band as many rows tall as `buf` holds (`buf.len() / width`), starting at row 0.
    pub fn new(buf: &'a mut [Rgb565], width: u32, height: u32) -> Self {
        let rows = if width == 0 {
            0
        } else {
            (buf.len() / width as usize) as u32
        };
        BandTarget {
            buf,
            width,
            height,
            top: 0,
            rows: rows.min(height),
        }
    }

    /// Moves the band to start at row `top`.
    pub fn set_top(&mut self, top: u32) {
        self.top = top;
    }

    /// The band's area on the screen (clipped to the screen's bottom edge).
    pub fn area(&self) -> Rectangle {
        let rows = self.rows.min(self.height.saturating_sub(self.top));
        Rectangle::new(Point::new(0, self.top as i32), Size::new(self.width, rows))
    }

    /// The band's pixels, row by row, for the rows inside the screen.
    pub fn pixels(&self) -> &[Rgb565] {
        let a = self.area();
        &self.buf[..(a.size.width * a.size.height) as usize]
    }

    /// Number of bands of this height needed to cover the screen.
    pub fn bands(&self) -> u32 {
        if self.rows == 0 {
            0
        } else {
            self.height.div_ceil(self.rows)
        }
    }
}

impl OriginDimensions for BandTarget<'_> {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for BandTarget<'_> {
    type Color = Rgb565;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let area = self.area();
        for Pixel(p, c) in pixels {
            if area.contains(p) {
                let i = (p.y as u32 - self.top) * self.width + p.x as u32;
                self.buf[i as usize] = c;
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let band = self.area();
        let clip = area.intersection(&band);
        if clip.size.width == 0 || clip.size.height == 0 {
            return Ok(());
        }
        for y in clip.rows() {
            let row = (y as u32 - self.top) * self.width;
            let start = (row + clip.top_left.x as u32) as usize;
            self.buf[start..start + clip.size.width as usize].fill(color);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use embedded_graphics::primitives::{Circle, PrimitiveStyle};
    use std::vec;

    fn scene<D: DrawTarget<Color = Rgb565>>(t: &mut D) -> Result<(), D::Error> {
        t.fill_solid(
            &Rectangle::new(Point::new(-5, 3), Size::new(20, 30)),
            Rgb565::RED,
        )?;
        Circle::new(Point::new(4, 10), 12)
            .into_styled(PrimitiveStyle::with_fill(Rgb565::GREEN))
            .draw(t)
    }

    #[test]
    fn bands_join_into_the_full_picture() {
        let (w, h) = (16u32, 37u32);
        let mut full = vec![Rgb565::BLACK; (w * h) as usize];
        scene(&mut BandTarget::new(&mut full, w, h)).unwrap();

        let mut joined = std::vec::Vec::new();
        let mut buf = vec![Rgb565::BLACK; (w * 5) as usize];
        let mut band = BandTarget::new(&mut buf, w, h);
        assert_eq!(band.bands(), 8);
        for i in 0..band.bands() {
            band.set_top(i * 5);
            band.fill_solid(&band.area(), Rgb565::BLACK).unwrap();
            scene(&mut band).unwrap();
            joined.extend_from_slice(band.pixels());
        }
        assert_eq!(joined, full);
    }

    use crate::{draw, Screen, HEIGHT, WIDTH};

    /// `screen` drawn whole into a framebuffer.
    fn full(screen: &Screen) -> std::vec::Vec<Rgb565> {
        let mut fb = vec![Rgb565::BLACK; (WIDTH * HEIGHT) as usize];
        draw(screen, &mut BandTarget::new(&mut fb, WIDTH, HEIGHT)).unwrap();
        fb
    }

    /// Copies a band into a framebuffer the way a panel's `fill_contiguous` would.
    fn blit(fb: &mut [Rgb565], band: &Band<'_>) {
        let top = band.area.top_left.y as usize * WIDTH as usize;
        fb[top..top + band.pixels.len()].copy_from_slice(band.pixels);
    }

    #[test]
    fn each_step_draws_one_band_and_the_steps_cover_the_screen_once() {
        let mut painter = BandPainter::new(WIDTH, HEIGHT);
        let mut buf = vec![Rgb565::BLACK; (WIDTH * 24) as usize];
        assert_eq!(painter.next_band(&mut buf), None, "idle before start");
        painter.start(Screen::Scanning);
        let mut fb = vec![Rgb565::BLACK; (WIDTH * HEIGHT) as usize];
        let mut tops = std::vec::Vec::new();
        while let Some(band) = painter.next_band(&mut buf) {
            assert_eq!(band.area.size, Size::new(WIDTH, 24), "one band per step");
            assert_eq!(band.pixels.len(), (WIDTH * 24) as usize);
            tops.push(band.area.top_left.y);
            blit(&mut fb, &band);
        }
        assert_eq!(tops, (0..10).map(|i| i * 24).collect::<std::vec::Vec<_>>());
        assert!(!painter.is_busy());
        assert!(fb == full(&Screen::Scanning));
    }

    #[test]
    fn the_last_band_is_clipped_to_the_panel() {
        let mut painter = BandPainter::new(WIDTH, HEIGHT);
        let mut buf = vec![Rgb565::BLACK; (WIDTH * 100) as usize];
        painter.start(Screen::Idle);
        let heights: std::vec::Vec<u32> =
            core::iter::from_fn(|| painter.next_band(&mut buf).map(|b| b.area.size.height))
                .collect();
        assert_eq!(heights, [100, 100, 40]);
    }

    #[test]
    fn a_newer_screen_restarts_the_drawing_from_the_top() {
        let mut painter = BandPainter::new(WIDTH, HEIGHT);
        let mut buf = vec![Rgb565::BLACK; (WIDTH * 24) as usize];
        let mut fb = vec![Rgb565::BLACK; (WIDTH * HEIGHT) as usize];
        painter.start(Screen::Idle);
        for _ in 0..4 {
            let band = painter.next_band(&mut buf).unwrap();
            blit(&mut fb, &band);
        }
        painter.start(Screen::Offline);
        let first = painter.next_band(&mut buf).unwrap();
        assert_eq!(first.area.top_left.y, 0);
        blit(&mut fb, &first);
        while let Some(band) = painter.next_band(&mut buf) {
            blit(&mut fb, &band);
        }
        assert!(
            fb == full(&Screen::Offline),
            "no band of the older screen left"
        );
    }

    #[test]
    fn a_buffer_shorter_than_a_row_drops_the_drawing_instead_of_looping() {
        let mut painter = BandPainter::new(WIDTH, HEIGHT);
        let mut buf = vec![Rgb565::BLACK; WIDTH as usize - 1];
        painter.start(Screen::Idle);
        assert_eq!(painter.next_band(&mut buf), None);
        assert!(!painter.is_busy());
    }
}
