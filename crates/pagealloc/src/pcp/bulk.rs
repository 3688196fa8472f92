//! Bulk allocation and batched free of order-0 pages (seed 004's bulk
//! allocator, Linux `alloc_pages_bulk` and `free_unref_folios`): many pages
//! under one per-CPU lock round, refilled from the zone a batch at a time.

use alloc::vec::Vec;

use lock_api::RawMutex;

use crate::allocator::allocate::Attempt;
use crate::allocator::free::ZoneLock;
use crate::allocator::Allocator;
use crate::config::PcpMode;
use crate::engine::buddy::FreePlacement;
use crate::engine::page::PageMeta;
use crate::engine::watermark::AllocMode;
use crate::engine::zone::ZoneGuard;
use crate::error::{AllocError, BlockError, BulkFreeError};
use crate::events::{AllocKind, FreeKind};
use crate::pcp::index::pcp_index;
use crate::pcp::lists::CpuLists;
use crate::units::{AllocFlags, CpuId, Order, Pfn};

impl<R: RawMutex> Allocator<R> {
    /// Fills `out` with order-0 pages through `cpu`'s lists, under one lock
    /// round, and returns how many it got (Linux `alloc_pages_bulk`): the
    /// first zone whose watermark allows the whole request serves it from
    /// the per-CPU list, refilling a batch at a time; if that yields nothing
    /// one ordinary allocation is tried (with its drains), so an empty
    /// result means what a failed [`Allocator::alloc_on_cpu`] means: out of
    /// pages, but for pages cached on lists another thread holds as
    /// [`crate::LocalLists`].
    pub fn alloc_bulk(
        &self,
        cpu: CpuId,
        flags: AllocFlags,
        out: &mut [Pfn],
    ) -> Result<usize, AllocError> {
        let slot = self.cpu_slot(cpu)?;
        let mut held = self.try_hold(slot);
        let got = self.alloc_bulk_with(cpu, slot.zonelists, flags, out, held.as_deref_mut());
        drop(held);
        let got = got?;
        self.emit_bulk_allocs(cpu, flags, &out[..got]);
        Ok(got)
    }

    /// [`Allocator::alloc_bulk`] with `cpu`'s lists held (`None`: not held,
    /// or per-CPU lists off). Emits no events.
    pub(crate) fn alloc_bulk_with(
        &self,
        cpu: CpuId,
        zonelists: usize,
        flags: AllocFlags,
        out: &mut [Pfn],
        mut lists: Option<&mut CpuLists>,
    ) -> Result<usize, AllocError> {
        if out.is_empty() {
            return Ok(0);
        }
        let mt = flags.migratetype();
        let mut got = 0;
        // The list's pages may lie in other types' pageblocks: a request
        // that forbids fallback takes its pages one by one, each through
        // the request path.
        let exact = flags.contains(AllocFlags::NO_FALLBACK);
        if out.len() > 1 && !exact && !flags.contains(AllocFlags::NO_WATERMARKS) {
            if let Some(held) = lists.as_deref_mut() {
                if let Some(zi) = self.bulk_zone(zonelists, flags, out.len() as u64) {
                    let zone = &self.zones[zi];
                    if let Some(index) = pcp_index(Order::ZERO, mt, zone.core.geo.pageblock) {
                        got = held.zones[zi].take_bulk(zone, index, mt, out);
                    }
                }
            }
        }
        if got > 0 {
            return Ok(got);
        }
        let pcp_off = self.config.pcp != PcpMode::Enabled;
        let single = |lists: Option<&mut CpuLists>| {
            self.alloc_pages(cpu, Some(zonelists), Order::ZERO, flags, lists)
        };
        out[0] = single(lists.as_deref_mut())?;
        got = 1;
        if pcp_off || exact {
            // Without per-CPU lists a bulk request is ordinary requests. A
            // short result is not a failure (Linux `alloc_pages_bulk`
            // counts none either): only an empty one is.
            while got < out.len() {
                let more = self.alloc_general(
                    cpu,
                    Some(zonelists),
                    Order::ZERO,
                    flags,
                    lists.as_deref_mut(),
                    Attempt::Uncounted,
                );
                let Ok(pfn) = more else {
                    break;
                };
                out[got] = pfn;
                got += 1;
            }
        }
        Ok(got)
    }

    /// Reports bulk-allocated pages to the event sink, if any.
    pub(crate) fn emit_bulk_allocs(&self, cpu: CpuId, flags: AllocFlags, pfns: &[Pfn]) {
        if self.events.is_some() {
            for &pfn in pfns {
                self.emit_alloc(pfn, Order::ZERO, flags, cpu, AllocKind::Bulk);
            }
        }
    }

    /// The first zone of the zonelist with room for `nr` pages above its
    /// low watermark.
    fn bulk_zone(&self, zonelists: usize, flags: AllocFlags, nr: u64) -> Option<usize> {
        let highest = flags.highest_zone();
        self.zonelist_of_slot(zonelists, highest, flags)
            .iter()
            .copied()
            .find(|&i| {
                self.zones[i]
                    .core
                    .watermark_ok_bulk(nr, highest, AllocMode::empty())
            })
    }

    /// Frees a batch of order-0 pages through `cpu`'s lists under one lock
    /// round. The batch is all or nothing: if any entry is not an allocated
    /// order-0 page (or a frame appears twice) nothing is freed and the
    /// error names the first bad entry; an invalid CPU is refused whatever
    /// the batch holds.
    pub fn free_bulk(&self, cpu: CpuId, pfns: &[Pfn]) -> Result<(), BulkFreeError> {
        let slot = self.cpu_slot(cpu)?;
        let mut held = self.try_hold(slot);
        self.free_bulk_with(pfns, held.as_deref_mut())?;
        drop(held);
        self.emit_bulk_frees(cpu, pfns);
        Ok(())
    }

