//! [`Allocator::report_pass`]: one reporting pass over every zone, driven
//! by the caller (the engine has no timers), and what it tells the caller.

use crate::sync::atomic::Ordering;
use alloc::vec::Vec;
use core::fmt;

use lock_api::RawMutex;

use super::cycle::ReportedBlock;
use crate::allocator::Allocator;
use crate::engine::zone::Zone;
use crate::units::{MigrateType, NodeId, Order, ZoneType};

/// Receives batches of free blocks to hand back to the host (a
/// virtio-balloon device, `madvise(MADV_DONTNEED)` on a memory pool).
///
/// The allocator calls it with every zone lock dropped; the blocks are off
/// the free lists meanwhile, so nobody allocates them. `Ok` marks them
/// reported; an error leaves them unreported (counted as a failed batch),
/// and nothing is lost either way.
pub trait ReportSink {
    /// What a refused batch says.
    type Error;

    /// Hands `batch` over.
    fn report(&mut self, batch: &[ReportedBlock]) -> Result<(), Self::Error>;
}

/// Whether a reporting pass is wanted (Linux's `page_reporting` states).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReportingState {
    /// Reporting is off in the configuration.
    Off,
    /// Nothing was freed at or above the reporting order since the last
    /// pass looked: no pass is needed.
    Idle,
    /// A block at or above the reporting order was freed: a pass is wanted
    /// (Linux waits 2 s, `PAGE_REPORTING_DELAY`, before running it).
    Requested,
    /// A pass is running.
    Active,
}

/// Why [`Allocator::report_pass`] did not run. Nothing changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReportPassError {
    /// Reporting is off in the configuration.
    Off,
    /// Another pass is running (one at a time, as Linux's one work item).
    Busy,
}

impl fmt::Display for ReportPassError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportPassError::Off => f.write_str("free page reporting is off"),
            ReportPassError::Busy => f.write_str("another reporting pass is running"),
        }
    }
}

impl core::error::Error for ReportPassError {}

/// What one pass did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ReportPass {
    /// Batches handed to the sink.
    pub batches: u64,
    /// Of those, the ones it refused.
    pub failed_batches: u64,
    /// Pages in the batches it accepted.
    pub pages_reported: u64,
    /// Zones skipped for being too low on free memory.
    pub zones_skipped: u64,
}

/// One zone's reporting figures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ZoneReporting {
    /// The node.
    pub node: NodeId,
    /// The zone.
    pub zone: ZoneType,
    /// Free pages in blocks at or above the reporting order (what could be
    /// reported), isolated ones excepted.
    pub free_reportable: u64,
    /// Of those, the pages of reported blocks.
    pub reported: u64,
    /// Pages out on a report right now.
    pub in_flight: u64,
}

/// The reporting figures of every zone; its `Display` is one line per zone
/// in the manner of `/proc/zoneinfo`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReportingInfo {
    /// The smallest order reported.
    pub order: Order,
    /// Per zone.
    pub zones: Vec<ZoneReporting>,
}

impl ReportingInfo {
    /// Reported pages ÷ free pages at or above the reporting order, all
    /// zones (1.0 when nothing is reportable).
    pub fn reported_fraction(&self) -> f64 {
        let free: u64 = self.zones.iter().map(|z| z.free_reportable).sum();
        let reported: u64 = self.zones.iter().map(|z| z.reported).sum();
        if free == 0 {
            1.0
        } else {
            reported as f64 / free as f64
        }
    }
}

impl fmt::Display for ReportingInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for z in &self.zones {
            writeln!(
                f,
                "Node {}, zone {:>8} reporting order {} free_reportable {} reported {} in_flight {}",
                z.node.0,
                z.zone,
                self.order.get(),
                z.free_reportable,
                z.reported,
                z.in_flight
            )?;
        }
        Ok(())
    }
}

impl<R: RawMutex> Allocator<R> {
    /// Whether a reporting pass is wanted.
    pub fn reporting_state(&self) -> ReportingState {
        if self.config.reporting.is_none() {
            return ReportingState::Off;
        }
        if self.reporting_active.load(Ordering::Acquire) {
            return ReportingState::Active;
        }
        if self
            .zones
            .iter()
            .any(|z| z.core.report_requested.load(Ordering::Relaxed))
        {
            return ReportingState::Requested;
        }
        ReportingState::Idle
    }

