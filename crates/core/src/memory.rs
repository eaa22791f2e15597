//! How freed memory is kept for reuse.
//!
//! libtorch's CPU tensors come from glibc's `malloc`, which serves every block above a threshold
//! (32 MB at most) with a fresh `mmap` and gives it back on `free`. A forward pass allocates and
//! frees feature maps of that size all the time (ResNet-50, batch 32: 100 MB per map), so by
//! default each one is new pages the kernel must fault in and zero. Keeping freed memory in the
//! heap instead lets the next batch reuse it: forward passes at batch 32 on the 2-core bench
//! machine went from 18.8 to 35.5 images/s (ResNet-50) and from 18.4 to 49.3 (DenseNet-201 to
//! denseblock2). The memory goes back to the system between jobs ([`release`]), so an idle
//! prompt does not hold it.
//!
//! `PATHOLAB_SYSTEM_MALLOC=1` leaves glibc's defaults alone. Elsewhere than Linux/glibc these
//! functions do nothing.

/// Keeps freed blocks in the heap for reuse (no `mmap` per large block, no trimming).
pub fn keep_freed_memory() {
    if std::env::var_os("PATHOLAB_SYSTEM_MALLOC").is_some_and(|v| v != "0") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Returns the heap's free pages to the system (after an extraction, a fine-tuning epoch, an
/// ET-FL forest, a statement at the prompt).
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases pages malloc holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A zeroed buffer of `dims[0] × dims[1] × …` values, or an error saying that `what` needs more
/// memory than can be had: a failed allocation aborts the process, this is a message instead.
pub fn zeroed<T: Clone + Default>(dims: &[usize], what: &str) -> crate::Result<Vec<T>> {
    let shape = dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" × ");
    let too_much = |bytes: String| {
        crate::error::Error::Invalid(format!(
            "{what}: {shape} values ({bytes}) is more memory than can be had"
        ))
    };
    let n = dims
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .ok_or_else(|| too_much("beyond 2^64 bytes".into()))?;
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        too_much(format!(
            "{:.1} GB",
            n as f64 * std::mem::size_of::<T>() as f64 / 1e9
        ))
    })?;
    v.resize(n, T::default());
    Ok(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_impossible_buffer_is_an_error_not_an_abort() {
        assert_eq!(super::zeroed::<f32>(&[2, 3], "x").unwrap(), vec![0.0; 6]);
        let e = super::zeroed::<f32>(&[1 << 40, 1 << 30], "subwindows")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("subwindows: 1099511627776 × 1073741824 values (beyond"),
            "{e}"
        );
        let e = super::zeroed::<f32>(&[1 << 50], "subwindows")
            .unwrap_err()
            .to_string();
        assert!(e.contains("GB) is more memory than can be had"), "{e}");
    }
}
