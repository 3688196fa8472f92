//! Bad input never panics: a malformed line is an error naming the file and
//! line (or, with `--lenient`, skipped and counted); truncated or corrupt
//! compressed files, empty files and binary junk are clear errors with exit
//! code 2.

mod common;

use std::io::Write;
use std::path::Path;

use common::{fixture, fixture_arg, pagesim, pagesim_json};

const GOOD: &str = "  bash-1 [000] ..... 1.000001: mm_page_alloc: page=0000000000000001 pfn=0x10 order=0 migratetype=0 gfp_flags=GFP_KERNEL\n  bash-1 [000] ..... 1.000002: mm_page_free: page=0000000000000001 pfn=0x10 order=0\n";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

/// Asserts an input error (exit 2, no panic) whose message holds `needle`.
fn assert_input_error(args: &[&str], needle: &str) {
    let out = pagesim(args);
    assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
    assert!(
        out.stderr.contains(needle),
        "{args:?}: stderr {:?} lacks {needle:?}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn garbage_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}this is not a trace line\n{GOOD}");
    let f = write(dir.path(), "bad.trace", text.as_bytes());
    assert_input_error(&["replay", &f], &format!("{f}:3: not an ftrace event line"));

    let missing = format!("{GOOD}  bash-1 [000] ..... 1.5: mm_page_free: page=0 order=0\n");
    let f = write(dir.path(), "missing.trace", missing.as_bytes());
    assert_input_error(&["replay", &f], ":3: mm_page_free: missing field `pfn`");

    let bad_value = format!("{GOOD}  bash-1 [000] ..... 1.5: mm_page_alloc: pfn=0x1 order=x migratetype=0 gfp_flags=GFP_KERNEL\n");
    let f = write(dir.path(), "value.trace", bad_value.as_bytes());
    assert_input_error(
        &["replay", &f],
        ":3: mm_page_alloc: bad value `x` for `order`",
    );
}

#[test]
fn extreme_values_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let line = |event: &str, rest: &str| {
        format!("  a-1 [000] ..... 1.5: {event}: page=0000000000000001 {rest}\n")
    };
    let mut text = String::new();
    text += &line(
        "mm_page_alloc",
        "pfn=0xffffffffffffffff order=15 migratetype=0 gfp_flags=GFP_KERNEL",
    );
    text += &line("mm_page_free", "pfn=0xfffffffffffffff0 order=15");
    text += &line(
        "mm_page_alloc",
        "pfn=0xfffffffffffffff0 order=15 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE",
    );
    text += &line("mm_page_free", "pfn=0xffffffffffffffff order=0");
    text += &line(
        "mm_page_alloc",
        "pfn=0x0 order=10 migratetype=2 gfp_flags=__GFP_BOGUS|0x80000",
    );
    let f = write(dir.path(), "extreme.trace", text.as_bytes());
    let doc = pagesim_json(&["replay", &f]);
    assert_eq!(doc["policies"][0]["counts"]["double_frees"], 0);
    assert_eq!(doc["policies"][0]["counts"]["alloc_failures"][15], 2);

    let f = write(
        dir.path(),
        "order.trace",
        line("mm_page_free", "pfn=0x10 order=16").as_bytes(),
    );
    assert_input_error(
        &["replay", &f],
        ":1: mm_page_free: bad value `16` for `order`",
    );
    let f = write(
        dir.path(),
        "pfn.trace",
        line("mm_page_free", "pfn=0x1ffffffffffffffff order=0").as_bytes(),
    );
    assert_input_error(&["replay", &f], "bad value `0x1ffffffffffffffff` for `pfn`");
}

#[test]
fn lenient_skips_and_counts_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}junk one\n{GOOD}junk two\n");
    let f = write(dir.path(), "bad.trace", text.as_bytes());
    let doc = pagesim_json(&["replay", &f, "--lenient"]);
    assert_eq!(doc["events"]["malformed_skipped"], 2);
    assert_eq!(doc["events"]["mm_page_alloc"], 2);
    let examples = doc["events"]["malformed_examples"].as_array().unwrap();
    assert!(examples[0].as_str().unwrap().contains(":3: "));
    assert!(examples[1].as_str().unwrap().contains(":6: "));
}

#[test]
fn truncated_and_corrupt_compressed_files() {
    let dir = tempfile::tempdir().unwrap();
    let zst = std::fs::read(fixture("cargo-build-excerpt.trace.zst")).unwrap();
    let f = write(dir.path(), "cut.trace.zst", &zst[..zst.len() / 2]);
    assert_input_error(
        &["replay", &f],
        "zstd data is corrupt or truncated after line",
    );

    let mut junk = vec![0x28, 0xb5, 0x2f, 0xfd];
    junk.extend_from_slice(b"definitely not zstd frames");
    let f = write(dir.path(), "junk.zst", &junk);
    assert_input_error(&["replay", &f], "zstd data is corrupt or truncated");

    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(GOOD.repeat(2000).as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let f = write(dir.path(), "cut.trace.gz", &gz[..gz.len() / 2]);
    assert_input_error(&["replay", &f], "gzip data is corrupt or truncated");
}

#[test]
fn empty_missing_and_binary_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "empty.trace", b"");
    assert_input_error(&["replay", &f], "empty file");

    let f = write(dir.path(), "comments.trace", b"# tracer: nop\n#\n");
    assert_input_error(&["replay", &f], "no mm_page_* event");

    assert_input_error(
        &["replay", "/nonexistent/trace.zst"],
        "/nonexistent/trace.zst",
    );

    // Pseudo-random bytes, NULs and all, with and without newlines.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let junk: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let f = write(dir.path(), "junk.bin", &junk);
    assert_input_error(&["replay", &f], "junk.bin:1:");
    let long: Vec<u8> = junk
        .iter()
        .map(|b| if *b == b'\n' { b'x' } else { *b })
        .collect();
    let f = write(dir.path(), "long.bin", &long);
    assert_input_error(&["replay", &f], "longer than 65536 bytes");
    let out = pagesim(&["replay", &f, "--lenient"]);
    assert_eq!(out.code, Some(2), "an over-long line is not skippable");
}

#[test]
fn usage_errors_exit_2() {
    let trace = fixture_arg("handmade.trace");
    assert_input_error(
        &["replay", &trace, "--policy", "bogus"],
        "unknown policy `bogus` (known: linux, packed, confined)",
    );
    assert_input_error(
        &["replay", &trace, "--mem", "lots"],
        "--mem: invalid size `lots`",
    );
    assert_input_error(
        &["replay", &trace, "--procfs", &trace],
        "no zoneinfo section",
    );
    let out = pagesim(&["replay"]);
    assert_eq!(out.code, Some(2));
    let out = pagesim(&["frobnicate"]);
    assert_eq!(out.code, Some(2));
}
