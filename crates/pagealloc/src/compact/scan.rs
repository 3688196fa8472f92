//! The two scanners over one zone (Linux `compact_zone`): the migrate
//! scanner from the zone's start, pageblock by pageblock, takes the
//! movable allocated blocks; the free scanner from the zone's end takes,
//! for each, a free block of its order out of a movable (or CMA) pageblock,
//! never out of a free block of a pageblock or more (that would undo what
//! compaction builds); the owner's migrator moves the block there.

use alloc::vec::Vec;

use lock_api::RawMutex;

use super::policy::CompactResult;
use crate::allocator::Allocator;
use crate::contig::migrate::Migrator;
use crate::engine::buddy::FreePlacement;
use crate::engine::page::{PageMeta, PageState};
use crate::engine::zone::ZoneOps;
use crate::units::{MigrateType, Order, Pfn};

/// What one zone's compaction run did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CompactOutcome {
    /// How the run ended.
    pub result: CompactResult,
    /// Pages the migrate scanner looked at.
    pub migrate_scanned: u64,
    /// Pages the free scanner looked at.
    pub free_scanned: u64,
    /// Pages moved.
    pub migrated_pages: u64,
    /// Pages whose move the migrator refused.
    pub failed_pages: u64,
}

/// What a run aims for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Goal {
    /// A free block of this order for this type (direct compaction, or
    /// compaction on demand).
    Order(Order, MigrateType),
    /// The zone's fragmentation score at or below this (proactive).
    Score(u64),
    /// Until the scanners meet (Linux `compact_memory`, order -1).
    Full,
}

impl ZoneOps<'_> {
    /// The movable allocated blocks whose heads lie in `start..end`
    /// (Linux `isolate_migratepages_block`, without taking them: the
    /// migrator is asked for each in turn).
    /// Blocks of `skip_from` or more are left where they are: moving them
    /// builds nothing larger (Linux `skip_isolation_on_order`).
    fn movable_blocks(&self, start: Pfn, end: Pfn, skip_from: Order) -> Vec<(Pfn, PageMeta)> {
        let mut blocks = Vec::new();
        self.z.for_each_head(start, end, |pfn, meta| {
            let movable = meta.state() == PageState::AllocHead
                && !meta.is_contig()
                && meta.order() < skip_from
                && meta.alloc_migratetype() == MigrateType::Movable;
            if movable {
                blocks.push((pfn, meta));
            }
        });
        blocks
    }

    /// A free block of `order` from `start..end` (one pageblock), carved
    /// from the first free block of at least `order` and below the
    /// pageblock order there, allocated as movable (Linux
    /// `isolate_freepages_block` + `compaction_alloc`). Only movable and
    /// CMA pageblocks give destinations.
    fn take_destination(&mut self, start: Pfn, end: Pfn, order: Order) -> Option<Pfn> {
        let mt = self.z.block_mt(start);
        if !matches!(mt, MigrateType::Movable | MigrateType::Cma) {
            return None;
        }
        let pb = self.z.geo.pageblock;
        let mut found = None;
        self.z.for_each_head(start, end, |pfn, meta| {
            let fits =
                meta.state() == PageState::FreeHead && meta.order() >= order && meta.order() < pb;
            if found.is_none() && fits {
                found = Some((pfn, meta.order()));
            }
        });
        let (pfn, high) = found?;
        let idx = self.z.idx(pfn);
        self.take_and_expand(idx, order, high, mt, mt);
        self.mark_allocated(idx, order, MigrateType::Movable);
        self.f.stats.count_alloc(order);
        Some(pfn)
    }
}

