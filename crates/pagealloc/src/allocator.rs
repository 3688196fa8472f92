//! The allocator: zones of all nodes, zonelists, and the allocation and free
//! entry points (Linux `__alloc_pages` / `__free_pages`).

use alloc::vec::Vec;

use crate::buddy::FreePlacement;
use crate::config::{CmaSupport, Config};
use crate::error::{AllocError, BlockError, ConfigError};
use crate::fallback::FallbackEvent;
use crate::layout::{zone_spans, MemoryMap};
use crate::page::{PageMeta, PageState};
use crate::stats::VmStats;
use crate::units::{AllocFlags, MigrateType, NodeId, Order, Pfn, ZoneType, NR_ZONE_TYPES};
use crate::watermark::{setup_zone_watermarks, AllocMode};
use crate::zone::Zone;

/// A physical page allocator over one machine's memory map.
///
/// All state lives in this value: zones, free lists, counters and tunables.
/// Every method that changes state validates its arguments first, so a
/// failed call changes nothing.
#[derive(Clone, Debug)]
pub struct Allocator {
    pub(crate) config: Config,
    pub(crate) map: MemoryMap,
    /// Populated zones, sorted by start frame.
    pub(crate) zones: Vec<Zone>,
    /// Per node, zone indices in fallback order: the node's own zones from
    /// the highest down, then the nearest other node's, and so on.
    zonelists: Vec<NodeZonelists>,
    pub(crate) stats: VmStats,
}

