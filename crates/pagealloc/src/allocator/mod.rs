//! The allocator facade: zones of all nodes, per-CPU slots and zonelists,
//! and its construction. The entry points live by concern in the files
//! beside this one: allocation (`allocate`), freeing (`free`), drains
//! (`drain`), CPUs (`cpu`) and counters (`metrics`); the per-CPU, packed
//! and observation calls live with their layers (`pcp`, `packing`,
//! `observe`).

pub(crate) mod allocate;
mod cpu;
mod drain;
pub(crate) mod free;
mod metrics;
pub(crate) mod slot;
pub(crate) mod zonelist;

use crate::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use lock_api::{Mutex, MutexGuard, RawMutex};

use crate::config::{CmaArea, CmaReservation, CmaSupport, Config, PcpMode};
use crate::contig::area::CmaState;
use crate::engine::watermark::setup_zone_watermarks;
use crate::engine::zone::{Zone, ZoneGuard};
use crate::error::{CmaAreaProblem, ConfigError, InvalidCpu};
use crate::events::{AllocEvent, AllocKind, EventSink, FreeEvent, FreeKind};
use crate::layout::{zone_spans, MemoryMap};
use crate::pcp::lists::{CpuLists, Pcp, NO_ZONE};
use crate::sync::DefaultLock;
use crate::units::{AllocFlags, CpuId, MigrateType, NodeId, Order, Pfn, ZoneType, MAX_NR_ORDERS};
use slot::CpuSlot;
use zonelist::{build_zonelists, NodeScope, NodeZonelists};

/// A physical page allocator over one machine's memory map.
///
/// All state lives in this value: zones, per-CPU lists, counters and
/// tunables. It is `Send + Sync`: each zone's free lists sit behind their own
/// lock `R`, each CPU's lists behind theirs. Every method that changes state
/// validates its arguments first, so a refused call (bad arguments, a
/// double free) changes nothing. An allocation that fails for want of
/// memory does what Linux does before failing (drains per-CPU lists, gives
/// back high-atomic pageblocks) and counts the failure.
pub struct Allocator<R: RawMutex = DefaultLock> {
    pub(crate) config: Config,
    pub(crate) map: MemoryMap,
    /// Populated zones, sorted by start frame.
    pub(crate) zones: Vec<Zone<R>>,
    /// Per CPU: its lists for every zone, under one lock.
    pub(crate) cpus: Box<[CpuSlot<R>]>,
    /// Per node, zone indices in fallback order.
    pub(crate) zonelists: Vec<NodeZonelists>,
    /// The CMA areas and their allocation bitmaps (seed 003).
    pub(crate) cma: Vec<CmaState<R>>,
    /// Failed allocations per order (counted outside any lock).
    pub(crate) failures: [AtomicU64; MAX_NR_ORDERS],
    /// `split_page` calls.
    pub(crate) split_pages: AtomicU64,
    /// Where events go, if anywhere.
    pub(crate) events: Option<Arc<dyn EventSink>>,
    /// A reporting pass is running (seed 002).
    pub(crate) reporting_active: AtomicBool,
    /// Reporting passes run.
    pub(crate) report_passes: AtomicU64,
    /// The next CPU slot [`Allocator::this_cpu`] hands to a new thread.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) next_slot: AtomicU16,
    /// Tells this allocator apart from every other in the process (for
    /// [`Allocator::this_cpu`]'s per-thread cache), even one built later at
    /// the same address.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) id: u64,
}

/// Every lock of the allocator, held in the lock order (per-CPU lists, then
/// zones by index): nothing changes while it lives.
pub(crate) struct HeldAll<'a, R: RawMutex> {
    pub(crate) cpus: Vec<MutexGuard<'a, R, CpuLists>>,
    pub(crate) zones: Vec<ZoneGuard<'a, R>>,
}