impl<R: RawMutex> Allocator<R> {
    /// One compaction run over zone `zi` toward `goal` (Linux
    /// `compact_zone`), moving blocks through `migrator`. The zone lock is
    /// held only to look at a pageblock or take a destination; the migrator
    /// runs without it.
    pub(crate) fn compact_zone<M: Migrator + ?Sized>(
        &self,
        zi: usize,
        goal: Goal,
        migrator: &mut M,
    ) -> CompactOutcome {
        let zone = &self.zones[zi];
        let z = &zone.core;
        let pb = z.geo.pageblock;
        let step = pb.nr_pages().0;
        let cma = self.config.cma == crate::config::CmaSupport::Enabled;
        let mut out = CompactOutcome {
            result: CompactResult::Complete,
            migrate_scanned: 0,
            free_scanned: 0,
            migrated_pages: 0,
            failed_pages: 0,
        };
        let finished = |ops: &ZoneOps<'_>| match goal {
            Goal::Order(order, mt) => ops.compaction_finished(order, mt, cma),
            Goal::Score(low) => ops.fragmentation_score() <= low,
            Goal::Full => false,
        };
        // Scanner positions: pageblock starts (the first may be the
        // zone's unaligned start), from where the last run left them.
        let fresh = (z.start, Pfn((z.end.0 - 1) & !(step - 1)).max(z.start));
        let (mut migrate, mut free) = match goal {
            Goal::Full => fresh,
            _ => zone.lock().free_areas().compact_cached.unwrap_or(fresh),
        };
        let skip_from = match goal {
            Goal::Order(order, _) => order,
            Goal::Score(_) | Goal::Full => pb,
        };
        let block_end = |p: Pfn| Pfn((p.align_down(pb).0 + step).min(z.end.0));
        'scan: while migrate < free {
            let blocks = {
                let mut guard = zone.lock();
                let ops = guard.ops();
                if finished(&ops) {
                    out.result = CompactResult::Success;
                    break;
                }
                let usable = !z.blocks.is_isolated(migrate)
                    && z.block_mt(migrate) != MigrateType::HighAtomic;
                let blocks = if usable {
                    ops.movable_blocks(migrate, block_end(migrate), skip_from)
                } else {
                    Vec::new()
                };
                let scanned = block_end(migrate).0 - migrate.0;
                ops.f.stats.compact_migrate_scanned += scanned;
                out.migrate_scanned += scanned;
                blocks
            };
            for (from, meta) in blocks {
                let order = meta.order();
                let nr = order.nr_pages().0;
                // A destination from the free scanner's pageblock, moving
                // it down until one gives one or the scanners meet.
                let to = loop {
                    if free <= migrate {
                        break None;
                    }
                    let mut guard = zone.lock();
                    let mut ops = guard.ops();
                    let scanned = block_end(free).0 - free.0;
                    if let Some(to) = ops.take_destination(free, block_end(free), order) {
                        ops.f.stats.compact_isolated += nr;
                        break Some(to);
                    }
                    ops.f.stats.compact_free_scanned += scanned;
                    out.free_scanned += scanned;
                    free = Pfn(free.0.saturating_sub(step)).max(z.start);
                };
                let Some(to) = to else {
                    out.result = CompactResult::Complete;
                    break 'scan;
                };
                match migrator.migrate(from, to, order) {
                    Ok(()) => {
                        let mut guard = zone.lock();
                        let mut ops = guard.ops();
                        if ops.free_if_unchanged(from, order, meta, FreePlacement::Auto) {
                            ops.f.stats.pgmigrate_success += nr;
                        }
                        out.migrated_pages += nr;
                    }
                    Err(_) => {
                        let mut guard = zone.lock();
                        let mut ops = guard.ops();
                        let to_meta = PageMeta::allocated(order, MigrateType::Movable);
                        if ops.free_if_unchanged(to, order, to_meta, FreePlacement::Auto) {
                            ops.f.stats.pgmigrate_fail += nr;
                        }
                        out.failed_pages += nr;
                    }
                }
            }
            migrate = block_end(migrate);
        }
        let mut guard = zone.lock();
        let ops = guard.ops();
        if out.result == CompactResult::Complete && finished(&ops) {
            out.result = CompactResult::Success;
        }
        // The next run goes on from here; once the scanners have met, it
        // starts over at the zone's ends (Linux resets the cached
        // positions when a run completes).
        ops.f.compact_cached = (migrate < free).then_some((migrate, free));
        out
    }
}
