//! Fuzz targets for everything pagesim reads, run by `cargo test` on the
//! stable toolchain with `proptest`: byte-level inputs and structure-aware
//! ones (real trace lines, traces, zoneinfo files and scenario files with
//! mutations: truncations, swapped fields, huge numbers, non-UTF-8 bytes,
//! corrupt and truncated gzip and zstd streams).
//!
//! A panic is a failure; so is an error that blames pagesim rather than the
//! input ([`ExitKind::Runtime`]: a broken allocator invariant, an internal
//! error). A typed input error is fine, and where the test can work out
//! which line is at fault (an intact trace) the error must name that line.
//!
//! | target | what it feeds | cases in `cargo test` |
//! | --- | --- | --- |
//! | `fuzz_trace_line` | `trace::parse_line` (and the GFP and timestamp parsers behind it) | 10,000 |
//! | `fuzz_replay_input` | a file to `LineReader` and `replay::replay`: plain, gzip, zstd, damaged | 300 |
//! | `fuzz_procfs` | a `/proc/zoneinfo` sample to `replay_machine` | 400 |
//! | `fuzz_pagetypeinfo` | an edited `/proc` snapshot to `start_state` and the seeding it describes | 300 |
//! | `fuzz_scenario` | a scenario file to `scenario::parse` | 2,000 |
//!
//! Together they take about 17 s of CPU in a debug build (half that on two
//! idle cores: the targets run in parallel).
//!
//! Inputs that once found a bug are kept under `tests/fixtures/fuzz/`, one
//! directory per target, and replayed by `fuzz_fixtures` through the same
//! checks.
//!
//! To run longer locally (cases per target; the seed is fixed so CI is
//! repeatable, `PAGESIM_FUZZ_SEED=random` or a number changes it), in a
//! release build that keeps the overflow checks:
//!
//! ```text
//! PAGESIM_FUZZ_CASES=100000 PAGESIM_FUZZ_SEED=random \
//! CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
//!     cargo test --release -p pagesim --test fuzz -- --nocapture fuzz_trace_line
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use pagesim::error::{Error, ExitKind};
use pagesim::gfp::{parse_gfp, Strictness};
use pagesim::input::{LineReader, MAX_LINE_BYTES};
use pagesim::machine::Machine;
use pagesim::progress::Progress;
use pagesim::replay::{replay, Execution, ReplayOptions};
use pagesim::size::ByteSize;
use pagesim::trace::{
    parse_line, parse_line_general, timestamp_micros, timestamp_secs, Event, Line, LineError,
};
use pagesim::{policy, procfs, replay_machine, scenario, start_state};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------
// Running a target.

/// Cases for a target: `PAGESIM_FUZZ_CASES`, or the CI default.
fn cases(default: u32) -> u32 {
    match std::env::var("PAGESIM_FUZZ_CASES") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("PAGESIM_FUZZ_CASES={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The seed: fixed unless `PAGESIM_FUZZ_SEED` gives a number or says
/// `random` (then one is drawn from the clock, and printed with the
/// results so that a failure can be run again).
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("PAGESIM_FUZZ_SEED").as_deref() {
        Err(_) => 0x7061_6765_7369_6d00,
        Ok("random") => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (now.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32)
        }
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("PAGESIM_FUZZ_SEED={v:?} is neither a number nor `random`")),
    })
}

/// Runs `check` on `cases` values of `strategy`; on a failure proptest
/// shrinks the input and the panic shows the smallest one found.
fn fuzz<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = cases(default_cases);
    let config = Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed()),
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let started = Instant::now();
    let result = runner.run(&strategy, check);
    let outcomes: Vec<String> = OUTCOMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|((target, _), _)| *target == name)
        .map(|((_, what), n)| format!("{what} {n}"))
        .collect();
    eprintln!(
        "{name}: {cases} cases in {:.2?} (seed {}); runs by outcome: {}",
        started.elapsed(),
        seed(),
        outcomes.join(", ")
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// How often each target ended how (shrinking runs included), to show
/// that the strategies reach past the first error.
static OUTCOMES: Mutex<BTreeMap<(&str, &str), u64>> = Mutex::new(BTreeMap::new());

fn note(target: &'static str, outcome: &'static str) {
    *OUTCOMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((target, outcome))
        .or_default() += 1;
}

/// Bytes that print as a byte string, so a shrunk failure can be pasted
/// into a fixture.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        if b.len() <= 400 {
            write!(f, "b\"{}\" ({} bytes)", b.escape_ascii(), b.len())
        } else {
            let (head, tail) = (&b[..200], &b[b.len() - 100..]);
            write!(
                f,
                "b\"{}\" ... b\"{}\" ({} bytes)",
                head.escape_ascii(),
                tail.escape_ascii(),
                b.len()
            )
        }
    }
}

/// Long inputs print their head only (a shrunk 64 KiB line stays long).
struct Head<'a>(&'a [u8]);

impl fmt::Display for Head<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = &self.0[..self.0.len().min(200)];
        write!(f, "{}", cut.escape_ascii())?;
        if cut.len() < self.0.len() {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// An error is the input's fault, never pagesim's.
fn input_error(e: &Error, what: &dyn fmt::Display) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        e.exit_kind(),
        ExitKind::Input,
        "{} fails as if pagesim were at fault: {}",
        what,
        e
    );
    Ok(())
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

// ---------------------------------------------------------------------------
// Real lines, and how they are mutated.

/// Lines as Linux 6.x writes them (and a few pagesim writes), besides the
/// lines of the committed traces.
const SEED_LINES: &[&str] = &[
    "   rustc-3674 [001] .....   157.471503: mm_page_alloc: page=00000000c0ffee00 pfn=0x15c000 order=9 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_WRITE",
    "            bash-3517    [000] .....   152.085071: mm_page_alloc: page=00000000910055ff pfn=0x12ec68 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP",
    "       opt cgu.0-3561    [000] d..3.   152.490701: mm_page_pcpu_drain: page=00000000f60b4f73 pfn=0x146a41 order=0 migratetype=1",
    "       opt cgu.0-3561    [000] ...2.   152.490698: mm_page_free: page=000000006ff1d7a7 pfn=0x146805 order=3",
    "   rustc-3609 [001] d..4.   153.138998: mm_page_alloc_extfrag: page=00000000fc72c475 pfn=0x14e800 alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1",
    "  kworker/u8:1 x:2-32      [001] d..3.   182.368442: mm_page_free_batched: page=00000000655604e5 pfn=0x15c000 order=0",
    " a-1 [000] ..... 1.5: mm_page_alloc: page=(null) pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE",
    "  a-1 [012] 1.5: mm_page_free: pfn=0x1 order=0",
    "a-1 1.5: mm_page_free: pfn=0x1 order=0",
    "CPU:1 [LOST 1234 EVENTS]",
    "# tracer: nop",
    "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
    " a-1 [000] ..... 1.5: kmalloc: call_site=foo ptr=0x1 bytes_req=8",
    "  kswapd0-95      (     95) [001] d..3.   160.000001: mm_page_alloc: page=0000000000000001 pfn=0x20 order=0 migratetype=2 gfp_flags=GFP_KERNEL|__GFP_RECLAIMABLE|PAGESIM_NO_FALLBACK",
];

/// Numbers and words that break parsers.
const ODD_VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "2",
    "3",
    "-1",
    "+1",
    "15",
    "16",
    "255",
    "256",
    "65535",
    "65536",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999",
    "0x",
    "0x0",
    "0x1",
    "0X1",
    "0xffffffffffffffff",
    "0xfffffffffffffff0",
    "0x10000000000000000",
    "0xZZ",
    "0x-1",
    "1.5",
    "1e9",
    "NaN",
    "(null)",
    "0000000000000000",
    "GFP_KERNEL",
    "GFP_KERNEL|",
    "|",
    "||__GFP_BOGUS|",
    "__GFP_DMA|__GFP_DMA32|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_RECLAIMABLE",
    "0x80000",
    "=",
    "==",
    ":",
    ": ",
    " 1.5: ",
    "\t",
    "\r",
    "\0",
    "\u{feff}",
    "é",
    "[001]",
];

