//! Reading image files: JPEG, PNG and WebP (cameras, phones), BMP, TIFF and PNM (what machine-vision
//! cameras and conveyor recorders save: often grey or 16-bit), recognised by their content (not their
//! name), decoded to packed RGB8 with the EXIF orientation applied (phone photos arrive rotated), under
//! limits on size and memory so that a decompression bomb is refused before it is decoded.
//!
//! JPEG pixels come from libjpeg-turbo ([`jpeg`]), the other formats from the `image` crate.
//!
//! Every failure is an [`ImageError`] that names the file and says what is wrong with it in words a
//! person can act on.

pub mod inputs;

use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};

pub(crate) mod jpeg;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use thiserror::Error;

/// What a decoder may allocate and how big an image may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_width: u32,
    pub max_height: u32,
    /// Bytes the decoder may hold at once (output image included).
    pub max_alloc: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        // 16384² is beyond any camera; 1 GiB keeps a bomb from exhausting a small device.
        ImageLimits {
            max_width: 16384,
            max_height: 16384,
            max_alloc: 1 << 30,
        }
    }
}

#[derive(Debug, Error)]
pub enum ImageError {
    #[error("{path}: cannot read: {message}")]
    Read { path: PathBuf, message: String },
    #[error(
        "{path}: file of {mib} MiB is over the {limit_mib} MiB limit; refused without reading"
    )]
    FileTooLarge {
        path: PathBuf,
        mib: u64,
        limit_mib: u64,
    },
    #[error("{path}: empty file (0 bytes)")]
    Empty { path: PathBuf },
    #[error(
        "{path}: not a JPEG, PNG, WebP, BMP, TIFF or PNM image (content starts with {start:?})"
    )]
    Unrecognised { path: PathBuf, start: String },
    #[error("{path}: {format} header claims {width}×{height} pixels, over the limit of {max_width}×{max_height}; refused without decoding")]
    TooLarge {
        path: PathBuf,
        format: &'static str,
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
    #[error("{path}: {format} image of {width}×{height} would need more than the {limit_mib} MiB decoding limit; refused")]
    TooMuchMemory {
        path: PathBuf,
        format: &'static str,
        width: u32,
        height: u32,
        limit_mib: u64,
    },
    #[error("{path}: truncated {format} (the data ends before the image does)")]
    Truncated { path: PathBuf, format: &'static str },
    #[error("{path}: damaged or truncated {format}: the decoder had to make up part of the picture ({message}); refused")]
    Damaged {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("{path}: corrupt {format}: {message}")]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
}

/// A decoded, upright image.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub rgb: RgbImage,
    pub format: &'static str,
}

