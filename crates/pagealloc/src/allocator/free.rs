//! The free path (Linux `__free_pages` / `free_frozen_pages`) and
//! `split_page`, with the one validation of a block a caller names.
//!
//! [`Allocator::find_allocated`] is that validation: inline, one zone
//! lookup and one record compare for the common case
//! ([`Allocator::lookup_allocated`]); anything else goes to
//! [`Allocator::diagnose`], which names the precise reason under the
//! zone lock. Records are read without the lock on the fast path, and a
//! drain or merge under the lock passes through states a lockless reader
//! would misname (a head already turned tail, not yet merged into the
//! block that covers it), so every refusal is settled under the lock. A
//! free then takes the head over with one compare-and-swap; if that fails,
//! another thread changed the record in between, and the reason is again
//! settled by [`Allocator::diagnose`].

use lock_api::RawMutex;

use super::Allocator;
use crate::engine::buddy::FreePlacement;
use crate::engine::page::{PageMeta, PageState};
use crate::error::BlockError;
use crate::events::FreeKind;
use crate::pcp::lists::CpuLists;
use crate::units::{CpuId, MigrateType, Order, Pfn};

/// Whether a caller holds the zone lock already.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ZoneLock {
    /// It does not: take it.
    Take,
    /// It does.
    Held,
}

impl<R: RawMutex> Allocator<R> {
    /// The zone and record of `pfn` if it heads an allocated block of
    /// `order`: one zone lookup and one record compare (only present,
    /// aligned frames of valid orders ever head an allocated block). `None`
    /// says nothing about why: [`Allocator::find_allocated`] does.
    #[inline(always)]
    pub(crate) fn lookup_allocated(
        &self,
        pfn: Pfn,
        order: Order,
        hint: &mut usize,
    ) -> Option<(usize, PageMeta)> {
        let zi = self.zone_index_near(pfn, hint)?;
        let meta = self.zones[zi].core.meta(pfn);
        meta.is_allocated_of_order(order).then_some((zi, meta))
    }

    /// The zone and record of `pfn` if it heads an allocated block of
    /// `order`, or precisely why not. Changes nothing.
    #[inline(always)]
    pub(crate) fn find_allocated(
        &self,
        pfn: Pfn,
        order: Order,
        hint: &mut usize,
    ) -> Result<(usize, PageMeta), BlockError> {
        match self.lookup_allocated(pfn, order, hint) {
            Some(found) => Ok(found),
            None => self.diagnose(pfn, order),
        }
    }

    /// [`Allocator::find_allocated`] past its fast check, under the zone
    /// lock: the block after all (a racing free and allocation settled it
    /// so), or why it is not one.
    #[cold]
    #[inline(never)]
    pub(crate) fn diagnose(&self, pfn: Pfn, order: Order) -> Result<(usize, PageMeta), BlockError> {
        self.diagnose_with(pfn, order, ZoneLock::Take)
    }

    /// [`Allocator::diagnose`] by a caller that already holds the zone's
    /// lock (`ZoneLock::Held`) or not.
    #[cold]
    #[inline(never)]
    pub(crate) fn diagnose_with(
        &self,
        pfn: Pfn,
        order: Order,
        lock: ZoneLock,
    ) -> Result<(usize, PageMeta), BlockError> {
        let max = self.config.max_order();
        if order > max {
            return Err(BlockError::InvalidOrder { order, max });
        }
        let zi = self.zone_index(pfn).ok_or(BlockError::OutOfRange { pfn })?;
        let zone = &self.zones[zi];
        let z = &zone.core;
        if !z.is_present(pfn) {
            return Err(BlockError::InHole { pfn });
        }
        if !pfn.is_aligned(order) {
            return Err(BlockError::Misaligned { pfn, order });
        }
        let _settled = (lock == ZoneLock::Take).then(|| zone.lock());
        let meta = z.meta(pfn);
        match meta.state() {
            PageState::AllocHead if meta.is_contig() => Err(BlockError::ContigRun { pfn }),
            PageState::AllocHead if meta.order() == order => Ok((zi, meta)),
            PageState::AllocHead => Err(BlockError::WrongOrder {
                pfn,
                order,
                allocated: meta.order(),
            }),
            PageState::FreeHead
            | PageState::PcpHead
            | PageState::ReportingHead
            | PageState::HeldHead => Err(BlockError::AlreadyFree { pfn }),
            PageState::OfflineHead => Err(BlockError::NotAllocated { pfn }),
            PageState::Tail => match z.containing_head(pfn).map(|(_, m)| m.state()) {
                Some(
                    PageState::FreeHead
                    | PageState::PcpHead
                    | PageState::ReportingHead
                    | PageState::HeldHead,
                ) => Err(BlockError::AlreadyFree { pfn }),
                _ => Err(BlockError::NotAllocated { pfn }),
            },
        }
    }

    /// Why taking over the head of `pfn` failed: another thread changed it
    /// between the check and the swap. The caller must not hold the zone
    /// lock (the answer is settled under it).
    #[cold]
    #[inline(never)]
    pub(crate) fn lost_race(&self, pfn: Pfn, order: Order) -> BlockError {
        self.diagnose(pfn, order)
            .err()
            .unwrap_or(BlockError::AlreadyFree { pfn })
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
        let slot = self.cpu_slot(cpu)?;
        let mut held = self.try_hold(slot);
        self.free_pages(pfn, order, held.as_deref_mut())?;
        drop(held);
        self.emit_free(pfn, order, cpu, FreeKind::Single);
        Ok(())
    }