/// Tokens that change what a line is.
const ODD_TOKENS: &[&str] = &[
    "mm_page_alloc:",
    "mm_page_free:",
    "mm_page_free_batched:",
    "mm_page_pcpu_drain:",
    "mm_page_alloc_extfrag:",
    "mm_page_alloc_zone_locked:",
    "kmalloc:",
    "mm_page_alloc",
    ":",
    "::",
    ": :",
    "[000]",
    "[65535]",
    "[65536]",
    "[99999999999999999999]",
    "[]",
    "[",
    "]",
    "1.5:",
    "1.5",
    "..:",
    "0.:",
    ".5:",
    "1.2.3:",
    "18446744073709551616.0:",
    "99999999999999999999999999.999999999:",
    "CPU:1",
    "[LOST",
    "EVENTS]",
    "#",
    "pfn=",
    "order=",
    "page=",
    "migratetype=",
    "gfp_flags=",
    "fragmenting=",
    "change_ownership=",
    "pfn=0x1",
    "order=0",
    "migratetype=0",
    "gfp_flags=GFP_KERNEL",
    "\u{ff}",
];

/// One edit of a line. Positions are taken modulo the line's length when
/// applied, so every mutation applies to every line (and shrinks well).
#[derive(Clone, Debug)]
enum Mutation {
    /// Keep only the first bytes.
    Truncate(usize),
    /// Drop the bytes of a range.
    Delete(usize, usize),
    /// Insert bytes.
    Insert(usize, Bytes),
    /// Overwrite one byte (non-UTF-8, NUL, `\r` included).
    Set(usize, u8),
    /// Swap two space-separated tokens.
    SwapTokens(usize, usize),
    /// Replace the value of a `key=value` token.
    Value(usize, &'static str),
    /// Replace a whole token.
    Token(usize, &'static str),
    /// Repeat a token.
    Repeat(usize),
    /// Drop the spaces (tokens run together).
    Squeeze(usize),
    /// A long run of one byte.
    Run(usize, u8, u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = any::<usize>();
    prop_oneof![
        1 => pos.prop_map(Mutation::Truncate),
        1 => (pos, 0usize..40).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => (pos, vec(any::<u8>(), 1..8)).prop_map(|(p, b)| Mutation::Insert(p, Bytes(b))),
        2 => (pos, any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        2 => (pos, pos).prop_map(|(a, b)| Mutation::SwapTokens(a, b)),
        4 => (pos, select(ODD_VALUES)).prop_map(|(p, v)| Mutation::Value(p, v)),
        2 => (pos, select(ODD_TOKENS)).prop_map(|(p, t)| Mutation::Token(p, t)),
        1 => pos.prop_map(Mutation::Repeat),
        1 => pos.prop_map(Mutation::Squeeze),
        1 => (pos, any::<u8>(), any::<u16>()).prop_map(|(p, b, n)| Mutation::Run(p, b, n)),
    ]
}

/// The space-separated tokens of a line, as byte ranges.
fn tokens(line: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &b) in line.iter().chain(std::iter::once(&b' ')).enumerate() {
        match (b == b' ', start) {
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

fn apply(line: &mut Vec<u8>, m: &Mutation) {
    let at = |p: usize, len: usize| p % (len + 1);
    let toks = tokens(line);
    let tok = |p: usize| (!toks.is_empty()).then(|| toks[p % toks.len()]);
    match m {
        Mutation::Truncate(p) => line.truncate(at(*p, line.len())),
        Mutation::Delete(p, n) => {
            let s = at(*p, line.len());
            let e = (s + n).min(line.len());
            line.drain(s..e);
        }
        Mutation::Insert(p, b) => {
            let s = at(*p, line.len());
            line.splice(s..s, b.0.iter().copied());
        }
        Mutation::Set(p, b) => {
            if !line.is_empty() {
                let i = p % line.len();
                line[i] = *b;
            }
        }
        Mutation::SwapTokens(a, b) => {
            if let (Some(x), Some(y)) = (tok(*a), tok(*b)) {
                let (x, y) = if x.0 <= y.0 { (x, y) } else { (y, x) };
                if x != y {
                    let (tx, ty) = (line[x.0..x.1].to_vec(), line[y.0..y.1].to_vec());
                    line.splice(y.0..y.1, tx);
                    line.splice(x.0..x.1, ty);
                }
            }
        }
        Mutation::Value(p, v) => {
            let kv: Vec<_> = toks
                .iter()
                .filter_map(|&(s, e)| memchr_eq(&line[s..e]).map(|eq| (s + eq + 1, e)))
                .collect();
            if !kv.is_empty() {
                let (s, e) = kv[p % kv.len()];
                line.splice(s..e, v.bytes());
            }
        }
        Mutation::Token(p, t) => {
            if let Some((s, e)) = tok(*p) {
                line.splice(s..e, t.bytes());
            }
        }
        Mutation::Repeat(p) => {
            if let Some((s, e)) = tok(*p) {
                let mut copy = line[s..e].to_vec();
                copy.push(b' ');
                line.splice(s..s, copy);
            }
        }
        Mutation::Squeeze(p) => {
            if let Some((_, e)) = tok(*p) {
                if e < line.len() {
                    line.remove(e);
                }
            }
        }
        Mutation::Run(p, b, n) => {
            let s = at(*p, line.len());
            let n = usize::from(*n % 512);
            line.splice(s..s, std::iter::repeat_n(*b, n));
        }
    }
}

fn memchr_eq(token: &[u8]) -> Option<usize> {
    token.iter().position(|&b| b == b'=')
}

/// Real lines: the seed lines, the hand-made trace and every 97th line of
/// the real excerpt (each event kind it holds appears).
fn corpus() -> &'static [Bytes] {
    static CORPUS: OnceLock<Vec<Bytes>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut lines: Vec<Vec<u8>> = SEED_LINES.iter().map(|l| l.as_bytes().to_vec()).collect();
        let handmade = std::fs::read(fixtures_dir().join("handmade.trace")).unwrap();
        lines.extend(handmade.split(|&b| b == b'\n').map(<[u8]>::to_vec));
        let file =
            std::fs::File::open(fixtures_dir().join("cargo-build-excerpt.trace.zst")).unwrap();
        let mut excerpt = Vec::new();
        zstd::Decoder::new(file)
            .unwrap()
            .read_to_end(&mut excerpt)
            .unwrap();
        let mut kinds_seen = std::collections::HashSet::new();
        for (i, line) in excerpt.split(|&b| b == b'\n').enumerate() {
            let kind = line
                .windows(9)
                .position(|w| w == b": mm_page")
                .map(|p| line[p..].iter().take(30).copied().collect::<Vec<u8>>());
            if i % 97 == 0 || kind.is_some_and(|k| kinds_seen.insert(k)) {
                lines.push(line.to_vec());
            }
        }
        lines.retain(|l| !l.is_empty());
        lines.sort();
        lines.dedup();
        lines.into_iter().map(Bytes).collect()
    })
}

/// A real line with mutations applied.
fn mutated_line() -> impl Strategy<Value = Bytes> {
    (select(corpus()), vec(mutation(), 1..5)).prop_map(|(line, ms)| {
        let mut l = line.0;
        for m in &ms {
            apply(&mut l, m);
        }
        Bytes(l)
    })
}

/// Bytes from the alphabet of ftrace lines, plus a few that are not.
fn ftrace_alphabet_line() -> impl Strategy<Value = Bytes> {
    const ALPHABET: &[u8] = b"   0123456789xabcdef.:[]=-_|()#mpfnordegtyl \t\r\0\x7f\xc3\xa9\xff";
    vec(select(ALPHABET), 0..120).prop_map(Bytes)
}

fn any_line() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        2 => vec(any::<u8>(), 0..160).prop_map(Bytes),
        1 => ftrace_alphabet_line(),
        1 => select(corpus()),
        6 => mutated_line(),
    ]
}

// ---------------------------------------------------------------------------
// Target a: one trace line.

fn check_line(line: &[u8]) -> Result<(), TestCaseError> {
    let shown = Head(line);
    let parsed = parse_line(line);
    // The one-pass reader of common lines changes nothing.
    prop_assert_eq!(&parsed, &parse_line_general(line), "{}", shown);
    note(
        "fuzz_trace_line",
        match &parsed {
            Ok(Line::Event {
                event: Event::Other,
                ..
            }) => "other event",
            Ok(Line::Event { .. }) => "page event",
            Ok(Line::Comment) => "comment",
            Ok(Line::Lost { .. }) => "lost events",
            Err(_) => "error",
        },
    );
    match parsed {
        Ok(Line::Event {
            timestamp, event, ..
        }) => {
            prop_assert!(
                !timestamp.is_empty() && timestamp.iter().all(|b| b.is_ascii_digit() || *b == b'.'),
                "timestamp {:?} of {}",
                timestamp,
                shown
            );
            let _ = timestamp_micros(timestamp);
            let _ = timestamp_secs(timestamp);
            match event {
                Event::Alloc {
                    order,
                    migratetype,
                    gfp,
                    ..
                } => {
                    prop_assert!(migratetype <= 2 && order <= 15, "{:?} of {}", event, shown);
                    prop_assert!(parse_gfp(gfp, Strictness::Lenient).is_ok());
                    let _ = parse_gfp(gfp, Strictness::Strict);
                }
                Event::Free { order, .. } => prop_assert!(order <= 15),
                _ => {}
            }
        }
        Ok(Line::Comment | Line::Lost { .. }) => {}
        Err(e) => {
            let quoted = match &e {
                LineError::NotAnEvent { snippet } => snippet.clone(),
                LineError::BadValue { value, .. } => value.clone(),
                LineError::MissingField { .. } | LineError::TooLong { .. } => String::new(),
            };
            prop_assert!(
                quoted.chars().count() <= 80 && !quoted.chars().any(char::is_control),
                "error {:?} of {} quotes too much",
                e,
                shown
            );
            prop_assert!(!e.to_string().is_empty());
        }
    }
    Ok(())
}

/// A well-formed line built from its parts, with an arbitrary task name:
/// the parser must find exactly these parts again.
#[derive(Clone, Debug)]
struct BuiltLine {
    task: Bytes,
    cpu: u16,
    /// The flags column (`d..3.`), absent in some traces.
    flags: Option<&'static str>,
    timestamp: String,
    fields: String,
    event: Event<'static>,
}

impl BuiltLine {
    fn line(&self) -> Vec<u8> {
        let mut l = self.task.0.clone();
        l.extend_from_slice(format!(" [{:03}] ", self.cpu).as_bytes());
        if let Some(f) = self.flags {
            l.extend_from_slice(f.as_bytes());
            l.push(b' ');
        }
        l.extend_from_slice(format!("{}: {}", self.timestamp, self.fields).as_bytes());
        l
    }

