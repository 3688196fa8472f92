//! Falling back to another migratetype's free lists, and claiming its
//! pageblocks (Linux 6.15 `__rmqueue_claim` / `__rmqueue_steal`).
//!
//! When the requested type's lists are empty, the allocator first tries to
//! *claim* a whole pageblock of another type, searching from the largest
//! order down (a large free block approximates an emptier pageblock). Only if
//! no block can be claimed does it *steal* the smallest suitable block and
//! leave the pageblock's type alone, which mixes types inside a pageblock:
//! the fragmentation event Linux traces as `mm_page_alloc_extfrag`.

use crate::units::{MigrateType, Order, Pfn};
use crate::watermark::AllocMode;
use crate::zone::ZoneOps;

/// Which lists each ordinary type falls back to, in order (Linux
/// `fallbacks[]`).
const FALLBACKS: [[MigrateType; 2]; 3] = [
    [MigrateType::Reclaimable, MigrateType::Movable],
    [MigrateType::Reclaimable, MigrateType::Unmovable],
    [MigrateType::Unmovable, MigrateType::Movable],
];

/// One fallback, with the fields of Linux's `mm_page_alloc_extfrag` event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FallbackEvent {
    /// The first frame of the allocated block.
    pub pfn: Pfn,
    /// The order requested.
    pub alloc_order: Order,
    /// The order of the block taken from the other type's list.
    pub fallback_order: Order,
    /// The type requested.
    pub alloc_migratetype: MigrateType,
    /// The type whose list the block came from.
    pub fallback_migratetype: MigrateType,
    /// The pageblock now belongs to the requested type.
    pub change_ownership: bool,
}

impl FallbackEvent {
    /// Whether the fallback split a block smaller than a pageblock, leaving
    /// a pageblock with mixed types (Linux's `fragmenting` field).
    pub fn fragmenting(&self, pageblock: Order) -> bool {
        self.fallback_order < pageblock
    }
}

/// The types `mt` falls back to, in order (none for the special types).
pub(crate) fn fallbacks_of(mt: MigrateType) -> impl Iterator<Item = MigrateType> {
    FALLBACKS.get(mt.idx()).into_iter().flatten().copied()
}

/// The first fallback type of `mt` with a free block on `order`'s lists.
fn suitable_fallback(nonempty: &[u16], order: Order, mt: MigrateType) -> Option<MigrateType> {
    let row = FALLBACKS.get(mt.idx())?;
    row.iter()
        .copied()
        .find(|f| nonempty[f.idx()] & (1 << order.get()) != 0)
}

/// Whether a fallback from a block of `order` should try to claim the whole
/// pageblock (Linux `should_try_claim_block`): large blocks always; and
/// unmovable and reclaimable requests always, since polluting a movable
/// pageblock with them is permanent, while movable requests only steal.
fn should_try_claim(order: Order, start: MigrateType, pageblock: Order) -> bool {
    order >= pageblock
        || order.get() >= pageblock.get() / 2
        || matches!(start, MigrateType::Unmovable | MigrateType::Reclaimable)
}

