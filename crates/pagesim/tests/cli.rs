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

/// Issue 10, item 6: a driver told to hold `1048576T` (2^60 bytes) in the
/// default scenario's 1 GiB machine. The old checker let it through: the
/// run went on with an actor that could never be satisfied, and with
/// `chunk` as large the packed variant asked for the whole chunk in one
/// call and aborted (exit 134, "memory allocation of 2251799813685248 bytes
/// failed"). Now it is an input error naming the file, the line and the key.
#[test]
fn a_driver_holding_more_than_the_machine_is_an_input_error() {
    let default = std::fs::read_to_string(scenario_arg("default.toml")).unwrap();
    assert_eq!(default.lines().nth(86), Some("hold = \"400M\""));
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "huge-hold-and-chunk.toml",
            default
                .replace("hold = \"400M\"", "hold = \"1048576T\"")
                .replace("chunk = \"40M\"", "chunk = \"1048576T\""),
        ),
        (
            "huge-hold.toml",
            default.replace("hold = \"400M\"", "hold = \"1048576T\""),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let f = path.display().to_string();
        let out = pagesim(&["run", &f]);
        assert_eq!(out.code, Some(2), "{name}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "{f}:87: actor `driver`: `hold` = 1024P is more than the machine's memory (1G)"
            )),
            "{name}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(out.stdout.is_empty(), "{name}: no report");
    }
}
