//! `--emit-trace`: our allocator's decisions written as Linux ftrace text,
//! line for line in the layout of `trace_pipe`, so that `pagesim replay`
//! (or any tool that reads `kmem` traces) can read them back.
//!
//! A [`TraceWriter`] is the engine's [`EventSink`]: the engine calls it with
//! its locks held, so it only formats the event into a buffered file and
//! returns. What the engine does not know — the task, the CPU of a drain or
//! a fallback, the time — comes from a *context* the driver sets before
//! each request: the replayed event's task, CPU and timestamp in a replay
//! ([`TraceWriter::set_replay_context`]), a fixed `pagesim-<pid>` task on
//! CPU 0 and the step number as seconds in a scenario
//! ([`TraceWriter::set_step`]). Timestamps never go backwards.
//!
//! | engine event | line |
//! |---|---|
//! | [`AllocEvent`] | `mm_page_alloc: page=... pfn=0x... order=N migratetype=N gfp_flags=...` |
//! | [`FreeEvent`] | `mm_page_free: page=... pfn=0x... order=N`, then for a batched free `mm_page_free_batched: page=... pfn=0x... order=0` |
//! | [`FallbackEvent`] | `mm_page_alloc_extfrag: page=... pfn=0x... alloc_order=... fallback_order=... pageblock_order=... alloc_migratetype=... fallback_migratetype=... fragmenting=... change_ownership=...` |
//! | [`DrainEvent`] | `mm_page_pcpu_drain: page=... pfn=0x... order=N migratetype=N` |
//!
//! `page=` is the frame's `struct page` address in x86-64's default
//! vmemmap (`0xffffea0000000000 + 64 * pfn`), as `%px` would print it
//! (Linux hashes `%p`). `gfp_flags=` is [`linux_gfp_text`], which pagesim's
//! parser maps back to the same flags. A file whose name ends in `.zst` is
//! zstd-compressed, `.gz` gzip-compressed; anything else is plain text.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use pagealloc::{
    AllocEvent, DrainEvent, EventSink, FallbackEvent, FreeEvent, FreeKind, Order, Pfn,
};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::gfp::linux_gfp_text;

/// Where x86-64's vmemmap starts (`VMEMMAP_START` without KASLR).
const VMEMMAP_START: u64 = 0xffff_ea00_0000_0000;
/// `sizeof(struct page)` on x86-64.
const STRUCT_PAGE_BYTES: u64 = 64;
/// Microseconds per second.
const MICROS: u64 = 1_000_000;

/// An emitted trace, for reports.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct EmittedTrace {
    /// The file written.
    pub path: PathBuf,
    /// Lines written.
    pub lines: u64,
}

/// The file, compressed or not.
enum Sink {
    Plain(BufWriter<File>),
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(w) => w,
            Sink::Zstd(w) => w,
            Sink::Gzip(w) => w,
        }
    }

    /// Flushes and ends the compressed stream.
    fn finish(self) -> io::Result<()> {
        let mut file = match self {
            Sink::Plain(w) => w,
            Sink::Zstd(w) => w.finish()?,
            Sink::Gzip(w) => w.finish()?,
        };
        file.flush()
    }
}

/// Who and when, for the lines the next events produce.
struct Context {
    /// The task column, padded as ftrace pads it (`%16s-%-7d `).
    task: Vec<u8>,
    /// The raw task text it was made from (replays), to skip reformatting.
    raw_task: Vec<u8>,
    /// CPU for events that carry none (fallbacks, drains).
    cpu: u16,
    /// Time of the next event, in microseconds.
    base_us: u64,
    /// Scenarios: each event advances one microsecond within the step.
    tick: bool,
    /// Events since the context was set.
    n: u64,
}

struct State {
    sink: Option<Sink>,
    ctx: Context,
    last_us: u64,
    lines: u64,
    line: Vec<u8>,
    gfp: FxHashMap<u32, String>,
    error: Option<io::Error>,
}

/// The engine's event sink that writes ftrace text (see the module
/// documentation).
pub struct TraceWriter {
    path: PathBuf,
    pageblock_order: u8,
    state: Mutex<State>,
}

