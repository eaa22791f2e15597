//! Mixed precision through libtorch's own autocast, on the CPU (bf16, fp16) and on CUDA (bf16, fp16):
//! convolutions and matrix products run in the low precision, the ops autocast keeps in fp32 stay there,
//! and the caller reduces tap outputs in fp32. This is exactly what `torch.autocast(device, dtype)` does
//! in Python, so a Python peer is measured "the same way".
//!
//! tch 0.24 only reaches the CUDA autocast switch (`tch::autocast`), so the per-device switches of
//! libtorch (`at::autocast::set_autocast_enabled(DeviceType, bool)` and friends) are declared here by
//! their C++ symbol names. libtorch is pinned (2.11.0, see Cargo.toml), its symbols are checked at link
//! time, and every argument is a `bool` or a one-byte enum, which the C++ ABI passes as C does.

use tch::Device;

crate::choice! {
    /// The precision of a network's convolutions and matrix products.
    pub enum Precision {
        /// Full precision (the default, and the paper's).
        Fp32 = "fp32",
        /// bfloat16 autocast: fp32's range, 8 bits of mantissa; fast on CPUs with AVX-512 BF16 and on GPUs.
        Bf16 = "bf16",
        /// float16 autocast: for GPUs (on the CPU it runs, slowly).
        Fp16 = "fp16",
    }
}

impl Precision {
    /// libtorch's `c10::ScalarType` code of the low precision, `None` for fp32.
    fn scalar_type(self) -> Option<i8> {
        match self {
            Precision::Fp32 => None,
            Precision::Fp16 => Some(5),
            Precision::Bf16 => Some(15),
        }
    }

    /// A short text for cache keys: empty for fp32, so that fp32 keys stay as they were.
    pub fn key(self) -> &'static str {
        match self {
            Precision::Fp32 => "",
            Precision::Bf16 => "|bf16",
            Precision::Fp16 => "|fp16",
        }
    }
}

mod ffi {
    extern "C" {
        #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
        pub fn set_enabled(device: i8, enabled: bool);
        #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
        pub fn is_enabled(device: i8) -> bool;
        #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
        pub fn set_dtype(device: i8, dtype: i8);
        #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
        pub fn get_dtype(device: i8) -> i8;
        #[link_name = "_ZN2at8autocast17increment_nestingEv"]
        pub fn increment_nesting() -> i32;
        #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
        pub fn decrement_nesting() -> i32;
        #[link_name = "_ZN2at8autocast11clear_cacheEv"]
        pub fn clear_cache();
    }
}

/// Restores the thread's autocast state when the region ends, also by a panic.
struct Region {
    device: i8,
    was_enabled: bool,
    was_dtype: i8,
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: plain calls into libtorch's thread-local autocast state (see the module comment).
        unsafe {
            if ffi::decrement_nesting() == 0 {
                ffi::clear_cache();
            }
            ffi::set_enabled(self.device, self.was_enabled);
            ffi::set_dtype(self.device, self.was_dtype);
        }
    }
}

/// Runs `f` with autocast to `precision` on `device` (on this thread), as `torch.autocast` does.
pub fn autocast<T>(device: Device, precision: Precision, f: impl FnOnce() -> T) -> T {
    let Some(dtype) = precision.scalar_type() else {
        return f();
    };
    let device = if device.is_cuda() { 1 } else { 0 };
    // SAFETY: as in `Region::drop`.
    let _region = unsafe {
        let region = Region {
            device,
            was_enabled: ffi::is_enabled(device),
            was_dtype: ffi::get_dtype(device),
        };
        ffi::set_enabled(device, true);
        ffi::set_dtype(device, dtype);
        ffi::increment_nesting();
        region
    };
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn matmuls_run_in_the_asked_precision_and_the_state_is_restored() {
        let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([8, 3], (Kind::Float, Device::Cpu));
        assert_eq!(
            autocast(Device::Cpu, Precision::Bf16, || a.matmul(&b)).kind(),
            Kind::BFloat16
        );
        assert_eq!(
            autocast(Device::Cpu, Precision::Fp16, || a.matmul(&b)).kind(),
            Kind::Half
        );
        assert_eq!(
            autocast(Device::Cpu, Precision::Fp32, || a.matmul(&b)).kind(),
            Kind::Float
        );
        // Outside the region, and after a panic inside one, fp32 again.
        assert_eq!(a.matmul(&b).kind(), Kind::Float);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            autocast(Device::Cpu, Precision::Bf16, || panic!("inside"))
        }));
        assert_eq!(a.matmul(&b).kind(), Kind::Float);
        // Nested regions keep the outer one's precision when they end.
        autocast(Device::Cpu, Precision::Bf16, || {
            autocast(Device::Cpu, Precision::Fp16, || ());
            assert_eq!(a.matmul(&b).kind(), Kind::BFloat16);
        });
    }
}
