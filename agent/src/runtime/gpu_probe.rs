//! What the TensorRT engine cache key needs to know about this machine and ONNX Runtime cannot tell:
//! the TensorRT library's version and the GPU (name and compute capability). Both are asked of the
//! libraries themselves (`getInferLibVersion` in libnvinfer, the CUDA driver API in libcuda), loaded
//! with `dlopen` by the same sonames ONNX Runtime's providers load, so the answer is about the
//! libraries that will build the engine. On a machine without them each answer is `None`.
//!
//! The decoding of what they return is pure and tested here; the probing itself only runs where an
//! NVIDIA driver and TensorRT are installed.

use std::ffi::{c_char, c_int};
use std::sync::OnceLock;

/// The sonames tried for TensorRT, newest first (ONNX Runtime 1.31's provider links TensorRT 10).
const NVINFER: &[&str] = &["libnvinfer.so.10", "libnvinfer.so"];
/// The CUDA driver library (present wherever an NVIDIA driver is, Jetson included).
const CUDA: &[&str] = &["libcuda.so.1", "libcuda.so"];

/// `CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR` / `_MINOR` of the CUDA driver API.
const CC_MAJOR: c_int = 75;
const CC_MINOR: c_int = 76;

/// TensorRT's version as `major.minor.patch`, from `getInferLibVersion()`: TensorRT 10 encodes it as
/// `major·10000 + minor·100 + patch`, earlier releases as `major·1000 + minor·100 + patch`.
pub fn decode_tensorrt_version(v: i32) -> Option<String> {
    if v <= 0 {
        return None;
    }
    let (major, rest) = if v >= 100_000 {
        (v / 10_000, v % 10_000)
    } else {
        (v / 1_000, v % 1_000)
    };
    Some(format!("{major}.{}.{}", rest / 100, rest % 100))
}

/// The GPU as the engine cache key names it: `"<name> sm_<major><minor>"`. `name` is the driver's
/// NUL-terminated buffer.
pub fn gpu_label(name: &[u8], major: i32, minor: i32) -> Option<String> {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let name = String::from_utf8_lossy(&name[..end]).trim().to_string();
    if name.is_empty() || major <= 0 || minor < 0 {
        return None;
    }
    Some(format!("{name} sm_{major}{minor}"))
}

/// The loaded TensorRT's version (probed once per process).
pub fn tensorrt_version() -> Option<String> {
    static CACHE: OnceLock<Option<String>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let lib = open_first(NVINFER)?;
            // SAFETY: `getInferLibVersion` is `int32_t getInferLibVersion() noexcept` in every
            // TensorRT release; it takes nothing and only returns a constant.
            let v = unsafe {
                let f: libloading::Symbol<unsafe extern "C" fn() -> i32> =
                    lib.get(b"getInferLibVersion\0").ok()?;
                f()
            };
            decode_tensorrt_version(v)
        })
        .clone()
}

/// The GPU `device_id` as `"<name> sm_<cc>"` (probed once per device and process).
pub fn gpu(device_id: u32) -> Option<String> {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<u32, Option<String>>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(device_id)
        .or_insert_with(|| probe_gpu(device_id))
        .clone()
}

fn probe_gpu(device_id: u32) -> Option<String> {
    let lib = open_first(CUDA)?;
    let ordinal = c_int::try_from(device_id).ok()?;
    // SAFETY: the CUDA driver API's C signatures, stable since CUDA 2: `CUresult cuInit(unsigned)`,
    // `cuDeviceGet(CUdevice*, int)`, `cuDeviceGetName(char*, int, CUdevice)`,
    // `cuDeviceGetAttribute(int*, CUdevice_attribute, CUdevice)`; CUdevice is an int, CUresult an enum
    // (0 = success). Every out-pointer points at a live local of the right size.
    unsafe {
        type Init = unsafe extern "C" fn(u32) -> c_int;
        type Get = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
        type Name = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
        type Attr = unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int;
        let init: libloading::Symbol<Init> = lib.get(b"cuInit\0").ok()?;
        let get: libloading::Symbol<Get> = lib.get(b"cuDeviceGet\0").ok()?;
        let name: libloading::Symbol<Name> = lib.get(b"cuDeviceGetName\0").ok()?;
        let attr: libloading::Symbol<Attr> = lib.get(b"cuDeviceGetAttribute\0").ok()?;
        if init(0) != 0 {
            return None;
        }
        let mut dev: c_int = 0;
        if get(&mut dev, ordinal) != 0 {
            return None;
        }
        let mut buf = [0u8; 256];
        if name(buf.as_mut_ptr().cast(), buf.len() as c_int, dev) != 0 {
            return None;
        }
        let (mut major, mut minor): (c_int, c_int) = (0, 0);
        if attr(&mut major, CC_MAJOR, dev) != 0 || attr(&mut minor, CC_MINOR, dev) != 0 {
            return None;
        }
        gpu_label(&buf, major, minor)
    }
}

/// The first of `names` that loads. Libraries stay loaded for the process (ONNX Runtime's providers
/// load the same ones), so the handle is leaked on purpose.
fn open_first(names: &[&str]) -> Option<&'static libloading::Library> {
    names.iter().find_map(|n| {
        // SAFETY: loading a vendor library runs its initialisers; these are the libraries ONNX
        // Runtime's CUDA and TensorRT providers load into this process anyway.
        unsafe { libloading::Library::new(*n) }
            .ok()
            .map(|lib| &*Box::leak(Box::new(lib)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensorrt_versions_decode_in_both_encodings() {
        assert_eq!(decode_tensorrt_version(100_900).as_deref(), Some("10.9.0"));
        assert_eq!(decode_tensorrt_version(101_302).as_deref(), Some("10.13.2"));
        assert_eq!(decode_tensorrt_version(8_601).as_deref(), Some("8.6.1"));
        assert_eq!(decode_tensorrt_version(0), None);
        assert_eq!(decode_tensorrt_version(-1), None);
    }

    #[test]
    fn the_gpu_label_is_the_name_up_to_its_nul_and_the_compute_capability() {
        let mut buf = [0u8; 32];
        buf[..11].copy_from_slice(b"NVIDIA H200");
        assert_eq!(gpu_label(&buf, 9, 0).as_deref(), Some("NVIDIA H200 sm_90"));
        assert_eq!(gpu_label(b"Orin", 8, 7).as_deref(), Some("Orin sm_87"));
        assert_eq!(gpu_label(&[0u8; 8], 8, 7), None);
        assert_eq!(gpu_label(b"X", 0, 0), None);
    }

    #[test]
    fn a_machine_without_nvidia_libraries_answers_none_not_an_error() {
        // On a CPU box (CI) there is no libcuda or libnvinfer; where they exist the answers must be
        // well formed.
        match gpu(0) {
            None => {}
            Some(g) => assert!(g.contains(" sm_"), "{g}"),
        }
        match tensorrt_version() {
            None => {}
            Some(v) => assert_eq!(v.split('.').count(), 3, "{v}"),
        }
    }
}
