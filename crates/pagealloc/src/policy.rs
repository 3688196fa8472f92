//! Policies: values the caller chooses, passed to the engine and compared
//! against Linux's defaults side by side. They live below both the
//! configuration and the services that carry them out, so neither imports
//! the other.

use crate::units::{MigrateType, Order};

/// The largest order [`Packing::SmallOrders`] packs: Linux's
/// `PAGE_ALLOC_COSTLY_ORDER`, the largest order the kernel treats as cheap
/// (slab's order-1..3 pages, network buffers of order 3), and the largest the
/// per-CPU lists cache per migratetype.
pub const PACK_MAX_SMALL_ORDER: u8 = 3;

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
/// against Linux's default side by side in `pagesim`). A packed allocation
/// takes its block from the free blocks of pageblocks its migratetype
/// already owns, fullest pageblock first, before anything else; only when
/// those have none does it claim a whole free pageblock.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Packing {
    /// Linux's placement.
    Off,
    /// Every unmovable order-0 allocation is packed first.
    Unmovable,
    /// Every unmovable and reclaimable order-0 allocation is packed first.
    UnmovableAndReclaimable,
    /// Every unmovable and reclaimable allocation of order 0 up to
    /// [`PACK_MAX_SMALL_ORDER`] is packed first: long-lived kernel memory
    /// is often of order 1-3 (slab pages, network buffers), and leaving
    /// those to Linux's placement spreads them as order-0 pages would be.
    /// Their blocks also bypass the per-CPU lists (see
    /// [`Packing::bypasses_pcp`]), and with a migrator at hand a movable
    /// pageblock is emptied for them when none is free (see
    /// [`Packing::evacuates_for`]).
    SmallOrders,
}

impl Packing {
    /// Whether order-0 allocations of `mt` are packed.
    pub fn packs(self, mt: MigrateType) -> bool {
        match self {
            Packing::Off => false,
            Packing::Unmovable => mt == MigrateType::Unmovable,
            Packing::UnmovableAndReclaimable | Packing::SmallOrders => {
                matches!(mt, MigrateType::Unmovable | MigrateType::Reclaimable)
            }
        }
    }

    /// The largest order packed (for the types [`Packing::packs`] names).
    pub fn max_order(self) -> Order {
        match self {
            Packing::SmallOrders => Order::new(PACK_MAX_SMALL_ORDER).unwrap_or(Order::ZERO),
            _ => Order::ZERO,
        }
    }

    /// Whether allocations of `order` of `mt` are packed.
    #[inline]
    pub fn packs_order(self, mt: MigrateType, order: Order) -> bool {
        order <= self.max_order() && self.packs(mt)
    }

    /// Whether blocks of `order` of `mt` (in pageblocks of that type) are
    /// allocated and freed without the per-CPU lists, under the zone lock:
    /// under [`Packing::SmallOrders`], the types and orders it packs. A
    /// per-CPU list hides free pages from packing twice over: a refill
    /// takes a batch the CPU may hold unused for long, and freed pages wait
    /// on the freeing CPU's list, where neither another CPU's refill nor
    /// the fullest-first choice sees them, so a refill finds the type's
    /// pageblocks short and claims a new one. The cost is a zone-lock round
    /// per such allocation and free (in the kernel traces, unmovable and
    /// reclaimable allocations are about 5% of all). The order-0 variants
    /// keep Linux's per-CPU lists, as seed 001 did.
    #[inline]
    pub fn bypasses_pcp(self, mt: MigrateType, order: Order) -> bool {
        self == Packing::SmallOrders && self.packs_order(mt, order)
    }

    /// Whether a packed request of `order` of `mt` that finds neither room
    /// in its type's pageblocks nor a wholly free pageblock to claim may,
    /// with a migrator at hand
    /// ([`Allocator::alloc_confining`](crate::Allocator::alloc_confining),
    /// the first attempt of
    /// [`Allocator::alloc_compacting`](crate::Allocator::alloc_compacting)),
    /// have a movable pageblock emptied by migration and claim it before
    /// Linux's fallback scatters it among movable pages: under
    /// [`Packing::SmallOrders`], the types and orders it packs (the
    /// allocator adds two conditions of its own: an order below the
    /// pageblock order, which packing serves, and a request that may
    /// sleep, not [`AllocFlags::ATOMIC`](crate::AllocFlags::ATOMIC)). Packing
    /// alone cannot keep kernel memory together once no pageblock is free
    /// (a machine whose free memory is page cache's leftovers): Linux's
    /// fallback then puts the kernel's pages in movable pageblocks, and
    /// movable requests claim the emptier kernel pageblocks back, so the
    /// spread grows with the run (see docs/pagesim.md).
    #[inline]
    pub fn evacuates_for(self, mt: MigrateType, order: Order) -> bool {
        self == Packing::SmallOrders && self.packs_order(mt, order)
    }
}

/// Whether unmovable and reclaimable memory is confined to the low end of
/// each zone (after Contiguitas, Zhao et al., ISCA 2023): a policy compared
/// against Linux's placement side by side in `pagesim`.
///
/// With [`Confinement::LowEnd`], the confined area is the set of unmovable
/// and reclaimable pageblocks. When an unmovable or reclaimable request
/// finds no free block on its own lists, it claims the *lowest* wholly free
/// pageblock of the zone (found by a scan upward from the zone's start, only
/// on a claim), next to the area, before Linux's fallback is allowed to
/// claim or steal anywhere else; and a pageblock of the area that becomes
/// wholly free goes back to movable at once, so the area shrinks as it
/// empties. Movable requests that must break a whole free pageblock take
/// the highest one, from its top, so movable memory grows down from the top
/// of the zone and leaves the low pageblocks whole for the area. The rest
/// is Linux's: small movable blocks come from the head of the movable lists
/// wherever they lie, and Linux's fallback (a movable request into an
/// unmovable or reclaimable pageblock, or the reverse) remains the last
/// resort, counted as every fallback is. Confined types bypass the per-CPU
/// lists, for the reasons given at [`Packing::bypasses_pcp`]: a page
/// waiting on a CPU's list keeps its pageblock from emptying, and hides it
/// from other CPUs' requests, which then claim another pageblock.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Confinement {
    /// Linux's placement.
    #[default]
    Off,
    /// Unmovable and reclaimable memory at the low end of each zone,
    /// movable memory from the top.
    LowEnd,
}

