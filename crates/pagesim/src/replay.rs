//! Replaying a Linux ftrace page-allocator trace into our allocator.
//!
//! Our allocator picks its own frames, so each policy keeps a map from the
//! trace's pfn to the block it got for it. The rules follow the facts about
//! real traces (see `/work/shared/traces/README.md` and docs/pagesim.md):
//!
//! * `mm_page_free` is the free; the `mm_page_free_batched` that follows a
//!   batched free is the same free again and is only counted.
//! * A free of a pfn we never saw allocated was allocated before tracing
//!   started: counted as an *unknown-pfn free*, not an error.
//! * A free inside a live higher-order allocation frees a piece of it (Linux
//!   `split_page`, `free_pages_exact`): our block is split once into order-0
//!   pages and the matching pieces are freed.
//! * An allocation our allocator fails is counted per order; its later free
//!   is ignored and counted as such, never taken for a double free.
//! * An allocation of a pfn we still hold means the trace missed its free:
//!   our old block is freed first (an *implicit free*). Pieces of a split
//!   allocation that were freed are not held: a new allocation over them
//!   turns the split allocation's remaining pieces into order-0 allocations
//!   of their own.
//! * Each event runs on the CPU of its line (`[001]`), through that CPU's
//!   per-CPU lists; a CPU the machine does not have runs on CPU
//!   `n % nr_cpus` (counted).
//!
//! With `--emit-trace`, each policy's allocator gets a
//! [`TraceWriter`] as its event sink, and each
//! replayed event sets the task, CPU and time of the lines it causes.
//!
//! Order-0 allocations (99.5% of a real trace) live in an `FxHashMap`, so the
//! common free is one hash lookup; higher-order ones live in a `BTreeMap`,
//! where a free of any pfn inside them is found by one range query.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use std::sync::Arc;

use pagealloc::{AllocFlags, Allocator, BlockError, CpuId, MigrateType, Order, Pfn};
use rustc_hash::FxHashMap;

use crate::census::{self, MixedPageblocks, Scratch};
use crate::emit::{emit_paths, TraceWriter};
use crate::error::{Error, Result};
use crate::gfp::{parse_gfp, Strictness};
use crate::input::LineReader;
use crate::machine::Machine;
use crate::policy::{AllocPolicy, PolicyInfo};
use crate::progress::Progress;
use crate::report::{
    EngineStats, EventCounts, InputInfo, MixedPeak, PolicyReport, ReplayCounts, ReplayReport,
    Sample, SpreadPeak,
};
use crate::trace::{parse_line, timestamp_micros, timestamp_secs, Event, Line};

/// How to replay.
pub struct ReplayOptions {
    /// Trace files, replayed one after the other as one stream.
    pub files: Vec<PathBuf>,
    /// The machine to replay into.
    pub machine: Machine,
    /// Policies to compare, each with its own allocator.
    pub policies: Vec<&'static PolicyInfo>,
    /// Skip and count malformed lines instead of failing.
    pub lenient: bool,
    /// Census samples per replay (spread over the input bytes).
    pub samples: u32,
    /// Write each policy's decisions as ftrace text to this file (one file
    /// per policy when there are several, see [`emit_paths`]).
    pub emit_trace: Option<PathBuf>,
}

/// Lines between two looks at the input position (sampling, progress).
const CHECK_EVERY_LINES: u32 = 256;
/// Malformed lines quoted in the report under `--lenient`.
const MALFORMED_EXAMPLES: usize = 5;
/// Our frame for an allocation our allocator failed.
const FAILED: u64 = u64::MAX;
/// Marks an order-0 entry that was a piece of a split allocation (counted
/// as a piece when freed). Frames stay far below this bit.
const PIECE: u64 = 1 << 62;

/// A live higher-order allocation of the trace.
struct Large {
    order: u8,
    /// Our block, or `None` if our allocator failed it.
    ours: Option<u64>,
    /// Pieces already freed, one bit per page, once split.
    freed: Option<Vec<u64>>,
    /// Pages not yet freed.
    remaining: u64,
}

