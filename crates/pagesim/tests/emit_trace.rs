//! `--emit-trace`: the emitted ftrace text reads back without a malformed
//! line, and replaying it into the same machine and policy reproduces the
//! first replay's final `/proc/buddyinfo` and `/proc/pagetypeinfo` exactly
//! (replay A: fixture → emitted trace; replay B: emitted trace → final
//! reports). Replaying the emitted trace while emitting again writes the
//! same text: an emitted trace is a fixed point.

mod common;

use std::path::Path;

use common::{fixture_arg, pagesim, pagesim_json, scenario_arg};
use serde_json::Value;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn sum(v: &Value) -> u64 {
    v.as_array().unwrap().iter().map(u).sum()
}

fn read_trace(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "zst") {
        String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap()
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

/// Replays `input` emitting `emitted`, then replays `emitted` (strictly:
/// no `--lenient`) and checks that B ends where A ended. Returns both
/// documents.
fn round_trip(input: &str, emitted: &Path, extra: &[&str]) -> (Value, Value) {
    let path = emitted.to_str().unwrap();
    let mut args = vec!["replay", input, "--emit-trace", path];
    args.extend_from_slice(extra);
    let a = pagesim_json(&args);
    let mut args = vec!["replay", path];
    args.extend_from_slice(extra);
    let b = pagesim_json(&args);

    let (pa, pb) = (&a["policies"][0], &b["policies"][0]);
    assert_eq!(pa["emitted_trace"]["path"], path);
    let lines = u(&pa["emitted_trace"]["lines"]);
    assert_eq!(u(&b["events"]["lines"]), lines);
    assert_eq!(u(&b["events"]["malformed_skipped"]), 0);
    assert_eq!(u(&b["events"]["other_events"]), 0);
    // The final reports, exactly.
    assert_eq!(pb["buddyinfo"], pa["buddyinfo"], "buddyinfo");
    assert_eq!(pb["pagetypeinfo"], pa["pagetypeinfo"], "pagetypeinfo");
    // Every engine call was reproduced: same counters, same fallbacks.
    assert_eq!(pb["engine"], pa["engine"], "engine counters");
    assert_eq!(pb["unmovable_spread_end"], pa["unmovable_spread_end"]);
    assert_eq!(pb["mixed_end"], pa["mixed_end"]);
    assert_eq!(
        pb["counts"]["live_pages_end"],
        pa["counts"]["live_pages_end"]
    );
    // B's trace is our allocator's own: nothing unknown, nothing implicit.
    let cb = &pb["counts"];
    for key in [
        "unknown_pfn_frees",
        "implicit_frees",
        "oversized_frees",
        "repeated_piece_frees",
        "failed_alloc_frees_ignored",
        "double_frees",
        "other_free_errors",
    ] {
        assert_eq!(u(&cb[key]), 0, "{key}");
    }
    assert_eq!(sum(&cb["alloc_failures"]), 0);
    assert_eq!(sum(&cb["allocs"]), sum(&pa["counts"]["allocs"]));
    // The informational lines: our fallbacks became B's Linux fallbacks.
    assert_eq!(
        u(&b["events"]["mm_page_alloc_extfrag"]),
        u(&pa["engine"]["extfrag_events"])
    );
    (a, b)
}

#[test]
fn real_trace_round_trip_reproduces_the_final_reports() {
    let dir = tempfile::tempdir().unwrap();
    let emitted = dir.path().join("a.trace.zst");
    let (a, b) = round_trip(&fixture_arg("cargo-build-excerpt.trace.zst"), &emitted, &[]);
    assert_eq!(b["inputs"][0]["format"], "zstd");
    // The excerpt runs on both CPUs of the traced machine.
    assert_eq!(u(&a["machine"]["nr_cpus"]), 2);
    let text = read_trace(&emitted);
    assert!(text.contains("] .....") && text.contains(" [001] "));
    assert!(u(&b["events"]["mm_page_pcpu_drain"]) > 0);

    // Emitting again from B writes the same text.
    let again = dir.path().join("b.trace");
    pagesim_json(&[
        "replay",
        emitted.to_str().unwrap(),
        "--emit-trace",
        again.to_str().unwrap(),
    ]);
    assert!(
        read_trace(&again) == text,
        "an emitted trace is a fixed point"
    );
}

#[test]
fn hand_made_trace_round_trip_keeps_split_pages() {
    // Split pages, repeated pieces, implicit, oversized and unknown frees,
    // Linux's and our failures: only what our allocator did is emitted,
    // and the pieces of a split block lead B to split it too.
    let dir = tempfile::tempdir().unwrap();
    let emitted = dir.path().join("h.trace");
    let (a, b) = round_trip(&fixture_arg("handmade.trace"), &emitted, &[]);
    assert_eq!(u(&a["policies"][0]["counts"]["split_pages"]), 2);
    assert_eq!(u(&b["policies"][0]["counts"]["split_pages"]), 2);
    // Failed allocations (order 11) and frees of unknown pfns leave no line.
    let text = read_trace(&emitted);
    assert!(!text.contains("order=11"));
    assert_eq!(
        text.matches(": mm_page_alloc: ").count() as u64,
        sum(&a["policies"][0]["counts"]["allocs"])
    );
}

#[test]
fn a_freed_piece_reallocated_leaves_the_other_pieces_live() {
    // Linux splits 0x2000 o3, frees its first two pages and hands them out
    // again as one order-1 block while the other six pages stay allocated.
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("pieces.trace");
    let line = |ts: u32, event: &str| {
        format!("            bash-100     [000] .....    10.{ts:06}: {event}\n")
    };
    let text = [
        line(
            1,
            "mm_page_alloc: page=1 pfn=0x2000 order=3 migratetype=0 gfp_flags=GFP_KERNEL",
        ),
        line(2, "mm_page_free: page=1 pfn=0x2000 order=0"),
        line(3, "mm_page_free: page=1 pfn=0x2001 order=0"),
        line(
            4,
            "mm_page_alloc: page=1 pfn=0x2000 order=1 migratetype=0 gfp_flags=GFP_KERNEL",
        ),
        line(5, "mm_page_free: page=1 pfn=0x2005 order=0"),
        line(6, "mm_page_free: page=1 pfn=0x2000 order=1"),
    ]
    .concat();
    std::fs::write(&trace, text).unwrap();
    let emitted = dir.path().join("pieces.out.trace");
    let (a, _) = round_trip(trace.to_str().unwrap(), &emitted, &[]);
    let c = &a["policies"][0]["counts"];
    assert_eq!(u(&c["implicit_frees"]), 0);
    assert_eq!(u(&c["unknown_pfn_frees"]), 0);
    assert_eq!(u(&c["split_piece_frees"]), 3);
    assert_eq!(u(&c["frees"]), 1);
    // 0x2002..=0x2004, 0x2006 and 0x2007.
    assert_eq!(u(&c["live_pages_end"]), 5);
}

#[test]
fn cpus_beyond_the_machine_fold_and_several_policies_get_a_file_each() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("p.trace");
    let doc = pagesim_json(&[
        "replay",
        &fixture_arg("handmade.trace"),
        "--cpus",
        "1",
        "--policy",
        "linux",
        "--policy",
        "linux",
        "--emit-trace",
        base.to_str().unwrap(),
    ]);
    assert_eq!(u(&doc["machine"]["nr_cpus"]), 1);
    // The handmade trace has 11 events on CPU 1.
    assert_eq!(u(&doc["events"]["cpu_folded"]), 11);
    let first = dir.path().join("p.linux.trace");
    let second = dir.path().join("p.linux-2.trace");
    assert_eq!(
        doc["policies"][1]["emitted_trace"]["path"],
        second.to_str().unwrap()
    );
    let text = read_trace(&first);
    assert!(!text.contains("[001]"), "everything ran on CPU 0");
    assert_eq!(text, read_trace(&second));
}

