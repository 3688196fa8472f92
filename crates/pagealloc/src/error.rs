//! Typed errors, one enum per kind of operation. Every failed call leaves the
//! allocator exactly as it was: calls validate first and mutate after.

use alloc::string::String;
use core::fmt;

use crate::units::{NodeId, Order, PageCount, Pfn, ZoneType};

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

/// Why an allocation failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AllocError {
    /// The order is at or above the configured number of orders.
    InvalidOrder {
        /// The order asked for.
        order: Order,
        /// The largest order configured.
        max: Order,
    },
    /// No zone the flags allow had a free block of that order above its
    /// watermark.
    NoMemory {
        /// The order asked for.
        order: Order,
    },
    /// The flags allow no zone that exists on this machine.
    NoZone,
    /// The CPU does not exist.
    InvalidCpu(InvalidCpu),
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::InvalidOrder { order, max } => {
                write!(f, "{order} is above the largest order ({})", max.get())
            }
            AllocError::NoMemory { order } => {
                write!(f, "no free block of {order} in any allowed zone")
            }
            AllocError::NoZone => {
                f.write_str("no zone on this machine satisfies the allocation flags")
            }
            AllocError::InvalidCpu(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for AllocError {}

/// Why a call naming an allocated block (free, split) was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlockError {
    /// The order is at or above the configured number of orders.
    InvalidOrder {
        /// The order given.
        order: Order,
        /// The largest order configured.
        max: Order,
    },
    /// No zone holds the frame.
    OutOfRange {
        /// The frame.
        pfn: Pfn,
    },
    /// The frame lies in a hole of the memory map.
    InHole {
        /// The frame.
        pfn: Pfn,
    },
    /// The frame is not aligned to the order.
    Misaligned {
        /// The frame.
        pfn: Pfn,
        /// The order given.
        order: Order,
    },
    /// The frame is free (on a free list or a per-CPU list, or inside a
    /// free block): a double free, or a free of a page that was never
    /// allocated. The page records cannot tell these two apart (nor can
    /// Linux's `bad_page`): both name a page nobody owns.
    AlreadyFree {
        /// The frame.
        pfn: Pfn,
    },
    /// The frame is in service but not the first page of an allocated block
    /// (a tail page, or a range taken offline).
    NotAllocated {
        /// The frame.
        pfn: Pfn,
    },
    /// The CPU does not exist.
    InvalidCpu(InvalidCpu),
    /// The frame is a page of a contiguous run (seed 003), which is freed
    /// with [`crate::Allocator::free_contig_range`], not as a block.
    ContigRun {
        /// The frame.
        pfn: Pfn,
    },
    /// The frame starts an allocated block of another order.
    WrongOrder {
        /// The frame.
        pfn: Pfn,
        /// The order given.
        order: Order,
        /// The order it was allocated with.
        allocated: Order,
    },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::InvalidOrder { order, max } => {
                write!(f, "{order} is above the largest order ({})", max.get())
            }
            BlockError::OutOfRange { pfn } => write!(f, "frame {pfn} is outside every zone"),
            BlockError::InHole { pfn } => write!(f, "frame {pfn} lies in a memory hole"),
            BlockError::Misaligned { pfn, order } => {
                write!(f, "frame {pfn} is not aligned to {order}")
            }
            BlockError::AlreadyFree { pfn } => {
                write!(f, "frame {pfn} is free (a double free, or never allocated)")
            }
            BlockError::InvalidCpu(e) => e.fmt(f),
            BlockError::ContigRun { pfn } => write!(
                f,
                "frame {pfn} belongs to a contiguous run: free it with free_contig_range"
            ),
            BlockError::NotAllocated { pfn } => {
                write!(f, "frame {pfn} is not the start of an allocated block")
            }
            BlockError::WrongOrder {
                pfn,
                order,
                allocated,
            } => write!(f, "frame {pfn} was allocated as {allocated}, not {order}"),
        }
    }
}

impl core::error::Error for BlockError {}

/// An invariant of DESIGN.md that does not hold: a bug in the allocator.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InvariantViolation {
    /// Which invariant (1 to 5, as numbered in docs/DESIGN.md).
    pub invariant: u8,
    /// Where and what.
    pub detail: String,
}

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} violated: {}", self.invariant, self.detail)
    }
}

impl core::error::Error for InvariantViolation {}

/// Why [`crate::Allocator::local`] could not hold a CPU's lists. Nothing
/// changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LocalError {
    /// The CPU does not exist.
    InvalidCpu(InvalidCpu),
    /// Someone else holds the lists right now: another
    /// [`crate::LocalLists`], a drain, or an ordinary call in flight on
    /// that CPU. It never waits.
    Busy {
        /// The CPU given.
        cpu: u16,
    },
}

impl fmt::Display for LocalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalError::InvalidCpu(e) => e.fmt(f),
            LocalError::Busy { cpu } => write!(f, "the lists of CPU {cpu} are held elsewhere"),
        }
    }
}

impl core::error::Error for LocalError {}

/// A CPU number at or above the configured number of CPUs: the one error
/// every call naming a CPU gives for it, whatever else it may fail with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InvalidCpu {
    /// The CPU given.
    pub cpu: u16,
    /// How many CPUs the allocator has.
    pub nr_cpus: u16,
}

impl fmt::Display for InvalidCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CPU {} does not exist (the allocator has {})",
            self.cpu, self.nr_cpus
        )
    }
}

impl core::error::Error for InvalidCpu {}

