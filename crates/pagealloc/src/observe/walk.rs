//! The walk over a zone's page records that a census of its pageblocks
//! makes: every block in address order ([`Zone::blocks`]), read without
//! the lock (exact when the allocator is quiescent, as between a
//! simulator's steps).

use lock_api::RawMutex;

use crate::engine::page::PageState;
use crate::engine::zone::Zone;
use crate::units::{MigrateType, Order, Pfn};

/// One block as [`Zone::blocks`] reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlockInfo {
    /// First frame.
    pub pfn: Pfn,
    /// Order.
    pub order: Order,
    /// Free, allocated, per-CPU or offline.
    pub state: PageState,
    /// For an allocated block, the migratetype it was allocated as.
    pub alloc_migratetype: Option<MigrateType>,
    /// Whether it is a page of an allocated contiguous run (seed 003).
    pub contig: bool,
}

impl<R: RawMutex> Zone<R> {
    /// Every block of the zone (free, allocated, per-CPU or offline), in
    /// address order. Read without the lock: exact when the allocator is
    /// quiescent.
    pub fn blocks(&self) -> impl Iterator<Item = BlockInfo> + '_ {
        let core = &self.core;
        let mut pfn = core.start;
        core::iter::from_fn(move || {
            while pfn < core.end {
                let meta = core.meta(pfn);
                if meta.state() == PageState::Tail {
                    pfn.0 += 1;
                    continue;
                }
                let info = BlockInfo {
                    pfn,
                    order: meta.order(),
                    state: meta.state(),
                    alloc_migratetype: (meta.state() == PageState::AllocHead)
                        .then(|| meta.alloc_migratetype()),
                    contig: meta.is_contig(),
                };
                pfn.0 += meta.order().nr_pages().0;
                return Some(info);
            }
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{AllocFlags, Allocator, Config, MemoryMap, Order, PageCount, PageState, Pfn};

    #[test]
    fn blocks_walk_covers_every_present_page() {
        let map = MemoryMap::contiguous(Pfn(0x1000), PageCount(3000)).unwrap();
        let a: Allocator = Allocator::new(map, Config::default()).unwrap();
        let p = a.alloc(Order::new(2).unwrap(), AllocFlags::KERNEL).unwrap();
        let zone = &a.zones()[0];
        let total: u64 = zone.blocks().map(|b| b.order.nr_pages().0).sum();
        assert_eq!(total, 3000);
        let mine = zone.blocks().find(|b| b.pfn == p).unwrap();
        assert_eq!(mine.state, PageState::AllocHead);
        assert_eq!(mine.alloc_migratetype, Some(crate::MigrateType::Unmovable));
        assert_eq!(
            zone.blocks()
                .filter(|b| b.state == PageState::AllocHead)
                .count(),
            1
        );
    }
}
