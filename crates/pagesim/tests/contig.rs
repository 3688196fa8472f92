//! Contiguous allocation in scenarios (issue 13, item 7): a contig actor
//! asks for runs through `cma_alloc`, `alloc_contig_pages` or
//! `alloc_contig_range`; CMA areas in `[machine]` or a variant; per variant
//! the requests served and failed, the pages migrated and the tries, in the
//! text report and the JSON; bad keys and values are typed errors with
//! their line.

mod common;

use std::path::Path;

use common::{pagesim, pagesim_json, scenario_arg};
use pagesim::scenario::{parse, ScenarioErrorKind};
use serde_json::Value;

/// A 256 MiB machine filled with page cache, anonymous memory with some
/// order-4 blocks, short- and long-lived kernel allocations; a driver that
/// asks for 16 MiB every 10 steps of the run and holds each run 5 steps.
/// Three variants: `cma_alloc` from a 32 MiB CMA area, `alloc_contig_pages`
/// without one, `alloc_contig_range` on random 16 MiB-aligned ranges.
const CONTIG: &str = r#"name = "contig-test"
seed = 9
sample_every = 50

[machine]
memory = "256M"
cma = [{ name = "camera", size = "32M" }]

[[phase]]
name = "fill"
steps = 100

[[phase]]
name = "run"
steps = 600
snapshot = "end of the run"

[[actor]]
name = "cache"
migratetype = "movable"
rate = 400
lifetime = { dist = "forever" }

[[actor]]
name = "anon"
migratetype = "movable"
rate = 100
orders = { 0 = 0.97, 4 = 0.03 }
lifetime = { dist = "exponential", mean = 200 }

[[actor]]
name = "kernel"
migratetype = "unmovable"
rate = 30
lifetime = { dist = "exponential", mean = 30 }

[[actor]]
name = "kernel-long"
migratetype = "unmovable"
rate = 2
lifetime = { dist = "exponential", mean = 5000 }

[[actor]]
name = "camera"
kind = "contig"
via = "cma"
size = "16M"
every = 10
lifetime = { dist = "fixed", steps = 5 }
start = "run"

[[variant]]
name = "cma"

[[variant]]
name = "no-cma"
cma = []
actor.camera.via = "pages"

