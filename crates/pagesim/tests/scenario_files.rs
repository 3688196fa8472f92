//! Scenario files: unknown keys, bad values and values beyond their bounds
//! (docs/pagesim.md, "Limits") are errors that name the key and the line;
//! variants run side by side; the "packed" allocation mode packs a
//! driver's pages into fewer pageblocks than plain allocation.

mod common;

use std::path::Path;

use common::{pagesim, pagesim_json, scenario_arg};
use pagesim::scenario::ScenarioErrorKind;

/// A small valid scenario; tests replace parts of it.
const SMALL: &str = r#"name = "small"
seed = 3

[machine]
memory = "64M"

[[phase]]
name = "run"
steps = 200
snapshot = "end"

[[actor]]
name = "cache"
migratetype = "movable"
rate = 20
lifetime = { dist = "forever" }

[[actor]]
name = "kernel"
migratetype = "unmovable"
rate = 4
orders = { 0 = 0.9, 3 = 0.1 }
lifetime = { dist = "exponential", mean = 20 }

[[actor]]
name = "driver"
kind = "hold"
migratetype = "unmovable"
hold = "8M"
chunk = "1M"
"#;

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("s.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs the scenario text; asserts exit 2 and a message with every needle.
fn assert_scenario_error(text: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), text);
    let out = pagesim(&["run", &f]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "stderr {:?} lacks {n:?}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn the_small_scenario_runs() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), SMALL);
    let doc = pagesim_json(&["run", &f]);
    assert_eq!(doc["kind"], "scenario");
    assert_eq!(doc["variants"][0]["name"], "base");
    let held = &doc["variants"][0]["snapshots"][0]["summary"]["held"][0];
    assert_eq!(held["actor"], "driver");
    assert_eq!(held["pages"], 2048);
    assert_eq!(held["min_pageblocks"], 4);
}

#[test]
fn unknown_keys_name_the_key_and_the_line() {
    // Line 16 is inside the first [[actor]].
    let text = SMALL.replace("rate = 20\n", "rate = 20\nlifetyme = 3\n");
    assert_eq!(text.lines().nth(15), Some("lifetyme = 3"));
    assert_scenario_error(&text, &["s.toml:16:", "unknown field `lifetyme`"]);
    let text = SMALL.replace("[machine]\n", "[machine]\ncores = 4\n");
    assert_scenario_error(&text, &[":5:", "unknown field `cores`"]);
    let text = format!("{SMALL}\n[[variant]]\nname = \"v\"\nactor.kernel.rait = 2\n");
    assert_scenario_error(&text, &["unknown field `rait`"]);
    let text = format!("{SMALL}\n[reclaim]\nmode = \"lru\"\n");
    assert_scenario_error(&text, &["unknown field `mode`"]);
}

