//! Free page reporting in scenarios (issue 12, part 4): a variant's
//! `reporting` table turns it on; the reported fraction rises while the
//! machine is idle; bad keys and values are errors naming file, line and
//! key; the JSON fields and the plot exist.

mod common;

use std::path::Path;

use common::{pagesim, pagesim_json};
use pagesim::scenario::{parse, ScenarioErrorKind};

/// A busy phase (huge and small blocks come and go, and fill the machine:
/// free memory falls below the low watermark plus a batch of order 9, so
/// passes skip the zone), then an idle one: the churn stops, its blocks
/// expire during the idle phase, and nothing else happens. Two variants:
/// without and with reporting.
const BUSY_IDLE: &str = r#"name = "busy-idle"
seed = 5
sample_every = 20

[machine]
memory = "512M"

[[phase]]
name = "busy"
steps = 600
snapshot = "end of the busy phase"

[[phase]]
name = "idle"
steps = 1000
snapshot = "end of the idle phase"

[[actor]]
name = "anon"
migratetype = "movable"
rate = 3
orders = { 0 = 0.5, 9 = 0.5 }
lifetime = { dist = "exponential", mean = 300 }
stop = "busy"

[[actor]]
name = "kernel"
migratetype = "unmovable"
rate = 4
lifetime = { dist = "exponential", mean = 30 }
stop = "busy"

[[variant]]
name = "off"

