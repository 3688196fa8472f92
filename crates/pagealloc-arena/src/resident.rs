//! How much memory the process holds, as the kernel counts it: the measure
//! of whether discarding gave anything back.

use std::io;

/// The process's resident set in bytes: the second field of
/// `/proc/self/statm` (resident pages, anonymous, file and shared alike)
/// times the page size. Cheap: one small read.
pub fn resident_bytes() -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| malformed("/proc/self/statm"))?;
    Ok(pages * rustix::param::page_size() as u64)
}

/// Bytes of the process given `MADV_FREE` that the kernel has not dropped
/// yet: the `LazyFree` line of `/proc/self/smaps_rollup` (Linux 4.14+).
/// They still count in [`resident_bytes`] until the kernel needs them.
/// Costs a walk of the process's mappings in the kernel.
pub fn lazy_free_bytes() -> io::Result<u64> {
    const PATH: &str = "/proc/self/smaps_rollup";
    let rollup = std::fs::read_to_string(PATH)?;
    let kib: u64 = rollup
        .lines()
        .find_map(|line| line.strip_prefix("LazyFree:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| malformed(PATH))?;
    Ok(kib * 1024)
}

/// The error for a `/proc` file that does not read as documented.
fn malformed(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{path} is not in the expected format"),
    )
}