/// Reads and decodes the image file at `path`.
pub fn load(path: &Path, limits: ImageLimits) -> Result<Decoded, ImageError> {
    let read_err = |e: std::io::Error| ImageError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > limits.max_alloc {
        return Err(ImageError::FileTooLarge {
            path: path.to_path_buf(),
            mib: size >> 20,
            limit_mib: limits.max_alloc >> 20,
        });
    }
    let bytes = std::fs::read(path).map_err(|e| ImageError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    decode(path, &bytes, limits)
}

/// Decodes `bytes` (the content of `path`, which is only used in messages).
pub fn decode(path: &Path, bytes: &[u8], limits: ImageLimits) -> Result<Decoded, ImageError> {
    let p = || path.to_path_buf();
    if bytes.is_empty() {
        return Err(ImageError::Empty { path: p() });
    }
    let (format, name) = sniff(bytes).ok_or_else(|| ImageError::Unrecognised {
        path: p(),
        start: printable_start(bytes),
    })?;
    let mut reader = ImageReader::with_format(BufReader::new(Cursor::new(bytes)), format);
    let mut lim = image::Limits::default();
    lim.max_image_width = Some(limits.max_width);
    lim.max_image_height = Some(limits.max_height);
    lim.max_alloc = Some(limits.max_alloc);
    reader.limits(lim);
    let corrupt = |e: image::ImageError| classify(path, name, e);
    let mut decoder = match reader.into_decoder() {
        Ok(d) => d,
        Err(image::ImageError::Limits(_)) => {
            // Re-read the header without limits only to say how big the image claims to be.
            return Err(match header_dimensions(bytes, format) {
                Some((width, height)) if width > limits.max_width || height > limits.max_height => {
                    too_large(path, name, width, height, limits)
                }
                Some((width, height)) => ImageError::TooMuchMemory {
                    path: p(),
                    format: name,
                    width,
                    height,
                    limit_mib: limits.max_alloc >> 20,
                },
                None => ImageError::Corrupt {
                    path: p(),
                    format: name,
                    message: "header exceeds the decoder limits".into(),
                },
            });
        }
        Err(e) => return Err(corrupt(e)),
    };
    let (width, height) = decoder.dimensions();
    if width > limits.max_width || height > limits.max_height {
        return Err(too_large(path, name, width, height, limits));
    }
    let needed = decoder.total_bytes();
    if needed > limits.max_alloc {
        return Err(ImageError::TooMuchMemory {
            path: p(),
            format: name,
            width,
            height,
            limit_mib: limits.max_alloc >> 20,
        });
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let turbo = if format == ImageFormat::Jpeg {
        let (jw, jh, rgb_ok) = jpeg::header(bytes).map_err(|message| ImageError::Corrupt {
            path: p(),
            format: name,
            message,
        })?;
        rgb_ok.then_some((jw, jh))
    } else {
        None
    };
    // CMYK JPEGs (which TurboJPEG cannot turn into RGB) and other formats go through the `image` crate.
    if let Some((jw, jh)) = turbo {
        drop(decoder);
        if (jw, jh) != (width, height) || jw as u64 * jh as u64 * 3 > limits.max_alloc {
            return Err(ImageError::Corrupt {
                path: p(),
                format: name,
                message: format!("inconsistent header ({jw}×{jh} vs {width}×{height})"),
            });
        }
        let rgb = jpeg::decode_rgb_strict(bytes, width, height).map_err(|damage| match damage {
            jpeg::Damage::Fatal(message) => ImageError::Corrupt {
                path: p(),
                format: name,
                message,
            },
            jpeg::Damage::Warning(message) => ImageError::Damaged {
                path: p(),
                format: name,
                message,
            },
        })?;
        let rgb = RgbImage::from_raw(width, height, rgb).ok_or_else(|| ImageError::Corrupt {
            path: p(),
            format: name,
            message: "short pixel buffer".into(),
        })?;
        let mut img = DynamicImage::ImageRgb8(rgb);
        img.apply_orientation(orientation);
        return Ok(Decoded {
            rgb: img.into_rgb8(),
            format: name,
        });
    }
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooMuchMemory {
            path: p(),
            format: name,
            width,
            height,
            limit_mib: limits.max_alloc >> 20,
        },
        e => corrupt(e),
    })?;
    img.apply_orientation(orientation);
    Ok(Decoded {
        rgb: img.into_rgb8(),
        format: name,
    })
}

fn too_large(
    path: &Path,
    format: &'static str,
    width: u32,
    height: u32,
    l: ImageLimits,
) -> ImageError {
    ImageError::TooLarge {
        path: path.to_path_buf(),
        format,
        width,
        height,
        max_width: l.max_width,
        max_height: l.max_height,
    }
}

/// A decoder error as an [`ImageError`]: truncated when the decoder's own error chain holds an
/// unexpected end of file, corrupt otherwise (with the decoder's message).
fn classify(path: &Path, format: &'static str, e: image::ImageError) -> ImageError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
        {
            return ImageError::Truncated {
                path: path.to_path_buf(),
                format,
            };
        }
        source = err.source();
    }
    ImageError::Corrupt {
        path: path.to_path_buf(),
        format,
        message: e.to_string(),
    }
}

