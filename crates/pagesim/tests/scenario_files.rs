//! Scenario files: unknown keys and bad values are errors that name the key
//! and the line; variants run side by side; the "packed" allocation mode
//! packs a driver's pages into fewer pageblocks than plain allocation.

mod common;

use std::path::Path;

use common::{pagesim, pagesim_json, scenario_arg};

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
    bad("rate = 20", "rate = -1", &["actor `cache`", "rate -1"]);
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
        &["rate 1e300 must be a number from 0 to"],
    );
    bad(
        "steps = 200",
        "steps = 9223372036854775807",
        &["more than 1099511627776 steps"],
    );
    bad(
        "memory = \"64M\"",
        "memory = \"16T\"",
        &["[machine]", "zone"],
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
