//! The allocation path (Linux `__alloc_pages` and `get_page_from_freelist`):
//! the per-CPU fast path, then passes over the zonelist at the low and min
//! watermarks, then drains and one last pass. Every pass reaches a zone
//! through [`Allocator::rmqueue`], and every block through the one request
//! path ([`crate::request`]).

use crate::sync::atomic::Ordering;

use lock_api::RawMutex;

use super::slot::CpuSlot;
use super::zonelist::ZonelistId;
use super::Allocator;
use crate::config::{CmaSupport, PcpMode};
use crate::engine::watermark::AllocMode;
use crate::engine::zone::Zone;
use crate::error::AllocError;
use crate::events::AllocKind;
use crate::pcp::index::pcp_index;
use crate::pcp::lists::CpuLists;
use crate::request::Request;
use crate::units::{AllocFlags, CpuId, MigrateType, NodeId, Order, Pfn, ZoneType};

/// What one pass of [`Allocator::alloc_general`] is, for the statistics
/// and the sources it may use. A failed request counts once (Linux counts a
/// failed request once, and a short bulk result is none).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Attempt {
    /// A request of its own: a failure counts.
    Counted,
    /// One of several attempts for one request (the extra pages of a bulk
    /// call, compaction's retries): a failure does not count.
    Uncounted,
    /// The first attempt of a confined or packed request before a
    /// pageblock is evacuated for it ([`Allocator::alloc_confining`]): not
    /// counted, no Linux fallback ([`AllocMode::CONFINED_ONLY`]), and the
    /// high-atomic reserves kept.
    ConfinedOnly,
}

impl<R: RawMutex> Allocator<R> {
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

    /// Linux `__alloc_pages`: a fast pass at the low watermark, then a slow
    /// pass at the min watermark with whatever reserves the flags allow, and
    /// before failing one more after draining per-CPU lists and giving back
    /// high-atomic pageblocks. There is no reclaim or compaction here: a
    /// caller that can reclaim does so and retries.
    ///
    /// `zonelists` names the preferred node's zonelists (`None`: a node
    /// without memory); `lists` are `cpu`'s lists, if this call holds them.
    /// A failure for want of memory is counted, once per request.
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
        self.alloc_general(cpu, zonelists, order, flags, lists, Attempt::Counted)
    }

    /// The common case, decided exactly as `get_page_from_freelist` would
    /// decide it, without its loop or its mode bookkeeping: the first zone
    /// of the zonelist passes its watermark and this CPU's list has a block
    /// cached.
    #[inline(always)]
    fn pcp_fast(&self, order: Order, flags: AllocFlags, lists: &mut CpuLists) -> Option<Pfn> {
        if flags.intersects(AllocFlags::THIS_NODE | AllocFlags::NO_FALLBACK) {
            // The first zone may be another node's, or a cached block may
            // lie in another type's pageblock: the full path decides.
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
    pub(crate) fn alloc_general(
        &self,
        cpu: CpuId,
        zonelists: Option<usize>,
        order: Order,
        flags: AllocFlags,
        lists: Option<&mut CpuLists>,
        kind: Attempt,
    ) -> Result<Pfn, AllocError> {
        let max = self.config.max_order();
        if order > max {
            return Err(AllocError::InvalidOrder { order, max });
        }
        let mut request = Request::new(order, flags, &self.config);
        if kind == Attempt::ConfinedOnly {
            request.mode |= AllocMode::CONFINED_ONLY;
        }
        let zonelist = self.zonelist_id(zonelists, request.highest, flags)?;
        let got = self.alloc_passes(cpu, zonelist, request, flags, lists);
        if let (Err(AllocError::NoMemory { order }), Attempt::Counted) = (got, kind) {
            self.failures[order.idx()].fetch_add(1, Ordering::Relaxed);
        }
        got
    }

    /// One allocation attempt through `cpu`'s lists, as `kind` says
    /// (counted or not, confined only or not).
    pub(crate) fn attempt(
        &self,
        cpu: CpuId,
        order: Order,
        flags: AllocFlags,
        kind: Attempt,
    ) -> Result<Pfn, AllocError> {
        let slot = self.cpu_slot(cpu)?;
        let mut held = self.try_hold(slot);
        let pfn = self.alloc_general(
            cpu,
            Some(slot.zonelists),
            order,
            flags,
            held.as_deref_mut(),
            kind,
        )?;
        drop(held);
        self.emit_alloc(pfn, order, flags, cpu, AllocKind::Single);
        Ok(pfn)
    }

    /// Counts a failed allocation of `order` (outside any lock).
    pub(crate) fn count_failure(&self, order: Order) {
        self.failures[order.idx()].fetch_add(1, Ordering::Relaxed);
    }

    /// The zonelist of node slot `slot` for `flags`, or [`AllocError::NoZone`]
    /// if it holds no zone (or the node has no memory).
    #[inline]
    pub(crate) fn zonelist_id(
        &self,
        slot: Option<usize>,
        highest: ZoneType,
        flags: AllocFlags,
    ) -> Result<ZonelistId, AllocError> {
        let slot = slot.ok_or(AllocError::NoZone)?;
        let zonelist = ZonelistId::new(slot, highest, flags);
        if self.zonelist(zonelist).is_empty() {
            return Err(AllocError::NoZone);
        }
        Ok(zonelist)
    }

    /// The passes of [`Allocator::alloc_general`] over a checked request.
    fn alloc_passes(
        &self,
        cpu: CpuId,
        zonelist: ZonelistId,
        request: Request,
        flags: AllocFlags,
        mut lists: Option<&mut CpuLists>,
    ) -> Result<Pfn, AllocError> {
        let (order, mt, base) = (request.order, request.mt, request.mode);
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
        // shrink them and try again" (after direct reclaim, in Linux). The
        // first attempt of a request that may have a pageblock emptied for
        // it keeps the reserves: like compaction, the evacuation comes
        // before them, and the attempt after it gets here again.
        let unreserved =
            !base.contains(AllocMode::CONFINED_ONLY) && self.unreserve_highatomic(zonelist, mt);
        let drained = self.drain_zonelist(zonelist, cpu, lists.as_deref_mut());
        if unreserved || drained {
            if let Some(pfn) = self.get_page_from_freelist(zonelist, request, slow, lists) {
                return Ok(pfn);
            }
        }
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

    /// The zones an allocation may use, in the order it tries them.
    #[inline]
    pub(crate) fn zonelist(&self, id: ZonelistId) -> &[usize] {
        self.zonelists[id.slot].get(id)
    }

    /// One pass over the zonelist (Linux `get_page_from_freelist`), repeated
    /// without `NOFRAGMENT` if that found nothing.
    pub(crate) fn get_page_from_freelist(
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
    pub(crate) fn zone_allows(
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
        let cached =
            pcp_index(req.order, req.mt, pb).filter(|_| zone.core.caches(req.mt, req.order));
        if let (Some(lists), Some(index)) = (lists, cached) {
            let pcp = &mut lists.zones[zi];
            let cached = if mode.contains(AllocMode::NO_FALLBACK) {
                // Only a block of the type's own pageblocks: the answer must
                // not depend on what earlier requests left on the list.
                pcp.take_cached_exact(&zone.core, index, req.order, req.mt, mode)
            } else {
                pcp.alloc(zone, index, req.order, req.mt, mode)
            };
            if let Some(idx) = cached {
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
}
