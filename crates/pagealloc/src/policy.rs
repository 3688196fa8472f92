//! Policies: values the caller chooses, passed to the engine and compared
//! against Linux's defaults side by side. They live below both the
//! configuration and the services that carry them out, so neither imports
//! the other.

use crate::units::MigrateType;

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
}
