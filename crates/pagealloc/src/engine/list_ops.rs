//! The primitives every buddy operation is made of, on a zone with its lock
//! held: a free block joins or leaves a list, with the free counters and
//! the pageblocks' free counts kept in step; pageblocks are retyped.

use crate::engine::free_list::Placement;
use crate::engine::page::{PageMeta, PageState, NIL};
use crate::engine::zone::ZoneOps;
use crate::units::{MigrateType, Order, Pfn, NR_MIGRATE_TYPES};

/// The number of the free list of `order` and `mt` in a zone's
/// per-region entry points (seed 000).
#[inline(always)]
pub(crate) fn list_number(order: Order, mt: MigrateType) -> usize {
    order.idx() * NR_MIGRATE_TYPES + mt.idx()
}

impl ZoneOps<'_> {
    /// Adjusts the free-page counters for the block `idx`/`order` joining or
    /// leaving the lists of `mt` (Linux `account_freepages`). Splitting and
    /// merging move pages between lists without changing the counts, so
    /// they account only the pages that really join or leave.
    #[inline]
    pub(crate) fn account_free(&mut self, idx: u32, order: Order, mt: MigrateType, joining: bool) {
        let nr = order.nr_pages().0;
        let pb = self.z.geo.pageblock;
        if order <= pb {
            self.z.blocks.account(self.z.pfn(idx), nr as u32, joining);
        } else {
            let step = pb.nr_pages().0;
            for k in 0..nr / step {
                self.z
                    .blocks
                    .account(Pfn(self.z.pfn(idx).0 + k * step), step as u32, joining);
            }
        }
        if let (Some(rg), Some(map)) = (self.f.regions.as_deref_mut(), &self.z.regions) {
            let free = &mut rg.free[map.of_idx(idx)];
            if joining {
                *free += nr
            } else {
                *free -= nr
            }
        }
        let apply = |v: &mut u64| {
            if joining {
                *v += nr
            } else {
                *v -= nr
            }
        };
        if mt == MigrateType::Isolate {
            return;
        }
        apply(&mut self.f.nr_free_pages);
        match mt {
            MigrateType::Cma => apply(&mut self.f.nr_free_cma),
            MigrateType::HighAtomic => apply(&mut self.f.nr_free_highatomic),
            _ => {}
        }
    }

    /// Links the free block at `idx` of `order` onto the list of `mt`
    /// without touching the free counters.
    #[inline]
    pub(crate) fn link_free(
        &mut self,
        idx: u32,
        order: Order,
        mt: MigrateType,
        placement: Placement,
    ) {
        let area = &mut self.f.areas[order.idx()];
        let head = PageMeta::head(PageState::FreeHead, order);
        let list = &mut area.lists[mt.idx()];
        if let (Some(rg), Some(map)) = (self.f.regions.as_deref_mut(), &self.z.regions) {
            // Sorted by region (seed 000): "tail" is the tail of the
            // region's segment, reported or not.
            let l = list_number(order, mt);
            rg.sorted
                .link(&self.z.pages, map, list, l, (idx, head), placement);
        } else if placement == Placement::Head {
            list.insert(&self.z.pages, idx, head, Placement::Head);
        } else {
            // The tail of the unreported part: just before the reported run.
            match area.first_reported[mt.idx()] {
                NIL => list.insert(&self.z.pages, idx, head, Placement::Tail),
                run => list.insert_before(&self.z.pages, idx, head, run),
            }
        }
        area.nr_free += 1;
        self.f.nonempty[mt.idx()] |= 1 << order.get();
    }

    /// Links the free block at `idx` of `order` at the very tail of the list
    /// of `mt`, marked reported (seed 002), without touching the free
    /// counters but the reported one.
    pub(crate) fn link_reported(&mut self, idx: u32, order: Order, mt: MigrateType) {
        let area = &mut self.f.areas[order.idx()];
        let mut head = PageMeta::head(PageState::FreeHead, order);
        head.set_flag(true);
        let list = &mut area.lists[mt.idx()];
        if let (Some(rg), Some(map)) = (self.f.regions.as_deref_mut(), &self.z.regions) {
            // With regions the reported blocks end each region's segment,
            // not the list: no list-wide run is kept (docs/regions.md).
            let l = list_number(order, mt);
            rg.sorted
                .link(&self.z.pages, map, list, l, (idx, head), Placement::Tail);
        } else {
            list.insert(&self.z.pages, idx, head, Placement::Tail);
        }
        if self.f.regions.is_none() && area.first_reported[mt.idx()] == NIL {
            area.first_reported[mt.idx()] = idx;
        }
        area.nr_free += 1;
        self.f.nonempty[mt.idx()] |= 1 << order.get();
        self.f.nr_reported_pages += order.nr_pages().0;
    }

    /// Unlinks the free block at `idx` of `order` from the list of `mt`
    /// without touching the free counters (but the reported one); its head
    /// becomes a plain tail, its reported mark gone whatever the reason it
    /// left. Returns whether it was reported.
    #[inline]
    pub(crate) fn unlink_free(&mut self, idx: u32, order: Order, mt: MigrateType) -> bool {
        let area = &mut self.f.areas[order.idx()];
        let list = &mut area.lists[mt.idx()];
        let meta = self.z.pages.get(idx);
        let reported = meta.flag();
        if reported {
            if area.first_reported[mt.idx()] == idx {
                // The run is the list's tail: what follows is reported too.
                area.first_reported[mt.idx()] = self.z.pages.next(idx);
            }
            self.f.nr_reported_pages -= order.nr_pages().0;
        }
        if let (Some(rg), Some(map)) = (self.f.regions.as_deref_mut(), &self.z.regions) {
            rg.sorted
                .unlink(map, list_number(order, mt), idx, self.z.pages.next(idx));
        }
        list.remove(&self.z.pages, idx);
        if list.is_empty() {
            self.f.nonempty[mt.idx()] &= !(1 << order.get());
        }
        area.nr_free -= 1;
        self.z.pages.set(idx, PageMeta::TAIL);
        reported
    }

    /// Puts the free block at `idx` of `order` on the list of `mt`.
    #[inline]
    pub(crate) fn add_free(
        &mut self,
        idx: u32,
        order: Order,
        mt: MigrateType,
        placement: Placement,
    ) {
        self.link_free(idx, order, mt, placement);
        self.account_free(idx, order, mt, true);
    }

    /// Takes the free block at `idx` of `order` off the list of `mt`; its
    /// head becomes a plain tail for the caller to re-label. Returns whether
    /// it was reported.
    #[inline]
    pub(crate) fn del_free(&mut self, idx: u32, order: Order, mt: MigrateType) -> bool {
        let reported = self.unlink_free(idx, order, mt);
        self.account_free(idx, order, mt, false);
        reported
    }

    /// Counts a reported block of `order` taken for an allocation: the host
    /// faults its pages back in (the cost of reporting).
    #[inline]
    pub(crate) fn count_reported_reuse(&mut self, reported: bool, order: Order) {
        if reported {
            self.f.stats.reported_reallocated += order.nr_pages().0;
        }
    }

    /// Takes the free block `idx`/`high` off the list of `from` and leaves its
    /// first `2^low` pages to the caller, the split-off halves on the lists of
    /// `to` (Linux `page_del_and_expand`; `to` differs from `from` when a
    /// pageblock is claimed, and the caller has retyped it).
    #[inline]
    pub(crate) fn take_and_expand(
        &mut self,
        idx: u32,
        low: Order,
        high: Order,
        from: MigrateType,
        to: MigrateType,
    ) {
        let reported = self.unlink_free(idx, high, from);
        self.count_reported_reuse(reported, high);
        self.expand(idx, low, high, to);
        self.account_free(idx, low, to, false);
    }

    /// Moves a free block from the list of `from` to the tail of the list of
    /// `to`, keeping its reported flag (Linux `move_to_free_list`).
    pub(crate) fn move_free(&mut self, idx: u32, order: Order, from: MigrateType, to: MigrateType) {
        if self.del_free(idx, order, from) {
            self.link_reported(idx, order, to);
        } else {
            self.link_free(idx, order, to, Placement::Tail);
        }
        self.account_free(idx, order, to, true);
    }

    /// The first free block on the list of `order` and `mt`.
    #[inline]
    pub(crate) fn first_free(&self, order: Order, mt: MigrateType) -> Option<u32> {
        self.f.areas[order.idx()].lists[mt.idx()].first()
    }

    /// Sets every pageblock of the block `pfn`/`order` (at least the one
    /// holding it) to `mt` (Linux `change_pageblock_range`).
    pub(crate) fn set_range_migratetype(&mut self, pfn: Pfn, order: Order, mt: MigrateType) {
        let pb = self.z.geo.pageblock_nr_pages();
        let n = (order.nr_pages().0 / pb).max(1);
        for k in 0..n {
            self.z.blocks.set(Pfn(pfn.0 + k * pb), mt);
        }
    }

    /// Counts free and movable pages in a pageblock (Linux
    /// `prep_move_freepages_block`), for the claim heuristic.
    pub(crate) fn pageblock_usage(&self, start: Pfn, end: Pfn) -> (u64, u64) {
        let (mut free, mut movable) = (0, 0);
        self.z.for_each_head(start, end, |_, meta| {
            let nr = meta.order().nr_pages().0;
            match meta.state() {
                PageState::FreeHead => free += nr,
                PageState::AllocHead if meta.alloc_migratetype() == MigrateType::Movable => {
                    movable += nr
                }
                _ => {}
            }
        });
        (free, movable)
    }

    /// Moves every free block of the pageblock `start..end` from the lists
    /// of `from` to those of `to` and retypes the pageblock (Linux
    /// `__move_freepages_block` + `set_pageblock_migratetype`). Returns the
    /// pages moved.
    pub(crate) fn move_pageblock(
        &mut self,
        start: Pfn,
        end: Pfn,
        from: MigrateType,
        to: MigrateType,
    ) -> u64 {
        let mut moved = 0;
        let mut pfn = start;
        while pfn < end {
            let meta = self.z.meta(pfn);
            match meta.state() {
                PageState::Tail => pfn.0 += 1,
                PageState::FreeHead => {
                    let order = meta.order();
                    self.move_free(self.z.idx(pfn), order, from, to);
                    moved += order.nr_pages().0;
                    pfn.0 += order.nr_pages().0;
                }
                _ => pfn.0 += meta.order().nr_pages().0,
            }
        }
        self.z.blocks.set(start, to);
        moved
    }
}