    /// Whether the task itself reads as a comment, a lost-events line or a
    /// `timestamp: name:` (a task may be any bytes, and then the line means
    /// something else to ftrace's readers too).
    fn ambiguous(&self) -> bool {
        let t = &self.task.0;
        let trimmed = t.trim_ascii_start();
        if trimmed.is_empty() || trimmed[0] == b'#' || trimmed.starts_with(b"CPU:") {
            return true;
        }
        (0..t.len()).any(|c| {
            if t[c] != b':' || t.get(c + 1) != Some(&b' ') {
                return false;
            }
            let ts_start = t[..c]
                .iter()
                .rposition(|b| !(b.is_ascii_digit() || *b == b'.'))
                .map_or(0, |p| p + 1);
            let ts = &t[ts_start..c];
            let name_len = t[c + 2..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            ts_start > 0
                && t[ts_start - 1] == b' '
                && ts.iter().any(u8::is_ascii_digit)
                && ts.iter().filter(|b| **b == b'.').count() <= 1
                && name_len > 0
                && t.get(c + 2 + name_len) == Some(&b':')
        })
    }
}

fn task_name() -> impl Strategy<Value = Bytes> {
    const TASK_BYTES: &[u8] = b"ab-_/:.[]() 0123456789#\t\xc3\xff";
    prop_oneof![
        2 => select(&["bash-1", "opt cgu.0-3561", "kworker/u8:1-32", "  <idle>-0", "kswapd0-95      (     95)", "a 1: b-2", "x 12.5: kmalloc: y-3"][..])
            .prop_map(|t| Bytes(t.as_bytes().to_vec())),
        3 => vec(select(TASK_BYTES), 0..24).prop_map(Bytes),
        1 => vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..24).prop_map(Bytes),
    ]
}

fn built_line() -> impl Strategy<Value = BuiltLine> {
    let gfp = select(
        &[
            "GFP_KERNEL",
            "GFP_HIGHUSER_MOVABLE|__GFP_COMP",
            "__GFP_BOGUS|0x80000",
            "none",
        ][..],
    );
    let pfn = prop_oneof![3 => 0u64..0x20_0000, 1 => any::<u64>()];
    let fields = prop_oneof![
        (pfn.clone(), 0u8..16, 0u8..3, gfp).prop_map(|(p, o, mt, g)| (
            format!("mm_page_alloc: page=00000000deadbeef pfn={p:#x} order={o} migratetype={mt} gfp_flags={g}"),
            Event::Alloc { pfn: Some(p), order: o, migratetype: mt, gfp: g.as_bytes() },
        )),
        (0u8..16, 0u8..3).prop_map(|(o, mt)| (
            format!("mm_page_alloc: page=(null) pfn=0x0 order={o} migratetype={mt} gfp_flags=GFP_KERNEL"),
            Event::Alloc { pfn: None, order: o, migratetype: mt, gfp: b"GFP_KERNEL" },
        )),
        (pfn.clone(), 0u8..16).prop_map(|(p, o)| (
            format!("mm_page_free: page=00000000deadbeef pfn={p:#x} order={o}"),
            Event::Free { pfn: p, order: o },
        )),
        pfn.clone().prop_map(|p| (
            format!("mm_page_free_batched: page=00000000deadbeef pfn={p:#x} order=0"),
            Event::FreeBatched { pfn: p },
        )),
        pfn.clone().prop_map(|p| (
            format!("mm_page_pcpu_drain: page=00000000deadbeef pfn={p:#x} order=0 migratetype=1"),
            Event::PcpuDrain,
        )),
        (pfn, any::<bool>(), any::<bool>()).prop_map(|(p, f, c)| (
            format!("mm_page_alloc_extfrag: page=00000000deadbeef pfn={p:#x} alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting={} change_ownership={}", u8::from(f), u8::from(c)),
            Event::Extfrag { fragmenting: f, change_ownership: c },
        )),
        Just(("sched_switch: prev_comm=a prev_pid=1 ==> next_comm=b".to_owned(), Event::Other)),
    ];
    let timestamp = prop_oneof![
        (0u64..100_000, 0u32..1_000_000).prop_map(|(s, us)| format!("{s}.{us:06}")),
        any::<u64>().prop_map(|s| s.to_string()),
        "[0-9]{1,30}\\.[0-9]{0,12}",
    ];
    (
        task_name(),
        any::<u16>(),
        prop::option::of(select(&[".....", "d..3.", "dNh2.", "...1"][..])),
        timestamp,
        fields,
    )
        .prop_map(|(task, cpu, flags, timestamp, (fields, event))| BuiltLine {
            task,
            cpu,
            flags,
            timestamp,
            fields,
            event,
        })
}

fn check_built_line(b: &BuiltLine) -> Result<(), TestCaseError> {
    let line = b.line();
    check_line(&line)?;
    if b.ambiguous() {
        note("fuzz_trace_line", "built, ambiguous task");
        return Ok(());
    }
    note("fuzz_trace_line", "built, checked part by part");
    let shown = Head(&line);
    match parse_line(&line) {
        Ok(Line::Event {
            task,
            cpu,
            timestamp,
            event,
        }) => {
            prop_assert_eq!(task, b.task.0.trim_ascii(), "task of {}", shown);
            prop_assert_eq!(cpu, Some(b.cpu), "cpu of {}", shown);
            prop_assert_eq!(timestamp, b.timestamp.as_bytes(), "timestamp of {}", shown);
            prop_assert_eq!(event, b.event, "event of {}", shown);
        }
        other => prop_assert!(false, "{} parsed as {:?}", shown, other),
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum LineCase {
    Raw(Bytes),
    Built(BuiltLine),
}

#[test]
fn fuzz_trace_line() {
    let cases = prop_oneof![
        3 => any_line().prop_map(LineCase::Raw),
        1 => built_line().prop_map(LineCase::Built),
    ];
    fuzz("fuzz_trace_line", 10_000, cases, |case| match case {
        LineCase::Raw(l) => check_line(&l.0),
        LineCase::Built(b) => check_built_line(&b),
    });
}

#[test]
fn real_lines_parse() {
    for line in corpus() {
        let parsed = parse_line(&line.0);
        assert!(parsed.is_ok(), "{:?}: {parsed:?}", line);
    }
}

// ---------------------------------------------------------------------------
// Target b: a whole trace file.

/// Pfns that allocations and frees share, so that they meet (frees of live
/// blocks, of pieces, double frees, overlapping allocations).
fn pfn() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => (0u64..96).prop_map(|i| 0x1000 + i),
        1 => (0u64..4).prop_map(|i| 0x1000 + (i << 9)),
        1 => select(&[0u64, 1, u64::MAX, u64::MAX - 15, 1 << 52, (1 << 52) - 1][..]),
    ]
}

fn order() -> impl Strategy<Value = u8> {
    prop_oneof![6 => 0u8..4, 1 => 4u8..16, 1 => Just(9u8)]
}

/// A well-formed page-allocator event line.
fn event_line() -> impl Strategy<Value = Bytes> {
    let task = select(
        &[
            "bash-1",
            "opt cgu.0-3561",
            "kworker/u8:1-32",
            "a:b 1.5: c-9",
        ][..],
    );
    let cpu = prop_oneof![8 => 0u32..3, 1 => Just(65535u32), 1 => Just(4096u32)];
    let ts = (0u64..1000, 0u32..1_000_000);
    let event = prop_oneof![
        4 => (pfn(), order(), 0u8..3, select(&["GFP_KERNEL", "GFP_HIGHUSER_MOVABLE|__GFP_COMP", "GFP_TRANSHUGE_LIGHT", "GFP_ATOMIC|__GFP_DMA", "__GFP_BOGUS|0x80000", "GFP_NOWAIT|__GFP_RECLAIMABLE"][..]))
            .prop_map(|(p, o, mt, g)| format!("mm_page_alloc: page=00000000deadbeef pfn={p:#x} order={o} migratetype={mt} gfp_flags={g}")),
        1 => (order(), 0u8..3).prop_map(|(o, mt)| format!("mm_page_alloc: page=(null) pfn=0x0 order={o} migratetype={mt} gfp_flags=GFP_KERNEL")),
        4 => (pfn(), order()).prop_map(|(p, o)| format!("mm_page_free: page=00000000deadbeef pfn={p:#x} order={o}")),
        1 => pfn().prop_map(|p| format!("mm_page_free_batched: page=00000000deadbeef pfn={p:#x} order=0")),
        1 => pfn().prop_map(|p| format!("mm_page_pcpu_drain: page=00000000deadbeef pfn={p:#x} order=0 migratetype=1")),
        1 => (pfn(), 0u8..2, 0u8..2).prop_map(|(p, f, c)| format!("mm_page_alloc_extfrag: page=00000000deadbeef pfn={p:#x} alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting={f} change_ownership={c}")),
    ];
    (task, cpu, ts, event).prop_map(|(task, cpu, (s, us), event)| {
        Bytes(format!("{task:>16} [{cpu:03}] ..... {s:>5}.{us:06}: {event}").into_bytes())
    })
}

/// A line longer than the reader takes, or just at its limit.
fn long_line() -> impl Strategy<Value = Bytes> {
    (
        select(
            &[
                MAX_LINE_BYTES - 1,
                MAX_LINE_BYTES,
                MAX_LINE_BYTES + 1,
                3 * MAX_LINE_BYTES,
            ][..],
        ),
        any::<bool>(),
    )
        .prop_map(|(n, cr)| {
            let mut l = vec![b'#'; n];
            if cr {
                *l.last_mut().unwrap() = b'\r';
            }
            Bytes(l)
        })
}

fn trace_line() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        12 => event_line(),
        2 => select(corpus()),
        4 => mutated_line(),
        1 => vec(any::<u8>(), 0..80).prop_map(Bytes),
        1 => Just(Bytes(Vec::new())),
        1 => Just(Bytes(b"CPU:0 [LOST 18446744073709551615 EVENTS]".to_vec())),
    ]
}

