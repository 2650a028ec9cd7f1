//! The panel in memory: a 320×240 RGB565 framebuffer that the controller's screens are drawn into and
//! that is saved as an 8-bit RGB PNG.

use std::path::Path;

use anyhow::Context;
use embedded_graphics::pixelcolor::{Rgb565, RgbColor};
use hallmark_ui::{draw, BandTarget, Screen, HEIGHT, WIDTH};

pub struct Framebuffer {
    pixels: Vec<Rgb565>,
}

impl Default for Framebuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framebuffer {
    pub fn new() -> Self {
        Framebuffer {
            pixels: vec![Rgb565::BLACK; (WIDTH * HEIGHT) as usize],
        }
    }

    /// Draws `screen` over the whole panel.
    pub fn draw(&mut self, screen: &Screen) {
        let mut target = BandTarget::new(&mut self.pixels, WIDTH, HEIGHT);
        // A memory target cannot fail: its error type is Infallible.
        let Ok(()) = draw(screen, &mut target);
    }

    /// The picture as 8-bit RGB bytes, row by row.
    pub fn to_rgb8(&self) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(self.pixels.len() * 3);
        for p in &self.pixels {
            // 5/6-bit channels widened by repeating their top bits, so white stays 255.
            rgb.push((p.r() << 3) | (p.r() >> 2));
            rgb.push((p.g() << 2) | (p.g() >> 4));
            rgb.push((p.b() << 3) | (p.b() >> 2));
        }
        rgb
    }

    /// Saves the picture to `path`, atomically (written beside it, then renamed), so a reader never
    /// sees half a file.
    pub fn save_png(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("png.tmp");
        {
            let file =
                std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            let mut enc = png::Encoder::new(std::io::BufWriter::new(file), WIDTH, HEIGHT);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().context("png header")?;
            w.write_image_data(&self.to_rgb8()).context("png data")?;
            w.finish().context("png end")?;
        }
        std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
    }
}
