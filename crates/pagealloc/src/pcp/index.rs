//! Which per-CPU list a block goes on: the list indices (orders `0..=3`
//! per ordinary migratetype, then the pageblock order), the migratetype a
//! freed block is cached under, the per-`Pcp` table the free fast path
//! reads ([`FreeLists`]), and the refill's view of one list ([`PcpList`]).

use crate::config::Config;
use crate::engine::free_list::{ListHead, Placement};
use crate::engine::page::{PageMeta, PageState, PageTable};
use crate::pcp::magazine::Magazine;
use crate::units::{MigrateType, Order, MAX_NR_ORDERS, NR_MIGRATE_TYPES, NR_PCP_TYPES};

/// The highest order kept per migratetype (Linux `PAGE_ALLOC_COSTLY_ORDER`).
pub(crate) const COSTLY_ORDER: u8 = 3;
/// Lists for orders `0..=COSTLY_ORDER`, per ordinary migratetype.
pub(super) const NR_LOWORDER_LISTS: usize = NR_PCP_TYPES * (COSTLY_ORDER as usize + 1);
/// Plus two for the pageblock order: movable and the rest (Linux
/// `NR_PCP_THP`).
pub(crate) const NR_PCP_LISTS: usize = NR_LOWORDER_LISTS + 2;
/// Lists `0..NR_PCP_TYPES` are order 0: magazines. The rest are linked.
pub(crate) const NR_LINKED_LISTS: usize = NR_PCP_LISTS - NR_PCP_TYPES;

/// One per-CPU list, as the zone's refill sees it: where a batch goes.
pub(crate) enum PcpList<'a> {
    /// Order 0.
    Magazine(&'a mut Magazine),
    /// Orders above 0.
    Linked(&'a mut ListHead),
}

impl PcpList<'_> {
    /// Marks `idx` a per-CPU head of `order` and puts it at the back.
    #[inline]
    pub(crate) fn push_back(&mut self, pages: &PageTable, idx: u32, order: Order) {
        let cached = PageMeta::head(PageState::PcpHead, order);
        match self {
            PcpList::Magazine(m) => {
                pages.set(idx, cached);
                m.push_back(idx);
            }
            PcpList::Linked(l) => l.insert(pages, idx, cached, Placement::Tail),
        }
    }
}
/// Which list a block of `order` and `mt` goes on, if any.
#[inline]
pub(crate) fn pcp_index(order: Order, mt: MigrateType, pageblock: Order) -> Option<usize> {
    if order.get() <= COSTLY_ORDER {
        return Some(NR_PCP_TYPES * order.idx() + mt.idx());
    }
    (order == pageblock).then_some(NR_LOWORDER_LISTS + (mt == MigrateType::Movable) as usize)
}

/// The order of the blocks on list `index`.
pub(crate) fn list_order(index: usize, pageblock: Order) -> Order {
    if index < NR_LOWORDER_LISTS {
        Order::new((index / NR_PCP_TYPES) as u8).unwrap_or(Order::ZERO)
    } else {
        pageblock
    }
}

/// The list migratetype a block of pageblock type `mt` is freed to: CMA and
/// high-atomic pages go on the movable lists (Linux `free_frozen_pages`);
/// isolated ones must not be cached at all (`None`).
#[inline]
pub(crate) fn pcp_migratetype(mt: MigrateType) -> Option<MigrateType> {
    match mt {
        MigrateType::Isolate => None,
        MigrateType::HighAtomic | MigrateType::Cma => Some(MigrateType::Movable),
        other => Some(other),
    }
}

/// The list a freed block of `order` from a pageblock of type `block_mt`
/// goes on, if any.
#[inline]
pub(crate) fn pcp_free_index(
    order: Order,
    block_mt: MigrateType,
    pageblock: Order,
) -> Option<usize> {
    pcp_index(order, pcp_migratetype(block_mt)?, pageblock)
}

/// Per pageblock migratetype and order, the list a freed block goes on:
/// [`pcp_free_index`] with the placement policies' bypasses folded in
/// (`ZoneCore::caches`), computed once from the configuration, so the
/// free fast path decides with one table load.
#[derive(Clone, Debug)]
pub(crate) struct FreeLists([[u8; MAX_NR_ORDERS]; NR_MIGRATE_TYPES]);

/// A [`FreeLists`] entry for "not cached".
const NO_LIST: u8 = u8::MAX;

impl FreeLists {
    pub(crate) fn new(config: &Config) -> FreeLists {
        let pageblock = config.pageblock();
        let mut table = [[NO_LIST; MAX_NR_ORDERS]; NR_MIGRATE_TYPES];
        for (mt_index, row) in table.iter_mut().enumerate() {
            let Some(mt) = MigrateType::from_index(mt_index) else {
                continue;
            };
            for (o, entry) in row.iter_mut().enumerate() {
                let Some(order) = Order::new(o as u8) else {
                    continue;
                };
                let bypassed =
                    config.packing.bypasses_pcp(mt, order) || config.confinement.confines(mt);
                if let Some(index) = pcp_free_index(order, mt, pageblock).filter(|_| !bypassed) {
                    *entry = index as u8;
                }
            }
        }
        FreeLists(table)
    }

    /// The list a block of `order` freed from a pageblock of type `mt`
    /// goes on, if any.
    #[inline(always)]
    pub(crate) fn get(&self, mt: MigrateType, order: Order) -> Option<usize> {
        let index = self.0[mt.idx()][order.idx()];
        (index != NO_LIST).then_some(index as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_indices_round_trip() {
        let pb = Order::new(9).unwrap();
        for order in (0..=COSTLY_ORDER).filter_map(Order::new).chain([pb]) {
            for mt in [
                MigrateType::Unmovable,
                MigrateType::Movable,
                MigrateType::Reclaimable,
            ] {
                let i = pcp_index(order, mt, pb).unwrap();
                assert!(i < NR_PCP_LISTS);
                assert_eq!(list_order(i, pb), order);
            }
        }
        assert_eq!(
            pcp_index(Order::new(4).unwrap(), MigrateType::Movable, pb),
            None
        );
        assert_eq!(pcp_migratetype(MigrateType::Isolate), None);
        assert_eq!(
            pcp_migratetype(MigrateType::HighAtomic),
            Some(MigrateType::Movable)
        );
    }
}