    /// [`Allocator::free_bulk`] with the freeing CPU's lists held (`None`:
    /// not held, or per-CPU lists off). Emits no events.
    ///
    /// Pass 1 takes every page over (a compare-and-swap into a transient
    /// mark that keeps the old record); on a bad entry it gives them all
    /// back, so a refused batch changes nothing. Pass 2 links each page,
    /// committed as Linux's `free_unref_folios` commits each folio. With
    /// the lists held, a snapshot waits for them; without, both passes run
    /// with every zone lock held, so no snapshot ever sees a page in the
    /// transient mark.
    pub(crate) fn free_bulk_with(
        &self,
        pfns: &[Pfn],
        lists: Option<&mut CpuLists>,
    ) -> Result<(), BulkFreeError> {
        match lists {
            Some(held) => {
                self.take_over_all(pfns, ZoneLock::Take)?;
                let mut hint = 0;
                for &pfn in pfns {
                    let Some(zi) = self.zone_index_near(pfn, &mut hint) else {
                        continue;
                    };
                    let zone = &self.zones[zi];
                    let z = &zone.core;
                    let idx = z.idx(pfn);
                    let cached = held.zones[zi].free_lists.get(z.block_mt(pfn), Order::ZERO);
                    match cached {
                        // The high mark and drains move page by page,
                        // exactly as single frees would move them.
                        Some(index) if !held.zones[zi].declines(z, index, idx) => {
                            held.zones[zi].free_owned(zone, idx, index)
                        }
                        _ => {
                            let mut guard = zone.lock();
                            z.pages.set(idx, PageMeta::TAIL);
                            let mut ops = guard.ops();
                            ops.free_block(pfn, Order::ZERO, FreePlacement::Auto);
                            ops.f.stats.count_free(Order::ZERO);
                        }
                    }
                }
            }
            None => {
                let mut zones: Vec<ZoneGuard<'_, R>> =
                    self.zones.iter().map(|z| z.lock()).collect();
                self.take_over_all(pfns, ZoneLock::Held)?;
                let mut hint = 0;
                for &pfn in pfns {
                    let Some(zi) = self.zone_index_near(pfn, &mut hint) else {
                        continue;
                    };
                    let z = &self.zones[zi].core;
                    z.pages.set(z.idx(pfn), PageMeta::TAIL);
                    let mut ops = zones[zi].ops();
                    ops.free_block(pfn, Order::ZERO, FreePlacement::Auto);
                    ops.f.stats.count_free(Order::ZERO);
                }
            }
        }
        Ok(())
    }

    /// Pass 1 of [`Allocator::free_bulk_with`]: takes every page of `pfns`
    /// over, or none. `lock` says whether the caller holds every zone lock.
    fn take_over_all(&self, pfns: &[Pfn], lock: ZoneLock) -> Result<(), BulkFreeError> {
        let mut hint = 0;
        for (index, &pfn) in pfns.iter().enumerate() {
            if let Err(error) = self.take_over(pfn, &mut hint, lock) {
                for &taken in &pfns[..index] {
                    self.give_back(taken);
                }
                return Err(BulkFreeError::Entry { index, error });
            }
        }
        Ok(())
    }

    /// Takes the allocated order-0 page `pfn` over for a batched free: its
    /// record becomes the transient mark (a per-CPU head that keeps the
    /// rest of the allocated record), so a second entry of the same frame,
    /// or a racing free, fails.
    #[inline]
    fn take_over(&self, pfn: Pfn, hint: &mut usize, lock: ZoneLock) -> Result<(), BlockError> {
        // One read of the record: the swap must start from the very value
        // that was checked, or a racing free could slip in between.
        let found = match self.zone_index_near(pfn, hint) {
            Some(zi) => {
                let meta = self.zones[zi].core.meta(pfn);
                if meta.is_allocated_of_order(Order::ZERO) {
                    Ok((zi, meta))
                } else {
                    self.diagnose_with(pfn, Order::ZERO, lock)
                }
            }
            None => self.diagnose_with(pfn, Order::ZERO, lock),
        };
        let (zi, meta) = found?;
        let z = &self.zones[zi].core;
        z.pages
            .replace(z.idx(pfn), meta, meta.freeing())
            .map_err(|_| match lock {
                ZoneLock::Take => self.lost_race(pfn, Order::ZERO),
                ZoneLock::Held => self
                    .diagnose_with(pfn, Order::ZERO, ZoneLock::Held)
                    .err()
                    .unwrap_or(BlockError::AlreadyFree { pfn }),
            })
    }

    /// Undoes [`Allocator::take_over`] of `pfn`.
    fn give_back(&self, pfn: Pfn) {
        if let Some(zi) = self.zone_index(pfn) {
            let z = &self.zones[zi].core;
            let idx = z.idx(pfn);
            z.pages.set(idx, z.pages.get(idx).unfreeing());
        }
    }

    /// Reports batch-freed pages to the event sink, if any.
    pub(crate) fn emit_bulk_frees(&self, cpu: CpuId, pfns: &[Pfn]) {
        if self.events.is_some() {
            for &pfn in pfns {
                self.emit_free(pfn, Order::ZERO, cpu, FreeKind::Batched);
            }
        }
    }
}