/// How a trace file is stored.
#[derive(Clone, Copy, Debug)]
enum Encoding {
    Plain,
    /// Gzip split into this many members.
    Gzip(usize),
    /// Zstd split into this many frames.
    Zstd(usize),
}

/// What happens to the file after encoding.
#[derive(Clone, Debug)]
enum Damage {
    None,
    /// Cut at this fraction (per mille) of its length.
    Truncate(u16),
    /// Overwrite a byte at this fraction (per mille) of its length.
    Flip(u16, u8),
    /// Trailing junk.
    Append(Bytes),
    /// Drop a stretch in the middle.
    Hole(u16, u16),
}

/// One replay input.
#[derive(Clone, Debug)]
struct TraceCase {
    lines: Vec<Bytes>,
    crlf: bool,
    final_newline: bool,
    encoding: Encoding,
    damage: Damage,
    settings: Settings,
    /// Bytes of comment lines before the lines, so that they meet the end
    /// of the reader's buffer.
    filler: Option<u32>,
}

/// How the file is replayed.
#[derive(Clone, Copy, Debug)]
struct Settings {
    /// `--lenient`.
    lenient: bool,
    /// `--emit-trace` to a file with this extension.
    emit: Option<&'static str>,
    /// CPUs of the machine (lines name CPUs 0 to 2, and odd ones).
    cpus: u16,
    /// `--samples`.
    samples: u32,
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        any::<bool>(),
        prop::option::weighted(0.2, select(&["trace", "trace.zst", "trace.gz"][..])),
        1u16..4,
        select(&[1u32, 3, 1000][..]),
    )
        .prop_map(|(lenient, emit, cpus, samples)| Settings {
            lenient,
            emit,
            cpus,
            samples,
        })
}

impl TraceCase {
    fn text(&self) -> Vec<u8> {
        let sep: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        let mut out = Vec::new();
        let mut filler = self.filler.map_or(0, |n| n as usize);
        while filler > 0 {
            let len = filler.min(1000);
            if len > 1 {
                out.push(b'#');
                out.resize(out.len() + len - 2, b'.');
            }
            out.push(b'\n');
            filler -= len;
        }
        for (i, l) in self.lines.iter().enumerate() {
            out.extend_from_slice(&l.0);
            if i + 1 < self.lines.len() || self.final_newline {
                out.extend_from_slice(sep);
            }
        }
        out
    }

    fn file(&self) -> Vec<u8> {
        let text = self.text();
        let mut bytes = encode(&text, self.encoding);
        let at = |per_mille: u16, len: usize| len * usize::from(per_mille % 1001) / 1000;
        match &self.damage {
            Damage::None => {}
            Damage::Truncate(p) => bytes.truncate(at(*p, bytes.len())),
            Damage::Flip(p, b) => {
                if !bytes.is_empty() {
                    let i = at(*p, bytes.len() - 1);
                    bytes[i] ^= b | 1;
                }
            }
            Damage::Append(junk) => bytes.extend_from_slice(&junk.0),
            Damage::Hole(p, n) => {
                let s = at(*p, bytes.len());
                let e = (s + usize::from(*n)).min(bytes.len());
                bytes.drain(s..e);
            }
        }
        bytes
    }
}

fn encode(text: &[u8], encoding: Encoding) -> Vec<u8> {
    let pieces = |n: usize| -> Vec<&[u8]> {
        let n = n.max(1);
        let size = text.len().div_ceil(n).max(1);
        let mut v: Vec<&[u8]> = text.chunks(size).collect();
        if v.is_empty() {
            v.push(&[]);
        }
        v
    };
    match encoding {
        Encoding::Plain => text.to_vec(),
        Encoding::Gzip(n) => {
            let mut out = Vec::new();
            for piece in pieces(n) {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(piece).unwrap();
                out.extend(enc.finish().unwrap());
            }
            out
        }
        Encoding::Zstd(n) => {
            let mut out = Vec::new();
            for piece in pieces(n) {
                out.extend(zstd::encode_all(piece, 1).unwrap());
            }
            out
        }
    }
}

fn trace_case() -> impl Strategy<Value = TraceCase> {
    let lines = prop_oneof![
        8 => vec(trace_line(), 0..60),
        1 => (vec(trace_line(), 0..4), long_line(), vec(trace_line(), 0..4)).prop_map(
            |(mut a, l, b)| {
                a.push(l);
                a.extend(b);
                a
            }
        ),
        1 => vec(vec(any::<u8>(), 0..200).prop_map(Bytes), 0..4),
    ];
    // The reader fills a buffer of 1 MiB at a time.
    let filler = prop_oneof![
        15 => Just(None),
        1 => (select(&[1u32 << 20, 2 << 20][..]), 0u32..600).prop_map(|(b, d)| Some(b + d - 300)),
    ];
    let encoding = prop_oneof![
        3 => Just(Encoding::Plain),
        2 => (1usize..4).prop_map(Encoding::Gzip),
        2 => (1usize..4).prop_map(Encoding::Zstd),
    ];
    let damage = prop_oneof![
        6 => Just(Damage::None),
        2 => any::<u16>().prop_map(Damage::Truncate),
        2 => (any::<u16>(), any::<u8>()).prop_map(|(p, b)| Damage::Flip(p, b)),
        1 => vec(any::<u8>(), 1..64).prop_map(|b| Damage::Append(Bytes(b))),
        1 => (any::<u16>(), 1u16..200).prop_map(|(p, n)| Damage::Hole(p, n)),
    ];
    (
        lines,
        any::<bool>(),
        any::<bool>(),
        encoding,
        damage,
        settings(),
        filler,
    )
        .prop_map(
            |(lines, crlf, final_newline, encoding, damage, settings, filler)| TraceCase {
                lines,
                crlf,
                final_newline,
                encoding,
                damage,
                settings,
                filler,
            },
        )
}

