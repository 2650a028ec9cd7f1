//! A strict EAN-13 scanline reader, pure: the second opinion on every EAN-13 the engine reads. It
//! samples lines across the symbol where the engine found it, measures the bars, and decodes each
//! symbol character from its edge-to-similar-edge distances (GS1 General Specifications 5.1.3.1), the
//! measure that a uniform growth or shrinkage of the bars (ink spread, blur, threshold) leaves alone.
//! It returns the 13 digits without enforcing the check digit, and refuses any character whose
//! measures fall between two patterns.

/// Element widths, in modules, of the L set (space, bar, space, bar); the R set has the same widths
/// starting with a bar, and the G set has them reversed (gs1.py's `_L`, `_R`, `_G`).
const WIDTHS: [[u8; 4]; 10] = [
    [3, 2, 1, 1],
    [2, 2, 2, 1],
    [2, 1, 2, 2],
    [1, 4, 1, 1],
    [1, 1, 3, 2],
    [1, 2, 3, 1],
    [1, 1, 1, 4],
    [1, 3, 1, 2],
    [1, 2, 1, 3],
    [3, 1, 1, 2],
];

/// The L/G parity of the left half for each leading digit (gs1.py's `_PARITY`, G = true).
const PARITY: [[bool; 6]; 10] = {
    const L: bool = false;
    const G: bool = true;
    [
        [L, L, L, L, L, L],
        [L, L, G, L, G, G],
        [L, L, G, G, L, G],
        [L, L, G, G, G, L],
        [L, G, L, L, G, G],
        [L, G, G, L, L, G],
        [L, G, G, G, L, L],
        [L, G, L, G, L, G],
        [L, G, L, G, G, L],
        [L, G, G, L, G, L],
    ]
};

/// How far (in modules) an edge-to-similar-edge distance may lie from a whole number of modules.
const TOLERANCE: f32 = 0.3;

/// Samples per pixel along a scan line.
const OVERSAMPLE: f32 = 4.0;

/// Decodes one symbol character from its four element widths. `reversed` reads the widths backwards
/// (the G set). Returns the digit.
fn decode_char(e: &[f32], reversed: bool) -> Option<u8> {
    let e: [f32; 4] = if reversed {
        [e[3], e[2], e[1], e[0]]
    } else {
        [e[0], e[1], e[2], e[3]]
    };
    let total: f32 = e.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let unit = total / 7.0;
    let (t1, t2) = ((e[0] + e[1]) / unit, (e[1] + e[2]) / unit);
    let (r1, r2) = (t1.round(), t2.round());
    if (t1 - r1).abs() > TOLERANCE || (t2 - r2).abs() > TOLERANCE {
        return None;
    }
    let mut found: Vec<(u8, f32)> = WIDTHS
        .iter()
        .enumerate()
        .filter(|(_, w)| f32::from(w[0] + w[1]) == r1 && f32::from(w[1] + w[2]) == r2)
        .map(|(d, w)| {
            (
                d as u8,
                w.iter()
                    .zip(e)
                    .map(|(&m, x)| (f32::from(m) - x / unit).abs())
                    .sum(),
            )
        })
        .collect();
    // 1/7 and 2/8 share their edge-to-similar-edge distances; their element widths differ by a whole
    // module in every element, so the nearer pattern must be clearly nearer.
    found.sort_by(|a, b| a.1.total_cmp(&b.1));
    match found[..] {
        [(d, _)] => Some(d),
        [(d, best), (_, next)] if next - best > 1.0 => Some(d),
        _ => None,
    }
}

