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
            | Error::Usage(_)
            | Error::Machine(_)
            | Error::NotAvailable { .. } => ExitKind::Input,
        }
    }
}

/// pagesim's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
