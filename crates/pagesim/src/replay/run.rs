//! One policy's replay: its allocator, started empty or where Linux was,
//! and the map from the trace's pfns to our blocks. The rules are in
//! [`crate::replay`]'s documentation.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::decode::{bump, Batch, Op};
use super::table::PfnMap;
use super::usage::Usage;
use super::AfterState;
use crate::census::{self, MixedPageblocks, Scratch};
use crate::emit::TraceWriter;
use crate::error::{Error, Result};
use crate::machine::{Machine, MachineInfo};
use crate::policy::{AllocPolicy, PolicyInfo};
use crate::report::{
    EngineStats, FreeDistance, MixedPeak, PolicyReport, RegionOutcome, RegionSample, ReplayCounts,
    Sample, SpreadPeak, StartReport, ZoneFree,
};
use crate::seed::{StartState, Untraced};
use pagealloc::{
    AllocFlags, Allocator, BlockError, CpuId, MigrateRefusal, MigrateType, Migrator, Order, Pfn,
    VmStats, DEFAULT_PROACTIVENESS,
};

/// Live higher-order allocations are also counted per chunk of `2^3`
/// trace pfns, so that the common order-0 event finds out with one table
/// lookup that no range query is needed (with chunks of `2^6`, the range
/// queries took 1.6% of a one-policy replay's CPU samples, 0.3% now; the
/// larger table costs some of it back).
const CHUNK_SHIFT: u8 = 3;

/// Chunks whose bit [`PolicyRun::any_large`] reads: trace pfns below
/// 2^29 (2 TiB of 4 KiB pages), a bitmap of at most 8 MiB grown only as far
/// as the live large allocations reach; chunks above ask `large_chunks`.
const BITMAP_CHUNKS: u64 = 1 << 26;

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
pub(crate) struct PolicyRun {
    info: &'static PolicyInfo,
    policy: Box<dyn AllocPolicy>,
    alloc: Allocator,
    /// Untraced memory, when the replay started where Linux was.
    untraced: Option<Untraced>,
    /// How the start state came out.
    start: Option<StartReport>,
    /// The engine's counters once the start state was made.
    stats_base: VmStats,
    scratch: Scratch,
    /// Allocated pages per pageblock and type, for the censuses.
    usage: Usage,
    /// Live order-0 allocations: trace pfn -> our frame ([`FAILED`], or
    /// with [`PIECE`]).
    small: PfnMap,
    large: BTreeMap<u64, Large>,
    /// Live entries of `large` overlapping each chunk of trace pfns.
    large_chunks: PfnMap,
    /// One bit per chunk below [`BITMAP_CHUNKS`]: whether `large_chunks`
    /// counts any entry there. The common order-0 event's question (is
    /// any large allocation near?) reads this small bitmap, which stays in
    /// the cache, instead of the counts.
    large_bits: Vec<u64>,
    counts: ReplayCounts,
    samples: Vec<Sample>,
    peak: Option<MixedPeak>,
    /// The CPU the current event runs on.
    cpu: CpuId,
    /// The `--emit-trace` writer, also installed as the allocator's sink.
    emit: Option<Arc<TraceWriter>>,
    /// Compaction on (see [`crate::replay::ReplayOptions::compaction`]).
    compaction: bool,
    /// With compaction: our frame -> the trace pfn whose entry held it when
    /// it was allocated. Entries are not removed on free; a migration
    /// checks the entry still holds the frame (a stale one is dropped).
    owners: PfnMap,
    /// Pages per region to count fully free regions of (seed 000), and the
    /// count at every sample.
    region_pages: Option<u64>,
    region_samples: Vec<RegionSample>,
}

/// The replay as the engine's migrator: a block moves if the trace entry
/// that holds it is a whole live allocation (an order-0 entry that is not
/// a split piece, or a higher-order one not split); the entry then names
/// the new frame, so the trace's later free frees it there.
struct ReplayMigrator<'r> {
    small: &'r mut PfnMap,
    large: &'r mut BTreeMap<u64, Large>,
    owners: &'r mut PfnMap,
    usage: &'r mut Usage,
}

