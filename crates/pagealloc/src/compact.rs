//! Packed order-0 allocation (seed 001, `alloc_pages_compact`).
//!
//! A driver that holds hundreds of MB of unmovable order-0 pages for days
//! leaves a few pinned pages in every pageblock, and no order-3 block can be
//! had. Packing takes order-0 pages only from pageblocks the migratetype
//! already owns, fullest first, and only from their *small* free blocks
//! (below order 3), so the owned pageblocks fill up before anything else is
//! touched. Only when those run out, and only if the caller allows it, does it
//! claim whole free pageblocks, after first finishing the larger free
//! blocks of the pageblocks it owns (a claimed pageblock is used up before
//! another is claimed); it never splits a free block of another type's
//! pageblock.
//!
//! "Fullest" is measured by the per-pageblock free-page count the zone keeps
//! (see `BlockTable`).

use alloc::vec::Vec;

use lock_api::RawMutex;

use crate::allocator::Allocator;
use crate::error::AllocError;
use crate::fallback::FallbackEvent;
use crate::page::{PageMeta, PageState};
use crate::units::{AllocFlags, CpuId};
use crate::units::{MigrateType, Order, Pfn};
use crate::zone::ZoneOps;

/// Whether packed allocation may claim whole free pageblocks once the
/// migratetype's own pageblocks have no small free blocks left.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PackClaim {
    /// Only pageblocks the migratetype already owns (the seed's call).
    OwnedOnly,
    /// Then the larger free blocks of owned pageblocks, then whole free
    /// pageblocks, which become the migratetype's.
    ClaimFreePageblocks,
}

/// Which allocations the allocator packs on its own (a policy, compared
/// against Linux's default side by side in `pagesim`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Packing {
    /// Linux's placement.
    Off,
    /// Every unmovable order-0 allocation is packed first.
    Unmovable,
    /// Every unmovable and reclaimable order-0 allocation is packed first.
    UnmovableAndReclaimable,
}

impl Packing {
    /// Whether order-0 allocations of `mt` are packed.
    pub fn packs(self, mt: MigrateType) -> bool {
        match self {
            Packing::Off => false,
            Packing::Unmovable => mt == MigrateType::Unmovable,
            Packing::UnmovableAndReclaimable => {
                matches!(mt, MigrateType::Unmovable | MigrateType::Reclaimable)
            }
        }
    }
}

/// The largest free block packing splits inside an owned pageblock: below
/// order 3, as the seed's `alloc_freepages_block` ("allocate only low-order
/// pages"), so larger blocks stay for larger allocations.
const PACK_MAX_ORDER: u8 = 2;

/// How many entries of each small-order list the policy (as opposed to an
/// explicit call) looks at to find candidate pageblocks: it runs on every
/// refill, so it must stay cheap.
pub(crate) const POLICY_SCAN_LIMIT: usize = 64;

