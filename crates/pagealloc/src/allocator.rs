//! The allocator: zones of all nodes, per-CPU lists, zonelists, and the
//! allocation and free entry points (Linux `__alloc_pages` /
//! `free_frozen_pages`).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use lock_api::{Mutex, MutexGuard, RawMutex};

use crate::buddy::FreePlacement;
use crate::config::{CmaSupport, Config, PcpMode};
use crate::error::{AllocError, BlockError, ConfigError};
use crate::events::{AllocEvent, AllocKind, EventSink, FreeEvent, FreeKind};
use crate::layout::{zone_spans, MemoryMap};
use crate::page::{PageMeta, PageState};
use crate::pcp::{pcp_free_index, pcp_index, CpuLists, Pcp, NO_ZONE};
use crate::stats::VmStats;
use crate::units::{
    AllocFlags, CpuId, MigrateType, NodeId, Order, Pfn, ZoneType, MAX_NR_ORDERS, NR_ZONE_TYPES,
};
use crate::watermark::{setup_zone_watermarks, AllocMode};
use crate::zone::Zone;

/// The lock used when none is named: a spinlock that works without `std`.
/// A kernel names its own (anything implementing `lock_api::RawMutex`).
pub type DefaultLock = spin::Mutex<()>;

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
    zonelists: Vec<NodeZonelists>,
    /// Failed allocations per order (counted outside any lock).
    failures: [AtomicU64; MAX_NR_ORDERS],
    /// `split_page` calls.
    split_pages: AtomicU64,
    /// Where events go, if anywhere.
    pub(crate) events: Option<Arc<dyn EventSink>>,
    /// The next CPU slot [`Allocator::this_cpu`] hands to a new thread.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    next_slot: AtomicU16,
}

