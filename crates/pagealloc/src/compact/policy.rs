//! When compaction runs: `compaction_suitable`, deferral after failures,
//! when a run is finished, and the fragmentation score of proactive
//! compaction.

use crate::engine::zone::ZoneOps;
use crate::observe::report::ContigInfo;
use crate::units::{MigrateType, Order, ZoneType};

/// Linux `PAGE_ALLOC_COSTLY_ORDER`: above it, compaction looks at the
/// fragmentation index before it runs.
pub const PAGE_ALLOC_COSTLY_ORDER: u8 = 3;

/// The most a failing zone's compaction is deferred: `1 << 6` attempts
/// (Linux `COMPACT_MAX_DEFER_SHIFT`).
pub const COMPACT_MAX_DEFER_SHIFT: u8 = 6;

/// Linux `sysctl_extfrag_threshold`: above the costly order, a zone whose
/// fragmentation index for the order is at most this (in thousandths) fails
/// for lack of memory, and compaction would not help.
pub const EXTFRAG_THRESHOLD: i32 = 500;

/// The default `vm.compaction_proactiveness`.
pub const DEFAULT_PROACTIVENESS: u8 = 20;

/// What a compaction run came to (Linux `enum compact_result`, the states
/// a caller sees).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CompactResult {
    /// The zone fails for lack of memory, not fragmentation (its
    /// fragmentation index for the order is at most the threshold).
    NotSuitableZone,
    /// Too little free memory to compact: below the watermark plus twice
    /// the request.
    Skipped,
    /// Recent failures defer compaction of this zone for this order.
    Deferred,
    /// The scanners met; a free block of the order appeared meanwhile
    /// elsewhere is not counted (Linux `COMPACT_NO_SUITABLE_PAGE` from
    /// `__compact_finished` when nothing suitable exists for the type).
    NoSuitablePage,
    /// The run stopped early (a migration ran out of destinations).
    PartialSkipped,
    /// The scanners met without the wanted block.
    Complete,
    /// A free block of the wanted order exists (or, proactively, the
    /// zone's score fell to the low mark).
    Success,
}

impl ZoneOps<'_> {
    /// Linux `compaction_suitable`: enough free memory above the min (or,
    /// above the costly order, low) watermark plus `2 << order` to migrate
    /// into, and, above the costly order, a fragmentation index above the
    /// threshold (the failure is fragmentation, not lack of memory).
    /// The lowmem reserve this zone keeps from requests whose highest zone
    /// is `highest` counts as used, as in Linux: compacting a zone the
    /// request may not dip into cannot serve it.
    pub(crate) fn compaction_suitable(
        &self,
        order: Order,
        highest: ZoneType,
    ) -> Result<(), CompactResult> {
        let w = self.z.watermarks;
        let mark = if order.get() > PAGE_ALLOC_COSTLY_ORDER {
            w.low
        } else {
            w.min
        };
        let gap = (2u64 << order.get()) + self.z.lowmem_reserve[highest.idx()];
        if self.f.nr_free_pages < mark + gap {
            return Err(CompactResult::Skipped);
        }
        if order.get() > PAGE_ALLOC_COSTLY_ORDER {
            let index = ContigInfo::new(&self.free_block_counts(), order).extfrag_index(order);
            if (0..=EXTFRAG_THRESHOLD).contains(&index) {
                return Err(CompactResult::NotSuitableZone);
            }
        }
        Ok(())
    }

    /// Free blocks per order, all lists.
    pub(crate) fn free_block_counts(&self) -> alloc::vec::Vec<u64> {
        self.z
            .geo
            .orders()
            .map(|o| self.f.areas[o.idx()].nr_free)
            .collect()
    }

    /// Linux `compaction_deferred`: whether to skip compacting this zone
    /// for `order` this time (counting the attempt).
    pub(crate) fn compaction_deferred(&mut self, order: Order) -> bool {
        let f = &mut *self.f;
        if order.get() < f.compact_order_failed {
            return false;
        }
        let limit = 1u32 << f.compact_defer_shift;
        f.compact_considered += 1;
        if f.compact_considered >= limit {
            f.compact_considered = limit;
            return false;
        }
        true
    }

    /// Linux `defer_compaction`: a run for `order` failed.
    pub(crate) fn defer_compaction(&mut self, order: Order) {
        let f = &mut *self.f;
        f.compact_considered = 0;
        f.compact_defer_shift = (f.compact_defer_shift + 1).min(COMPACT_MAX_DEFER_SHIFT);
        if order.get() < f.compact_order_failed {
            f.compact_order_failed = order.get();
        }
    }

    /// Linux `compaction_defer_reset`: a run for `order` succeeded (and the
    /// allocation after it too, with `alloc_success`).
    pub(crate) fn compaction_defer_reset(&mut self, order: Order, alloc_success: bool) {
        let f = &mut *self.f;
        if alloc_success {
            f.compact_considered = 0;
            f.compact_defer_shift = 0;
        }
        if order.get() >= f.compact_order_failed {
            f.compact_order_failed = order.get() + 1;
        }
    }

    /// Whether a run toward `order` for `mt` may stop: a free block of at
    /// least `order` on the type's lists, on CMA's for a movable request,
    /// or on another ordinary type's at a size the request would claim
    /// (Linux `__compact_finished`).
    pub(crate) fn compaction_finished(&self, order: Order, mt: MigrateType, cma: bool) -> bool {
        let from = |t: MigrateType, o: Order| self.f.nonempty[t.idx()] >> o.get() != 0;
        if from(mt, order) || (cma && mt == MigrateType::Movable && from(MigrateType::Cma, order)) {
            return true;
        }
        let claim = order.max(self.z.geo.pageblock);
        crate::engine::fallback::fallbacks_of(mt).any(|t| from(t, claim))
    }

    /// The zone's fragmentation score for proactive compaction (Linux
    /// `fragmentation_score_zone`): the share of free memory, in percent,
    /// not in free blocks of at least the pageblock order (the huge-page
    /// order).
    pub(crate) fn fragmentation_score(&self) -> u64 {
        let order = self.z.geo.pageblock;
        let info = ContigInfo::new(&self.free_block_counts(), order);
        if info.free_pages == 0 {
            return 0;
        }
        let usable = info.free_blocks_suitable << order.get();
        (info.free_pages - usable) * 100 / info.free_pages
    }
}

/// Linux `fragmentation_score_wmark`: proactive compaction starts above
/// the high mark and stops at the low one (90 and 80 at the default
/// proactiveness of 20).
pub fn fragmentation_score_wmarks(proactiveness: u8) -> (u64, u64) {
    let low = 100u64
        .saturating_sub(u64::from(proactiveness.min(100)))
        .max(5);
    (low, (low + 10).min(100))
}
