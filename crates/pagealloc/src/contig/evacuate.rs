//! Confinement's growth by evacuation (after Contiguitas, Zhao et al.,
//! ISCA 2023): when the confined area must grow and no pageblock is wholly
//! free, the lowest movable pageblock is emptied by migration and claimed,
//! instead of Linux's fallback placing unmovable pages among movable ones.
//! Small-order packing ([`Packing::evacuates_for`](crate::Packing::evacuates_for))
//! uses the same growth when its type's pageblocks are full and none is
//! free; "confined" below covers its requests too.
//!
//! [`Allocator::alloc_confining`] first tries the request with Linux's
//! fallback turned off for it ([`Attempt::ConfinedOnly`]): its own lists,
//! then the lowest wholly free pageblock ([`ZoneOps::rmqueue_confined`]).
//! Only if that fails does it look, zone by zone in zonelist order, for a
//! pageblock to empty ([`ZoneOps::evacuation_candidates`]): movable, not
//! isolated, holding only movable allocations, with room for them in the
//! zone's other free movable pages; the lowest first, so the area stays at
//! the low end. The pageblock is isolated, its blocks migrate out through
//! the client's [`Migrator`] (the three steps of every contiguous
//! allocation, [`Taken::Free`]), and undoing the isolation leaves it wholly
//! free, where the request's next attempt claims it. A zone where nothing
//! could be emptied is deferred as compaction defers one (`2^shift`
//! confined requests skip it, the shift growing to
//! [`EVACUATE_MAX_DEFER_SHIFT`]), so a full zone is not rescanned on every
//! request. Only if that fails too does the request take Linux's fallback.

use alloc::vec::Vec;

use lock_api::RawMutex;

use super::isolate::Caller;
use super::migrate::Migrator;
use super::range::Taken;
use crate::allocator::allocate::Attempt;
use crate::allocator::Allocator;
use crate::engine::page::PageState;
use crate::engine::watermark::AllocMode;
use crate::engine::zone::ZoneOps;
use crate::error::AllocError;
use crate::request::Request;
use crate::units::{AllocFlags, CpuId, MigrateType, Order, Pfn};

/// Pageblocks one zone tries to empty for one request before it gives up.
pub(crate) const EVACUATE_CANDIDATES: usize = 3;

/// The largest deferral shift of evacuation: a zone that keeps failing is
/// tried once every 64 confined requests (compaction's bound).
pub(crate) const EVACUATE_MAX_DEFER_SHIFT: u8 = 6;

impl ZoneOps<'_> {
    /// Up to `limit` pageblocks an evacuation may empty, lowest first: of
    /// movable type, not isolated, wholly present, neither wholly free nor
    /// holding any allocation that is not movable (or a contiguous run),
    /// whose allocated pages fit in the zone's free movable pages outside
    /// it, and whose largest allocated block has a free movable block of
    /// its order to go to (a pageblock holding one huge page has none: a
    /// free pageblock would have been claimed instead).
    pub(crate) fn evacuation_candidates(&self, limit: usize) -> Vec<Pfn> {
        let pb = self.z.geo.pageblock;
        let pb_pages = pb.nr_pages().0;
        let movable = MigrateType::Movable;
        let movable_free: u64 = self
            .z
            .geo
            .orders()
            .map(|o| self.f.nr_free_blocks(o, movable) << o.get())
            .sum();
        // The largest order with a free movable block, if any.
        let nonempty = self.f.nonempty[movable.idx()];
        let largest_free = (nonempty != 0).then(|| 15 - nonempty.leading_zeros() as u8);
        let mut found = Vec::new();
        let (Some(mut pfn), Some(largest_free)) = (self.z.start.align_up(pb), largest_free) else {
            return found;
        };
        while pfn.0 + pb_pages <= self.z.end.0 && found.len() < limit {
            let end = Pfn(pfn.0 + pb_pages);
            let free = u64::from(self.z.blocks.free_pages(pfn));
            let used = pb_pages - free.min(pb_pages);
            let fits = used > 0 && used <= movable_free.saturating_sub(free);
            if fits
                && self.z.blocks.base(pfn) == movable
                && !self.z.blocks.is_isolated(pfn)
                && self.z.present.iter().any(|&(s, e)| s <= pfn && end <= e)
                && self.movable_blocks_up_to(pfn, end, largest_free)
            {
                found.push(pfn);
            }
            pfn = end;
        }
        found
    }

    /// Whether every allocated block in `start..end` is movable (and not a
    /// contiguous run) and of order at most `max`, and nothing else in it
    /// is allocated or offline.
    fn movable_blocks_up_to(&self, start: Pfn, end: Pfn, max: u8) -> bool {
        self.z
            .try_for_each_head_overlapping(start, end, |_, meta| match meta.state() {
                PageState::AllocHead
                    if meta.is_contig()
                        || meta.alloc_migratetype() != MigrateType::Movable
                        || meta.order().get() > max =>
                {
                    Err(())
                }
                PageState::OfflineHead => Err(()),
                _ => Ok(()),
            })
            .is_ok()
    }

    /// Whether evacuation skips this zone this time (counting the request),
    /// as [`ZoneOps::compaction_deferred`] decides for compaction.
    fn evacuation_deferred(&mut self) -> bool {
        let f = &mut *self.f;
        let limit = 1u32 << f.evacuate_defer_shift;
        f.evacuate_considered += 1;
        if f.evacuate_considered >= limit {
            f.evacuate_considered = limit;
            return false;
        }
        true
    }

    /// Nothing could be emptied: defer the next tries.
    fn defer_evacuation(&mut self) {
        let f = &mut *self.f;
        f.evacuate_considered = 0;
        f.evacuate_defer_shift = (f.evacuate_defer_shift + 1).min(EVACUATE_MAX_DEFER_SHIFT);
    }

    /// A pageblock was emptied: no deferral.
    fn evacuation_defer_reset(&mut self) {
        self.f.evacuate_considered = 0;
        self.f.evacuate_defer_shift = 0;
    }
}

