//! A thread that runs reporting passes on a shared arena: the `std` stand-in
//! for Linux's `page_reporting` work item.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use pagealloc::{ReportPass, ReportingState};

use crate::discard::Advice;
use crate::error::ReportError;
use crate::Arena;

/// A background thread running [`Arena::report_pass`] on a shared arena.
///
/// Every `interval` it looks at [`Arena::reporting_state`] and runs a pass
/// if one is [`Requested`](ReportingState::Requested) (a block at or above
/// the reporting order was freed) or if the previous pass reported
/// something: a pass reports only part of each free list (Linux's budget),
/// and the engine does not ask for the next pass when the budget runs out
/// (Linux's `page_reporting_cycle` does), so the reporter keeps going until
/// a pass finds nothing left. An idle arena thus costs one state check per
/// interval. Linux waits `PAGE_REPORTING_DELAY`, 2 s, between a request
/// and its pass; a shorter interval gives memory back sooner at the price
/// of reporting blocks that are about to be allocated again.
///
/// A pass that `madvise` refuses is counted ([`ReporterStats`]) and the
/// refused blocks wait, unreported, for the next pass, which runs when the
/// next block is freed or at once if the failing pass reported something
/// else.
///
/// The reporter holds an `Arc<Arena>`; allocation, freeing and access go
/// on from other threads meanwhile (a pass takes `&Arena`). [`Reporter::stop`]
/// or dropping the reporter stops the thread and waits for it: at most one
/// pass finishes first.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use pagealloc_arena::{Advice, AllocFlags, Arena, Config, Order, Reporter, ReportingPolicy};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config { reporting: Some(ReportingPolicy::default()), ..Config::default() };
/// let arena = Arc::new(Arena::new(256 << 20, config)?);
/// let reporter = Reporter::spawn(Arc::clone(&arena), Duration::from_millis(1), Advice::DontNeed)?;
/// let block = arena.alloc(Order::new(9).unwrap(), AllocFlags::HIGHUSER_MOVABLE)?;
/// arena.free(block)?; // asks for a pass
/// while arena.reporting_info().unwrap().reported_fraction() < 0.95 {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// let stats = reporter.stop();
/// assert!(stats.pages_reported > 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Reporter {
    /// What the thread and its owner share.
    shared: Arc<Shared>,
    /// The thread; `None` once joined.
    thread: Option<JoinHandle<()>>,
}

/// What a [`Reporter`] did so far.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ReporterStats {
    /// Passes run.
    pub passes: u64,
    /// Batches handed to the sink.
    pub batches: u64,
    /// Of those, the ones `madvise` refused.
    pub failed_batches: u64,
    /// Pages reported (given back to the OS).
    pub pages_reported: u64,
    /// The last error a pass returned, as text.
    pub last_error: Option<String>,
}

/// The stop flag, its condition variable, and the figures.
#[derive(Debug, Default)]
struct Shared {
    /// Set to stop the thread.
    stop: Mutex<bool>,
    /// Wakes the thread when `stop` is set.
    wake: Condvar,
    /// The figures so far.
    stats: Mutex<ReporterStats>,
}

/// Locks `mutex`, ignoring poison: the data behind these locks (a flag,
/// counters) is valid whatever a panicking holder left.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Waits `interval` or until stopped; `true` if stopped.
    fn sleep(&self, interval: Duration) -> bool {
        let stop = lock(&self.stop);
        let (stop, _) = self
            .wake
            .wait_timeout_while(stop, interval, |stop| !*stop)
            .unwrap_or_else(PoisonError::into_inner);
        *stop
    }

    /// Counts one pass.
    fn record(&self, pass: &ReportPass, error: Option<&ReportError>) {
        let mut stats = lock(&self.stats);
        stats.passes += 1;
        stats.batches += pass.batches;
        stats.failed_batches += pass.failed_batches;
        stats.pages_reported += pass.pages_reported;
        if let Some(error) = error {
            stats.last_error = Some(error.to_string());
        }
    }
}

impl Reporter {
    /// Starts a thread (named `pagealloc-reporter`) that reports `arena`'s
    /// free memory with `advice`, looking every `interval`.
    ///
    /// Fails with [`io::ErrorKind::Unsupported`] if reporting is off in
    /// the arena's configuration, or with the OS's error if the thread
    /// cannot be made.
    pub fn spawn(arena: Arc<Arena>, interval: Duration, advice: Advice) -> io::Result<Reporter> {
        if arena.reporting_state() == ReportingState::Off {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                ReportError::Off.to_string(),
            ));
        }
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("pagealloc-reporter".into())
            .spawn(move || run(&arena, &theirs, interval, advice))?;
        Ok(Reporter {
            shared,
            thread: Some(thread),
        })
    }

    /// What the reporter did so far.
    pub fn stats(&self) -> ReporterStats {
        lock(&self.shared.stats).clone()
    }

    /// Stops the thread, waits for it (a pass under way finishes first),
    /// and returns what it did. A panic of the thread is passed on.
    pub fn stop(mut self) -> ReporterStats {
        if let Err(panic) = self.halt() {
            std::panic::resume_unwind(panic);
        }
        self.stats()
    }

    /// Tells the thread to stop and joins it.
    fn halt(&mut self) -> thread::Result<()> {
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
        match self.thread.take() {
            Some(thread) => thread.join(),
            None => Ok(()),
        }
    }
}

impl Drop for Reporter {
    /// Stops the thread and waits for it; a panic of the thread is dropped
    /// here (use [`Reporter::stop`] to see it).
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// The thread: a pass when one is wanted, every `interval`, until stopped.
fn run(arena: &Arena, shared: &Shared, interval: Duration, advice: Advice) {
    let mut more = false;
    while !shared.sleep(interval) {
        if !more && arena.reporting_state() != ReportingState::Requested {
            continue;
        }
        more = match arena.report_pass(advice) {
            Ok(pass) => {
                shared.record(&pass, None);
                pass.pages_reported > 0
            }
            Err(error @ ReportError::Advise { pass, .. }) => {
                shared.record(&pass, Some(&error));
                pass.pages_reported > 0
            }
            // Someone else's pass: look again next time.
            Err(ReportError::Busy) => true,
            Err(ReportError::Off) => return,
        };
    }
}
