//! Replays of the committed traces, with the expected figures computed here
//! independently of pagesim: event counts by scanning the text, unknown-pfn
//! and implicit frees with a plain set of live pfns (the real excerpt has no
//! split-page frees, so a set suffices), and the hand-made trace's figures
//! worked out by hand in the comments below.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use common::{fixture, fixture_arg, pagesim, pagesim_json};
use serde_json::Value;

fn excerpt_text() -> String {
    let file = std::fs::File::open(fixture("cargo-build-excerpt.trace.zst")).unwrap();
    let mut text = String::new();
    zstd::Decoder::new(file)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|t| t.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// What a simple model of the trace says.
#[derive(Default, Debug)]
struct Expected {
    events: BTreeMap<&'static str, u64>,
    alloc_by_order: BTreeMap<u64, u64>,
    unknown_frees: u64,
    implicit_frees: u64,
    frees: u64,
}

fn model(text: &str) -> Expected {
    let mut e = Expected::default();
    let mut live: HashMap<u64, u64> = HashMap::new();
    for line in text.lines() {
        for name in [
            "mm_page_alloc",
            "mm_page_free",
            "mm_page_free_batched",
            "mm_page_pcpu_drain",
            "mm_page_alloc_extfrag",
        ] {
            if line.contains(&format!(": {name}: ")) {
                *e.events.entry(name).or_default() += 1;
            }
        }
        let pfn = || u64::from_str_radix(&field(line, "pfn=")[2..], 16).unwrap();
        let order = || field(line, "order=").parse::<u64>().unwrap();
        if line.contains(": mm_page_alloc: ") {
            *e.alloc_by_order.entry(order()).or_default() += 1;
            if live.insert(pfn(), order()).is_some() {
                e.implicit_frees += 1;
            }
        } else if line.contains(": mm_page_free: ") {
            match live.remove(&pfn()) {
                Some(o) => {
                    assert_eq!(o, order(), "the excerpt has no split-page frees");
                    e.frees += 1;
                }
                None => e.unknown_frees += 1,
            }
        }
    }
    e
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn sum(v: &Value) -> u64 {
    v.as_array().unwrap().iter().map(u).sum()
}

#[test]
fn real_trace_excerpt_replays_with_independently_counted_figures() {
    let text = excerpt_text();
    let want = model(&text);
    assert!(want.events["mm_page_alloc_extfrag"] >= 1);
    assert!(want.events["mm_page_free_batched"] > 0);
    assert!(want.unknown_frees > 0);

    let doc = pagesim_json(&["replay", &fixture_arg("cargo-build-excerpt.trace.zst")]);
    let ev = &doc["events"];
    assert_eq!(u(&ev["lines"]), text.lines().count() as u64);
    for (name, n) in &want.events {
        assert_eq!(u(&ev[*name]), *n, "{name}");
    }
    for (order, n) in &want.alloc_by_order {
        assert_eq!(
            u(&ev["alloc_by_order"][*order as usize]),
            *n,
            "order {order}"
        );
    }
    assert_eq!(doc["inputs"][0]["format"], "zstd");

    let p = &doc["policies"][0];
    assert_eq!(p["name"], "linux");
    let c = &p["counts"];
    assert_eq!(u(&c["unknown_pfn_frees"]), want.unknown_frees);
    assert_eq!(u(&c["implicit_frees"]), want.implicit_frees);
    assert_eq!(u(&c["frees"]), want.frees);
    assert_eq!(u(&c["double_frees"]), 0);
    assert_eq!(u(&c["other_free_errors"]), 0);
    assert_eq!(sum(&c["alloc_failures"]), 0, "the traced machine has room");
    assert_eq!(sum(&c["allocs"]), want.events["mm_page_alloc"]);
    assert_eq!(
        u(&p["linux_extfrag_events"]),
        want.events["mm_page_alloc_extfrag"]
    );
    assert!(!p["samples"].as_array().unwrap().is_empty());
}

#[test]
fn handmade_trace_covers_every_rule() {
    // The trace file's header (12 `#` lines), a lost-events line, and:
    //   allocs: 0x1000 o0, 0x1001 o0, 0x2000 o3, 0x3000 o2, NULL o9 (Linux
    //   failed), 0x4000 o0 twice (second = implicit free), 0x6000 o1 DMA32,
    //   0x8000 o11 (beyond our orders: our failure), 0x7000 o0.
    //   frees: 0x1000 (+ batched twice-reported), 0x5000 unknown (+ batched),
    //   0x2004 o2 / 0x2000 / 0x2001 / 0x2002 o1 = four pieces of the split
    //   0x2000 o3; 0x2003 after it is all freed = unknown; 0x3001 twice
    //   (repeated piece), 0x3000, 0x3002 o1 = four pieces of 0x3000 o2;
    //   0x4000; 0x6000 o1; 0x8000 (failed: ignored); 0x7000 as o1 (oversized).
    let doc = pagesim_json(&["replay", &fixture_arg("handmade.trace")]);
    let ev = &doc["events"];
    assert_eq!(u(&ev["lines"]), 43);
    assert_eq!(u(&ev["comments"]), 12);
    assert_eq!(u(&ev["lost_events"]), 5);
    assert_eq!(u(&ev["mm_page_alloc"]), 10);
    assert_eq!(u(&ev["linux_alloc_failures"]), 1);
    assert_eq!(u(&ev["mm_page_free"]), 15);
    assert_eq!(u(&ev["mm_page_free_batched"]), 2);
    assert_eq!(u(&ev["mm_page_pcpu_drain"]), 1);
    assert_eq!(u(&ev["mm_page_alloc_extfrag"]), 1);
    assert_eq!(u(&ev["other_events"]), 1);
    assert_eq!(u(&ev["alloc_by_order"][11]), 1);
    assert_eq!(ev["alloc_by_migratetype"], serde_json::json!([4, 3, 3]));

    let c = &doc["policies"][0]["counts"];
    assert_eq!(sum(&c["allocs"]), 8);
    assert_eq!(u(&c["alloc_failures"][11]), 1);
    assert_eq!(u(&c["frees"]), 4);
    assert_eq!(u(&c["unknown_pfn_frees"]), 2);
    assert_eq!(u(&c["split_piece_frees"]), 8);
    assert_eq!(u(&c["split_pages"]), 2);
    assert_eq!(u(&c["repeated_piece_frees"]), 1);
    assert_eq!(u(&c["implicit_frees"]), 1);
    assert_eq!(u(&c["failed_alloc_frees_ignored"]), 1);
    assert_eq!(u(&c["oversized_frees"]), 1);
    assert_eq!(u(&c["double_frees"]), 0);
    assert_eq!(u(&c["other_free_errors"]), 0);
    // Only 0x1001 is still allocated.
    assert_eq!(u(&c["live_pages_end"]), 1);
    // ... an unmovable page: one pageblock, the minimum.
    let p = &doc["policies"][0];
    assert_eq!(
        p["unmovable_spread_end"],
        serde_json::json!({"pageblocks": 1, "min_pageblocks": 1, "pages": 1, "ratio": 1.0})
    );
    // At the peak: 0x1001, the split 0x2000 o3 (unmovable) before its
    // pieces went, the reclaimable 0x3000 o2 or 0x4000.
    let peak = &p["unmovable_spread_peak"];
    assert!(u(&peak["spread"]["pageblocks"]) >= 1);
    assert!(peak["time_s"].as_f64().unwrap() >= 10.0);
}

#[test]
fn a_freed_piece_reallocated_leaves_the_other_pieces_live() {
    // Linux splits 0x2000 o3, frees its first two pages and hands them out
    // again as one order-1 block while the other six pages stay allocated:
    // no implicit free, and the later free of 0x2005 is a piece.
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("pieces.trace");
    let line = |ts: u32, cpu: u32, event: &str| {
        format!("            bash-100     [{cpu:03}] .....    10.{ts:06}: {event}\n")
    };
    let text = [
        line(
            1,
            0,
            "mm_page_alloc: page=1 pfn=0x2000 order=3 migratetype=0 gfp_flags=GFP_KERNEL",
        ),
        line(2, 1, "mm_page_free: page=1 pfn=0x2000 order=0"),
        line(3, 1, "mm_page_free: page=1 pfn=0x2001 order=0"),
        line(
            4,
            0,
            "mm_page_alloc: page=1 pfn=0x2000 order=1 migratetype=0 gfp_flags=GFP_KERNEL",
        ),
        line(5, 7, "mm_page_free: page=1 pfn=0x2005 order=0"),
        line(6, 0, "mm_page_free: page=1 pfn=0x2000 order=1"),
    ]
    .concat();
    std::fs::write(&trace, text).unwrap();
    let doc = pagesim_json(&["replay", trace.to_str().unwrap()]);
    // The traced machine has two CPUs; CPU 7 runs on CPU 7 % 2.
    assert_eq!(u(&doc["machine"]["nr_cpus"]), 2);
    assert_eq!(u(&doc["events"]["cpu_folded"]), 1);
    let c = &doc["policies"][0]["counts"];
    assert_eq!(u(&c["implicit_frees"]), 0);
    assert_eq!(u(&c["unknown_pfn_frees"]), 0);
    assert_eq!(u(&c["split_piece_frees"]), 3);
    assert_eq!(u(&c["frees"]), 1);
    assert_eq!(u(&c["double_frees"]) + u(&c["other_free_errors"]), 0);
    // 0x2002..=0x2004, 0x2006 and 0x2007.
    assert_eq!(u(&c["live_pages_end"]), 5);
    let one = pagesim_json(&["replay", trace.to_str().unwrap(), "--cpus", "1"]);
    assert_eq!(u(&one["events"]["cpu_folded"]), 3);
}

#[test]
fn gzip_input_replays_like_plain() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("handmade.trace.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&std::fs::read(fixture("handmade.trace")).unwrap())
        .unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let plain = pagesim_json(&["replay", &fixture_arg("handmade.trace")]);
    let zipped = pagesim_json(&["replay", gz.to_str().unwrap()]);
    assert_eq!(zipped["inputs"][0]["format"], "gzip");
    assert_eq!(zipped["events"], plain["events"]);
    assert_eq!(
        zipped["policies"][0]["counts"],
        plain["policies"][0]["counts"]
    );
}

#[test]
fn policies_machines_and_text_report() {
    let trace = fixture_arg("handmade.trace");
    // Two copies of the same policy replay side by side and agree.
    let doc = pagesim_json(&["replay", &trace, "--policy", "linux", "--policy", "linux"]);
    let ps = doc["policies"].as_array().unwrap();
    assert_eq!(ps.len(), 2);
    assert_eq!(ps[0]["counts"], ps[1]["counts"]);

    let small = pagesim_json(&["replay", &trace, "--mem", "64M"]);
    let zones: Vec<&str> = small["machine"]["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zone"].as_str().unwrap())
        .collect();
    assert_eq!(zones, ["DMA", "DMA32"]);

    let procfs = pagesim_json(&[
        "replay",
        &trace,
        "--procfs",
        &fixture_arg("cargo-build.before.procfs"),
    ]);
    assert_eq!(u(&procfs["machine"]["total_pages"]), 3840 + 772497 + 262144);

    let text = pagesim(&["replay", &trace]);
    assert_eq!(text.code, Some(0));
    assert!(text.stdout.contains("unknown-pfn frees"));
    assert!(text.stdout.contains("Node 0, zone   Normal"));
    assert!(text.stdout.contains("Number of blocks type"));
}

/// `--regions SIZE` turns memory regions (seed 000) on in the replay and
/// reports them; `--count-regions SIZE` counts the same regions with them
/// off; the same trace replays with the same live pages either way, the
/// counts add up, and a bad size is a usage error.
#[test]
fn regions_are_counted_with_and_without_the_region_allocator() {
    let trace = fixture_arg("cargo-build-excerpt.trace.zst");
    let on = pagesim_json(&["replay", &trace, "--mem", "256M", "--regions", "16M"]);
    let off = pagesim_json(&["replay", &trace, "--mem", "256M", "--count-regions", "16M"]);
    let (r_on, r_off) = (
        &on["policies"][0]["regions"],
        &off["policies"][0]["regions"],
    );
    assert_eq!(r_on["enabled"], true);
    assert_eq!(r_off["enabled"], false);
    assert_eq!(u(&r_on["region_pages"]), 4096);
    assert_eq!(u(&r_on["regions"]), 16);
    assert_eq!(r_on["regions"], r_off["regions"]);
    for r in [r_on, r_off] {
        assert!(u(&r["fully_free_end"]) <= u(&r["ideal_end"]), "{r}");
        assert!(u(&r["fully_free_min"]) <= u(&r["regions"]), "{r}");
        assert!(!r["samples"].as_array().unwrap().is_empty());
    }
    assert!(u(&r_on["returns"]) >= u(&r_on["held_end"]));
    assert_eq!(u(&r_off["draws"]), 0);
    assert_eq!(
        on["policies"][0]["counts"]["live_pages_end"],
        off["policies"][0]["counts"]["live_pages_end"]
    );
    // Without either flag the report has no regions field at all.
    let plain = pagesim_json(&["replay", &trace, "--mem", "256M"]);
    assert!(plain["policies"][0].get("regions").is_none());
    let bad = pagesim(&["replay", &trace, "--regions", "3M"]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("--regions"), "{}", bad.stderr);
}