impl ZoneOps<'_> {
    /// Allocates `order` for `start` from another type's lists, claiming a
    /// pageblock when Linux would. Returns the block and the event.
    pub(crate) fn rmqueue_fallback(
        &mut self,
        order: Order,
        start: MigrateType,
        mode: AllocMode,
    ) -> Option<(u32, FallbackEvent)> {
        if let Some(found) = self.rmqueue_claim(order, start, mode) {
            return Some(found);
        }
        if mode.contains(AllocMode::NOFRAGMENT) {
            return None;
        }
        self.rmqueue_steal(order, start)
    }

    /// Tries to claim a whole pageblock, largest free block first.
    fn rmqueue_claim(
        &mut self,
        order: Order,
        start: MigrateType,
        mode: AllocMode,
    ) -> Option<(u32, FallbackEvent)> {
        let pb = self.z.geo.pageblock;
        let min_order = if order < pb && mode.contains(AllocMode::NOFRAGMENT) {
            pb
        } else {
            order
        };
        for current in self.z.geo.orders().rev() {
            if current < min_order {
                break;
            }
            if !should_try_claim(current, start, pb) {
                // Orders only get smaller from here: nothing more to claim.
                break;
            }
            let Some(fallback_mt) = suitable_fallback(&self.f.nonempty, current, start) else {
                continue;
            };
            let idx = self.first_free(current, fallback_mt)?;
            if let Some(got) = self.try_claim_block(idx, current, order, start, fallback_mt) {
                let event = FallbackEvent {
                    pfn: self.z.pfn(got),
                    alloc_order: order,
                    fallback_order: current,
                    alloc_migratetype: start,
                    fallback_migratetype: fallback_mt,
                    change_ownership: self.z.block_mt(self.z.pfn(got)) == start,
                };
                self.z.emit_fallback(&event);
                return Some((got, event));
            }
        }
        None
    }

    /// Claims the pageblock of the free block at `idx` for `start` when it
    /// is large enough, or when enough of its pageblock is free or
    /// compatible, then allocates from it (Linux `try_to_claim_block`).
    fn try_claim_block(
        &mut self,
        idx: u32,
        current: Order,
        order: Order,
        start: MigrateType,
        block_type: MigrateType,
    ) -> Option<u32> {
        let pb = self.z.geo.pageblock;
        let pfn = self.z.pfn(idx);
        if current >= pb {
            self.unlink_free(idx, current, block_type);
            self.set_range_migratetype(pfn, current, start);
            self.expand(idx, order, current, start);
            self.account_free(idx, order, start, false);
            return Some(idx);
        }
        let (block_start, block_end) = self.z.whole_pageblock(pfn)?;
        let (free, movable) = self.pageblock_usage(block_start, block_end);
        let pb_pages = self.z.geo.pageblock_nr_pages();
        // For a movable request, movable pages are alike. For unmovable or
        // reclaimable falling back to a movable block, every non-movable
        // page counts as alike; between unmovable and reclaimable nothing
        // does, since their pages cannot be told apart.
        let alike = match (start, block_type) {
            (MigrateType::Movable, _) => movable,
            (_, MigrateType::Movable) => pb_pages - (free + movable),
            _ => 0,
        };
        if free + alike >= pb_pages / 2 {
            self.move_pageblock(block_start, block_end, block_type, start);
            return self.rmqueue_smallest(order, start);
        }
        None
    }

    /// Takes the smallest suitable block of another type and leaves its
    /// pageblock's type unchanged: the split pieces stay on that type's
    /// lists (Linux `__rmqueue_steal`).
    fn rmqueue_steal(&mut self, order: Order, start: MigrateType) -> Option<(u32, FallbackEvent)> {
        for current in self.z.geo.orders().filter(|o| *o >= order) {
            let Some(fallback_mt) = suitable_fallback(&self.f.nonempty, current, start) else {
                continue;
            };
            let idx = self.first_free(current, fallback_mt)?;
            self.take_and_expand(idx, order, current, fallback_mt, fallback_mt);
            let event = FallbackEvent {
                pfn: self.z.pfn(idx),
                alloc_order: order,
                fallback_order: current,
                alloc_migratetype: start,
                fallback_migratetype: fallback_mt,
                change_ownership: false,
            };
            self.z.emit_fallback(&event);
            return Some((idx, event));
        }
        None
    }
}

impl ZoneOps<'_> {
    /// Takes a block of `order` for `mt` (Linux `rmqueue_buddy` +
    /// `__rmqueue`): the high-atomic reserve first for high-order atomic
    /// requests, CMA when it holds over half the free memory, the requested
    /// type, CMA, then fallback; last, atomic requests may use the
    /// high-atomic reserve rather than fail.
    pub(crate) fn rmqueue(
        &mut self,
        order: Order,
        mt: MigrateType,
        mode: AllocMode,
    ) -> Option<(u32, Option<FallbackEvent>)> {
        if mode.contains(AllocMode::HIGHATOMIC) {
            if let Some(idx) = self.rmqueue_smallest(order, MigrateType::HighAtomic) {
                return Some((idx, None));
            }
        }
        let cma = mode.contains(AllocMode::CMA);
        if cma && self.f.nr_free_cma > self.f.nr_free_pages / 2 {
            if let Some(idx) = self.rmqueue_smallest(order, MigrateType::Cma) {
                return Some((idx, None));
            }
        }
        if order == Order::ZERO && self.z.packing.packs(mt) {
            if let Some(found) = self.rmqueue_packed_one(mt) {
                return Some(found);
            }
        }
        if let Some(idx) = self.rmqueue_smallest(order, mt) {
            return Some((idx, None));
        }
        if cma {
            if let Some(idx) = self.rmqueue_smallest(order, MigrateType::Cma) {
                return Some((idx, None));
            }
        }
        if !mode.contains(AllocMode::NO_FALLBACK) {
            if let Some((idx, event)) = self.rmqueue_fallback(order, mt, mode) {
                return Some((idx, Some(event)));
            }
        }
        if mode.contains(AllocMode::NON_BLOCK) {
            return self
                .rmqueue_smallest(order, MigrateType::HighAtomic)
                .map(|idx| (idx, None));
        }
        None
    }
}

impl ZoneOps<'_> {
    /// One packed order-0 page for the packing policy, claiming a free
    /// pageblock if need be. The page is handed back free-of-state (its head
    /// a plain tail) for the caller to label, like `rmqueue_smallest`'s.
    fn rmqueue_packed_one(&mut self, mt: MigrateType) -> Option<(u32, Option<FallbackEvent>)> {
        let mut found = None;
        let mut event = None;
        self.rmqueue_packed(
            mt,
            1,
            crate::compact::PackClaim::ClaimFreePageblocks,
            crate::compact::POLICY_SCAN_LIMIT,
            &mut |idx| found = Some(idx),
            &mut |e| event = Some(e),
        );
        Some((found?, event))
    }
}