    /// Frees `pfn`/`order` onto `lists` (the freeing CPU's, if this call
    /// holds them) when its order and pageblock type are cached there, else
    /// straight to the buddy lists. The common case (lists held, an
    /// allocated head of a cached order) is one lookup, one compare-and-swap
    /// and the list's bookkeeping, inline; everything else is out of line.
    #[inline(always)]
    pub(crate) fn free_pages(
        &self,
        pfn: Pfn,
        order: Order,
        mut lists: Option<&mut CpuLists>,
    ) -> Result<(), BlockError> {
        if let Some(held) = lists.as_deref_mut() {
            if let Some((zi, meta)) = self.lookup_allocated(pfn, order, &mut 0) {
                if let Some(index) = self.pcp_free_target(held, zi, pfn, order) {
                    let zone = &self.zones[zi];
                    return held.zones[zi]
                        .free(zone, zone.core.idx(pfn), meta, order, index)
                        .map_err(|_| self.lost_race(pfn, order));
                }
            }
        }
        self.free_general(pfn, order, lists)
    }

    /// [`Allocator::free_pages`] past its fast path: the validation with a
    /// precise error, then the per-CPU list or the buddy lists.
    #[inline(never)]
    fn free_general(
        &self,
        pfn: Pfn,
        order: Order,
        lists: Option<&mut CpuLists>,
    ) -> Result<(), BlockError> {
        let (zi, meta) = self.find_allocated(pfn, order, &mut 0)?;
        if let Some(lists) = lists {
            if let Some(index) = self.pcp_free_target(lists, zi, pfn, order) {
                let zone = &self.zones[zi];
                return lists.zones[zi]
                    .free(zone, zone.core.idx(pfn), meta, order, index)
                    .map_err(|_| self.lost_race(pfn, order));
            }
        }
        self.free_to_buddy(zi, pfn, order, meta)
    }

    /// The per-CPU list a block freed from zone `zi` goes on, if any: its
    /// pageblock's type is cached at this order (a placement policy may
    /// send it to the zone instead) and the lists do not decline it (with
    /// memory regions, a block above the list's lowest region).
    #[inline(always)]
    fn pcp_free_target(
        &self,
        lists: &CpuLists,
        zi: usize,
        pfn: Pfn,
        order: Order,
    ) -> Option<usize> {
        let z = &self.zones[zi].core;
        let pcp = &lists.zones[zi];
        let index = pcp.free_lists.get(z.block_mt(pfn), order)?;
        (!pcp.declines(z, index, z.idx(pfn))).then_some(index)
    }

    /// Frees the allocated block `pfn`/`order`, whose record read `meta`,
    /// straight to the buddy lists of zone `zi`.
    fn free_to_buddy(
        &self,
        zi: usize,
        pfn: Pfn,
        order: Order,
        meta: PageMeta,
    ) -> Result<(), BlockError> {
        let zone = &self.zones[zi];
        let z = &zone.core;
        let mut guard = zone.lock();
        if z.pages.replace(z.idx(pfn), meta, PageMeta::TAIL).is_err() {
            // A racing free won. Settle the reason without the lock held.
            drop(guard);
            return Err(self.lost_race(pfn, order));
        }
        let mut ops = guard.ops();
        ops.free_block(pfn, order, FreePlacement::Auto);
        ops.f.stats.count_free(order);
        Ok(())
    }

    /// Turns the allocated block `pfn`/`order` into `2^order` order-0
    /// allocations that can be freed one by one (Linux `split_page`).
    ///
    /// It rewrites the records under the zone lock, so a snapshot
    /// ([`Clone`]) or the invariant walk never sees a half-split block.
    pub fn split_page(&self, pfn: Pfn, order: Order) -> Result<(), BlockError> {
        let (zi, meta) = self.find_allocated(pfn, order, &mut 0)?;
        let zone = &self.zones[zi];
        let z = &zone.core;
        let idx = z.idx(pfn);
        let page = PageMeta::allocated(Order::ZERO, meta.alloc_migratetype());
        let guard = zone.lock();
        if z.pages.replace(idx, meta, page).is_err() {
            drop(guard);
            return Err(self.lost_race(pfn, order));
        }
        for k in 1..order.nr_pages().0 as u32 {
            z.pages.set(idx + k, page);
        }
        self.split_pages
            .fetch_add(1, crate::sync::atomic::Ordering::Relaxed);
        drop(guard);
        Ok(())
    }

    /// The allocated block that starts at `pfn`, as its order and
    /// migratetype, or `None` if `pfn` does not start one.
    pub fn allocated_block(&self, pfn: Pfn) -> Option<(Order, MigrateType)> {
        let zone = &self.zone_of(pfn)?.core;
        let meta = zone.meta(pfn);
        (meta.state() == PageState::AllocHead).then(|| (meta.order(), meta.alloc_migratetype()))
    }
}