impl Migrator for ReplayMigrator<'_> {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: Order) -> Result<(), MigrateRefusal> {
        let Some(key) = self.owners.get(from.0) else {
            return Err(MigrateRefusal::Busy);
        };
        let moved = if order == Order::ZERO && self.small.get(key) == Some(from.0) {
            self.small.insert(key, to.0);
            true
        } else {
            match self.large.get_mut(&key) {
                Some(l)
                    if l.ours == Some(from.0) && l.freed.is_none() && l.order == order.get() =>
                {
                    l.ours = Some(to.0);
                    true
                }
                _ => false,
            }
        };
        self.owners.remove(from.0);
        if !moved {
            return Err(MigrateRefusal::Busy);
        }
        self.owners.insert(to.0, key);
        self.usage.moved(from.0, to.0, order);
        Ok(())
    }
}

impl PolicyRun {
    /// A fresh allocator of `machine` for policy `info`, started from
    /// `start` if given, writing to `emit` if given.
    pub fn new(
        info: &'static PolicyInfo,
        machine: &Machine,
        start: Option<&StartState>,
        emit: Option<Arc<TraceWriter>>,
        compaction: bool,
    ) -> Result<PolicyRun> {
        let mut alloc = machine.allocator_with(info.configure)?;
        let (untraced, start) = match start {
            Some(s) => {
                let (u, r) = s.recreate(&alloc)?;
                (Some(u), Some(r))
            }
            None => (None, None),
        };
        let stats_base = alloc.stats();
        let nr_orders = alloc.config().nr_orders as usize;
        let usage = Usage::new(&alloc);
        // The sink comes after the start state: that is not the trace.
        if let Some(w) = &emit {
            alloc.set_event_sink(Some(w.clone()));
        }
        Ok(PolicyRun {
            info,
            policy: (info.build)(),
            alloc,
            untraced,
            start,
            stats_base,
            scratch: Scratch::default(),
            usage,
            small: PfnMap::default(),
            large: BTreeMap::new(),
            large_chunks: PfnMap::default(),
            large_bits: Vec::new(),
            counts: ReplayCounts {
                allocs: vec![0; nr_orders],
                alloc_failures: vec![0; nr_orders],
                ..ReplayCounts::default()
            },
            samples: Vec::new(),
            peak: None,
            cpu: CpuId(0),
            emit,
            compaction,
            owners: PfnMap::default(),
            region_pages: None,
            region_samples: Vec::new(),
        })
    }

    /// Counts fully free regions of `pages` pages at every sample.
    pub fn with_region_census(mut self, pages: Option<u64>) -> PolicyRun {
        self.region_pages = pages;
        self
    }

    /// Replays a batch.
    pub fn apply(&mut self, batch: &Batch) {
        let contexts = (!batch.contexts.is_empty()).then_some(&batch.contexts);
        for (i, op) in batch.ops.iter().enumerate() {
            if let (Some(w), Some(ctx)) = (&self.emit, contexts.and_then(|c| c.get(i))) {
                if let Op::Alloc { cpu, .. } | Op::Free { cpu, .. } = op {
                    w.set_replay_context(batch.task(ctx), *cpu, ctx.micros);
                }
            }
            match *op {
                Op::Alloc {
                    pfn,
                    flags,
                    order,
                    cpu,
                } => {
                    self.cpu = CpuId(cpu);
                    self.on_alloc(pfn, order, flags);
                }
                Op::Free {
                    pfn,
                    order,
                    cpu,
                    hint,
                } => {
                    self.cpu = CpuId(cpu);
                    self.on_free(pfn, order, hint);
                }
                Op::Sample { at, time_s } => self.sample(at, time_s),
            }
        }
    }

