//! The buddy engine: split on allocation, merge on free.
//!
//! Follows Linux 6.10+ "freelist hygiene": a free block always sits on the
//! list of its pageblock's migratetype, so the migratetype of a free block is
//! never stored per page; it is read from the pageblock.

use crate::sync::atomic::Ordering;

use crate::engine::free_list::Placement;
use crate::engine::page::PageMeta;
use crate::engine::zone::ZoneOps;
use crate::units::{MigrateType, Order, Pfn};

/// Where a freed block goes on its list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FreePlacement {
    /// Linux's rule: the tail when the merged block's buddy one order up is
    /// free (it is likely to merge soon, so keep it for last), else the head.
    Auto,
    /// Always the tail (Linux `FPI_TO_TAIL`: boot memory, onlined memory,
    /// pages handed back after a failed report).
    Tail,
    /// A block handed back after the host took its report (seed 002): marked
    /// reported at the very tail if it merged with nothing on the way back
    /// (Linux `page_reporting_drain`), else an unreported block at the tail
    /// of the unreported part. It requests no new report.
    Reported,
}

/// Whether free blocks of pageblocks of types `a` and `b` merge into one
/// block spanning both (Linux `__free_one_page` above the pageblock
/// order): ordinary types with each other, a special type with itself,
/// but isolated pageblocks never, so every isolated free block lies inside
/// one pageblock and undoing an isolation gives each pageblock back whole.
pub(crate) fn merge_across_pageblocks(a: MigrateType, b: MigrateType) -> bool {
    if a == MigrateType::Isolate || b == MigrateType::Isolate {
        return false;
    }
    a == b || (a.is_mergeable() && b.is_mergeable())
}