impl<R: RawMutex> Clone for Allocator<R> {
    /// A consistent snapshot: every lock is held at once (per-CPU lists,
    /// then every zone) while the whole state is copied, and no call
    /// changes page records without one of those locks, so the copy passes
    /// [`Allocator::check_invariants`] whatever runs beside it. A thread
    /// holding [`LocalLists`](crate::LocalLists) takes its snapshot with
    /// [`LocalLists::snapshot`](crate::LocalLists::snapshot) instead.
    fn clone(&self) -> Allocator<R> {
        self.snapshot_with(self.hold_all())
    }
}

impl<R: RawMutex> core::fmt::Debug for Allocator<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Allocator")
            .field("config", &self.config)
            .field("zones", &self.zones)
            .finish_non_exhaustive()
    }
}

impl Allocator<DefaultLock> {
    /// Builds the allocator, with the default lock, with every usable page
    /// free.
    pub fn new(map: MemoryMap, config: Config) -> Result<Allocator, ConfigError> {
        Allocator::with_lock(map, config)
    }
}

/// Hands out [`Allocator::id`]s. Always `core`'s atomic: an id takes part
/// in no protocol, and a model checker's atomics cannot be shared by the
/// real threads of parallel test cases.
#[cfg(feature = "std")]
static NEXT_ALLOCATOR_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// A process-unique allocator id (std), or 0 where nothing needs one.
fn new_allocator_id() -> u64 {
    #[cfg(feature = "std")]
    {
        NEXT_ALLOCATOR_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(feature = "std"))]
    {
        0
    }
}