/// Pads a task as ftrace does: `comm` right-aligned in 16 columns, `-pid`
/// left-aligned in 8, then a space. Text that does not end in `-digits` is
/// right-aligned in 24 columns.
fn format_task(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let split = memchr::memrchr(b'-', raw)
        .filter(|&d| d + 1 < raw.len() && raw[d + 1..].iter().all(u8::is_ascii_digit));
    let (comm, pid) = match split {
        Some(d) => (&raw[..d], &raw[d..]),
        None => (raw, &b""[..]),
    };
    let width: usize = if pid.is_empty() { 24 } else { 16 };
    out.resize(width.saturating_sub(comm.len()), b' ');
    out.extend_from_slice(comm);
    out.extend_from_slice(pid);
    if !pid.is_empty() {
        out.resize(out.len() + 8usize.saturating_sub(pid.len()), b' ');
    }
    out.push(b' ');
}

impl TraceWriter {
    /// Creates `path` (truncating it); the compression follows its name.
    pub fn create(path: &Path, pageblock_order: u8) -> Result<TraceWriter> {
        let err = |source| Error::Output {
            path: path.to_owned(),
            source,
        };
        let file = BufWriter::with_capacity(1 << 20, File::create(path).map_err(err)?);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let sink = match name.as_deref() {
            Some(n) if n.ends_with(".zst") => Sink::Zstd(zstd::Encoder::new(file, 3).map_err(err)?),
            Some(n) if n.ends_with(".gz") => Sink::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::fast(),
            )),
            _ => Sink::Plain(file),
        };
        let mut task = Vec::new();
        format_task(
            format!("pagesim-{}", std::process::id()).as_bytes(),
            &mut task,
        );
        Ok(TraceWriter {
            path: path.to_owned(),
            pageblock_order,
            state: Mutex::new(State {
                sink: Some(sink),
                ctx: Context {
                    raw_task: Vec::new(),
                    task,
                    cpu: 0,
                    base_us: 0,
                    tick: true,
                    n: 0,
                },
                last_us: 0,
                lines: 0,
                line: Vec::with_capacity(256),
                gfp: FxHashMap::default(),
                error: None,
            }),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a usable buffer.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replays: the next events come from the trace line of `task` on
    /// `cpu` at `timestamp_us`.
    pub fn set_replay_context(&self, task: &[u8], cpu: u16, timestamp_us: u64) {
        let mut st = self.state();
        let ctx = &mut st.ctx;
        if ctx.raw_task != task {
            ctx.raw_task.clear();
            ctx.raw_task.extend_from_slice(task);
            format_task(task, &mut ctx.task);
        }
        ctx.cpu = cpu;
        ctx.base_us = timestamp_us;
        ctx.tick = false;
        ctx.n = 0;
    }

    /// Scenarios: the next events happen during `step`, which starts at
    /// `step` seconds; each event is one microsecond after the previous
    /// one (all at `step.999999` past a million events).
    pub fn set_step(&self, step: u64) {
        let mut st = self.state();
        st.ctx.base_us = step.saturating_mul(MICROS);
        st.ctx.tick = true;
        st.ctx.n = 0;
    }

    /// Flushes and closes the file; fails with the first write error.
    pub fn finish(&self) -> Result<EmittedTrace> {
        let mut st = self.state();
        let result = match (st.error.take(), st.sink.take()) {
            (Some(e), _) => Err(e),
            (None, Some(sink)) => sink.finish(),
            (None, None) => Ok(()),
        };
        result.map_err(|source| Error::Output {
            path: self.path.clone(),
            source,
        })?;
        Ok(EmittedTrace {
            path: self.path.clone(),
            lines: st.lines,
        })
    }

    /// Formats one line, `body` writing the fields after `name: `, and
    /// writes it.
    fn line(
        &self,
        cpu: Option<u16>,
        flags: &str,
        name: &str,
        body: impl FnOnce(&mut Vec<u8>, &mut FxHashMap<u32, String>),
    ) {
        let mut guard = self.state();
        let st = &mut *guard;
        if st.sink.is_none() || st.error.is_some() {
            return;
        }
        let offset = if st.ctx.tick {
            st.ctx.n.min(MICROS - 1)
        } else {
            0
        };
        st.ctx.n += 1;
        let t = (st.ctx.base_us + offset).max(st.last_us);
        st.last_us = t;
        let cpu = cpu.unwrap_or(st.ctx.cpu);
        let line = &mut st.line;
        line.clear();
        line.extend_from_slice(&st.ctx.task);
        line.push(b'[');
        push_dec(line, u64::from(cpu), 3, b'0');
        line.extend_from_slice(b"] ");
        line.extend_from_slice(flags.as_bytes());
        line.push(b' ');
        push_dec(line, t / MICROS, 5, b' ');
        line.push(b'.');
        push_dec(line, t % MICROS, 6, b'0');
        line.extend_from_slice(b": ");
        line.extend_from_slice(name.as_bytes());
        line.extend_from_slice(b": ");
        body(&mut st.line, &mut st.gfp);
        st.line.push(b'\n');
        if let Some(sink) = &mut st.sink {
            if let Err(e) = sink.writer().write_all(&st.line) {
                st.error = Some(e);
                return;
            }
        }
        st.lines += 1;
    }
}

/// Appends `v` in decimal, padded on the left with `pad` to `width`.
fn push_dec(line: &mut Vec<u8>, mut v: u64, width: usize, pad: u8) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = buf.len() - i;
    line.resize(line.len() + width.saturating_sub(digits), pad);
    line.extend_from_slice(&buf[i..]);
}

