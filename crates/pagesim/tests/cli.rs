//! The command line: no arguments means `run` of the default scenario,
//! `--json` prints one parseable document for every command, `--out` writes
//! the SVG plots, and exit codes are 0, 1 or 2.

mod common;

use common::{fixture_arg, pagesim, pagesim_json, scenario_arg};

#[test]
fn json_documents_parse_for_every_command() {
    let run = pagesim_json(&["run", &scenario_arg("slab-storm.toml"), "--scale", "0.05"]);
    assert_eq!(run["kind"], "scenario");
    assert_eq!(run["variants"].as_array().unwrap().len(), 2);
    let replay = pagesim_json(&["replay", &fixture_arg("handmade.trace")]);
    assert_eq!(replay["kind"], "replay");
    // --json may come before the command too (it is global).
    let out = pagesim(&["--json", "replay", &fixture_arg("handmade.trace")]);
    assert_eq!(out.code, Some(0));
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["events"], replay["events"]);
}

#[test]
fn out_writes_three_svg_plots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("plots");
    let out = pagesim(&[
        "run",
        &scenario_arg("slab-storm.toml"),
        "--scale",
        "0.05",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for name in [
        "free-blocks.svg",
        "unusable-index.svg",
        "mixed-pageblocks.svg",
    ] {
        let svg = std::fs::read_to_string(d.join(name)).unwrap();
        assert!(svg.starts_with("<svg"), "{name}");
        assert!(
            svg.contains("shrink-slab") && svg.contains("no-shrink"),
            "{name}: one line per variant"
        );
    }
    let r = dir.path().join("replay");
    let out = pagesim(&[
        "replay",
        &fixture_arg("handmade.trace"),
        "--out",
        r.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(r.join("free-blocks.svg").exists());
}

#[test]
fn unwritable_output_is_a_runtime_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = pagesim(&[
        "replay",
        &fixture_arg("handmade.trace"),
        "--out",
        file.join("sub").to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("cannot write"));
}

#[test]
fn help_and_version() {
    let out = pagesim(&["--help"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("replay"));
    let out = pagesim(&["replay", "--help"]);
    assert!(out.stdout.contains("--policy"));
    assert!(out.stdout.contains("--lenient"));
}