impl<R: RawMutex> Allocator<R> {
    /// Allocates a block of `order` through `cpu`'s lists, growing the
    /// confined area by migration when it must (with
    /// [`Confinement::LowEnd`](crate::Confinement::LowEnd), for an
    /// unmovable or reclaimable request of at most pageblock order; with
    /// [`Packing::SmallOrders`](crate::Packing::SmallOrders), for a request
    /// it packs): if
    /// neither the type's lists nor a wholly free pageblock can serve it,
    /// the lowest movable pageblock that holds only movable allocations is
    /// emptied through `migrator` and claimed, and Linux's fallback is used
    /// only when no pageblock could be emptied. Any other request is an
    /// ordinary allocation. Counted in `confined_evacuations`,
    /// `confined_evacuated_pages` and `confined_evacuation_fail`.
    ///
    /// Emptying a pageblock drains every CPU's lists, so this must not be
    /// called by a thread holding [`LocalLists`](crate::LocalLists).
    pub fn alloc_confining<M: Migrator + ?Sized>(
        &self,
        cpu: CpuId,
        order: Order,
        flags: AllocFlags,
        migrator: &mut M,
    ) -> Result<Pfn, AllocError> {
        let got = self.attempt_confining(cpu, order, flags, migrator);
        if let Err(AllocError::NoMemory { order }) = got {
            self.count_failure(order);
        }
        got
    }

    /// [`Allocator::alloc_confining`] without counting a failure: the first
    /// attempt of every allocation made with a migrator at hand.
    pub(crate) fn attempt_confining<M: Migrator + ?Sized>(
        &self,
        cpu: CpuId,
        order: Order,
        flags: AllocFlags,
        migrator: &mut M,
    ) -> Result<Pfn, AllocError> {
        if !self.config.evacuates_for(order, flags) {
            return self.attempt(cpu, order, flags, Attempt::Uncounted);
        }
        match self.attempt(cpu, order, flags, Attempt::ConfinedOnly) {
            Err(AllocError::NoMemory { .. }) => {}
            other => return other,
        }
        self.evacuate_for(cpu, order, flags, migrator);
        self.attempt(cpu, order, flags, Attempt::Uncounted)
    }

    /// Empties one pageblock for a confined request that found none free:
    /// the zones of its zonelist in order, each that stays above its min
    /// watermark with a pageblock's worth of free pages fewer and is not
    /// deferred, up to [`EVACUATE_CANDIDATES`] pageblocks each. The
    /// destinations are then taken without a watermark check, as
    /// compaction's free scanner takes its pages after its suitability
    /// test ([`Taken::Free`]). Returns whether one was emptied.
    fn evacuate_for<M: Migrator + ?Sized>(
        &self,
        cpu: CpuId,
        order: Order,
        flags: AllocFlags,
        migrator: &mut M,
    ) -> bool {
        let Ok(slot) = self.cpu_slot(cpu) else {
            return false;
        };
        let request = Request::new(order, flags, &self.config);
        let Ok(zonelist) = self.zonelist_id(Some(slot.zonelists), request.highest, flags) else {
            return false;
        };
        let zones: Vec<usize> = self.zonelist(zonelist).to_vec();
        for zi in zones {
            let zone = &self.zones[zi];
            let pb = zone.core.geo.pageblock;
            // Compaction's suitability test, for a pageblock: while it is
            // emptied its free pages and the destinations of its blocks
            // are out of the free count, at most a pageblock's worth.
            let room = pb.nr_pages().0;
            if !zone
                .core
                .watermark_ok_bulk(room, request.highest, AllocMode::WMARK_MIN)
            {
                continue;
            }
            let candidates = {
                let mut guard = zone.lock();
                let mut ops = guard.ops();
                if ops.evacuation_deferred() {
                    continue;
                }
                ops.evacuation_candidates(EVACUATE_CANDIDATES)
            };
            for start in candidates {
                let end = Pfn(start.0 + pb.nr_pages().0);
                let run = self.take_contig(zi, start, end, Caller::Contig, Taken::Free, migrator);
                let mut guard = zone.lock();
                let mut ops = guard.ops();
                match run {
                    Ok(done) => {
                        ops.f.stats.confined_evacuations += 1;
                        ops.f.stats.confined_evacuated_pages += done.migrated_pages;
                        ops.evacuation_defer_reset();
                        return true;
                    }
                    Err(_) => ops.f.stats.confined_evacuation_fail += 1,
                }
            }
            zone.lock().ops().defer_evacuation();
        }
        false
    }
}