impl<R: RawMutex> Clone for Allocator<R> {
    /// A snapshot: every lock is taken (per-CPU lists, then zones) and the
    /// whole state copied, so what-if probes can run on the copy.
    fn clone(&self) -> Allocator<R> {
        let held: Vec<_> = self.cpus.iter().map(|c| c.lists.lock()).collect();
        let zones = self
            .zones
            .iter()
            .map(|z| {
                let free = z.free.lock();
                Zone {
                    core: z.core.clone(),
                    free: Mutex::new(free.clone()),
                }
            })
            .collect();
        let cpus = self
            .cpus
            .iter()
            .zip(&held)
            .map(|(c, lists)| CpuSlot {
                lists: Mutex::new((**lists).clone()),
                node: c.node,
                zonelists: c.zonelists,
            })
            .collect();
        drop(held);
        Allocator {
            config: self.config.clone(),
            map: self.map.clone(),
            zones,
            cpus,
            zonelists: self.zonelists.clone(),
            failures: self
                .failures
                .each_ref()
                .map(|f| AtomicU64::new(f.load(Ordering::Relaxed))),
            split_pages: AtomicU64::new(self.split_pages.load(Ordering::Relaxed)),
            events: self.events.clone(),
            next_slot: AtomicU16::new(0),
        }
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

impl<R: RawMutex> Allocator<R> {
    /// Builds the allocator with lock type `R` (a kernel's spinlock, say)
    /// and every usable page free.
    pub fn with_lock(map: MemoryMap, config: Config) -> Result<Allocator<R>, ConfigError> {
        config.validate()?;
        let spans = zone_spans(&map, &config)?;
        let mut zones: Vec<Zone<R>> = spans.iter().map(|s| Zone::new(s, &config)).collect();
        for zone in zones.iter_mut() {
            let present = zone.core.present.clone();
            let mut guard = zone.lock();
            let mut ops = guard.ops();
            for (start, end) in present {
                ops.populate(start, end);
            }
        }
        setup_zone_watermarks(&mut zones, &config);
        let zonelists = build_zonelists(&zones);
        let nodes: Vec<NodeId> = zonelists.iter().map(|z| z.node).collect();
        let nr_cpus = config.nr_cpus as usize;
        // CPUs spread evenly over the nodes, in order.
        let cpu_nodes = (0..nr_cpus)
            .map(|c| nodes[c * nodes.len() / nr_cpus])
            .collect::<Vec<_>>();
        let cpus = cpu_nodes
            .iter()
            .map(|&home| {
                let cpus_here = cpu_nodes.iter().filter(|&&n| n == home).count() as u64;
                let pcps = zones
                    .iter()
                    .map(|z| {
                        // Linux splits high over the CPUs local to the zone's
                        // node (all CPUs for a CPU-less node).
                        let local = cpu_nodes.iter().filter(|&&n| n == z.core.node).count() as u64;
                        let split = if local == 0 { cpus_here.max(1) } else { local };
                        Pcp::new(z.core.nr_present, z.core.watermarks.low, split, &config)
                    })
                    .collect();
                // Every CPU's home node has memory: CPUs are spread over
                // the nodes that have zones.
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
            .collect();
        Ok(Allocator {
            config,
            map,
            zones,
            cpus,
            zonelists,
            failures: Default::default(),
            split_pages: AtomicU64::new(0),
            events: None,
            next_slot: AtomicU16::new(0),
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

    /// The counters, summed over zones and CPUs.
    pub fn stats(&self) -> VmStats {
        let mut total = VmStats::default();
        for zone in &self.zones {
            total.merge(&zone.free.lock().stats);
        }
        for cpu in self.cpus.iter() {
            for pcp in cpu.lists.lock().zones.iter() {
                total.merge(&pcp.stats);
            }
        }
        for (slot, failed) in total.alloc_fail.iter_mut().zip(&self.failures) {
            *slot += failed.load(Ordering::Relaxed);
        }
        total.split_pages += self.split_pages.load(Ordering::Relaxed);
        total
    }

    /// Free pages on the buddy lists of all zones (isolated ones excepted).
    pub fn nr_free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.free.lock().nr_free_pages).sum()
    }

    /// Pages sitting on per-CPU lists.
    pub fn nr_pcp_pages(&self) -> u64 {
        self.cpus.iter().map(|c| c.lists.lock().count()).sum()
    }

    /// Pages on per-CPU lists, per zone (in the order of [`Allocator::zones`]).
    pub fn nr_pcp_pages_per_zone(&self) -> Vec<u64> {
        (0..self.zones.len())
            .map(|zi| {
                self.cpus
                    .iter()
                    .map(|cpu| cpu.lists.lock().zones[zi].count)
                    .sum()
            })
            .collect()
    }

    /// Pages in allocated blocks: everything present that is neither on a
    /// free list nor on a per-CPU list.
    ///
    /// Every CPU's lists are held while the zones are summed (the lock
    /// order), so a refill cannot count its pages both free and cached.
    pub fn nr_allocated_pages(&self) -> u64 {
        let held: Vec<_> = self.cpus.iter().map(|c| c.lists.lock()).collect();
        let cached: u64 = held.iter().map(|l| l.count()).sum();
        let free_anywhere: u64 = self.zones.iter().map(|z| z.free.lock().nr_free_all()).sum();
        let present: u64 = self.zones.iter().map(|z| z.core.nr_present).sum();
        present.saturating_sub(free_anywhere + cached)
    }

    /// Bytes of metadata the allocator keeps: every zone's
    /// [`Zone::metadata_bytes`], the per-CPU list heads, and itself.
    pub fn metadata_bytes(&self) -> u64 {
        let zones: u64 = self.zones.iter().map(Zone::metadata_bytes).sum();
        let pcp = (self.cpus.len()
            * (core::mem::size_of::<CpuSlot<R>>() + self.zones.len() * core::mem::size_of::<Pcp>()))
            as u64;
        zones + pcp + core::mem::size_of::<Self>() as u64
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

    /// The zone spanning `pfn`.
    pub fn zone_of(&self, pfn: Pfn) -> Option<&Zone<R>> {
        self.zone_index(pfn).map(|i| &self.zones[i])
    }

    /// The home node of `cpu`.
    pub(crate) fn cpu_home(&self, cpu: CpuId) -> Option<NodeId> {
        self.cpus.get(cpu.0 as usize).map(|c| c.node)
    }

    /// The slot of `cpu`, or the error naming it.
    #[inline]
    pub(crate) fn cpu_slot(&self, cpu: CpuId) -> Result<&CpuSlot<R>, AllocError> {
        self.cpus
            .get(cpu.0 as usize)
            .ok_or(AllocError::InvalidCpu { cpu: cpu.0 })
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

    /// Allocates a block of `order` on CPU 0 from its node.
    #[inline]
    pub fn alloc(&self, order: Order, flags: AllocFlags) -> Result<Pfn, AllocError> {
        self.alloc_on_cpu(CpuId(0), order, flags)
    }

    /// Allocates a block of `order` on CPU 0, preferring `node`.
    pub fn alloc_on(
        &self,
        node: NodeId,
        order: Order,
        flags: AllocFlags,
    ) -> Result<Pfn, AllocError> {
        let zonelists = self.zonelists.iter().position(|z| z.node == node);
        self.alloc_through(CpuId(0), |_| zonelists, order, flags)
    }

    /// Allocates a block of `order` through `cpu`'s lists, from its node.
    #[inline(always)]
    pub fn alloc_on_cpu(
        &self,
        cpu: CpuId,
        order: Order,
        flags: AllocFlags,
    ) -> Result<Pfn, AllocError> {
        self.alloc_through(cpu, |slot| Some(slot.zonelists), order, flags)
    }

    /// One allocation through `cpu`'s lists (if they are free) from the
    /// zonelists `zonelists` picks, reported to the event sink.
    #[inline(always)]
    fn alloc_through(
        &self,
        cpu: CpuId,
        zonelists: impl FnOnce(&CpuSlot<R>) -> Option<usize>,
        order: Order,
        flags: AllocFlags,
    ) -> Result<Pfn, AllocError> {
        let slot = self.cpu_slot(cpu)?;
        let mut held = self.try_hold(slot);
        let pfn = self.alloc_pages(cpu, zonelists(slot), order, flags, held.as_deref_mut())?;
        drop(held);
        self.emit_alloc(pfn, order, flags, cpu, AllocKind::Single);
        Ok(pfn)
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

    /// Linux `__alloc_pages`: a fast pass at the low watermark, then a slow
    /// pass at the min watermark with whatever reserves the flags allow, and
    /// before failing one more after draining per-CPU lists and giving back
    /// high-atomic pageblocks. There is no reclaim or compaction here: a
    /// caller that can reclaim does so and retries.
    ///
    /// `zonelists` names the preferred node's zonelists (`None`: a node
    /// without memory); `lists` are `cpu`'s lists, if this call holds them.
    #[inline(always)]
    pub(crate) fn alloc_pages(
        &self,
        cpu: CpuId,
        zonelists: Option<usize>,
        order: Order,
        flags: AllocFlags,
        mut lists: Option<&mut CpuLists>,
    ) -> Result<Pfn, AllocError> {
        // The fast path knows the home node's zonelist only; another node
        // asked for by name takes the full path.
        if let Some(held) = lists.as_deref_mut() {
            if zonelists == Some(held.home_zonelists) {
                if let Some(pfn) = self.pcp_fast(order, flags, held) {
                    return Ok(pfn);
                }
            }
        }
        self.alloc_general(cpu, zonelists, order, flags, lists)
    }

    /// The common case, decided exactly as `get_page_from_freelist` would
    /// decide it, without its loop or its mode bookkeeping: the first zone
    /// of the zonelist passes its watermark and this CPU's list has a block
    /// cached.
    #[inline(always)]
    fn pcp_fast(&self, order: Order, flags: AllocFlags, lists: &mut CpuLists) -> Option<Pfn> {
        if flags.contains(AllocFlags::THIS_NODE) {
            // The first zone may be another node's: the full path decides.
            return None;
        }
        let highest = flags.highest_zone();
        let zi = lists.first_zone[highest.idx()] as usize;
        let zone = self.zones.get(zi)?;
        let z = &zone.core;
        if order > z.geo.max_order {
            return None;
        }
        let mt = flags.migratetype();
        let index = pcp_index(order, mt, z.geo.pageblock)?;
        let cma = mt == MigrateType::Movable && self.config.cma == CmaSupport::Enabled;
        let settled = flags.contains(AllocFlags::NO_WATERMARKS)
            || (order == Order::ZERO && !z.is_below_high() && z.order0_above_high(highest, cma));
        if !settled {
            let mut mode = AllocMode::empty();
            if cma {
                mode |= AllocMode::CMA;
            }
            if !self.zone_allows(zone, order, highest, mode) {
                return None;
            }
        }
        let idx = lists.zones[zi].take_cached(z, index, order, mt)?;
        Some(z.pfn(idx))
    }

    /// Everything but the fast path: checks the request, then the fast
    /// zonelist pass, the min-watermark pass with reserves, drains, and
    /// one last pass.
    #[inline(never)]
    fn alloc_general(
        &self,
        cpu: CpuId,
        zonelists: Option<usize>,
        order: Order,
        flags: AllocFlags,
        lists: Option<&mut CpuLists>,
    ) -> Result<Pfn, AllocError> {
        let max = self.config.max_order();
        if order > max {
            return Err(AllocError::InvalidOrder { order, max });
        }
        let highest = flags.highest_zone();
        let mt = flags.migratetype();
        let Some(slot) = zonelists else {
            return Err(AllocError::NoZone);
        };
        let zonelist = ZonelistId::new(slot, highest, flags);
        if self.zonelist(zonelist).is_empty() {
            return Err(AllocError::NoZone);
        }
        let mut base = AllocMode::empty();
        if mt == MigrateType::Movable && self.config.cma == CmaSupport::Enabled {
            base |= AllocMode::CMA;
        }
        if flags.contains(AllocFlags::NO_FALLBACK) {
            base |= AllocMode::NO_FALLBACK;
        }
        if flags.contains(AllocFlags::NO_WATERMARKS) {
            base |= AllocMode::NO_WATERMARKS;
        }
        let request = Request {
            cpu,
            order,
            mt,
            highest,
        };
        self.alloc_passes(zonelist, request, base, flags, lists)
    }

    /// The passes of [`Allocator::alloc_general`] over a checked request.
    fn alloc_passes(
        &self,
        zonelist: ZonelistId,
        request: Request,
        base: AllocMode,
        flags: AllocFlags,
        mut lists: Option<&mut CpuLists>,
    ) -> Result<Pfn, AllocError> {
        let (order, mt) = (request.order, request.mt);
        let fast = base | self.zonelists[zonelist.slot].nofragment[request.highest.idx()];
        if let Some(pfn) =
            self.get_page_from_freelist(zonelist, request, fast, lists.as_deref_mut())
        {
            return Ok(pfn);
        }
        let mut slow = base | AllocMode::WMARK_MIN;
        if flags.contains(AllocFlags::HIGH) {
            slow |= AllocMode::MIN_RESERVE;
        }
        if flags.contains(AllocFlags::ATOMIC) && !flags.contains(AllocFlags::NO_MEMALLOC) {
            slow |= AllocMode::NON_BLOCK;
            if order > Order::ZERO {
                slow |= AllocMode::HIGHATOMIC;
            }
        }
        if let Some(pfn) =
            self.get_page_from_freelist(zonelist, request, slow, lists.as_deref_mut())
        {
            return Ok(pfn);
        }
        // "pages are pinned on the per-cpu lists or in high alloc reserves:
        // shrink them and try again" (after direct reclaim, in Linux).
        let unreserved = self.unreserve_highatomic(zonelist, mt);
        let drained = self.drain_zonelist(zonelist, request.cpu, lists.as_deref_mut());
        if unreserved || drained {
            if let Some(pfn) = self.get_page_from_freelist(zonelist, request, slow, lists) {
                return Ok(pfn);
            }
        }
        self.failures[order.idx()].fetch_add(1, Ordering::Relaxed);
        Err(AllocError::NoMemory { order })
    }

    /// The zone indices an allocation from the node of zonelist slot `slot`
    /// tries, in order.
    pub(crate) fn zonelist_of_slot(
        &self,
        slot: usize,
        highest: ZoneType,
        flags: AllocFlags,
    ) -> &[usize] {
        self.zonelist(ZonelistId::new(slot, highest, flags))
    }

    /// The zone indices an allocation on `cpu` tries, in order (empty for
    /// a CPU that does not exist).
    pub(crate) fn zonelist_for(
        &self,
        cpu: CpuId,
        highest: ZoneType,
        flags: AllocFlags,
    ) -> &[usize] {
        match self.cpus.get(cpu.0 as usize) {
            Some(slot) => self.zonelist_of_slot(slot.zonelists, highest, flags),
            None => &[],
        }
    }

    /// The zones an allocation may use, in the order it tries them.
    #[inline]
    fn zonelist(&self, id: ZonelistId) -> &[usize] {
        &self.zonelists[id.slot].lists[id.scope as usize][id.highest.idx()]
    }

    /// One pass over the zonelist (Linux `get_page_from_freelist`), repeated
    /// without `NOFRAGMENT` if that found nothing.
    fn get_page_from_freelist(
        &self,
        zonelist: ZonelistId,
        req: Request,
        mut mode: AllocMode,
        mut lists: Option<&mut CpuLists>,
    ) -> Option<Pfn> {
        loop {
            for &zi in self.zonelist(zonelist) {
                let zone = &self.zones[zi];
                if !self.zone_allows(zone, req.order, req.highest, mode) {
                    continue;
                }
                if let Some(pfn) = self.rmqueue(zi, req, mode, lists.as_deref_mut()) {
                    return Some(pfn);
                }
            }
            if !mode.contains(AllocMode::NOFRAGMENT) {
                return None;
            }
            mode.remove(AllocMode::NOFRAGMENT);
        }
    }

    /// The watermark test of `get_page_from_freelist`. With per-CPU lists
    /// Linux first checks the high watermark: passing it settles the
    /// question (the real mark is lower); failing it flags the zone as below
    /// high, so per-CPU lists stop hoarding, before the real check.
    #[inline]
    fn zone_allows(
        &self,
        zone: &Zone<R>,
        order: Order,
        highest: ZoneType,
        mode: AllocMode,
    ) -> bool {
        let z = &zone.core;
        if self.config.pcp == PcpMode::Enabled && !z.is_below_high() {
            let high = (mode - AllocMode::WMARK_MIN) | AllocMode::WMARK_HIGH;
            if z.watermark_ok(order, highest, high) {
                return true;
            }
            z.set_below_high(true);
        }
        z.watermark_ok(order, highest, mode)
    }

    /// Takes a block from zone `zi`: through the CPU's lists when the order
    /// is cached and the list lock is free, else from the buddy lists.
    #[inline]
    fn rmqueue(
        &self,
        zi: usize,
        req: Request,
        mode: AllocMode,
        lists: Option<&mut CpuLists>,
    ) -> Option<Pfn> {
        let zone = &self.zones[zi];
        let pb = zone.core.geo.pageblock;
        if let (Some(lists), Some(index)) = (lists, pcp_index(req.order, req.mt, pb)) {
            if let Some(idx) = lists.zones[zi].alloc(zone, index, req.order, req.mt, mode) {
                let pfn = zone.core.pfn(idx);
                if mode.contains(AllocMode::HIGHATOMIC) {
                    let mut guard = zone.lock();
                    let mut ops = guard.ops();
                    if ops.reserve_highatomic(pfn, req.order, self.config.highatomic) {
                        ops.f.stats.highatomic_reserved += 1;
                    }
                }
                return Some(pfn);
            }
        }
        let mut guard = zone.lock();
        let mut ops = guard.ops();
        let (idx, event) = ops.rmqueue(req.order, req.mt, mode)?;
        ops.mark_allocated(idx, req.order, req.mt);
        let pfn = ops.z.pfn(idx);
        if mode.contains(AllocMode::HIGHATOMIC)
            && ops.reserve_highatomic(pfn, req.order, self.config.highatomic)
        {
            ops.f.stats.highatomic_reserved += 1;
        }
        if let Some(event) = event {
            ops.f.stats.count_fallback(&event, pb);
        }
        ops.f.stats.count_alloc(req.order);
        Some(pfn)
    }

    fn unreserve_highatomic(&self, zonelist: ZonelistId, mt: MigrateType) -> bool {
        let mut any = false;
        for &zi in self.zonelist(zonelist) {
            let mut guard = self.zones[zi].lock();
            let mut ops = guard.ops();
            if ops.unreserve_highatomic(mt, false) {
                ops.f.stats.highatomic_unreserved += 1;
                any = true;
            }
        }
        any
    }

    /// Drains every CPU's lists for the zones of a zonelist, before an
    /// allocation fails. `own` are the calling CPU's lists if it holds them.
    /// Another CPU's lists are tried for a bounded while
    /// ([`DRAIN_TRY_SPINS`]), never waited for without bound: the caller
    /// holds its own lists, so two CPUs draining each other, or a thread
    /// holding [`crate::LocalLists`] that allocates on another CPU, cannot
    /// deadlock. An ordinary call holds its lists for well under that bound;
    /// lists held longer (a `LocalLists`) are skipped, and their pages do
    /// not count. Returns whether any page came back.
    fn drain_zonelist(
        &self,
        zonelist: ZonelistId,
        cpu: CpuId,
        mut own: Option<&mut CpuLists>,
    ) -> bool {
        let mut any = false;
        for &zi in self.zonelist(zonelist) {
            for (c, slot) in self.cpus.iter().enumerate() {
                let drained = match own.as_deref_mut() {
                    Some(lists) if c == cpu.0 as usize => self.drain_lists(lists, zi),
                    _ => try_lock_for_a_while(&slot.lists)
                        .map_or(0, |mut lists| self.drain_lists(&mut lists, zi)),
                };
                any |= drained > 0;
            }
        }
        any
    }

    /// Drains one CPU's lists of zone `zi`; returns the pages drained.
    pub(crate) fn drain_lists(&self, lists: &mut CpuLists, zi: usize) -> u64 {
        let pcp = &mut lists.zones[zi];
        if pcp.count == 0 {
            return 0;
        }
        let count = pcp.count;
        let mut guard = self.zones[zi].lock();
        pcp.drain(&mut guard.ops(), count, 0);
        count
    }

    /// Returns every page on `cpu`'s lists to the buddy lists (Linux
    /// `drain_local_pages`). Returns the pages drained.
    ///
    /// It waits for the lists' lock: a thread holding these lists as
    /// [`LocalLists`](crate::LocalLists) drains them with [`LocalLists::drain`](crate::LocalLists::drain) instead.
    pub fn drain_local(&self, cpu: CpuId) -> Result<u64, AllocError> {
        let mut lists = self.cpu_slot(cpu)?.lists.lock();
        Ok((0..self.zones.len())
            .map(|zi| self.drain_lists(&mut lists, zi))
            .sum())
    }

    /// Returns every page on every CPU's lists to the buddy lists (Linux
    /// `drain_all_pages`), as isolation and contiguous allocation need.
    /// Returns the pages drained.
    /// It waits for each CPU's lock in turn, so it must not be called by a
    /// thread that holds [`LocalLists`](crate::LocalLists).
    pub fn drain_all(&self) -> u64 {
        self.cpus
            .iter()
            .map(|slot| {
                let mut lists = slot.lists.lock();
                (0..self.zones.len())
                    .map(|zi| self.drain_lists(&mut lists, zi))
                    .sum::<u64>()
            })
            .sum()
    }

    /// The zone and record of `pfn` if it heads an allocated block of
    /// `order`: the fast paths' one check (only present, aligned frames of
    /// orders the zone has ever head one). `None` says nothing about why.
    #[inline]
    pub(crate) fn lookup_allocated(&self, pfn: Pfn, order: Order) -> Option<(usize, PageMeta)> {
        self.lookup_allocated_near(pfn, order, &mut 0)
    }

    /// [`Allocator::lookup_allocated`] with a zone hint (see
    /// [`Allocator::zone_index_near`]).
    #[inline(always)]
    pub(crate) fn lookup_allocated_near(
        &self,
        pfn: Pfn,
        order: Order,
        hint: &mut usize,
    ) -> Option<(usize, PageMeta)> {
        let zi = self.zone_index_near(pfn, hint)?;
        let meta = self.zones[zi].core.meta(pfn);
        meta.is_allocated_of_order(order).then_some((zi, meta))
    }

    /// Finds the allocated block `pfn`/`order`, or says precisely why it is
    /// not one. Changes nothing.
    pub(crate) fn find_allocated(
        &self,
        pfn: Pfn,
        order: Order,
    ) -> Result<(usize, PageMeta), BlockError> {
        let max = self.config.max_order();
        if order > max {
            return Err(BlockError::InvalidOrder { order, max });
        }
        let zi = self.zone_index(pfn).ok_or(BlockError::OutOfRange { pfn })?;
        let zone = &self.zones[zi].core;
        let meta = zone.meta(pfn);
        // Only present, aligned frames ever head an allocated block: the
        // common case needs no further check.
        if meta.state() == PageState::AllocHead && meta.order() == order {
            return Ok((zi, meta));
        }
        if !zone.is_present(pfn) {
            return Err(BlockError::InHole { pfn });
        }
        if !pfn.is_aligned(order) {
            return Err(BlockError::Misaligned { pfn, order });
        }
        match meta.state() {
            PageState::AllocHead => Err(BlockError::WrongOrder {
                pfn,
                order,
                allocated: meta.order(),
            }),
            PageState::FreeHead | PageState::PcpHead => Err(BlockError::DoubleFree { pfn }),
            PageState::OfflineHead => Err(BlockError::NotAllocated { pfn }),
            PageState::Tail => match zone.containing_head(pfn).map(|(_, m)| m.state()) {
                Some(PageState::FreeHead | PageState::PcpHead) => {
                    Err(BlockError::DoubleFree { pfn })
                }
                _ => Err(BlockError::NotAllocated { pfn }),
            },
        }
    }

    /// [`Allocator::find_allocated`] with its failures settled. Records
    /// are read here without the zone lock, and a drain or merge under that
    /// lock passes through states a lockless reader would misname (a head
    /// already turned tail, not yet merged into the block that covers it:
    /// "not allocated" where "double free" is the truth). So a failure is
    /// looked up again under the zone lock, where those moves are atomic,
    /// and that answer stands (it may even find the block allocated again).
    #[inline]
    pub(crate) fn find_allocated_settled(
        &self,
        pfn: Pfn,
        order: Order,
    ) -> Result<(usize, PageMeta), BlockError> {
        match self.find_allocated(pfn, order) {
            Ok(found) => Ok(found),
            // Only these depend on records a drain or merge is rewriting.
            Err(
                error @ (BlockError::NotAllocated { .. }
                | BlockError::DoubleFree { .. }
                | BlockError::WrongOrder { .. }),
            ) => self.find_allocated_locked(pfn, order, error),
            Err(error) => Err(error),
        }
    }

    /// The second, locked look of [`Allocator::find_allocated_settled`].
    #[cold]
    #[inline(never)]
    fn find_allocated_locked(
        &self,
        pfn: Pfn,
        order: Order,
        unlocked: BlockError,
    ) -> Result<(usize, PageMeta), BlockError> {
        let Some(zi) = self.zone_index(pfn) else {
            return Err(unlocked);
        };
        let _settled = self.zones[zi].free.lock();
        self.find_allocated(pfn, order)
    }

    /// Why taking over the head of `pfn` failed: another thread changed it
    /// between the check and the swap. The caller must not hold the zone
    /// lock (the answer is settled under it).
    #[cold]
    #[inline(never)]
    pub(crate) fn lost_race(&self, pfn: Pfn, order: Order) -> BlockError {
        self.find_allocated_settled(pfn, order)
            .err()
            .unwrap_or(BlockError::DoubleFree { pfn })
    }

    /// Frees the allocated block `pfn`/`order` through CPU 0's lists.
    #[inline]
    pub fn free(&self, pfn: Pfn, order: Order) -> Result<(), BlockError> {
        self.free_on_cpu(CpuId(0), pfn, order)
    }

    /// Frees the allocated block `pfn`/`order` (Linux `__free_pages`):
    /// onto `cpu`'s lists when the order is cached there and the list lock
    /// is free, else straight to the buddy lists.
    #[inline(always)]
    pub fn free_on_cpu(&self, cpu: CpuId, pfn: Pfn, order: Order) -> Result<(), BlockError> {
        let slot = self
            .cpus
            .get(cpu.0 as usize)
            .ok_or(BlockError::InvalidCpu { cpu: cpu.0 })?;
        let mut held = self.try_hold(slot);
        self.free_pages(pfn, order, held.as_deref_mut())?;
        drop(held);
        self.emit_free(pfn, order, cpu, FreeKind::Single);
        Ok(())
    }

    /// Frees `pfn`/`order` onto `lists` (the freeing CPU's, if this call
    /// holds them) when its order and pageblock type are cached there, else
    /// straight to the buddy lists.
    #[inline(always)]
    pub(crate) fn free_pages(
        &self,
        pfn: Pfn,
        order: Order,
        mut lists: Option<&mut CpuLists>,
    ) -> Result<(), BlockError> {
        if let Some(held) = lists.as_deref_mut() {
            if let Some((zi, meta)) = self.lookup_allocated(pfn, order) {
                let zone = &self.zones[zi];
                let z = &zone.core;
                if let Some(index) = pcp_free_index(order, z.block_mt(pfn), z.geo.pageblock) {
                    return held.zones[zi]
                        .free(zone, z.idx(pfn), meta, order, index)
                        .map_err(|_| self.lost_race(pfn, order));
                }
            }
        }
        self.free_general(pfn, order, lists)
    }

    /// [`Allocator::free_pages`] beyond the fast path: validation with a
    /// precise error, then the per-CPU list or the buddy lists.
    #[inline(never)]
    fn free_general(
        &self,
        pfn: Pfn,
        order: Order,
        lists: Option<&mut CpuLists>,
    ) -> Result<(), BlockError> {
        let (zi, meta) = self.find_allocated_settled(pfn, order)?;
        let zone = &self.zones[zi];
        let z = &zone.core;
        let idx = z.idx(pfn);
        if let Some(lists) = lists {
            if let Some(index) = pcp_free_index(order, z.block_mt(pfn), z.geo.pageblock) {
                return lists.zones[zi]
                    .free(zone, idx, meta, order, index)
                    .map_err(|_| self.lost_race(pfn, order));
            }
        }
        let mut guard = zone.lock();
        if z.pages.replace(idx, meta, PageMeta::TAIL).is_err() {
            // A racing free won. Under the zone lock the record is settled.
            let error = self.find_allocated(pfn, order).err();
            return Err(error.unwrap_or(BlockError::DoubleFree { pfn }));
        }
        let mut ops = guard.ops();
        ops.free_block(pfn, order, FreePlacement::Auto);
        ops.f.stats.count_free(order);
        Ok(())
    }

    /// Turns the allocated block `pfn`/`order` into `2^order` order-0
    /// allocations that can be freed one by one (Linux `split_page`).
    pub fn split_page(&self, pfn: Pfn, order: Order) -> Result<(), BlockError> {
        let (zi, meta) = self.find_allocated_settled(pfn, order)?;
        let z = &self.zones[zi].core;
        let idx = z.idx(pfn);
        let page = PageMeta::allocated(Order::ZERO, meta.alloc_migratetype());
        z.pages
            .replace(idx, meta, page)
            .map_err(|_| self.lost_race(pfn, order))?;
        for k in 1..order.nr_pages().0 as u32 {
            z.pages.set(idx + k, page);
        }
        self.split_pages.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The allocated block that starts at `pfn`, as its order and
    /// migratetype, or `None` if `pfn` does not start one.
    pub fn allocated_block(&self, pfn: Pfn) -> Option<(Order, MigrateType)> {
        let zone = &self.zone_of(pfn)?.core;
        let meta = zone.meta(pfn);
        (meta.state() == PageState::AllocHead).then(|| (meta.order(), meta.alloc_migratetype()))
    }

    /// The migratetype of the pageblock holding `pfn`.
    pub fn pageblock_migratetype(&self, pfn: Pfn) -> Option<MigrateType> {
        self.zone_of(pfn).map(|z| z.core.block_mt(pfn))
    }

    /// The CPU slot of the calling thread: threads get slots round-robin the
    /// first time they ask, per allocator.
    #[cfg(feature = "std")]
    pub fn this_cpu(&self) -> CpuId {
        use core::cell::Cell;
        std::thread_local! {
            /// (allocator address, slot) of the last allocator this thread used.
            static SLOT: Cell<(usize, u16)> = const { Cell::new((0, 0)) };
        }
        let me = self as *const Self as usize;
        let nr_cpus = self.cpus.len() as u16;
        SLOT.with(|slot| {
            let (owner, cpu) = slot.get();
            if owner == me {
                return CpuId(cpu);
            }
            let cpu = self.next_slot.fetch_add(1, Ordering::Relaxed) % nr_cpus;
            slot.set((me, cpu));
            CpuId(cpu)
        })
    }
}

/// How many times a failing allocation tries another CPU's busy lists
/// before it gives up on them: far longer than any ordinary call holds
/// them, short enough that skipping a long-held `LocalLists` costs little.
pub(crate) const DRAIN_TRY_SPINS: u32 = 4096;

/// `lock.try_lock()`, retried up to [`DRAIN_TRY_SPINS`] times.
fn try_lock_for_a_while<R: RawMutex, T>(lock: &Mutex<R, T>) -> Option<MutexGuard<'_, R, T>> {
    for _ in 0..DRAIN_TRY_SPINS {
        if let Some(guard) = lock.try_lock() {
            return Some(guard);
        }
        core::hint::spin_loop();
    }
    None
}

/// What one allocation asks for.
#[derive(Clone, Copy, Debug)]
struct Request {
    cpu: CpuId,
    order: Order,
    mt: MigrateType,
    highest: ZoneType,
}

/// Whether an allocation may leave its preferred node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum NodeScope {
    AllNodes = 0,
    ThisNode = 1,
}

/// Names one precomputed zonelist.
#[derive(Clone, Copy, Debug)]
struct ZonelistId {
    slot: usize,
    highest: ZoneType,
    scope: NodeScope,
}

impl ZonelistId {
    /// The zonelist of node slot `slot` for an allocation with `flags`
    /// whose highest zone is `highest`.
    #[inline]
    fn new(slot: usize, highest: ZoneType, flags: AllocFlags) -> ZonelistId {
        let scope = if flags.contains(AllocFlags::THIS_NODE) {
            NodeScope::ThisNode
        } else {
            NodeScope::AllNodes
        };
        ZonelistId {
            slot,
            highest,
            scope,
        }
    }
}

/// One CPU: its per-CPU lists for every zone under one lock, and where it
/// allocates from. Aligned so two CPUs' locks never share a cache line
/// (nor the adjacent line the prefetcher pairs with it).
#[repr(align(128))]
pub(crate) struct CpuSlot<R: RawMutex> {
    pub(crate) lists: Mutex<R, CpuLists>,
    /// The CPU's home node.
    pub(crate) node: NodeId,
    /// The home node's index in the zonelists.
    pub(crate) zonelists: usize,
}

/// One node's zonelists, precomputed per node scope and highest zone so the
/// allocation path never builds one.
#[derive(Clone, Debug)]
struct NodeZonelists {
    node: NodeId,
    /// `[scope][highest zone]` → zone indices in fallback order.
    lists: [[Vec<usize>; NR_ZONE_TYPES]; 2],
    /// Per highest zone: Linux `alloc_flags_nofragment` for the preferred
    /// zone. When it is Normal and a DMA32 zone could take the request
    /// instead, the first pass avoids splitting other types' pageblocks.
    nofragment: [AllocMode; NR_ZONE_TYPES],
}

/// Zonelists per node: own zones highest first, then other nodes by
/// distance (here: by how far their ids are), each highest first (Linux's
/// node-ordered `ZONELIST_FALLBACK`).
fn build_zonelists<R: RawMutex>(zones: &[Zone<R>]) -> Vec<NodeZonelists> {
    let mut nodes: Vec<NodeId> = zones.iter().map(|z| z.core.node).collect();
    nodes.dedup();
    nodes
        .iter()
        .map(|&node| {
            let mut order: Vec<NodeId> = nodes.clone();
            order.sort_by_key(|n| (n.0.abs_diff(node.0), n.0));
            let full: Vec<usize> = order
                .iter()
                .flat_map(|&n| {
                    let mut own: Vec<usize> = (0..zones.len())
                        .filter(|&i| zones[i].core.node == n)
                        .collect();
                    own.sort_by_key(|&i| core::cmp::Reverse(zones[i].core.zone_type));
                    own
                })
                .collect();
            let select = |scope: NodeScope, highest: ZoneType| -> Vec<usize> {
                full.iter()
                    .copied()
                    .filter(|&i| zones[i].core.zone_type <= highest)
                    .filter(|&i| scope == NodeScope::AllNodes || zones[i].core.node == node)
                    .collect()
            };
            let lists = [NodeScope::AllNodes, NodeScope::ThisNode]
                .map(|scope| ZoneType::ALL.map(|t| select(scope, t)));
            let has_dma32 = zones
                .iter()
                .any(|z| z.core.node == node && z.core.zone_type == ZoneType::Dma32);
            let nofragment = ZoneType::ALL.map(|t| {
                let preferred = lists[0][t.idx()].first().map(|&i| zones[i].core.zone_type);
                let eligible =
                    preferred == Some(ZoneType::Normal) && (nodes.len() == 1 || has_dma32);
                if eligible {
                    AllocMode::NOFRAGMENT
                } else {
                    AllocMode::empty()
                }
            });
            NodeZonelists {
                node,
                lists,
                nofragment,
            }
        })
        .collect()
}