/// The 13 digits of an EAN-13 whose left guard starts at edge `start` of `edges` (sample positions
/// of the threshold crossings, alternating dark and light, the first into a bar).
fn decode_edges(edges: &[f32], start: usize) -> Option<String> {
    let e = edges.get(start..start + 60)?;
    let w: Vec<f32> = e.windows(2).map(|p| p[1] - p[0]).collect();
    let module = (e[59] - e[0]) / 95.0;
    let guard_ok = |range: std::ops::Range<usize>| {
        w[range]
            .iter()
            .all(|&x| x > 0.4 * module && x < 1.8 * module)
    };
    if !(guard_ok(0..3) && guard_ok(27..32) && guard_ok(56..59)) {
        return None;
    }
    // Design: the guards are one module a bar and a space, so they tell how much the bars grew (ink,
    // blur, threshold); taking it back off every element keeps 1/7 and 2/8 apart, which the
    // edge-to-similar-edge distances alone cannot tell.
    let mean = |idx: &[usize]| idx.iter().map(|&i| w[i]).sum::<f32>() / idx.len() as f32;
    let growth = (mean(&[0, 2, 28, 30, 56, 58]) - mean(&[1, 27, 29, 31, 57])) / 2.0;
    let w: Vec<f32> = w
        .iter()
        .enumerate()
        .map(|(k, &x)| if k % 2 == 0 { x - growth } else { x + growth })
        .collect();
    let mut digits = [0u8; 13];
    let mut parity = [false; 6];
    for i in 0..6 {
        let chars = &w[3 + 4 * i..7 + 4 * i];
        let (l, g) = (decode_char(chars, false), decode_char(chars, true));
        (digits[1 + i], parity[i]) = match (l, g) {
            (Some(d), None) => (d, false),
            (None, Some(d)) => (d, true),
            _ => return None,
        };
    }
    digits[0] = PARITY.iter().position(|p| *p == parity)? as u8;
    for i in 0..6 {
        digits[7 + i] = decode_char(&w[32 + 4 * i..36 + 4 * i], false)?;
    }
    Some(digits.iter().map(|d| char::from(b'0' + d)).collect())
}

/// Reads an EAN-13 on a luma profile sampled along a line crossing the whole symbol and some of its
/// quiet zones, in either direction.
pub(crate) fn read_profile(profile: &[f32]) -> Option<String> {
    let (lo, hi) = profile
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if hi - lo < 32.0 {
        return None;
    }
    let threshold = (lo + hi) / 2.0;
    for reversed in [false, true] {
        let samples: Vec<f32> = if reversed {
            profile.iter().rev().copied().collect()
        } else {
            profile.to_vec()
        };
        let mut edges = Vec::new();
        let mut dark = samples[0] < threshold;
        if dark {
            // The line must start in the quiet zone.
            continue;
        }
        for (i, pair) in samples.windows(2).enumerate() {
            let now_dark = pair[1] < threshold;
            if now_dark != dark {
                edges.push(i as f32 + (threshold - pair[0]) / (pair[1] - pair[0]));
                dark = now_dark;
            }
        }
        // The symbol's 60 edges, starting on a bar, with five modules of quiet zone on either side.
        let mut start = 0;
        while start + 60 <= edges.len() {
            let module = (edges[start + 59] - edges[start]) / 95.0;
            let before = if start == 0 {
                edges[0]
            } else {
                edges[start] - edges[start - 1]
            };
            let after = edges
                .get(start + 60)
                .map_or(samples.len() as f32 - edges[start + 59], |&e| {
                    e - edges[start + 59]
                });
            if before >= 5.0 * module && after >= 5.0 * module {
                if let Some(digits) = decode_edges(&edges, start) {
                    return Some(digits);
                }
            }
            start += 2;
        }
    }
    None
}

/// A luma value at a sub-pixel position (bilinear), white outside the picture.
fn sample(luma: &[u8], w: usize, h: usize, x: f32, y: f32) -> f32 {
    if x < 0.0 || y < 0.0 || x >= (w - 1) as f32 || y >= (h - 1) as f32 {
        return 255.0;
    }
    let (x0, y0) = (x as usize, y as usize);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let at = |xx: usize, yy: usize| f32::from(luma[yy * w + xx]);
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
    let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// What the strict reader says about an engine's reading of a linear symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Opinion {
    /// At least two lines read exactly these digits, and no line read others.
    Agrees,
    /// Two or more lines agree on other digits.
    ReadsOther(String),
    /// Lines disagree with each other, or too few could be read.
    Unsure,
}

