//! Configuration: geometry, zone boundaries, watermark tunables and policy
//! switches. Every tunable lives here, in the allocator value; there are no
//! globals. Defaults are Linux 6.x on x86-64.

use alloc::vec::Vec;

use crate::engine::page::MAX_ZONE_PAGES;
use crate::error::{ConfigError, ReportingProblem};
use crate::policy::{Confinement, Packing, RegionPolicy, ReportingPolicy, MAX_REPORT_CAPACITY};
use crate::units::{AllocFlags, Order, PageCount, Pfn, MAX_NR_ORDERS, NR_ZONE_TYPES};

/// Bytes in a KiB, for `min_free_kbytes` arithmetic.
const KIB: u64 = 1024;
/// 16 MiB: the top of x86's ISA DMA zone.
pub const X86_DMA_END_BYTES: u64 = 16 << 20;
/// 4 GiB: the top of x86-64's DMA32 zone.
pub const X86_DMA32_END_BYTES: u64 = 4 << 30;

/// How the zone's minimum free memory is set (Linux `min_free_kbytes`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MinFree {
    /// `int_sqrt(lowmem_kbytes * 16)` clamped to 128 KiB..=256 MiB
    /// (mm/page_alloc.c `calculate_min_free_kbytes`).
    Sqrt,
    /// The larger of [`MinFree::Sqrt`] and transparent huge pages' recommended
    /// value: 2 + 3 * 3 pageblocks per populated zone up to Normal, at most 5%
    /// of lowmem (mm/khugepaged.c `set_recommended_min_free_kbytes`). What a
    /// THP-enabled kernel runs with, including the one the sample traces came
    /// from.
    ThpRecommended,
    /// An explicit value in KiB, as written to `/proc/sys/vm/min_free_kbytes`.
    Kbytes(u64),
}

/// Whether the kernel being modelled has CMA, which decides if
/// `/proc/pagetypeinfo` prints a CMA row (Linux prints it only with
/// `CONFIG_CMA`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CmaSupport {
    /// No CMA: no CMA row, no CMA pageblocks.
    Disabled,
    /// CMA configured.
    Enabled,
}

/// Whether high-order atomic allocations may reserve pageblocks for later
/// ones (Linux `reserve_highatomic_pageblock`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HighAtomicReserve {
    /// Linux's rule: up to 1% of the zone plus one pageblock.
    Linux,
    /// Never reserve.
    Disabled,
}

/// Whether small-order pages go through per-CPU lists (seed 004).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PcpMode {
    /// Per-CPU lists for orders 0..=3 and the pageblock order, as Linux.
    Enabled,
    /// Every allocation and free takes the zone lock (Linux's boot
    /// pageset behaviour).
    Disabled,
}

/// How a per-CPU list's high mark moves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PcpHigh {
    /// Linux 6.7+: grow towards `high_max` while the CPU keeps refilling,
    /// shrink towards `high_min` when the zone runs low or frees pile up.
    AutoTune,
    /// Stay at `high_min` (Linux before 6.7).
    Fixed,
}

/// The physical address bounds of the low zones.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ZoneBounds {
    /// End of the DMA zone in bytes, or `None` for no DMA zone.
    pub dma_end_bytes: Option<u64>,
    /// End of the DMA32 zone in bytes, or `None` for no DMA32 zone.
    pub dma32_end_bytes: Option<u64>,
    /// Start of the Movable zone in bytes (Linux `movablecore=`-like), or
    /// `None` for no Movable zone.
    pub movable_start_bytes: Option<u64>,
}

impl ZoneBounds {
    /// x86-64: DMA below 16 MiB, DMA32 below 4 GiB, Normal above, no Movable.
    pub const X86_64: ZoneBounds = ZoneBounds {
        dma_end_bytes: Some(X86_DMA_END_BYTES),
        dma32_end_bytes: Some(X86_DMA32_END_BYTES),
        movable_start_bytes: None,
    };

    /// A single Normal zone covering everything.
    pub const NORMAL_ONLY: ZoneBounds = ZoneBounds {
        dma_end_bytes: None,
        dma32_end_bytes: None,
        movable_start_bytes: None,
    };
}

