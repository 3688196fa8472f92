//! The entry points of compaction: direct compaction of a failing
//! allocation, compaction of all memory on demand, and proactive
//! compaction driven by the fragmentation score, run by the caller as
//! kcompactd would run it (the engine has no timers).

use alloc::vec::Vec;

use lock_api::RawMutex;

use super::policy::{fragmentation_score_wmarks, CompactResult};
use super::scan::{CompactOutcome, Goal};
use crate::allocator::allocate::Attempt;
use crate::allocator::Allocator;
use crate::contig::migrate::Migrator;
use crate::error::AllocError;
use crate::units::{AllocFlags, CpuId, NodeId, Order, Pfn};

/// What one proactive compaction call did for one node.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProactiveOutcome {
    /// The node.
    pub node: NodeId,
    /// Its fragmentation score before (0..=100).
    pub score_before: u64,
    /// And after.
    pub score_after: u64,
    /// Each zone compacted, by index in [`Allocator::zones`], with what
    /// its run did (empty when the score was at or below the high mark).
    pub runs: Vec<(usize, CompactOutcome)>,
}

impl<R: RawMutex> Allocator<R> {
    /// Allocates a block of `order` through `cpu`'s lists, compacting when
    /// the first attempt fails (Linux direct compaction,
    /// `__alloc_pages_direct_compact`): for an order above 0 and flags
    /// that may wait (not [`AllocFlags::ATOMIC`], as a `gfp_t` without
    /// `__GFP_DIRECT_RECLAIM`), each zone the request may use, in zonelist
    /// order, that is neither deferred nor unsuitable is compacted toward
    /// the order through `migrator`, and the allocation is tried again
    /// after each. Counted in `compact_stall`, `compact_success`,
    /// `compact_fail`; a zone whose run fails is deferred. The first
    /// attempt is [`Allocator::alloc_confining`]'s: with confinement or
    /// small-order packing on, a confined or packed request that may wait
    /// empties a pageblock by migration before it falls back.
    pub fn alloc_compacting<M: Migrator + ?Sized>(
        &self,
        cpu: CpuId,
        order: Order,
        flags: AllocFlags,
        migrator: &mut M,
    ) -> Result<Pfn, AllocError> {
        let first = self.attempt_confining(cpu, order, flags, migrator);
        let may_compact = order > Order::ZERO && !flags.contains(AllocFlags::ATOMIC);
        match first {
            Err(AllocError::NoMemory { .. }) if may_compact => {}
            Err(AllocError::NoMemory { order }) => {
                self.count_failure(order);
                return first;
            }
            other => return other,
        }
        let slot = self.cpu_slot(cpu)?;
        let request = crate::request::Request::new(order, flags, &self.config);
        let zonelist = self.zonelist_id(Some(slot.zonelists), request.highest, flags)?;
        let zones: Vec<usize> = self.zonelist(zonelist).to_vec();
        let mut stalled = false;
        for zi in zones {
            {
                let mut guard = self.zones[zi].lock();
                let mut ops = guard.ops();
                if ops.compaction_deferred(order)
                    || ops.compaction_suitable(order, request.highest).is_err()
                {
                    continue;
                }
                if !stalled {
                    ops.f.stats.compact_stall += 1;
                    stalled = true;
                }
            }
            let run = self.compact_zone(zi, Goal::Order(order, request.mt), migrator);
            if let Ok(pfn) = self.attempt(cpu, order, flags, Attempt::Uncounted) {
                let mut guard = self.zones[zi].lock();
                let mut ops = guard.ops();
                ops.compaction_defer_reset(order, true);
                ops.f.stats.compact_success += 1;
                return Ok(pfn);
            }
            let mut guard = self.zones[zi].lock();
            let mut ops = guard.ops();
            if matches!(
                run.result,
                CompactResult::Complete | CompactResult::PartialSkipped
            ) {
                ops.defer_compaction(order);
            }
        }
        if stalled {
            if let Some(&zi) = self.zonelist(zonelist).first() {
                self.zones[zi].lock().ops().f.stats.compact_fail += 1;
            }
        }
        self.count_failure(order);
        Err(AllocError::NoMemory { order })
    }