impl From<InvalidCpu> for AllocError {
    fn from(e: InvalidCpu) -> AllocError {
        AllocError::InvalidCpu(e)
    }
}

impl From<InvalidCpu> for BlockError {
    fn from(e: InvalidCpu) -> BlockError {
        BlockError::InvalidCpu(e)
    }
}

impl From<InvalidCpu> for LocalError {
    fn from(e: InvalidCpu) -> LocalError {
        LocalError::InvalidCpu(e)
    }
}

/// Why [`crate::Allocator::free_bulk`] refused a batch. Nothing in the
/// batch was freed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BulkFreeError {
    /// The CPU does not exist (whatever the batch holds, even nothing).
    InvalidCpu(InvalidCpu),
    /// Entry `index` of the batch could not be freed.
    Entry {
        /// Its position in the batch.
        index: usize,
        /// Why.
        error: BlockError,
    },
}

impl fmt::Display for BulkFreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BulkFreeError::InvalidCpu(e) => e.fmt(f),
            BulkFreeError::Entry { index, error } => write!(f, "batch entry {index}: {error}"),
        }
    }
}

impl core::error::Error for BulkFreeError {}

impl From<InvalidCpu> for BulkFreeError {
    fn from(e: InvalidCpu) -> BulkFreeError {
        BulkFreeError::InvalidCpu(e)
    }
}

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

/// Why a contiguous allocation, a CMA call or an offline/online call was
/// refused or failed (seed 003). Whatever the reason, the allocator is left
/// as it was: every isolation is undone and every destination taken for a
/// migration is given back (blocks already migrated stay where they went,
/// as in Linux).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ContigError {
    /// The range `start..end` is not one usable range of one zone.
    Range {
        /// Its first frame.
        start: Pfn,
        /// One past its last frame.
        end: Pfn,
        /// What is wrong with it.
        problem: RangeProblem,
    },
    /// A pageblock of the range holds a page nothing can migrate: an
    /// unmovable or reclaimable allocation, a contiguous run, an offline
    /// page, or (for a caller other than CMA) the pageblock belongs to a CMA
    /// area (Linux `has_unmovable_pages`).
    Unmovable {
        /// The page, or the first page of the CMA pageblock.
        pfn: Pfn,
    },
    /// A pageblock of the range is already isolated by another caller: the
    /// guard against overlapping contiguous allocations (Linux -EBUSY).
    Isolated {
        /// The first frame of that pageblock.
        pfn: Pfn,
    },
    /// Pages of the range stayed allocated after every try: the migrator
    /// refused (pinned, busy) or a page came back (Linux -EBUSY).
    Busy {
        /// A page that was still not free.
        pfn: Pfn,
        /// The tries made.
        tries: u32,
    },
    /// No destination could be allocated for a migration (Linux -ENOMEM:
    /// it aborts at once).
    NoMemory,
    /// No candidate range met the constraints and could be taken.
    NotFound {
        /// Candidate ranges tried with isolation and migration.
        tried: u64,
    },
    /// An alignment or boundary is not a power of two, or a boundary is
    /// smaller than the run.
    Constraint,
    /// The CMA area does not exist.
    NoSuchArea {
        /// The index given.
        area: usize,
    },
    /// The frame range handed back is not (wholly) an allocated contiguous
    /// run, or not one of this CMA area's.
    NotContig {
        /// The first frame that is not.
        pfn: Pfn,
    },
    /// The range is not offline (to online) or holds offline pages already
    /// (to offline).
    NotOffline {
        /// The first frame that is not.
        pfn: Pfn,
    },
}

/// What is wrong with a frame range given to a contiguous call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RangeProblem {
    /// It holds no page, or its end is below its start.
    Empty,
    /// It is not aligned as the call requires (offline and online take
    /// whole pageblocks).
    Misaligned,
    /// A frame of it is outside every zone.
    OutOfRange,
    /// It spans two zones.
    CrossesZone,
    /// It crosses a hole of the memory map.
    CrossesHole,
}

impl fmt::Display for ContigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContigError::Range {
                start,
                end,
                problem,
            } => {
                let what = match problem {
                    RangeProblem::Empty => "is empty",
                    RangeProblem::Misaligned => "is not pageblock-aligned",
                    RangeProblem::OutOfRange => "runs outside every zone",
                    RangeProblem::CrossesZone => "spans two zones",
                    RangeProblem::CrossesHole => "crosses a memory hole",
                };
                write!(f, "range {start}..{end} {what}")
            }
            ContigError::Unmovable { pfn } => {
                write!(f, "page {pfn} cannot be migrated (unmovable, reserved or CMA)")
            }
            ContigError::Isolated { pfn } => {
                write!(f, "pageblock {pfn} is isolated by another caller")
            }
            ContigError::Busy { pfn, tries } => {
                write!(f, "page {pfn} stayed allocated after {tries} tries")
            }
            ContigError::NoMemory => f.write_str("no memory for migration destinations"),
            ContigError::NotFound { tried } => {
                write!(f, "no range met the constraints ({tried} candidates tried)")
            }
            ContigError::Constraint => {
                f.write_str("alignment and boundary must be powers of two, the boundary no smaller than the run")
            }
            ContigError::NoSuchArea { area } => write!(f, "CMA area {area} does not exist"),
            ContigError::NotContig { pfn } => {
                write!(f, "frame {pfn} is not part of an allocated contiguous run here")
            }
            ContigError::NotOffline { pfn } => {
                write!(f, "frame {pfn} is not in the state the call needs (offline or not)")
            }
        }
    }
}

impl core::error::Error for ContigError {}
