//! The high-atomic reserve: pageblocks set aside after a high-order atomic
//! allocation succeeds, so the next one (which cannot reclaim or compact)
//! finds a block too (Linux `reserve_highatomic_pageblock` and
//! `unreserve_highatomic_pageblock`, mm/page_alloc.c).

use crate::config::HighAtomicReserve;
use crate::engine::buddy::FreePlacement;
use crate::engine::zone::ZoneOps;
use crate::units::{MigrateType, Order, Pfn};

impl ZoneOps<'_> {
    /// Reserves the pageblock holding the just-allocated `pfn`/`order` for
    /// high-order atomic allocations, within the limit of about 1% of the
    /// zone. Returns whether a pageblock was reserved.
    pub(crate) fn reserve_highatomic(
        &mut self,
        pfn: Pfn,
        order: Order,
        rule: HighAtomicReserve,
    ) -> bool {
        if rule == HighAtomicReserve::Disabled {
            return false;
        }
        let pb = self.z.geo.pageblock_nr_pages();
        // At most ~1% of the zone, rounded up to whole pageblocks; nothing if
        // 1% is less than one pageblock.
        let one_percent = self.z.nr_present / 100;
        if one_percent < pb {
            return false;
        }
        let max = one_percent.div_ceil(pb) * pb;
        if self.f.nr_reserved_highatomic >= max {
            return false;
        }
        let mt = self.z.block_mt(pfn);
        if !mt.is_mergeable() {
            return false;
        }
        if order < self.z.geo.pageblock {
            let Some((start, end)) = self.z.whole_pageblock(pfn) else {
                return false;
            };
            self.move_pageblock(start, end, mt, MigrateType::HighAtomic);
            self.f.nr_reserved_highatomic += pb;
        } else {
            self.set_range_migratetype(pfn, order, MigrateType::HighAtomic);
            self.f.nr_reserved_highatomic += order.nr_pages().0;
        }
        true
    }

    /// Gives one reserved pageblock that has free pages back to `mt`.
    /// Unless `force`, the last reserved pageblock is kept. Returns whether
    /// a pageblock was given back.
    pub(crate) fn unreserve_highatomic(&mut self, mt: MigrateType, force: bool) -> bool {
        let pb = self.z.geo.pageblock_nr_pages();
        if !force && self.f.nr_reserved_highatomic <= pb {
            return false;
        }
        for order in self.z.geo.orders() {
            let Some(idx) = self.first_free(order, MigrateType::HighAtomic) else {
                continue;
            };
            let pfn = self.z.pfn(idx);
            let size = pb
                .max(order.nr_pages().0)
                .min(self.f.nr_reserved_highatomic);
            if order < self.z.geo.pageblock {
                let Some((start, end)) = self.z.whole_pageblock(pfn) else {
                    continue;
                };
                self.f.nr_reserved_highatomic -= size;
                self.move_pageblock(start, end, MigrateType::HighAtomic, mt);
            } else {
                self.f.nr_reserved_highatomic -= size;
                self.del_free(idx, order, MigrateType::HighAtomic);
                self.set_range_migratetype(pfn, order, mt);
                // The reserve kept this block from merging with a free buddy
                // of an ordinary type; now it may, as on any free.
                self.free_one(pfn, order, mt, FreePlacement::Tail);
            }
            return true;
        }
        false
    }
}
