//! OpenSlide 4.0.1 loaded at run time (the `openslide-bin` wheel's `libopenslide.so.1`): the few C
//! functions patholab calls, declared by hand (the wheel ships no header), resolved once per process.
//!
//! Where the library is looked for, in order: `$PATHOLAB_OPENSLIDE` (a file), the project's
//! `.venv` (the site-packages path baked in at build time, beside libtorch), then the system's
//! `libopenslide.so.1`. A failure names every place tried and `scripts/setup` as the fix.

use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::OnceLock;

type Handle = *mut c_void;

/// The resolved C functions of libopenslide.
pub struct Library {
    pub origin: String,
    pub open: unsafe extern "C" fn(*const c_char) -> Handle,
    pub close: unsafe extern "C" fn(Handle),
    pub get_error: unsafe extern "C" fn(Handle) -> *const c_char,
    pub level_count: unsafe extern "C" fn(Handle) -> i32,
    pub level_dimensions: unsafe extern "C" fn(Handle, i32, *mut i64, *mut i64),
    pub level_downsample: unsafe extern "C" fn(Handle, i32) -> f64,
    pub read_region: unsafe extern "C" fn(Handle, *mut u32, i64, i64, i32, i64, i64),
    pub property_names: unsafe extern "C" fn(Handle) -> *const *const c_char,
    pub property_value: unsafe extern "C" fn(Handle, *const c_char) -> *const c_char,
    pub associated_names: unsafe extern "C" fn(Handle) -> *const *const c_char,
    pub associated_dimensions: unsafe extern "C" fn(Handle, *const c_char, *mut i64, *mut i64),
    pub read_associated: unsafe extern "C" fn(Handle, *const c_char, *mut u32),
    pub detect_vendor: unsafe extern "C" fn(*const c_char) -> *const c_char,
    pub version: unsafe extern "C" fn() -> *const c_char,
}

/// The site-packages folder of the Python that built patholab (set by build.rs), if any.
const BUILD_SITE_PACKAGES: Option<&str> = option_env!("PATHOLAB_SITE_PACKAGES");

/// The candidate library files, in search order, each with where it came from.
pub fn candidates() -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("PATHOLAB_OPENSLIDE") {
        out.push((
            p.to_string_lossy().into_owned(),
            "$PATHOLAB_OPENSLIDE".into(),
        ));
    }
    if let Some(sp) = BUILD_SITE_PACKAGES {
        out.push((
            format!("{sp}/openslide_bin/libopenslide.so.1"),
            "the project's .venv (openslide-bin)".into(),
        ));
    }
    out.push(("libopenslide.so.1".into(), "the system library path".into()));
    out
}

/// The library, loaded on first use; the error lists every place tried.
pub fn library() -> Result<&'static Library, String> {
    static LIB: OnceLock<Result<Library, String>> = OnceLock::new();
    LIB.get_or_init(load).as_ref().map_err(|e| e.clone())
}

fn load() -> Result<Library, String> {
    let mut tried = Vec::new();
    for (file, from) in candidates() {
        let c = CString::new(file.clone()).map_err(|_| format!("bad library path {file:?}"))?;
        // SAFETY: dlopen with a valid C string; the handle is kept for the life of the process.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if h.is_null() {
            let why = crate::dl_error("not found");
            tried.push(format!("  {file} ({from}): {why}"));
            continue;
        }
        return resolve(h, format!("{file} ({from})"));
    }
    Err(format!(
        "OpenSlide 4.0.1 (libopenslide.so.1) not found; tried:\n{}\nrun scripts/setup (it installs the openslide-bin wheel into .venv) \
         or set PATHOLAB_OPENSLIDE to a libopenslide.so.1",
        tried.join("\n")
    ))
}

fn resolve(h: *mut c_void, origin: String) -> Result<Library, String> {
    let sym = |name: &str| -> Result<*mut c_void, String> {
        let c = CString::new(name).unwrap();
        // SAFETY: h is a live dlopen handle; the name is a valid C string.
        let p = unsafe { libc::dlsym(h, c.as_ptr()) };
        if p.is_null() {
            Err(format!("{origin}: no symbol {name} (need OpenSlide ≥ 4.0)"))
        } else {
            Ok(p)
        }
    };
    // SAFETY: each symbol is transmuted to the signature of the OpenSlide 4.0 C API (openslide.h).
    unsafe {
        Ok(Library {
            open: std::mem::transmute::<*mut c_void, _>(sym("openslide_open")?),
            close: std::mem::transmute::<*mut c_void, _>(sym("openslide_close")?),
            get_error: std::mem::transmute::<*mut c_void, _>(sym("openslide_get_error")?),
            level_count: std::mem::transmute::<*mut c_void, _>(sym("openslide_get_level_count")?),
            level_dimensions: std::mem::transmute::<*mut c_void, _>(sym(
                "openslide_get_level_dimensions",
            )?),
            level_downsample: std::mem::transmute::<*mut c_void, _>(sym(
                "openslide_get_level_downsample",
            )?),
            read_region: std::mem::transmute::<*mut c_void, _>(sym("openslide_read_region")?),
            property_names: std::mem::transmute::<*mut c_void, _>(sym(
                "openslide_get_property_names",
            )?),
            property_value: std::mem::transmute::<*mut c_void, _>(sym(
                "openslide_get_property_value",
            )?),
            associated_names: std::mem::transmute::<*mut c_void, _>(sym(
                "openslide_get_associated_image_names",
            )?),
            associated_dimensions: std::mem::transmute::<*mut c_void, _>(sym(
                "openslide_get_associated_image_dimensions",
            )?),
            read_associated: std::mem::transmute::<*mut c_void, _>(sym(
                "openslide_read_associated_image",
            )?),
            detect_vendor: std::mem::transmute::<*mut c_void, _>(sym("openslide_detect_vendor")?),
            version: std::mem::transmute::<*mut c_void, _>(sym("openslide_get_version")?),
            origin,
        })
    }
}

/// A C string owned by OpenSlide, copied out (null is None).
pub fn text(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: OpenSlide returns NUL-terminated strings valid while the handle lives.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// A NULL-terminated array of C strings, copied out.
pub fn text_list(mut p: *const *const c_char) -> Vec<String> {
    let mut out = Vec::new();
    if p.is_null() {
        return out;
    }
    // SAFETY: OpenSlide's name lists end with a null pointer.
    unsafe {
        while !(*p).is_null() {
            out.extend(text(*p));
            p = p.add(1);
        }
    }
    out
}

/// OpenSlide's premultiplied ARGB (native-endian u32) to straight RGBA bytes, exactly as
/// openslide-python's `_convert.argb2rgba` does (integer division; a pixel with alpha 0 keeps its
/// word, byte-swapped, which for premultiplied data is all zeros).
pub fn argb_to_rgba(buf: &[u32], out: &mut Vec<u8>) {
    out.clear();
    out.resize(buf.len() * 4, 0);
    for (v, o) in buf.iter().zip(out.chunks_exact_mut(4)) {
        o.copy_from_slice(&straight(*v));
    }
}

/// One premultiplied ARGB pixel as straight RGBA bytes (openslide-python's conversion).
pub fn straight(v: u32) -> [u8; 4] {
    let a = v >> 24;
    let (r, g, b) = ((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
    match a {
        0 => v.to_be_bytes(),
        255 => [r as u8, g as u8, b as u8, 255],
        _ => [
            (255 * r / a) as u8,
            (255 * g / a) as u8,
            (255 * b / a) as u8,
            a as u8,
        ],
    }
}