    /// Compacts every zone until its scanners meet (Linux
    /// `/proc/sys/vm/compact_memory`), moving blocks through `migrator`.
    /// Returns each zone's run.
    pub fn compact_memory<M: Migrator + ?Sized>(&self, migrator: &mut M) -> Vec<CompactOutcome> {
        (0..self.zones.len())
            .map(|zi| self.compact_zone(zi, Goal::Full, migrator))
            .collect()
    }

    /// Compacts zone `zone` (an index in [`Allocator::zones`]) toward a
    /// free block of `order` for `flags`' migratetype, if it is suitable
    /// and not deferred (Linux `compact_zone` from `try_to_compact_pages`
    /// for one zone). `None` for a zone that does not exist.
    pub fn compact_zone_for<M: Migrator + ?Sized>(
        &self,
        zone: usize,
        order: Order,
        flags: AllocFlags,
        migrator: &mut M,
    ) -> Option<CompactOutcome> {
        let z = self.zones.get(zone)?;
        let refused = |result| CompactOutcome {
            result,
            migrate_scanned: 0,
            free_scanned: 0,
            migrated_pages: 0,
            failed_pages: 0,
        };
        {
            let mut guard = z.lock();
            let mut ops = guard.ops();
            if ops.compaction_deferred(order) {
                return Some(refused(CompactResult::Deferred));
            }
            if let Err(result) = ops.compaction_suitable(order, flags.highest_zone()) {
                return Some(refused(result));
            }
        }
        let run = self.compact_zone(zone, Goal::Order(order, flags.migratetype()), migrator);
        let mut guard = z.lock();
        let mut ops = guard.ops();
        match run.result {
            CompactResult::Success => ops.compaction_defer_reset(order, false),
            CompactResult::Complete | CompactResult::PartialSkipped => ops.defer_compaction(order),
            _ => {}
        }
        Some(run)
    }

    /// The fragmentation score of zone `zone` (Linux
    /// `fragmentation_score_zone`: the percentage of its free memory not in
    /// free blocks of at least the pageblock order), or `None`.
    pub fn zone_fragmentation_score(&self, zone: usize) -> Option<u64> {
        let z = self.zones.get(zone)?;
        let mut guard = z.lock();
        Some(guard.ops().fragmentation_score())
    }

    /// The fragmentation score of `node` (Linux `fragmentation_score_node`):
    /// its zones' scores weighted by their present pages.
    pub fn node_fragmentation_score(&self, node: NodeId) -> u64 {
        let zones: Vec<usize> = (0..self.zones.len())
            .filter(|&zi| self.zones[zi].core.node == node)
            .collect();
        let total: u64 = zones.iter().map(|&zi| self.zones[zi].core.nr_present).sum();
        zones
            .iter()
            .map(|&zi| {
                let score = self.zone_fragmentation_score(zi).unwrap_or(0);
                score * self.zones[zi].core.nr_present / (total + 1)
            })
            .sum()
    }

    /// One proactive compaction round (Linux kcompactd's
    /// `proactive_compact_node`, which it runs every 500 ms; the caller
    /// decides when): each node whose score exceeds the high mark of
    /// `proactiveness` (Linux `vm.compaction_proactiveness`, default 20:
    /// above 90) has each zone compacted until its score falls to the low
    /// mark (80) or its scanners meet. Counted in `compact_daemon_wake`.
    pub fn proactive_compact<M: Migrator + ?Sized>(
        &self,
        proactiveness: u8,
        migrator: &mut M,
    ) -> Vec<ProactiveOutcome> {
        let (low, high) = fragmentation_score_wmarks(proactiveness);
        let mut nodes: Vec<NodeId> = self.zones.iter().map(|z| z.core.node).collect();
        nodes.dedup();
        let mut out = Vec::new();
        if proactiveness == 0 {
            return out;
        }
        for node in nodes {
            let before = self.node_fragmentation_score(node);
            let mut runs = Vec::new();
            if before > high {
                let zones: Vec<usize> = (0..self.zones.len())
                    .filter(|&zi| self.zones[zi].core.node == node)
                    .collect();
                if let Some(&first) = zones.first() {
                    self.zones[first].lock().ops().f.stats.compact_daemon_wake += 1;
                }
                for zi in zones {
                    runs.push((zi, self.compact_zone(zi, Goal::Score(low), migrator)));
                }
            }
            out.push(ProactiveOutcome {
                node,
                score_before: before,
                score_after: self.node_fragmentation_score(node),
                runs,
            });
        }
        out
    }
}