    fn free_ours(&mut self, pfn: u64, order: u8) {
        let order = Order::new(order).unwrap_or(Order::ZERO);
        match self
            .policy
            .free_on_cpu(&mut self.alloc, self.cpu, Pfn(pfn), order)
        {
            Ok(()) => self.usage.freed(pfn, order),
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
        if self.any_large(pfn, end) {
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
            if let Some(ours) = self.small.remove(p) {
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
        let Some(l) = self.remove_large(start) else {
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

    /// The chunks of trace pfns `pfn..end`.
    fn chunks(pfn: u64, end: u64) -> std::ops::RangeInclusive<u64> {
        let last = end.saturating_sub(1).max(pfn);
        (pfn >> CHUNK_SHIFT)..=(last >> CHUNK_SHIFT)
    }

    /// Whether a live large allocation may overlap `pfn..end`.
    #[inline]
    fn any_large(&self, pfn: u64, end: u64) -> bool {
        !self.large.is_empty() && Self::chunks(pfn, end).any(|c| self.chunk_used(c))
    }

    /// Whether `large_chunks` counts any entry in chunk `c`.
    #[inline(always)]
    fn chunk_used(&self, c: u64) -> bool {
        if c < BITMAP_CHUNKS {
            let used = self
                .large_bits
                .get((c / 64) as usize)
                .is_some_and(|w| w & (1 << (c % 64)) != 0);
            // The tests' debug builds check the bit against the counts.
            debug_assert_eq!(used, self.large_chunks.contains_key(c), "chunk {c}");
            used
        } else {
            self.large_chunks.contains_key(c)
        }
    }

    /// Sets or clears chunk `c`'s bit.
    fn mark_chunk(&mut self, c: u64, used: bool) {
        if c >= BITMAP_CHUNKS {
            return;
        }
        let w = (c / 64) as usize;
        if self.large_bits.len() <= w {
            if !used {
                return;
            }
            self.large_bits.resize(w + 1, 0);
        }
        if used {
            self.large_bits[w] |= 1 << (c % 64);
        } else {
            self.large_bits[w] &= !(1 << (c % 64));
        }
    }

    fn insert_large(&mut self, pfn: u64, l: Large) {
        let end = pfn.saturating_add(1u64 << l.order);
        for c in Self::chunks(pfn, end) {
            let n = self.large_chunks.get(c).unwrap_or(0);
            self.large_chunks.insert(c, n + 1);
            self.mark_chunk(c, true);
        }
        if let Some(old) = self.large.insert(pfn, l) {
            // Never happens (the pfn was dropped first); keep the counts
            // true all the same.
            self.uncount_large(pfn, old.order);
        }
    }

    fn remove_large(&mut self, pfn: u64) -> Option<Large> {
        let l = self.large.remove(&pfn)?;
        self.uncount_large(pfn, l.order);
        Some(l)
    }

    fn uncount_large(&mut self, pfn: u64, order: u8) {
        let end = pfn.saturating_add(1u64 << order);
        for c in Self::chunks(pfn, end) {
            match self.large_chunks.get(c) {
                Some(1) => {
                    self.large_chunks.remove(c);
                    self.mark_chunk(c, false);
                }
                Some(n) => {
                    self.large_chunks.insert(c, n - 1);
                }
                None => {}
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
        let Some(l) = self.remove_large(start) else {
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
        // With a migrator at hand (compaction on), a request confinement
        // confines, or small-order packing packs, may also have a
        // pageblock emptied for it, at any order.
        let evacuates =
            Order::new(order).is_some_and(|o| self.alloc.config().evacuates_for(o, flags));
        let compacting = self.compaction && (order > 0 || evacuates);
        let result = match Order::new(order) {
            // Direct compaction: the engine compacts and retries when the
            // first attempt fails (only requests that may wait), after
            // the evacuation for a confined or packed request.
            Some(o) if compacting => {
                let mut migrator = ReplayMigrator {
                    small: &mut self.small,
                    large: &mut self.large,
                    owners: &mut self.owners,
                    usage: &mut self.usage,
                };
                self.alloc
                    .alloc_compacting(self.cpu, o, flags, &mut migrator)
                    .ok()
            }
            Some(o) => self
                .policy
                .alloc_on_cpu(&mut self.alloc, self.cpu, o, flags)
                .ok(),
            None => None,
        };
        if let (true, Some(ours)) = (self.compaction, result) {
            self.owners.set(ours.0, pfn);
        }
        if let (Some(ours), Some(o)) = (result, Order::new(order)) {
            self.usage.allocated(ours.0, o, flags.migratetype());
        }
        let counts = match result {
            Some(_) => &mut self.counts.allocs,
            None => &mut self.counts.alloc_failures,
        };
        bump(counts, order);
        if order == 0 {
            self.small.insert(pfn, result.map_or(FAILED, |p| p.0));
        } else {
            self.insert_large(
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

    fn on_free(&mut self, pfn: u64, order: u8, hint: MigrateType) {
        if let Some(ours) = self.small.remove(pfn) {
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
                    if let Some(ours) = self.small.remove(p) {
                        if ours != FAILED {
                            self.free_ours(ours & !PIECE, 0);
                        }
                    }
                }
            }
            return;
        }
        let covering = if self.any_large(pfn, pfn.saturating_add(1)) {
            self.covering(pfn)
                .map(|s| (s, self.large[&s].order, self.large[&s].freed.is_some()))
        } else {
            None
        };
        let Some((start, alloc_order, split)) = covering else {
            self.counts.unknown_pfn_frees += 1;
            self.release_untraced(pfn, order, hint);
            return;
        };
        if start == pfn && order >= alloc_order && !split {
            let l = self.remove_large(start).map(|l| l.ours);
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
            self.remove_large(start);
        }
    }

    /// A free of a pfn allocated before the trace: releases untraced
    /// memory of its zone, order and suggested type, when there is any.
    fn release_untraced(&mut self, pfn: u64, order: u8, hint: MigrateType) {
        let Some(u) = &mut self.untraced else {
            return;
        };
        let Some(zone) = u.zone_of(pfn) else {
            self.counts.untraced_unmatched += 1;
            return;
        };
        let r = u.release(&self.alloc, zone, hint, order);
        self.counts.other_free_errors += r.split_errors;
        if r.pages == 0 {
            self.counts.untraced_unmatched += 1;
            return;
        }
        let c = &mut self.counts;
        c.untraced_frees += 1;
        c.untraced_pages_released += r.pages;
        c.untraced_other_type += u64::from(r.other_type);
        c.untraced_composed += u64::from(r.composed);
        c.untraced_short += u64::from(r.short);
        for (p, o) in r.blocks {
            self.free_ours(p.0, o.get());
        }
    }

    /// A census from the counts the replay keeps ([`Usage`]).
    fn tracked_census(&mut self) -> census::Census {
        let usage = &self.usage;
        census::take_with(&self.alloc, &mut self.scratch, &mut |zi, zone, masks| {
            usage.masks(zi, zone, masks)
        })
    }

    /// Takes a census sample.
    pub fn sample(&mut self, at: u64, time_s: Option<f64>) {
        if self.compaction {
            // kcompactd's proactive round, once per sample.
            let mut migrator = ReplayMigrator {
                small: &mut self.small,
                large: &mut self.large,
                owners: &mut self.owners,
                usage: &mut self.usage,
            };
            self.alloc
                .proactive_compact(DEFAULT_PROACTIVENESS, &mut migrator);
        }
        let c = self.tracked_census();
        // The tests' debug builds check the counts at every sample; every
        // build checks them once at the end (`finish`).
        debug_assert_eq!(c, census::take(&self.alloc, &mut Scratch::default()));
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
        if let Some(pages) = self.region_pages {
            let (fully_free, _) = census::fully_free_regions(&self.alloc, pages);
            self.region_samples.push(RegionSample {
                at,
                time_s,
                fully_free,
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

    /// Ends the run: checks the allocator, closes the emitted trace and
    /// reports. The trace's Linux fallback count is filled in by the
    /// caller, which has the trace's figures.
    pub fn finish(
        mut self,
        after: Option<&AfterState>,
        machine: &Machine,
    ) -> Result<(PolicyReport, MachineInfo)> {
        self.alloc.check_invariants().map_err(Error::Invariant)?;
        let tracked = self.tracked_census();
        let walked = census::take(&self.alloc, &mut self.scratch);
        if tracked != walked {
            return Err(Error::Internal(format!(
                "the replay's pageblock counts drifted from the allocator's: \
                 counted {tracked:?}, walked {walked:?}"
            )));
        }
        // Drop the sink first: nothing may write after the file is closed.
        self.alloc.set_event_sink(None);
        let emitted = self.emit.take().map(|w| w.finish()).transpose()?;
        let info = machine.info(&self.alloc);
        let pageblock = self.alloc.config().pageblock();
        let nr_orders = self.alloc.config().nr_orders as usize;
        self.counts.live_pages_end = self.alloc.nr_allocated_pages();
        self.counts.untraced_pages_end = self.untraced.as_ref().map_or(0, Untraced::pages);
        let free_vs_linux_after = after.map(|a| distance(&self.alloc, a));
        let last = self.samples.last();
        let mixed_end = last.map_or(MixedPageblocks::default(), |s| s.mixed);
        let at_least =
            |s: &Sample| -> u64 { s.free_blocks.iter().skip(pageblock.get() as usize).sum() };
        let regions = self.region_pages.map(|pages| {
            RegionOutcome::measure(
                &self.alloc,
                pages,
                self.counts.live_pages_end,
                core::mem::take(&mut self.region_samples),
            )
        });
        let report = PolicyReport {
            regions,
            name: self.info.name.to_owned(),
            summary: self.info.summary.to_owned(),
            engine: EngineStats::since(&self.stats_base, &self.alloc.stats(), nr_orders),
            linux_extfrag_events: 0,
            mixed_end,
            mixed_peak: self.peak.unwrap_or_default(),
            emitted_trace: emitted,
            start: self.start.take(),
            free_vs_linux_after,
            unmovable_spread_end: last.map_or_else(Default::default, |s| s.unmovable_spread),
            unmovable_spread_peak: SpreadPeak::of(&self.samples),
            free_pageblocks_end: last.map_or(0, at_least),
            free_pageblocks_min: self.samples.iter().map(at_least).min().unwrap_or(0),
            buddyinfo: self.alloc.buddyinfo(),
            pagetypeinfo: self.alloc.pagetypeinfo(),
            counts: self.counts,
            samples: self.samples,
        };
        Ok((report, info))
    }
}

/// Our free pages per zone against Linux's after the trace.
fn distance(alloc: &Allocator, after: &AfterState) -> FreeDistance {
    let pcp = alloc.nr_pcp_pages_per_zone();
    let zones: Vec<ZoneFree> = alloc
        .zones()
        .iter()
        .zip(pcp)
        .filter_map(|(z, pcp)| {
            let a = after
                .zones
                .iter()
                .find(|a| a.node == z.node() && a.zone == z.zone_type())?;
            Some(ZoneFree {
                node: z.node().0,
                zone: z.zone_type().linux_name(),
                linux: a.free?,
                ours: z.nr_free().0,
                linux_pcp: a.pcp,
                ours_pcp: pcp,
            })
        })
        .collect();
    let with_pcp = zones
        .iter()
        .map(|z| Some((z.ours + z.ours_pcp).abs_diff(z.linux + z.linux_pcp?)))
        .sum();
    FreeDistance {
        origin: after.origin.clone(),
        l1_pages_with_pcp: with_pcp,
        l1_pages: zones.iter().map(|z| z.ours.abs_diff(z.linux)).sum(),
        linux_pages: zones.iter().map(|z| z.linux).sum(),
        zones,
    }
}