fn header_dimensions(bytes: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
    if format == ImageFormat::Png && bytes.len() >= 24 && &bytes[12..16] == b"IHDR" {
        let be =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        return Some((be(16), be(20)));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.no_limits();
    reader.into_dimensions().ok()
}

/// The format from the file's first bytes.
fn sniff(bytes: &[u8]) -> Option<(ImageFormat, &'static str)> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some((ImageFormat::Jpeg, "JPEG"))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some((ImageFormat::Png, "PNG"))
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some((ImageFormat::WebP, "WebP"))
    } else if bytes.starts_with(b"BM")
        && bytes.len() >= 26
        // the DIB header's size: one of the known BMP header versions
        && [12, 40, 52, 56, 64, 108, 124].contains(&u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]))
    {
        Some((ImageFormat::Bmp, "BMP"))
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some((ImageFormat::Tiff, "TIFF"))
    } else if bytes.len() >= 3
        && bytes[0] == b'P'
        && (b'1'..=b'7').contains(&bytes[1])
        && bytes[2].is_ascii_whitespace()
    {
        Some((ImageFormat::Pnm, "PNM"))
    } else {
        None
    }
}

fn printable_start(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(12)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{codecs::jpeg::JpegEncoder, codecs::png::PngEncoder, ImageEncoder};

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(w, h, image::Rgb([1, 2, 3]));
        let mut out = Vec::new();
        PngEncoder::new(&mut out)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    /// A PNG whose IHDR claims `w`×`h` (CRC fixed up), with no image data at all.
    pub(crate) fn png_header_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend_from_slice(&13u32.to_be_bytes());
        out.extend_from_slice(&ihdr);
        out.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn p() -> &'static Path {
        Path::new("x")
    }

    #[test]
    fn jpeg_and_png_decode_to_rgb_of_their_size() {
        let d = decode(p(), &jpeg(33, 17), ImageLimits::default()).unwrap();
        assert_eq!((d.rgb.width(), d.rgb.height(), d.format), (33, 17, "JPEG"));
        let d = decode(p(), &png(5, 9), ImageLimits::default()).unwrap();
        assert_eq!((d.rgb.width(), d.rgb.height(), d.format), (5, 9, "PNG"));
        assert_eq!(d.rgb.get_pixel(2, 2).0, [1, 2, 3]);
    }

    #[test]
    fn webp_decodes_too() {
        let img = RgbImage::from_fn(6, 4, |x, y| image::Rgb([x as u8 * 40, y as u8 * 60, 7]));
        let mut out = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .write_image(img.as_raw(), 6, 4, image::ExtendedColorType::Rgb8)
            .unwrap();
        let d = decode(p(), &out, ImageLimits::default()).unwrap();
        assert_eq!(d.format, "WebP");
        assert_eq!(d.rgb, img);
    }

    fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn bmp_tiff_and_pnm_decode_to_the_same_pixels() {
        let rgb = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 50, 200]));
        let img = DynamicImage::ImageRgb8(rgb.clone());
        for (format, name) in [
            (ImageFormat::Bmp, "BMP"),
            (ImageFormat::Tiff, "TIFF"),
            (ImageFormat::Pnm, "PNM"),
        ] {
            let d = decode(p(), &encoded(&img, format), ImageLimits::default()).unwrap();
            assert_eq!(d.format, name);
            assert_eq!(d.rgb, rgb, "{name}");
        }
    }

    #[test]
    fn grey_and_16_bit_machine_vision_frames_become_grey_rgb8() {
        // 16-bit grey TIFF (big-endian too) and an 8-bit PGM, as industrial cameras write them.
        let grey16 = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(4, 3, |x, y| {
            image::Luma([(x * 16000 + y * 1000) as u16])
        });
        let d = decode(
            p(),
            &encoded(
                &DynamicImage::ImageLuma16(grey16.clone()),
                ImageFormat::Tiff,
            ),
            ImageLimits::default(),
        )
        .unwrap();
        let px = d.rgb.get_pixel(3, 2).0;
        let want = (grey16.get_pixel(3, 2).0[0] as f32 / 257.0).round() as u8;
        assert_eq!(px, [want, want, want]);
        let grey8 = image::GrayImage::from_fn(4, 3, |x, y| image::Luma([(x * 60 + y) as u8]));
        let mut pgm = Vec::new();
        image::codecs::pnm::PnmEncoder::new(&mut pgm)
            .with_subtype(image::codecs::pnm::PnmSubtype::Graymap(
                image::codecs::pnm::SampleEncoding::Binary,
            ))
            .write_image(grey8.as_raw(), 4, 3, image::ExtendedColorType::L8)
            .unwrap();
        assert!(pgm.starts_with(b"P5"), "{:?}", &pgm[..2]);
        let d = decode(p(), &pgm, ImageLimits::default()).unwrap();
        assert_eq!(
            (d.format, d.rgb.get_pixel(2, 1).0),
            ("PNM", [121, 121, 121])
        );
    }

    #[test]
    fn text_that_starts_like_a_bmp_or_pnm_is_not_taken_for_one() {
        let l = ImageLimits::default();
        for text in [
            &b"BMW service record, 2026, for the conveyor"[..],
            b"P8 is not a PNM type",
            b"PX",
        ] {
            assert!(
                matches!(decode(p(), text, l), Err(ImageError::Unrecognised { .. })),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        // A truncated TIFF is named as a TIFF problem, not as an unknown file.
        let tiff = encoded(
            &DynamicImage::ImageRgb8(RgbImage::new(40, 40)),
            ImageFormat::Tiff,
        );
        let err = decode(p(), &tiff[..tiff.len() / 3], l).unwrap_err();
        assert!(err.to_string().contains("TIFF"), "{err}");
    }

    #[test]
    fn empty_text_truncated_and_bomb_each_get_their_own_error() {
        let l = ImageLimits::default();
        assert!(matches!(decode(p(), b"", l), Err(ImageError::Empty { .. })));
        assert!(matches!(
            decode(p(), b"hello, I am text\n", l),
            Err(ImageError::Unrecognised { .. })
        ));
        let j = jpeg(64, 64);
        let err = decode(p(), &j[..j.len() / 2], l).unwrap_err();
        assert!(matches!(err, ImageError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
        let png = png(64, 64);
        let err = decode(p(), &png[..png.len() - 20], l).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::Truncated { .. } | ImageError::Corrupt { .. }
            ),
            "{err}"
        );
        let err = decode(p(), &png_header_claiming(30000, 30000), l).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooLarge {
                    width: 30000,
                    height: 30000,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("30000×30000"), "{err}");
    }

    /// `jpeg` with an EXIF APP1 segment holding the orientation tag.
    pub(crate) fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
        tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_be_bytes());
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // value padding, next IFD = 0
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn a_jpeg_with_bytes_after_its_end_marker_decodes_as_without_them() {
        // Phones (Samsung among them) append a trailer after the end-of-image marker.
        let j = jpeg(48, 32);
        let mut with_trailer = j.clone();
        with_trailer.extend_from_slice(b"SEFHtrailer written by the phone's camera app");
        with_trailer.extend(std::iter::repeat_n(0xAB_u8, 4096));
        let a = decode(p(), &j, ImageLimits::default()).unwrap();
        let b = decode(p(), &with_trailer, ImageLimits::default()).unwrap();
        assert_eq!(a.rgb, b.rgb);
    }

    #[test]
    fn exif_orientation_is_applied() {
        let rotated = with_exif_orientation(&jpeg(40, 20), 6);
        let d = decode(p(), &rotated, ImageLimits::default()).unwrap();
        assert_eq!(
            (d.rgb.width(), d.rgb.height()),
            (20, 40),
            "orientation 6 turns the image a quarter"
        );
        let upright = with_exif_orientation(&jpeg(40, 20), 1);
        let d = decode(p(), &upright, ImageLimits::default()).unwrap();
        assert_eq!((d.rgb.width(), d.rgb.height()), (40, 20));
    }

    #[test]
    fn the_memory_limit_is_enforced_below_the_size_limit() {
        let l = ImageLimits {
            max_width: 16384,
            max_height: 16384,
            max_alloc: 1000,
        };
        let err = decode(p(), &png(100, 100), l).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooMuchMemory { .. } | ImageError::TooLarge { .. }
            ),
            "{err}"
        );
    }
}
