//! Contiguous ranges beyond the largest buddy order (seed 003):
//! `alloc_contig_range`, `alloc_contig_pages` with FreeBSD-style
//! constraints, and `free_contig_range`.
//!
//! Every page of a taken run is recorded as an order-0 allocated head
//! marked "contiguous" ([`PageMeta::CONTIG`]), so a run may be any length
//! and is freed in any pieces, in any order, as Linux frees one page by
//! page; the ordinary free path refuses those pages with a typed error.

use alloc::vec::Vec;

use lock_api::RawMutex;

use super::isolate::{largest_block, Caller, Isolation};
use super::migrate::{Migrator, MIGRATION_TARGETS};
use crate::allocator::Allocator;
use crate::engine::buddy::FreePlacement;
use crate::engine::page::{PageMeta, PageState};
use crate::engine::zone::ZoneCore;
use crate::error::{ContigError, RangeProblem};
use crate::units::{AllocFlags, MigrateType, NodeId, PageCount, Pfn, ZoneType};

/// Migration passes before a range is given up as busy (Linux
/// `alloc_contig_range` retries `migrate_pages` up to 5 times).
pub const CONTIG_MIGRATE_TRIES: u32 = 5;

/// A contiguous run taken, and what it cost.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ContigAlloc {
    /// Its first frame.
    pub start: Pfn,
    /// Its length.
    pub nr_pages: PageCount,
    /// Allocated blocks moved out of the way, and their pages.
    pub migrated_blocks: u64,
    /// Pages moved out of the way.
    pub migrated_pages: u64,
    /// Migration passes made (0 when the range was free already).
    pub tries: u32,
    /// Candidate ranges isolated before this one was taken
    /// ([`Allocator::alloc_contig_pages`]; 0 otherwise).
    pub failed_candidates: u64,
}

/// Where [`Allocator::alloc_contig_pages`] may take its run (FreeBSD
/// `vm_phys_alloc_contig`'s constraints, plus node and zone).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ContigConstraints {
    /// Only this node's zones, if set.
    pub node: Option<NodeId>,
    /// Only this zone type, if set.
    pub zone: Option<ZoneType>,
    /// The run starts at or above this frame.
    pub low: Pfn,
    /// The run ends at or below this frame (exclusive bound).
    pub high: Pfn,
    /// The run starts at a multiple of this many pages (a power of two).
    pub align: PageCount,
    /// If set, the run does not cross a multiple of this many pages (a
    /// power of two, at least the run's length): a DMA engine's segment.
    pub boundary: Option<PageCount>,
}

impl Default for ContigConstraints {
    /// Anywhere, page-aligned.
    fn default() -> ContigConstraints {
        ContigConstraints {
            node: None,
            zone: None,
            low: Pfn(0),
            high: Pfn(u64::MAX),
            align: PageCount(1),
            boundary: None,
        }
    }
}

/// What a taken range becomes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Taken {
    /// An allocated contiguous run.
    Run,
    /// Offline pages, out of the zone's managed pages.
    Offline,
    /// Nothing: the range is left free, to merge under its pageblocks' own
    /// type when the isolation is undone (confinement's evacuation).
    Free,
}

impl<R: RawMutex> Allocator<R> {
    /// The zone holding all of `start..end`, which must be one usable
    /// range, or why it is not.
    pub(crate) fn contig_zone(&self, start: Pfn, end: Pfn) -> Result<usize, ContigError> {
        let refuse = |problem| ContigError::Range {
            start,
            end,
            problem,
        };
        if end <= start {
            return Err(refuse(RangeProblem::Empty));
        }
        let zi = self
            .zone_index(start)
            .ok_or(refuse(RangeProblem::OutOfRange))?;
        let z = &self.zones[zi].core;
        if end > z.end {
            return match self.zone_index(Pfn(end.0 - 1)) {
                Some(_) => Err(refuse(RangeProblem::CrossesZone)),
                None if self
                    .zones
                    .iter()
                    .any(|o| o.core.start > z.start && o.core.start < end) =>
                {
                    Err(refuse(RangeProblem::CrossesZone))
                }
                None => Err(refuse(RangeProblem::OutOfRange)),
            };
        }
        let inside = z.present.iter().any(|&(s, e)| s <= start && end <= e);
        if !inside {
            return Err(refuse(RangeProblem::CrossesHole));
        }
        Ok(zi)
    }