[[variant]]
name = "on"
reporting = { order = 9, capacity = 32, budget_fraction = 16, every = 20 }
"#;

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("r.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn reporting_catches_up_while_the_machine_is_idle() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), BUSY_IDLE);
    let doc = pagesim_json(&["run", &f]);
    let off = &doc["variants"][0];
    let on = &doc["variants"][1];
    assert!(off["reporting"].is_null());
    assert!(off["snapshots"][0]["summary"].get("reporting").is_none());
    let r = &on["reporting"];
    for key in [
        "order",
        "capacity",
        "budget_fraction",
        "every",
        "passes",
        "continued_passes",
        "batches",
        "failed_batches",
        "reported_pages",
        "reported_reallocated",
    ] {
        assert!(r[key].is_u64(), "reporting.{key}: {r}");
    }
    assert_eq!(r["order"], 9);
    assert_eq!(r["every"], 20);
    assert!(r["passes"].as_u64().unwrap() > 0);
    assert!(r["batches"].as_u64().unwrap() > 0);
    assert_eq!(r["failed_batches"], 0);
    assert!(r["reported_pages"].as_u64().unwrap() > 0);
    // Huge blocks were reported, then allocated again during the churn.
    assert!(r["reported_reallocated"].as_u64().unwrap() > 0, "{r}");
    let fraction = |v: &serde_json::Value| v["fraction"].as_f64().unwrap();
    let busy = &on["snapshots"][0]["summary"]["reporting"];
    let idle = &on["snapshots"][1]["summary"]["reporting"];
    assert!(busy["free_reportable"].as_u64().unwrap() > 0);
    assert!(fraction(idle) > 0.0);
    assert!(fraction(idle) > fraction(busy), "busy {busy}, idle {idle}");
    assert!(fraction(idle) > 0.9, "{idle}");
    assert_eq!(r["end"], *idle, "the idle phase ends the run");
    // Reported memory grows through the idle phase, as the blocks the
    // churn left expire and passes report them.
    let samples = r["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 80, "one per 20 steps");
    let at = |step: u64| {
        samples
            .iter()
            .find(|s| s["at"] == step)
            .unwrap_or_else(|| panic!("no sample at {step}"))
    };
    let reported = |s: &serde_json::Value| s["reported"].as_u64().unwrap();
    assert!(
        reported(at(1600)) > 2 * reported(at(620)),
        "{} -> {}",
        at(620),
        at(1600)
    );
    assert!(fraction(at(1600)) > fraction(at(600)));
    // The variant without reporting runs as before: the same requests.
    assert_eq!(
        off["actors"][0]["allocs"], on["actors"][0]["allocs"],
        "reporting changes no request"
    );
}

#[test]
fn the_text_report_and_the_plot_show_reporting() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), BUSY_IDLE);
    let out_dir = dir.path().join("plots");
    let out = pagesim(&["run", &f, "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for needle in [
        "order 9, every 20",
        "free page reporting",
        "  reported fraction",
        "  pages reported (cumulative)",
        "  reported pages allocated again",
        "  reporting passes",
        "  report batches",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} in\n{}", out.stdout);
    }
    let svg = std::fs::read_to_string(out_dir.join("reported-memory.svg")).unwrap();
    assert!(svg.contains("reported memory (MiB)"));
    assert!(
        svg.lines().any(|l| l.trim() == "on"),
        "the variant's line is labelled"
    );
    assert!(
        !svg.lines().any(|l| l.trim() == "off"),
        "only variants with reporting"
    );
    // Without a variant with reporting, no reporting plot.
    let plain = BUSY_IDLE.replace(
        "reporting = { order = 9, capacity = 32, budget_fraction = 16, every = 20 }\n",
        "",
    );
    let f = write(dir.path(), &plain);
    let out_dir = dir.path().join("plain");
    let out = pagesim(&["run", &f, "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stdout.contains("free page reporting"));
    assert!(out_dir.join("free-blocks.svg").exists());
    assert!(!out_dir.join("reported-memory.svg").exists());
}

/// The line of `reporting = ...` in [`BUSY_IDLE`].
const REPORTING_LINE: usize = 38;

#[test]
fn bad_reporting_keys_and_values_name_file_line_and_key() {
    assert_eq!(
        BUSY_IDLE.lines().nth(REPORTING_LINE - 1).map(|l| &l[..9]),
        Some("reporting")
    );
    let dir = tempfile::tempdir().unwrap();
    let with = |table: &str| {
        BUSY_IDLE.replace(
            "{ order = 9, capacity = 32, budget_fraction = 16, every = 20 }",
            table,
        )
    };
    let cases: [(&str, &str, Option<&str>); 10] = [
        ("{ order = 11 }", "from 0 to 10", Some("reporting.order")),
        ("{ order = -1 }", "from 0 to 10", Some("reporting.order")),
        (
            "{ capacity = 0 }",
            "from 1 to 1024",
            Some("reporting.capacity"),
        ),
        (
            "{ capacity = 70000 }",
            "from 1 to 1024",
            Some("reporting.capacity"),
        ),
        (
            "{ budget_fraction = 0 }",
            "from 1 to 65535",
            Some("reporting.budget_fraction"),
        ),
        ("{ every = 0 }", "from 1 to", Some("reporting.every")),
        ("{ ordr = 9 }", "unknown field `ordr`", None),
        ("{ every = \"often\" }", "invalid type", None),
        ("{ every = 1.5 }", "invalid type", None),
        ("\"yes\"", "invalid type", None),
    ];
    for (table, message, key) in cases {
        let text = with(table);
        let f = write(dir.path(), &text);
        let out = pagesim(&["run", &f]);
        assert_eq!(out.code, Some(2), "{table}: {}", out.stderr);
        let at = format!("r.toml:{REPORTING_LINE}:");
        assert!(out.stderr.contains(&at), "{table}: {at} in {}", out.stderr);
        assert!(
            out.stderr.contains(message),
            "{table}: {message:?} in {}",
            out.stderr
        );
        if let Some(key) = key {
            assert!(out.stderr.contains(&format!("`{key}`")), "{}", out.stderr);
            assert!(out.stderr.contains("variant `on`"), "{}", out.stderr);
        }
        assert!(!out.stderr.contains("panicked"));
        // The library's error carries the kind and the key.
        let err = parse(&text, "r.toml", None).unwrap_err();
        assert_eq!(err.line, Some(REPORTING_LINE), "{table}");
        match key {
            Some(key) => {
                assert_eq!(err.kind, ScenarioErrorKind::OutOfBounds, "{table}");
                assert_eq!(err.key.as_deref(), Some(key));
            }
            None => assert_eq!(err.kind, ScenarioErrorKind::Invalid, "{table}"),
        }
    }
    // The order bound follows the machine's orders.
    let small = with("{ order = 6 }")
        .replace("sample_every = 20", "sample_every = 20\nprobe_orders = [3]")
        .replace("9 = 0.5", "5 = 0.5")
        .replace(
            "memory = \"512M\"",
            "memory = \"512M\"\norders = 6\npageblock_order = 5",
        );
    let err = parse(&small, "r.toml", None).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("reporting.order"));
    assert!(err.message.contains("from 0 to 5"), "{}", err.message);
}

#[test]
fn reporting_defaults_and_scale() {
    let text = BUSY_IDLE.replace(
        "{ order = 9, capacity = 32, budget_fraction = 16, every = 20 }",
        "{}",
    );
    let s = parse(&text, "r.toml", None).unwrap();
    let r = s.variants[1].reporting.unwrap();
    assert_eq!(r.policy, pagealloc::ReportingPolicy::default());
    assert_eq!(r.every, 1);
    assert!(s.variants[0].reporting.is_none());
    let s = parse(BUSY_IDLE, "r.toml", Some(0.5)).unwrap();
    assert_eq!(s.variants[1].reporting.unwrap().every, 10);
}
