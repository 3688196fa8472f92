//! Pageblock isolation (Linux `mm/page_isolation.c`): the first step of
//! every contiguous allocation, CMA allocation and offline.
//!
//! An isolated pageblock carries the isolate mark beside its migratetype
//! (the type is kept, so undoing restores it); its free blocks sit on the
//! `Isolate` lists, which no allocation takes from and no free counter
//! counts; pages freed into it bypass the per-CPU lists and join those
//! lists too (the pageblock type the free path reads is `Isolate`). An
//! isolated free block never merges across its pageblock, so each
//! pageblock is given back whole when the mark is cleared.
//!
//! [`Isolation`] is the guard: building one checks and isolates a range
//! under the zone lock (all or nothing) and drains every CPU's lists;
//! dropping it undoes the isolation, on every exit path.

use alloc::vec::Vec;

use lock_api::RawMutex;

use crate::allocator::Allocator;
use crate::engine::buddy::FreePlacement;
use crate::engine::free_list::Placement;
use crate::engine::page::PageState;
use crate::engine::zone::{Zone, ZoneOps};
use crate::error::ContigError;
use crate::units::{MigrateType, Order, Pfn};

/// Who isolates: what decides which pageblocks may be isolated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Caller {
    /// `alloc_contig_range` / `alloc_contig_pages`: CMA pageblocks refuse.
    Contig,
    /// `cma_alloc`: CMA pageblocks are what it takes.
    Cma,
    /// Memory offline: CMA pageblocks refuse, as they do for contiguous
    /// allocations.
    Offline,
}

/// The pageblocks overlapping `start..end`, clipped to `lo..hi`, as the
/// first frame of each.
pub(crate) fn pageblocks(start: Pfn, end: Pfn, pageblock: Order) -> impl Iterator<Item = Pfn> {
    let step = pageblock.nr_pages().0;
    let first = start.align_down(pageblock).0;
    (first..end.0)
        .step_by(step as usize)
        .map(move |p| Pfn(p.max(start.0)))
}

impl ZoneOps<'_> {
    /// Why the pageblocks of `start..end` may not be isolated for `caller`,
    /// if they may not (Linux `has_unmovable_pages` plus the check for an
    /// isolation already in place). Changes nothing.
    pub(crate) fn check_isolatable(
        &self,
        start: Pfn,
        end: Pfn,
        caller: Caller,
    ) -> Result<(), ContigError> {
        let pb = self.z.geo.pageblock;
        for block in pageblocks(start, end, pb) {
            if self.z.blocks.is_isolated(block) {
                return Err(ContigError::Isolated {
                    pfn: block.align_down(pb).max(self.z.start),
                });
            }
            if self.z.blocks.base(block) == MigrateType::Cma && caller != Caller::Cma {
                return Err(ContigError::Unmovable { pfn: block });
            }
        }
        self.z
            .try_for_each_head_overlapping(start, end, |pfn, meta| match meta.state() {
                PageState::AllocHead
                    if meta.is_contig() || meta.alloc_migratetype() != MigrateType::Movable =>
                {
                    Err(ContigError::Unmovable { pfn })
                }
                PageState::OfflineHead if caller == Caller::Offline => {
                    Err(ContigError::NotOffline {
                        pfn: pfn.max(start),
                    })
                }
                PageState::OfflineHead => Err(ContigError::Unmovable { pfn }),
                _ => Ok(()),
            })
    }

    /// Isolates the pageblocks of `start..end` (pageblock-aligned or at the
    /// zone's edges), which [`ZoneOps::check_isolatable`] accepted: free
    /// blocks larger than a pageblock are split into pageblocks first, then
    /// every free block moves to the `Isolate` lists and the mark is set.
    pub(crate) fn isolate(&mut self, start: Pfn, end: Pfn) {
        // Held regions (seed 000) come back first, so their free blocks
        // are on the lists to be isolated.
        self.draw_regions_in(start, end);
        let pb = self.z.geo.pageblock;
        for block in pageblocks(start, end, pb) {
            self.split_free_above_pageblock(block);
            let from = self.z.block_mt(block);
            let block_end = Pfn((block.align_down(pb).0 + pb.nr_pages().0).min(self.z.end.0));
            for (pfn, order) in self.free_heads(block, block_end) {
                self.move_free(self.z.idx(pfn), order, from, MigrateType::Isolate);
            }
            self.z.blocks.set_isolated(block, true);
            self.f.nr_isolated_pageblocks += 1;
        }
    }

    /// Undoes [`ZoneOps::isolate`] of `start..end`: each pageblock's free
    /// blocks leave the `Isolate` lists, the mark is cleared, and the blocks
    /// are freed again under the pageblock's own type, merging as far as
    /// they go (Linux `unset_migratetype_isolate`). A block that was
    /// reported stays reported if it merges with nothing.
    pub(crate) fn unisolate(&mut self, start: Pfn, end: Pfn) {
        let pb = self.z.geo.pageblock;
        for block in pageblocks(start, end, pb) {
            if !self.z.blocks.is_isolated(block) {
                continue;
            }
            let block_end = Pfn((block.align_down(pb).0 + pb.nr_pages().0).min(self.z.end.0));
            let heads = self.free_heads(block, block_end);
            // Every block leaves the list before any is freed, so a merge
            // never meets a buddy still on the `Isolate` list.
            let reported: Vec<bool> = heads
                .iter()
                .map(|&(pfn, order)| self.del_free(self.z.idx(pfn), order, MigrateType::Isolate))
                .collect();
            self.z.blocks.set_isolated(block, false);
            self.f.nr_isolated_pageblocks -= 1;
            let mt = self.z.block_mt(block);
            for (&(pfn, order), reported) in heads.iter().zip(reported) {
                let placement = if reported {
                    FreePlacement::Reported
                } else {
                    FreePlacement::Tail
                };
                self.free_one(pfn, order, mt, placement);
            }
        }
    }

    /// The free blocks whose heads lie in `start..end`.
    fn free_heads(&self, start: Pfn, end: Pfn) -> Vec<(Pfn, Order)> {
        let mut heads = Vec::new();
        self.z.for_each_head(start, end, |pfn, meta| {
            if meta.state() == PageState::FreeHead {
                heads.push((pfn, meta.order()));
            }
        });
        heads
    }

    /// Splits the free block holding `pfn`, if it is larger than a
    /// pageblock, until the block holding `pfn` is one pageblock: each
    /// split leaves the half without `pfn` whole on the same list (keeping
    /// the reported mark if the half is still of a reported order), so no
    /// free buddies are left unmerged. The free counters do not change.
    fn split_free_above_pageblock(&mut self, pfn: Pfn) {
        let pb = self.z.geo.pageblock;
        let Some((mut head, meta)) = self.z.containing_head(pfn) else {
            return;
        };
        if meta.state() != PageState::FreeHead {
            return;
        }
        let mut order = meta.order();
        let mt = self.z.block_mt(head);
        while order > pb {
            let reported = self.unlink_free(self.z.idx(head), order, mt);
            order = order.lower().unwrap_or(Order::ZERO);
            // A half stays reported only at or above the reporting order
            // (invariant 6); a smaller one is simply free again.
            let reported = reported && self.z.report_order.is_some_and(|t| order >= t);
            let upper = Pfn(head.0 + order.nr_pages().0);
            for half in [head, upper] {
                if reported {
                    self.link_reported(self.z.idx(half), order, mt);
                } else {
                    self.link_free(self.z.idx(half), order, mt, Placement::Tail);
                }
            }
            if pfn >= upper {
                head = upper;
            }
        }
    }

    /// Frees `start..end` (present, inside the zone, every record a tail)
    /// into the buddy lists as the largest aligned blocks that fit, each
    /// under its pageblock's type, merging with free neighbours.
    pub(crate) fn free_range(&mut self, start: Pfn, end: Pfn, placement: FreePlacement) {
        let mut pfn = start;
        while pfn < end {
            let order = largest_block(pfn, end, self.z.geo.max_order);
            self.free_block(pfn, order, placement);
            pfn.0 += order.nr_pages().0;
        }
    }
}