/// One policy's allocator and bookkeeping.
struct PolicyRun {
    info: &'static PolicyInfo,
    policy: Box<dyn AllocPolicy>,
    alloc: Allocator,
    small: FxHashMap<u64, u64>,
    large: BTreeMap<u64, Large>,
    counts: ReplayCounts,
    samples: Vec<Sample>,
    peak: Option<MixedPeak>,
    /// The CPU the current event runs on.
    cpu: CpuId,
    /// The `--emit-trace` writer, also installed as the allocator's sink.
    emit: Option<Arc<TraceWriter>>,
}

impl PolicyRun {
    fn new(
        info: &'static PolicyInfo,
        mut alloc: Allocator,
        emit: Option<Arc<TraceWriter>>,
    ) -> PolicyRun {
        let nr_orders = alloc.config().nr_orders as usize;
        if let Some(w) = &emit {
            alloc.set_event_sink(Some(w.clone()));
        }
        PolicyRun {
            info,
            policy: (info.build)(),
            alloc,
            small: FxHashMap::with_capacity_and_hasher(1 << 18, Default::default()),
            large: BTreeMap::new(),
            counts: ReplayCounts {
                allocs: vec![0; nr_orders],
                alloc_failures: vec![0; nr_orders],
                ..ReplayCounts::default()
            },
            samples: Vec::new(),
            peak: None,
            cpu: CpuId(0),
            emit,
        }
    }

    fn free_ours(&mut self, pfn: u64, order: u8) {
        let order = Order::new(order).unwrap_or(Order::ZERO);
        match self
            .policy
            .free_on_cpu(&mut self.alloc, self.cpu, Pfn(pfn), order)
        {
            Ok(()) => {}
            Err(BlockError::AlreadyFree { .. }) => self.counts.double_frees += 1,
            Err(_) => self.counts.other_free_errors += 1,
        }
    }

    /// Drops whatever we still hold at trace pfns `pfn..pfn + 2^order`,
    /// which Linux has just handed out again: the trace missed the free.
    /// A split allocation overlapping the range is first turned into
    /// order-0 entries for its pieces not yet freed, so that no two live
    /// entries ever overlap and only the pieces inside the range are
    /// dropped.
    fn drop_stale(&mut self, pfn: u64, order: u8) {
        let end = pfn.saturating_add(1u64 << order);
        if !self.large.is_empty() {
            let mut overlapping: Vec<u64> = self.large.range(pfn..end).map(|(&s, _)| s).collect();
            if let Some(start) = self.covering(pfn).filter(|&s| s < pfn) {
                overlapping.push(start);
            }
            for start in overlapping {
                if self.large.get(&start).is_some_and(|l| l.freed.is_some()) {
                    self.dissolve(start);
                } else {
                    self.counts.implicit_frees += 1;
                    self.free_large_rest(start);
                }
            }
        }
        for p in pfn..end {
            if let Some(ours) = self.small.remove(&p) {
                self.counts.implicit_frees += 1;
                if ours != FAILED {
                    self.free_ours(ours & !PIECE, 0);
                }
            }
        }
    }

    /// Turns the split allocation at `start` into one order-0 entry per
    /// piece not yet freed.
    fn dissolve(&mut self, start: u64) {
        let Some(l) = self.large.remove(&start) else {
            return;
        };
        let Some(bits) = &l.freed else {
            return;
        };
        for i in 0..(1u64 << l.order) {
            if bits[(i / 64) as usize] & (1 << (i % 64)) == 0 {
                let ours = l.ours.map_or(FAILED, |o| (o + i) | PIECE);
                self.small.insert(start + i, ours);
            }
        }
    }

    /// The live large allocation whose range holds trace pfn `pfn`.
    fn covering(&self, pfn: u64) -> Option<u64> {
        self.large
            .range(..=pfn)
            .next_back()
            .filter(|(&s, l)| s.saturating_add(1u64 << l.order) > pfn)
            .map(|(&s, _)| s)
    }

