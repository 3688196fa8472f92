//! Contig actors in the simulation (seed 003): a driver that asks for a
//! contiguous run every so often and gives it back after its lifetime,
//! and the migrator through which the engine moves the simulator's own
//! allocations out of the way.
//!
//! Every simulated allocation is a slot ([`Slot`]); the expiry queue,
//! reclaim's queue and hold lists name slots, not frames. With a contig
//! actor in the variant, [`Owners`] also finds a slot by its first frame.
//! Moving a block rewrites its slot's frame and that index, so whatever
//! frees the block later (its lifetime, reclaim, a release) frees the new
//! frame: the engine freed the old one when the migration succeeded.

use std::collections::BTreeSet;
use std::rc::Rc;

use pagealloc::{
    Allocator, ContigAlloc, ContigError, MigrateRefusal, MigrateType, Migrator, Order, PageCount,
    PageState, Pfn,
};
use rustc_hash::FxHashMap;

use super::{draw_lifetime, Sim};
use crate::report::{CmaAreaPoint, CmaAreaReport, ContigFailures, ContigStats};
use crate::scenario::{Actor, Behaviour, CmaDecl, ContigBehaviour, ContigCall, Variant};

/// A run a contig actor holds.
#[derive(Clone, Copy, Debug)]
pub(super) struct ContigRun {
    start: Pfn,
    nr_pages: u64,
    /// The step it is given back (never: held to the end).
    expires: Option<u64>,
}

/// The slots by first frame, kept only when the engine may migrate: a
/// contig actor, or compaction on (the index costs a hash update per
/// allocation and free, which the other scenarios need not pay).
#[derive(Default)]
pub(super) struct Owners(Option<FxHashMap<u64, u32>>);

impl Owners {
    /// An index if `variant` has a contig actor or compaction, none
    /// otherwise.
    pub(super) fn for_variant(variant: &Variant) -> Owners {
        let any = variant
            .actors
            .iter()
            .any(|a| matches!(a.behaviour, Behaviour::Contig(_)));
        Owners((any || variant.compaction.is_some()).then(FxHashMap::default))
    }

    /// Slot `idx` now holds the block at `pfn`.
    pub(super) fn insert(&mut self, pfn: u64, idx: u32) {
        if let Some(map) = &mut self.0 {
            map.insert(pfn, idx);
        }
    }

    /// The block at `pfn` is no longer held.
    pub(super) fn remove(&mut self, pfn: u64) {
        if let Some(map) = &mut self.0 {
            map.remove(&pfn);
        }
    }

    /// Live blocks indexed (0 without an index).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FxHashMap::len)
    }
}

/// The simulator's [`Migrator`]: finds the slot holding `from`, points it
/// at `to`, and counts what it moved. A block no slot holds is refused
/// (`Busy`), as the seam asks. After each move, if free memory has fallen
/// to the low watermark, it runs the reclaim model: Linux allocates
/// migration targets with direct reclaim allowed (`alloc_migration_target`
/// with `__GFP_RETRY_MAYFAIL`), so a range is not given up for want of
/// targets while reclaimable memory remains. Compaction takes its targets
/// from its own free scanner, so its migrator does not reclaim
/// ([`MigrationReclaim::No`]).
pub(super) struct SimMigrator<'s, 'a> {
    sim: &'s mut Sim<'a>,
    reclaim: MigrationReclaim,
    pub(super) moved_blocks: u64,
    pub(super) moved_pages: u64,
    pub(super) refused_blocks: u64,
    reclaim_runs: u64,
}

/// Whether the migrator runs the reclaim model after a move that left
/// free memory at the low watermark.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum MigrationReclaim {
    /// Contiguous allocation: targets are allocated, with reclaim allowed.
    Yes,
    /// Compaction: targets come from the free scanner.
    No,
}