impl ZoneOps<'_> {
    /// Takes up to `want` order-0 pages of `mt`, packed, handing each to
    /// `take` already marked allocated. Returns how many it took, and the
    /// claims of other types' pageblocks it made (as fallback events).
    /// `scan_limit` bounds how many entries of each small-order free list
    /// are examined for candidate pageblocks.
    pub(crate) fn rmqueue_packed(
        &mut self,
        mt: MigrateType,
        want: usize,
        claim: PackClaim,
        scan_limit: usize,
        take: &mut dyn FnMut(u32),
        claims: &mut dyn FnMut(FallbackEvent),
    ) -> usize {
        let pb = self.z.geo.pageblock;
        let mut got = 0;
        // Pageblocks owned by `mt` with small free blocks, fullest first.
        let small = Order::new(PACK_MAX_ORDER).unwrap_or(Order::ZERO);
        let owned = self.owned_pageblocks(mt, Order::ZERO, small, scan_limit);
        got += self.take_from_pageblocks(&owned, mt, Some(small), want - got, take);
        if got == want || claim == PackClaim::OwnedOnly {
            return got;
        }
        // Before claiming anything new, finish the pageblocks the type owns:
        // their larger free blocks too, fullest pageblock first.
        let larger = Order::new(PACK_MAX_ORDER + 1).unwrap_or(Order::LIMIT);
        let below_pb = pb.lower().unwrap_or(Order::ZERO);
        let owned = self.owned_pageblocks(mt, larger, below_pb, scan_limit);
        got += self.take_from_pageblocks(&owned, mt, None, want - got, take);
        while got < want {
            let Some((idx, order, from)) = self.free_pageblock_to_claim(mt) else {
                break;
            };
            let pfn = self.z.pfn(idx);
            self.del_free(idx, order, from);
            self.set_range_migratetype(pfn, order, mt);
            self.add_free(idx, order, mt, crate::free_list::Placement::Head);
            if from != mt {
                let event = FallbackEvent {
                    pfn,
                    alloc_order: Order::ZERO,
                    fallback_order: order,
                    alloc_migratetype: mt,
                    fallback_migratetype: from,
                    change_ownership: true,
                };
                self.z.emit_fallback(&event);
                claims(event);
            }
            got += self.take_from_pageblock(pfn, mt, None, want - got, take);
        }
        got
    }

    /// Pageblocks owned by `mt` that hold a free block of order `from..=to`
    /// among the first `scan_limit` entries of each of those lists, fullest
    /// (fewest free pages) first.
    fn owned_pageblocks(
        &self,
        mt: MigrateType,
        from: Order,
        to: Order,
        scan_limit: usize,
    ) -> Vec<Pfn> {
        let pb = self.z.geo.pageblock;
        let mut found: Vec<(u32, Pfn)> = Vec::new();
        for order in self.z.geo.orders().filter(|o| (from..=to).contains(o)) {
            let list = &self.f.areas[order.idx()].lists[mt.idx()];
            for idx in list.iter(&self.z.pages).take(scan_limit) {
                let pfn = self.z.pfn(idx);
                found.push((self.z.blocks.free_pages(pfn), pfn.align_down(pb)));
            }
        }
        found.sort_unstable();
        found.dedup_by_key(|c| c.1);
        found.into_iter().map(|(_, block)| block).collect()
    }

    /// Takes up to `want` order-0 pages from `blocks` in turn.
    fn take_from_pageblocks(
        &mut self,
        blocks: &[Pfn],
        mt: MigrateType,
        max_order: Option<Order>,
        want: usize,
        take: &mut dyn FnMut(u32),
    ) -> usize {
        let mut got = 0;
        for &block in blocks {
            if got == want {
                break;
            }
            got += self.take_from_pageblock(block, mt, max_order, want - got, take);
        }
        got
    }

    /// Takes up to `want` order-0 pages from the free blocks of the
    /// pageblock starting at `block`, front to back, splitting blocks of at
    /// most `max_order` (any order when `None`).
    fn take_from_pageblock(
        &mut self,
        block: Pfn,
        mt: MigrateType,
        max_order: Option<Order>,
        want: usize,
        take: &mut dyn FnMut(u32),
    ) -> usize {
        let z = self.z;
        let start = block.max(z.start);
        let end = Pfn((block.0 + z.geo.pageblock_nr_pages()).min(z.end.0));
        let mut got = 0;
        let mut pfn = start;
        while pfn < end && got < want {
            let meta = z.meta(pfn);
            let order = meta.order();
            match meta.state() {
                PageState::Tail => pfn.0 += 1,
                PageState::FreeHead if max_order.is_none_or(|max| order <= max) => {
                    let idx = z.idx(pfn);
                    self.take_and_expand(idx, Order::ZERO, order, mt, mt);
                    z.pages.set(idx, PageMeta::allocated(Order::ZERO, mt));
                    take(idx);
                    got += 1;
                    pfn.0 += 1;
                }
                _ => pfn.0 += order.nr_pages().0,
            }
        }
        got
    }

    /// A whole free pageblock (a free block of at least pageblock order) to
    /// claim for `mt`: its own type's first, then its fallback types', the
    /// smallest such block first so larger ones stay whole.
    fn free_pageblock_to_claim(&self, mt: MigrateType) -> Option<(u32, Order, MigrateType)> {
        let pb = self.z.geo.pageblock;
        let sources = core::iter::once(mt).chain(crate::fallback::fallbacks_of(mt));
        for from in sources {
            for order in self.z.geo.orders().filter(|o| *o >= pb) {
                if let Some(idx) = self.first_free(order, from) {
                    return Some((idx, order, from));
                }
            }
        }
        None
    }
}