    /// Frees every page of the large allocation at `start` not yet freed.
    fn free_large_rest(&mut self, start: u64) {
        let Some(l) = self.large.remove(&start) else {
            return;
        };
        let Some(ours) = l.ours else {
            return;
        };
        match &l.freed {
            None => self.free_ours(ours, l.order),
            Some(bits) => {
                for i in 0..(1u64 << l.order) {
                    if bits[(i / 64) as usize] & (1 << (i % 64)) == 0 {
                        self.free_ours(ours + i, 0);
                    }
                }
            }
        }
    }

    fn on_alloc(&mut self, pfn: u64, order: u8, flags: AllocFlags) {
        self.drop_stale(pfn, order);
        let result = match Order::new(order) {
            Some(o) => self
                .policy
                .alloc_on_cpu(&mut self.alloc, self.cpu, o, flags)
                .ok(),
            None => None,
        };
        let counts = match result {
            Some(_) => &mut self.counts.allocs,
            None => &mut self.counts.alloc_failures,
        };
        bump(counts, order);
        if order == 0 {
            self.small.insert(pfn, result.map_or(FAILED, |p| p.0));
        } else {
            self.large.insert(
                pfn,
                Large {
                    order,
                    ours: result.map(|p| p.0),
                    freed: None,
                    remaining: 1u64 << order,
                },
            );
        }
    }

    fn on_free(&mut self, pfn: u64, order: u8) {
        if let Some(ours) = self.small.remove(&pfn) {
            let piece = ours != FAILED && ours & PIECE != 0;
            if ours == FAILED {
                self.counts.failed_alloc_frees_ignored += 1;
            } else if piece {
                self.counts.split_piece_frees += 1;
                self.free_ours(ours & !PIECE, 0);
            } else {
                self.counts.frees += 1;
                self.free_ours(ours, 0);
            }
            if order > 0 {
                // Several pieces at once are a piece free; several order-0
                // allocations at once are an oversized free.
                self.counts.oversized_frees += u64::from(!piece);
                for p in pfn.saturating_add(1)..pfn.saturating_add(1u64 << order) {
                    if let Some(ours) = self.small.remove(&p) {
                        if ours != FAILED {
                            self.free_ours(ours & !PIECE, 0);
                        }
                    }
                }
            }
            return;
        }
        let covering = self
            .covering(pfn)
            .map(|s| (s, self.large[&s].order, self.large[&s].freed.is_some()));
        let Some((start, alloc_order, split)) = covering else {
            self.counts.unknown_pfn_frees += 1;
            return;
        };
        if start == pfn && order >= alloc_order && !split {
            let l = self.large.remove(&start).map(|l| l.ours);
            match l.flatten() {
                Some(ours) => {
                    self.counts.frees += 1;
                    self.free_ours(ours, alloc_order);
                }
                None => self.counts.failed_alloc_frees_ignored += 1,
            }
            if order > alloc_order {
                self.counts.oversized_frees += 1;
            }
            return;
        }
        self.free_piece(start, pfn, order);
    }

    /// Frees the pages `pfn..pfn + 2^order` of the large allocation at
    /// `start`, splitting our block first.
    fn free_piece(&mut self, start: u64, pfn: u64, order: u8) {
        let Some(l) = self.large.get_mut(&start) else {
            return;
        };
        self.counts.split_piece_frees += 1;
        let ours = l.ours;
        if l.freed.is_none() {
            let words = ((1usize << l.order) / 64).max(1);
            l.freed = Some(vec![0; words]);
            if let (Some(o), Some(order)) = (ours, Order::new(l.order)) {
                match self.alloc.split_page(Pfn(o), order) {
                    Ok(()) => self.counts.split_pages += 1,
                    Err(_) => self.counts.other_free_errors += 1,
                }
            }
        }
        let end = pfn
            .saturating_add(1u64 << order)
            .min(start.saturating_add(1u64 << l.order));
        let mut to_free = Vec::new();
        let bits = l.freed.as_mut().map_or(&mut [][..], |b| &mut b[..]);
        for p in pfn..end {
            let i = p - start;
            let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
            if bits[w] & b != 0 {
                self.counts.repeated_piece_frees += 1;
                continue;
            }
            bits[w] |= b;
            l.remaining -= 1;
            to_free.push(i);
        }
        let done = l.remaining == 0;
        match ours {
            Some(o) => {
                for i in to_free {
                    self.free_ours(o + i, 0);
                }
            }
            None => self.counts.failed_alloc_frees_ignored += 1,
        }
        if done {
            self.large.remove(&start);
        }
    }

