//! Why a contiguous allocation, a CMA call or an offline/online call was
//! refused or failed (seed 003).

use core::fmt;

use crate::units::Pfn;

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