#[test]
fn bad_values_are_reported_with_their_line() {
    let bad = |from: &str, to: &str, needles: &[&str]| {
        let text = SMALL.replacen(from, to, 1);
        assert_ne!(text, SMALL, "{from} not found");
        assert_scenario_error(&text, needles);
    };
    bad(
        "memory = \"64M\"",
        "memory = \"64Q\"",
        &[":5:", "invalid size `64Q`"],
    );
    bad(
        "rate = 20",
        "rate = -1",
        &[":15:", "actor `cache`", "`rate` = -1"],
    );
    bad(
        "{ 0 = 0.9, 3 = 0.1 }",
        "{ 0 = 0.9, 30 = 0.1 }",
        &["order 30"],
    );
    bad(
        "{ 0 = 0.9, 3 = 0.1 }",
        "{ x = 1.0 }",
        &[":22:", "order `x` is not a number"],
    );
    bad(
        "dist = \"forever\"",
        "dist = \"sometimes\"",
        &[":16:", "sometimes"],
    );
    bad("mean = 20", "mean = 0", &["lifetime mean 0"]);
    bad(
        "{ 0 = 0.9, 3 = 0.1 }",
        "{ 0 = 1.7e308, 3 = 1.7e308 }",
        &[":22:", "the weights add up to more than the largest number"],
    );
    bad(
        "{ 0 = 0.9, 3 = 0.1 }",
        "{ 0 = 0.9, 00 = 0.1 }",
        &[":22:", "order 0 is given twice"],
    );
    // Huge but valid lifetimes run (and never expire).
    let huge = SMALL.replace(
        "{ dist = \"exponential\", mean = 20 }",
        "{ dist = \"uniform\", min = 0, max = 18446744073709551615 }",
    );
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), &huge);
    assert_eq!(pagesim(&["run", &f]).code, Some(0));
    bad("steps = 200", "steps = 0", &["phase `run` has no steps"]);
    bad(
        "chunk = \"1M\"",
        "chunk = \"1M\"\nstart = \"nope\"",
        &[":31:", "no phase named `nope`"],
    );
    bad(
        "migratetype = \"movable\"",
        "migratetype = \"sideways\"",
        &[":14:", "sideways"],
    );
    bad(
        "migratetype = \"movable\"",
        "gfp = \"GFP_KERNEL|__GFP_SIDEWAYS\"",
        &["unknown GFP flag `__GFP_SIDEWAYS`"],
    );
    bad(
        "kind = \"hold\"",
        "kind = \"hold\"\nrate = 3",
        &["`rate` does not apply to a hold actor"],
    );
    bad("seed = 3", "seed = \"three\"", &[":2:"]);
    bad(
        "rate = 20",
        "rate = 1e300",
        &["`rate` = 1e300 must be a number from 0 to"],
    );
    bad(
        "steps = 200",
        "steps = 9223372036854775807",
        &["more than 1099511627776 steps"],
    );
    bad(
        "memory = \"64M\"",
        "memory = \"16T\"",
        &[":5:", "[machine]: `memory` spans 4294967296 pages"],
    );
    let no_actor_name = SMALL.replace("name = \"cache\"\n", "");
    assert_scenario_error(&no_actor_name, &["needs a `name`"]);
    let dup = SMALL.replace("name = \"kernel\"", "name = \"cache\"");
    assert_scenario_error(&dup, &["two actors are named `cache`"]);
    assert_scenario_error("not toml at all [", &["s.toml:1:"]);
}

#[test]
fn variants_run_side_by_side_from_one_seed() {
    let text = format!(
        "{SMALL}\n[[variant]]\nname = \"a\"\n\n[[variant]]\nname = \"b\"\nactor.kernel.enabled = false\n\n[[variant]]\nname = \"a2\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), &text);
    let doc = pagesim_json(&["run", &f]);
    let vs = doc["variants"].as_array().unwrap();
    let names: Vec<&str> = vs.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "a2"]);
    // Same seed, same overrides: identical runs.
    assert_eq!(vs[0]["samples"], vs[2]["samples"]);
    assert_eq!(
        vs[0]["snapshots"][0]["summary"],
        vs[2]["snapshots"][0]["summary"]
    );
    assert_eq!(vs[1]["actors"].as_array().unwrap().len(), 2);
    let text = format!("{SMALL}\n[[variant]]\nname = \"x\"\nactor.ghost.rate = 1\n");
    assert_scenario_error(&text, &["overrides unknown actor `ghost`"]);
}

#[test]
fn packed_mode_packs_the_driver() {
    let variants = "[[variant]]\nname = \"plain\"\n\n[[variant]]\nname = \"packed\"\nactor.driver.alloc_mode = \"packed\"\n";
    let text = format!("{SMALL}\n{variants}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packed.toml");
    std::fs::write(&path, text).unwrap();
    let doc = pagesim_json(&["run", path.to_str().unwrap()]);
    let held = |v: usize| {
        let summary = &doc["variants"][v]["snapshots"][0]["summary"];
        let driver = summary["held"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["actor"] == "driver")
            .unwrap()
            .clone();
        (
            driver["pages"].as_u64().unwrap(),
            driver["pageblocks"].as_u64().unwrap(),
            driver["min_pageblocks"].as_u64().unwrap(),
        )
    };
    let (plain, packed) = (held(0), held(1));
    assert_eq!(doc["variants"][1]["name"], "packed");
    // The same pages, in no more pageblocks, and within one of the minimum.
    assert_eq!(plain.0, packed.0, "plain {plain:?}, packed {packed:?}");
    assert!(packed.0 > 0);
    assert!(packed.1 <= plain.1, "plain {plain:?}, packed {packed:?}");
    assert!(packed.1 <= packed.2 + 1, "packed {packed:?}");
    let text = SMALL.replace(
        "kind = \"hold\"",
        "kind = \"hold\"\nalloc_mode = \"squeezed\"",
    );
    assert_scenario_error(&text, &["squeezed"]);
}