impl ZoneOps<'_> {
    /// Whether every pageblock of the block `pfn`/`order` has the type of
    /// the first.
    fn uniform_pageblocks(&self, pfn: Pfn, order: Order) -> bool {
        let step = self.z.geo.pageblock_nr_pages();
        let first = self.z.block_mt(pfn);
        (1..order.nr_pages().0 / step).all(|k| self.z.block_mt(Pfn(pfn.0 + k * step)) == first)
    }

    /// Frees the present range `start..end` into the buddy lists as the
    /// largest aligned blocks that fit, at the tail, in address order (Linux
    /// `memblock_free_all` → `__free_pages_core` with `FPI_TO_TAIL`). The
    /// blocks are maximal, so no merging is needed.
    pub(crate) fn populate(&mut self, start: Pfn, end: Pfn) {
        let mut pfn = start;
        while pfn < end {
            let mut order = self.z.geo.max_order.get().min(pfn.0.trailing_zeros() as u8);
            while pfn.0 + (1 << order) > end.0 {
                order -= 1;
            }
            let mut order = Order::new(order).unwrap_or(Order::ZERO);
            // A block larger than a pageblock must not span pageblocks of
            // types that may not merge (a CMA area aligned to a pageblock
            // but not to the largest block): halve it until it does not.
            while order > self.z.geo.pageblock && !self.uniform_pageblocks(pfn, order) {
                order = order.lower().unwrap_or(Order::ZERO);
            }
            let mt = self.z.block_mt(pfn);
            // Onlined memory may bring back a confined pageblock, wholly free.
            let mt = self.confine_release(pfn, order, mt);
            self.add_free(self.z.idx(pfn), order, mt, Placement::Tail);
            pfn.0 += order.nr_pages().0;
        }
    }

    /// Puts the upper halves of a block being split from `high` down to
    /// `low` on the lists of `mt` (Linux `expand`). The halves stay free, so
    /// the counters do not change.
    #[inline]
    pub(crate) fn expand(&mut self, idx: u32, low: Order, high: Order, mt: MigrateType) {
        let mut order = high;
        while order > low {
            order = match order.lower() {
                Some(o) => o,
                None => break,
            };
            let half = idx + order.nr_pages().0 as u32;
            self.link_free(half, order, mt, Placement::Head);
        }
    }

    /// Takes the first block of the smallest order `>= order` from the list
    /// of `mt` and splits it down to `order` (Linux `__rmqueue_smallest`).
    /// Returns the zone-relative index of the block's head.
    ///
    /// With memory regions (seed 000) the lowest region comes first
    /// ([`ZoneOps::rmqueue_by_region`]).
    #[inline]
    pub(crate) fn rmqueue_smallest(&mut self, order: Order, mt: MigrateType) -> Option<u32> {
        if self.f.regions.is_some() {
            return self.rmqueue_by_region(order, mt);
        }
        self.rmqueue_own(order, mt)
    }

    /// [`ZoneOps::rmqueue_smallest`] as Linux does it: the smallest order,
    /// that list's first block.
    #[inline]
    pub(crate) fn rmqueue_own(&mut self, order: Order, mt: MigrateType) -> Option<u32> {
        let mask = self.f.nonempty[mt.idx()] >> order.get();
        if mask == 0 {
            return None;
        }
        let found = Order::new(order.get() + mask.trailing_zeros() as u8)?;
        let idx = self.first_free(found, mt)?;
        self.take_and_expand(idx, order, found, mt, mt);
        Some(idx)
    }

    /// Marks the block at `idx` allocated as `mt`.
    #[inline]
    pub(crate) fn mark_allocated(&mut self, idx: u32, order: Order, mt: MigrateType) {
        self.z.pages.set(idx, PageMeta::allocated(order, mt));
    }

    /// Frees an allocated (or otherwise taken) block back to the buddy
    /// lists. A block larger than a pageblock is freed pageblock by
    /// pageblock, each with its own migratetype (Linux `split_large_buddy`).
    pub(crate) fn free_block(&mut self, pfn: Pfn, order: Order, placement: FreePlacement) {
        let pb = self.z.geo.pageblock;
        if order <= pb {
            let mt = self.z.block_mt(pfn);
            self.free_one(pfn, order, mt, placement);
            return;
        }
        let step = pb.nr_pages().0;
        for k in 0..(order.nr_pages().0 / step) {
            let p = Pfn(pfn.0 + k * step);
            let mt = self.z.block_mt(p);
            self.free_one(p, pb, mt, placement);
        }
    }

    /// Merges the free block `pfn`/`order` with its free buddies as far as
    /// they go and puts the result on the list of `mt` (Linux
    /// `__free_one_page`). The caller has already cleared the head's state.
    pub(crate) fn free_one(
        &mut self,
        mut pfn: Pfn,
        mut order: Order,
        mut mt: MigrateType,
        placement: FreePlacement,
    ) {
        let max = self.z.geo.max_order;
        let pb = self.z.geo.pageblock;
        let (start, start_order) = (pfn, order);
        // Only the freed pages join the lists; merged buddies move between
        // lists of types that share the counters (ordinary ones), so the
        // accounting is done once, as Linux does.
        self.account_free(self.z.idx(pfn), order, mt, true);
        // A confined pageblock that is wholly free leaves the area, before
        // it merges across pageblocks (so only it is counted).
        mt = self.confine_release(pfn, order, mt);
        let len = self.z.pages.len() as u64;
        while order < max {
            let buddy = pfn.buddy(order);
            // In the zone exactly when the index is in bounds.
            let buddy_idx = buddy.0.wrapping_sub(self.z.start.0);
            if buddy_idx >= len || !self.z.pages.get(buddy_idx as u32).is_free_of_order(order) {
                break;
            }
            let mut buddy_mt = mt;
            if order >= pb {
                // Across pageblocks only ordinary types merge with each
                // other; isolated, CMA and high-atomic blocks keep apart.
                buddy_mt = self.z.block_mt(buddy);
                if !merge_across_pageblocks(mt, buddy_mt) {
                    break;
                }
            }
            self.unlink_free(buddy_idx as u32, order, buddy_mt);
            if buddy_mt != mt {
                // Match the buddy's pageblocks to ours so the merged block's
                // pieces land on the right lists when it is split again.
                self.set_range_migratetype(buddy, order, mt);
            }
            pfn = Pfn(pfn.0 & buddy.0);
            order = order.higher();
            if order == pb {
                mt = self.confine_release(pfn, order, mt);
            }
        }
        let idx = self.z.idx(pfn);
        let to_tail = match placement {
            FreePlacement::Reported if (pfn, order) == (start, start_order) => {
                self.link_reported(idx, order, mt);
                self.region_after_free(idx);
                return;
            }
            FreePlacement::Reported => {
                self.link_free(idx, order, mt, Placement::Tail);
                self.region_after_free(idx);
                return;
            }
            FreePlacement::Tail => true,
            FreePlacement::Auto => self.buddy_merge_likely(pfn, order),
        };
        let placement = if to_tail {
            Placement::Tail
        } else {
            Placement::Head
        };
        self.link_free(idx, order, mt, placement);
        // Linux `page_reporting_notify_free`: a block large enough to be
        // reported asks for a pass.
        if self.z.report_order.is_some_and(|t| order >= t) {
            self.z.report_requested.store(true, Ordering::Relaxed);
        }
        // Seed 000: a region whose last page came back leaves the lists.
        self.region_after_free(idx);
    }

    /// Whether the block one order up from `pfn`/`order` has a free buddy,
    /// so this block will likely merge soon (Linux `buddy_merge_likely`).
    fn buddy_merge_likely(&self, pfn: Pfn, order: Order) -> bool {
        if order.get() + 1 >= self.z.geo.max_order.get() {
            return false;
        }
        let higher = Pfn(pfn.0 & pfn.buddy(order).0);
        let higher_order = order.higher();
        let higher_buddy = higher.buddy(higher_order);
        self.z.spans(higher_buddy) && self.z.meta(higher_buddy).is_free_of_order(higher_order)
    }
}
