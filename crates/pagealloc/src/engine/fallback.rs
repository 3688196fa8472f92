//! Falling back to another migratetype's free lists, and claiming its
//! pageblocks (Linux 6.15 `__rmqueue_claim` / `__rmqueue_steal`).
//!
//! When the requested type's lists are empty, the allocator first tries to
//! *claim* a whole pageblock of another type, searching from the largest
//! order down (a large free block approximates an emptier pageblock). Only if
//! no block can be claimed does it *steal* the smallest suitable block and
//! leave the pageblock's type alone, which mixes types inside a pageblock:
//! the fragmentation event Linux traces as `mm_page_alloc_extfrag`.

use crate::engine::watermark::AllocMode;
use crate::engine::zone::ZoneOps;
use crate::events::FallbackEvent;
use crate::units::{MigrateType, Order};

/// Which lists each ordinary type falls back to, in order (Linux
/// `fallbacks[]`).
const FALLBACKS: [[MigrateType; 2]; 3] = [
    [MigrateType::Reclaimable, MigrateType::Movable],
    [MigrateType::Reclaimable, MigrateType::Unmovable],
    [MigrateType::Unmovable, MigrateType::Movable],
];

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
            let reported = self.unlink_free(idx, current, block_type);
            self.count_reported_reuse(reported, current);
            // Linux claims the whole block. Under confinement only the
            // pageblocks the allocation takes change type: the free rest
            // stays the other type's, as no wholly free pageblock may be
            // confined (`engine::confine`).
            let claimed = if self.z.confinement.confines(start) {
                order.max(pb)
            } else {
                current
            };
            self.expand(idx, claimed, current, block_type);
            self.set_range_migratetype(pfn, claimed, start);
            self.expand(idx, order, claimed, start);
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
