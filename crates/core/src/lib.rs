//! patholab's core: deep transfer learning on pathology images as a Rust library, complete
//! without any script engine. Each folder is one room of the study, in layering order (a room
//! imports only rooms before it; `tests/compute/architecture.rs` checks it): base (error, options, rng,
//! progress, memory, cancel) → slide → nets → data → features → learn → eval → finetune, baseline
//! → plot → cluster. See docs/design.md.

pub mod baseline;
pub mod cancel;
pub mod cluster;
pub mod data;
pub mod error;
pub mod eval;
pub mod features;
pub mod finetune;
pub mod input;
pub mod learn;
pub mod memory;
pub mod nets;
pub mod options;
pub mod plot;
pub mod progress;
pub mod rng;
pub mod slide;

pub use error::{Error, Result};

/// The libtorch this build linked against (`torch.__version__` of the wheel).
pub const LIBTORCH_VERSION: &str = env!("PATHOLAB_LIBTORCH_VERSION");

/// The source tree this build came from (the workspace root): where the demo data, the
/// project-local `.venv` and the examples are found when run from a checkout.
pub const SOURCE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// patholab's cache root: `~/.cache/patholab` (or `$XDG_CACHE_HOME/patholab`).
pub fn home_cache() -> std::path::PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        return std::path::PathBuf::from(x).join("patholab");
    }
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/patholab")
}

/// Writes `bytes` beside `path` and renames them into place, so a reader (or a run resumed after
/// a kill) sees the old file or the whole new one, never a part.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use error::Context;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

/// Parses `"cpu"`, `"cuda"` or `"cuda:N"`; a CUDA device must exist.
pub fn parse_device(s: &str) -> Result<tch::Device> {
    let n = match s {
        "cpu" => return Ok(tch::Device::Cpu),
        "cuda" => 0,
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::Invalid(format!("unknown device {s:?} (cpu, cuda, cuda:N)")))?,
    };
    let count = cuda_devices().map_err(|why| {
        Error::Invalid(format!(
            "device {s:?}: CUDA is not available ({why}; a program using the library calls \
                 patholab_core::load_cuda() before anything else touches libtorch)"
        ))
    })?;
    if n >= count {
        return Err(Error::Invalid(format!(
            "device {s:?}: this machine has {count} CUDA device(s)"
        )));
    }
    Ok(tch::Device::Cuda(n))
}

/// The number of CUDA devices, or why there are none. The binary links only libtorch's CPU
/// library, so CUDA's kernels register when `libtorch_cuda.so` is loaded ([`load_cuda`]), only
/// where an NVIDIA driver is present (machines without one pay nothing).
pub fn cuda_devices() -> std::result::Result<usize, String> {
    static STATE: std::sync::OnceLock<std::result::Result<usize, String>> =
        std::sync::OnceLock::new();
    STATE
        .get_or_init(|| {
            load_cuda()?;
            match tch::Cuda::device_count() {
                0 => Err("libtorch sees no CUDA device".into()),
                n => {
                    // "fp32" means fp32: cuDNN would otherwise run fp32 convolutions in TF32
                    // (libtorch's default), 1e-3 away from the CPU's features.
                    // SAFETY: libtorch's global context lives for the process; the member
                    // function takes it as its first argument (Itanium C++ ABI) and a bool.
                    unsafe { tf32::set_allow_cudnn(tf32::global_context(), false) };
                    Ok(n as usize)
                }
            }
        })
        .clone()
}

/// Loads `libtorch_cuda.so` where an NVIDIA driver is present. It must come before libtorch's
/// first use: libtorch looks its CUDA hooks up once (seeding the random generators does) and
/// keeps the CPU-only answer for the life of the process. `main` calls it first thing.
pub fn load_cuda() -> std::result::Result<(), String> {
    static STATE: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    STATE
        .get_or_init(|| {
            let driver = ["/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0"];
            if !driver.iter().any(|p| std::path::Path::new(p).exists()) {
                return Err("no NVIDIA driver on this machine".into());
            }
            // SAFETY: dlopen with a valid C string; the handle is kept for the life of the process
            // (libtorch's CUDA kernels stay registered).
            let h = unsafe {
                libc::dlopen(
                    c"libtorch_cuda.so".as_ptr(),
                    libc::RTLD_NOW | libc::RTLD_GLOBAL,
                )
            };
            if h.is_null() {
                return Err(format!(
                    "libtorch_cuda.so did not load: {}",
                    dl_error("unknown error")
                ));
            }
            Ok(())
        })
        .clone()
}

/// Why the last `dlopen` on this thread failed (`otherwise` when the loader says nothing).
pub fn dl_error(otherwise: &str) -> String {
    // SAFETY: dlerror returns null or a thread-local C string valid until the next dl call.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            otherwise.to_string()
        } else {
            std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

/// libtorch's switch for TF32 in cuDNN, by its C++ symbol names (libtorch is pinned, the symbols
/// are checked at link time; see nets/precision.rs for the same approach to autocast).
mod tf32 {
    extern "C" {
        #[link_name = "_ZN2at13globalContextEv"]
        pub fn global_context() -> *mut std::ffi::c_void;
        #[link_name = "_ZN2at7Context17setAllowTF32CuDNNEb"]
        pub fn set_allow_cudnn(context: *mut std::ffi::c_void, allow: bool);
    }
}