    fn sample(&mut self, at: u64, time_s: Option<f64>, scratch: &mut Scratch) {
        let c = census::take(&self.alloc, scratch);
        let unusable_index = (0..c.free_blocks.len())
            .filter_map(|o| Order::new(o as u8))
            .map(|o| c.unusable_index(o))
            .collect();
        if self.peak.is_none_or(|p| c.mixed.total > p.mixed.total) {
            self.peak = Some(MixedPeak {
                mixed: c.mixed,
                at,
                time_s,
            });
        }
        self.samples.push(Sample {
            at,
            time_s,
            free_pages: c.free_pages,
            free_blocks: c.free_blocks,
            unusable_index,
            mixed: c.mixed,
            unmovable_spread: c.unmovable_spread,
        });
    }
}

/// Adds one at `order`, growing the per-order counts for an order beyond
/// the machine's (a trace from a kernel with more orders).
fn bump(counts: &mut Vec<u64>, order: u8) {
    let i = order as usize;
    if counts.len() <= i {
        counts.resize(i + 1, 0);
    }
    counts[i] += 1;
}

/// Caches the flags of the few distinct `gfp_flags=` strings a trace holds.
#[derive(Default)]
struct GfpCache {
    map: FxHashMap<Vec<u8>, AllocFlags>,
}

impl GfpCache {
    fn flags(&mut self, gfp: &[u8], migratetype: u8) -> AllocFlags {
        let base = match self.map.get(gfp) {
            Some(&f) => f,
            None => {
                let f = parse_gfp(gfp, Strictness::Lenient).unwrap_or(AllocFlags::KERNEL);
                self.map.insert(gfp.to_vec(), f);
                f
            }
        };
        // The traced migratetype is authoritative (it is what Linux used);
        // flags that already ask for it are kept as they are, so that flags
        // pagesim wrote (`--emit-trace`) read back bit for bit.
        let mt = MigrateType::from_index(migratetype as usize).unwrap_or(MigrateType::Unmovable);
        if base.migratetype() == mt {
            base
        } else {
            (base - AllocFlags::MOVABLE - AllocFlags::RECLAIMABLE) | AllocFlags::for_migratetype(mt)
        }
    }
}