/// The order of the largest block starting at `pfn` that is aligned to its
/// size, fits below `end` and is at most `max`.
pub(crate) fn largest_block(pfn: Pfn, end: Pfn, max: Order) -> Order {
    let mut order = max.get().min(pfn.0.trailing_zeros().min(63) as u8);
    while pfn.0 + (1u64 << order) > end.0 {
        order -= 1;
    }
    Order::new(order).unwrap_or(Order::ZERO)
}

/// An isolated range of one zone; dropping it undoes the isolation.
pub(crate) struct Isolation<'a, R: RawMutex> {
    zone: &'a Zone<R>,
    start: Pfn,
    end: Pfn,
}

impl<'a, R: RawMutex> Isolation<'a, R> {
    /// Isolates the pageblocks overlapping `start..end` of zone `zi` for
    /// `caller`, or says why not with nothing changed; then drains every
    /// CPU's lists, so pages cached there come back to the (isolated) buddy
    /// lists (Linux `start_isolate_page_range` + `drain_all_pages`).
    pub(crate) fn new(
        alloc: &'a Allocator<R>,
        zi: usize,
        start: Pfn,
        end: Pfn,
        caller: Caller,
    ) -> Result<Isolation<'a, R>, ContigError> {
        let zone = &alloc.zones[zi];
        let pb = zone.core.geo.pageblock;
        let iso_start = start.align_down(pb).max(zone.core.start);
        let iso_end = end.align_up(pb).unwrap_or(end).min(zone.core.end);
        {
            let mut guard = zone.lock();
            let mut ops = guard.ops();
            ops.check_isolatable(iso_start, iso_end, caller)?;
            ops.isolate(iso_start, iso_end);
        }
        let isolation = Isolation {
            zone,
            start: iso_start,
            end: iso_end,
        };
        alloc.drain_all();
        Ok(isolation)
    }
}

impl<R: RawMutex> Drop for Isolation<'_, R> {
    fn drop(&mut self) {
        self.zone.lock().ops().unisolate(self.start, self.end);
    }
}
