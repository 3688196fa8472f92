//! Helpers shared by the integration tests: run the `pagesim` binary and
//! find the fixtures.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// What a run of the binary produced.
pub struct Output {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `pagesim` with `args`.
pub fn pagesim(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_pagesim"))
        .args(args)
        .output()
        .expect("the pagesim binary runs");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `pagesim` and parses its `--json` output; panics with stderr if it
/// failed.
pub fn pagesim_json(args: &[&str]) -> serde_json::Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let out = pagesim(&all);
    assert_eq!(out.code, Some(0), "pagesim {args:?} failed: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("--json prints one JSON document")
}

/// Asserts that every free of a replay's first policy (`doc`, its JSON
/// report) found what it freed: no unknown-pfn, double or other free
/// errors, and nothing of the trace left allocated at the end.
pub fn assert_every_free_found(doc: &serde_json::Value) {
    let c = &doc["policies"][0]["counts"];
    for (field, want) in [
        ("unknown_pfn_frees", 0),
        ("double_frees", 0),
        ("other_free_errors", 0),
        ("live_pages_end", 0),
    ] {
        assert_eq!(c[field].as_u64(), Some(want), "{field}: {c}");
    }
}

/// A file in `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fixture path as a string argument.
pub fn fixture_arg(name: &str) -> String {
    fixture(name).display().to_string()
}

/// A file in the repository's `scenarios` directory.
pub fn scenario_arg(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(name)
        .display()
        .to_string()
}

/// A synthetic ftrace text built line by line: every event on CPU 0 of
/// task `bash-100`, a microsecond after the last.
#[derive(Default)]
pub struct TraceText {
    ts: u64,
    /// The lines so far.
    pub text: String,
}

impl TraceText {
    /// Appends one event (`mm_page_alloc: ...`).
    pub fn event(&mut self, event: &str) {
        self.ts += 1;
        let ts = self.ts;
        self.text += &format!("            bash-100     [000] .....   10.{ts:06}: {event}\n");
    }

    /// An order-`order` allocation of `pfn` with the migratetype and flags
    /// `kind` (e.g. `migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE`).
    pub fn alloc(&mut self, pfn: u64, order: u8, kind: &str) {
        self.event(&format!(
            "mm_page_alloc: page=1 pfn={pfn:#x} order={order} {kind}"
        ));
    }

    /// An order-`order` free of `pfn`.
    pub fn free(&mut self, pfn: u64, order: u8) {
        self.event(&format!("mm_page_free: page=1 pfn={pfn:#x} order={order}"));
    }
}