/// The text a reader should see in `file`, if it decodes cleanly.
fn decoded(file: &[u8]) -> Option<Vec<u8>> {
    if file.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::decode_all(file).ok()
    } else if file.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(file)
            .read_to_end(&mut out)
            .ok()
            .map(|_| out)
    } else {
        Some(file.to_vec())
    }
}

/// The lines a reader should return: split at `\n`, one `\r` before it
/// dropped, no empty last line after a final newline.
fn model_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// What a replay of an intact `text` must end in.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    /// Error at this 1-based line.
    Line(u64, LineError),
    Empty,
}

fn model_replay(text: &[u8], lenient: bool) -> Outcome {
    let mut page_events = 0u64;
    for (i, raw) in model_lines(text).into_iter().enumerate() {
        let line_no = i as u64 + 1;
        if raw.len() > MAX_LINE_BYTES {
            return Outcome::Line(
                line_no,
                LineError::TooLong {
                    max: MAX_LINE_BYTES,
                },
            );
        }
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        match parse_line(line) {
            Ok(Line::Event { event, .. }) => page_events += u64::from(event != Event::Other),
            Ok(_) => {}
            Err(_) if lenient => {}
            Err(kind) => return Outcome::Line(line_no, kind),
        }
    }
    if page_events == 0 {
        Outcome::Empty
    } else {
        Outcome::Ok
    }
}

/// The replay machine: small, so that a case is quick.
fn small_machine(cpus: u16) -> Machine {
    let mut m = Machine::x86_64(ByteSize(64 << 20)).unwrap();
    m.config.nr_cpus = cpus;
    m
}

/// Reads `path` with [`LineReader`] and replays it; checks both against
/// the model when the file decodes cleanly.
fn check_trace_file(dir: &Path, path: &Path, settings: Settings) -> Result<(), TestCaseError> {
    let Settings {
        lenient,
        emit,
        cpus,
        samples,
    } = settings;
    let file = std::fs::read(path).unwrap();
    let shown = format!("{} ({} bytes)", path.display(), file.len());
    let text = decoded(&file);

    // The reader alone: the lines the model says, or a typed error.
    let mut got: Vec<Vec<u8>> = Vec::new();
    let (mut numbers_ok, mut positions_ok) = (true, true);
    let read = LineReader::open(path).and_then(|mut r| {
        let mut last = 0;
        let position = r.position();
        while let Some((n, line)) = r.next_line()? {
            numbers_ok &= n == got.len() as u64 + 1;
            let now = position.get();
            positions_ok &= last <= now && now <= file.len() as u64;
            last = now;
            got.push(line.to_vec());
        }
        Ok(())
    });
    prop_assert!(numbers_ok, "{}: line numbers skip", shown);
    prop_assert!(
        positions_ok,
        "{}: the position goes back or past the file",
        shown
    );
    match &read {
        Ok(()) => note("fuzz_replay_input", "reader: ok"),
        Err(e) => {
            note("fuzz_replay_input", "reader: error");
            input_error(e, &shown)?;
        }
    }
    if text.is_some() {
        note("fuzz_replay_input", "decodes cleanly");
    }
    if let Some(text) = &text {
        let want: Vec<&[u8]> = model_lines(text)
            .into_iter()
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect();
        let too_long = model_lines(text)
            .iter()
            .position(|l| l.len() > MAX_LINE_BYTES);
        match (&read, too_long) {
            (Ok(()), None) => prop_assert!(got == want, "{}: lines differ", shown),
            (
                Err(Error::TraceLine {
                    line,
                    kind: LineError::TooLong { .. },
                    ..
                }),
                Some(i),
            ) => {
                prop_assert_eq!(*line, i as u64 + 1, "{}: too-long line number", shown);
                prop_assert!(got[..] == want[..i], "{}: lines before differ", shown);
            }
            (r, t) => prop_assert!(
                false,
                "{}: reader gave {:?}, model says too long at {:?}",
                shown,
                r,
                t.map(|i| i + 1)
            ),
        }
    }

    // The whole replay.
    let emit_trace = emit.map(|ext| dir.join(format!("emitted.{ext}")));
    let opts = ReplayOptions {
        files: vec![path.to_owned()],
        machine: small_machine(cpus),
        policies: vec![
            policy::lookup("linux").unwrap(),
            policy::lookup("packed").unwrap(),
        ],
        lenient,
        samples,
        emit_trace: emit_trace.clone(),
        start: None,
        after: None,
        execution: Execution::Parallel,
        // Emitted traces replay to the same run only without the moves
        // compaction makes behind the trace's back.
        compaction: false,
        region_census: None,
    };
    let result = replay(&opts, &Progress::hidden());
    note(
        "fuzz_replay_input",
        match &result {
            Ok(_) => "replay: ok",
            Err(Error::TraceLine { .. }) => "replay: line error",
            Err(Error::EmptyTrace { .. }) => "replay: no page event",
            Err(Error::Decompress { .. }) => "replay: decompression error",
            Err(_) => "replay: other error",
        },
    );
    if let Err(e) = &result {
        input_error(e, &shown)?;
    }
    if let Some(text) = &text {
        let want = if file.is_empty() {
            Outcome::Empty
        } else {
            model_replay(text, lenient)
        };
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(Error::TraceLine { line, kind, .. }) => Outcome::Line(*line, kind.clone()),
            Err(Error::EmptyTrace { .. }) => Outcome::Empty,
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "{shown}: intact input, unexpected error {e}"
                )))
            }
        };
        prop_assert_eq!(outcome, want, "{}", shown);
    }
    // What pagesim wrote reads back (empty if Linux's allocations failed
    // or only frees of unknown pages were replayed).
    let emitted = result.iter().flat_map(|r| &r.policies);
    for emitted in emitted.filter_map(|p| p.emitted_trace.as_ref()) {
        let again = ReplayOptions {
            files: vec![emitted.path.clone()],
            machine: small_machine(cpus),
            policies: vec![policy::lookup("linux").unwrap()],
            lenient: false,
            samples: 1,
            emit_trace: None,
            start: None,
            after: None,
            execution: Execution::Sequential,
            compaction: false,
            region_census: None,
        };
        let reread = replay(&again, &Progress::hidden());
        note(
            "fuzz_replay_input",
            match &reread {
                Ok(_) => "emitted trace: reads back",
                Err(Error::EmptyTrace { .. }) => "emitted trace: no page event",
                Err(_) => "emitted trace: error",
            },
        );
        if let Err(e) = &reread {
            prop_assert!(
                matches!(e, Error::EmptyTrace { .. }),
                "{}: pagesim cannot read the trace it wrote: {}",
                shown,
                e
            );
        }
    }
    Ok(())
}

#[test]
fn fuzz_replay_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.trace");
    fuzz("fuzz_replay_input", 300, trace_case(), |case| {
        std::fs::write(&path, case.file()).unwrap();
        check_trace_file(dir.path(), &path, case.settings)
    });
}

// ---------------------------------------------------------------------------
// Target c: a `/proc/zoneinfo` sample.

const ZONE_NAMES: &[&str] = &[
    "DMA",
    "DMA32",
    "Normal",
    "Movable",
    "Device",
    "HighMem",
    "normal",
    "",
    "Normal  x",
];

/// Counts of pages and frames: small enough that a machine builds in a
/// moment, and the values that overflow or are refused.
fn zone_number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..5000).prop_map(|n| n.to_string()),
        2 => select(&[0u64, 1, 511, 512, 4096, 65536, 1 << 20][..]).prop_map(|n| n.to_string()),
        1 => select(&[1u64 << 28, (1 << 28) + 1, 1 << 40, (1 << 52) - 1, 1 << 52, u64::MAX - 1, u64::MAX][..]).prop_map(|n| n.to_string()),
        1 => select(ODD_VALUES).prop_map(str::to_owned),
    ]
}

