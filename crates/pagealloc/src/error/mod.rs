//! Typed errors, one enum per kind of operation. Every failed call leaves the
//! allocator exactly as it was: calls validate first and mutate after.
//! Configuration errors live in `error/config.rs`, contiguous allocation's
//! in `error/contig.rs`; all are named here.

use alloc::string::String;
use core::fmt;

use crate::units::{Order, Pfn};

mod config;
mod contig;

pub use config::{CmaAreaProblem, ConfigError, ReportingProblem};
pub use contig::{ContigError, RangeProblem};

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
