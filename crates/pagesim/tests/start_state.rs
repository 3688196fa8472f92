//! Replays that start where Linux was: `--procfs` with a pagetypeinfo
//! section recreates the snapshot's state before the first event. The
//! checks compare the engine's own `/proc/pagetypeinfo` text with the
//! snapshot's lines, so they do not depend on pagesim's reading of it;
//! frees of pre-trace pfns release untraced memory by the documented rule;
//! bad sections are input errors naming their line; policies on threads
//! report exactly what they report one after the other.

mod common;

use std::path::Path;

use common::{fixture, fixture_arg, pagesim, pagesim_json};
use pagealloc::{Allocator, PageState};
use pagesim::machine::Machine;
use pagesim::progress::Progress;
use pagesim::replay::{replay, Execution, ReplayOptions};
use pagesim::{policy, replay_machine, start_state};
use serde_json::Value;

/// The rows of a pagetypeinfo text, words joined by single spaces: free
/// counts (`Node 0, zone X, type T n n n`) and block counts (`Node 0, zone
/// X n n n`, after the block-count heading).
fn rows(text: &str) -> (Vec<String>, Vec<String>) {
    let mut free = Vec::new();
    let mut blocks = Vec::new();
    let mut in_blocks = false;
    for line in text.lines() {
        let words = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if words.starts_with("Number of blocks type") {
            in_blocks = true;
        } else if words.starts_with("## ") {
            in_blocks = false;
        } else if words.starts_with("Node") && words.contains(", type ") {
            free.push(words);
        } else if in_blocks && words.starts_with("Node") {
            blocks.push(words);
        }
    }
    (free, blocks)
}

/// The pagetypeinfo section of a capture file.
fn section(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("## pagetypeinfo").unwrap();
    let end = text.find("## zoneinfo").unwrap();
    text[start..end].to_owned()
}

fn seeded(path: &Path) -> (Machine, Allocator, pagesim::seed::Untraced) {
    let machine = replay_machine(None, Some(path)).unwrap();
    let start = start_state(path, &machine)
        .unwrap()
        .expect("a pagetypeinfo section");
    let alloc = machine.allocator().unwrap();
    let (untraced, _) = start.recreate(&alloc).unwrap();
    alloc.check_invariants().unwrap();
    (machine, alloc, untraced)
}

#[test]
fn the_small_snapshot_is_recreated_exactly() {
    let path = fixture("small.before.procfs");
    let (_, alloc, untraced) = seeded(&path);
    let (want_free, want_blocks) = rows(&section(&path));
    let (got_free, got_blocks) = rows(&alloc.pagetypeinfo().to_string());
    assert_eq!(got_free, want_free);
    assert_eq!(got_blocks, want_blocks);
    assert!(!want_free.is_empty() && want_blocks.len() == 2);
    // Everything else is allocated, as untraced memory of its pageblock's
    // type, and the per-CPU lists are empty.
    let free: u64 = alloc.zones().iter().map(|z| z.nr_free().0).sum();
    assert_eq!(free, 1562 + 3245);
    assert_eq!(alloc.nr_pcp_pages(), 0);
    assert_eq!(untraced.pages(), 4096 + 8192 - free);
    assert_eq!(alloc.nr_allocated_pages(), untraced.pages());
    for zone in alloc.zones() {
        for b in zone.blocks().filter(|b| b.state == PageState::AllocHead) {
            assert_eq!(
                b.alloc_migratetype,
                zone.block_migratetype(b.pfn),
                "block {:#x} of order {}",
                b.pfn.0,
                b.order.get()
            );
        }
    }
}

#[test]
fn seeding_is_deterministic_and_counts_nothing() {
    let path = fixture("small.before.procfs");
    let (_, a, _) = seeded(&path);
    let (_, b, _) = seeded(&path);
    assert_eq!(a.digest(), b.digest());
    // The report of a replay leaves the seeding's calls out.
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("one.trace");
    std::fs::write(
        &trace,
        "a-1 [000] ..... 1.0: mm_page_alloc: page=1 pfn=0x100200 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE\n",
    )
    .unwrap();
    let doc = pagesim_json(&[
        "replay",
        &trace.display().to_string(),
        "--procfs",
        &path.display().to_string(),
    ]);
    let engine = &doc["policies"][0]["engine"];
    assert_eq!(engine["pgalloc"], 1);
    assert_eq!(engine["pgfree"], 0);
    assert_eq!(engine["extfrag_events"], 0);
}

