//! Golden screenshots: every screen rendered at 320×240 and compared pixel for pixel with the PNG
//! committed in `tests/golden/`. Run with `UPDATE_GOLDEN=1` to rewrite them after an intended change
//! (then look at each one before committing). On a mismatch the actual picture is written next to
//! the test binary's temp dir and its path is in the failure message.

use embedded_graphics::pixelcolor::{Rgb565, RgbColor};
use hallmark_link::{text_truncated, Confidence, Verdict};
use hallmark_ui::{band::draw_banded, draw, BandTarget, Screen, VerdictView, HEIGHT, WIDTH};
use std::path::{Path, PathBuf};

fn verdict(verdict: Verdict, brand: &str, product: &str, permille: u16) -> Screen {
    Screen::Verdict(VerdictView {
        item_id: 1042,
        verdict,
        brand: text_truncated(brand),
        product: text_truncated(product),
        confidence: Confidence(permille),
        link_lost: false,
    })
}

fn screens() -> Vec<(&'static str, Screen)> {
    vec![
        ("idle", Screen::Idle),
        ("scanning", Screen::Scanning),
        (
            "genuine",
            verdict(Verdict::Genuine, "Acme", "Acme Classic Watch", 973),
        ),
        (
            "counterfeit",
            verdict(Verdict::Counterfeit, "Acme", "Acme Classic Watch", 912),
        ),
        (
            "inconclusive",
            verdict(Verdict::Inconclusive, "Acme", "Acme Classic Watch", 541),
        ),
        ("no_product", verdict(Verdict::NoProduct, "", "", 0)),
        (
            "genuine_long_name",
            verdict(
                Verdict::Genuine,
                "Maison Étoile Parfums",
                "Eau de Parfum Intense Édition Limitée 100 ml Vaporisateur",
                999,
            ),
        ),
        (
            "updating",
            Screen::Updating {
                brand: text_truncated("Acme"),
                progress: 42,
            },
        ),
        (
            "agent_error",
            Screen::AgentError {
                detail: text_truncated("camera not found: /dev/video0"),
            },
        ),
        ("offline", Screen::Offline),
        ("counterfeit_link_lost", {
            let mut s = verdict(Verdict::Counterfeit, "Acme", "Acme Classic Watch", 912);
            if let Screen::Verdict(v) = &mut s {
                v.link_lost = true;
            }
            s
        }),
    ]
}

fn render(screen: &Screen) -> Vec<u8> {
    let mut fb = vec![Rgb565::BLACK; (WIDTH * HEIGHT) as usize];
    let mut target = BandTarget::new(&mut fb, WIDTH, HEIGHT);
    draw(screen, &mut target).expect("a framebuffer cannot fail");
    let mut rgb = Vec::with_capacity(fb.len() * 3);
    for p in fb {
        // 5/6-bit channels widened by repeating their top bits, so white stays 255.
        rgb.push((p.r() << 3) | (p.r() >> 2));
        rgb.push((p.g() << 2) | (p.g() >> 4));
        rgb.push((p.b() << 3) | (p.b() >> 2));
    }
    rgb
}

fn write_png(path: &Path, rgb: &[u8]) {
    let file =
        std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), WIDTH, HEIGHT);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(rgb))
        .expect("write png");
}

fn read_png(path: &Path) -> Option<(u32, u32, Vec<u8>)> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    assert_eq!(
        info.color_type,
        png::ColorType::Rgb,
        "{} must be 8-bit RGB",
        path.display()
    );
    buf.truncate(info.buffer_size());
    Some((info.width, info.height, buf))
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn every_screen_matches_its_golden_png() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for (name, screen) in screens() {
        let actual = render(&screen);
        let path = golden_dir().join(format!("{name}.png"));
        if update {
            write_png(&path, &actual);
            continue;
        }
        match read_png(&path) {
            None => failures.push(format!(
                "{name}: no golden at {} (UPDATE_GOLDEN=1)",
                path.display()
            )),
            Some((w, h, _)) if (w, h) != (WIDTH, HEIGHT) => failures.push(format!(
                "{name}: golden is {w}x{h}, screen is {WIDTH}x{HEIGHT}"
            )),
            Some((_, _, expected)) => {
                let differ = expected
                    .chunks(3)
                    .zip(actual.chunks(3))
                    .filter(|(a, b)| a != b)
                    .count();
                if differ > 0 {
                    let out =
                        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.actual.png"));
                    write_png(&out, &actual);
                    failures.push(format!(
                        "{name}: {differ} pixels differ; actual in {}",
                        out.display()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_screen_covers_the_whole_panel() {
    // Draw each screen over two different backgrounds: any pixel the screen leaves untouched differs.
    for (name, screen) in screens() {
        let mut a = vec![Rgb565::MAGENTA; (WIDTH * HEIGHT) as usize];
        let mut b = vec![Rgb565::CYAN; (WIDTH * HEIGHT) as usize];
        draw(&screen, &mut BandTarget::new(&mut a, WIDTH, HEIGHT)).unwrap();
        draw(&screen, &mut BandTarget::new(&mut b, WIDTH, HEIGHT)).unwrap();
        assert!(a == b, "{name} leaves pixels undrawn");
    }
}

#[test]
fn the_screens_are_all_different() {
    let all: Vec<_> = screens().iter().map(|(n, s)| (*n, render(s))).collect();
    for (i, (na, a)) in all.iter().enumerate() {
        for (nb, b) in &all[i + 1..] {
            assert!(a != b, "{na} and {nb} render the same");
        }
    }
}

#[test]
fn banded_rendering_equals_the_framebuffer() {
    // The board renders through a 24-row band into the panel; it must produce exactly the
    // simulator's pixels. Here the "panel" is a framebuffer that only accepts fill_contiguous.
    for (name, screen) in screens() {
        let mut full = vec![Rgb565::BLACK; (WIDTH * HEIGHT) as usize];
        draw(&screen, &mut BandTarget::new(&mut full, WIDTH, HEIGHT)).unwrap();
        let mut panel = vec![Rgb565::BLACK; (WIDTH * HEIGHT) as usize];
        let mut band = vec![Rgb565::BLACK; (WIDTH * 24) as usize];
        draw_banded(
            &screen,
            &mut band,
            &mut BandTarget::new(&mut panel, WIDTH, HEIGHT),
        )
        .unwrap();
        assert!(panel == full, "{name}: banded output differs");
    }
}