#[test]
fn scenario_variants_emit_traces_that_replay() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("s.trace");
    let run = pagesim_json(&[
        "run",
        &scenario_arg("slab-storm.toml"),
        "--scale",
        "0.02",
        "--emit-trace",
        base.to_str().unwrap(),
    ]);
    for v in run["variants"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let path = dir.path().join(format!("s.{name}.trace"));
        assert_eq!(v["emitted_trace"]["path"], path.to_str().unwrap());
        let allocs: u64 = v["actors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| sum(&a["allocs"]))
            .sum();
        // Read back strictly, into a machine of the scenario's size.
        let doc = pagesim_json(&["replay", path.to_str().unwrap(), "--mem", "512M"]);
        assert_eq!(u(&doc["events"]["mm_page_alloc"]), allocs);
        assert_eq!(u(&doc["events"]["malformed_skipped"]), 0);
    }
    // The text report names the files.
    let out = pagesim(&[
        "run",
        &scenario_arg("slab-storm.toml"),
        "--scale",
        "0.02",
        "--emit-trace",
        base.to_str().unwrap(),
    ]);
    assert!(out.stdout.contains("emitted  variant"), "{}", out.stdout);
}

#[test]
fn an_unwritable_emit_file_is_a_runtime_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("no/such/dir/x.trace");
    let out = pagesim(&[
        "replay",
        &fixture_arg("handmade.trace"),
        "--emit-trace",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("cannot write"), "{}", out.stderr);
    // Never over an input.
    let input = dir.path().join("in.trace");
    std::fs::copy(common::fixture("handmade.trace"), &input).unwrap();
    let arg = input.to_str().unwrap();
    let out = pagesim(&["replay", arg, "--emit-trace", arg]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("would overwrite an input"));
    assert_eq!(
        std::fs::read(&input).unwrap(),
        std::fs::read(common::fixture("handmade.trace")).unwrap()
    );
}