/// Reads lines across a symbol the engine located (`corners`: the ends of the first and the last row
/// it was read on, in `luma`'s pixels, first digit first) and compares with the engine's `text`.
pub(crate) fn check(
    luma: &[u8],
    w: usize,
    h: usize,
    corners: &[[f32; 2]; 4],
    text: &str,
) -> Opinion {
    if w < 2 || h < 2 {
        return Opinion::Unsure;
    }
    let [tl, tr, br, bl] = *corners;
    let mut readings: Vec<String> = Vec::new();
    for k in [0.1f32, 0.3, 0.5, 0.7, 0.9] {
        let a = [tl[0] + k * (bl[0] - tl[0]), tl[1] + k * (bl[1] - tl[1])];
        let b = [tr[0] + k * (br[0] - tr[0]), tr[1] + k * (br[1] - tr[1])];
        let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        if len < 20.0 {
            continue;
        }
        // Reach 8 modules into each quiet zone (the engine's ends sit on the guards).
        let (ux, uy) = ((b[0] - a[0]) / len, (b[1] - a[1]) / len);
        let reach = 8.0 * len / 95.0;
        let n = ((len + 2.0 * reach) * OVERSAMPLE) as usize;
        let profile: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / OVERSAMPLE - reach;
                sample(luma, w, h, a[0] + ux * t, a[1] + uy * t)
            })
            .collect();
        if let Some(r) = read_profile(&profile) {
            readings.push(r);
        }
    }
    let same = readings.iter().filter(|r| r.as_str() == text).count();
    let others: Vec<&String> = readings.iter().filter(|r| r.as_str() != text).collect();
    if same >= 2 && others.is_empty() {
        return Opinion::Agrees;
    }
    if let Some(first) = others.first() {
        if others.len() >= 2 && others.iter().all(|o| o == first) && same == 0 {
            return Opinion::ReadsOther((*first).clone());
        }
    }
    Opinion::Unsure
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 95 modules of an EAN-13, as gs1.py's `ean13_modules` draws them.
    fn modules(digits: &str) -> Vec<bool> {
        let d: Vec<usize> = digits.bytes().map(|b| usize::from(b - b'0')).collect();
        let pattern = |widths: [u8; 4], first_dark: bool| {
            let mut out = Vec::new();
            for (i, &n) in widths.iter().enumerate() {
                out.extend(std::iter::repeat_n(
                    (i % 2 == 0) == first_dark,
                    usize::from(n),
                ));
            }
            out
        };
        let mut m = vec![true, false, true];
        for i in 0..6 {
            let mut wd = WIDTHS[d[1 + i]];
            if PARITY[d[0]][i] {
                wd.reverse();
            }
            m.extend(pattern(wd, false));
        }
        m.extend([false, true, false, true, false]);
        for i in 0..6 {
            m.extend(pattern(WIDTHS[d[7 + i]], true));
        }
        m.extend([true, false, true]);
        m
    }

    /// A profile of the symbol: `px` pixels a module, quiet zones, bars grown by `growth` pixels,
    /// smoothed over a pixel (a camera's blur), sampled `OVERSAMPLE` times a pixel.
    fn profile(digits: &str, px: f32, growth: f32, phase: f32) -> Vec<f32> {
        let m = modules(digits);
        let quiet = 11.0 * px;
        let len = 95.0 * px + 2.0 * quiet;
        let n = (len * OVERSAMPLE) as usize;
        let dark_at = |x: f32| {
            let u = (x - quiet) / px;
            if !(0.0..95.0).contains(&u) {
                return false;
            }
            let i = u as usize;
            // Grow every bar by growth/2 on each side.
            let g = growth / 2.0 / px;
            m[i] || (i > 0 && m[i - 1] && u - (i as f32) < g)
                || (i + 1 < 95 && m[i + 1] && (i as f32 + 1.0) - u < g)
        };
        (0..n)
            .map(|k| {
                let x = k as f32 / OVERSAMPLE + phase;
                // Box blur over one pixel.
                let v: f32 = (0..8)
                    .map(|j| {
                        if dark_at(x - 0.5 + j as f32 / 8.0) {
                            0.0
                        } else {
                            255.0
                        }
                    })
                    .sum();
                v / 8.0
            })
            .collect()
    }

    #[test]
    fn reads_every_digit_in_every_parity_both_ways() {
        for digits in [
            "9501101010215",
            "9501101010218",
            "0614141200115",
            "4006381010450",
            "1234567890128",
            "5901234123457",
        ] {
            let p = profile(digits, 2.0, 0.0, 0.0);
            assert_eq!(read_profile(&p).as_deref(), Some(digits), "{digits}");
            let mut back = p.clone();
            back.reverse();
            assert_eq!(
                read_profile(&back).as_deref(),
                Some(digits),
                "{digits} backwards"
            );
        }
    }

    #[test]
    fn bar_growth_and_a_half_pixel_phase_do_not_change_the_reading() {
        // The case that made the engine misread 9501101010218 as 0567161010212.
        for (px, growth, phase) in [
            (2.0, 0.0, 0.5),
            (2.0, 0.6, 0.5),
            (2.0, -0.6, 0.25),
            (3.0, 1.0, 0.5),
            (1.5, 0.0, 0.5),
        ] {
            let p = profile("9501101010218", px, growth, phase);
            assert_eq!(
                read_profile(&p).as_deref(),
                Some("9501101010218"),
                "px {px} growth {growth} phase {phase}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_one_whole_symbol() {
        let p = profile("9501101010215", 2.0, 0.0, 0.0);
        // Cut short: the right guard is missing.
        assert_eq!(read_profile(&p[..p.len() * 3 / 4]), None);
        // Two symbols side by side, quiet zones shared: each is whole, the first is read.
        let two: Vec<f32> = p
            .iter()
            .chain(profile("4006381010450", 2.0, 0.0, 0.0).iter())
            .copied()
            .collect();
        assert_eq!(read_profile(&two).as_deref(), Some("9501101010215"));
        // No contrast.
        assert_eq!(read_profile(&vec![128.0; 400]), None);
        // Starting inside a bar.
        assert_eq!(
            read_profile(&p[(11.0 * 2.0 * OVERSAMPLE) as usize + 1..p.len() - 60]),
            None
        );
    }

    #[test]
    fn a_character_between_two_patterns_is_refused() {
        // Exactly between 1 ([2,2,2,1]) and 7 ([1,3,1,2]) in every element.
        assert_eq!(decode_char(&[1.5, 2.5, 1.5, 1.5], false), None);
        assert_eq!(decode_char(&[2.0, 2.0, 2.0, 1.0], false), Some(1));
        assert_eq!(decode_char(&[1.0, 3.0, 1.0, 2.0], false), Some(7));
        // G set: the widths of R/L reversed.
        assert_eq!(decode_char(&[1.0, 2.0, 2.0, 2.0], true), Some(1));
        assert_eq!(decode_char(&[1.0, 2.0, 2.0, 2.0], false), None);
    }

    #[test]
    fn check_reads_lines_across_a_drawn_symbol() {
        // A symbol drawn into a picture, 2 px a module, bars 40 px tall, at x 30, y 10.
        let digits = "9501101010218";
        let m = modules(digits);
        let (w, h) = (30 + 190 + 30, 60);
        let mut luma = vec![255u8; w * h];
        for y in 10..50 {
            for (i, &dark) in m.iter().enumerate() {
                if dark {
                    luma[y * w + 30 + 2 * i] = 0;
                    luma[y * w + 31 + 2 * i] = 0;
                }
            }
        }
        let corners = [[30.0, 12.0], [219.0, 12.0], [219.0, 47.0], [30.0, 47.0]];
        assert_eq!(check(&luma, w, h, &corners, digits), Opinion::Agrees);
        assert_eq!(
            check(&luma, w, h, &corners, "0567161010212"),
            Opinion::ReadsOther(digits.to_string())
        );
        // Read from the other end (an engine reading it upside down).
        let flipped = [corners[1], corners[0], corners[3], corners[2]];
        assert_eq!(check(&luma, w, h, &flipped, digits), Opinion::Agrees);
        // Nothing there.
        let blank = vec![255u8; w * h];
        assert_eq!(check(&blank, w, h, &corners, digits), Opinion::Unsure);
    }
}
