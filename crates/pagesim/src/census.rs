//! The pageblock census: one walk over every block of every zone that counts
//! free blocks per order and finds *mixed* pageblocks — pageblocks owned by
//! one migratetype that hold allocated pages of another. Those are what
//! anti-fragmentation tries to avoid: an unmovable page inside a movable
//! pageblock keeps that pageblock from ever becoming a free order-9 block
//! again, whatever reclaim or compaction does.
//!
//! The same walk measures the *unmovable spread*: how many pageblocks hold
//! unmovable or reclaimable allocated pages, against the fewest that could
//! hold them. Each such pageblock is lost to huge pages and to compaction.
//!
//! The walk uses [`pagealloc::Zone::blocks`], which visits block heads only,
//! so it costs one step per free or allocated block, not one per page. A
//! replay, which takes a hundred censuses, keeps the allocated pages per
//! pageblock as it goes instead and hands them to [`take_with`].

use pagealloc::report::ContigInfo;
use pagealloc::{Allocator, MigrateType, Order, PageState, Pfn, Zone};
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

/// Mixed pageblocks, by kind. A pageblock with several kinds of foreign
/// pages counts once in `total` and once in each kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize)]
pub struct MixedPageblocks {
    /// Pageblocks holding allocated pages of a type other than the owner's.
    pub total: u64,
    /// Movable pageblocks holding unmovable or reclaimable pages.
    pub unmovable_in_movable: u64,
    /// Unmovable or reclaimable pageblocks holding movable pages.
    pub movable_in_unmovable: u64,
    /// Unmovable pageblocks holding reclaimable pages, or the reverse.
    pub unmovable_reclaimable: u64,
}

/// How widely unmovable and reclaimable allocated pages are spread over
/// pageblocks. Serialised with a computed `ratio` field.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct UnmovableSpread {
    /// Pageblocks holding at least one allocated unmovable or reclaimable
    /// page, whatever their own type.
    pub pageblocks: u64,
    /// Allocated unmovable and reclaimable pages.
    pub pages: u64,
    /// The fewest pageblocks that could hold those pages: `pages` / pages
    /// per pageblock, rounded up.
    pub min_pageblocks: u64,
}

impl UnmovableSpread {
    /// `pageblocks / min_pageblocks`: 1.0 is perfectly packed; `None` when
    /// there is no such page.
    pub fn ratio(&self) -> Option<f64> {
        (self.min_pageblocks > 0).then(|| self.pageblocks as f64 / self.min_pageblocks as f64)
    }

    /// The ratio with two decimals, `-` when there is no such page.
    pub fn ratio_text(&self) -> String {
        self.ratio()
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
    }
}

impl Serialize for UnmovableSpread {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("UnmovableSpread", 4)?;
        st.serialize_field("pageblocks", &self.pageblocks)?;
        st.serialize_field("min_pageblocks", &self.min_pageblocks)?;
        st.serialize_field("pages", &self.pages)?;
        st.serialize_field("ratio", &self.ratio())?;
        st.end()
    }
}

/// What one census found.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Census {
    /// Free pages, all zones.
    pub free_pages: u64,
    /// Free blocks per order, all zones.
    pub free_blocks: Vec<u64>,
    /// Mixed pageblocks, all zones.
    pub mixed: MixedPageblocks,
    /// Pageblocks, all zones.
    pub pageblocks: u64,
    /// Unmovable and reclaimable pages over pageblocks, all zones.
    pub unmovable_spread: UnmovableSpread,
}

impl Census {
    /// The unusable free space index at `order` over all zones together, in
    /// thousandths (Linux `unusable_free_index`): the share of free memory
    /// in blocks too small for `order`.
    pub fn unusable_index(&self, order: Order) -> i32 {
        ContigInfo::new(&self.free_blocks, order).unusable_index(order)
    }

    /// Free blocks of `order` or larger.
    pub fn free_blocks_at_least(&self, order: Order) -> u64 {
        self.free_blocks.iter().skip(order.get() as usize).sum()
    }
}

/// Memory reused between censuses so a census allocates nothing.
#[derive(Default)]
pub struct Scratch {
    masks: Vec<u8>,
}

/// Bit of `mt` in a pageblock's mask of allocated types.
fn bit(mt: MigrateType) -> u8 {
    1 << mt.idx()
}

const UNMOVABLE: u8 = 1 << MigrateType::Unmovable as u8;
const MOVABLE: u8 = 1 << MigrateType::Movable as u8;
const RECLAIMABLE: u8 = 1 << MigrateType::Reclaimable as u8;

