//! Shared by the integration tests and `examples/measure.rs`: the item crops of the shipped reference
//! artwork and sample scenes, each with the barcode digits its label really carries.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use hallmark_barcode::gs1;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One product class of a brand's manifest.
#[derive(Debug, Clone)]
pub struct Class {
    pub name: String,
    pub gtin: String,
    pub role: String,
}

pub struct Brand {
    pub key: String,
    pub classes: Vec<Class>,
    pub prefixes: Vec<String>,
}

pub fn brand(key: &str) -> Brand {
    let path = repo_root().join("models").join(key).join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let classes = m["classes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| Class {
                    name: s(&c["name"]),
                    gtin: s(&c["gtin"]),
                    role: s(&c["role"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let prefixes = m["gs1_prefixes"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    Brand {
        key: key.to_string(),
        classes,
        prefixes,
    }
}

pub const BRANDS: [&str; 2] = ["northwind", "aurora"];

/// The 13 digits under the EAN-13 of a class, as models/pipeline/hallmark_models/artwork.py's
/// `barcode_digits` prints them: genuine packs their own GTIN; the counterfeits a wrong check digit
/// (Earl Grey, Paracetamol), another product's GTIN (Green Jasmine, Ibuprofen: the brand's first other
/// product) or the same item reference under GS1 prefix 4006381 (Chai Spice, Cetirizine).
pub fn printed_digits(brand: &Brand, class: &str) -> String {
    let Some(c) = brand.classes.iter().find(|c| c.name == class) else {
        panic!("no class {class} in {}", brand.key);
    };
    let gtin13 = c.gtin[1..].to_string();
    if c.role == "genuine" {
        return gtin13;
    }
    let product = class.trim_end_matches("-counterfeit");
    let with_check = |body: &str| format!("{body}{}", gs1::check_digit(body).unwrap_or(0));
    match product {
        "earl-grey" | "paracetamol-500" => {
            let last = gtin13.as_bytes()[12] - b'0';
            format!("{}{}", &gtin13[..12], (last + 3) % 10)
        }
        "green-jasmine" | "ibuprofen-200" => {
            let other = brand
                .classes
                .iter()
                .find(|o| o.role == "genuine" && o.name != product)
                .map(|o| o.gtin.clone());
            other.unwrap_or_default()[1..].to_string()
        }
        "chai-spice" | "cetirizine-10" => with_check(&format!("4006381{}", &gtin13[7..12])),
        _ => gtin13,
    }
}

/// The GTIN the pack's GS1 DataMatrix carries (artwork.py's `datamatrix_text`: the printed digits,
/// or the real GTIN where those fail their check digit, which an encoder refuses).
pub fn datamatrix_gtin(brand: &Brand, class: &str) -> String {
    let printed = printed_digits(brand, class);
    if gs1::Gtin::parse(&printed).is_ok() {
        return format!("0{printed}");
    }
    brand
        .classes
        .iter()
        .find(|c| c.name == class)
        .map(|c| c.gtin.clone())
        .unwrap_or_default()
}

/// An item crop: RGB8, tight rows.
pub struct Crop {
    pub source: String,
    pub brand: String,
    pub class: String,
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The EAN-13 digits printed on it.
    pub printed: String,
    /// Aurora packs also carry a GS1 DataMatrix with this GTIN.
    pub datamatrix_gtin: Option<String>,
}

fn load_rgb(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

fn crop_for(brand: &Brand, source: String, class: &str, rgb: image::RgbImage) -> Crop {
    let (width, height) = rgb.dimensions();
    Crop {
        source,
        brand: brand.key.clone(),
        class: class.to_string(),
        rgb: rgb.into_raw(),
        width,
        height,
        printed: printed_digits(brand, class),
        datamatrix_gtin: (brand.key == "aurora").then(|| datamatrix_gtin(brand, class)),
    }
}

/// Every reference PNG of both brands, whole (one pack each).
pub fn reference_crops() -> Vec<Crop> {
    let mut out = Vec::new();
    for key in BRANDS {
        let brand = brand(key);
        for c in &brand.classes {
            let path = repo_root().join(format!("models/{key}/reference/{}.png", c.name));
            out.push(crop_for(
                &brand,
                format!("{key}/reference/{}.png", c.name),
                &c.name,
                load_rgb(&path),
            ));
        }
    }
    out
}

/// Every labelled pack of the sample scenes (models/samples/<brand>/*.jpg with YOLO labels), cut out
/// along its label box as the detector would box it.
pub fn sample_crops() -> Vec<Crop> {
    let mut out = Vec::new();
    for key in BRANDS {
        let brand = brand(key);
        let dir = repo_root().join("models/samples").join(key);
        let mut images: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .collect();
        images.sort();
        for path in images {
            let labels = std::fs::read_to_string(path.with_extension("txt")).unwrap_or_default();
            let img = load_rgb(&path);
            let (iw, ih) = (img.width() as f32, img.height() as f32);
            for (i, line) in labels.lines().enumerate() {
                let v: Vec<f32> = line
                    .split_whitespace()
                    .filter_map(|t| t.parse().ok())
                    .collect();
                let [cls, cx, cy, w, h] = v[..] else { continue };
                let Some(class) = brand.classes.get(cls as usize) else {
                    continue;
                };
                let x1 = ((cx - w / 2.0) * iw).max(0.0) as u32;
                let y1 = ((cy - h / 2.0) * ih).max(0.0) as u32;
                let x2 = (((cx + w / 2.0) * iw).ceil() as u32).min(img.width());
                let y2 = (((cy + h / 2.0) * ih).ceil() as u32).min(img.height());
                let cut = image::imageops::crop_imm(&img, x1, y1, x2 - x1, y2 - y1).to_image();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                out.push(crop_for(
                    &brand,
                    format!("{key}/{name}#{i}"),
                    &class.name,
                    cut,
                ));
            }
        }
    }
    out
}

/// A crop turned clockwise by `degrees` about its centre onto a canvas that holds all of it, the corners
/// filled with grey: what the detector's axis-aligned box holds when the pack lies at that angle.
/// At 90°, 180° and 270° the canvas gains a pixel to rounding, so the label lands on a half-pixel
/// phase: every bar edge a 50% grey, the hardest case for 2-px modules, kept on purpose.
pub fn turned(c: &Crop, degrees: f32) -> Crop {
    let a = degrees.to_radians();
    let (s, co) = a.sin_cos();
    let (w, h) = (c.width as f32, c.height as f32);
    let tw = (w * co.abs() + h * s.abs()).ceil() as u32;
    let th = (w * s.abs() + h * co.abs()).ceil() as u32;
    let mut rgb = vec![128u8; (tw * th * 3) as usize];
    for yr in 0..th {
        for xr in 0..tw {
            let (dx, dy) = (
                xr as f32 + 0.5 - tw as f32 / 2.0,
                yr as f32 + 0.5 - th as f32 / 2.0,
            );
            let x = w / 2.0 + co * dx + s * dy - 0.5;
            let y = h / 2.0 - s * dx + co * dy - 0.5;
            if x < 0.0 || y < 0.0 || x > w - 1.0 || y > h - 1.0 {
                continue;
            }
            // Bilinear, as a camera's optics would blend neighbouring bars.
            let (x0, y0) = (x as usize, y as usize);
            let (x1, y1) = (
                (x0 + 1).min(c.width as usize - 1),
                (y0 + 1).min(c.height as usize - 1),
            );
            let (fx, fy) = (x - x0 as f32, y - y0 as f32);
            let at = |xx: usize, yy: usize, k: usize| {
                f32::from(c.rgb[(yy * c.width as usize + xx) * 3 + k])
            };
            for k in 0..3 {
                let top = at(x0, y0, k) * (1.0 - fx) + at(x1, y0, k) * fx;
                let bottom = at(x0, y1, k) * (1.0 - fx) + at(x1, y1, k) * fx;
                rgb[((yr * tw + xr) * 3) as usize + k] =
                    (top * (1.0 - fy) + bottom * fy + 0.5) as u8;
            }
        }
    }
    Crop {
        source: format!("{}@{degrees}°", c.source),
        brand: c.brand.clone(),
        class: c.class.clone(),
        rgb,
        width: tw,
        height: th,
        printed: c.printed.clone(),
        datamatrix_gtin: c.datamatrix_gtin.clone(),
    }
}

/// Every reference PNG turned by 15°, 30°, … 345° (not 0°): the rotation coverage.
pub fn turned_reference_crops() -> Vec<Crop> {
    let refs = reference_crops();
    let mut out = Vec::new();
    for c in &refs {
        for k in 1..24 {
            out.push(turned(c, k as f32 * 15.0));
        }
    }
    out
}

/// A crop scaled by `factor` (triangle filter, as a camera farther away would see it).
pub fn scaled(c: &Crop, factor: f32) -> Crop {
    let (w, h) = (
        (c.width as f32 * factor).round() as u32,
        (c.height as f32 * factor).round() as u32,
    );
    let Some(img) = image::RgbImage::from_raw(c.width, c.height, c.rgb.clone()) else {
        panic!("{}: buffer does not match its size", c.source);
    };
    let small = image::imageops::resize(
        &img,
        w.max(1),
        h.max(1),
        image::imageops::FilterType::Triangle,
    );
    Crop {
        source: format!("{}×{factor}", c.source),
        brand: c.brand.clone(),
        class: c.class.clone(),
        rgb: small.into_raw(),
        width: w.max(1),
        height: h.max(1),
        printed: c.printed.clone(),
        datamatrix_gtin: c.datamatrix_gtin.clone(),
    }
}

/// Every reference PNG scaled by each of `factors` and turned by each of `angles`: labels farther from
/// the camera.
pub fn scaled_crops(factors: &[f32], angles: &[f32]) -> Vec<Crop> {
    let mut out = Vec::new();
    for c in &reference_crops() {
        for &factor in factors {
            let s = scaled(c, factor);
            for &degrees in angles {
                out.push(turned(&s, degrees));
            }
        }
    }
    out
}

/// Every reference PNG scaled to 0.5, 0.6, … 0.9 and turned 0°, 20°, 45°, 70° and 160°: labels
/// farther from the camera, down to a module of one pixel.
pub fn scaled_reference_crops() -> Vec<Crop> {
    scaled_crops(&[0.5, 0.6, 0.7, 0.8, 0.9], &[0.0, 20.0, 45.0, 70.0, 160.0])
}