/// Allocator configuration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Config {
    /// Bytes per page: a power of two from 4 KiB to 1 MiB.
    pub page_size_bytes: u64,
    /// Number of buddy orders (Linux `NR_PAGE_ORDERS`): orders `0..nr_orders`.
    pub nr_orders: u8,
    /// Order of a pageblock, the unit of mobility grouping.
    pub pageblock_order: u8,
    /// Where the zones begin and end.
    pub zone_bounds: ZoneBounds,
    /// Minimum free memory, split over the zones by size.
    pub min_free: MinFree,
    /// Distance between watermarks in 1/10000 of the zone
    /// (`vm.watermark_scale_factor`, 1..=3000).
    pub watermark_scale_factor: u32,
    /// `vm.lowmem_reserve_ratio` per zone type: how much of a zone is kept
    /// from allocations that could have used a higher zone (0 = none).
    pub lowmem_reserve_ratio: [u32; NR_ZONE_TYPES],
    /// The high-atomic reserve rule.
    pub highatomic: HighAtomicReserve,
    /// CMA support in the modelled kernel.
    pub cma: CmaSupport,
    /// Number of CPUs, each with its own per-CPU lists (1..=4096).
    pub nr_cpus: u16,
    /// Whether per-CPU lists are used.
    pub pcp: PcpMode,
    /// How per-CPU high marks are tuned.
    pub pcp_high: PcpHigh,
    /// Which order-0 allocations are packed into owned pageblocks (seed
    /// 001); Linux's placement is [`Packing::Off`].
    pub packing: Packing,
    /// Whether unmovable and reclaimable memory is confined to the low end
    /// of each zone (after Contiguitas); Linux's placement is
    /// [`Confinement::Off`], the default.
    pub confinement: Confinement,
    /// CMA areas (needs [`CmaSupport::Enabled`]): their pageblocks are CMA
    /// from construction on, as a kernel's reserved CMA ranges are.
    pub cma_areas: Vec<CmaArea>,
    /// CMA areas declared by size and node, placed at construction after
    /// the fixed ones (numbered after them, in this order).
    pub cma_reservations: Vec<CmaReservation>,
    /// Free page reporting (seed 002): `None` reports nothing (and keeps
    /// no page marked); see [`crate::Allocator::report_pass`].
    pub reporting: Option<ReportingPolicy>,
    /// Memory regions and the region allocator (seed 000): `None` (the
    /// default) keeps Linux's free lists exactly as they are.
    pub regions: Option<RegionPolicy>,
}

/// A range of whole pageblocks set aside for CMA at construction: movable
/// allocations may use it, everything else keeps out, and
/// [`crate::Allocator::cma_alloc`] takes contiguous runs from it (Linux
/// `cma_init_reserved_mem`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CmaArea {
    /// First frame: pageblock-aligned.
    pub start: Pfn,
    /// Pages: a whole number of pageblocks.
    pub nr_pages: PageCount,
    /// Each bit of the area's allocation bitmap stands for `2^order_per_bit`
    /// pages, the granule of `cma_alloc` (at most the pageblock order).
    pub order_per_bit: u8,
}

impl CmaArea {
    /// An area of `nr_pages` from `start`, one bitmap bit per page.
    pub fn new(start: Pfn, nr_pages: PageCount) -> CmaArea {
        CmaArea {
            start,
            nr_pages,
            order_per_bit: 0,
        }
    }

    /// One past the last frame, if that is a frame number.
    pub fn end(&self) -> Option<Pfn> {
        self.start.0.checked_add(self.nr_pages.0).map(Pfn)
    }
}

/// A CMA area declared by size, alignment and node, placed by the
/// allocator at construction (Linux `cma_declare_contiguous_nid`): the
/// highest range of the node's memory with that alignment that lies in one
/// usable range of one zone and overlaps no other area.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CmaReservation {
    /// Pages: a whole number of pageblocks.
    pub nr_pages: PageCount,
    /// The area starts at a multiple of this many pages (a power of two;
    /// a pageblock at least, whatever is given).
    pub align: PageCount,
    /// The node whose memory holds it.
    pub node: crate::units::NodeId,
    /// As [`CmaArea::order_per_bit`].
    pub order_per_bit: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            page_size_bytes: 4096,
            nr_orders: 11,
            pageblock_order: 9,
            zone_bounds: ZoneBounds::X86_64,
            min_free: MinFree::ThpRecommended,
            watermark_scale_factor: 10,
            // mm/page_alloc.c sysctl_lowmem_reserve_ratio: DMA 256, DMA32 256,
            // Normal 32, Movable 0.
            lowmem_reserve_ratio: [256, 256, 32, 0],
            highatomic: HighAtomicReserve::Linux,
            cma: CmaSupport::Disabled,
            nr_cpus: 1,
            pcp: PcpMode::Enabled,
            pcp_high: PcpHigh::AutoTune,
            packing: Packing::Off,
            confinement: Confinement::Off,
            cma_areas: Vec::new(),
            cma_reservations: Vec::new(),
            reporting: None,
            regions: None,
        }
    }
}

