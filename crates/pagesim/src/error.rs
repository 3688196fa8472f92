//! The one error type of pagesim's library, and the exit code each kind of
//! error maps to.
//!
//! Everything a user can feed pagesim (a scenario, a trace, a procfs sample,
//! a size on the command line) fails with an *input* error that says where
//! (file and line) and what; the process exits with 2, like a usage error.
//! Failures that are not the input's fault (an output directory that cannot
//! be written, a broken allocator invariant) exit with 1.

use std::io;
use std::path::PathBuf;

use pagealloc::{ConfigError, InvariantViolation};

use crate::scenario::ScenarioError;
use crate::trace::LineError;

/// What the process exit code says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExitKind {
    /// 1: the run failed for a reason that is not the input's fault.
    Runtime = 1,
    /// 2: bad usage or bad input.
    Input = 2,
}

/// Everything that can go wrong in pagesim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A compressed input is corrupt or truncated.
    #[error("{}: {format} data is corrupt or truncated after line {line}: {detail}", path.display())]
    Decompress {
        /// The file.
        path: PathBuf,
        /// `zstd` or `gzip`.
        format: &'static str,
        /// Lines read before the failure.
        line: u64,
        /// The decoder's message.
        detail: String,
    },
    /// A trace line is not what ftrace writes.
    #[error("{}:{line}: {kind}", path.display())]
    TraceLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: u64,
        /// What is wrong.
        kind: LineError,
    },
    /// A trace holds no page-allocator event at all.
    #[error("{}: {why}", path.display())]
    EmptyTrace {
        /// The file.
        path: PathBuf,
        /// Empty file, or no `mm_page_*` event.
        why: &'static str,
    },
    /// A scenario file is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A `/proc/zoneinfo` sample is unusable.
    #[error("{origin}: {detail}")]
    Procfs {
        /// The file (or the embedded fixture).
        origin: String,
        /// What is wrong.
        detail: String,
    },
    /// A captured `/proc` snapshot (`--procfs`) has a malformed
    /// pagetypeinfo section, or counts the machine cannot hold.
    #[error("{origin}:{line}: {kind}")]
    Snapshot {
        /// The file.
        origin: String,
        /// The 1-based line the problem is on.
        line: usize,
        /// What is wrong.
        kind: SnapshotError,
    },
    /// A command-line value is invalid (unknown policy, bad size).
    #[error("{0}")]
    Usage(String),
    /// The engine refused the machine layout.
    #[error("machine layout refused by the allocator: {0}")]
    Machine(ConfigError),
    /// A feature the input asks for is not in this build.
    #[error("{what} is not available in this build: {why}")]
    NotAvailable {
        /// The feature.
        what: String,
        /// Why, and what would provide it.
        why: String,
    },
    /// An output file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A plot could not be drawn.
    #[error("cannot draw {}: {detail}", path.display())]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// The plotting library's message.
        detail: String,
    },
    /// A bug in pagesim itself.
    #[error("internal error: {0}")]
    Internal(String),
    /// The allocator's own consistency check failed: a bug in the engine or
    /// in pagesim, never the input's fault.
    #[error("allocator invariant broken: {0}")]
    Invariant(InvariantViolation),
}

impl Error {
    /// Which exit code the error maps to.
    pub fn exit_kind(&self) -> ExitKind {
        match self {
            Error::Output { .. }
            | Error::Plot { .. }
            | Error::Internal(_)
            | Error::Invariant(_) => ExitKind::Runtime,
            Error::Open { .. }
            | Error::Decompress { .. }
            | Error::TraceLine { .. }
            | Error::EmptyTrace { .. }
            | Error::Scenario(_)
            | Error::Procfs { .. }
            | Error::Snapshot { .. }
            | Error::Usage(_)
            | Error::Machine(_)
            | Error::NotAvailable { .. } => ExitKind::Input,
        }
    }
}

/// What is wrong with a line of a captured `/proc/pagetypeinfo`, or with
/// the state it describes for the machine being replayed into.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A value is not what Linux prints.
    #[error("bad {what} `{value}`")]
    Bad {
        /// What the value should be.
        what: &'static str,
        /// The value as written.
        value: String,
    },
    /// A row has more or fewer counts than its table's heading.
    #[error("{found} columns where the heading has {expected}")]
    Columns {
        /// Columns of the heading.
        expected: usize,
        /// Counts on the row.
        found: usize,
    },
    /// Two free-count rows for one zone and migratetype.
    #[error("a second row for the same zone and type")]
    DuplicateFree,
    /// Two block-count rows for one zone.
    #[error("a second block-count row for this zone")]
    DuplicateBlocks,
    /// A second free-count heading with other orders.
    #[error("the order heading differs from the first one")]
    OrdersChange,
    /// Something the section needs is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The pageblock order is not the machine's.
    #[error("pageblock order {file}, but the machine's is {machine}")]
    PageblockOrder {
        /// The file's.
        file: u8,
        /// The machine's.
        machine: u8,
    },
    /// Free blocks of an order the machine does not have.
    #[error("free blocks of order {order}, beyond the machine's orders 0..={max}")]
    OrderBeyond {
        /// The order.
        order: usize,
        /// The machine's largest order.
        max: u8,
    },
    /// A zone the machine does not have.
    #[error("node {node}, zone {zone} is not in the machine")]
    ZoneNotInMachine {
        /// The node.
        node: u16,
        /// The zone's name.
        zone: &'static str,
    },
    /// A zone of the machine the section has no rows for.
    #[error("no rows for the machine's node {node}, zone {zone}")]
    ZoneMissing {
        /// The node.
        node: u16,
        /// The zone's name.
        zone: &'static str,
    },
    /// More free pages than the zone has pages.
    #[error("{free_pages} free pages in node {node}, zone {zone}, which has {zone_pages} pages in the machine")]
    TooManyFree {
        /// The node.
        node: u16,
        /// The zone's name.
        zone: &'static str,
        /// Free pages in the table.
        free_pages: u64,
        /// Pages of the machine's zone.
        zone_pages: u64,
    },
    /// A zone with no pageblock counted.
    #[error("no pageblock counted for node {node}, zone {zone}")]
    NoPageblocks {
        /// The node.
        node: u16,
        /// The zone's name.
        zone: &'static str,
    },
}

impl SnapshotError {
    /// A bad value.
    pub fn bad(what: &'static str, value: &str) -> SnapshotError {
        SnapshotError::Bad {
            what,
            value: crate::trace::snippet(value.as_bytes()),
        }
    }
}

/// pagesim's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