/// Regions of `region_pages` pages (aligned in frame numbers, across
/// zones) whose every present page is free, on the buddy lists or held by
/// the region allocator (seed 000), and the regions with any present page.
/// Pages on per-CPU lists are not free here. Read without the locks:
/// exact when the allocator is quiescent, as between replay batches.
pub fn fully_free_regions(allocator: &Allocator, region_pages: u64) -> (u64, u64) {
    let mut regions: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
    for z in allocator.zones() {
        for b in z.blocks() {
            let nr = b.order.nr_pages().0;
            let free = matches!(b.state, PageState::FreeHead | PageState::HeldHead);
            // A block never crosses a region of at least its size; count
            // page by page only in the rare case it does (tiny regions).
            let mut pfn = b.pfn.0;
            let end = pfn + nr;
            while pfn < end {
                let r = pfn / region_pages;
                let upto = ((r + 1) * region_pages).min(end);
                let e = regions.entry(r).or_default();
                e.1 += upto - pfn;
                if free {
                    e.0 += upto - pfn;
                }
                pfn = upto;
            }
        }
    }
    let total = regions.len() as u64;
    let free = regions.values().filter(|(f, p)| f == p).count() as u64;
    (free, total)
}

/// Takes a census of `allocator`, walking every block of every zone.
pub fn take(allocator: &Allocator, scratch: &mut Scratch) -> Census {
    let pb = allocator.config().pageblock();
    take_with(allocator, scratch, &mut |_, zone, masks| {
        walk_masks(zone, pb, masks)
    })
}

/// Fills `masks` (one per pageblock the zone spans, from the one holding
/// its first frame) with the bits of the types its allocated blocks were
/// allocated as, walking every block; returns the zone's allocated
/// unmovable and reclaimable pages.
fn walk_masks(zone: &Zone, pb: Order, masks: &mut [u8]) -> u64 {
    let base = zone.start_pfn().0 >> pb.get();
    let mut pages = 0;
    for block in zone.blocks() {
        let (PageState::AllocHead, Some(mt)) = (block.state, block.alloc_migratetype) else {
            continue;
        };
        if matches!(mt, MigrateType::Unmovable | MigrateType::Reclaimable) {
            pages += block.order.nr_pages().0;
        }
        let first = ((block.pfn.0 >> pb.get()) - base) as usize;
        if block.order < pb {
            // Most blocks: inside one pageblock.
            if let Some(m) = masks.get_mut(first) {
                *m |= bit(mt);
            }
            continue;
        }
        let nr = (block.order.nr_pages().0 >> pb.get()) as usize;
        let end = (first + nr).min(masks.len());
        for m in masks.get_mut(first..end).into_iter().flatten() {
            *m |= bit(mt);
        }
    }
    pages
}

/// A census whose allocated types per pageblock come from `masks`: called
/// with each zone's index, the zone and its pageblocks' masks (zeroed, one
/// per pageblock it spans, from the one holding its first frame), it sets
/// the bit of every type allocated in each (`1 << mt.idx()`) and returns
/// the zone's allocated unmovable and reclaimable pages. [`take`] walks
/// the blocks for it; a replay keeps the counts as it goes
/// (`replay::usage`).
pub fn take_with(
    allocator: &Allocator,
    scratch: &mut Scratch,
    masks: &mut dyn FnMut(usize, &Zone, &mut [u8]) -> u64,
) -> Census {
    let pb = allocator.config().pageblock();
    let nr_orders = allocator.config().nr_orders as usize;
    let mut free_blocks = vec![0u64; nr_orders];
    let mut mixed = MixedPageblocks::default();
    let mut pageblocks = 0;
    let mut spread = UnmovableSpread::default();
    for (zi, zone) in allocator.zones().iter().enumerate() {
        for (o, n) in free_blocks.iter_mut().enumerate() {
            let order = Order::new(o as u8).unwrap_or(Order::ZERO);
            *n += zone.nr_free_blocks_of_order(order);
        }
        let base = zone.start_pfn().0 >> pb.get();
        let last = (zone.end_pfn().0 - 1) >> pb.get();
        let count = (last - base + 1) as usize;
        pageblocks += count as u64;
        scratch.masks.clear();
        scratch.masks.resize(count, 0);
        spread.pages += masks(zi, zone, &mut scratch.masks);
        for (i, &mask) in scratch.masks.iter().enumerate() {
            if mask == 0 {
                continue;
            }
            spread.pageblocks += u64::from(mask & (UNMOVABLE | RECLAIMABLE) != 0);
            let pfn = Pfn(((base + i as u64) << pb.get()).max(zone.start_pfn().0));
            let Some(owner) = zone.block_migratetype(pfn) else {
                continue;
            };
            let foreign = mask & !bit(owner);
            if foreign == 0 {
                continue;
            }
            let counted = match owner {
                MigrateType::Movable => {
                    mixed.unmovable_in_movable +=
                        u64::from(foreign & (UNMOVABLE | RECLAIMABLE) != 0);
                    true
                }
                MigrateType::Unmovable | MigrateType::Reclaimable => {
                    mixed.movable_in_unmovable += u64::from(foreign & MOVABLE != 0);
                    mixed.unmovable_reclaimable +=
                        u64::from(foreign & (UNMOVABLE | RECLAIMABLE) != 0);
                    true
                }
                // High-atomic, CMA and isolated pageblocks hold other types
                // by design.
                _ => false,
            };
            mixed.total += u64::from(counted);
        }
    }
    spread.min_pageblocks = spread.pages.div_ceil(pb.nr_pages().0);
    Census {
        free_pages: allocator.nr_free_pages(),
        free_blocks,
        mixed,
        pageblocks,
        unmovable_spread: spread,
    }
}