impl<'s, 'a> SimMigrator<'s, 'a> {
    /// A migrator over `sim`, nothing moved yet.
    pub(super) fn new(sim: &'s mut Sim<'a>, reclaim: MigrationReclaim) -> Self {
        SimMigrator {
            sim,
            reclaim,
            moved_blocks: 0,
            moved_pages: 0,
            refused_blocks: 0,
            reclaim_runs: 0,
        }
    }
}

impl Migrator for SimMigrator<'_, '_> {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: Order) -> Result<(), MigrateRefusal> {
        let sim = &mut *self.sim;
        let Some(map) = &mut sim.owners.0 else {
            self.refused_blocks += 1;
            return Err(MigrateRefusal::Busy);
        };
        let slot = map
            .get(&from.0)
            .and_then(|&idx| Some(idx).zip(sim.slots.get_mut(idx as usize)));
        let Some((idx, slot)) = slot.filter(|(_, s)| s.live && s.order == order.get()) else {
            self.refused_blocks += 1;
            return Err(MigrateRefusal::Busy);
        };
        // The simulated contents need no copy: the block is its slot.
        map.remove(&from.0);
        map.insert(to.0, idx);
        slot.pfn = to.0;
        self.moved_blocks += 1;
        self.moved_pages += order.nr_pages().0;
        if self.reclaim == MigrationReclaim::Yes
            && sim.variant.reclaim.enabled
            && sim.free_pages() <= sim.low
        {
            sim.run_reclaim();
            self.reclaim_runs += 1;
        }
        Ok(())
    }

    /// No target could be allocated: with [`MigrationReclaim::Yes`] and
    /// the variant's reclaim on, run the reclaim model once (Linux's
    /// direct reclaim for `alloc_migration_target`) and have the target
    /// tried again if it freed anything.
    fn reclaim(&mut self, _order: Order) -> bool {
        let sim = &mut *self.sim;
        if self.reclaim == MigrationReclaim::No || !sim.variant.reclaim.enabled {
            return false;
        }
        let before = sim.free_pages();
        sim.run_reclaim();
        self.reclaim_runs += 1;
        sim.free_pages() > before
    }
}