fn zoneinfo_line() -> impl Strategy<Value = String> {
    let node = prop_oneof![
        6 => (0u32..3).prop_map(|n| n.to_string()),
        1 => select(&["65535", "65536", "-1", "x", ""][..]).prop_map(str::to_owned),
    ];
    prop_oneof![
        3 => (node, select(ZONE_NAMES), 0usize..6, prop::option::weighted(0.1, zone_number()))
            .prop_map(|(n, z, pad, tail)| {
                let tail = tail.map(|t| format!(" {t}")).unwrap_or_default();
                format!("Node {n}, zone {:pad$}{z}{tail}", "")
            }),
        8 => (select(&["spanned", "present", "managed", "start_pfn:", "pages free", "cpu:", "protection:", "nr_free_pages", "high:"][..]), 0usize..12, zone_number())
            .prop_map(|(k, pad, v)| format!("{:pad$}{k} {v}", "")),
        1 => select(&["  pagesets", "## zoneinfo", "## buddyinfo", "", "  node_unreclaimable:  0"][..]).prop_map(str::to_owned),
    ]
}

/// A line-level edit of a real file.
#[derive(Clone, Debug)]
enum LineEdit {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Replace(usize, String),
    /// Replace the last word of a line.
    LastWord(usize, String),
}

fn edit_lines(text: &str, edits: &[LineEdit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for e in edits {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match e {
            LineEdit::Delete(i) => {
                lines.remove(i % n);
            }
            LineEdit::Duplicate(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            LineEdit::Swap(a, b) => lines.swap(a % n, b % n),
            LineEdit::Replace(i, l) => lines[i % n] = l.clone(),
            LineEdit::LastWord(i, w) => {
                let l = &mut lines[i % n];
                let keep = l.trim_end().rfind(' ').map_or(0, |p| p + 1);
                l.truncate(keep);
                l.push_str(w);
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn line_edit(line: impl Strategy<Value = String>) -> impl Strategy<Value = LineEdit> {
    let i = any::<usize>();
    prop_oneof![
        2 => i.prop_map(LineEdit::Delete),
        1 => i.prop_map(LineEdit::Duplicate),
        1 => (i, i).prop_map(|(a, b)| LineEdit::Swap(a, b)),
        2 => (i, line).prop_map(|(a, l)| LineEdit::Replace(a, l)),
        3 => (i, zone_number()).prop_map(|(a, w)| LineEdit::LastWord(a, w)),
    ]
}

/// The zoneinfo part of the committed sample (the traced machine), and a
/// small machine in the same format; real files are edited line by line.
fn zoneinfo_bases() -> &'static [String] {
    static BASES: OnceLock<Vec<String>> = OnceLock::new();
    BASES.get_or_init(|| {
        let small = "Node 0, zone      DMA\n  pages free     3840\n        spanned  4095\n        present  3998\n        managed  3840\n  pagesets\n    cpu: 0\n              count: 0\n    cpu: 1\n              count: 0\n  start_pfn:           1\nNode 0, zone    DMA32\n  pages free     4096\n        spanned  4096\n        present  4096\n        managed  4096\n  start_pfn:           4096\nNode 0, zone   Normal\n        spanned  0\n        present  0\n        managed  0\n  start_pfn:           8192\nNode 1, zone   Normal\n        spanned  2048\n        present  2048\n        managed  2048\n  start_pfn:           1048576\n";
        vec![procfs::TRACED_MACHINE_ZONEINFO.to_owned(), small.to_owned()]
    })
}

/// The most frames the nodes of a machine a case builds may span together:
/// building a machine costs time in proportion (the traced machine, 1.3
/// million frames, takes a tenth of a second in a debug build), and a
/// bigger machine is not a parsing question. Bigger ones are parsed only,
/// unless a zone is too large for the engine (refused at once).
const MAX_BUILD_FRAMES: u64 = 1 << 20;

#[derive(Clone, Debug)]
struct ProcCase {
    text: Bytes,
}

/// A zone's section: its header and the four lines the reader takes (each
/// may be missing), with noise lines between.
fn zone_section() -> impl Strategy<Value = String> {
    let node = prop_oneof![
        8 => (0u32..2).prop_map(|n| n.to_string()),
        1 => select(&["2", "65535", "65536", "-1", "x", ""][..]).prop_map(str::to_owned),
    ];
    let zone = prop_oneof![
        8 => select(&["DMA", "DMA32", "Normal", "Movable"][..]),
        1 => select(ZONE_NAMES),
    ];
    let start = prop_oneof![
        8 => select(&[0u64, 1, 4096, 8192, 1 << 18, 1 << 20][..]).prop_map(|n| n.to_string()),
        4 => (0u64..(1 << 19)).prop_map(|n| n.to_string()),
        1 => zone_number(),
    ];
    let count = prop_oneof![
        12 => (0u64..70_000).prop_map(|n| n.to_string()),
        1 => zone_number(),
    ];
    let field = |key: &'static str, value: BoxedStrategy<String>| {
        prop::option::weighted(0.97, value)
            .prop_map(move |v| v.map(|v| format!("        {key} {v}")).unwrap_or_default())
    };
    (
        node,
        zone,
        field("spanned", count.clone().boxed()),
        field("present", count.clone().boxed()),
        field("managed", count.boxed()),
        field("start_pfn:", start.boxed()),
        vec(zoneinfo_line(), 0..3),
    )
        .prop_map(|(node, zone, spanned, present, managed, start, noise)| {
            let mut lines = vec![
                format!("Node {node}, zone {zone:>8}"),
                spanned,
                present,
                managed,
            ];
            lines.extend(noise);
            lines.push(start);
            lines.join("\n")
        })
}

fn proc_case() -> impl Strategy<Value = ProcCase> {
    let synthetic = prop_oneof![
        3 => vec(zone_section(), 0..5).prop_map(|ls| ls.join("\n")),
        1 => vec(zoneinfo_line(), 0..40).prop_map(|ls| ls.join("\n")),
    ];
    let edited = (
        select(zoneinfo_bases()),
        vec(line_edit(zoneinfo_line()), 1..6),
    )
        .prop_map(|(base, edits)| edit_lines(&base, &edits));
    prop_oneof![
        4 => synthetic.prop_map(String::into_bytes),
        // The traced machine takes long to build: edit the small one more.
        1 => edited.prop_map(String::into_bytes),
        1 => vec(any::<u8>(), 0..300),
    ]
    .prop_map(|b| ProcCase { text: Bytes(b) })
}

/// Parses the zoneinfo in `path` and builds its machine (when it is small
/// enough to build quickly); errors name a line of the file when they name
/// one at all.
fn check_procfs(path: &Path) -> Result<(), TestCaseError> {
    let bytes = std::fs::read(path).unwrap();
    let shown = format!("{} ({})", path.display(), Head(&bytes));
    let Ok(text) = std::str::from_utf8(&bytes) else {
        note("fuzz_procfs", "not UTF-8");
        let e = replay_machine(None, Some(path)).unwrap_err();
        return input_error(&e, &shown);
    };
    let nr_lines = text.lines().count();
    let zones = match procfs::parse_zoneinfo(text, "case") {
        Ok(zones) => zones,
        Err(e) => {
            note("fuzz_procfs", "zoneinfo refused");
            input_error(&e, &shown)?;
            if let Some(n) = e
                .to_string()
                .strip_prefix("case: line ")
                .and_then(|r| r.split(':').next())
            {
                let n: usize = n.parse().unwrap();
                prop_assert!(
                    n >= 1 && n <= nr_lines,
                    "{}: line {} of {}",
                    shown,
                    n,
                    nr_lines
                );
            }
            return Ok(());
        }
    };
    let mut nodes: BTreeMap<_, (u64, u64)> = BTreeMap::new();
    for z in &zones {
        let end = z.start_pfn.saturating_add(z.managed.max(z.spanned));
        let span = nodes.entry(z.node).or_insert((z.start_pfn, end));
        *span = (span.0.min(z.start_pfn), span.1.max(end));
    }
    let frames = nodes
        .values()
        .map(|(s, e)| e - s)
        .fold(0u64, u64::saturating_add);
    let small = frames <= MAX_BUILD_FRAMES;
    let too_big = zones.iter().any(|z| z.managed > 1 << 28);
    if !(small || too_big) {
        note("fuzz_procfs", "parsed, too big to build quickly");
        return Ok(());
    }
    match replay_machine(None, Some(path)) {
        Ok(machine) => {
            note("fuzz_procfs", "machine built");
            for name in ["linux", "packed"] {
                let info = policy::lookup(name).unwrap();
                if let Err(e) = machine.allocator_with(info.configure) {
                    input_error(&e, &shown)?;
                }
            }
        }
        Err(e) => {
            note("fuzz_procfs", "machine refused");
            input_error(&e, &shown)?;
        }
    }
    Ok(())
}

#[test]
fn fuzz_procfs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.procfs");
    fuzz("fuzz_procfs", 400, proc_case(), |case| {
        std::fs::write(&path, &case.text.0).unwrap();
        check_procfs(&path)
    });
}

// ---------------------------------------------------------------------------
// Target e: a pagetypeinfo section, and the start state it describes.

const PAGETYPE_NAMES: &[&str] = &[
    "Unmovable",
    "Movable",
    "Reclaimable",
    "HighAtomic",
    "CMA",
    "Isolate",
    "movable",
    "",
];

/// A count in a pagetypeinfo row: mostly small, sometimes Linux's cap or
/// something that is not a count.
fn pagetype_count() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0u64..6).prop_map(|n| n.to_string()),
        2 => (0u64..40).prop_map(|n| n.to_string()),
        1 => select(&[">100000", "100000", "4096", "18446744073709551615", "-1", "x", ""][..])
            .prop_map(str::to_owned),
    ]
}