/// How many distinct pageblocks the blocks `(pfn, order)` touch.
pub fn distinct_pageblocks(blocks: impl Iterator<Item = (Pfn, Order)>, pageblock: Order) -> u64 {
    let mut ids: Vec<u64> = Vec::new();
    for (pfn, order) in blocks {
        let first = pfn.0 >> pageblock.get();
        let nr = (order.nr_pages().0 >> pageblock.get()).max(1);
        ids.extend(first..first + nr);
    }
    ids.sort_unstable();
    ids.dedup();
    ids.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use pagealloc::{AllocFlags, Config, MemoryMap, PageCount, ZoneBounds};

    fn small() -> Allocator {
        let map = MemoryMap::contiguous(Pfn(0), PageCount(8 * 512)).unwrap();
        let config = Config {
            zone_bounds: ZoneBounds::NORMAL_ONLY,
            ..Config::default()
        };
        Allocator::new(map, config).unwrap()
    }

    #[test]
    fn empty_machine_has_no_mixed_pageblocks() {
        let a = small();
        let c = take(&a, &mut Scratch::default());
        assert_eq!(c.mixed, MixedPageblocks::default());
        assert_eq!(c.pageblocks, 8);
        assert_eq!(c.free_pages, 8 * 512);
        assert_eq!(c.free_blocks[10], 4);
        assert_eq!(c.unusable_index(Order::new(9).unwrap()), 0);
        assert_eq!(c.unmovable_spread, UnmovableSpread::default());
        assert_eq!(c.unmovable_spread.ratio(), None);
    }

    #[test]
    fn unmovable_spread_counts_pageblocks_against_the_minimum() {
        let a = small();
        let pb = a.config().pageblock();
        // One unmovable page in each of three pageblocks (a huge block
        // each, split), one reclaimable page, and movable pages that do
        // not count.
        let mut unmovable = Vec::new();
        for _ in 0..3 {
            let p = a.alloc(pb, AllocFlags::KERNEL).unwrap();
            a.split_page(p, pb).unwrap();
            unmovable.push(p);
            for k in 1..pb.nr_pages().0 {
                a.free(Pfn(p.0 + k), Order::ZERO).unwrap();
            }
        }
        a.alloc(Order::new(2).unwrap(), AllocFlags::KERNEL_RECLAIMABLE)
            .unwrap();
        a.alloc(Order::new(3).unwrap(), AllocFlags::HIGHUSER_MOVABLE)
            .unwrap();
        let c = take(&a, &mut Scratch::default());
        let s = c.unmovable_spread;
        assert_eq!(s.pages, 3 + 4);
        assert_eq!(s.min_pageblocks, 1);
        assert_eq!(s.pageblocks, 4);
        assert_eq!(s.ratio(), Some(4.0));
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"pageblocks": 4, "min_pageblocks": 1, "pages": 7, "ratio": 4.0})
        );
    }

    #[test]
    fn a_stolen_page_makes_a_mixed_pageblock() {
        let a = small();
        // Fill memory with movable pages, free one, then take it unmovable:
        // with no free unmovable block, the unmovable page is stolen from a
        // movable pageblock that stays movable (too few free pages to claim).
        let mut pages = Vec::new();
        while let Ok(p) = a.alloc(Order::ZERO, AllocFlags::MOVABLE | AllocFlags::NO_WATERMARKS) {
            pages.push(p);
        }
        let victim = pages[1000];
        a.free(victim, Order::ZERO).unwrap();
        let got = a
            .alloc(Order::ZERO, AllocFlags::KERNEL | AllocFlags::NO_WATERMARKS)
            .unwrap();
        assert_eq!(got, victim);
        let c = take(&a, &mut Scratch::default());
        assert_eq!(c.mixed.total, 1);
        assert_eq!(c.mixed.unmovable_in_movable, 1);
        assert_eq!(
            distinct_pageblocks([(victim, Order::ZERO)].into_iter(), a.config().pageblock()),
            1
        );
    }
}
