//! Memory regions (seed 000) in a scenario: a variant with `regions` set
//! reports its fully free regions beside the ideal and what the region
//! allocator did (text and JSON); a variant without them has its regions
//! of the same size counted, as the baseline, and no scenario without
//! regions reports any.

mod common;

use common::{pagesim, pagesim_json};

/// Memory churned early, then most of it let go: the kernel's short-lived
/// pages and a little anonymous memory stay.
const SCENARIO: &str = r#"name = "regions"
seed = 3
sample_every = 100

[machine]
memory = "256M"

[[phase]]
name = "fill"
steps = 400

[[phase]]
name = "hold"
steps = 600
snapshot = "end"

[[actor]]
name = "anon"
migratetype = "movable"
rate = 100
lifetime = { dist = "uniform", min = 100, max = 400 }
reclaimable = false
stop = "fill"

[[actor]]
name = "kernel"
migratetype = "unmovable"
rate = 2
lifetime = { dist = "exponential", mean = 50 }

[[variant]]
name = "regions"
regions = "16M"

[[variant]]
name = "plain"
"#;

#[test]
fn a_variant_with_regions_reports_them_and_one_without_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    let path = path.to_str().unwrap();
    let doc = pagesim_json(&["run", path]);
    let on = &doc["variants"][0]["regions"];
    let off = &doc["variants"][1]["regions"];
    assert_eq!(off["enabled"], false, "{off}");
    assert_eq!(off["regions"], 16);
    assert_eq!(off["returns"], 0);
    assert_eq!(on["enabled"], true);
    assert_eq!(on["region_pages"], 4096);
    // 256 MiB of 16 MiB regions.
    assert_eq!(on["regions"], 16);
    let free = on["fully_free_end"].as_u64().unwrap();
    let ideal = on["ideal_end"].as_u64().unwrap();
    assert!(free <= ideal && ideal <= 16, "{on}");
    assert!(on["returns"].as_u64().unwrap() > 0, "{on}");
    assert!(!on["samples"].as_array().unwrap().is_empty());

    let text = pagesim(&["run", path]);
    assert_eq!(text.code, Some(0), "{}", text.stderr);
    assert!(text.stdout.contains("regions (seed 000): pages per region"));

    let without = SCENARIO.replace("regions = \"16M\"\n", "");
    std::fs::write(dir.path().join("r.toml"), without).unwrap();
    let doc = pagesim_json(&["run", path]);
    for v in doc["variants"].as_array().unwrap() {
        assert!(v["regions"].is_null(), "{}", v["regions"]);
    }
}
