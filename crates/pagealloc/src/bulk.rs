//! Bulk allocation and batched free of order-0 pages (seed 004's bulk
//! allocator, Linux `alloc_pages_bulk` and `free_unref_folios`): many pages
//! under one per-CPU lock round, refilled from the zone a batch at a time.

use core::fmt;

use lock_api::RawMutex;

use crate::allocator::Allocator;
use crate::buddy::FreePlacement;
use crate::config::PcpMode;
use crate::error::{AllocError, BlockError};
use crate::events::{AllocKind, FreeKind};
use crate::page::PageMeta;
use crate::pcp::{pcp_free_index, pcp_index, CpuLists};
use crate::units::{AllocFlags, CpuId, Order, Pfn};
use crate::watermark::AllocMode;

/// Why a batched free was refused. Nothing was freed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BulkFreeError {
    /// The position of the offending frame in the batch.
    pub index: usize,
    /// What is wrong with it (a frame named twice is a double free).
    pub error: BlockError,
}

impl fmt::Display for BulkFreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch entry {}: {}", self.index, self.error)
    }
}

impl core::error::Error for BulkFreeError {}

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
        if out.len() > 1 && !flags.contains(AllocFlags::NO_WATERMARKS) {
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
        out[0] = single(lists)?;
        got = 1;
        if pcp_off {
            // Without per-CPU lists a bulk request is ordinary requests.
            while got < out.len() {
                let Ok(pfn) = single(None) else {
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
    /// error names the first bad entry.
    pub fn free_bulk(&self, cpu: CpuId, pfns: &[Pfn]) -> Result<(), BulkFreeError> {
        let Some(slot) = self.cpus.get(cpu.0 as usize) else {
            return Err(BulkFreeError {
                index: 0,
                error: BlockError::InvalidCpu { cpu: cpu.0 },
            });
        };
        let mut held = self.try_hold(slot);
        self.free_bulk_with(pfns, held.as_deref_mut())?;
        drop(held);
        self.emit_bulk_frees(cpu, pfns);
        Ok(())
    }

    /// [`Allocator::free_bulk`] with the freeing CPU's lists held, if they
    /// are. Emits no events.
    ///
    /// Two passes. The first takes every block over from its user with one
    /// compare-and-swap each, into a transient per-CPU state that keeps the
    /// old record recoverable; a bad entry (including a frame named twice,
    /// whose second swap finds the first one's mark) stops it, and the
    /// blocks taken so far get their records back, so nothing changed. The
    /// second pass puts each block on its list, or on the buddy lists. (Its
    /// `continue` on a frame outside every zone cannot run: the first pass
    /// refused such a batch.)
    pub(crate) fn free_bulk_with(
        &self,
        pfns: &[Pfn],
        mut lists: Option<&mut CpuLists>,
    ) -> Result<(), BulkFreeError> {
        let mut hint = 0;
        for (index, &pfn) in pfns.iter().enumerate() {
            if let Err(error) = self.take_over(pfn, &mut hint) {
                for &taken in &pfns[..index] {
                    self.give_back(taken);
                }
                return Err(BulkFreeError { index, error });
            }
        }
        for &pfn in pfns {
            let Some(zi) = self.zone_index_near(pfn, &mut hint) else {
                continue;
            };
            let zone = &self.zones[zi];
            let z = &zone.core;
            let idx = z.idx(pfn);
            let index = pcp_free_index(Order::ZERO, z.block_mt(pfn), z.geo.pageblock);
            match (lists.as_deref_mut(), index) {
                // Each page is committed as Linux's `free_unref_folios`
                // commits each folio: the high mark and drains move page by
                // page, exactly as single frees would move them.
                (Some(held), Some(index)) => held.zones[zi].free_owned(zone, idx, index),
                _ => {
                    let mut guard = zone.lock();
                    z.pages.set(idx, PageMeta::TAIL);
                    let mut ops = guard.ops();
                    ops.free_block(pfn, Order::ZERO, FreePlacement::Auto);
                    ops.f.stats.count_free(Order::ZERO);
                }
            }
        }
        Ok(())
    }

    /// Takes the allocated order-0 page `pfn` over from its user: its record
    /// becomes the transient [`PageMeta::freeing`] mark.
    #[inline]
    fn take_over(&self, pfn: Pfn, hint: &mut usize) -> Result<(), BlockError> {
        let (zi, meta) = match self.lookup_allocated_near(pfn, Order::ZERO, hint) {
            Some(found) => found,
            None => self.find_allocated_settled(pfn, Order::ZERO)?,
        };
        let z = &self.zones[zi].core;
        z.pages
            .replace(z.idx(pfn), meta, meta.freeing())
            .map_err(|_| self.lost_race(pfn, Order::ZERO))
    }

    /// Undoes [`Allocator::take_over`] of `pfn`.
    fn give_back(&self, pfn: Pfn) {
        if let Some(zi) = self.zone_index(pfn) {
            let z = &self.zones[zi].core;
            let idx = z.idx(pfn);
            z.pages.set(idx, z.pages.get(idx).unfreeing());
        }
    }

    /// Reports a batched free to the event sink, if any.
    pub(crate) fn emit_bulk_frees(&self, cpu: CpuId, pfns: &[Pfn]) {
        if self.events.is_some() {
            for &pfn in pfns {
                self.emit_free(pfn, Order::ZERO, cpu, FreeKind::Batched);
            }
        }
    }
}
