//! Placeholder replaced by the buddy benchmarks.
fn main() {}
