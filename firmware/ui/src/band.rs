//! A `DrawTarget` that keeps only a horizontal band of rows of a larger screen.
//!
//! The board has 128 KiB of RAM and a 320×240 RGB565 frame is 150 KiB, so it renders the screen once
//! per band into a small buffer and sends each band to the panel in one SPI burst. The simulator and
//! the golden tests use a single band as tall as the screen, i.e. a plain framebuffer.
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
    let mut band = BandTarget::new(buf, size.width, size.height);
    for i in 0..band.bands() {
        band.set_top(i * band.rows);
        // Infallible: the band is memory.
        let Ok(()) = crate::render::draw(screen, &mut band);
        panel.fill_contiguous(&band.area(), band.pixels().iter().copied())?;
    }
    Ok(())
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
}