    /// Allocates the frames `start..end`, of any length and alignment
    /// inside one usable range of one zone (Linux `alloc_contig_range`):
    /// isolates the pageblocks around it, migrates the movable allocations
    /// in it through `migrator` (up to [`CONTIG_MIGRATE_TRIES`] passes),
    /// and takes it as one run, freed with
    /// [`Allocator::free_contig_range`]. CMA pageblocks refuse (use
    /// [`Allocator::cma_alloc`]).
    ///
    /// On any error the isolation is undone and the allocator holds what it
    /// held before, except that blocks already migrated stay at their new
    /// frames (as in Linux). It drains every CPU's lists, so it must not be
    /// called by a thread holding [`LocalLists`](crate::LocalLists).
    pub fn alloc_contig_range<M: Migrator + ?Sized>(
        &self,
        start: Pfn,
        end: Pfn,
        migrator: &mut M,
    ) -> Result<ContigAlloc, ContigError> {
        let zi = self.contig_zone(start, end)?;
        self.take_contig(zi, start, end, Caller::Contig, Taken::Run, migrator)
    }

    /// Isolates, migrates and takes `start..end` of zone `zi` (checked) as
    /// `taken`: the engine of every contiguous call.
    pub(crate) fn take_contig<M: Migrator + ?Sized>(
        &self,
        zi: usize,
        start: Pfn,
        end: Pfn,
        caller: Caller,
        taken: Taken,
        migrator: &mut M,
    ) -> Result<ContigAlloc, ContigError> {
        let isolation = Isolation::new(self, zi, start, end, caller)?;
        let mut result = ContigAlloc {
            start,
            nr_pages: PageCount(end.0 - start.0),
            migrated_blocks: 0,
            migrated_pages: 0,
            tries: 0,
            failed_candidates: 0,
        };
        let outcome = loop {
            let busy = match self.try_take(zi, start, end, taken) {
                Ok(()) => break Ok(result),
                Err(busy) => busy,
            };
            if result.tries == CONTIG_MIGRATE_TRIES {
                break Err(ContigError::Busy {
                    pfn: busy,
                    tries: result.tries,
                });
            }
            result.tries += 1;
            let targets = match taken {
                // Evacuation checked the watermark for a whole pageblock.
                Taken::Free => MIGRATION_TARGETS | AllocFlags::NO_WATERMARKS,
                Taken::Run | Taken::Offline => MIGRATION_TARGETS,
            };
            match self.migrate_out(zi, (start, end), targets, migrator) {
                Ok(pass) => {
                    result.migrated_blocks += pass.moved_blocks;
                    result.migrated_pages += pass.moved_pages;
                }
                Err(e) => break Err(e),
            }
            // Pages freed into the range meanwhile may sit on per-CPU
            // lists that read the pageblock's type before it changed.
            self.drain_all();
        };
        drop(isolation);
        if outcome.is_err() && taken != Taken::Free {
            self.zones[zi].lock().ops().f.stats.contig_alloc_fail += 1;
        }
        outcome
    }