impl Allocator {
    /// Builds the allocator with every usable page free.
    pub fn new(map: MemoryMap, config: Config) -> Result<Allocator, ConfigError> {
        config.validate()?;
        let spans = zone_spans(&map, &config)?;
        let mut zones: Vec<Zone> = spans.iter().map(|s| Zone::new(s, &config)).collect();
        for zone in zones.iter_mut() {
            for (start, end) in zone.present.clone() {
                zone.populate(start, end);
            }
        }
        setup_zone_watermarks(&mut zones, &config);
        let zonelists = build_zonelists(&zones);
        Ok(Allocator {
            config,
            map,
            zones,
            zonelists,
            stats: VmStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The memory map the allocator was built from.
    pub fn memory_map(&self) -> &MemoryMap {
        &self.map
    }

    /// The populated zones, by start frame.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The counters.
    pub fn stats(&self) -> &VmStats {
        &self.stats
    }

    /// Free pages in all zones (isolated ones excepted).
    pub fn nr_free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.nr_free_pages).sum()
    }

    /// Pages in allocated blocks in all zones.
    pub fn nr_allocated_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.nr_allocated).sum()
    }

    /// The index of the zone spanning `pfn`.
    #[inline]
    pub(crate) fn zone_index(&self, pfn: Pfn) -> Option<usize> {
        // Few zones: a linear scan beats a binary search.
        self.zones.iter().position(|z| z.spans(pfn))
    }

    /// The zone spanning `pfn`.
    pub fn zone_of(&self, pfn: Pfn) -> Option<&Zone> {
        self.zone_index(pfn).map(|i| &self.zones[i])
    }

    /// Allocates a block of `order` on the first node.
    pub fn alloc(&mut self, order: Order, flags: AllocFlags) -> Result<Pfn, AllocError> {
        let node = self.zonelists.first().map_or(NodeId(0), |z| z.node);
        self.alloc_on(node, order, flags)
    }

    /// Allocates a block of `order`, preferring `node` (Linux
    /// `__alloc_pages`): a fast pass at the low watermark, then a slow pass
    /// at the min watermark with whatever reserves the flags allow, then one
    /// more after giving back a high-atomic pageblock. There is no reclaim or
    /// compaction here: a caller that can reclaim does so and retries.
    pub fn alloc_on(
        &mut self,
        node: NodeId,
        order: Order,
        flags: AllocFlags,
    ) -> Result<Pfn, AllocError> {
        let max = self.config.max_order();
        if order > max {
            return Err(AllocError::InvalidOrder { order, max });
        }
        let highest = flags.highest_zone();
        let mt = flags.migratetype();
        let Some(zonelist) = self.zonelist_id(node, highest, flags) else {
            return Err(AllocError::NoZone);
        };
        let Some(&preferred) = self.zonelist(zonelist).first() else {
            return Err(AllocError::NoZone);
        };
        let mut base = AllocMode::empty();
        if mt == MigrateType::Movable && self.config.cma == CmaSupport::Enabled {
            base |= AllocMode::CMA;
        }
        if flags.contains(AllocFlags::NO_FALLBACK) {
            base |= AllocMode::NO_FALLBACK;
        }
        if flags.contains(AllocFlags::NO_WATERMARKS) {
            base |= AllocMode::NO_WATERMARKS;
        }
        let fast = base | self.nofragment(preferred);
        if let Some(pfn) = self.get_page_from_freelist(zonelist, order, mt, highest, fast) {
            return Ok(pfn);
        }
        let mut slow = base | AllocMode::WMARK_MIN;
        if flags.contains(AllocFlags::HIGH) {
            slow |= AllocMode::MIN_RESERVE;
        }
        if flags.contains(AllocFlags::ATOMIC) && !flags.contains(AllocFlags::NO_MEMALLOC) {
            slow |= AllocMode::NON_BLOCK;
            if order > Order::ZERO {
                slow |= AllocMode::HIGHATOMIC;
            }
        }
        if let Some(pfn) = self.get_page_from_freelist(zonelist, order, mt, highest, slow) {
            return Ok(pfn);
        }
        // Before failing, Linux gives high-atomic pageblocks back to the
        // ordinary types (after direct reclaim made no progress).
        if self.unreserve_highatomic(zonelist, mt) {
            if let Some(pfn) = self.get_page_from_freelist(zonelist, order, mt, highest, slow) {
                return Ok(pfn);
            }
        }
        self.stats.alloc_fail[order.idx()] += 1;
        Err(AllocError::NoMemory { order })
    }

    /// Which precomputed zonelist an allocation uses.
    #[inline]
    fn zonelist_id(
        &self,
        node: NodeId,
        highest: ZoneType,
        flags: AllocFlags,
    ) -> Option<ZonelistId> {
        let slot = self.zonelists.iter().position(|z| z.node == node)?;
        let scope = if flags.contains(AllocFlags::THIS_NODE) {
            NodeScope::ThisNode
        } else {
            NodeScope::AllNodes
        };
        Some(ZonelistId {
            slot,
            highest,
            scope,
        })
    }

    /// The zones an allocation may use, in the order it tries them.
    #[inline]
    fn zonelist(&self, id: ZonelistId) -> &[usize] {
        &self.zonelists[id.slot].lists[id.scope as usize][id.highest.idx()]
    }

    /// Linux `alloc_flags_nofragment`: when the preferred zone is Normal and
    /// a DMA32 zone could take the request instead, first try every zone
    /// without splitting another type's pageblock.
    fn nofragment(&self, preferred: usize) -> AllocMode {
        let zone = &self.zones[preferred];
        if zone.zone_type != ZoneType::Normal {
            return AllocMode::empty();
        }
        let multi_node = self.zonelists.len() > 1;
        let has_dma32 = self
            .zones
            .iter()
            .any(|z| z.node == zone.node && z.zone_type == ZoneType::Dma32);
        if multi_node && !has_dma32 {
            return AllocMode::empty();
        }
        AllocMode::NOFRAGMENT
    }

    /// One pass over the zonelist (Linux `get_page_from_freelist`), repeated
    /// without `NOFRAGMENT` if that found nothing.
    fn get_page_from_freelist(
        &mut self,
        zonelist: ZonelistId,
        order: Order,
        mt: MigrateType,
        highest: ZoneType,
        mut mode: AllocMode,
    ) -> Option<Pfn> {
        loop {
            for k in 0..self.zonelist(zonelist).len() {
                let zi = self.zonelist(zonelist)[k];
                let zone = &mut self.zones[zi];
                if !zone.watermark_ok(order, highest, mode) {
                    continue;
                }
                let Some((idx, event)) = zone.rmqueue(order, mt, mode) else {
                    continue;
                };
                zone.mark_allocated(idx, order, mt);
                let pfn = zone.pfn(idx);
                if mode.contains(AllocMode::HIGHATOMIC)
                    && zone.reserve_highatomic(pfn, order, self.config.highatomic)
                {
                    self.stats.highatomic_reserved += 1;
                }
                if let Some(event) = event {
                    self.stats.count_fallback(&event, self.config.pageblock());
                }
                self.stats.count_alloc(order);
                return Some(pfn);
            }
            if !mode.contains(AllocMode::NOFRAGMENT) {
                return None;
            }
            mode.remove(AllocMode::NOFRAGMENT);
        }
    }

    fn unreserve_highatomic(&mut self, zonelist: ZonelistId, mt: MigrateType) -> bool {
        let mut any = false;
        for k in 0..self.zonelist(zonelist).len() {
            let zi = self.zonelist(zonelist)[k];
            if self.zones[zi].unreserve_highatomic(mt, false) {
                self.stats.highatomic_unreserved += 1;
                any = true;
            }
        }
        any
    }

    /// Finds the allocated block `pfn`/`order`, or says precisely why it is
    /// not one. Changes nothing.
    pub(crate) fn find_allocated(
        &self,
        pfn: Pfn,
        order: Order,
    ) -> Result<(usize, PageMeta), BlockError> {
        let max = self.config.max_order();
        if order > max {
            return Err(BlockError::InvalidOrder { order, max });
        }
        let zi = self.zone_index(pfn).ok_or(BlockError::OutOfRange { pfn })?;
        let zone = &self.zones[zi];
        if !zone.is_present(pfn) {
            return Err(BlockError::InHole { pfn });
        }
        if !pfn.is_aligned(order) {
            return Err(BlockError::Misaligned { pfn, order });
        }
        let meta = zone.meta(pfn);
        match meta.state() {
            PageState::AllocHead if meta.order() == order => Ok((zi, meta)),
            PageState::AllocHead => Err(BlockError::WrongOrder {
                pfn,
                order,
                allocated: meta.order(),
            }),
            PageState::FreeHead | PageState::PcpHead => Err(BlockError::DoubleFree { pfn }),
            PageState::OfflineHead => Err(BlockError::NotAllocated { pfn }),
            PageState::Tail => match zone.containing_head(pfn).map(|(_, m)| m.state()) {
                Some(PageState::FreeHead | PageState::PcpHead) => {
                    Err(BlockError::DoubleFree { pfn })
                }
                _ => Err(BlockError::NotAllocated { pfn }),
            },
        }
    }

    /// Frees the allocated block `pfn`/`order` (Linux `__free_pages`).
    pub fn free(&mut self, pfn: Pfn, order: Order) -> Result<(), BlockError> {
        let (zi, _) = self.find_allocated(pfn, order)?;
        let zone = &mut self.zones[zi];
        let idx = zone.idx(pfn);
        zone.pages[idx as usize] = PageMeta::TAIL;
        zone.nr_allocated -= order.nr_pages().0;
        zone.free_block(pfn, order, FreePlacement::Auto);
        self.stats.count_free(order);
        Ok(())
    }

    /// Turns the allocated block `pfn`/`order` into `2^order` order-0
    /// allocations that can be freed one by one (Linux `split_page`).
    pub fn split_page(&mut self, pfn: Pfn, order: Order) -> Result<(), BlockError> {
        let (zi, meta) = self.find_allocated(pfn, order)?;
        let zone = &mut self.zones[zi];
        let idx = zone.idx(pfn) as usize;
        let page = PageMeta::allocated(Order::ZERO, meta.alloc_migratetype());
        zone.pages[idx..idx + order.nr_pages().0 as usize].fill(page);
        self.stats.split_pages += 1;
        Ok(())
    }

    /// The allocated block that starts at `pfn`, as its order and
    /// migratetype, or `None` if `pfn` does not start one.
    pub fn allocated_block(&self, pfn: Pfn) -> Option<(Order, MigrateType)> {
        let zone = self.zone_of(pfn)?;
        let meta = zone.meta(pfn);
        (meta.state() == PageState::AllocHead).then(|| (meta.order(), meta.alloc_migratetype()))
    }

    /// The migratetype of the pageblock holding `pfn`.
    pub fn pageblock_migratetype(&self, pfn: Pfn) -> Option<MigrateType> {
        self.zone_of(pfn).map(|z| z.block_migratetype(pfn))
    }
}

