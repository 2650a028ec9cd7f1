//! Fitting text to the panel: characters the fonts lack become `?`, and a line too wide for its
//! space is shortened with "..." so the start of a product name always shows.

use core::fmt::Write;
use embedded_graphics::prelude::Point;
use u8g2_fonts::{types::VerticalPosition, FontRenderer};

/// Longest line the screens ever build, in bytes.
pub const LINE_LEN: usize = 96;
/// A line of screen text.
pub type Line = heapless::String<LINE_LEN>;

const ELLIPSIS: &str = "...";

/// Width in pixels that `s` takes in `font` (the pen advance).
pub fn width(font: &FontRenderer, s: &str) -> u32 {
    match font.get_rendered_dimensions(s, Point::zero(), VerticalPosition::Baseline) {
        Ok(d) => d.advance.x.max(0) as u32,
        // Design: fonts are built with ignore_unknown_chars, so lookups cannot fail; if they ever
        // did, "unmeasurable" is treated as "too wide" and the text gets shortened.
        Err(_) => u32::MAX,
    }
}

/// `s` with characters outside Latin-1 (and control characters) replaced by `?`.
pub fn printable(s: &str) -> Line {
    let mut out = Line::new();
    for c in s.chars() {
        let c = if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) || (c as u32) > 0xff {
            '?'
        } else {
            c
        };
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// `s` made printable and, if wider than `max_width` pixels, cut at a character and ended with "...".
pub fn fit(font: &FontRenderer, s: &str, max_width: u32) -> Line {
    let s = printable(s);
    if width(font, &s) <= max_width {
        return s;
    }
    // Drop characters from the end until prefix + "..." fits (at most LINE_LEN tries).
    let mut cut = s.len();
    while cut > 0 {
        cut -= 1;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut candidate = Line::new();
        let _ = write!(candidate, "{}{}", s[..cut].trim_end(), ELLIPSIS);
        if width(font, &candidate) <= max_width {
            return candidate;
        }
    }
    let mut only = Line::new();
    let _ = only.push_str(ELLIPSIS);
    only
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theme::BODY;

    #[test]
    fn short_text_is_kept_as_is() {
        assert_eq!(fit(&BODY, "Widget 3000", 300).as_str(), "Widget 3000");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_within_the_width() {
        let long = "Ultra Premium Limited Edition Chronograph Wristwatch";
        let got = fit(&BODY, long, 280);
        assert!(got.ends_with("..."), "{got}");
        assert!(width(&BODY, &got) <= 280);
        assert!(long.starts_with(got.trim_end_matches("...")));
        // and as long as possible: one more character would not fit
        let n = got.len() - 3;
        let mut longer = Line::new();
        let _ = write!(longer, "{}...", long[..n + 1].trim_end());
        assert!(width(&BODY, &longer) > 280);
    }

    #[test]
    fn unknown_characters_become_question_marks() {
        assert_eq!(printable("Café 東京\u{7}").as_str(), "Café ???");
    }

    #[test]
    fn nothing_fits_in_zero_width_but_it_does_not_panic() {
        assert_eq!(fit(&BODY, "Anything", 0).as_str(), "...");
    }
}
