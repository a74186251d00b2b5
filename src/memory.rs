//! How much memory this process has used: the peak resident set, for benchmarks
//! and the end-of-run summary.

/// Peak resident set size of this process in bytes (`VmHWM` in
/// `/proc/self/status`); `None` where the kernel does not say (not Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// Resident set size of this process now, in bytes (`VmRSS`).
pub fn rss_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// Starts the peak over from the resident set now (`5` into
/// `/proc/self/clear_refs`), so that [`peak_rss_bytes`] measures one phase of a
/// run; false where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Hands memory the allocator holds free back to the system (glibc's
/// `malloc_trim`). glibc keeps freed large blocks in its heaps, and after reading
/// many chunk-sized buffers one after another the resident set grows with them;
/// a pass that reads a bank from disk a chunk at a time calls this after each
/// chunk to stay within its bound. Elsewhere, nothing.
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.trim_start_matches(key).trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_peak_grows_with_an_allocation_that_is_touched() {
        let Some(before) = super::peak_rss_bytes() else { return };
        let block = vec![1u8; 64 << 20];
        let touched: u64 = block.iter().step_by(4096).map(|&b| b as u64).sum();
        let after = super::peak_rss_bytes().expect("read once, reads again");
        assert_eq!(touched, (64 << 20) / 4096);
        assert!(after >= before + (60 << 20), "peak {before} → {after} after touching 64 MiB");
    }
}
