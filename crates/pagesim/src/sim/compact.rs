//! Compaction in the simulation: direct compaction of a failed request
//! (`Allocator::alloc_compacting`, Linux's `__alloc_pages_direct_compact`)
//! and kcompactd's proactive compaction every `every` steps
//! (`Allocator::proactive_compact`, `vm.compaction_proactiveness`), both
//! through the simulator's migrator: a moved block is its slot pointed at
//! the new frame, so whatever frees it later frees the new frame.
//!
//! The engine migrates only blocks allocated as movable, so movable
//! actors' blocks are what compaction moves; every other block is refused
//! by the migrator, as a pinned page would be.
//!
//! With confinement or small-order packing on, the same migrator lets a
//! confined or packed request empty a movable pageblock before it falls
//! back (`Allocator::alloc_confining`, the first attempt of
//! `alloc_compacting` too, also with direct compaction off); the blocks it
//! moves are counted with compaction's moved blocks here, and apart in
//! the engine's `confined_evacuated_pages`.
//!
//! Requests of order 3 or more and of the pageblock order are tallied
//! here, served or not, so the report can show their success rate over
//! time with compaction on and off.

use std::rc::Rc;

use pagealloc::{AllocError, AllocFlags, CpuId, Order, Pfn};

use super::contig::{MigrationReclaim, SimMigrator};
use super::Sim;
use crate::report::{CompactionReport, RequestPoint, RequestRate};
use crate::scenario::DirectCompaction;

/// The first order counted in the "order 3 or more" rate (Linux's
/// `PAGE_ALLOC_COSTLY_ORDER`: above it, requests are costly).
pub(super) const COSTLY_ORDER: u8 = 3;

/// kcompactd's looks skipped after a proactive run that did not lower the
/// score: Linux multiplies its timeout by `1 << COMPACT_MAX_DEFER_SHIFT`
/// (64) when `score >= prev_score` (`kcompactd`, mm/compaction.c).
const PROACTIVE_DEFER_LOOKS: u64 = 1 << 6;

/// Requests tallied since the start of the run.
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct Tally {
    /// Orders 3 and up.
    pub(super) costly: RequestRate,
    /// The pageblock order (order 9: a transparent huge page).
    pub(super) pageblock: RequestRate,
}

impl Tally {
    fn since(self, earlier: Tally) -> (RequestRate, RequestRate) {
        (
            self.costly.since(earlier.costly),
            self.pageblock.since(earlier.pageblock),
        )
    }
}

/// What the simulation counts of compaction beside the engine's counters.
#[derive(Default)]
pub(super) struct CompactionState {
    pub(super) tally: Tally,
    /// The tally at the last sample and at the last snapshot.
    at_sample: Tally,
    at_snapshot: Tally,
    pub(super) samples: Vec<RequestPoint>,
    /// Blocks and pages compaction moved, blocks the migrator refused.
    moved_blocks: u64,
    moved_pages: u64,
    refused_blocks: u64,
    /// kcompactd's looks, and those that compacted.
    proactive_looks: u64,
    proactive_runs: u64,
    /// Looks still to skip after a run that made no progress.
    proactive_deferred: u64,
    /// Runs that made no progress (each deferred kcompactd).
    proactive_defers: u64,
}