/// A variant's `packing` key turns the engine's packing policy on for that
/// variant only: the plain driver's `alloc()` calls are then packed by the
/// allocator itself, so its pages lie in no more pageblocks than without
/// the policy, and the other variant is unchanged.
#[test]
fn packing_key_sets_the_policy_per_variant() {
    let variants = "[[variant]]\nname = \"linux\"\n\n[[variant]]\nname = \"policy\"\npacking = \"unmovable\"\n\n[[variant]]\nname = \"off\"\npacking = \"off\"\n";
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), &format!("{SMALL}\n{variants}"));
    let doc = pagesim_json(&["run", &f]);
    let vs = doc["variants"].as_array().unwrap();
    let driver_pageblocks = |v: &serde_json::Value| {
        v["snapshots"][0]["summary"]["held"][0]["pageblocks"]
            .as_u64()
            .unwrap()
    };
    assert!(driver_pageblocks(&vs[1]) <= driver_pageblocks(&vs[0]));
    // `off` is the default: the same run as no key at all.
    assert_eq!(vs[0]["samples"], vs[2]["samples"]);
    let bad = format!("{SMALL}\n[[variant]]\nname = \"x\"\npacking = \"tight\"\n");
    assert_scenario_error(&bad, &["tight", "unmovable-and-reclaimable"]);
}