    /// Under the zone lock: if every page of `start..end` is free (on the
    /// `Isolate` lists), takes the blocks holding them, labels the range as
    /// `taken`, and frees the parts of the first and last block outside it
    /// again. Otherwise returns the first page in the way.
    fn try_take(&self, zi: usize, start: Pfn, end: Pfn, taken: Taken) -> Result<(), Pfn> {
        let zone = &self.zones[zi];
        let z = &zone.core;
        let mut guard = zone.lock();
        let mut heads: Vec<(Pfn, crate::units::Order)> = Vec::new();
        z.try_for_each_head_overlapping(start, end, |pfn, meta| {
            let isolated = z.block_mt(pfn) == MigrateType::Isolate;
            if meta.state() == PageState::FreeHead && isolated {
                heads.push((pfn, meta.order()));
                Ok(())
            } else {
                Err(pfn.max(start))
            }
        })?;
        let (Some(&(outer_start, _)), Some(&(last, last_order))) = (heads.first(), heads.last())
        else {
            return Err(start);
        };
        if taken == Taken::Free {
            return Ok(());
        }
        let outer_end = Pfn(last.0 + last_order.nr_pages().0);
        let mut ops = guard.ops();
        for &(pfn, order) in &heads {
            ops.del_free(z.idx(pfn), order, MigrateType::Isolate);
        }
        let nr = end.0 - start.0;
        match taken {
            Taken::Run => {
                for idx in z.idx(start)..z.idx(end) {
                    z.pages.set(idx, PageMeta::CONTIG);
                }
                ops.f.stats.pgalloc += nr;
                ops.f.stats.contig_alloc_success += 1;
            }
            Taken::Offline => {
                let mut pfn = start;
                while pfn < end {
                    let order = largest_block(pfn, end, z.geo.max_order);
                    z.pages
                        .set(z.idx(pfn), PageMeta::head(PageState::OfflineHead, order));
                    pfn.0 += order.nr_pages().0;
                }
            }
            Taken::Free => {}
        }
        ops.free_range(outer_start, start, FreePlacement::Tail);
        ops.free_range(end, outer_end, FreePlacement::Tail);
        Ok(())
    }

    /// Frees `nr` pages of contiguous runs from `start` (Linux
    /// `free_contig_range`): any part of a run, or parts of several
    /// adjacent runs, in any order. Every page must be a page of an
    /// allocated run, or nothing is freed.
    pub fn free_contig_range(&self, start: Pfn, nr: PageCount) -> Result<(), ContigError> {
        let end = Pfn(start.0.saturating_add(nr.0));
        let zi = self.contig_zone(start, end)?;
        let zone = &self.zones[zi];
        let z = &zone.core;
        let mut guard = zone.lock();
        if let Some(idx) = (z.idx(start)..z.idx(end)).find(|&i| !z.pages.get(i).is_contig()) {
            return Err(ContigError::NotContig { pfn: z.pfn(idx) });
        }
        for idx in z.idx(start)..z.idx(end) {
            z.pages.set(idx, PageMeta::TAIL);
        }
        let mut ops = guard.ops();
        ops.free_range(start, end, FreePlacement::Auto);
        ops.f.stats.pgfree += nr.0;
        Ok(())
    }

