//! Confinement's evacuation in a replay: a trace built here fills a small
//! machine with movable pages, frees every other one (no pageblock wholly
//! free), then asks for unmovable pages. Under the `confined` policy with
//! compaction on (the replay's migrator at hand) the area grows by
//! emptying movable pageblocks, and the trace's later frees of the moved
//! pages still find them (no unknown-pfn, double or other free errors,
//! nothing left allocated, and the final `check_invariants` passes, or the
//! replay would exit non-zero); without compaction there is no migrator and
//! Linux's fallback places them among movable pages. The `packed` policy
//! (small-order packing) empties pageblocks for its unmovable pages the
//! same way.

mod common;

use common::{assert_every_free_found, pagesim_json, TraceText};
use serde_json::Value;

/// Movable order-0 pages: more than the 64 MiB machine serves above its
/// watermarks, so the last ones fail (their frees are then ignored).
const FILL: u64 = 16_000;
/// Unmovable order-0 pages after the checkerboard: four pageblocks.
const KERNEL: u64 = 2048;

fn trace() -> String {
    let mut t = TraceText::default();
    let movable = "migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE";
    let kernel = "migratetype=0 gfp_flags=GFP_KERNEL";
    (0..FILL).for_each(|i| t.alloc(0x10000 + i, 0, movable));
    (0..FILL).step_by(2).for_each(|i| t.free(0x10000 + i, 0));
    (0..KERNEL).for_each(|i| t.alloc(0x80000 + i, 0, kernel));
    (1..FILL).step_by(2).for_each(|i| t.free(0x10000 + i, 0));
    (0..KERNEL).for_each(|i| t.free(0x80000 + i, 0));
    t.text
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The replay of the checkerboard trace under `policy`, with compaction on
/// and off, as JSON documents.
fn replays(policy: &str) -> (Value, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkerboard.trace");
    std::fs::write(&path, trace()).unwrap();
    let path = path.to_str().unwrap();
    // One census sample, at the end: kcompactd runs at each sample, and
    // one between the checkerboard and the kernel pages would make free
    // pageblocks for them (compaction, not evacuation).
    let args = [
        "replay",
        path,
        "--mem",
        "64M",
        "--policy",
        policy,
        "--samples",
        "1",
    ];
    let on = pagesim_json(&args);
    let off = pagesim_json(&[&args[..], &["--no-compaction"]].concat());
    assert_every_free_found(&on);
    assert_every_free_found(&off);
    (on, off)
}

#[test]
fn the_confined_policy_evacuates_replayed_pages_and_frees_them_where_they_went() {
    let (on, off) = replays("confined");
    let e = &on["policies"][0]["engine"];
    assert!(u(&e["confined_evacuations"]) > 0, "{e}");
    assert!(u(&e["confined_evacuated_pages"]) > 0, "{e}");
    assert_eq!(u(&e["confined_fallbacks"]), 0, "{e}");
    let e = &off["policies"][0]["engine"];
    assert_eq!(u(&e["confined_evacuations"]), 0, "{e}");
    assert!(u(&e["confined_fallbacks"]) > 0, "{e}");
}

#[test]
fn the_packed_policy_evacuates_replayed_pages_and_frees_them_where_they_went() {
    let (on, off) = replays("packed");
    let e = &on["policies"][0]["engine"];
    assert!(u(&e["confined_evacuations"]) > 0, "{e}");
    assert!(u(&e["confined_evacuated_pages"]) > 0, "{e}");
    assert_eq!(u(&e["extfrag_fragmenting"]), 0, "{e}");
    let e = &off["policies"][0]["engine"];
    assert_eq!(u(&e["confined_evacuations"]), 0, "{e}");
    assert!(u(&e["extfrag_fragmenting"]) > 0, "{e}");
}
