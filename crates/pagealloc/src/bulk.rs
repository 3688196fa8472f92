//! Bulk allocation and batched free of order-0 pages (seed 004's bulk
//! allocator, Linux `alloc_pages_bulk` and `free_unref_folios`): many pages
//! under one per-CPU lock round, refilled from the zone a batch at a time.

use alloc::vec::Vec;
use core::fmt;

use lock_api::RawMutex;

use crate::allocator::Allocator;
use crate::config::PcpMode;
use crate::error::{AllocError, BlockError};
use crate::events::{AllocKind, FreeKind};
use crate::page::{PageMeta, PageState};
use crate::pcp::{pcp_index, pcp_migratetype};
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
    /// one ordinary allocation is tried, so a short result still means the
    /// allocator was really out of pages.
    pub fn alloc_bulk(
        &self,
        cpu: CpuId,
        flags: AllocFlags,
        out: &mut [Pfn],
    ) -> Result<usize, AllocError> {
        if (cpu.0 as usize) >= self.pcps.len() {
            return Err(AllocError::InvalidCpu { cpu: cpu.0 });
        }
        if out.is_empty() {
            return Ok(0);
        }
        let mt = flags.migratetype();
        let highest = flags.highest_zone();
        let pcp_ok = self.config.pcp == PcpMode::Enabled && out.len() > 1;
        let mut got = 0;
        if pcp_ok && !flags.contains(AllocFlags::NO_WATERMARKS) {
            let zone = self.bulk_zone(cpu, highest, flags, out.len() as u64);
            if let Some(zi) = zone {
                let zone = &self.zones[zi];
                if let Some(mut pcp) = self.pcps[cpu.0 as usize][zi].try_lock() {
                    while got < out.len() {
                        let Some(idx) = pcp.alloc(zone, Order::ZERO, mt, AllocMode::empty()) else {
                            break;
                        };
                        out[got] = zone.core.pfn(idx);
                        self.emit_alloc(out[got], Order::ZERO, flags, cpu, AllocKind::Bulk);
                        got += 1;
                    }
                }
            }
        }
        if got == 0 {
            out[0] = self.alloc_on_cpu(cpu, Order::ZERO, flags)?;
            got = 1;
            if !pcp_ok {
                // Without per-CPU lists a bulk request is ordinary requests.
                while got < out.len() {
                    let Ok(pfn) = self.alloc_on_cpu(cpu, Order::ZERO, flags) else {
                        break;
                    };
                    out[got] = pfn;
                    got += 1;
                }
            }
        }
        Ok(got)
    }

    /// The first zone of `cpu`'s zonelist with room for `nr` pages above its
    /// low watermark.
    fn bulk_zone(
        &self,
        cpu: CpuId,
        highest: crate::units::ZoneType,
        flags: AllocFlags,
        nr: u64,
    ) -> Option<usize> {
        let node = self.cpu_home(cpu)?;
        self.zonelist_for_node(node, highest, flags)
            .iter()
            .copied()
            .find(|&i| {
                self.zones[i]
                    .core
                    .watermark_ok_bulk(nr, highest, AllocMode::empty())
            })
    }

    /// Frees a batch of order-0 pages through `cpu`'s lists, holding each
    /// zone's per-CPU lock across its run of pages. The whole batch is
    /// checked first: if any entry is not an allocated order-0 page (or a
    /// frame appears twice) nothing is freed.
    pub fn free_bulk(&self, cpu: CpuId, pfns: &[Pfn]) -> Result<(), BulkFreeError> {
        if (cpu.0 as usize) >= self.pcps.len() {
            return Err(BulkFreeError {
                index: 0,
                error: BlockError::InvalidCpu { cpu: cpu.0 },
            });
        }
        let mut checked = Vec::with_capacity(pfns.len());
        for (index, &pfn) in pfns.iter().enumerate() {
            let (zi, meta) = self
                .find_allocated(pfn, Order::ZERO)
                .map_err(|error| BulkFreeError { index, error })?;
            checked.push((pfn, zi, meta, index));
        }
        let mut sorted: Vec<(Pfn, usize)> = checked.iter().map(|c| (c.0, c.3)).collect();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
            let (pfn, index) = w[1];
            return Err(BulkFreeError {
                index,
                error: BlockError::DoubleFree { pfn },
            });
        }
        let mut i = 0;
        while i < checked.len() {
            let zi = checked[i].1;
            let run = checked[i..].iter().take_while(|c| c.1 == zi).count();
            self.free_run(cpu, zi, &checked[i..i + run])?;
            i += run;
        }
        for &pfn in pfns {
            self.emit_free(pfn, Order::ZERO, cpu, FreeKind::Batched);
        }
        Ok(())
    }

    /// Frees order-0 pages of one zone under one per-CPU lock.
    fn free_run(
        &self,
        cpu: CpuId,
        zi: usize,
        run: &[(Pfn, usize, PageMeta, usize)],
    ) -> Result<(), BulkFreeError> {
        let zone = &self.zones[zi];
        let z = &zone.core;
        let mut pcp = (self.config.pcp == PcpMode::Enabled)
            .then(|| self.pcps[cpu.0 as usize][zi].try_lock())
            .flatten();
        for &(pfn, _, meta, index) in run {
            let idx = z.idx(pfn);
            let lost = |_| BulkFreeError {
                index,
                error: BlockError::DoubleFree { pfn },
            };
            let mt = pcp_migratetype(z.block_mt(pfn))
                .filter(|&mt| pcp_index(Order::ZERO, mt, z.geo.pageblock).is_some());
            match (&mut pcp, mt) {
                (Some(pcp), Some(mt)) => {
                    let cached = PageMeta::head(PageState::PcpHead, Order::ZERO);
                    z.pages.replace(idx, meta, cached).map_err(lost)?;
                    pcp.free(zone, idx, Order::ZERO, mt);
                }
                _ => {
                    let mut guard = zone.lock();
                    z.pages.replace(idx, meta, PageMeta::TAIL).map_err(lost)?;
                    let mut ops = guard.ops();
                    ops.free_block(pfn, Order::ZERO, crate::buddy::FreePlacement::Auto);
                    ops.f.stats.count_free(Order::ZERO);
                }
            }
        }
        Ok(())
    }
}