impl Sim<'_> {
    /// Gives back actor `i`'s runs whose lifetime ends at `step`.
    pub(super) fn expire_runs(&mut self, i: usize, step: u64) {
        let due = take_due(&mut self.actors[i].runs, step);
        let cma_area = match contig_call(&self.variant.actors[i]) {
            Some(ContigCall::Cma { area, .. }) => Some(*area),
            _ => None,
        };
        for run in due {
            let nr = PageCount(run.nr_pages);
            // A run we hold is always one the engine gave us: a failure
            // here would be an engine bug.
            let freed = match cma_area {
                Some(area) => self.alloc.cma_release(area, run.start, nr),
                None => self.alloc.free_contig_range(run.start, nr),
            };
            debug_assert!(freed.is_ok(), "{freed:?}");
            self.released(i, run);
        }
    }

    fn released(&mut self, i: usize, run: ContigRun) {
        let st = &mut self.actors[i];
        st.pages -= run.nr_pages;
        if let Some(c) = &mut st.stats.contig {
            c.released_runs += 1;
        }
    }

    /// Actor `i`'s request of step `step`, if one is due: draws the run's
    /// lifetime (and, for `alloc_contig_range`, its place) first, so the
    /// request stream does not depend on what the allocator did; then
    /// asks the engine (whose migrations may reclaim, see [`SimMigrator`]).
    /// Reclaim runs after a served request that left free memory at the
    /// low watermark, as after any allocation.
    pub(super) fn contig(&mut self, i: usize, a: &Actor, step: u64, b: &ContigBehaviour) {
        if !(step - a.start).is_multiple_of(b.every) {
            return;
        }
        let rng = &mut self.actors[i].rng;
        let life = draw_lifetime(rng, b.lifetime);
        let range_start = match b.call {
            ContigCall::Range {
                align_pages,
                low,
                high,
            } => {
                // The parser made sure one aligned start fits.
                let first = low.0.div_ceil(align_pages);
                let last = (high.0 - b.nr_pages) / align_pages;
                Some(Pfn(rng.range(first, last) * align_pages))
            }
            _ => None,
        };
        let st = &mut self.actors[i];
        let Some(stats) = st.stats.contig.as_mut() else {
            return;
        };
        if b.max_pages.is_some_and(|m| st.pages + b.nr_pages > m) {
            stats.skipped_at_max += 1;
            return;
        }
        stats.requests += 1;
        let reclaim_on = self.variant.reclaim.enabled;
        let result = self.contig_call(i, b, range_start);
        let st = &mut self.actors[i];
        let Some(stats) = st.stats.contig.as_mut() else {
            return;
        };
        match result {
            Ok(done) => {
                stats.served += 1;
                stats.tries += u64::from(done.tries);
                stats.max_tries = stats.max_tries.max(done.tries);
                if done.tries == 0 {
                    stats.served_without_migration += 1;
                }
                stats.failed_candidates += done.failed_candidates;
                st.runs.push(ContigRun {
                    start: done.start,
                    nr_pages: done.nr_pages.0,
                    expires: life.map(|l| step.saturating_add(l)),
                });
                st.pages += done.nr_pages.0;
                st.stats.pages_peak = st.stats.pages_peak.max(st.pages);
                if let ContigCall::Cma { area, .. } = b.call {
                    let used = self.alloc.cma_used_pages(area).map_or(0, |p| p.0);
                    if let Some(peak) = self.cma_peak.get_mut(area) {
                        *peak = (*peak).max(used);
                    }
                }
                if reclaim_on && self.free_pages() <= self.low {
                    self.run_reclaim();
                }
            }
            Err(e) => {
                stats.failed += 1;
                count_failure(&mut stats.failures, e);
                if let ContigError::NotFound { tried } = e {
                    stats.failed_candidates += tried;
                }
            }
        }
    }

    /// One engine call for actor `i`, with the simulation as the
    /// migrator.
    fn contig_call(
        &mut self,
        i: usize,
        b: &ContigBehaviour,
        range_start: Option<Pfn>,
    ) -> Result<ContigAlloc, ContigError> {
        let alloc = Rc::clone(&self.alloc);
        let mut m = SimMigrator::new(self, MigrationReclaim::Yes);
        let nr = PageCount(b.nr_pages);
        let result = match &b.call {
            ContigCall::Range { .. } => {
                let start = range_start.unwrap_or(Pfn(0));
                alloc.alloc_contig_range(start, Pfn(start.0 + nr.0), &mut m)
            }
            ContigCall::Pages(c) => alloc.alloc_contig_pages(nr, c, &mut m),
            ContigCall::Cma { area, align, .. } => alloc.cma_alloc(*area, nr, *align, &mut m),
        };
        let SimMigrator {
            moved_blocks,
            moved_pages,
            refused_blocks,
            reclaim_runs,
            ..
        } = m;
        if let Some(c) = &mut self.actors[i].stats.contig {
            c.migrated_blocks += moved_blocks;
            c.migrated_pages += moved_pages;
            c.refused_blocks += refused_blocks;
            c.reclaim_runs += reclaim_runs;
        }
        result
    }

    /// The pageblocks holding actor `i`'s runs.
    pub(super) fn run_pageblocks(&self, i: usize) -> u64 {
        let shift = self.alloc.config().pageblock_order;
        let mut blocks = BTreeSet::new();
        for r in &self.actors[i].runs {
            blocks.extend((r.start.0 >> shift)..=((r.start.0 + r.nr_pages - 1) >> shift));
        }
        blocks.len() as u64
    }

    /// Samples each CMA area's pages at `step`.
    pub(super) fn sample_cma(&mut self, step: u64) {
        for (k, area) in self.alloc.cma_areas().iter().enumerate() {
            let end = Pfn(area.start.0 + area.nr_pages.0);
            let (free, movable) = area_pages(&self.alloc, area.start, end);
            let used = self.alloc.cma_used_pages(k).map_or(0, |p| p.0);
            if let Some(samples) = self.cma_samples.get_mut(k) {
                samples.push(CmaAreaPoint {
                    at: step,
                    used,
                    movable,
                    free,
                });
            }
        }
    }

    /// The variant's CMA areas at the end, with the most `cma_alloc` used
    /// and the samples.
    pub(super) fn cma_report(&mut self) -> Vec<CmaAreaReport> {
        let placed = self.alloc.cma_areas();
        let index = CmaDecl::engine_indices(&self.variant.cma);
        self.variant
            .cma
            .iter()
            .zip(index)
            .filter_map(|(decl, k)| {
                let area = placed.get(k)?;
                let start = area.start;
                let end = Pfn(area.start.0 + area.nr_pages.0);
                let (free, movable) = area_pages(&self.alloc, start, end);
                Some(CmaAreaReport {
                    name: decl.name.clone(),
                    start_pfn: start.0,
                    nr_pages: area.nr_pages.0,
                    order_per_bit: area.order_per_bit,
                    used_pages_end: self.alloc.cma_used_pages(k).map_or(0, |p| p.0),
                    used_pages_peak: self.cma_peak.get(k).copied().unwrap_or(0),
                    movable_pages_end: movable,
                    free_pages_end: free,
                    samples: self
                        .cma_samples
                        .get_mut(k)
                        .map(std::mem::take)
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// The call of a contig actor.
fn contig_call(a: &Actor) -> Option<&ContigCall> {
    match &a.behaviour {
        Behaviour::Contig(b) => Some(&b.call),
        _ => None,
    }
}

/// Takes the runs due at or before `step` out of `runs`.
fn take_due(runs: &mut Vec<ContigRun>, step: u64) -> Vec<ContigRun> {
    let due = |r: &ContigRun| r.expires.is_some_and(|e| e <= step);
    if !runs.iter().any(due) {
        return Vec::new();
    }
    let (gone, kept): (Vec<ContigRun>, Vec<ContigRun>) = runs.drain(..).partition(due);
    *runs = kept;
    gone
}

fn count_failure(f: &mut ContigFailures, e: ContigError) {
    let counter = match e {
        ContigError::Busy { .. } => &mut f.busy,
        ContigError::Unmovable { .. } => &mut f.unmovable,
        ContigError::Isolated { .. } => &mut f.isolated,
        ContigError::NoMemory => &mut f.no_memory,
        ContigError::NotFound { .. } => &mut f.not_found,
        ContigError::Range { .. } => &mut f.bad_range,
        _ => &mut f.other,
    };
    *counter += 1;
}

/// Free pages (on free lists, per-CPU lists or out on a report) and pages
/// of movable allocations in `start..end`.
fn area_pages(alloc: &Allocator, start: Pfn, end: Pfn) -> (u64, u64) {
    let (mut free, mut movable) = (0, 0);
    for zone in alloc.zones() {
        if zone.end_pfn() <= start || zone.start_pfn() >= end {
            continue;
        }
        for b in zone.blocks() {
            let b_end = b.pfn.0 + b.order.nr_pages().0;
            if b_end <= start.0 || b.pfn >= end {
                continue;
            }
            let pages = b_end.min(end.0) - b.pfn.0.max(start.0);
            match b.state {
                PageState::FreeHead | PageState::PcpHead | PageState::ReportingHead => {
                    free += pages;
                }
                PageState::AllocHead if b.alloc_migratetype == Some(MigrateType::Movable) => {
                    movable += pages;
                }
                _ => {}
            }
        }
    }
    (free, movable)
}

/// A contig actor's figures before its first request.
pub(super) fn initial_stats(b: &ContigBehaviour) -> ContigStats {
    ContigStats {
        via: b.call.via().name(),
        area: match &b.call {
            ContigCall::Cma { name, .. } => Some(name.clone()),
            _ => None,
        },
        request_pages: b.nr_pages,
        failures: ContigFailures::default(),
        ..ContigStats::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    /// A 64 MiB machine full of page cache (movable, reclaimable), some
    /// anonymous memory with huge pages and kernel allocations, and a
    /// driver asking for 4 MiB every 5 steps, each held 12 steps; a 16 MiB
    /// CMA area. `VIA` is replaced by the driver's call.
    const SMALL: &str = r#"seed = 5
[machine]
memory = "64M"
cma = [{ name = "dma", size = "16M" }]
[[phase]]
name = "fill"
steps = 40
[[phase]]
name = "run"
steps = 160
[[actor]]
name = "cache"
migratetype = "movable"
rate = 400
lifetime = { dist = "forever" }
[[actor]]
name = "anon"
migratetype = "movable"
rate = 60
orders = { 0 = 0.95, 4 = 0.05 }
lifetime = { dist = "exponential", mean = 30 }
[[actor]]
name = "kernel"
migratetype = "unmovable"
rate = 20
lifetime = { dist = "exponential", mean = 20 }
[[actor]]
name = "driver"
kind = "contig"
VIA
size = "4M"
every = 5
lifetime = { dist = "fixed", steps = 12 }
start = "run"
"#;

    /// Runs the scenario with the driver's `via` line, checking after
    /// every step that the engine's invariants hold and that the owner
    /// index names exactly the live slots, each at its slot's frame.
    fn run_checked(via: &str) -> ContigStats {
        let text = SMALL.replace("VIA", via);
        let scenario = parse(&text, "t.toml", None).unwrap();
        let variant = &scenario.variants[0];
        let alloc = scenario
            .machine
            .allocator_with(|c| variant.configure(c, scenario.cma_support()))
            .unwrap();
        let mut sim = Sim::new(&scenario, variant, alloc);
        for step in 0..scenario.total_steps() {
            sim.step(step);
            sim.alloc
                .check_invariants()
                .unwrap_or_else(|e| panic!("{via}, step {step}: {e:?}"));
            let live: Vec<(u32, u64)> = (0..sim.slots.len() as u32)
                .filter(|&i| sim.slots[i as usize].live)
                .map(|i| (i, sim.slots[i as usize].pfn))
                .collect();
            assert_eq!(sim.owners.len(), live.len(), "{via}, step {step}");
            let map = sim.owners.0.as_ref().unwrap();
            for (idx, pfn) in live {
                assert_eq!(map.get(&pfn), Some(&idx), "{via}, step {step}");
            }
        }
        let driver = &sim.actors[3];
        let held: u64 = driver.runs.iter().map(|r| r.nr_pages).sum();
        assert_eq!(driver.pages, held);
        driver.stats.contig.clone().unwrap()
    }

    #[test]
    fn migrated_blocks_follow_their_owner_with_every_call() {
        for via in [
            "via = \"cma\"",
            "via = \"pages\"",
            "via = \"range\"\nalign = \"4M\"",
        ] {
            let c = run_checked(via);
            assert_eq!(c.requests, 32, "{via}: {c:?}");
            assert_eq!(c.served + c.failed, c.requests, "{via}: {c:?}");
            assert!(c.served > 0, "{via}: {c:?}");
            assert!(c.migrated_pages > 0, "{via}: {c:?}");
            assert!(c.tries > 0, "{via}: {c:?}");
            assert!(c.released_runs > 0, "{via}: {c:?}");
        }
    }

    #[test]
    fn without_a_contig_actor_or_compaction_no_index_is_kept() {
        let text = SMALL.replace("kind = \"contig\"", "enabled = false\nkind = \"contig\"");
        let text = text.replace("VIA", "");
        let index = |text: &str| {
            let scenario = parse(text, "t.toml", None).unwrap();
            let sim = Sim::new(
                &scenario,
                &scenario.variants[0],
                scenario.machine.allocator().unwrap(),
            );
            sim.owners.0.is_some()
        };
        // Compaction is on by default: the migrator needs the index.
        assert!(index(&text));
        let off =
            format!("{text}\n[[variant]]\nname = \"off\"\ncompaction = {{ enabled = false }}\n");
        assert!(!index(&off));
    }
}