/// Appends `v` in lower-case hexadecimal, zero-padded to `width` digits.
fn push_hex(line: &mut Vec<u8>, mut v: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(v & 0xf) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    let digits = buf.len() - i;
    line.resize(line.len() + width.saturating_sub(digits), b'0');
    line.extend_from_slice(&buf[i..]);
}

/// `page=... pfn=0x...`
fn page_pfn(line: &mut Vec<u8>, pfn: Pfn) {
    let page = VMEMMAP_START.wrapping_add(pfn.0.wrapping_mul(STRUCT_PAGE_BYTES));
    line.extend_from_slice(b"page=");
    push_hex(line, page, 16);
    line.extend_from_slice(b" pfn=0x");
    push_hex(line, pfn.0, 1);
}

/// ` key=value` with a decimal value.
fn field(line: &mut Vec<u8>, key: &[u8], value: u64) {
    line.push(b' ');
    line.extend_from_slice(key);
    line.push(b'=');
    push_dec(line, value, 1, b' ');
}

impl EventSink for TraceWriter {
    fn alloc(&self, e: &AllocEvent) {
        self.line(Some(e.cpu.0), ".....", "mm_page_alloc", |line, names| {
            page_pfn(line, e.pfn);
            field(line, b"order", u64::from(e.order.get()));
            field(line, b"migratetype", e.migratetype.idx() as u64);
            let gfp = names
                .entry(e.flags.bits())
                .or_insert_with(|| linux_gfp_text(e.flags));
            line.extend_from_slice(b" gfp_flags=");
            line.extend_from_slice(gfp.as_bytes());
        });
    }

    fn free(&self, e: &FreeEvent) {
        self.line(Some(e.cpu.0), "...1.", "mm_page_free", |line, _| {
            page_pfn(line, e.pfn);
            field(line, b"order", u64::from(e.order.get()));
        });
        if e.kind == FreeKind::Batched {
            self.line(Some(e.cpu.0), "...3.", "mm_page_free_batched", |line, _| {
                page_pfn(line, e.pfn);
                line.extend_from_slice(b" order=0");
            });
        }
    }