impl Confinement {
    /// Whether allocations of `mt` are confined.
    #[inline]
    pub fn confines(self, mt: MigrateType) -> bool {
        self == Confinement::LowEnd
            && matches!(mt, MigrateType::Unmovable | MigrateType::Reclaimable)
    }

    /// Whether movable allocations keep away from the confined area.
    #[inline]
    pub fn steers_movable(self, mt: MigrateType) -> bool {
        self == Confinement::LowEnd && mt == MigrateType::Movable
    }
}

/// Free page reporting (seed 002): which free blocks are reported to the
/// host, and how much of each free list one pass handles. The defaults are
/// Linux's (`mm/page_reporting.c`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReportingPolicy {
    /// The smallest order reported (`page_reporting_order`); `None` is the
    /// pageblock order, Linux's default.
    pub order: Option<u8>,
    /// Blocks per batch handed to the sink (`PAGE_REPORTING_CAPACITY`, 32).
    pub capacity: u16,
    /// A pass handles about `1/budget_fraction` of each free list: its
    /// budget is `ceil(nr_free / (capacity * budget_fraction))` batches
    /// (Linux: 16, so an idle machine is reported in about 16 passes).
    pub budget_fraction: u16,
}

impl Default for ReportingPolicy {
    fn default() -> ReportingPolicy {
        ReportingPolicy {
            order: None,
            capacity: REPORT_CAPACITY,
            budget_fraction: REPORT_BUDGET_FRACTION,
        }
    }
}

/// Linux `PAGE_REPORTING_CAPACITY`: blocks per report.
pub const REPORT_CAPACITY: u16 = 32;
/// Linux's divisor of a free list per pass (`PAGE_REPORTING_CAPACITY * 16`).
pub const REPORT_BUDGET_FRACTION: u16 = 16;
/// The most blocks one batch may hold: a sink receives the batch as one
/// slice, and its memory is the allocator's (kept across passes).
pub const MAX_REPORT_CAPACITY: u16 = 1024;

/// Memory regions (seed 000): the zone is cut into fixed, aligned regions;
/// the free lists prefer the lowest region and a region whose every page is
/// free leaves them for the region allocator until it is needed again
/// (docs/regions.md).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RegionPolicy {
    /// Bytes per region: a power of two and at least the largest buddy
    /// block (so every block lies in one region). Regions are aligned to
    /// their size in physical memory; a zone edge inside one makes a
    /// partial region.
    pub size_bytes: u64,
    /// Whether a request may take a wholly free pageblock of another type
    /// from a lower region than its own type's free blocks.
    pub mixing: RegionMixing,
}

/// When a request's own free blocks lie in a higher region than a wholly
/// free pageblock of another type (or it has none), whether it takes that
/// pageblock (retyping it, which costs no fragmentation: the pageblock is
/// empty) before its own blocks or a held region. The trade between
/// packing live memory into the fewest regions and keeping types in
/// different regions (the series' aim: a region holding unmovable pages
/// cannot be emptied by migration). Either way a type whose lists are
/// empty draws a held region of its own before any fallback.
/// docs/regions.md has the figures of both.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum RegionMixing {
    /// Every request takes such pageblocks of any ordinary type: the
    /// fewest regions in use, at the price of unmovable pages in regions
    /// that also hold movable ones.
    #[default]
    Packed,
    /// Movable requests take such pageblocks of any ordinary type;
    /// unmovable and reclaimable requests only each other's, never a
    /// movable pageblock: they keep out of the regions movable memory
    /// uses, and draw regions of their own instead.
    Segregated,
}

/// The series' region size: 512 MiB.
pub const DEFAULT_REGION_BYTES: u64 = 512 << 20;

impl Default for RegionPolicy {
    fn default() -> RegionPolicy {
        RegionPolicy {
            size_bytes: DEFAULT_REGION_BYTES,
            mixing: RegionMixing::Packed,
        }
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

    #[test]
    fn small_orders_cover_orders_up_to_costly() {
        let three = Order::new(3).unwrap();
        let four = Order::new(4).unwrap();
        assert!(Packing::SmallOrders.packs_order(MigrateType::Reclaimable, three));
        assert!(!Packing::SmallOrders.packs_order(MigrateType::Unmovable, four));
        assert!(!Packing::SmallOrders.packs_order(MigrateType::Movable, Order::ZERO));
        assert!(!Packing::Unmovable.packs_order(MigrateType::Unmovable, Order::new(1).unwrap()));
        assert!(Packing::Unmovable.packs_order(MigrateType::Unmovable, Order::ZERO));
    }

    #[test]
    fn confinement_selects_types() {
        assert!(!Confinement::Off.confines(MigrateType::Unmovable));
        assert!(Confinement::LowEnd.confines(MigrateType::Reclaimable));
        assert!(!Confinement::LowEnd.confines(MigrateType::Movable));
        assert!(Confinement::LowEnd.steers_movable(MigrateType::Movable));
        assert!(!Confinement::Off.steers_movable(MigrateType::Movable));
    }
}
