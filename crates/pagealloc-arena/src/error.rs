//! Typed errors, one per operation. A refused call changes nothing.

use std::fmt;
use std::io;

use pagealloc::{
    BlockError, ConfigError, ContigError, Order, PageCount, Pfn, ReportPass, ReportPassError,
};

use crate::contig::ContigRun;
use crate::discard::Advice;
use crate::Block;

/// Why [`Arena::new`](crate::Arena::new) failed.
#[derive(Debug)]
pub enum NewError {
    /// The size is zero or not a whole number of pages.
    Size {
        /// The size asked for.
        size_bytes: usize,
        /// The OS page size.
        page_size_bytes: usize,
    },
    /// The configuration's page size is not the OS page size: frames are
    /// the pages `madvise` works on, so the two must agree.
    PageSize {
        /// The configuration's page size.
        config_bytes: u64,
        /// The OS page size.
        os_bytes: usize,
    },
    /// The allocator refused the configuration or the arena's memory map
    /// (a zone of more than [`pagealloc::MAX_ZONE_PAGES`] pages, say).
    Config(ConfigError),
    /// `mmap` failed.
    Map {
        /// Bytes asked for.
        size_bytes: usize,
        /// What the kernel said.
        source: io::Error,
    },
}

impl fmt::Display for NewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NewError::Size {
                size_bytes,
                page_size_bytes,
            } => write!(
                f,
                "arena size {size_bytes} is not a non-zero multiple of the page size {page_size_bytes}"
            ),
            NewError::PageSize {
                config_bytes,
                os_bytes,
            } => write!(
                f,
                "configured page size {config_bytes} differs from the OS page size {os_bytes}"
            ),
            NewError::Config(e) => write!(f, "allocator refused the arena: {e}"),
            NewError::Map { size_bytes, source } => {
                write!(f, "mmap of {size_bytes} bytes failed: {source}")
            }
        }
    }
}

impl std::error::Error for NewError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NewError::Config(e) => Some(e),
            NewError::Map { source, .. } => Some(source),
            NewError::Size { .. } | NewError::PageSize { .. } => None,
        }
    }
}

/// Why [`Arena::free`](crate::Arena::free) gave a block back: it stays
/// allocated, and the caller keeps it.
#[derive(Debug)]
pub enum FreeError {
    /// The block belongs to another arena.
    Foreign {
        /// The block, returned.
        block: Block,
    },
    /// The allocator refused a block this arena handed out: a bug in
    /// `pagealloc`, reported rather than hidden.
    Refused {
        /// The block, returned.
        block: Block,
        /// Its first frame, as given to the allocator.
        pfn: Pfn,
        /// The allocator's answer.
        error: BlockError,
    },
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FreeError::Foreign { block } => {
                write!(f, "block ({}) belongs to another arena", block.order())
            }
            FreeError::Refused { pfn, error, .. } => {
                write!(
                    f,
                    "the allocator refused to free block at frame {pfn}: {error}"
                )
            }
        }
    }
}

impl std::error::Error for FreeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FreeError::Refused { error, .. } => Some(error),
            FreeError::Foreign { .. } => None,
        }
    }
}

/// Why [`Arena::discard`](crate::Arena::discard) or
/// [`Arena::discard_range`](crate::Arena::discard_range) did nothing.
#[derive(Debug)]
pub enum DiscardError {
    /// The range is not inside the arena (or overflows the frame numbers).
    OutOfArena {
        /// The range's first frame.
        start: Pfn,
        /// Its length.
        nr_pages: PageCount,
    },
    /// An allocated block overlaps the range: discarding would wipe bytes
    /// its owner still holds.
    Allocated {
        /// The block's first frame.
        pfn: Pfn,
        /// Its order.
        order: Order,
    },
    /// The kernel refused the advice (`MADV_FREE` before Linux 4.5, say).
    Advise {
        /// The range's first frame.
        start: Pfn,
        /// Its length.
        nr_pages: PageCount,
        /// The advice given.
        advice: Advice,
        /// What the kernel said.
        source: io::Error,
    },
}

impl fmt::Display for DiscardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscardError::OutOfArena { start, nr_pages } => write!(
                f,
                "{} pages from frame {start} are not inside the arena",
                nr_pages.0
            ),
            DiscardError::Allocated { pfn, order } => write!(
                f,
                "allocated block at frame {pfn} ({order}) overlaps the range to discard"
            ),
            DiscardError::Advise {
                start,
                nr_pages,
                advice,
                source,
            } => write!(
                f,
                "{} on {} pages from frame {start} failed: {source}",
                advice.linux_name(),
                nr_pages.0
            ),
        }
    }
}

impl std::error::Error for DiscardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DiscardError::Advise { source, .. } => Some(source),
            DiscardError::OutOfArena { .. } | DiscardError::Allocated { .. } => None,
        }
    }
}

/// Why [`Arena::report_pass`](crate::Arena::report_pass) did not report
/// everything it took.
#[derive(Debug)]
pub enum ReportError {
    /// Free page reporting is off in the arena's configuration
    /// (`Config::reporting` is `None`). Nothing was done.
    Off,
    /// Another pass is running on this arena (one at a time). Nothing was
    /// done.
    Busy,
    /// The pass ran, but `madvise` failed on some batches; the engine left
    /// those blocks free and unreported, to be reported by a later pass.
    /// The batches that went through are reported, as `pass` counts.
    Advise {
        /// What the pass did, failed batches included.
        pass: ReportPass,
        /// The advice given.
        advice: Advice,
        /// What the kernel said, the first time it refused.
        source: io::Error,
    },
}