impl Sim<'_> {
    /// One request of `order` from the engine: with direct compaction on,
    /// compacting after a failed attempt.
    pub(super) fn alloc_block(
        &mut self,
        order: Order,
        flags: AllocFlags,
    ) -> Result<Pfn, AllocError> {
        let direct = self
            .variant
            .compaction
            .is_some_and(|c| c.direct == DirectCompaction::On);
        let confining = self.alloc.config().evacuates();
        if !direct && !confining {
            return self.alloc.alloc(order, flags);
        }
        let alloc = Rc::clone(&self.alloc);
        let mut m = SimMigrator::new(self, MigrationReclaim::No);
        let result = if direct {
            alloc.alloc_compacting(CpuId(0), order, flags, &mut m)
        } else {
            alloc.alloc_confining(CpuId(0), order, flags, &mut m)
        };
        let counts = m_counts(&m);
        self.count_moves(counts);
        result
    }

    /// Tallies one request of `order` and whether it was served.
    pub(super) fn tally(&mut self, order: Order, served: bool) {
        let o = order.get();
        let pb = self.alloc.config().pageblock_order;
        if o >= COSTLY_ORDER {
            self.compaction.tally.costly.add(served);
        }
        if o == pb {
            self.compaction.tally.pageblock.add(served);
        }
    }

    /// kcompactd at the end of step `done`: every `every` steps, proactive
    /// compaction if the fragmentation score is above its high mark.
    pub(super) fn kcompactd(&mut self, done: u64) {
        let Some(c) = self.variant.compaction else {
            return;
        };
        if c.proactiveness == 0 || !done.is_multiple_of(c.every) {
            return;
        }
        if self.compaction.proactive_deferred > 0 {
            self.compaction.proactive_deferred -= 1;
            return;
        }
        let alloc = Rc::clone(&self.alloc);
        let mut m = SimMigrator::new(self, MigrationReclaim::No);
        let outcomes = alloc.proactive_compact(c.proactiveness, &mut m);
        let counts = m_counts(&m);
        self.count_moves(counts);
        self.compaction.proactive_looks += 1;
        let ran: Vec<_> = outcomes.iter().filter(|o| !o.runs.is_empty()).collect();
        if !ran.is_empty() {
            self.compaction.proactive_runs += 1;
        }
        if ran.iter().any(|o| o.score_after >= o.score_before) {
            self.compaction.proactive_deferred = PROACTIVE_DEFER_LOOKS - 1;
            self.compaction.proactive_defers += 1;
        }
    }

    fn count_moves(&mut self, (blocks, pages, refused): (u64, u64, u64)) {
        self.compaction.moved_blocks += blocks;
        self.compaction.moved_pages += pages;
        self.compaction.refused_blocks += refused;
    }

    /// The requests since the last sample, as a point at `step`.
    pub(super) fn sample_requests(&mut self, step: u64) {
        let st = &mut self.compaction;
        let (costly, pageblock) = st.tally.since(st.at_sample);
        st.at_sample = st.tally;
        st.samples.push(RequestPoint {
            at: step,
            costly,
            pageblock,
        });
    }

    /// The requests since the last snapshot, as a point at `step`.
    pub(super) fn snapshot_requests(&mut self, step: u64) -> RequestPoint {
        let st = &mut self.compaction;
        let (costly, pageblock) = st.tally.since(st.at_snapshot);
        st.at_snapshot = st.tally;
        RequestPoint {
            at: step,
            costly,
            pageblock,
        }
    }

    /// The variant's compaction report at the end.
    pub(super) fn compaction_report(&mut self) -> CompactionReport {
        let s = self.alloc.stats();
        let c = self.variant.compaction;
        let st = &mut self.compaction;
        CompactionReport {
            enabled: c.is_some(),
            direct: c.is_some_and(|c| c.direct == DirectCompaction::On),
            proactiveness: c.map_or(0, |c| c.proactiveness),
            every: c.map_or(0, |c| c.every),
            compact_stall: s.compact_stall,
            compact_success: s.compact_success,
            compact_fail: s.compact_fail,
            compact_migrate_scanned: s.compact_migrate_scanned,
            compact_free_scanned: s.compact_free_scanned,
            compact_isolated: s.compact_isolated,
            compact_daemon_wake: s.compact_daemon_wake,
            proactive_looks: st.proactive_looks,
            proactive_runs: st.proactive_runs,
            proactive_defers: st.proactive_defers,
            migrated_blocks: st.moved_blocks,
            migrated_pages: st.moved_pages,
            refused_blocks: st.refused_blocks,
            pageblock_order: self.alloc.config().pageblock_order,
            costly: st.tally.costly,
            pageblock: st.tally.pageblock,
            samples: std::mem::take(&mut st.samples),
        }
    }
}

/// Blocks and pages a migrator moved, and blocks it refused.
fn m_counts(m: &SimMigrator<'_, '_>) -> (u64, u64, u64) {
    (m.moved_blocks, m.moved_pages, m.refused_blocks)
}