#[test]
fn shipped_scenarios_parse_and_run_shortened() {
    for name in ["default.toml", "thp-churn.toml", "slab-storm.toml"] {
        let doc = pagesim_json(&["run", &scenario_arg(name), "--scale", "0.02"]);
        assert!(!doc["variants"].as_array().unwrap().is_empty(), "{name}");
        for v in doc["variants"].as_array().unwrap() {
            assert!(!v["snapshots"].as_array().unwrap().is_empty(), "{name}");
        }
    }
    let out = pagesim(&["run", &scenario_arg("default.toml"), "--scale", "-1"]);
    assert_eq!(out.code, Some(2));
    let out = pagesim(&["run", &scenario_arg("default.toml"), "--scale", "1e30"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("steps"));
    let out = pagesim(&["run", "/nonexistent.toml"]);
    assert_eq!(out.code, Some(2));
}

/// Every bounded value beyond its bound is an error of kind `OutOfBounds`
/// with the file, the line and the key, through the library and through
/// the command line (exit 2, no panic): a row per bound (docs/pagesim.md,
/// "Limits").
#[test]
fn out_of_bounds_values_name_file_line_and_key() {
    // Whole-file texts for the bounds on how many tables a file has.
    let actors = (0..1022).fold(SMALL.to_owned(), |t, i| {
        t + &format!(
            "\n[[actor]]\nname = \"a{i}\"\nmigratetype = \"movable\"\nrate = 1\nlifetime = {{ dist = \"forever\" }}\n"
        )
    });
    let phases = (0..1024).fold(SMALL.to_owned(), |t, i| {
        t.replacen(
            "[[actor]]",
            &format!("[[phase]]\nname = \"p{i}\"\nsteps = 1\n\n[[actor]]"),
            1,
        )
    });
    let snapshots = (0..256).fold(SMALL.to_owned(), |t, i| {
        t.replacen(
            "[[actor]]",
            &format!("[[phase]]\nname = \"p{i}\"\nsteps = 1\nsnapshot = \"s{i}\"\n\n[[actor]]"),
            1,
        )
    });
    let variants = (0..17).fold(SMALL.to_owned(), |t, i| {
        t + &format!("\n[[variant]]\nname = \"v{i}\"\n")
    });
    // 32 GiB is 2^23 pages: eight variants of it are 2^26, a ninth too many.
    let big_variants = (0..9).fold(SMALL.replace("\"64M\"", "\"32G\""), |t, i| {
        t + &format!("\n[[variant]]\nname = \"v{i}\"\n")
    });
    let override_hold = format!("{SMALL}\n[[variant]]\nname = \"v\"\nactor.driver.hold = \"1G\"\n");
    let line_of = |text: &str, needle: &str| {
        text.lines()
            .position(|l| l.starts_with(needle))
            .map(|i| i + 1)
            .unwrap()
    };
    let last_line_of = |text: &str, needle: &str| {
        text.lines()
            .enumerate()
            .filter(|(_, l)| *l == needle)
            .last()
            .map(|(i, _)| i + 1)
            .unwrap()
    };
    let edit = |pairs: &[(&str, &str)]| {
        pairs.iter().fold(SMALL.to_owned(), |t, (from, to)| {
            assert!(t.contains(from), "{from} not found");
            t.replacen(from, to, 1)
        })
    };
    // (text, line, key, message)
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (
            edit(&[("hold = \"8M\"", "hold = \"65M\"")]),
            29,
            "hold",
            "actor `driver`: `hold` = 65M is more than the machine's memory (64M)",
        ),
        (
            edit(&[("chunk = \"1M\"", "chunk = \"1048576T\"")]),
            30,
            "chunk",
            "`chunk` = 1024P is more than the machine's memory (64M)",
        ),
        (
            edit(&[("rate = 20\n", "rate = 20\nmax = \"1T\"\n")]),
            16,
            "max",
            "actor `cache`: `max` = 1T is more than the machine's memory (64M)",
        ),
        (
            edit(&[("rate = 20\n", "rate = 2e7\n")]),
            15,
            "rate",
            "`rate` = 20000000.0 must be a number from 0 to 10000000",
        ),
        (
            override_hold.clone(),
            line_of(&override_hold, "actor.driver.hold"),
            "actor.driver.hold",
            "variant `v`, actor `driver`: `actor.driver.hold` = 1G is more than the machine's memory (64M)",
        ),
        (
            edit(&[("memory = \"64M\"", "memory = \"512G\"")]),
            5,
            "memory",
            "[machine]: `memory` spans 134217728 pages (holes included); pagesim simulates at most 67108864 pages (256G of 4K pages)",
        ),
        (
            edit(&[(
                "memory = \"64M\"",
                "ranges = [\n  { start = 0, size = \"64M\" },\n  { start = \"1G\", size = \"64M\", node = 64 },\n]",
            )]),
            7,
            "node",
            "`node` = 64 is not below 64",
        ),
        (
            edit(&[("memory = \"64M\"", "memory = \"64M\"\nmin_free_kbytes = 65537")]),
            6,
            "min_free_kbytes",
            "`min_free_kbytes` = 65537 is more than the machine's memory (64M = 65536 KiB)",
        ),
        (
            edit(&[("memory = \"64M\"", "memory = \"64M\"\npage_size = \"3K\"")]),
            6,
            "page_size",
            "`page_size`: page size 3072 is not a power of two",
        ),
        (
            edit(&[("memory = \"64M\"", "memory = \"64M\"\norders = 17")]),
            6,
            "orders",
            "[machine]: `orders`: ",
        ),
        (
            edit(&[("memory = \"64M\"", "memory = \"64M\"\nwatermark_scale_factor = 0")]),
            6,
            "watermark_scale_factor",
            "outside 1..=3000",
        ),
        (
            edit(&[("seed = 3", "seed = 3\nsample_every = 0")]),
            3,
            "sample_every",
            "`sample_every` must be at least 1",
        ),
        (
            edit(&[
                ("seed = 3", "seed = 3\nsample_every = 1"),
                ("steps = 200", "steps = 20001"),
            ]),
            3,
            "sample_every",
            "`sample_every` = 1 takes 20001 samples of the 20001 steps; at most 20000 (sample_every >= 2)",
        ),
        (
            edit(&[("seed = 3", "seed = 3\nprobe_orders = [3, 9, 3]")]),
            3,
            "probe_orders",
            "`probe_orders`: order 3 is listed twice",
        ),
        (
            edit(&[("seed = 3", "seed = 3\nprobe_orders = [3, 11]")]),
            3,
            "probe_orders",
            "`probe_orders`: order 11 is not below orders = 11",
        ),
        (
            edit(&[("steps = 200", "steps = 0")]),
            9,
            "steps",
            "phase `run` has no steps",
        ),
        (
            actors.clone(),
            last_line_of(&actors, "[[actor]]"),
            "[[actor]]",
            "more than 1024 actors",
        ),
        (
            phases.clone(),
            last_line_of(&phases, "[[phase]]"),
            "[[phase]]",
            "more than 1024 phases",
        ),
        (
            snapshots.clone(),
            line_of(&snapshots, "snapshot = \"s255\""),
            "snapshot",
            "more than 256 phases take a `snapshot`",
        ),
        (
            variants.clone(),
            line_of(&variants, "name = \"v16\"") - 1,
            "[[variant]]",
            "more than 16 variants",
        ),
        (
            big_variants.clone(),
            line_of(&big_variants, "name = \"v8\"") - 1,
            "[[variant]]",
            "variant `v8`: 9 variants of a machine spanning 8388608 pages simulate 75497472 pages at once; pagesim simulates at most 67108864",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (text, line, key, message) in &cases {
        let e = pagesim::scenario::parse(text, "s.toml", None).unwrap_err();
        assert_eq!(e.kind, ScenarioErrorKind::OutOfBounds, "{e}");
        assert_eq!(e.key.as_deref(), Some(*key), "{e}");
        assert_eq!(e.line, Some(*line), "{key}: {e}");
        assert!(e.message.contains(message), "{e} lacks {message:?}");
        let f = write(dir.path(), text);
        let out = pagesim(&["run", &f]);
        assert_eq!(out.code, Some(2), "{key}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("{f}:{line}: ")) && out.stderr.contains(message),
            "{key}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    // Issue 10, item 6 (tests/cli.rs has it through the binary): the
    // default scenario's driver holding 1048576T.
    let default = std::fs::read_to_string(scenario_arg("default.toml")).unwrap();
    let huge = default.replace("hold = \"400M\"", "hold = \"1048576T\"");
    let e = pagesim::scenario::parse(&huge, "default.toml", None).unwrap_err();
    assert_eq!(e.kind, ScenarioErrorKind::OutOfBounds);
    assert_eq!((e.line, e.key.as_deref()), (Some(87), Some("hold")));
    // At the bounds themselves, the scenarios are fine.
    let at_bounds = [
        edit(&[("hold = \"8M\"", "hold = \"64M\"\nalloc_mode = \"packed\"")]),
        edit(&[
            ("seed = 3", "seed = 3\nsample_every = 1"),
            ("steps = 200", "steps = 20000"),
        ]),
        edit(&[(
            "memory = \"64M\"",
            "memory = \"64M\"\nmin_free_kbytes = 65536",
        )]),
    ];
    for text in &at_bounds {
        pagesim::scenario::parse(text, "s.toml", None).unwrap();
    }
    let eight = (0..8).fold(SMALL.replace("\"64M\"", "\"32G\""), |t, i| {
        t + &format!("\n[[variant]]\nname = \"v{i}\"\n")
    });
    pagesim::scenario::parse(&eight, "s.toml", None).unwrap();
}

/// `regions = "SIZE"` turns memory regions (seed 000) on for one variant:
/// the run completes (the engine's invariants hold at its end) and a bad
/// size is an error naming the key, its line and the size.
#[test]
fn regions_key_sets_regions_per_variant() {
    let variants =
        "[[variant]]\nname = \"linux\"\n\n[[variant]]\nname = \"regions\"\nregions = \"8M\"\n";
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), &format!("{SMALL}\n{variants}"));
    let doc = pagesim_json(&["run", &f]);
    let vs = doc["variants"].as_array().unwrap();
    assert_eq!(vs.len(), 2);
    let bad = format!("{SMALL}\n[[variant]]\nname = \"x\"\nregions = \"3M\"\n");
    assert_scenario_error(&bad, &["s.toml:", "`regions`", "3145728", "power of two"]);
}