[[variant]]
name = "range"
cma = []
actor.camera.via = "range"
actor.camera.align = "16M"
"#;

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The 1-based line of the first line that is `needle`, or else of the
/// first that contains it.
fn line_of(text: &str, needle: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .position(|l| *l == needle)
        .or_else(|| lines.iter().position(|l| l.contains(needle)))
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
        + 1
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn camera(variant: &Value) -> &Value {
    variant["actors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "camera")
        .unwrap()
}

#[test]
fn cma_and_no_cma_variants_give_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), CONTIG);
    let doc = pagesim_json(&["run", &f]);
    let vs = doc["variants"].as_array().unwrap();
    let names: Vec<&str> = vs.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["cma", "no-cma", "range"]);
    for v in vs {
        let a = camera(v);
        assert_eq!(a["kind"], "contig");
        assert_eq!(a["flags"], "-");
        let c = &a["contig"];
        assert_eq!(c["request_pages"], 4096, "16 MiB of 4 KiB pages");
        // 600 steps, one request every 10.
        assert_eq!(u(&c["requests"]) + u(&c["skipped_at_max"]), 60, "{c}");
        assert_eq!(u(&c["served"]) + u(&c["failed"]), u(&c["requests"]), "{c}");
        let failures: u64 = c["failures"].as_object().unwrap().values().map(u).sum();
        assert_eq!(failures, u(&c["failed"]), "{c}");
        assert!(u(&c["served"]) > 0, "{}: {c}", v["name"]);
        assert!(u(&c["migrated_pages"]) > 0, "{}: {c}", v["name"]);
        assert!(u(&c["migrated_blocks"]) <= u(&c["migrated_pages"]));
        assert!(u(&c["tries"]) > 0, "{}: {c}", v["name"]);
        // Each run is held 5 steps: the last one is still held.
        assert_eq!(
            u(&a["pages_end"]),
            (u(&c["served"]) - u(&c["released_runs"])) * 4096
        );
        assert!(u(&a["pages_peak"]) >= 4096);
        // The engine's counters agree with the actor's.
        let e = &v["engine"];
        assert_eq!(e["contig_alloc_success"], c["served"], "{e}");
        assert_eq!(e["pgmigrate_success"], c["migrated_pages"], "{e}");
        // The snapshot names the driver's pages and pageblocks.
        let held = &v["snapshots"][0]["summary"]["held"][0];
        assert_eq!(held["actor"], "camera");
        assert_eq!(u(&held["pages"]) % 4096, 0);
        assert!(u(&held["pageblocks"]) >= u(&held["min_pageblocks"]));
    }
    let (cma, pages, range) = (&vs[0], &vs[1], &vs[2]);
    assert_eq!(camera(cma)["contig"]["via"], "cma");
    assert_eq!(camera(cma)["contig"]["area"], "camera");
    assert_eq!(camera(pages)["contig"]["via"], "pages");
    assert!(camera(pages)["contig"].get("area").is_none());
    assert_eq!(camera(range)["contig"]["via"], "range");
    // Only the CMA variant has the area, and cma_alloc served its requests.
    assert_eq!(
        cma["engine"]["cma_alloc_success"],
        camera(cma)["contig"]["served"]
    );
    assert_eq!(pages["engine"]["cma_alloc_success"], 0);
    let areas = cma["cma_areas"].as_array().unwrap();
    assert_eq!(areas.len(), 1);
    let area = &areas[0];
    assert_eq!(area["name"], "camera");
    assert_eq!(area["nr_pages"], 8192);
    // Placed at the top of the node, as Linux places `cma=`.
    assert_eq!(u(&area["start_pfn"]) + 8192, 65536);
    assert_eq!(area["used_pages_end"], camera(cma)["pages_end"]);
    assert!(u(&area["used_pages_peak"]) >= 4096);
    assert!(u(&area["used_pages_peak"]) <= 8192);
    assert!(
        u(&area["used_pages_end"]) + u(&area["movable_pages_end"]) + u(&area["free_pages_end"])
            <= 8192
    );
    // Sampled with the census: every point within the area.
    let points = area["samples"].as_array().unwrap();
    assert_eq!(points.len(), cma["samples"].as_array().unwrap().len());
    for p in points {
        assert!(
            u(&p["used"]) + u(&p["movable"]) + u(&p["free"]) <= 8192,
            "{p}"
        );
    }
    // Between the driver's runs the area lends itself to movable memory.
    assert!(points.iter().any(|p| u(&p["movable"]) > 0), "{area}");
    assert_eq!(pages["cma_areas"], serde_json::json!([]));
    // The kernel has CMA in every variant (booted with cma=0 in two).
    let blocks = |v: &Value| v["snapshots"][0]["pagetypeinfo"]["zones"][0]["blocks"]["CMA"].clone();
    assert_eq!(blocks(cma), 16);
    assert_eq!(blocks(pages), 0);
    // A random range often holds a kernel page; the other calls choose
    // their range and are served more often.
    let failed = |v: &Value| u(&camera(v)["contig"]["failed"]);
    let unmovable = u(&camera(range)["contig"]["failures"]["unmovable"]);
    assert!(unmovable > 0, "{}", camera(range));
    assert!(failed(range) > failed(pages), "{range} {pages}");
    // The other actors made the same requests in every variant until the
    // driver started (the streams are per actor).
    assert_eq!(vs[0]["samples"][0], vs[1]["samples"][0]);
}