#[test]
fn the_traced_machine_is_recreated_where_its_geometry_allows() {
    // The real snapshot: the Normal zone is the capture's exactly; DMA and
    // DMA32 keep Linux's free pages, but our zones are their managed pages
    // from the zone start (Linux's have holes and reserved pages inside),
    // so their free blocks cannot all be Linux's, and DMA32 has 1509
    // pageblocks where Linux counts 1528.
    let path = fixture("cargo-build.before.procfs");
    let (_, alloc, untraced) = seeded(&path);
    let (want_free, want_blocks) = rows(&section(&path));
    let (got_free, got_blocks) = rows(&alloc.pagetypeinfo().to_string());
    let normal = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .filter(|r| r.contains("zone Normal"))
            .cloned()
            .collect()
    };
    assert_eq!(normal(&got_free), normal(&want_free));
    assert_eq!(normal(&got_blocks), normal(&want_blocks));
    assert_eq!(got_blocks[0], want_blocks[0], "DMA: 1 Unmovable, 7 Movable");
    assert_eq!(got_blocks[1], "Node 0, zone DMA32 0 1509 0 0 0");
    let free: Vec<u64> = alloc.zones().iter().map(|z| z.nr_free().0).collect();
    assert_eq!(free, [3840, 772497, 29267]);
    assert_eq!(untraced.pages(), 262144 - 29267);
}

/// A trace whose frees of pre-trace pfns exercise every case of the rule.
const UNTRACED_TRACE: &str = "\
a-1 [000] ..... 1.0: mm_page_alloc: page=1 pfn=0x100200 order=0 migratetype=0 gfp_flags=GFP_KERNEL
a-1 [000] ..... 1.1: mm_page_free: page=1 pfn=0x100204 order=2
a-1 [000] ..... 1.2: mm_page_free: page=1 pfn=0x101000 order=0
a-1 [001] ..... 1.3: mm_page_free: page=1 pfn=0x1800 order=3
a-1 [000] ..... 1.4: mm_page_free: page=1 pfn=0x900000 order=0
a-1 [000] ..... 1.5: mm_page_free: page=1 pfn=0x100200 order=0
a-1 [001] ..... 1.6: mm_page_free: page=1 pfn=0x1000 order=12
a-1 [001] ..... 1.7: mm_page_free: page=1 pfn=0x1001 order=0
";

