//! Compaction in scenarios (issue 14, item 4): on by default, off with
//! `compaction = { enabled = false }`; direct compaction serves huge-page
//! requests the fragmented machine could not, by moving movable actors'
//! blocks through the simulator's migrator; bad keys and values are
//! errors naming file, line and key.

mod common;

use std::path::Path;

use common::{pagesim, pagesim_json};
use pagesim::scenario::{parse, DirectCompaction, ScenarioErrorKind};

/// Anonymous memory fills most of the machine in order-0 pages, then half
/// of it goes away at random: free memory is plentiful but in holes
/// scattered over every pageblock. Then huge pages are asked for, and
/// kept: once the untouched pageblocks are used, only compaction makes
/// more (release build: on 64/100 served, off 19/100).
const FRAGMENTED: &str = r#"name = "fragmented"
seed = 7
sample_every = 100

[machine]
memory = "256M"

[[phase]]
name = "fill"
steps = 500

[[phase]]
name = "wait"
steps = 1000

[[phase]]
name = "thp"
steps = 500
snapshot = "end"

[[actor]]
name = "anon"
migratetype = "movable"
rate = 110
lifetime = { dist = "uniform", min = 500, max = 3000 }
reclaimable = false
stop = "fill"

[[actor]]
name = "thp"
migratetype = "movable"
rate = 0.2
orders = { 9 = 1.0 }
lifetime = { dist = "forever" }
reclaimable = false
start = "thp"

[[actor]]
name = "kernel"
migratetype = "unmovable"
rate = 2
orders = { 0 = 0.9, 3 = 0.1 }
lifetime = { dist = "exponential", mean = 50 }

[[variant]]
name = "on"
compaction = { direct = true, proactiveness = 20, every = 10 }

[[variant]]
name = "off"
compaction = { enabled = false }
"#;

/// The line of the `on` variant's `compaction` table.
const COMPACTION_LINE: usize = 47;

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn compaction_serves_huge_pages_the_fragmented_machine_could_not() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), FRAGMENTED);
    // The run ends with the invariant walk: exit code 0 says it passed.
    let doc = pagesim_json(&["run", &f]);
    let on = &doc["variants"][0]["compaction"];
    let off = &doc["variants"][1]["compaction"];
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(on["enabled"], true);
    assert_eq!(on["direct"], true);
    assert_eq!(off["enabled"], false);
    assert!(n(on, "compact_stall") > 0, "{on}");
    assert!(n(on, "compact_success") > 0, "{on}");
    assert!(n(on, "migrated_pages") > 0, "{on}");
    assert!(n(on, "compact_migrate_scanned") > 0, "{on}");
    for k in ["compact_stall", "compact_success", "migrated_pages"] {
        assert_eq!(n(off, k), 0, "{k}: {off}");
    }
    let rate = |c: &serde_json::Value| {
        let r = &c["pageblock"];
        r["served"].as_f64().unwrap() / r["requests"].as_f64().unwrap()
    };
    assert_eq!(on["pageblock"]["requests"], off["pageblock"]["requests"]);
    assert!(rate(on) > rate(off), "on {on}\noff {off}");
    let samples = on["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 20, "one per 100 steps");
    let total: u64 = samples
        .iter()
        .map(|s| s["pageblock"]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, n(&on["pageblock"], "requests"));
    let snap = &doc["variants"][0]["snapshots"][0]["summary"]["requests"];
    assert_eq!(
        snap["pageblock"], on["pageblock"],
        "one snapshot, at the end"
    );
    // The text report shows the figures side by side.
    let out = pagesim(&["run", &f]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for row in [
        "requests that compacted (compact_stall)",
        "pages migrated by compaction",
        "order-9 requests served",
        "free blocks of order 9 or more",
    ] {
        assert!(out.stdout.contains(row), "{row} in {}", out.stdout);
    }
}

#[test]
fn compaction_defaults_and_scale() {
    let text = FRAGMENTED.replace("compaction = { enabled = false }\n", "");
    let s = parse(&text, "c.toml", None).unwrap();
    let c = s.variants[1].compaction.expect("on by default");
    assert_eq!(c.direct, DirectCompaction::On);
    assert_eq!(c.proactiveness, 20);
    assert_eq!(c.every, 10);
    let s = parse(FRAGMENTED, "c.toml", Some(0.5)).unwrap();
    assert_eq!(s.variants[0].compaction.unwrap().every, 5);
    assert!(s.variants[1].compaction.is_none());
    let text = FRAGMENTED.replace(
        "{ direct = true, proactiveness = 20, every = 10 }",
        "{ direct = false, proactiveness = 0 }",
    );
    let c = parse(&text, "c.toml", None).unwrap().variants[0]
        .compaction
        .unwrap();
    assert_eq!(c.direct, DirectCompaction::Off);
    assert_eq!(c.proactiveness, 0);
}

#[test]
fn bad_compaction_keys_and_values_name_file_line_and_key() {
    assert_eq!(
        FRAGMENTED
            .lines()
            .nth(COMPACTION_LINE - 1)
            .map(|l| &l[..10]),
        Some("compaction")
    );
    let dir = tempfile::tempdir().unwrap();
    let with = |table: &str| {
        FRAGMENTED.replace("{ direct = true, proactiveness = 20, every = 10 }", table)
    };
    let cases: [(&str, &str, Option<&str>); 7] = [
        (
            "{ proactiveness = 101 }",
            "from 0 to 100",
            Some("compaction.proactiveness"),
        ),
        (
            "{ proactiveness = -1 }",
            "from 0 to 100",
            Some("compaction.proactiveness"),
        ),
        ("{ every = 0 }", "from 1 to", Some("compaction.every")),
        ("{ direkt = true }", "unknown field `direkt`", None),
        ("{ direct = \"yes\" }", "invalid type", None),
        ("{ every = 1.5 }", "invalid type", None),
        ("\"on\"", "invalid type", None),
    ];
    for (table, message, key) in cases {
        let text = with(table);
        let f = write(dir.path(), &text);
        let out = pagesim(&["run", &f]);
        assert_eq!(out.code, Some(2), "{table}: {}", out.stderr);
        let at = format!("c.toml:{COMPACTION_LINE}:");
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
        let err = parse(&text, "c.toml", None).unwrap_err();
        assert_eq!(err.line, Some(COMPACTION_LINE), "{table}");
        match key {
            Some(key) => {
                assert_eq!(err.kind, ScenarioErrorKind::OutOfBounds, "{table}");
                assert_eq!(err.key.as_deref(), Some(key));
            }
            None => assert_eq!(err.kind, ScenarioErrorKind::Invalid, "{table}"),
        }
    }
}
