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
    let m: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let classes = m["classes"]
        .as_array()
        .map(|a| a.iter().map(|c| Class { name: s(&c["name"]), gtin: s(&c["gtin"]), role: s(&c["role"]) }).collect())
        .unwrap_or_default();
    let prefixes = m["gs1_prefixes"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
    Brand { key: key.to_string(), classes, prefixes }
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
            let other = brand.classes.iter().find(|o| o.role == "genuine" && o.name != product).map(|o| o.gtin.clone());
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
    brand.classes.iter().find(|c| c.name == class).map(|c| c.gtin.clone()).unwrap_or_default()
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
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
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
            out.push(crop_for(&brand, format!("{key}/reference/{}.png", c.name), &c.name, load_rgb(&path)));
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
                let v: Vec<f32> = line.split_whitespace().filter_map(|t| t.parse().ok()).collect();
                let [cls, cx, cy, w, h] = v[..] else { continue };
                let Some(class) = brand.classes.get(cls as usize) else { continue };
                let x1 = ((cx - w / 2.0) * iw).max(0.0) as u32;
                let y1 = ((cy - h / 2.0) * ih).max(0.0) as u32;
                let x2 = (((cx + w / 2.0) * iw).ceil() as u32).min(img.width());
                let y2 = (((cy + h / 2.0) * ih).ceil() as u32).min(img.height());
                let cut = image::imageops::crop_imm(&img, x1, y1, x2 - x1, y2 - y1).to_image();
                let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                out.push(crop_for(&brand, format!("{key}/{name}#{i}"), &class.name, cut));
            }
        }
    }
    out
}