#[test]
fn the_text_report_shows_contiguous_requests() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), CONTIG);
    let out = pagesim(&["run", &f, "--scale", "0.3"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for needle in [
        "actor camera (contig)",
        "  call ",
        "cma_alloc camera",
        "alloc_contig_pages",
        "alloc_contig_range",
        "  contiguous requests",
        "    served",
        "    failed",
        "  pages migrated",
        "  migration passes (served requests)",
        "contiguous ranges taken (contig_alloc_success)",
        "pages migrated (pgmigrate_success)",
        "CMA area camera: pages",
        "  used by cma_alloc at most",
        "pageblocks holding camera pages",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} in\n{}", out.stdout);
    }
    // Without a contig actor or a CMA area, none of it.
    let plain = CONTIG
        .replace("cma = [{ name = \"camera\", size = \"32M\" }]\n", "")
        .replace("kind = \"contig\"", "enabled = false\nkind = \"contig\"")
        .replace("via = \"cma\"", "via = \"pages\"");
    let f = write(dir.path(), &plain);
    let out = pagesim(&["run", &f, "--scale", "0.1"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stdout.contains("contig_alloc_success"));
    assert!(!out.stdout.contains("CMA area"));
}

/// One bad scenario: the text, the line, the key and kind of the error,
/// and words of its message.
struct Bad {
    text: String,
    line: usize,
    key: Option<&'static str>,
    kind: ScenarioErrorKind,
    message: &'static str,
}

fn bad(
    from: &str,
    to: &str,
    at: &str,
    key: Option<&'static str>,
    kind: ScenarioErrorKind,
    message: &'static str,
) -> Bad {
    assert!(CONTIG.contains(from), "{from:?} not in CONTIG");
    let text = CONTIG.replacen(from, to, 1);
    // `[[actor]] NAME`: the table's header, where errors about the actor
    // as a whole are reported.
    let line = match at.strip_prefix("[[actor]] ") {
        Some(name) => line_of(&text, &format!("name = \"{name}\"")) - 1,
        None => line_of(&text, at),
    };
    Bad {
        text,
        line,
        key,
        kind,
        message,
    }
}

#[test]
fn bad_contig_keys_and_values_are_typed_errors_with_their_line() {
    use ScenarioErrorKind::{Invalid, OutOfBounds};
    let size = "size = \"16M\"";
    let cma = "cma = [{ name = \"camera\", size = \"32M\" }]";
    let cases = [
        bad(size, "size = \"0\"", "size = \"0\"", Some("size"), OutOfBounds, "less than a page"),
        bad(size, "size = \"1G\"", "size = \"1G\"", Some("size"), OutOfBounds, "more than the machine's memory"),
        bad(size, "size = \"64M\"", "size = \"64M\"", Some("size"), OutOfBounds, "more than CMA area `camera`"),
        bad("every = 10", "every = 0", "every = 0", Some("every"), OutOfBounds, "must be from 1 to"),
        bad("every = 10", "every = 1.5", "every = 1.5", None, Invalid, "invalid type"),
        bad("via = \"cma\"", "via = \"dma\"", "via = \"dma\"", None, Invalid, "unknown variant `dma`"),
        bad("via = \"cma\"", "via = \"cma\"\nrate = 3", "[[actor]] camera", None, Invalid, "`rate` does not apply to a contig actor"),
        bad("via = \"cma\"", "via = \"cma\"\nmigratetype = \"movable\"", "[[actor]] camera", None, Invalid, "`migratetype` does not apply to a contig actor"),
        bad("via = \"cma\"", "via = \"cma\"\narea = \"nope\"", "area = \"nope\"", Some("area"), Invalid, "names no CMA area (areas: camera)"),
        bad("via = \"cma\"", "via = \"cma\"\nboundary = \"16M\"", "[[actor]] camera", None, Invalid, "`boundary` does not apply to via = \"cma\""),
        bad("via = \"cma\"", "via = \"cma\"\nlifetyme = 3", "lifetyme", None, Invalid, "unknown field `lifetyme`"),
        bad("actor.camera.via = \"pages\"", "actor.camera.via = \"pages\"\nactor.camera.boundary = \"4M\"", "actor.camera.boundary", Some("actor.camera.boundary"), Invalid, "no smaller than `size`"),
        bad("actor.camera.via = \"pages\"", "actor.camera.via = \"pages\"\nactor.camera.align = \"3M\"", "actor.camera.align = \"3M\"", Some("actor.camera.align"), Invalid, "must be a power of two"),
        bad("actor.camera.via = \"pages\"", "actor.camera.via = \"pages\"\nactor.camera.node = 3", "actor.camera.node", Some("actor.camera.node"), OutOfBounds, "no memory on node 3"),
        bad("actor.camera.via = \"pages\"", "actor.camera.via = \"pages\"\nactor.camera.high = \"4M\"", "actor.camera.high", Some("actor.camera.high"), Invalid, "fewer than the 4096 pages of `size`"),
        bad("actor.camera.via = \"pages\"", "actor.camera.via = \"pages\"\nactor.camera.zone = \"dma32\"", "actor.camera.via = \"pages\"", None, Invalid, "the machine has no DMA32 zone"),
        bad("actor.camera.via = \"pages\"", "actor.camera.every = 20", "actor.camera.every", None, Invalid, "needs a CMA area"),
        bad("name = \"kernel\"\n", "name = \"kernel\"\nsize = \"4M\"\n", "[[actor]] kernel", None, Invalid, "`size` does not apply to a churn actor"),
        bad(cma, "cma = [{ name = \"camera\", size = \"3M\" }]", "cma = [", Some("cma.size"), Invalid, "not a whole number of pageblocks (2M each)"),
        bad(cma, "cma = [{ name = \"camera\", size = \"512M\" }]", "cma = [", Some("cma.size"), OutOfBounds, "more than the machine's memory"),
        bad(cma, "cma = [{ name = \"camera\", size = \"32M\", order_per_bit = 10 }]", "cma = [", Some("cma.order_per_bit"), OutOfBounds, "from 0 to 9"),
        bad(cma, "cma = [{ name = \"camera\", size = \"32M\", start = \"1M\" }]", "cma = [", Some("cma.start"), Invalid, "not pageblock-aligned"),
        bad(cma, "cma = [{ name = \"camera\", size = \"32M\", start = \"240M\" }]", "cma = [", Some("cma.start"), OutOfBounds, "runs past the end of memory"),
        bad(cma, "cma = [{ name = \"camera\", size = \"32M\", start = \"0\", node = 0 }]", "cma = [", Some("cma.node"), Invalid, "has a fixed `start`"),
        bad(cma, "cma = [{ name = \"camera\", size = \"32M\", node = 3 }]", "cma = [", Some("cma.node"), OutOfBounds, "no memory on node 3"),
        bad(cma, "cma = [{ name = \"camera\", size = \"32M\", align = \"3M\" }]", "cma = [", Some("cma.align"), Invalid, "power of two"),
        bad(cma, "cma = [{ name = \"camera\", sise = \"32M\" }]", "cma = [", None, Invalid, "unknown field `sise`"),
        bad(cma, "cma = [\n  { name = \"camera\", size = \"32M\" },\n  { size = \"32M\", name = \"camera\" },\n]", "size = \"32M\", name", Some("cma.name"), Invalid, "two CMA areas are named `camera`"),
        bad(cma, "cma = [\n  { name = \"camera\", size = \"160M\" },\n  { name = \"big\", size = \"160M\" },\n]", "name = \"big\"", Some("cma"), OutOfBounds, "no usable range of its node can hold it"),
        bad(cma, "cma = [\n  { name = \"camera\", start = \"0\", size = \"32M\" },\n  { name = \"b\", start = \"16M\", size = \"32M\" },\n]", "name = \"b\"", Some("cma"), Invalid, "overlaps an earlier area"),
        bad("name = \"no-cma\"\ncma = []", "name = \"no-cma\"\ncma = [{ size = \"3M\" }]", "cma = [{ size = \"3M\" }]", Some("cma.size"), Invalid, "variant `no-cma`: CMA area `cma0`"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, b) in cases.iter().enumerate() {
        let err = parse(&b.text, "c.toml", None).unwrap_err();
        let what = format!("case {i} ({}): {err}", b.message);
        assert_eq!(err.line, Some(b.line), "{what}");
        assert_eq!(err.kind, b.kind, "{what}");
        assert_eq!(err.key.as_deref(), b.key, "{what}");
        assert!(err.message.contains(b.message), "{what}");
        assert!(
            err.to_string().starts_with(&format!("c.toml:{}: ", b.line)),
            "{what}"
        );
        // The command line says the same and exits with 2.
        if i % 5 == 0 {
            let f = write(dir.path(), &b.text);
            let out = pagesim(&["run", &f]);
            assert_eq!(out.code, Some(2), "{what}: {}", out.stderr);
            assert!(
                out.stderr.contains(&format!("c.toml:{}:", b.line)),
                "{}",
                out.stderr
            );
            assert!(out.stderr.contains(b.message), "{}", out.stderr);
        }
    }
}

#[test]
fn contig_defaults_and_the_shipped_scenario() {
    use pagesim::scenario::{Behaviour, ContigCall};
    let s = parse(CONTIG, "c.toml", None).unwrap();
    let contig = |v: usize| match &s.variants[v].actors[4].behaviour {
        Behaviour::Contig(b) => b.clone(),
        other => panic!("{other:?}"),
    };
    let c = contig(0);
    assert_eq!((c.nr_pages, c.every, c.max_pages), (4096, 10, None));
    match c.call {
        ContigCall::Cma {
            area,
            ref name,
            align,
        } => {
            assert_eq!((area, name.as_str(), align.get()), (0, "camera", 9));
        }
        ref other => panic!("{other:?}"),
    }
    match contig(1).call {
        ContigCall::Pages(k) => {
            assert_eq!(k.align.0, 512, "a pageblock by default");
            assert_eq!((k.low.0, k.high.0, k.boundary), (0, 65536, None));
        }
        other => panic!("{other:?}"),
    }
    match contig(2).call {
        ContigCall::Range { align_pages, .. } => assert_eq!(align_pages, 4096),
        other => panic!("{other:?}"),
    }
    assert!(s.variants[1].cma.is_empty());
    assert_eq!(s.variants[0].cma.len(), 1);
    // The shipped scenario parses, with the area in its CMA variants only,
    // and runs shortened.
    let path = scenario_arg("contig.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let shipped = parse(&text, "contig.toml", None).unwrap();
    let with_cma: Vec<bool> = shipped.variants.iter().map(|v| !v.cma.is_empty()).collect();
    assert_eq!(with_cma, [true, false, false, true]);
    let doc = pagesim_json(&["run", &path, "--scale", "0.05"]);
    assert_eq!(doc["variants"][0]["cma_areas"][0]["name"], "camera");
}
