//! How much memory this process has used: the peak resident set, for benchmarks
//! and the end-of-run summary.

/// Peak resident set size of this process in bytes (`VmHWM` in
/// `/proc/self/status`); `None` where the kernel does not say (not Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
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