    /// Allocates `nr` contiguous pages anywhere `constraints` allow (Linux
    /// `alloc_contig_pages`, with FreeBSD's bounds, alignment and
    /// boundary): zones from the highest down, and in each, candidate
    /// ranges from the lowest frame up, first those already free, then
    /// those holding only movable allocations, each tried with
    /// [`Allocator::alloc_contig_range`]'s machinery until one is taken. A
    /// candidate that fails is passed by the page it failed on; a
    /// migration without a destination ends the search with
    /// [`ContigError::NoMemory`].
    pub fn alloc_contig_pages<M: Migrator + ?Sized>(
        &self,
        nr: PageCount,
        constraints: &ContigConstraints,
        migrator: &mut M,
    ) -> Result<ContigAlloc, ContigError> {
        let c = constraints;
        let pow2 = |n: u64| n != 0 && n.is_power_of_two();
        if nr.0 == 0 {
            return Err(ContigError::Range {
                start: c.low,
                end: c.low,
                problem: RangeProblem::Empty,
            });
        }
        if !pow2(c.align.0) || c.boundary.is_some_and(|b| !pow2(b.0) || b.0 < nr.0) {
            return Err(ContigError::Constraint);
        }
        let mut tried = 0u64;
        for free_only in [true, false] {
            for zi in (0..self.zones.len()).rev() {
                let z = &self.zones[zi].core;
                if c.node.is_some_and(|n| n != z.node) || c.zone.is_some_and(|t| t != z.zone_type) {
                    continue;
                }
                let lo = z.start.max(c.low);
                let hi = z.end.min(c.high);
                let mut next = lo;
                while let Some(s) = candidate(next, nr, c) {
                    let e = Pfn(s.0 + nr.0);
                    if e > hi {
                        break;
                    }
                    if let Err(resume) = prescan(z, s, e, free_only) {
                        next = resume.max(Pfn(s.0 + 1));
                        continue;
                    }
                    tried += 1;
                    // A failed candidate says where it failed: the next one
                    // starts past that page (past the whole pageblock for
                    // one isolated by another caller), not one page on, so
                    // no page is tried twice in a pass.
                    next = match self.take_contig(zi, s, e, Caller::Contig, Taken::Run, migrator) {
                        Ok(mut done) => {
                            done.failed_candidates = tried - 1;
                            return Ok(done);
                        }
                        // No destination for a migration: another candidate
                        // would need one too (Linux -ENOMEM).
                        Err(ContigError::NoMemory) => return Err(ContigError::NoMemory),
                        Err(ContigError::Busy { pfn, .. } | ContigError::Unmovable { pfn }) => {
                            Pfn(pfn.0 + 1)
                        }
                        Err(ContigError::Isolated { pfn }) => {
                            Pfn(pfn.align_down(z.geo.pageblock).0 + z.geo.pageblock_nr_pages())
                        }
                        Err(_) => Pfn(s.0 + 1),
                    }
                    .max(Pfn(s.0 + 1));
                }
            }
        }
        Err(ContigError::NotFound { tried })
    }
}

/// The first start at or above `from` aligned as `c` asks whose run of
/// `nr` pages crosses no boundary, if it fits the frame numbers.
fn candidate(from: Pfn, nr: PageCount, c: &ContigConstraints) -> Option<Pfn> {
    let align_up = |p: u64, a: u64| p.checked_add(a - 1).map(|q| q & !(a - 1));
    let mut s = align_up(from.0, c.align.0)?;
    if let Some(b) = c.boundary {
        let last = s.checked_add(nr.0 - 1)?;
        if s / b.0 != last / b.0 {
            s = align_up(align_up(s + 1, b.0)?, c.align.0)?;
        }
    }
    s.checked_add(nr.0)?;
    Some(Pfn(s))
}

/// A cheap look at `start..end` of `z` without the lock: whether it is
/// worth isolating (usable, no isolated or CMA pageblock, nothing
/// unmovable; nothing allocated at all with `free_only`). If not, the
/// lowest frame a later candidate could start at. The isolation checks
/// again under the lock; this only skips hopeless candidates quickly.
fn prescan(z: &ZoneCore, start: Pfn, end: Pfn, free_only: bool) -> Result<(), Pfn> {
    let i = z.present.partition_point(|r| r.1 <= start);
    match z.present.get(i) {
        Some(&(s, e)) if s <= start && end <= e => {}
        Some(&(s, _)) if s > start => return Err(s),
        Some(&(_, e)) => return Err(z.present.get(i + 1).map_or(z.end, |r| r.0.max(e))),
        None => return Err(z.end),
    }
    let pb = z.geo.pageblock;
    for block in super::isolate::pageblocks(start, end, pb) {
        if z.blocks.is_isolated(block) || z.blocks.base(block) == MigrateType::Cma {
            return Err(Pfn(block.align_down(pb).0 + pb.nr_pages().0));
        }
    }
    z.try_for_each_head_overlapping(start, end, |pfn, meta| {
        let past = Pfn(pfn.0 + meta.order().nr_pages().0);
        match meta.state() {
            PageState::AllocHead
                if free_only
                    || meta.is_contig()
                    || meta.alloc_migratetype() != MigrateType::Movable =>
            {
                Err(past)
            }
            PageState::OfflineHead => Err(past),
            _ => Ok(()),
        }
    })
}