#[test]
fn frees_of_pre_trace_pfns_release_untraced_memory() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("untraced.trace");
    std::fs::write(&trace, UNTRACED_TRACE).unwrap();
    let trace = trace.display().to_string();
    let before = fixture_arg("small.before.procfs");
    let doc = pagesim_json(&["replay", &trace, "--procfs", &before]);
    let p = &doc["policies"][0];
    let c = &p["counts"];
    // Six frees of pfns the trace never allocated. 0x100204 (order 2)
    // lies in the pageblock of an unmovable allocation: four Unmovable
    // pages of Normal. 0x101000: one Movable page of Normal. 0x1800
    // (order 3): eight Movable pages of DMA32. 0x900000 is in no zone. The
    // order-12 free in DMA32 wants 4096 pages: no type has that many, so
    // the one with the most, Movable (3584 - 1560 - 8 = 2016 pages), gives
    // them all, in smaller blocks. Then only DMA32's Unmovable pageblock
    // (510 pages) is left for the last free.
    assert_eq!(c["unknown_pfn_frees"], 6);
    assert_eq!(c["untraced_frees"], 5);
    assert_eq!(c["untraced_pages_released"], 4 + 1 + 8 + 2016 + 1);
    assert_eq!(c["untraced_other_type"], 1);
    assert_eq!(c["untraced_composed"], 1);
    assert_eq!(c["untraced_short"], 1);
    assert_eq!(c["untraced_unmatched"], 1);
    assert_eq!(c["frees"], 1);
    assert_eq!(c["double_frees"], 0);
    assert_eq!(c["other_free_errors"], 0);
    let start = &p["start"];
    assert_eq!(start["untraced_pages"], 4096 - 1562 + 8192 - 3245);
    assert_eq!(
        c["untraced_pages_end"],
        4096 - 1562 + 8192 - 3245 - (4 + 1 + 8 + 2016 + 1)
    );
    // Free memory follows: each zone has what it had plus what was
    // released (the traced page came back), counting per-CPU lists.
    let after = &p["free_vs_linux_after"];
    assert!(after["origin"]
        .as_str()
        .unwrap()
        .ends_with("small.after.procfs"));
    let zone = |name: &str| {
        let z = after["zones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["zone"] == name)
            .unwrap()
            .clone();
        (
            u(&z["ours"]) + u(&z["ours_pcp"]),
            u(&z["linux"]),
            z["linux_pcp"].clone(),
        )
    };
    assert_eq!(zone("DMA32"), (1562 + 8 + 2016 + 1, 1562, Value::from(0)));
    assert_eq!(zone("Normal"), (3245 + 5, 3345, Value::from(12)));
    // Without the start state the same frees are only counted.
    let empty = pagesim_json(&["replay", &trace, "--procfs", &before, "--empty-start"]);
    let c = &empty["policies"][0]["counts"];
    assert_eq!(c["unknown_pfn_frees"], 6);
    assert_eq!(c["untraced_frees"], 0);
    assert_eq!(empty["policies"][0]["start"], Value::Null);
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The report of a policy without what depends on the clock.
fn stable(mut report: Value) -> Value {
    if let Some(o) = report.as_object_mut() {
        o.remove("elapsed_s");
        o.remove("events_per_s");
    }
    report
}

#[test]
fn policies_on_threads_report_what_they_report_one_after_the_other() {
    let procfs = fixture("cargo-build.before.procfs");
    let run = |policies: &[&str], execution: Execution| {
        let machine = replay_machine(None, Some(&procfs)).unwrap();
        let start = start_state(&procfs, &machine).unwrap();
        let opts = ReplayOptions {
            start,
            samples: 20,
            execution,
            ..ReplayOptions::new(
                vec![fixture("cargo-build-excerpt.trace.zst")],
                machine,
                policies
                    .iter()
                    .map(|p| policy::lookup(p).unwrap())
                    .collect(),
            )
        };
        stable(serde_json::to_value(replay(&opts, &Progress::hidden()).unwrap()).unwrap())
    };
    let parallel = run(&["linux", "packed"], Execution::Parallel);
    let sequential = run(&["linux", "packed"], Execution::Sequential);
    assert_eq!(parallel, sequential);
    // And each policy alone reports what it reports beside the other.
    let linux = run(&["linux"], Execution::Parallel);
    let packed = run(&["packed"], Execution::Parallel);
    assert_eq!(parallel["policies"][0], linux["policies"][0]);
    assert_eq!(parallel["policies"][1], packed["policies"][0]);
    // The excerpt frees pre-trace pages: untraced memory was released.
    assert!(u(&parallel["policies"][0]["counts"]["untraced_frees"]) > 0);
    assert_eq!(parallel["policies"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_sections_and_counts_that_do_not_fit_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture("small.before.procfs")).unwrap();
    let trace = fixture_arg("handmade.trace");
    let line_of = |needle: &str| good.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let case = |name: &str, text: String, needle: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        let out = pagesim(&["replay", &trace, "--procfs", &path]);
        assert_eq!(out.code, Some(2), "{name}: {}", out.stderr);
        let want = format!("{path}:{needle}");
        assert!(
            out.stderr.contains(&want),
            "{name}: {:?} lacks {want:?}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"));
    };
    let movable = "Node    0, zone   Normal, type      Movable     10";
    case(
        "bad-count.procfs",
        good.replace(
            movable,
            "Node    0, zone   Normal, type      Movable     1x",
        ),
        format!("{}: bad count `1x`", line_of(movable)),
    );
    case(
        "short-row.procfs",
        good.replace(
            "      1      1 \nNode    0, zone    DMA32, type  Reclaimable",
            "      1 \nNode    0, zone    DMA32, type  Reclaimable",
        ),
        format!(
            "{}: 10 columns where the heading has 11",
            line_of("zone    DMA32, type      Movable")
        ),
    );
    case(
        "too-many.procfs",
        good.replace(
            "Node    0, zone   Normal, type      Movable     10      0      0      0      3      0      0      0      2      1      2",
            "Node    0, zone   Normal, type      Movable     10      0      0      0      3      0      0      0      2      1     20",
        ),
        format!(
            "{}: 21677 free pages in node 0, zone Normal, which has 8192 pages in the machine",
            line_of("zone   Normal, type    Unmovable")
        ),
    );
    case(
        "order.procfs",
        good.replace("Page block order: 9", "Page block order: 10"),
        format!(
            "{}: pageblock order 10, but the machine's is 9",
            line_of("Page block order")
        ),
    );
    case(
        "zone.procfs",
        good.replace("zone   Normal, type", "zone      DMA, type")
            .replace("Node 0, zone   Normal   ", "Node 0, zone      DMA   "),
        format!(
            "{}: no rows for the machine's node 0, zone Normal",
            line_of("zone    DMA32, type    Unmovable")
        ),
    );
    case(
        "no-blocks.procfs",
        good.replace(
            "Node 0, zone   Normal            3           11            2",
            "Node 0, zone   Normal            0            0            0",
        ),
        format!(
            "{}: no pageblock counted for node 0, zone Normal",
            line_of("Node 0, zone   Normal            3")
        ),
    );
}