    /// The reporting figures of every zone, or `None` with reporting off.
    pub fn reporting_info(&self) -> Option<ReportingInfo> {
        let order = self.config.report_order()?;
        let zones = self
            .zones
            .iter()
            .map(|zone| {
                let f = zone.free.lock();
                let free_reportable = zone
                    .core
                    .geo
                    .orders()
                    .filter(|&o| o >= order)
                    .map(|o| {
                        MigrateType::ALL
                            .iter()
                            .filter(|&&mt| mt != MigrateType::Isolate)
                            .map(|&mt| f.nr_free_blocks(o, mt) << o.get())
                            .sum::<u64>()
                    })
                    .sum();
                ZoneReporting {
                    node: zone.core.node,
                    zone: zone.core.zone_type,
                    free_reportable,
                    reported: f.nr_reported_pages,
                    in_flight: f.nr_reporting_pages,
                }
            })
            .collect();
        Some(ReportingInfo { order, zones })
    }

    /// One reporting pass (Linux `page_reporting_process`): for every zone
    /// with free memory above its low watermark plus a batch, for every
    /// order from the reporting order up and every migratetype but
    /// Isolate, it takes unreported free blocks off the list into batches
    /// of `capacity` and hands each full batch to `sink` with the zone lock
    /// dropped, at most `ceil(nr_free / (capacity * budget_fraction))`
    /// batches per list, so an idle machine is reported over about
    /// `budget_fraction` passes. A partial batch carries over to the next
    /// list and is handed over at the end of the zone. Accepted blocks go
    /// back to the tails of their lists marked reported; refused ones go
    /// back unmarked.
    ///
    /// The caller runs passes when [`Allocator::reporting_state`] says one
    /// is wanted (Linux: 2 s after the request), from a thread of its own
    /// if it likes; one pass runs at a time.
    pub fn report_pass<S: ReportSink>(&self, sink: &mut S) -> Result<ReportPass, ReportPassError> {
        let policy = self.config.reporting.ok_or(ReportPassError::Off)?;
        let order = self.config.report_order().ok_or(ReportPassError::Off)?;
        if self
            .reporting_active
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(ReportPassError::Busy);
        }
        let capacity = usize::from(policy.capacity);
        let per_batch = u64::from(policy.capacity) * u64::from(policy.budget_fraction);
        let mut pass = ReportPass::default();
        let mut batch: Vec<ReportedBlock> = Vec::with_capacity(capacity);
        for zone in &self.zones {
            zone.core.report_requested.store(false, Ordering::Relaxed);
            if !zone.lock().ops().can_report(order, policy.capacity) {
                pass.zones_skipped += 1;
                continue;
            }
            for o in zone.core.geo.orders().filter(|&o| o >= order) {
                for mt in MigrateType::ALL {
                    if mt == MigrateType::Isolate {
                        continue;
                    }
                    let mut guard = zone.lock();
                    let nr_free = guard.free_areas().nr_free_blocks(o, mt);
                    let mut budget = nr_free.div_ceil(per_batch);
                    loop {
                        if batch.len() == capacity {
                            if budget == 0 {
                                // Out of budget with blocks perhaps left:
                                // ask for another pass (Linux sets the
                                // state back to requested here).
                                zone.core.report_requested.store(true, Ordering::Relaxed);
                                break;
                            }
                            budget -= 1;
                            drop(guard);
                            self.hand_over(zone, sink, &mut batch, &mut pass);
                            guard = zone.lock();
                            continue;
                        }
                        match guard.ops().take_for_report(o, mt) {
                            Some(block) => batch.push(block),
                            None => break,
                        }
                    }
                }
            }
            if !batch.is_empty() {
                self.hand_over(zone, sink, &mut batch, &mut pass);
            }
        }
        self.report_passes.fetch_add(1, Ordering::Relaxed);
        self.reporting_active.store(false, Ordering::Release);
        Ok(pass)
    }

    /// Hands `batch` (blocks of `zone`, in flight) to `sink` and puts it
    /// back, marked reported if the sink took it.
    fn hand_over<S: ReportSink>(
        &self,
        zone: &Zone<R>,
        sink: &mut S,
        batch: &mut Vec<ReportedBlock>,
        pass: &mut ReportPass,
    ) {
        let accepted = sink.report(batch).is_ok();
        let mut guard = zone.lock();
        let mut ops = guard.ops();
        ops.put_back_reported(batch, accepted);
        ops.f.stats.report_batches += 1;
        pass.batches += 1;
        if accepted {
            pass.pages_reported += batch.iter().map(|b| b.order.nr_pages().0).sum::<u64>();
        } else {
            ops.f.stats.report_failures += 1;
            pass.failed_batches += 1;
        }
        batch.clear();
    }
}
