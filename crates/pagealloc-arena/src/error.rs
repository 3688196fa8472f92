//! Typed errors, one per operation. A refused call changes nothing.

use std::fmt;
use std::io;

use pagealloc::{BlockError, ConfigError, Order, PageCount, Pfn, ReportPass, ReportPassError};

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
        /// The allocator's answer.
        error: BlockError,
    },
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FreeError::Foreign { block } => write!(
                f,
                "block at frame {} ({}) belongs to another arena",
                block.pfn(),
                block.order()
            ),
            FreeError::Refused { block, error } => write!(
                f,
                "the allocator refused to free block at frame {}: {error}",
                block.pfn()
            ),
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