impl From<ReportPassError> for ReportError {
    fn from(error: ReportPassError) -> ReportError {
        match error {
            ReportPassError::Off => ReportError::Off,
            ReportPassError::Busy => ReportError::Busy,
        }
    }
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Off => write!(f, "{}", ReportPassError::Off),
            ReportError::Busy => write!(f, "{}", ReportPassError::Busy),
            ReportError::Advise {
                pass,
                advice,
                source,
            } => write!(
                f,
                "{} failed on {} of {} reporting batches: {source}",
                advice.linux_name(),
                pass.failed_batches,
                pass.batches
            ),
        }
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReportError::Advise { source, .. } => Some(source),
            ReportError::Off | ReportError::Busy => None,
        }
    }
}

/// Why [`Arena::pin`](crate::Arena::pin) did not pin a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PinError {
    /// The block belongs to another arena.
    Foreign,
    /// The block carries the most pins it can (1023) already.
    TooManyPins {
        /// Its first frame.
        pfn: Pfn,
    },
}

impl fmt::Display for PinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinError::Foreign => f.write_str("block belongs to another arena"),
            PinError::TooManyPins { pfn } => {
                write!(f, "block at frame {pfn} carries the most pins it can")
            }
        }
    }
}

impl std::error::Error for PinError {}

/// Why [`Arena::free_contig`](crate::Arena::free_contig) or
/// [`Arena::cma_release`](crate::Arena::cma_release) gave a run back: it
/// stays allocated, and the caller keeps it.
#[derive(Debug)]
pub enum ContigFreeError {
    /// The run belongs to another arena.
    Foreign {
        /// The run, returned.
        run: ContigRun,
    },
    /// [`Arena::cma_release`](crate::Arena::cma_release) was given a run
    /// that did not come from a CMA area.
    NotCma {
        /// The run, returned.
        run: ContigRun,
    },
    /// The allocator refused a run this arena handed out: a bug in
    /// `pagealloc`, reported rather than hidden.
    Refused {
        /// The run, returned.
        run: ContigRun,
        /// The allocator's answer.
        error: ContigError,
    },
}

impl fmt::Display for ContigFreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContigFreeError::Foreign { run } => write!(
                f,
                "contiguous run of {} pages belongs to another arena",
                run.nr_pages().0
            ),
            ContigFreeError::NotCma { run } => write!(
                f,
                "contiguous run at frame {} is not from a CMA area",
                run.start()
            ),
            ContigFreeError::Refused { run, error } => write!(
                f,
                "the allocator refused to free the run at frame {}: {error}",
                run.start()
            ),
        }
    }
}

impl std::error::Error for ContigFreeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ContigFreeError::Refused { error, .. } => Some(error),
            ContigFreeError::Foreign { .. } | ContigFreeError::NotCma { .. } => None,
        }
    }
}

/// An inconsistency [`Arena::check_handles`](crate::Arena::check_handles)
/// found in the handle table: a bug in the arena or the engine, reported
/// rather than hidden. `key` is the index of a block's table entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HandleViolation {
    /// A key's used bit and its entry disagree on whether it is taken.
    Vacancy {
        /// The key.
        key: u32,
        /// Whether its used bit is set.
        used: bool,
    },
    /// An entry is locked for a move or a free, with nothing running.
    Locked {
        /// The key.
        key: u32,
    },
    /// A live block's first frame does not map back to its key.
    NotInHeads {
        /// The key.
        key: u32,
        /// Its first frame.
        pfn: Pfn,
    },
    /// The engine holds no allocated block of the entry's order at its
    /// frame.
    NotAllocated {
        /// The key.
        key: u32,
        /// Its first frame.
        pfn: Pfn,
        /// Its order.
        order: Order,
    },
    /// Two live blocks share a frame.
    Overlap {
        /// The first frame of the later one.
        pfn: Pfn,
    },
    /// A frame maps to a key that is vacant or lives elsewhere.
    StrayHead {
        /// The frame.
        pfn: Pfn,
        /// The key it maps to.
        key: u32,
    },
}

impl fmt::Display for HandleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleViolation::Vacancy { key, used } => write!(
                f,
                "handle {key}: used bit {} but entry {}",
                if *used { "set" } else { "clear" },
                if *used { "vacant" } else { "live" }
            ),
            HandleViolation::Locked { key } => write!(f, "handle {key} is locked while idle"),
            HandleViolation::NotInHeads { key, pfn } => {
                write!(f, "handle {key}: frame {pfn} does not map back to it")
            }
            HandleViolation::NotAllocated { key, pfn, order } => write!(
                f,
                "handle {key}: no allocated block of {order} at frame {pfn}"
            ),
            HandleViolation::Overlap { pfn } => {
                write!(f, "two live blocks share frame {pfn}")
            }
            HandleViolation::StrayHead { pfn, key } => {
                write!(f, "frame {pfn} maps to handle {key}, which is not there")
            }
        }
    }
}

impl std::error::Error for HandleViolation {}