fn pagetypeinfo_line() -> impl Strategy<Value = String> {
    let zone = prop_oneof![
        6 => select(&["DMA32", "Normal"][..]),
        1 => select(ZONE_NAMES),
    ];
    let node = prop_oneof![6 => Just("0"), 1 => select(&["1", "x", ""][..])];
    prop_oneof![
        4 => (node.clone(), zone.clone(), select(PAGETYPE_NAMES), vec(pagetype_count(), 9..13))
            .prop_map(|(n, z, t, c)| format!("Node    {n}, zone {z:>8}, type {t:>12} {}", c.join("      "))),
        2 => (node, zone, vec(pagetype_count(), 3..7))
            .prop_map(|(n, z, c)| format!("Node {n}, zone {z:>8} {}", c.join("            "))),
        1 => select(&[
            "Page block order: 9",
            "Page block order: 10",
            "Page block order: 99",
            "Pages per block:  512",
            "Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10",
            "Free pages count per migrate type at order       0      1      2",
            "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate",
            "Number of blocks type     Unmovable      Movable  Movable",
            "Number of mixed blocks    Unmovable      Movable  Reclaimable   HighAtomic      Isolate",
            "## pagetypeinfo",
            "## zoneinfo",
            "",
        ][..]).prop_map(str::to_owned),
    ]
}

/// The small committed snapshot, edited line by line (its zoneinfo, which
/// sizes the machine, mostly intact).
fn pagetypeinfo_case() -> impl Strategy<Value = ProcCase> {
    static BASE: OnceLock<String> = OnceLock::new();
    let base = BASE
        .get_or_init(|| {
            std::fs::read_to_string(fixtures_dir().join("small.before.procfs")).unwrap()
        })
        .as_str();
    let edit = prop_oneof![
        4 => (0usize..30, pagetype_count()).prop_map(|(i, w)| LineEdit::LastWord(i, w)),
        3 => (0usize..30, pagetypeinfo_line()).prop_map(|(i, l)| LineEdit::Replace(i, l)),
        1 => (0usize..30).prop_map(LineEdit::Delete),
        1 => (0usize..30).prop_map(LineEdit::Duplicate),
        1 => (0usize..30, 0usize..30).prop_map(|(a, b)| LineEdit::Swap(a, b)),
    ];
    vec(edit, 0..5).prop_map(move |edits| ProcCase {
        text: Bytes(edit_lines(base, &edits).into_bytes()),
    })
}

/// Reads the snapshot in `path` and, if it fits its machine, recreates it:
/// the zones then hold exactly the snapshot's free pages, everything else
/// is untraced memory, and the allocator's invariants hold.
fn check_pagetypeinfo(path: &Path) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    let shown = format!("{} ({})", path.display(), Head(text.as_bytes()));
    let nr_lines = text.lines().count();
    let machine = match replay_machine(None, Some(path)) {
        Ok(m) => m,
        Err(e) => {
            note("fuzz_pagetypeinfo", "machine refused");
            return input_error(&e, &shown);
        }
    };
    let start = match start_state(path, &machine) {
        Ok(Some(s)) => s,
        Ok(None) => {
            note("fuzz_pagetypeinfo", "no pagetypeinfo section");
            return Ok(());
        }
        Err(e) => {
            note("fuzz_pagetypeinfo", "section refused");
            input_error(&e, &shown)?;
            if let Error::Snapshot { line, .. } = e {
                prop_assert!(
                    line >= 1 && line <= nr_lines,
                    "{}: line {} of {}",
                    shown,
                    line,
                    nr_lines
                );
            }
            return Ok(());
        }
    };
    note("fuzz_pagetypeinfo", "recreated");
    let alloc = machine.allocator().unwrap();
    let (untraced, report) = match start.recreate(&alloc) {
        Ok(r) => r,
        Err(e) => return Err(TestCaseError::fail(format!("{shown}: seeding failed: {e}"))),
    };
    if let Err(e) = alloc.check_invariants() {
        return Err(TestCaseError::fail(format!("{shown}: {e}")));
    }
    for (z, r) in alloc.zones().iter().zip(&report.zones) {
        prop_assert_eq!(
            z.nr_free().0,
            r.free_pages_linux,
            "{}: zone {}",
            shown,
            r.zone
        );
        prop_assert_eq!(r.free_pages_ours, r.free_pages_linux);
    }
    prop_assert_eq!(alloc.nr_pcp_pages(), 0);
    prop_assert_eq!(alloc.nr_allocated_pages(), untraced.pages(), "{}", shown);
    Ok(())
}

#[test]
fn fuzz_pagetypeinfo() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.procfs");
    fuzz("fuzz_pagetypeinfo", 300, pagetypeinfo_case(), |case| {
        std::fs::write(&path, &case.text.0).unwrap();
        check_pagetypeinfo(&path)
    });
}

// ---------------------------------------------------------------------------
// Target d: a scenario file.

/// A small scenario (the one of tests/scenario_files.rs) with a variant.
const SMALL_SCENARIO: &str = r#"name = "small"
seed = 3

[machine]
memory = "64M"

[[phase]]
name = "run"
steps = 200
snapshot = "end"

[[phase]]
name = "after"
steps = 20

[[actor]]
name = "cache"
migratetype = "movable"
rate = 20
lifetime = { dist = "forever" }

[[actor]]
name = "kernel"
gfp = "GFP_KERNEL|__GFP_RECLAIMABLE"
rate = 4
orders = { 0 = 0.9, 3 = 0.1 }
lifetime = { dist = "exponential", mean = 20 }
stop = "after"

[[actor]]
name = "driver"
kind = "hold"
migratetype = "unmovable"
hold = "8M"
chunk = "1M"
release = "after"

[[variant]]
name = "packed"
packing = "unmovable"
actor.driver.alloc_mode = "packed"
"#;

/// TOML values, right-hand sides that fit some key and not others.
const TOML_VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "255",
    "256",
    "65536",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "0.0",
    "-0.0",
    "1e308",
    "1e-308",
    "nan",
    "inf",
    "-inf",
    "true",
    "\"\"",
    "\"0\"",
    "\"1\"",
    "\"4K\"",
    "\"64M\"",
    "\"1T\"",
    "\"16E\"",
    "\"0xffffffffffffffff\"",
    "\"18446744073709551616\"",
    "\"1M\"",
    "\"3K\"",
    "\"run\"",
    "\"after\"",
    "\"nope\"",
    "\"movable\"",
    "\"GFP_KERNEL|__GFP_BOGUS\"",
    "\"x86-64\"",
    "[]",
    "[255]",
    "[0, 0]",
    "{}",
    "{ 0 = 0.0 }",
    "{ 255 = 1.0 }",
    "{ 0 = 1e308, 1 = 1e308 }",
    "{ dist = \"uniform\", min = 5, max = 1 }",
    "{ dist = \"uniform\", min = 0, max = 18446744073709551615 }",
    "{ dist = \"exponential\", mean = 0 }",
    "{ dist = \"fixed\", steps = 0 }",
    "[{ start = \"0\", size = \"1G\" }, { start = \"512M\", size = \"1G\", node = 1 }]",
    "[{ start = \"16E\", size = \"16E\", node = 65535 }]",
    "[{ start = \"0\", size = \"0\" }]",
    "[{ size = \"2M\" }]",
    "[{ name = \"a\", size = \"16E\", start = \"16E\" }, { name = \"a\", size = \"2M\" }]",
    "[{ size = \"4M\", node = 65535, align = \"3K\", order_per_bit = -1 }]",
    "[{ size = \"32M\", start = \"0\" }, { size = \"32M\", start = \"16M\" }]",
    "\"contig\"",
    "\"cma\"",
    "\"range\"",
    "\"pages\"",
    "\"dma32\"",
];

