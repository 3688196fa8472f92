//! Packed allocation (seed 001, `alloc_pages_compact`), of order 0 and, for
//! the packing policy's small orders, up to order 3.
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
//! (see `engine::pageblock`).
//!
//! Blocks of order 1 to 3 ([`Packing::SmallOrders`](crate::Packing)) follow
//! the same rule one order up: the candidates are the type's free blocks
//! of the request's order up to order 2 (or just the request's order, for
//! order 3), fullest pageblock first, then its larger ones below a
//! pageblock, then a claimed free pageblock (when there is none, a caller
//! with a migrator has one emptied first: `contig::evacuate`). Under confinement
//! ([`Confinement::LowEnd`](crate::Confinement)) the pageblock claimed is
//! the zone's lowest wholly free one, exactly one pageblock.
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

use crate::engine::fallback::fallbacks_of;
use crate::engine::free_list::Placement;
use crate::engine::watermark::AllocMode;
use crate::engine::zone::ZoneOps;
use crate::events::FallbackEvent;
use crate::policy::PackClaim;
use crate::units::{MigrateType, Order};

/// The largest free block packing splits inside an owned pageblock: below
/// order 3, as the seed's `alloc_freepages_block` ("allocate only low-order
/// pages"), so larger blocks stay for larger allocations.
const PACK_MAX_ORDER: u8 = 2;

impl ZoneOps<'_> {
    /// Takes up to `want` blocks of `order` of `mt`, packed, handing each
    /// head to `take` as a plain tail for it to label (allocated, or linked
    /// on a per-CPU list). Returns how many it took, and the claims of
    /// other types' pageblocks it made (as fallback events).
    /// `scan_limit` bounds how many entries of each free list are examined
    /// for candidate blocks. `mode` is the request's: with
    /// [`AllocMode::NO_FALLBACK`] only free pageblocks of `mt` itself may be
    /// claimed, never another type's.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rmqueue_packed(
        &mut self,
        mt: MigrateType,
        order: Order,
        want: usize,
        claim: PackClaim,
        mode: AllocMode,
        scan_limit: usize,
        take: &mut dyn FnMut(u32),
        claims: &mut dyn FnMut(FallbackEvent),
    ) -> usize {
        let pb = self.z.geo.pageblock;
        if order >= pb {
            return 0;
        }
        // The small free blocks of pageblocks `mt` owns, fullest first.
        let small = order.get().max(PACK_MAX_ORDER);
        let mut got = self.take_listed(mt, order, order.get()..=small, scan_limit, want, take);
        if got == want || claim == PackClaim::OwnedOnly {
            return got;
        }
        // Before claiming anything new, finish the pageblocks the type owns:
        // their larger free blocks too, fullest pageblock first.
        let larger = small + 1..=pb.get().saturating_sub(1);
        got += self.take_listed(mt, order, larger, scan_limit, want - got, take);
        while got < want {
            if self.z.confinement.confines(mt) {
                // Confined: the lowest free pageblock, exactly one.
                if mode.contains(AllocMode::NO_FALLBACK) {
                    break;
                }
                let Some((idx, event)) = self.claim_lowest_pageblock(order, mt) else {
                    break;
                };
                if let Some(event) = event {
                    claims(event);
                }
                self.link_free(idx, pb, mt, Placement::Head);
                got += self.take_block(idx, pb, order, mt, mt, want - got, take);
                continue;
            }
            let Some((idx, found, from)) = self.free_pageblock_to_claim(mt, mode) else {
                break;
            };
            let pfn = self.z.pfn(idx);
            if from != mt {
                let event = FallbackEvent {
                    pfn,
                    alloc_order: order,
                    fallback_order: found,
                    alloc_migratetype: mt,
                    fallback_migratetype: from,
                    change_ownership: true,
                };
                self.z.emit_fallback(&event);
                claims(event);
            }
            // Claimed whole: the pieces left after taking go to `mt`'s lists.
            self.set_range_migratetype(pfn, found, mt);
            got += self.take_block(idx, found, order, from, mt, want - got, take);
        }
        got
    }

    /// Takes up to `want` blocks of `unit` from the free blocks of `orders`
    /// (all at least `unit`) on `mt`'s lists (the first `scan_limit` of each
    /// list), fullest pageblock first, in address order within a pageblock.
    /// Each block is taken whole while `want` allows, the last one split.
    ///
    /// One list walk per call; the `u64` keys (`free pages << 32 | index`)
    /// live in a buffer kept under the zone lock, heapified in linear time,
    /// and only the blocks taken are popped.
    fn take_listed(
        &mut self,
        mt: MigrateType,
        unit: Order,
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
                // Reported blocks (seed 002) sort after every unreported
                // one: they are used last here too.
                let reported = u64::from(self.z.pages.get(idx).flag());
                let free = self.z.blocks.free_pages(self.z.pfn(idx));
                keys.push(reported << 63 | u64::from(free) << 32 | u64::from(idx));
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
            got += self.take_block(idx, order, unit, mt, mt, want - got, take);
        }
        self.f.pack_scratch = heap.into_vec();
        got
    }

    /// Takes the first `min(want, 2^(order - unit))` blocks of `unit` of the
    /// free block at `idx` on `from`'s list as allocations of `mt`, and
    /// gives the rest back as aligned blocks at the head of `mt`'s lists (as
    /// `expand` would have split it; the caller has retyped the pageblocks
    /// if `from` is another type). Returns how many it took.
    #[allow(clippy::too_many_arguments)]
    fn take_block(
        &mut self,
        idx: u32,
        order: Order,
        unit: Order,
        from: MigrateType,
        mt: MigrateType,
        want: usize,
        take: &mut dyn FnMut(u32),
    ) -> usize {
        let nr = order.nr_pages().0 as u32;
        let step = unit.nr_pages().0 as u32;
        let blocks = (nr / step).min(u32::try_from(want).unwrap_or(u32::MAX));
        let n = blocks * step;
        // The pages go to `take` as plain tails, and the caller writes their
        // final records (allocated, or linked on a per-CPU list). No page is
        // ever an allocated head in between: a free racing against this
        // call must fail its compare-and-swap, not take the page over.
        let reported = self.del_free(idx, order, from);
        self.count_reported_reuse(reported, order);
        for block in (idx..idx + n).step_by(step as usize) {
            take(block);
        }
        let mut pos = n;
        while pos < nr {
            // The largest block aligned at `pos` that fits before `nr`.
            let fits = (nr - pos).ilog2();
            let piece = Order::new(pos.trailing_zeros().min(fits) as u8).unwrap_or(Order::ZERO);
            self.add_free(idx + pos, piece, mt, Placement::Head);
            pos += piece.nr_pages().0 as u32;
        }
        blocks as usize
    }

    /// A whole free pageblock (a free block of at least pageblock order) to
    /// claim for `mt`: its own type's first, then its fallback types', the
    /// smallest such block first so larger ones stay whole. With
    /// [`AllocMode::NO_FALLBACK`], its own type's only.
    fn free_pageblock_to_claim(
        &self,
        mt: MigrateType,
        mode: AllocMode,
    ) -> Option<(u32, Order, MigrateType)> {
        let pb = self.z.geo.pageblock;
        let others = !mode.contains(AllocMode::NO_FALLBACK);
        let sources = core::iter::once(mt).chain(fallbacks_of(mt).filter(move |_| others));
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
