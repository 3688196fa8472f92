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
//!
//! Cost. Every free block of an owned pageblock is on that type's lists
//! (freelist hygiene), so the candidates are the list entries themselves:
//! one walk over the lists of the orders wanted gives each block a key
//! (its pageblock's free pages, then its index), the keys become a heap in
//! linear time, and blocks are popped smallest key first and taken whole
//! until the call has its pages, the last one split. No pageblock is walked page by page,
//! and the keys live in a buffer kept under the zone lock, so a call
//! allocates nothing once that buffer has grown (but for the events of the
//! pageblocks it claims).

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;

use lock_api::RawMutex;

use crate::allocator::Allocator;
use crate::error::AllocError;
use crate::fallback::FallbackEvent;
use crate::free_list::Placement;
use crate::page::PageMeta;
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
    /// `take` as a plain tail for it to label (allocated, or linked on a
    /// per-CPU list). Returns how many it took, and the
    /// claims of other types' pageblocks it made (as fallback events).
    /// `scan_limit` bounds how many entries of each free list are examined
    /// for candidate blocks.
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
        // The small free blocks of pageblocks `mt` owns, fullest first.
        let mut got = self.take_listed(mt, 0..=PACK_MAX_ORDER, scan_limit, want, take);
        if got == want || claim == PackClaim::OwnedOnly {
            return got;
        }
        // Before claiming anything new, finish the pageblocks the type owns:
        // their larger free blocks too, fullest pageblock first.
        let larger = PACK_MAX_ORDER + 1..=pb.get().saturating_sub(1);
        got += self.take_listed(mt, larger, scan_limit, want - got, take);
        while got < want {
            let Some((idx, order, from)) = self.free_pageblock_to_claim(mt) else {
                break;
            };
            let pfn = self.z.pfn(idx);
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
            // Claimed whole: the pieces left after taking go to `mt`'s lists.
            self.set_range_migratetype(pfn, order, mt);
            got += self.take_block(idx, order, from, mt, want - got, take);
        }
        got
    }

    /// Takes up to `want` order-0 pages from the free blocks of `orders` on
    /// `mt`'s lists (the first `scan_limit` of each list), fullest pageblock
    /// first, in address order within a pageblock. Each block is taken whole
    /// while `want` allows, the last one split.
    ///
    /// One list walk per call; the `u64` keys (`free pages << 32 | index`)
    /// live in a buffer kept under the zone lock, heapified in linear time,
    /// and only the blocks taken are popped.
    fn take_listed(
        &mut self,
        mt: MigrateType,
        orders: core::ops::RangeInclusive<u8>,
        scan_limit: usize,
        want: usize,
        take: &mut dyn FnMut(u32),
    ) -> usize {
        if want == 0 || self.f.nonempty[mt.idx()] & order_mask(orders.clone()) == 0 {
            return 0;
        }
        let mut keys = core::mem::take(&mut self.f.pack_scratch);
        keys.clear();
        for order in self.z.geo.orders().filter(|o| orders.contains(&o.get())) {
            let list = &self.f.areas[order.idx()].lists[mt.idx()];
            for idx in list.iter(&self.z.pages).take(scan_limit) {
                let free = self.z.blocks.free_pages(self.z.pfn(idx));
                keys.push(u64::from(free) << 32 | u64::from(idx));
            }
        }
        // A max-heap of complemented keys pops the smallest key first; it is
        // built in linear time, and only the blocks a call uses are popped.
        for key in keys.iter_mut() {
            *key = !*key;
        }
        let mut heap = BinaryHeap::from(keys);
        let mut got = 0;
        while got < want {
            let Some(key) = heap.pop() else {
                break;
            };
            // The low half of a key is the block's index; no block on the
            // list changes while others are taken (allocation never merges).
            let idx = !key as u32;
            let order = self.z.pages.get(idx).order();
            got += self.take_block(idx, order, mt, mt, want - got, take);
        }
        self.f.pack_scratch = heap.into_vec();
        got
    }

    /// Takes the first `min(want, 2^order)` pages of the free block at `idx`
    /// on `from`'s list as order-0 allocations of `mt`, and gives the rest
    /// back as aligned blocks at the head of `mt`'s lists (as `expand` would
    /// have split it; the caller has retyped the pageblocks if `from` is
    /// another type). Returns how many it took.
    fn take_block(
        &mut self,
        idx: u32,
        order: Order,
        from: MigrateType,
        mt: MigrateType,
        want: usize,
        take: &mut dyn FnMut(u32),
    ) -> usize {
        let nr = order.nr_pages().0 as u32;
        let n = nr.min(u32::try_from(want).unwrap_or(u32::MAX));
        // The pages go to `take` as plain tails, and the caller writes their
        // final records (allocated, or linked on a per-CPU list). No page is
        // ever an allocated head in between: a free racing against this
        // call must fail its compare-and-swap, not take the page over.
        self.del_free(idx, order, from);
        for page in idx..idx + n {
            take(page);
        }
        let mut pos = n;
        while pos < nr {
            // The largest block aligned at `pos` that fits before `nr`.
            let fits = (nr - pos).ilog2();
            let piece = Order::new(pos.trailing_zeros().min(fits) as u8).unwrap_or(Order::ZERO);
            self.add_free(idx + pos, piece, mt, Placement::Head);
            pos += piece.nr_pages().0 as u32;
        }
        n as usize
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

/// The bits of `orders` in a free-list non-empty mask.
fn order_mask(orders: core::ops::RangeInclusive<u8>) -> u16 {
    orders
        .filter(|&o| u32::from(o) < u16::BITS)
        .fold(0, |m, o| m | 1 << o)
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
    /// the larger free blocks (order 3 up to below a pageblock) of its own
    /// pageblocks, fullest first, then from whole free pageblocks (its own
    /// type's, then its fallback types', the smallest free block first),
    /// which become the type's. A free block of a pageblock owned by another
    /// type is never split.
    ///
    /// Partial success is the rule, as in the seed. The call returns `n <=
    /// out.len()`; `out[..n]` hold the pages and `out[n..]` is untouched.
    /// `n < out.len()` means that in every zone of the zonelist either the
    /// zone's budget ran out (it gives no more than keeps its free pages
    /// above its low watermark plus the lowmem reserve for the request) or
    /// its candidates did (the owned pageblocks' free blocks, and free
    /// pageblocks if allowed). The pages are ordinary order-0 allocations,
    /// freed with [`Allocator::free`] or [`Allocator::free_bulk`] like any
    /// other. Per-CPU lists are bypassed: their pages sit wherever they
    /// were freed, and packing must choose where its pages lie.
    ///
    /// Cost: one walk of the type's free lists of the orders concerned per
    /// zone and phase, a heap built over those blocks in linear time, one
    /// pop per block taken and constant work per page; no allocation once
    /// the zone's key buffer has grown.
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
            let z = ops.z;
            let dest = &mut out[got..got + want];
            let mut n = 0;
            let mut events = Vec::new();
            ops.rmqueue_packed(
                mt,
                want,
                claim,
                usize::MAX,
                &mut |idx| {
                    z.pages.set(idx, PageMeta::allocated(Order::ZERO, mt));
                    // `rmqueue_packed` takes at most `want` pages.
                    if let Some(slot) = dest.get_mut(n) {
                        *slot = z.pfn(idx);
                        n += 1;
                    }
                },
                &mut |e| events.push(e),
            );
            for e in &events {
                ops.f.stats.count_fallback(e, ops.z.geo.pageblock);
            }
            for _ in 0..n {
                ops.f.stats.count_alloc(Order::ZERO);
            }
            drop(guard);
            for &pfn in &out[got..got + n] {
                self.emit_alloc(
                    pfn,
                    Order::ZERO,
                    flags,
                    cpu,
                    crate::events::AllocKind::Packed,
                );
            }
            got += n;
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