/// Replays the trace files into each policy's allocator.
pub fn replay(opts: &ReplayOptions, progress: &Progress) -> Result<ReplayReport> {
    let started = Instant::now();
    let names: Vec<&str> = opts.policies.iter().map(|p| p.name).collect();
    let emit_to = match &opts.emit_trace {
        Some(base) => emit_paths(base, &names).into_iter().map(Some).collect(),
        None => vec![None; names.len()],
    };
    for path in emit_to.iter().flatten() {
        let same =
            |input: &PathBuf| match (std::fs::canonicalize(input), std::fs::canonicalize(path)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
        if opts.files.iter().any(same) {
            return Err(Error::Usage(format!(
                "--emit-trace {} would overwrite an input trace",
                path.display()
            )));
        }
    }
    let pageblock_order = opts.machine.config.pageblock_order;
    let mut runs: Vec<PolicyRun> = opts
        .policies
        .iter()
        .zip(emit_to)
        .map(|(info, path)| {
            let emit = match path {
                Some(p) => Some(Arc::new(TraceWriter::create(&p, pageblock_order)?)),
                None => None,
            };
            opts.machine
                .allocator_with(info.configure)
                .map(|a| PolicyRun::new(info, a, emit))
        })
        .collect::<Result<_>>()?;
    let nr_cpus = opts.machine.config.nr_cpus.max(1);
    let nr_orders = opts.machine.config.nr_orders as usize;
    let mut events = EventCounts {
        alloc_by_order: vec![0; nr_orders],
        ..EventCounts::default()
    };
    let total_bytes: u64 = opts
        .files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    progress.start(total_bytes, "replaying");
    let sample_every = (total_bytes / u64::from(opts.samples.max(1))).max(1);
    let mut next_sample = 0u64;
    let mut done_bytes = 0u64;
    let mut scratch = Scratch::default();
    let mut gfp = GfpCache::default();
    let mut inputs = Vec::new();
    let mut last_timestamp: Vec<u8> = Vec::with_capacity(32);
    for path in &opts.files {
        let mut reader = LineReader::open(path)?;
        if reader.file_bytes() == 0 {
            return Err(Error::EmptyTrace {
                path: path.clone(),
                why: "empty file",
            });
        }
        let page_events_before = events.page_events();
        let mut until_check = CHECK_EVERY_LINES;
        let position = reader.position();
        while let Some((line_no, line)) = reader.next_line()? {
            events.lines += 1;
            let parsed = match parse_line(line) {
                Ok(l) => l,
                Err(kind) if opts.lenient => {
                    events.malformed_skipped += 1;
                    if events.malformed_examples.len() < MALFORMED_EXAMPLES {
                        events.malformed_examples.push(format!(
                            "{}:{}: {kind}",
                            path.display(),
                            line_no
                        ));
                    }
                    continue;
                }
                Err(kind) => {
                    return Err(Error::TraceLine {
                        path: path.clone(),
                        line: line_no,
                        kind,
                    })
                }
            };
            if let Some(ts) = apply(parsed, &mut events, &mut runs, &mut gfp, nr_cpus) {
                last_timestamp.clear();
                last_timestamp.extend_from_slice(ts);
            }
            until_check -= 1;
            if until_check == 0 {
                until_check = CHECK_EVERY_LINES;
                let pos = done_bytes + position.get();
                progress.set(pos);
                if pos >= next_sample {
                    while next_sample <= pos {
                        next_sample += sample_every;
                    }
                    let (at, time) = (events.events(), timestamp_secs(&last_timestamp));
                    for run in &mut runs {
                        run.sample(at, time, &mut scratch);
                    }
                }
            }
        }
        if events.page_events() == page_events_before {
            return Err(Error::EmptyTrace {
                path: path.clone(),
                why: "no mm_page_* event in the file",
            });
        }
        done_bytes += reader.file_bytes();
        inputs.push(InputInfo {
            path: path.clone(),
            format: reader.format(),
            file_bytes: reader.file_bytes(),
            lines: reader.line_no(),
        });
    }
    progress.finish();
    let (at, time) = (events.events(), timestamp_secs(&last_timestamp));
    for run in &mut runs {
        run.sample(at, time, &mut scratch);
        run.alloc.check_invariants().map_err(Error::Invariant)?;
    }
    let mut emitted = Vec::with_capacity(runs.len());
    for run in &mut runs {
        // Drop the sink first: nothing may write after the file is closed.
        run.alloc.set_event_sink(None);
        emitted.push(run.emit.take().map(|w| w.finish()).transpose()?);
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let info = opts.machine.info(&runs[0].alloc);
    let pageblock = opts.machine.config.pageblock();
    let policies = runs
        .into_iter()
        .zip(emitted)
        .map(|(run, emitted)| PolicyReport {
            emitted_trace: emitted,
            ..finish(run, &events, pageblock)
        })
        .collect();
    Ok(ReplayReport {
        kind: "replay",
        inputs,
        machine: info,
        events_per_s: events.events() as f64 / elapsed_s.max(1e-9),
        events,
        elapsed_s,
        policies,
    })
}

/// Applies one parsed line; returns its timestamp if it is an event.
fn apply<'a>(
    line: Line<'a>,
    events: &mut EventCounts,
    runs: &mut [PolicyRun],
    gfp: &mut GfpCache,
    nr_cpus: u16,
) -> Option<&'a [u8]> {
    let (task, cpu, timestamp, event) = match line {
        Line::Comment => {
            events.comments += 1;
            return None;
        }
        Line::Lost { nr } => {
            // `nr` is any number the file says: saturate, never overflow.
            events.lost_events = events.lost_events.saturating_add(nr);
            return None;
        }
        Line::Event {
            task,
            cpu,
            timestamp,
            event,
        } => (task, cpu.unwrap_or(0), timestamp, event),
    };
    if cpu >= nr_cpus {
        events.cpu_folded += 1;
    }
    let cpu = CpuId(cpu % nr_cpus);
    let mut micros = None;
    for run in runs.iter_mut() {
        run.cpu = cpu;
        if let Some(w) = &run.emit {
            let t = *micros.get_or_insert_with(|| timestamp_micros(timestamp).unwrap_or(0));
            w.set_replay_context(task, cpu.0, t);
        }
    }
    match event {
        Event::Alloc {
            pfn,
            order,
            migratetype,
            gfp: text,
        } => {
            events.mm_page_alloc += 1;
            bump(&mut events.alloc_by_order, order);
            events.alloc_by_migratetype[migratetype as usize] += 1;
            match pfn {
                Some(pfn) => {
                    let flags = gfp.flags(text, migratetype);
                    for run in runs.iter_mut() {
                        run.on_alloc(pfn, order, flags);
                    }
                }
                None => events.linux_alloc_failures += 1,
            }
        }
        Event::Free { pfn, order } => {
            events.mm_page_free += 1;
            for run in runs.iter_mut() {
                run.on_free(pfn, order);
            }
        }
        Event::FreeBatched { .. } => events.mm_page_free_batched += 1,
        Event::PcpuDrain => events.mm_page_pcpu_drain += 1,
        Event::Extfrag {
            fragmenting,
            change_ownership,
        } => {
            events.mm_page_alloc_extfrag += 1;
            events.extfrag_fragmenting += u64::from(fragmenting);
            events.extfrag_change_ownership += u64::from(change_ownership);
        }
        Event::Other => events.other_events += 1,
    }
    Some(timestamp)
}