impl<R: RawMutex> Allocator<R> {
    /// Allocates order-0 pages of the flags' migratetype into `out`, packed
    /// into pageblocks that type already owns (seed 001's
    /// `alloc_pages_compact`), and returns how many it placed at the start
    /// of `out`.
    ///
    /// Zones are tried in zonelist order. In each, pages come from the small
    /// (order < 3) free blocks of the type's own pageblocks, fullest
    /// pageblock first; then, with [`PackClaim::ClaimFreePageblocks`], from
    /// whole free pageblocks, which become the type's. A zone gives no more
    /// than keeps it above its low watermark. Partial success is the rule,
    /// as in the seed: fewer than `out.len()` pages means the owned
    /// pageblocks (and free pageblocks, if allowed) ran out; the pages
    /// obtained stay allocated and are ordinary order-0 allocations, freed
    /// with [`Allocator::free`] or [`Allocator::free_bulk`] like any other.
    /// Per-CPU lists are bypassed: their pages sit wherever they were freed.
    pub fn alloc_packed(
        &self,
        cpu: CpuId,
        flags: AllocFlags,
        claim: PackClaim,
        out: &mut [Pfn],
    ) -> Result<usize, AllocError> {
        if self.cpu_home(cpu).is_none() {
            return Err(AllocError::InvalidCpu { cpu: cpu.0 });
        }
        let mt = flags.migratetype();
        let highest = flags.highest_zone();
        let mut got = 0;
        for &zi in self.zonelist_for(cpu, highest, flags) {
            if got == out.len() {
                break;
            }
            let zone = &self.zones[zi];
            let mut guard = zone.lock();
            let mut ops = guard.ops();
            let reserve = ops.z.watermarks.low + ops.z.lowmem_reserve[highest.idx()];
            let budget = ops.f.nr_free_pages.saturating_sub(reserve) as usize;
            let want = (out.len() - got).min(budget);
            let mut taken = Vec::with_capacity(want);
            let mut events = Vec::new();
            ops.rmqueue_packed(
                mt,
                want,
                claim,
                usize::MAX,
                &mut |idx| taken.push(idx),
                &mut |e| events.push(e),
            );
            for e in &events {
                ops.f.stats.count_fallback(e, ops.z.geo.pageblock);
            }
            for (slot, &idx) in out[got..].iter_mut().zip(&taken) {
                *slot = ops.z.pfn(idx);
                ops.f.stats.count_alloc(Order::ZERO);
            }
            drop(guard);
            for &pfn in &out[got..got + taken.len()] {
                self.emit_alloc(
                    pfn,
                    Order::ZERO,
                    flags,
                    cpu,
                    crate::events::AllocKind::Packed,
                );
            }
            got += taken.len();
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_selects_types() {
        assert!(!Packing::Off.packs(MigrateType::Unmovable));
        assert!(Packing::Unmovable.packs(MigrateType::Unmovable));
        assert!(!Packing::Unmovable.packs(MigrateType::Reclaimable));
        assert!(Packing::UnmovableAndReclaimable.packs(MigrateType::Reclaimable));
        assert!(!Packing::UnmovableAndReclaimable.packs(MigrateType::Movable));
    }
}
