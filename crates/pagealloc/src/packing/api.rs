//! [`Allocator::alloc_packed`]: the explicit packed call of seed 001
//! (`alloc_pages_compact`), over the mechanism in [`super::take`].

use alloc::vec::Vec;

use lock_api::RawMutex;

use crate::allocator::Allocator;
use crate::engine::page::PageMeta;
use crate::error::AllocError;
use crate::events::AllocKind;
use crate::policy::PackClaim;
use crate::request::Request;
use crate::units::{AllocFlags, CpuId, Order, Pfn};

impl<R: RawMutex> Allocator<R> {
    /// Allocates order-0 pages of the flags' migratetype into `out`, packed
    /// into pageblocks that type already owns (seed 001's
    /// `alloc_pages_compact`), and returns how many it placed at the start
    /// of `out`.
    ///
    /// Zones are tried in zonelist order. In each, pages come from the small
    /// (order < 3) free blocks of the type's own pageblocks, fullest
    /// pageblock first; then, with [`PackClaim::ClaimFreePageblocks`], from
    /// the larger free blocks (order 3 up to below a pageblock) of its own
    /// pageblocks, fullest first, then from whole free pageblocks (its own
    /// type's, then its fallback types', the smallest free block first),
    /// which become the type's. A free block of a pageblock owned by another
    /// type is never split.
    ///
    /// The request's mode holds: with [`AllocFlags::NO_FALLBACK`] no other
    /// type's pageblock is claimed. Flags that allow no zone on this
    /// machine give [`AllocError::NoZone`], as [`Allocator::alloc`] does.
    ///
    /// Partial success is the rule, as in the seed. The call returns `n <=
    /// out.len()`; `out[..n]` hold the pages and `out[n..]` is untouched.
    /// `n < out.len()` means that in every zone of the zonelist either the
    /// zone's budget ran out (it gives no more than keeps its free pages
    /// above its low watermark plus the lowmem reserve for the request) or
    /// its candidates did (the owned pageblocks' free blocks, and free
    /// pageblocks if allowed). The pages are ordinary order-0 allocations,
    /// freed with [`Allocator::free`] or [`Allocator::free_bulk`] like any
    /// other. Per-CPU lists are bypassed: their pages sit wherever they
    /// were freed, and packing must choose where its pages lie.
    ///
    /// Cost: one walk of the type's free lists of the orders concerned per
    /// zone and phase, a heap built over those blocks in linear time, one
    /// pop per block taken and constant work per page; no allocation once
    /// the zone's key buffer has grown.
    pub fn alloc_packed(
        &self,
        cpu: CpuId,
        flags: AllocFlags,
        claim: PackClaim,
        out: &mut [Pfn],
    ) -> Result<usize, AllocError> {
        let slot = self.cpu_slot(cpu)?;
        let request = Request::new(Order::ZERO, flags, &self.config);
        let (mt, highest) = (request.mt, request.highest);
        let zonelist = self.zonelist_id(Some(slot.zonelists), highest, flags)?;
        let mut got = 0;
        for &zi in self.zonelist(zonelist) {
            if got == out.len() {
                break;
            }
            let zone = &self.zones[zi];
            let mut guard = zone.lock();
            let mut ops = guard.ops();
            let reserve = ops.z.watermarks.low + ops.z.lowmem_reserve[highest.idx()];
            let budget = ops.f.nr_free_pages.saturating_sub(reserve) as usize;
            let want = (out.len() - got).min(budget);
            let z = ops.z;
            let dest = &mut out[got..got + want];
            let mut n = 0;
            let mut events = Vec::new();
            ops.rmqueue_packed(
                mt,
                Order::ZERO,
                want,
                claim,
                request.mode,
                usize::MAX,
                &mut |idx| {
                    z.pages.set(idx, PageMeta::allocated(Order::ZERO, mt));
                    // `rmqueue_packed` takes at most `want` pages.
                    if let Some(slot) = dest.get_mut(n) {
                        *slot = z.pfn(idx);
                        n += 1;
                    }
                },
                &mut |e| events.push(e),
            );
            for e in &events {
                ops.f.stats.count_fallback(e, ops.z.geo.pageblock);
            }
            for _ in 0..n {
                ops.f.stats.count_alloc(Order::ZERO);
            }
            drop(guard);
            for &pfn in &out[got..got + n] {
                self.emit_alloc(pfn, Order::ZERO, flags, cpu, AllocKind::Packed);
            }
            got += n;
        }
        Ok(got)
    }
}
