//! Typed errors, one enum per kind of operation. Every failed call leaves the
//! allocator exactly as it was: calls validate first and mutate after.

use alloc::string::String;
use core::fmt;

use crate::units::{NodeId, Order, Pfn, ZoneType};

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
    /// The CPU number is not below the configured number of CPUs.
    InvalidCpu {
        /// The CPU given.
        cpu: u16,
    },
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
            AllocError::InvalidCpu { cpu } => write!(f, "CPU {cpu} does not exist"),
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
    /// The frame is already free (on a free list or a per-CPU list).
    DoubleFree {
        /// The frame.
        pfn: Pfn,
    },
    /// The frame is in service but not the first page of an allocated block
    /// (a tail page, or a range taken offline).
    NotAllocated {
        /// The frame.
        pfn: Pfn,
    },
    /// The CPU number is not below the configured number of CPUs.
    InvalidCpu {
        /// The CPU given.
        cpu: u16,
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
            BlockError::DoubleFree { pfn } => write!(f, "frame {pfn} is already free"),
            BlockError::InvalidCpu { cpu } => write!(f, "CPU {cpu} does not exist"),
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
    /// The CPU number is not below the configured number of CPUs.
    InvalidCpu {
        /// The CPU given.
        cpu: u16,
    },
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
            LocalError::InvalidCpu { cpu } => write!(f, "CPU {cpu} does not exist"),
            LocalError::Busy { cpu } => write!(f, "the lists of CPU {cpu} are held elsewhere"),
        }
    }
}

impl core::error::Error for LocalError {}
