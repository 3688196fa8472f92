//! The region allocator behind the buddy lists (seed 000: "the page
//! allocator is free cash, the region allocator the bank"). A region whose
//! every present page is free, in free blocks of ordinary pageblocks, leaves
//! the lists: its blocks become held heads (`PageState::HeldHead`) on no
//! list. When a request finds nothing on its own lists, the lowest held
//! region comes back, retyped to the request's migratetype, so each
//! drawn region serves one type and movable and unmovable allocations keep
//! to different regions while the region allocator has any.
//!
//! Held pages stay free and managed: `nr_free_pages`, the watermarks,
//! lowmem reserves and per-CPU sizing see no change when a region comes or
//! goes (docs/regions.md says why).

use crate::sync::atomic::Ordering;

use crate::engine::fallback::fallbacks_of;
use crate::engine::free_list::Placement;
use crate::engine::page::{PageMeta, PageState};
use crate::engine::zone::{ZoneCore, ZoneOps};
use crate::policy::RegionMixing;
use crate::region::power::RegionId;
use crate::units::{MigrateType, Order, Pfn};

/// Whether a request of `mt` may take a wholly free pageblock of `other`
/// from a lower region (see [`ZoneOps::claim_lower_free_pageblock`]).
fn claimable(mixing: RegionMixing, mt: MigrateType, other: MigrateType) -> bool {
    other.is_mergeable()
        && (mixing == RegionMixing::Packed
            || mt == MigrateType::Movable
            || other != MigrateType::Movable)
}

impl ZoneCore {
    /// The name of region `r` for hooks and reports.
    pub(crate) fn region_id(&self, r: usize) -> RegionId {
        let start = self.regions.as_ref().map_or(self.start, |m| m.span(r).0);
        RegionId {
            node: self.node,
            zone: self.zone_type,
            index: r as u32,
            start,
        }
    }

    /// The caller's clock.
    pub(crate) fn region_time(&self) -> u64 {
        self.region_now.load(Ordering::Relaxed)
    }
}