impl Zone {
    /// Takes a block of `order` for `mt` (Linux `rmqueue_buddy` +
    /// `__rmqueue`): the high-atomic reserve first for high-order atomic
    /// requests, CMA when it holds over half the free memory, the
    /// requested type, CMA, then fallback; last, order-0 atomic requests may
    /// use the high-atomic reserve rather than fail.
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
        if cma && self.nr_free_cma > self.nr_free_pages / 2 {
            if let Some(idx) = self.rmqueue_smallest(order, MigrateType::Cma) {
                return Some((idx, None));
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

/// Whether an allocation may leave its preferred node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum NodeScope {
    AllNodes = 0,
    ThisNode = 1,
}

/// Names one precomputed zonelist.
#[derive(Clone, Copy, Debug)]
struct ZonelistId {
    slot: usize,
    highest: ZoneType,
    scope: NodeScope,
}

/// One node's zonelists, precomputed per node scope and highest zone so the
/// allocation path never builds one.
#[derive(Clone, Debug)]
struct NodeZonelists {
    node: NodeId,
    /// `[scope][highest zone]` → zone indices in fallback order.
    lists: [[Vec<usize>; NR_ZONE_TYPES]; 2],
}

/// Zonelists per node: own zones highest first, then other nodes by
/// distance (here: by how far their ids are), each highest first (Linux's
/// node-ordered `ZONELIST_FALLBACK`).
fn build_zonelists(zones: &[Zone]) -> Vec<NodeZonelists> {
    let mut nodes: Vec<NodeId> = zones.iter().map(|z| z.node).collect();
    nodes.dedup();
    nodes
        .iter()
        .map(|&node| {
            let mut order: Vec<NodeId> = nodes.clone();
            order.sort_by_key(|n| (n.0.abs_diff(node.0), n.0));
            let full: Vec<usize> = order
                .iter()
                .flat_map(|&n| {
                    let mut own: Vec<usize> =
                        (0..zones.len()).filter(|&i| zones[i].node == n).collect();
                    own.sort_by_key(|&i| core::cmp::Reverse(zones[i].zone_type));
                    own
                })
                .collect();
            let select = |scope: NodeScope, highest: ZoneType| -> Vec<usize> {
                full.iter()
                    .copied()
                    .filter(|&i| zones[i].zone_type <= highest)
                    .filter(|&i| scope == NodeScope::AllNodes || zones[i].node == node)
                    .collect()
            };
            let lists = [NodeScope::AllNodes, NodeScope::ThisNode]
                .map(|scope| ZoneType::ALL.map(|t| select(scope, t)));
            NodeZonelists { node, lists }
        })
        .collect()
}