    fn fallback(&self, e: &FallbackEvent) {
        let pb = Order::new(self.pageblock_order).unwrap_or(Order::ZERO);
        self.line(None, "d..3.", "mm_page_alloc_extfrag", |line, _| {
            page_pfn(line, e.pfn);
            field(line, b"alloc_order", u64::from(e.alloc_order.get()));
            field(line, b"fallback_order", u64::from(e.fallback_order.get()));
            field(line, b"pageblock_order", u64::from(self.pageblock_order));
            field(line, b"alloc_migratetype", e.alloc_migratetype.idx() as u64);
            field(
                line,
                b"fallback_migratetype",
                e.fallback_migratetype.idx() as u64,
            );
            field(line, b"fragmenting", u64::from(e.fragmenting(pb)));
            field(line, b"change_ownership", u64::from(e.change_ownership));
        });
    }

    fn pcp_drain(&self, e: &DrainEvent) {
        self.line(None, "d..3.", "mm_page_pcpu_drain", |line, _| {
            page_pfn(line, e.pfn);
            field(line, b"order", u64::from(e.order.get()));
            field(line, b"migratetype", e.migratetype.idx() as u64);
        });
    }
}

/// The file for each of `names` (policies or variants): `base` itself for
/// one name; otherwise `base` with `.<name>` inserted before its extension
/// (`x.trace` → `x.linux.trace`, `x.trace.zst` → `x.linux.trace.zst`,
/// `x` → `x.linux`), and `-2`, `-3`... after a name used twice. Characters
/// other than letters, digits, `-`, `_` and `.` become `_` (a variant may be
/// named `a/b`).
pub fn emit_paths(base: &Path, names: &[&str]) -> Vec<PathBuf> {
    if names.len() <= 1 {
        return vec![base.to_owned(); names.len()];
    }
    let file = base
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, compressed) = [".zst", ".gz"]
        .iter()
        .find_map(|c| file.strip_suffix(c).map(|s| (s.to_owned(), *c)))
        .unwrap_or((file.clone(), ""));
    let (stem, ext) = match stem.rfind('.').filter(|&d| d > 0) {
        Some(d) => (stem[..d].to_owned(), stem[d..].to_owned()),
        None => (stem, String::new()),
    };
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let seen = names[..i].iter().filter(|n| *n == name).count();
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let tag = if seen == 0 {
                safe
            } else {
                format!("{safe}-{}", seen + 1)
            };
            base.with_file_name(format!("{stem}.{tag}{ext}{compressed}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{parse_line, Event, Line};
    use pagealloc::{AllocFlags, AllocKind, CpuId, MigrateType};

    /// Flags of an emitted allocation, as the replayer reads them back.
    fn read_back(flags: AllocFlags) -> Option<AllocFlags> {
        crate::gfp::parse_gfp(
            linux_gfp_text(flags).as_bytes(),
            crate::gfp::Strictness::Lenient,
        )
        .ok()
    }

    #[test]
    fn numbers_are_formatted_like_printf() {
        let mut line = Vec::new();
        push_dec(&mut line, 7, 3, b'0');
        push_dec(&mut line, 152, 5, b' ');
        push_dec(&mut line, 123_456, 3, b'0');
        push_hex(&mut line, 0x12ec68, 1);
        push_hex(&mut line, 0xab, 16);
        push_dec(&mut line, 0, 1, b' ');
        push_hex(&mut line, u64::MAX, 1);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "007  15212345612ec6800000000000000ab0ffffffffffffffff"
        );
    }

    #[test]
    fn tasks_are_padded_like_ftrace() {
        let mut out = Vec::new();
        format_task(b"bash-3517", &mut out);
        assert_eq!(out, b"            bash-3517    ");
        format_task(b"kworker/u8:1-32", &mut out);
        assert_eq!(out, b"    kworker/u8:1-32      ");
        format_task(b"odd", &mut out);
        assert_eq!(out, b"                     odd ");
    }

    #[test]
    fn lines_read_back_as_the_events_they_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.trace");
        let w = TraceWriter::create(&path, 9).unwrap();
        w.set_replay_context(b"bash-3517", 1, 152_085_071);
        let flags = AllocFlags::HIGHUSER_MOVABLE | AllocFlags::NO_WARN;
        w.alloc(&AllocEvent {
            pfn: Pfn(0x12ec68),
            order: Order::new(3).unwrap(),
            migratetype: MigrateType::Movable,
            flags,
            cpu: CpuId(1),
            kind: AllocKind::Single,
        });
        w.free(&FreeEvent {
            pfn: Pfn(0x12ec68),
            order: Order::ZERO,
            cpu: CpuId(0),
            kind: FreeKind::Batched,
        });
        // Time does not go backwards.
        w.set_replay_context(b"opt cgu.0-3561", 0, 100);
        w.pcp_drain(&DrainEvent {
            pfn: Pfn(0x42),
            order: Order::ZERO,
            migratetype: MigrateType::Movable,
        });
        let done = w.finish().unwrap();
        assert_eq!(done.lines, 4);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "            bash-3517    [001] .....   152.085071: mm_page_alloc: \
             page=ffffea0004bb1a00 pfn=0x12ec68 order=3 migratetype=1 \
             gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_NOWARN"
        );
        assert_eq!(
            lines[2],
            "            bash-3517    [000] ...3.   152.085071: mm_page_free_batched: \
             page=ffffea0004bb1a00 pfn=0x12ec68 order=0"
        );
        assert!(lines[3]
            .starts_with("       opt cgu.0-3561    [000] d..3.   152.085071: mm_page_pcpu_drain:"));
        let Ok(Line::Event {
            task,
            cpu,
            event:
                Event::Alloc {
                    pfn,
                    order,
                    migratetype,
                    gfp,
                },
            ..
        }) = parse_line(lines[0].as_bytes())
        else {
            panic!("not an allocation: {}", lines[0]);
        };
        assert_eq!((task, cpu), (&b"bash-3517"[..], Some(1)));
        assert_eq!((pfn, order, migratetype), (Some(0x12ec68), 3, 1));
        assert_eq!(
            crate::gfp::parse_gfp(gfp, crate::gfp::Strictness::Strict),
            Ok(flags)
        );
        assert!(matches!(
            parse_line(lines[1].as_bytes()),
            Ok(Line::Event {
                event: Event::Free {
                    pfn: 0x12ec68,
                    order: 0
                },
                ..
            })
        ));
    }

    #[test]
    fn scenario_steps_tick_in_microseconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.trace.zst");
        let w = TraceWriter::create(&path, 9).unwrap();
        w.set_step(7);
        for _ in 0..2 {
            w.free(&FreeEvent {
                pfn: Pfn(1),
                order: Order::ZERO,
                cpu: CpuId(0),
                kind: FreeKind::Single,
            });
        }
        w.finish().unwrap();
        let text =
            String::from_utf8(zstd::decode_all(std::fs::File::open(&path).unwrap()).unwrap())
                .unwrap();
        let pid = std::process::id();
        assert!(text
            .lines()
            .next()
            .unwrap()
            .contains(&format!("pagesim-{pid}")));
        assert!(text.contains("     7.000000: mm_page_free"));
        assert!(text.contains("     7.000001: mm_page_free"));
    }

    #[test]
    fn one_file_per_name() {
        let p = |s: &str, names: &[&str]| -> Vec<String> {
            emit_paths(Path::new(s), names)
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        };
        assert_eq!(p("/t/x.trace", &["linux"]), ["/t/x.trace"]);
        assert_eq!(
            p("/t/x.trace.zst", &["linux", "packed"]),
            ["/t/x.linux.trace.zst", "/t/x.packed.trace.zst"]
        );
        assert_eq!(p("x", &["a", "a"]), ["x.a", "x.a-2"]);
        assert_eq!(p(".hidden", &["a", "b"]), [".hidden.a", ".hidden.b"]);
        assert_eq!(p("x.t", &["a/b c", "d"]), ["x.a_b_c.t", "x.d.t"]);
    }

    #[test]
    fn emitted_flags_survive_the_replayer() {
        for f in [
            AllocFlags::KERNEL,
            AllocFlags::HIGHUSER_MOVABLE,
            AllocFlags::GFP_ATOMIC | AllocFlags::RECLAIMABLE,
            AllocFlags::DMA32 | AllocFlags::THIS_NODE | AllocFlags::NO_FALLBACK,
        ] {
            assert_eq!(read_back(f), Some(f));
        }
    }
}
