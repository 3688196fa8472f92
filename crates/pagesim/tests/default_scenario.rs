//! The default scenario (seed 001's experiment): snapshots of its text
//! report, full length through `pagesim` with no arguments (about 10 s in a
//! debug build, 1 s in release) and shortened to a tenth (`--scale 0.1`).
//! Set `PAGESIM_UPDATE_SNAPSHOTS=1` to rewrite the snapshots after an
//! intended change, and review the diff.

mod common;

use std::path::PathBuf;

use common::{pagesim, pagesim_json};

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name)
}

/// Compares `args`' stdout with the snapshot `name`.
fn assert_snapshot(args: &[&str], name: &str) {
    let out = pagesim(args);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let path = snapshot_path(name);
    if std::env::var_os("PAGESIM_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &out.stdout).unwrap();
    }
    let want = std::fs::read_to_string(&path).expect("snapshot file exists");
    if out.stdout != want {
        let first = out
            .stdout
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "default scenario report differs from {} at line {}:\n got: {:?}\nwant: {:?}",
            path.display(),
            first + 1,
            out.stdout.lines().nth(first),
            want.lines().nth(first)
        );
    }
}

#[test]
fn shortened_default_scenario_snapshot() {
    assert_snapshot(&["run", "--scale", "0.1"], "default-scale-0.1.txt");
}

#[test]
fn full_default_scenario_without_arguments_snapshot() {
    assert_snapshot(&[], "default.txt");
}

#[test]
fn default_scenario_has_the_seed_shape() {
    let doc = pagesim_json(&["run", "--scale", "0.1"]);
    assert_eq!(doc["name"], "default");
    let v = &doc["variants"][0];
    assert_eq!(v["name"], "plain");
    let snaps = v["snapshots"].as_array().unwrap();
    assert_eq!(
        snaps.len(),
        2,
        "after the driver holds, after it re-allocates"
    );
    for s in snaps {
        let held = &s["summary"]["held"][0];
        assert_eq!(held["actor"], "driver");
        assert_eq!(held["pages"], 102400, "400 MB of 4 KiB pages");
        assert_eq!(held["min_pageblocks"], 200);
        assert!(held["pageblocks"].as_u64().unwrap() >= 200);
        // The driver's pages are unmovable: the spread covers them.
        let spread = &s["summary"]["unmovable_spread"];
        assert!(spread["pages"].as_u64().unwrap() >= 102400);
        assert!(spread["pageblocks"].as_u64() >= held["pageblocks"].as_u64());
        assert_eq!(
            spread["min_pageblocks"].as_u64().unwrap(),
            spread["pages"].as_u64().unwrap().div_ceil(512)
        );
        assert!(spread["ratio"].as_f64().unwrap() >= 1.0);
        let probes: Vec<u64> = s["summary"]["probes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["order"].as_u64().unwrap())
            .collect();
        assert_eq!(probes, [3, 9]);
        let zones = s["pagetypeinfo"]["zones"].as_array().unwrap();
        assert_eq!(zones.len(), 1);
        assert_eq!(zones[0]["zone"], "Normal");
    }
    let peak = &v["unmovable_spread_peak"];
    assert!(
        peak["spread"]["pageblocks"].as_u64() >= v["unmovable_spread_end"]["pageblocks"].as_u64()
    );
    assert!(peak.get("time_s").is_none(), "scenarios have no trace time");
    // Deterministic: the same seed gives the same figures.
    let again = pagesim_json(&["run", "--scale", "0.1"]);
    assert_eq!(again, doc);
    let other = pagesim_json(&["run", "--scale", "0.1", "--seed", "2"]);
    assert_ne!(
        other["variants"][0]["samples"],
        doc["variants"][0]["samples"]
    );
}