impl ZoneOps<'_> {
    /// `__rmqueue_smallest` with regions: the lowest region first, then
    /// the smallest order in it (one look at each non-empty list's first
    /// entry, whose region is that list's lowest); and a wholly free
    /// pageblock of another type in a lower region than the type's own
    /// blocks (or anywhere, when it has none) before them
    /// ([`ZoneOps::claim_lower_free_pageblock`]).
    #[inline(never)]
    pub(crate) fn rmqueue_by_region(&mut self, order: Order, mt: MigrateType) -> Option<u32> {
        let z = self.z;
        let map = z.regions.as_ref()?;
        let mut bits = self.f.nonempty[mt.idx()] & (!0u16 << order.get());
        let mut best: Option<(usize, Order, u32)> = None;
        while bits != 0 {
            let o = bits.trailing_zeros() as u8;
            bits &= bits - 1;
            let Some(o) = Order::new(o) else { break };
            if let Some(first) = self.first_free(o, mt) {
                let r = map.of_idx(first);
                if best.is_none_or(|b| r < b.0) {
                    best = Some((r, o, first));
                }
            }
        }
        let below = best.map_or(usize::MAX, |b| b.0);
        if let Some(idx) = self.claim_lower_free_pageblock(order, mt, below) {
            return Some(idx);
        }
        let (_, found, idx) = best?;
        self.take_and_expand(idx, order, found, mt, mt);
        Some(idx)
    }

    /// A free block of at least a pageblock (so its pageblocks are
    /// entirely free) of another ordinary type, in a region below `below`:
    /// taken for `mt` and split down to `order`, its pageblocks retyped. A
    /// wholly free pageblock changes type at no fragmentation cost (Linux
    /// claims such blocks on any fallback); doing it before using the
    /// type's own block in a higher region keeps live memory in the lowest
    /// regions when the types' shares shift. With
    /// [`RegionMixing::Segregated`] unmovable and reclaimable requests
    /// never take a movable pageblock this way (they would pin a region
    /// that holds movable memory); movable ones may take any. Counted as a
    /// region claim.
    pub(crate) fn claim_lower_free_pageblock(
        &mut self,
        order: Order,
        mt: MigrateType,
        below: usize,
    ) -> Option<u32> {
        let z = self.z;
        let map = z.regions.as_ref()?;
        if !mt.is_mergeable() || below == 0 {
            return None;
        }
        let mut best: Option<(usize, u32, Order, MigrateType)> = None;
        let from = order.max(z.geo.pageblock);
        for other in fallbacks_of(mt).filter(|&t| claimable(map.mixing, mt, t)) {
            let mut bits = self.f.nonempty[other.idx()] & (!0u16 << from.get());
            while bits != 0 {
                let o = bits.trailing_zeros() as u8;
                bits &= bits - 1;
                let Some(o) = Order::new(o) else { break };
                let Some(idx) = self.first_free(o, other) else {
                    continue;
                };
                let r = map.of_idx(idx);
                if r < below && best.is_none_or(|b| r < b.0) {
                    best = Some((r, idx, o, other));
                }
            }
        }
        let (_, idx, o, other) = best?;
        self.set_range_migratetype(z.pfn(idx), o, mt);
        self.take_and_expand(idx, order, o, other, mt);
        if let Some(rg) = self.f.regions.as_deref_mut() {
            rg.free_pageblock_claims += 1;
        }
        Some(idx)
    }

    /// After a free block joined the lists at `idx`: hands its region to
    /// the region allocator if every present page of it is now free.
    #[inline]
    pub(crate) fn region_after_free(&mut self, idx: u32) {
        let z = self.z;
        let (Some(rg), Some(map)) = (self.f.regions.as_deref(), &z.regions) else {
            return;
        };
        let r = map.of_idx(idx);
        if rg.free[r] == map.present[r] && !rg.is_held(r) {
            self.return_region(r);
        }
    }

    /// Hands every entirely free region to the region allocator (after
    /// construction).
    pub(crate) fn return_free_regions(&mut self) {
        let Some(n) = self.z.regions.as_ref().map(|m| m.len()) else {
            return;
        };
        for r in 0..n {
            let full = match (self.f.regions.as_deref(), &self.z.regions) {
                (Some(rg), Some(map)) => {
                    map.present[r] > 0 && rg.free[r] == map.present[r] && !rg.is_held(r)
                }
                _ => false,
            };
            if full {
                self.return_region(r);
            }
        }
    }

    /// Takes region `r`, all of whose present pages are free, off the
    /// lists into the region allocator, unless one of its free blocks is
    /// isolated or of a special type (CMA, high-atomic), which stay in
    /// service. Returns whether it went.
    fn return_region(&mut self, r: usize) -> bool {
        let z = self.z;
        let Some(map) = &z.regions else {
            return false;
        };
        if map.present[r] == 0 {
            return false;
        }
        let (start, end) = map.span(r);
        let mut ok = true;
        self.z.for_each_head(start, end, |pfn, meta| {
            let mt = self.z.block_mt(pfn);
            ok &= meta.state() == PageState::FreeHead && mt.is_mergeable();
        });
        if !ok {
            return false;
        }
        let mut pfn = start;
        while pfn < end {
            let meta = self.z.meta(pfn);
            if meta.state() != PageState::FreeHead {
                pfn.0 += 1; // a hole
                continue;
            }
            let order = meta.order();
            let idx = self.z.idx(pfn);
            // Off the list without leaving the free counters: held pages
            // are free pages.
            self.unlink_free(idx, order, self.z.block_mt(pfn));
            self.z
                .pages
                .set(idx, PageMeta::head(PageState::HeldHead, order));
            pfn.0 += order.nr_pages().0;
        }
        let now = self.z.region_time();
        let present = map.present[r];
        if let Some(rg) = self.f.regions.as_deref_mut() {
            rg.set_held(r, true);
            rg.nr_held += 1;
            rg.nr_held_pages += present;
            let rec = &mut rg.records[r];
            rec.held_since = now;
            rec.returns += 1;
        }
        if let Some(power) = &self.z.region_power {
            power.power_down(self.z.region_id(r), now);
        }
        true
    }

    /// Brings the lowest held region with a block of at least `order`
    /// back into service for `mt` (an ordinary type): every pageblock of it
    /// becomes `mt`'s, its blocks go on `mt`'s lists. Returns whether there
    /// was one. Whole regions always qualify; a partial one (at a zone
    /// edge or around a hole) may hold only smaller blocks.
    pub(crate) fn draw_region(&mut self, order: Order, mt: MigrateType) -> bool {
        let z = self.z;
        let Some(map) = &z.regions else {
            return false;
        };
        let mut from = 0;
        loop {
            let Some(r) = self
                .f
                .regions
                .as_deref()
                .and_then(|rg| rg.lowest_held_from(from))
            else {
                return false;
            };
            let fits = map.present[r] == map.region_pages() || {
                let (start, end) = map.span(r);
                let mut fits = false;
                z.for_each_head(start, end, |_, meta| fits |= meta.order() >= order);
                fits
            };
            if fits {
                self.draw(r, Some(mt));
                return true;
            }
            from = r + 1;
        }
    }

    /// Brings every held region overlapping `start..end` back into service
    /// with its pageblocks' types as they are: what isolation needs before
    /// it looks at the range's free blocks.
    pub(crate) fn draw_regions_in(&mut self, start: Pfn, end: Pfn) {
        let z = self.z;
        let Some(map) = &z.regions else {
            return;
        };
        for r in map.overlapping(start, end) {
            if self.f.regions.as_deref().is_some_and(|rg| rg.is_held(r)) {
                self.draw(r, None);
            }
        }
    }

    /// Brings held region `r` back, retyped to `mt` if given.
    fn draw(&mut self, r: usize, mt: Option<MigrateType>) {
        let z = self.z;
        let Some(map) = &z.regions else {
            return;
        };
        let now = self.z.region_time();
        if let Some(power) = &self.z.region_power {
            power.power_up(self.z.region_id(r), now);
        }
        let (start, end) = map.span(r);
        let mut pfn = start;
        while pfn < end {
            let meta = self.z.meta(pfn);
            if meta.state() != PageState::HeldHead {
                pfn.0 += 1; // a hole
                continue;
            }
            let order = meta.order();
            let idx = self.z.idx(pfn);
            self.z.pages.set(idx, PageMeta::TAIL);
            let to = match mt {
                Some(mt) => {
                    self.set_range_migratetype(pfn, order, mt);
                    mt
                }
                None => self.z.block_mt(pfn),
            };
            // Address order inside the region's segment.
            self.link_free(idx, order, to, Placement::Tail);
            pfn.0 += order.nr_pages().0;
        }
        let present = map.present[r];
        if let Some(rg) = self.f.regions.as_deref_mut() {
            rg.set_held(r, false);
            rg.nr_held -= 1;
            rg.nr_held_pages -= present;
            let rec = &mut rg.records[r];
            rec.idle_ticks += now.saturating_sub(rec.held_since);
            rec.draws += 1;
        }
    }
}
