//! Why a configuration, a memory map, a CMA area or a reporting policy was
//! refused.

use core::fmt;

use crate::units::{NodeId, PageCount, Pfn, ZoneType};

/// Why a configuration or memory map was refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ConfigError {
    /// The page size is not a power of two between 4 KiB and 1 MiB.
    PageSize {
        /// The size given.
        bytes: u64,
    },
    /// The number of orders is zero or above the supported maximum.
    NrOrders {
        /// The number given.
        nr_orders: u8,
        /// The most supported.
        max: u8,
    },
    /// The pageblock order is above the largest buddy order.
    PageblockOrder {
        /// The order given.
        pageblock_order: u8,
        /// The largest buddy order.
        max_order: u8,
    },
    /// `watermark_scale_factor` is outside Linux's 1..=3000.
    WatermarkScaleFactor {
        /// The value given.
        value: u32,
    },
    /// A zone bound is not page-aligned or below the one before it.
    ZoneBounds {
        /// The offending bound in bytes.
        bytes: u64,
    },
    /// The number of CPUs is zero or above the supported maximum.
    NrCpus {
        /// The number given.
        nr_cpus: u16,
    },
    /// The memory map has no usable range.
    EmptyMap,
    /// The free page reporting policy cannot be used.
    Reporting(ReportingProblem),
    /// The region size (seed 000) is not a power of two of at least the
    /// largest buddy block.
    RegionSize {
        /// The size given, in bytes.
        bytes: u64,
        /// The smallest size allowed: the largest buddy block, in bytes.
        min: u64,
    },
    /// Memory regions (seed 000) and confinement were both asked for: each
    /// decides where unmovable memory goes (the lowest region first, or the
    /// low end of the zone), and the two together keep neither's
    /// invariant, so one allocator takes one of them.
    RegionsWithConfinement,
    /// A CMA area cannot be set up.
    CmaArea {
        /// Its first frame.
        start: Pfn,
        /// Its size.
        nr_pages: PageCount,
        /// What is wrong with it.
        problem: CmaAreaProblem,
    },
    /// A range is empty or reversed.
    EmptyRange {
        /// Its first frame.
        start: Pfn,
        /// Its end (exclusive).
        end: Pfn,
    },
    /// Two ranges overlap.
    OverlappingRanges {
        /// The first range's start.
        first_start: Pfn,
        /// The second range's start, inside the first range.
        second_start: Pfn,
    },
    /// A zone spans more pages than a page record can link.
    ZoneTooLarge {
        /// The zone's node.
        node: NodeId,
        /// The zone.
        zone: ZoneType,
        /// Pages it would span.
        nr_pages: u64,
        /// The most a zone may span.
        max: u64,
    },
    /// A range ends beyond the largest frame number, or beyond the last
    /// frame whose physical address fits in 64 bits.
    PfnOverflow {
        /// The range's start.
        start: Pfn,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::PageSize { bytes } => {
                write!(f, "page size {bytes} is not a power of two from 4096 to 1048576 bytes")
            }
            ConfigError::NrOrders { nr_orders, max } => {
                write!(f, "{nr_orders} orders requested; 1 to {max} are supported")
            }
            ConfigError::PageblockOrder {
                pageblock_order,
                max_order,
            } => write!(
                f,
                "pageblock order {pageblock_order} exceeds the largest buddy order {max_order}"
            ),
            ConfigError::WatermarkScaleFactor { value } => {
                write!(f, "watermark_scale_factor {value} is outside 1..=3000")
            }
            ConfigError::ZoneBounds { bytes } => write!(
                f,
                "zone bound {bytes:#x} is not page-aligned or lies below the previous bound"
            ),
            ConfigError::NrCpus { nr_cpus } => write!(f, "{nr_cpus} CPUs requested; 1 to 4096 are supported"),
            ConfigError::EmptyMap => f.write_str("the memory map has no usable range"),
            ConfigError::Reporting(p) => write!(f, "free page reporting: {p}"),
            ConfigError::RegionSize { bytes, min } => write!(
                f,
                "region size {bytes} is not a power of two of at least the largest block ({min} bytes)"
            ),
            ConfigError::RegionsWithConfinement => f.write_str(
                "memory regions and confinement cannot be combined: choose one placement policy",
            ),
            ConfigError::CmaArea {
                start,
                nr_pages,
                problem,
            } => write!(
                f,
                "CMA area of {} pages at frame {start}: {}",
                nr_pages.0,
                match problem {
                    CmaAreaProblem::CmaDisabled => "CMA support is off",
                    CmaAreaProblem::Empty => "it is empty",
                    CmaAreaProblem::Misaligned => "not a whole number of aligned pageblocks",
                    CmaAreaProblem::OutsideZone => "not inside the usable memory of one zone",
                    CmaAreaProblem::Overlaps => "it overlaps an earlier area",
                    CmaAreaProblem::OrderPerBit => "its order per bit is above the pageblock order",
                    CmaAreaProblem::Alignment => "its alignment is not a power of two",
                    CmaAreaProblem::NoRoom => "no usable range of its node can hold it",
                }
            ),
            ConfigError::EmptyRange { start, end } => {
                write!(f, "memory range {start}..{end} is empty")
            }
            ConfigError::OverlappingRanges {
                first_start,
                second_start,
            } => write!(
                f,
                "memory range starting at {second_start} overlaps the range starting at {first_start}"
            ),
            ConfigError::ZoneTooLarge {
                node,
                zone,
                nr_pages,
                max,
            } => write!(
                f,
                "node {} zone {zone} would span {nr_pages} pages; a zone spans at most {max}",
                node.0
            ),
            ConfigError::PfnOverflow { start } => {
                write!(f, "memory range starting at {start} overflows the frame numbers")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

/// Why a CMA area was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CmaAreaProblem {
    /// The configuration has CMA support off.
    CmaDisabled,
    /// It has no pages.
    Empty,
    /// Its start or size is not a whole number of pageblocks.
    Misaligned,
    /// It is not inside the usable memory of one zone (it crosses a hole
    /// or a zone boundary, or lies outside memory).
    OutsideZone,
    /// It overlaps an earlier area.
    Overlaps,
    /// Its `order_per_bit` is above the pageblock order.
    OrderPerBit,
    /// A reservation's alignment is not a power of two.
    Alignment,
    /// No range of the node's memory can hold a reservation.
    NoRoom,
}

/// What is wrong with a [`crate::ReportingPolicy`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReportingProblem {
    /// The reporting order is above the largest order.
    OrderAboveMax {
        /// The order given.
        order: u8,
        /// The largest order configured.
        max: u8,
    },
    /// The batch capacity is 0 or above the most a batch may hold.
    Capacity {
        /// The capacity given.
        capacity: u16,
        /// The largest allowed.
        max: u16,
    },
    /// The budget fraction is 0.
    BudgetFraction,
}

impl fmt::Display for ReportingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportingProblem::OrderAboveMax { order, max } => {
                write!(f, "order {order} is above the largest order ({max})")
            }
            ReportingProblem::Capacity { capacity, max } => {
                write!(f, "a batch of {capacity} blocks is not within 1..={max}")
            }
            ReportingProblem::BudgetFraction => {
                f.write_str("the budget fraction must be at least 1")
            }
        }
    }
}