/// The largest page size accepted.
const MAX_PAGE_SIZE_BYTES: u64 = 1 << 20;
/// The smallest page size accepted.
const MIN_PAGE_SIZE_BYTES: u64 = 4096;
/// The most CPUs a configuration may have.
pub const MAX_CPUS: u16 = 4096;
/// Linux's bounds on `vm.watermark_scale_factor`.
const WATERMARK_SCALE_RANGE: core::ops::RangeInclusive<u32> = 1..=3000;

impl Config {
    /// Checks the configuration on its own (the memory map is checked by the
    /// layout).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ps = self.page_size_bytes;
        if !ps.is_power_of_two() || !(MIN_PAGE_SIZE_BYTES..=MAX_PAGE_SIZE_BYTES).contains(&ps) {
            return Err(ConfigError::PageSize { bytes: ps });
        }
        if self.nr_orders == 0 || self.nr_orders as usize > MAX_NR_ORDERS {
            return Err(ConfigError::NrOrders {
                nr_orders: self.nr_orders,
                max: MAX_NR_ORDERS as u8,
            });
        }
        if self.pageblock_order >= self.nr_orders {
            return Err(ConfigError::PageblockOrder {
                pageblock_order: self.pageblock_order,
                max_order: self.nr_orders - 1,
            });
        }
        if !WATERMARK_SCALE_RANGE.contains(&self.watermark_scale_factor) {
            return Err(ConfigError::WatermarkScaleFactor {
                value: self.watermark_scale_factor,
            });
        }
        let b = self.zone_bounds;
        let bounds = [b.dma_end_bytes, b.dma32_end_bytes, b.movable_start_bytes];
        let mut prev = 0;
        for bytes in bounds.into_iter().flatten() {
            if bytes < prev || bytes % ps != 0 {
                return Err(ConfigError::ZoneBounds { bytes });
            }
            prev = bytes;
        }
        if !(1..=MAX_CPUS).contains(&self.nr_cpus) {
            return Err(ConfigError::NrCpus {
                nr_cpus: self.nr_cpus,
            });
        }
        if MAX_ZONE_PAGES >> self.max_order().get() == 0 {
            return Err(ConfigError::NrOrders {
                nr_orders: self.nr_orders,
                max: MAX_NR_ORDERS as u8,
            });
        }
        if let Some(r) = self.reporting {
            let max = self.nr_orders.saturating_sub(1);
            if r.order.is_some_and(|o| o > max) {
                return Err(ConfigError::Reporting(ReportingProblem::OrderAboveMax {
                    order: r.order.unwrap_or(0),
                    max,
                }));
            }
            if r.capacity == 0 || r.capacity > MAX_REPORT_CAPACITY {
                return Err(ConfigError::Reporting(ReportingProblem::Capacity {
                    capacity: r.capacity,
                    max: MAX_REPORT_CAPACITY,
                }));
            }
            if r.budget_fraction == 0 {
                return Err(ConfigError::Reporting(ReportingProblem::BudgetFraction));
            }
        }
        if let Some(r) = self.regions {
            let min = self.page_size_bytes << self.max_order().get();
            if !r.size_bytes.is_power_of_two() || r.size_bytes < min {
                return Err(ConfigError::RegionSize {
                    bytes: r.size_bytes,
                    min,
                });
            }
            if self.confinement != Confinement::Off {
                return Err(ConfigError::RegionsWithConfinement);
            }
        }
        Ok(())
    }

    /// `log2` of the pages in a region, if regions are on (valid configs).
    pub(crate) fn region_shift(&self) -> Option<u32> {
        let r = self.regions?;
        Some(r.size_bytes.trailing_zeros() - self.page_shift())
    }

    /// The largest order (Linux `MAX_PAGE_ORDER`).
    pub fn max_order(&self) -> Order {
        Order::new(self.nr_orders.saturating_sub(1)).unwrap_or(Order::LIMIT)
    }

    /// Whether a request of `order` with `flags` may have a movable
    /// pageblock emptied by migration for it, given a migrator
    /// ([`Allocator::alloc_confining`](crate::Allocator::alloc_confining),
    /// the first attempt of
    /// [`Allocator::alloc_compacting`](crate::Allocator::alloc_compacting)):
    /// one that may sleep (not [`AllocFlags::ATOMIC`]: a caller that
    /// cannot gets no migration, as it gets no direct compaction), and that
    /// confinement confines at most a pageblock large, or that small-order
    /// packing packs below the pageblock order (a packed request of the
    /// pageblock order takes a whole free pageblock through Linux's
    /// fallback, not through packing; [`Packing::evacuates_for`]).
    pub fn evacuates_for(&self, order: Order, flags: AllocFlags) -> bool {
        let (mt, pb) = (flags.migratetype(), self.pageblock_order);
        !flags.contains(AllocFlags::ATOMIC)
            && ((self.confinement.confines(mt) && order.get() <= pb)
                || (self.packing.evacuates_for(mt, order) && order.get() < pb))
    }

    /// Whether any request may have a pageblock emptied for it
    /// ([`Config::evacuates_for`]): under confinement or small-order
    /// packing.
    pub fn evacuates(&self) -> bool {
        self.confinement != Confinement::Off || self.packing == Packing::SmallOrders
    }

    /// The pageblock order as an [`Order`].
    pub fn pageblock(&self) -> Order {
        Order::new(self.pageblock_order).unwrap_or(Order::LIMIT)
    }

    /// Pages per pageblock.
    pub fn pageblock_nr_pages(&self) -> u64 {
        1 << self.pageblock_order
    }

    /// The smallest order free page reporting reports, if it is on.
    pub fn report_order(&self) -> Option<Order> {
        let r = self.reporting?;
        Order::new(r.order.unwrap_or(self.pageblock_order))
    }

    /// `log2(page size)`.
    pub fn page_shift(&self) -> u32 {
        self.page_size_bytes.trailing_zeros()
    }

    /// Pages in `kbytes` KiB (rounded down).
    pub(crate) fn kbytes_to_pages(&self, kbytes: u64) -> u64 {
        kbytes.saturating_mul(KIB) / self.page_size_bytes
    }

    /// KiB in `pages` pages.
    pub(crate) fn pages_to_kbytes(&self, pages: u64) -> u64 {
        pages.saturating_mul(self.page_size_bytes) / KIB
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_linux_like() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.max_order().get(), 10);
        assert_eq!(c.pageblock_nr_pages(), 512);
        assert_eq!(c.page_shift(), 12);
    }

    #[test]
    fn bad_geometry_is_refused() {
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(
            bad(|c| c.page_size_bytes = 5000),
            ConfigError::PageSize { bytes: 5000 }
        );
        assert_eq!(
            bad(|c| c.page_size_bytes = 2048),
            ConfigError::PageSize { bytes: 2048 }
        );
        assert_eq!(
            bad(|c| c.pageblock_order = 11),
            ConfigError::PageblockOrder {
                pageblock_order: 11,
                max_order: 10
            }
        );
        assert_eq!(
            bad(|c| c.nr_orders = 0),
            ConfigError::NrOrders {
                nr_orders: 0,
                max: 16
            }
        );
        assert_eq!(
            bad(|c| c.nr_orders = 17),
            ConfigError::NrOrders {
                nr_orders: 17,
                max: 16
            }
        );
        assert_eq!(
            bad(|c| c.watermark_scale_factor = 0),
            ConfigError::WatermarkScaleFactor { value: 0 }
        );
        assert_eq!(
            bad(|c| c.zone_bounds.dma_end_bytes = Some(8 << 30)),
            ConfigError::ZoneBounds { bytes: 4 << 30 }
        );
        assert_eq!(
            bad(|c| c.regions = Some(RegionPolicy {
                size_bytes: 2 << 20,
                ..Default::default()
            })),
            ConfigError::RegionSize {
                bytes: 2 << 20,
                min: 4 << 20
            }
        );
        assert_eq!(
            bad(|c| c.regions = Some(RegionPolicy {
                size_bytes: 96 << 20,
                ..Default::default()
            })),
            ConfigError::RegionSize {
                bytes: 96 << 20,
                min: 4 << 20
            }
        );
    }
}
