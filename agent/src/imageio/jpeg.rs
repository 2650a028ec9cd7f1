//! JPEG pixels through libjpeg-turbo's TurboJPEG API (the system `libturbojpeg`, Debian package
//! `libturbojpeg0-dev` to build, `libturbojpeg0` to run).
//!
//! Why not a pure-Rust decoder: JPEG decoders differ in their inverse DCT and chroma upsampling, by a
//! few levels on a sixth of the pixels, and that moves boxes by more than a pixel. OpenCV (which the
//! YOLOv5 reference reads images with) and Pillow both use libjpeg-turbo with its accurate integer DCT
//! and smooth upsampling; so do we, and the pixels are bit-identical. Headers, limits and the EXIF
//! orientation are handled by the caller; this file only turns a complete JPEG into RGB8.

use std::ffi::{c_char, c_int, c_uchar, c_ulong, c_void, CStr};

#[link(name = "turbojpeg")]
extern "C" {
    fn tjInitDecompress() -> *mut c_void;
    fn tjDecompressHeader3(
        handle: *mut c_void,
        jpeg_buf: *const c_uchar,
        jpeg_size: c_ulong,
        width: *mut c_int,
        height: *mut c_int,
        jpeg_subsamp: *mut c_int,
        jpeg_colorspace: *mut c_int,
    ) -> c_int;
    fn tjDecompress2(
        handle: *mut c_void,
        jpeg_buf: *const c_uchar,
        jpeg_size: c_ulong,
        dst_buf: *mut c_uchar,
        width: c_int,
        pitch: c_int,
        height: c_int,
        pixel_format: c_int,
        flags: c_int,
    ) -> c_int;
    fn tjGetErrorStr2(handle: *mut c_void) -> *mut c_char;
    fn tjGetErrorCode(handle: *mut c_void) -> c_int;
    fn tjDestroy(handle: *mut c_void) -> c_int;
}

const TJPF_RGB: c_int = 0;
const TJERR_WARNING: c_int = 0;

/// A TurboJPEG decompressor, destroyed on drop.
struct Handle(*mut c_void);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tjInitDecompress and is destroyed once.
        unsafe { tjDestroy(self.0) };
    }
}

impl Handle {
    fn new() -> Result<Handle, String> {
        // SAFETY: no arguments; a null return is checked.
        let h = unsafe { tjInitDecompress() };
        if h.is_null() {
            Err("libturbojpeg could not create a decompressor".into())
        } else {
            Ok(Handle(h))
        }
    }

    fn error(&self) -> String {
        // SAFETY: the handle is valid; the library returns a NUL-terminated string it owns.
        unsafe { CStr::from_ptr(tjGetErrorStr2(self.0)) }
            .to_string_lossy()
            .into_owned()
    }
}

/// TurboJPEG's colour spaces that it cannot turn into RGB (CMYK and YCCK, from print workflows).
const TJCS_CMYK: c_int = 3;
const TJCS_YCCK: c_int = 4;

/// The size the JPEG header declares, and whether TurboJPEG can decode it to RGB.
pub fn header(jpeg: &[u8]) -> Result<(u32, u32, bool), String> {
    let h = Handle::new()?;
    let (mut w, mut ht, mut ss, mut cs) = (0, 0, 0, 0);
    // SAFETY: valid handle, buffer and length from one slice, out-pointers to locals.
    let r = unsafe {
        tjDecompressHeader3(
            h.0,
            jpeg.as_ptr(),
            jpeg.len() as c_ulong,
            &mut w,
            &mut ht,
            &mut ss,
            &mut cs,
        )
    };
    if r != 0 {
        return Err(h.error());
    }
    Ok((w as u32, ht as u32, cs != TJCS_CMYK && cs != TJCS_YCCK))
}

/// How a strict decode failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// libjpeg could not decode at all.
    Fatal(String),
    /// libjpeg decoded, but warned that the data is damaged (a file cut short, bytes missing between
    /// markers): part of the picture is made up.
    Warning(String),
}

/// Decodes a whole JPEG to packed RGB8 and refuses a picture that libjpeg had to patch up: its own
/// warning decides, so a file cut short is refused while bytes appended after the end-of-image marker
/// (phones write trailers there), which libjpeg never reads, are fine.
pub fn decode_rgb_strict(jpeg: &[u8], width: u32, height: u32) -> Result<Vec<u8>, Damage> {
    let mut out = Vec::new();
    decompress(jpeg, width, height, &mut out)?;
    Ok(out)
}

/// Decodes a whole JPEG of the given size (from [`header`]) to packed RGB8 into `out`, resized to
/// width × height × 3 and reusing its allocation (a camera decodes every frame into a recycled buffer).
/// Warnings are not errors here (a camera's MJPEG frame with a few damaged bytes is still a frame);
/// fatal errors are. On an error `out` holds no meaningful pixels.
pub fn decode_rgb_into(
    jpeg: &[u8],
    width: u32,
    height: u32,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match decompress(jpeg, width, height, out) {
        Ok(()) | Err(Damage::Warning(_)) => Ok(()),
        Err(Damage::Fatal(message)) => Err(message),
    }
}

/// One TurboJPEG decompression into `out` (resized to fit), telling warnings from fatal errors.
fn decompress(jpeg: &[u8], width: u32, height: u32, out: &mut Vec<u8>) -> Result<(), Damage> {
    let h = Handle::new().map_err(Damage::Fatal)?;
    out.resize(width as usize * height as usize * 3, 0);
    // SAFETY: `out` holds exactly width × height × 3 bytes, which is what TJPF_RGB with pitch 0
    // (= width × 3) and this width and height write; the input pointer and length come from one slice.
    let r = unsafe {
        tjDecompress2(
            h.0,
            jpeg.as_ptr(),
            jpeg.len() as c_ulong,
            out.as_mut_ptr(),
            width as c_int,
            0,
            height as c_int,
            TJPF_RGB,
            0,
        )
    };
    if r == 0 {
        return Ok(());
    }
    // SAFETY: valid handle.
    Err(if unsafe { tjGetErrorCode(h.0) } == TJERR_WARNING {
        Damage::Warning(h.error())
    } else {
        Damage::Fatal(h.error())
    })
}