fn finish(mut run: PolicyRun, events: &EventCounts, pageblock: Order) -> PolicyReport {
    let nr_orders = run.alloc.config().nr_orders as usize;
    run.counts.live_pages_end = run.alloc.nr_allocated_pages();
    let last = run.samples.last();
    let mixed_end = last.map_or(MixedPageblocks::default(), |s| s.mixed);
    let at_least =
        |s: &Sample| -> u64 { s.free_blocks.iter().skip(pageblock.get() as usize).sum() };
    PolicyReport {
        name: run.info.name.to_owned(),
        summary: run.info.summary.to_owned(),
        engine: EngineStats::new(&run.alloc.stats(), nr_orders),
        linux_extfrag_events: events.mm_page_alloc_extfrag,
        mixed_end,
        mixed_peak: run.peak.unwrap_or_default(),
        emitted_trace: None,
        unmovable_spread_end: last.map_or_else(Default::default, |s| s.unmovable_spread),
        unmovable_spread_peak: SpreadPeak::of(&run.samples),
        free_pageblocks_end: last.map_or(0, at_least),
        free_pageblocks_min: run.samples.iter().map(at_least).min().unwrap_or(0),
        buddyinfo: run.alloc.buddyinfo(),
        pagetypeinfo: run.alloc.pagetypeinfo(),
        counts: run.counts,
        samples: run.samples,
    }
}
