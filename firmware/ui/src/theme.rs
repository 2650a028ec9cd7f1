//! Colours and fonts. One place, so every screen reads the same way.
//!
//! Design: every foreground/background pair has high contrast (white on saturated green/red/blue,
//! black on amber) because the panel is read at arm's length under shop lighting. Fonts are u8g2's
//! "Free Universal Bold" family: the headline is about 30 px tall (1/8 of the panel), nothing is
//! smaller than 14 px. `_tf` fonts carry Latin-1, so brand and product names with accents render.

use embedded_graphics::pixelcolor::Rgb565;
use u8g2_fonts::{fonts, FontRenderer};

/// From 8-bit-per-channel RGB.
pub const fn rgb(r: u8, g: u8, b: u8) -> Rgb565 {
    Rgb565::new(r >> 3, g >> 2, b >> 3)
}

pub const WHITE: Rgb565 = rgb(255, 255, 255);
pub const BLACK: Rgb565 = rgb(0, 0, 0);
pub const GENUINE_BG: Rgb565 = rgb(0x1b, 0x7f, 0x3b);
pub const COUNTERFEIT_BG: Rgb565 = rgb(0xc6, 0x28, 0x28);
pub const INCONCLUSIVE_BG: Rgb565 = rgb(0xff, 0xb3, 0x00);
pub const NO_PRODUCT_BG: Rgb565 = rgb(0x45, 0x5a, 0x64);
pub const IDLE_BG: Rgb565 = rgb(0x10, 0x1c, 0x2c);
pub const SCANNING_BG: Rgb565 = rgb(0x0d, 0x47, 0xa1);
pub const DARK_BG: Rgb565 = rgb(0x1c, 0x1c, 0x1c);
pub const ACCENT: Rgb565 = rgb(0x4f, 0xc3, 0xf7);
pub const WARNING: Rgb565 = rgb(0xff, 0x98, 0x00);
pub const ERROR: Rgb565 = rgb(0xff, 0x52, 0x52);
pub const MUTED: Rgb565 = rgb(0xb0, 0xbe, 0xc5);

/// Headlines: GENUINE, COUNTERFEIT, "Scan an item".
pub const HEADLINE: FontRenderer =
    FontRenderer::new::<fonts::u8g2_font_fub30_tr>().with_ignore_unknown_chars(true);
/// Headlines too wide for [`HEADLINE`] (INCONCLUSIVE, AGENT OFFLINE).
pub const HEADLINE_NARROW: FontRenderer =
    FontRenderer::new::<fonts::u8g2_font_fub25_tr>().with_ignore_unknown_chars(true);
/// The product name and instructions.
pub const BODY: FontRenderer =
    FontRenderer::new::<fonts::u8g2_font_fub20_tf>().with_ignore_unknown_chars(true);
/// Brand, confidence, item number, details.
pub const SMALL: FontRenderer =
    FontRenderer::new::<fonts::u8g2_font_fub14_tf>().with_ignore_unknown_chars(true);