impl<R: RawMutex> Allocator<R> {
    /// Builds the allocator with lock type `R` (a kernel's spinlock, say)
    /// and every usable page free. The pageblocks of the configuration's
    /// CMA areas start as CMA.
    pub fn with_lock(map: MemoryMap, config: Config) -> Result<Allocator<R>, ConfigError> {
        config.validate()?;
        let spans = zone_spans(&map, &config)?;
        let mut zones: Vec<Zone<R>> = spans.iter().map(|s| Zone::new(s, &config)).collect();
        let cma = mark_cma_areas(&zones, &config)?
            .into_iter()
            .map(|(area, zi)| CmaState::new(area, zi))
            .collect();
        for zone in zones.iter_mut() {
            let present = zone.core.present.clone();
            let mut guard = zone.lock();
            let mut ops = guard.ops();
            for (start, end) in present {
                ops.populate(start, end);
            }
            // Seed 000: every entirely free region starts held.
            ops.return_free_regions();
        }
        setup_zone_watermarks(&mut zones, &config);
        let zonelists = build_zonelists(&zones);
        let cpus = build_cpu_slots(&zones, &zonelists, &config);
        Ok(Allocator {
            config,
            map,
            zones,
            cpus,
            zonelists,
            cma,
            failures: Default::default(),
            split_pages: AtomicU64::new(0),
            reporting_active: AtomicBool::new(false),
            report_passes: AtomicU64::new(0),
            events: None,
            next_slot: AtomicU16::new(0),
            id: new_allocator_id(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The memory map the allocator was built from.
    pub fn memory_map(&self) -> &MemoryMap {
        &self.map
    }

    /// The populated zones, by start frame.
    pub fn zones(&self) -> &[Zone<R>] {
        &self.zones
    }

    /// The zone spanning `pfn`.
    pub fn zone_of(&self, pfn: Pfn) -> Option<&Zone<R>> {
        self.zone_index(pfn).map(|i| &self.zones[i])
    }

    /// The index of the zone spanning `pfn`.
    #[inline]
    pub(crate) fn zone_index(&self, pfn: Pfn) -> Option<usize> {
        // Few zones: a linear scan beats a binary search.
        self.zones.iter().position(|z| z.core.spans(pfn))
    }

    /// [`Allocator::zone_index`] trying zone `*hint` first and leaving the
    /// answer there: a batch's frames mostly share a zone.
    #[inline]
    pub(crate) fn zone_index_near(&self, pfn: Pfn, hint: &mut usize) -> Option<usize> {
        if self.zones.get(*hint).is_some_and(|z| z.core.spans(pfn)) {
            return Some(*hint);
        }
        let zi = self.zone_index(pfn)?;
        *hint = zi;
        Some(zi)
    }

    /// The slot of `cpu`, or the error naming it.
    #[inline]
    pub(crate) fn cpu_slot(&self, cpu: CpuId) -> Result<&CpuSlot<R>, InvalidCpu> {
        match self.cpus.get(cpu.0 as usize) {
            Some(slot) => Ok(slot),
            None => Err(self.invalid_cpu(cpu)),
        }
    }

    /// The error for `cpu`, which does not exist.
    #[cold]
    #[inline(never)]
    fn invalid_cpu(&self, cpu: CpuId) -> InvalidCpu {
        InvalidCpu {
            cpu: cpu.0,
            nr_cpus: self.cpus.len() as u16,
        }
    }

    /// `slot`'s lists, if per-CPU lists are on and nobody holds them (an
    /// interrupted holder on this CPU, a remote drain, a [`LocalLists`](crate::LocalLists)).
    #[inline]
    pub(crate) fn try_hold<'a>(&self, slot: &'a CpuSlot<R>) -> Option<MutexGuard<'a, R, CpuLists>> {
        if self.config.pcp != PcpMode::Enabled {
            return None;
        }
        slot.lists.try_lock()
    }

    /// Takes every lock: each CPU's lists, then every zone.
    pub(crate) fn hold_all(&self) -> HeldAll<'_, R> {
        let cpus = self.cpus.iter().map(|slot| slot.lists.lock()).collect();
        let zones = self.zones.iter().map(Zone::lock).collect();
        HeldAll { cpus, zones }
    }

    /// Copies the whole state while `held` keeps it still.
    pub(crate) fn snapshot_with(&self, held: HeldAll<'_, R>) -> Allocator<R> {
        let zones = self
            .zones
            .iter()
            .zip(&held.zones)
            .map(|(z, guard)| Zone {
                core: z.core.clone(),
                free: Mutex::new(guard.free_areas().clone()),
            })
            .collect();
        let cpus = self
            .cpus
            .iter()
            .zip(&held.cpus)
            .map(|(c, lists)| CpuSlot {
                lists: Mutex::new((**lists).clone()),
                node: c.node,
                zonelists: c.zonelists,
            })
            .collect();
        let failures = self
            .failures
            .each_ref()
            .map(|f| AtomicU64::new(f.load(Ordering::Relaxed)));
        let split_pages = AtomicU64::new(self.split_pages.load(Ordering::Relaxed));
        // Bitmaps after the zone locks, the order `check_invariants` uses.
        let cma = self.cma.iter().map(CmaState::snapshot).collect();
        let report_passes = AtomicU64::new(self.report_passes.load(Ordering::Relaxed));
        drop(held);
        // Blocks out on a report belong to the pass running here, which
        // will not finish them in the copy: there they are plain free.
        for zone in &zones {
            let zone: &Zone<R> = zone;
            zone.lock().ops().reclaim_in_flight();
        }
        Allocator {
            config: self.config.clone(),
            map: self.map.clone(),
            zones,
            cpus,
            zonelists: self.zonelists.clone(),
            cma,
            failures,
            split_pages,
            reporting_active: AtomicBool::new(false),
            report_passes,
            events: self.events.clone(),
            next_slot: AtomicU16::new(0),
            id: new_allocator_id(),
        }
    }

    /// Reports an allocation to the event sink, if any.
    #[inline]
    pub(crate) fn emit_alloc(
        &self,
        pfn: Pfn,
        order: Order,
        flags: AllocFlags,
        cpu: CpuId,
        kind: AllocKind,
    ) {
        if let Some(sink) = &self.events {
            sink.alloc(&AllocEvent {
                pfn,
                order,
                migratetype: flags.migratetype(),
                flags,
                cpu,
                kind,
            });
        }
    }

    /// Reports a free to the event sink, if any.
    #[inline]
    pub(crate) fn emit_free(&self, pfn: Pfn, order: Order, cpu: CpuId, kind: FreeKind) {
        if let Some(sink) = &self.events {
            sink.free(&FreeEvent {
                pfn,
                order,
                cpu,
                kind,
            });
        }
    }

    /// Installs (or, with `None`, removes) the sink that receives
    /// allocation events.
    pub fn set_event_sink(&mut self, sink: Option<Arc<dyn EventSink>>) {
        for zone in &mut self.zones {
            zone.core.events = sink.clone();
        }
        self.events = sink;
    }
}

/// Checks the configuration's CMA areas against the zones, places its
/// reservations, and turns every area's pageblocks into CMA (Linux
/// `cma_init_reserved_mem` + `init_cma_reserved_pageblock`), before any
/// page is free. Returns each area with the index of its zone.
fn mark_cma_areas<R: RawMutex>(
    zones: &[Zone<R>],
    config: &Config,
) -> Result<Vec<(CmaArea, usize)>, ConfigError> {
    let pb = config.pageblock();
    let mut placed: Vec<(CmaArea, usize)> = Vec::new();
    let fixed = config.cma_areas.iter().copied().map(Ok);
    let reserved = config.cma_reservations.iter().map(Err);
    for declared in fixed.chain(reserved) {
        let (nr_pages, order_per_bit, start) = match declared {
            Ok(area) => (area.nr_pages, area.order_per_bit, area.start),
            Err(r) => (r.nr_pages, r.order_per_bit, Pfn(0)),
        };
        let refuse = |problem| ConfigError::CmaArea {
            start,
            nr_pages,
            problem,
        };
        if config.cma != CmaSupport::Enabled {
            return Err(refuse(CmaAreaProblem::CmaDisabled));
        }
        if nr_pages.0 == 0 {
            return Err(refuse(CmaAreaProblem::Empty));
        }
        if nr_pages.0 % pb.nr_pages().0 != 0 {
            return Err(refuse(CmaAreaProblem::Misaligned));
        }
        if order_per_bit > pb.get() {
            return Err(refuse(CmaAreaProblem::OrderPerBit));
        }
        let taken: Vec<CmaArea> = placed.iter().map(|p| p.0).collect();
        let area = match declared {
            Ok(area) => {
                if !area.start.is_aligned(pb) {
                    return Err(refuse(CmaAreaProblem::Misaligned));
                }
                if taken.iter().any(|other| other.overlaps(&area)) {
                    return Err(refuse(CmaAreaProblem::Overlaps));
                }
                area
            }
            Err(r) => {
                if !r.align.0.is_power_of_two() {
                    return Err(refuse(CmaAreaProblem::Alignment));
                }
                place_reservation(zones, r, pb.nr_pages().0, &taken)
                    .ok_or(refuse(CmaAreaProblem::NoRoom))?
            }
        };
        let end = area.end().ok_or(refuse(CmaAreaProblem::OutsideZone))?;
        let zi = zones
            .iter()
            .position(|z| {
                z.core.spans(area.start)
                    && end.0 <= z.core.end.0
                    && z.core
                        .present
                        .iter()
                        .any(|&(s, e)| s <= area.start && end <= e)
            })
            .ok_or(refuse(CmaAreaProblem::OutsideZone))?;
        placed.push((area, zi));
    }
    for &(area, zi) in &placed {
        let mut pfn = area.start;
        while pfn.0 < area.start.0 + area.nr_pages.0 {
            zones[zi].core.blocks.set(pfn, MigrateType::Cma);
            pfn.0 += pb.nr_pages().0;
        }
    }
    Ok(placed)
}

/// The highest range of `r.nr_pages` in `r.node`'s memory aligned to
/// `r.align` (at least `pageblock` pages) inside one usable range of one
/// zone and clear of `taken`.
fn place_reservation<R: RawMutex>(
    zones: &[Zone<R>],
    r: &CmaReservation,
    pageblock: u64,
    taken: &[CmaArea],
) -> Option<CmaArea> {
    let align = r.align.0.max(pageblock);
    let mut best: Option<Pfn> = None;
    for zone in zones.iter().filter(|z| z.core.node == r.node) {
        for &(s, e) in &zone.core.present {
            // From the top of the range down, skipping areas in the way.
            let mut top = e.0;
            while top >= s.0 + r.nr_pages.0 {
                let start = (top - r.nr_pages.0) & !(align - 1);
                if start < s.0 {
                    break;
                }
                let area = CmaArea {
                    start: Pfn(start),
                    nr_pages: r.nr_pages,
                    order_per_bit: r.order_per_bit,
                };
                match taken.iter().find(|t| t.overlaps(&area)) {
                    Some(t) => top = t.start.0,
                    None => {
                        best = best.max(Some(Pfn(start)));
                        break;
                    }
                }
            }
        }
    }
    best.map(|start| CmaArea {
        start,
        nr_pages: r.nr_pages,
        order_per_bit: r.order_per_bit,
    })
}

impl CmaArea {
    /// Whether two areas share a frame.
    fn overlaps(&self, other: &CmaArea) -> bool {
        self.start.0 < other.start.0 + other.nr_pages.0
            && other.start.0 < self.start.0 + self.nr_pages.0
    }
}

impl<R: RawMutex> Allocator<R> {
    /// Sizes every CPU's lists again after a zone's managed pages changed
    /// (Linux `zone_pcp_update`), as [`build_cpu_slots`] first sized them.
    pub(crate) fn resize_pcps(&mut self) {
        let cpu_nodes: Vec<NodeId> = self.cpus.iter().map(|c| c.node).collect();
        for slot in self.cpus.iter_mut() {
            let lists = slot.lists.get_mut();
            for (zi, z) in self.zones.iter().enumerate() {
                let split = pcp_split(&cpu_nodes, slot.node, z.core.node);
                let (managed, low) = (z.core.nr_managed(), z.core.watermarks.low);
                lists.zones[zi].resize(managed, low, split, &self.config);
            }
        }
    }
}

/// Over how many CPUs a zone's per-CPU high is split for a CPU of node
/// `home`: Linux splits it over the CPUs local to the zone's node (all of
/// the CPU's own node's CPUs for a CPU-less node).
fn pcp_split(cpu_nodes: &[NodeId], home: NodeId, zone_node: NodeId) -> u64 {
    let cpus_here = cpu_nodes.iter().filter(|&&n| n == home).count() as u64;
    let local = cpu_nodes.iter().filter(|&&n| n == zone_node).count() as u64;
    if local == 0 {
        cpus_here.max(1)
    } else {
        local
    }
}

/// One slot per CPU: CPUs spread evenly over the nodes with memory, in
/// order, each with a [`Pcp`] per zone sized as Linux sizes them.
fn build_cpu_slots<R: RawMutex>(
    zones: &[Zone<R>],
    zonelists: &[NodeZonelists],
    config: &Config,
) -> Box<[CpuSlot<R>]> {
    let nodes: Vec<NodeId> = zonelists.iter().map(|z| z.node).collect();
    let nr_cpus = config.nr_cpus as usize;
    let cpu_nodes = (0..nr_cpus)
        .map(|c| nodes[c * nodes.len() / nr_cpus])
        .collect::<Vec<_>>();
    cpu_nodes
        .iter()
        .map(|&home| {
            let pcps = zones
                .iter()
                .map(|z| {
                    let split = pcp_split(&cpu_nodes, home, z.core.node);
                    Pcp::new(z.core.nr_managed(), z.core.watermarks.low, split, config)
                })
                .collect();
            // Every CPU's home node has memory: CPUs are spread over the
            // nodes that have zones.
            let slot = zonelists.iter().position(|z| z.node == home).unwrap_or(0);
            let first_zone = ZoneType::ALL.map(|t| {
                let list = &zonelists[slot].lists[NodeScope::AllNodes as usize][t.idx()];
                list.first().map_or(NO_ZONE, |&zi| zi as u32)
            });
            CpuSlot {
                lists: Mutex::new(CpuLists {
                    zones: pcps,
                    first_zone,
                    home_zonelists: slot,
                }),
                node: home,
                zonelists: slot,
            }
        })
        .collect()
}
