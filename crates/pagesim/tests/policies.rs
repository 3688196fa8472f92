//! The three named placement policies (`linux`, `packed`, `confined`) on
//! every shipped replay fixture, from empty memory and from a captured
//! state: each replay ends with the engine's invariant walk
//! (`check_invariants`, a failure is an error exit), frees nothing twice,
//! and serves the same requests; the policies differ only in placement.
//! Scenario variants naming an unknown confinement, or an unknown key, are
//! input errors.

mod common;

use common::{fixture_arg, pagesim, pagesim_json};
use serde_json::Value;

const POLICIES: [&str; 3] = ["linux", "packed", "confined"];

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Replays `trace` with the three policies side by side (with `extra`
/// options) and checks what every policy must keep.
fn check(trace: &str, extra: &[&str]) -> Value {
    let mut args = vec!["replay", trace];
    for p in POLICIES {
        args.extend(["--policy", p]);
    }
    args.extend(extra);
    let doc = pagesim_json(&args);
    let ps = doc["policies"].as_array().unwrap();
    let names: Vec<&str> = ps.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, POLICIES);
    for p in ps {
        let c = &p["counts"];
        assert_eq!(u(&c["double_frees"]), 0, "{} {extra:?}", p["name"]);
        assert_eq!(u(&c["other_free_errors"]), 0, "{} {extra:?}", p["name"]);
        // Same requests, same traced frees, whatever the placement.
        assert_eq!(c["frees"], ps[0]["counts"]["frees"]);
        assert_eq!(c["unknown_pfn_frees"], ps[0]["counts"]["unknown_pfn_frees"]);
        // The confinement counters move under `confined` only.
        let e = &p["engine"];
        if p["name"] != "confined" {
            assert_eq!(u(&e["confined_claims"]), 0);
            assert_eq!(u(&e["confined_releases"]), 0);
            assert_eq!(u(&e["confined_fallbacks"]), 0);
        }
    }
    doc
}

#[test]
fn the_three_policies_keep_every_invariant_on_the_handmade_trace() {
    let trace = fixture_arg("handmade.trace");
    check(&trace, &[]);
    check(&trace, &["--mem", "64M"]);
    check(&trace, &["--procfs", &fixture_arg("small.before.procfs")]);
}

#[test]
fn the_three_policies_keep_every_invariant_on_the_real_excerpt() {
    let trace = fixture_arg("cargo-build-excerpt.trace.zst");
    let empty = check(&trace, &[]);
    let seeded = check(
        &trace,
        &["--procfs", &fixture_arg("cargo-build.before.procfs")],
    );
    // Unmovable memory from empty memory: the confined policy claims its
    // pageblocks at the low end.
    let confined = &empty["policies"][2];
    assert!(u(&confined["engine"]["confined_claims"]) > 0);
    assert_eq!(u(&seeded["policies"][2]["engine"]["confined_fallbacks"]), 0);
}

#[test]
fn an_unknown_policy_is_a_usage_error_naming_the_three() {
    let out = pagesim(&[
        "replay",
        &fixture_arg("handmade.trace"),
        "--policy",
        "contiguitas",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    for p in POLICIES {
        assert!(out.stderr.contains(p), "{}", out.stderr);
    }
}

#[test]
fn a_variant_with_an_unknown_confinement_or_key_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(common::scenario_arg("thp-churn.toml")).unwrap();
    for (bad, message) in [
        (
            "confinement = \"high-end\"",
            "unknown variant `high-end`, expected `off` or `low-end`",
        ),
        ("confine = \"low-end\"", "unknown field `confine`"),
    ] {
        let text = base.replace("confinement = \"low-end\"", bad);
        assert_ne!(text, base);
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = pagesim(&["run", &path.display().to_string(), "--scale", "0.01"]);
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(out.stderr.contains(message), "{}", out.stderr);
    }
}
