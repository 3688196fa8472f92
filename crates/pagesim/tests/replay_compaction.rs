//! Compaction in a replay (issue 14, item 4): a replayed movable
//! allocation is pagesim's own record, so compaction may move it, and the
//! trace's later free of it must then release the frame it moved to. A
//! trace built here fills a small machine with movable pages, frees every
//! other one (half of memory free, in single pages) and asks for order-4
//! movable blocks: without compaction they fail; with it they are served
//! by moving replayed pages, and every later free still finds its block
//! (no unknown-pfn, double or other free errors, nothing left allocated,
//! and the replay's final `check_invariants` passes, or it would exit
//! non-zero).

mod common;

use common::{assert_every_free_found, pagesim_json, TraceText};
use serde_json::Value;

/// Pages of movable order-0 memory the trace asks for: more than the
/// 64 MiB machine (16,384 pages, 4,096 of them DMA) can serve above its
/// watermarks, so the last ones fail (their frees are then ignored).
const FILL: u64 = 16_000;
/// Order-4 movable requests after the checkerboard.
const HUGE: u64 = 128;

fn trace() -> String {
    let mut t = TraceText::default();
    let movable = "migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP";
    (0..FILL).for_each(|i| t.alloc(0x10000 + i, 0, movable));
    (0..FILL).step_by(2).for_each(|i| t.free(0x10000 + i, 0));
    (0..HUGE).for_each(|i| t.alloc(0x80000 + 16 * i, 4, movable));
    (1..FILL).step_by(2).for_each(|i| t.free(0x10000 + i, 0));
    (0..HUGE).for_each(|i| t.free(0x80000 + 16 * i, 4));
    t.text
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn replayed_pages_moved_by_compaction_are_freed_where_they_went() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkerboard.trace");
    std::fs::write(&path, trace()).unwrap();
    let path = path.to_str().unwrap();
    let on = pagesim_json(&["replay", path, "--mem", "64M"]);
    let off = pagesim_json(&["replay", path, "--mem", "64M", "--no-compaction"]);

    let failures = |doc: &Value| u(&doc["policies"][0]["counts"]["alloc_failures"][4]);
    assert!(
        failures(&off) > HUGE / 2,
        "without compaction most order-4 requests fail: {}",
        failures(&off)
    );
    assert_eq!(
        failures(&on),
        0,
        "with compaction every order-4 request is served"
    );

    let e = &on["policies"][0]["engine"];
    assert!(u(&e["pgmigrate_success"]) > 0);
    assert!(u(&e["compact_stall"]) + u(&e["compact_daemon_wake"]) > 0);
    assert_eq!(u(&off["policies"][0]["engine"]["pgmigrate_success"]), 0);

    assert_every_free_found(&on);
    assert_every_free_found(&off);
}