/// Lines to insert: keys the format has, with odd values.
const TOML_LINES: &[&str] = &[
    "[machine]",
    "[reclaim]",
    "[[phase]]",
    "[[actor]]",
    "[[variant]]",
    "name = \"x\"",
    "steps = 1",
    "page_size = \"1M\"",
    "page_size = \"4K\"",
    "orders = 1",
    "orders = 64",
    "pageblock_order = 0",
    "pageblock_order = 40",
    "zones = \"x86-64\"",
    "min_free_kbytes = 18446744073709551615",
    "watermark_scale_factor = 0",
    "ranges = [{ start = \"0\", size = \"32M\" }, { start = \"64M\", size = \"32M\", node = 1 }]",
    "probe_orders = [0, 10, 11]",
    "sample_every = 0",
    "sample_every = 18446744073709551615",
    "seed = -1",
    "max = \"16E\"",
    "kind = \"hold\"",
    "enabled = false",
    "reclaimable = true",
    "actor.cache.enabled = false",
    "actor.nobody.rate = 1",
    "actor.cache.name = \"y\"",
    "actor.kernel.kind = \"hold\"",
    "reclaim.types = []",
    "types = [\"unmovable\"]",
    "start = \"after\"",
    "stop = \"run\"",
    "steps = 1099511627776",
    "steps = 18446744073709551615",
    "kind = \"contig\"",
    "via = \"cma\"",
    "via = \"range\"",
    "via = \"pages\"",
    "size = \"4M\"",
    "size = \"16E\"",
    "every = 0",
    "every = 9223372036854775807",
    "align = \"3K\"",
    "align = \"16E\"",
    "boundary = \"1M\"",
    "low = \"16E\"",
    "high = \"0\"",
    "node = 70",
    "zone = \"dma\"",
    "area = \"x\"",
    "cma = [{ size = \"2M\" }]",
    "cma = [{ size = \"16E\", start = \"16E\", order_per_bit = 99 }]",
    "cma = []",
    "actor.camera.via = \"range\"",
];

/// One edit of a scenario file.
#[derive(Clone, Debug)]
enum ScenarioEdit {
    Line(LineEdit),
    /// Replace the value of a `key = value` line.
    Value(usize, &'static str),
    Insert(usize, &'static str),
    /// Cut the file at this fraction (per mille).
    Truncate(u16),
}

fn scenario_edit() -> impl Strategy<Value = ScenarioEdit> {
    let i = any::<usize>();
    let line = select(TOML_LINES).prop_map(str::to_owned);
    prop_oneof![
        2 => line_edit(line).prop_map(ScenarioEdit::Line),
        6 => (i, select(TOML_VALUES)).prop_map(|(a, v)| ScenarioEdit::Value(a, v)),
        3 => (i, select(TOML_LINES)).prop_map(|(a, l)| ScenarioEdit::Insert(a, l)),
        1 => any::<u16>().prop_map(ScenarioEdit::Truncate),
    ]
}

fn edit_scenario(text: &str, edits: &[ScenarioEdit]) -> String {
    let mut text = text.to_owned();
    for e in edits {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let n = lines.len().max(1);
        match e {
            ScenarioEdit::Line(l) => {
                text = edit_lines(&text, std::slice::from_ref(l));
                continue;
            }
            ScenarioEdit::Value(i, v) => {
                let with_value: Vec<usize> = (0..lines.len())
                    .filter(|&j| lines[j].contains(" = "))
                    .collect();
                if let Some(&j) = with_value.get(i % with_value.len().max(1)) {
                    let eq = lines[j].find(" = ").unwrap();
                    lines[j].truncate(eq + 3);
                    lines[j].push_str(v);
                }
            }
            ScenarioEdit::Insert(i, l) => lines.insert(i % n, (*l).to_owned()),
            ScenarioEdit::Truncate(p) => {
                let mut cut = text.len() * usize::from(p % 1001) / 1000;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                continue;
            }
        }
        text = lines.join("\n");
        text.push('\n');
    }
    text
}

/// The committed scenarios with their machines made small (a 2 GiB machine
/// takes long to build in a debug test), and the small one.
fn scenario_bases() -> &'static [String] {
    static BASES: OnceLock<Vec<String>> = OnceLock::new();
    BASES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let mut bases = vec![SMALL_SCENARIO.to_owned()];
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        names.sort();
        for p in names {
            let text = std::fs::read_to_string(p).unwrap();
            let small: Vec<String> = text
                .lines()
                .map(|l| {
                    if l.starts_with("memory = ") {
                        "memory = \"128M\"".to_owned()
                    } else {
                        l.to_owned()
                    }
                })
                .collect();
            bases.push(small.join("\n"));
        }
        bases
    })
}

#[derive(Clone, Debug)]
struct ScenarioCase {
    text: String,
    scale: Option<f64>,
}

fn scenario_case() -> impl Strategy<Value = ScenarioCase> {
    let edited = (select(scenario_bases()), vec(scenario_edit(), 0..6))
        .prop_map(|(base, edits)| edit_scenario(&base, &edits));
    let text = prop_oneof![
        8 => edited,
        1 => vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => vec(select(TOML_LINES), 0..20).prop_map(|ls| ls.join("\n")),
    ];
    let scale = prop_oneof![
        6 => Just(None),
        1 => select(&[0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300, 1e300, 0.5, 1e12][..]).prop_map(Some),
    ];
    (text, scale).prop_map(|(text, scale)| ScenarioCase { text, scale })
}

/// A scenario parses or fails with an error whose line is in the file.
fn check_scenario(text: &str, scale: Option<f64>) -> Result<(), TestCaseError> {
    match scenario::parse(text, "case.toml", scale) {
        Ok(s) => {
            note("fuzz_scenario", "ok");
            prop_assert!(!s.variants.is_empty() && !s.phases.is_empty());
            prop_assert!(s.sample_every >= 1);
        }
        Err(e) => {
            note("fuzz_scenario", "error");
            if let Some(line) = e.line {
                prop_assert!(
                    line >= 1 && line <= text.lines().count().max(1) + 1,
                    "line {} of a {}-line file: {}",
                    line,
                    text.lines().count(),
                    e
                );
            }
            prop_assert!(!e.message.is_empty());
        }
    }
    Ok(())
}

#[test]
fn fuzz_scenario() {
    fuzz("fuzz_scenario", 2000, scenario_case(), |case| {
        check_scenario(&case.text, case.scale)
    });
}

// ---------------------------------------------------------------------------
// Inputs that found bugs.

/// A line fixture: the line, then a line saying what it must parse as
/// (`event`, `other`, `comment`, `lost` or `error`).
fn check_line_fixture(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut parts = bytes.splitn(3, |&b| b == b'\n');
    let (line, expect) = (parts.next().unwrap(), parts.next().unwrap_or(b""));
    check_line(line)?;
    let got = match parse_line(line) {
        Ok(Line::Event {
            event: Event::Other,
            ..
        }) => "other",
        Ok(Line::Event { .. }) => "event",
        Ok(Line::Comment) => "comment",
        Ok(Line::Lost { .. }) => "lost",
        Err(_) => "error",
    };
    prop_assert_eq!(got.as_bytes(), expect.trim_ascii(), "{}", Head(line));
    Ok(())
}

/// Every fixture under `tests/fixtures/fuzz/<target>/` goes through the
/// checks of its target.
#[test]
fn fuzz_fixtures() {
    let root = fixtures_dir().join("fuzz");
    let dir = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for target in ["line", "replay", "procfs", "pagetypeinfo", "scenario"] {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).unwrap();
            let result = match target {
                "line" => check_line_fixture(&bytes),
                "replay" => [(false, Some("trace")), (true, None)]
                    .into_iter()
                    .try_for_each(|(lenient, emit)| {
                        let settings = Settings {
                            lenient,
                            emit,
                            cpus: 2,
                            samples: 100,
                        };
                        check_trace_file(dir.path(), &path, settings)
                    }),
                "procfs" => check_procfs(&path),
                "pagetypeinfo" => check_pagetypeinfo(&path),
                _ => check_scenario(&String::from_utf8_lossy(&bytes), None),
            };
            if let Err(e) = result {
                panic!("{}: {e}", path.display());
            }
            seen += 1;
        }
    }
    eprintln!("fuzz_fixtures: {seen} fixtures");
}
