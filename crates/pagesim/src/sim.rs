//! The scenario simulator: steps through the phases, lets every active actor
//! allocate, frees blocks whose lifetime ended, runs reclaim at the low
//! watermark, samples the pageblock census and takes the snapshots.
//!
//! Within a step: hold actors whose release phase starts now free
//! everything; expired blocks are freed; then each active actor, in file
//! order, makes its requests. After every successful allocation, if free
//! memory has fallen to the low watermark (summed over zones), reclaim
//! frees the oldest reclaimable blocks until the high watermark is met; a
//! failed allocation below the high watermark reclaims and retries once.
//!
//! With free page reporting on (a variant's `reporting`), at the end of
//! every `every`-th step a reporting pass runs if one is wanted: the engine
//! asked for one (`reporting_state()` is `Requested`: a block at or above
//! the reporting order was freed), or the previous pass reported pages and
//! left reportable ones unreported (Linux re-requests itself when a pass
//! runs out of its budget; the engine does not say so, see
//! docs/pagesim.md). The sink accepts every batch.
//!
//! Contig actors (seed 003, `sim/contig.rs`) ask the engine for contiguous
//! runs; the engine moves movable blocks out of the way through the
//! simulator's migrator, which points the block's slot at its new frame.
//! The invariant walk runs at every snapshot and at the end.
//!
//! Variants are independent runs from the same seed; with more than one
//! they run on scoped threads (each owns its allocator), and the result
//! does not depend on scheduling.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use pagealloc::{
    AllocError, AllocFlags, Allocator, CpuId, MigrateType, Order, PackClaim, Pfn, ReportSink,
    ReportedBlock, ReportingState,
};

use crate::census::{self, Scratch};
use crate::emit::{emit_paths, TraceWriter};
use crate::error::{Error, Result};
use crate::gfp::describe;
use crate::progress::Progress;
use crate::report::{
    ActorStats, CmaAreaPoint, EngineStats, HeldPages, PhaseInfo, Probe, ReclaimStats,
    RegionOutcome, RegionSample, ReportingPoint, ReportingReport, Sample, ScenarioReport, Snapshot,
    SnapshotSummary, SpreadPeak, VariantReport,
};
use crate::rng::Rng;
use crate::scenario::{Actor, AllocMode, Behaviour, Lifetime, Scenario, Variant};

mod compact;
mod contig;

use compact::CompactionState;
use contig::{ContigRun, Owners};

/// Steps between progress-bar updates.
const PROGRESS_EVERY: u64 = 256;
/// Stale references (to blocks freed by another path) a list or queue may
/// hold beyond twice its live ones before it is compacted.
const STALE_SLACK: u64 = 4096;

/// Runs every variant of `scenario`.
pub fn run(scenario: &Scenario, progress: &Progress) -> Result<ScenarioReport> {
    let total = scenario.total_steps();
    progress.start(total * scenario.variants.len() as u64, "simulating");
    let results: Vec<Result<VariantReport>> = if scenario.variants.len() == 1 {
        vec![run_variant(scenario, &scenario.variants[0], progress)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = scenario
                .variants
                .iter()
                .map(|v| s.spawn(move || run_variant(scenario, v, progress)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Internal(
                            "a variant's simulation thread panicked".into(),
                        ))
                    })
                })
                .collect()
        })
    };
    progress.finish();
    let variants = results.into_iter().collect::<Result<Vec<_>>>()?;
    let machine = scenario.machine.info(&scenario.machine.allocator()?);
    Ok(ScenarioReport {
        kind: "scenario",
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        seed: scenario.seed,
        total_steps: total,
        sample_every: scenario.sample_every,
        machine,
        phases: scenario
            .phases
            .iter()
            .map(|p| PhaseInfo {
                name: p.name.clone(),
                start: p.start,
                steps: p.steps,
                snapshot: p.snapshot.clone(),
            })
            .collect(),
        variants,
    })
}

/// A block handed to an actor. Everything else (expiries, reclaim's
/// queue, hold lists) names the slot, so a migration changes only `pfn`.
#[derive(Clone, Copy)]
struct Slot {
    /// The block's first frame, where the engine last put it.
    pfn: u64,
    generation: u32,
    order: u8,
    actor: u16,
    live: bool,
}

/// Names a slot at one generation, so a stale reference is recognised.
type SlotId = (u32, u32);

struct ActorState {
    rng: Rng,
    carry: f64,
    pages: u64,
    /// Blocks of a hold actor, to release.
    held: Vec<SlotId>,
    /// Runs of a contig actor.
    runs: Vec<ContigRun>,
    stats: ActorStats,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    variant: &'a Variant,
    /// Shared with the migrator while a contiguous request runs: the
    /// migrator reclaims through the simulation when migration targets
    /// run short, as Linux's direct reclaim does.
    alloc: Rc<Allocator>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    /// Slots by frame, for the migrator (contig actors only).
    owners: Owners,
    /// Per CMA area (the engine's numbering): the most pages `cma_alloc`
    /// had handed out at once.
    cma_peak: Vec<u64>,
    /// The variant has CMA areas: reclaim leaves their free pages out.
    has_cma: bool,
    /// Per CMA area (the engine's numbering), its pages at every sample.
    cma_samples: Vec<Vec<CmaAreaPoint>>,
    expiry: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// Reclaimable blocks, oldest first (may hold freed ones: skipped).
    lru: VecDeque<SlotId>,
    lru_live: usize,
    actors: Vec<ActorState>,
    low: u64,
    high: u64,
    reclaim: ReclaimStats,
    scratch: Scratch,
    samples: Vec<Sample>,
    snapshots: Vec<Snapshot>,
    /// Reporting figures at every sample (reporting on only).
    reporting_samples: Vec<ReportingPoint>,
    /// Fully free regions at each sample, with memory regions on.
    region_samples: Vec<RegionSample>,
    /// The last pass reported pages and left reportable ones: run another.
    report_more: bool,
    /// Passes run for that reason alone.
    continued_passes: u64,
    /// Compaction's figures and the costly requests' tally.
    compaction: CompactionState,
}

/// The simulated host: takes every batch (the blocks stay the allocator's;
/// only their mark changes).
struct AcceptAll;

impl ReportSink for AcceptAll {
    type Error = std::convert::Infallible;

    fn report(&mut self, _batch: &[ReportedBlock]) -> std::result::Result<(), Self::Error> {
        Ok(())
    }
}

fn run_variant(
    scenario: &Scenario,
    variant: &Variant,
    progress: &Progress,
) -> Result<VariantReport> {
    let mut alloc = scenario
        .machine
        .allocator_with(|c| variant.configure(c, scenario.cma_support()))?;
    let writer = emit_writer(scenario, variant, &mut alloc)?;
    let mut sim = Sim::new(scenario, variant, alloc);
    let total = scenario.total_steps();
    for step in 0..total {
        if let Some(w) = &writer {
            w.set_step(step);
        }
        sim.step(step);
        let done = step + 1;
        sim.report(done);
        sim.kcompactd(done);
        if done % scenario.sample_every == 0 || done == total {
            sim.sample(done);
        }
        for phase in scenario.phases.iter().filter(|p| p.end() == done) {
            if let Some(title) = &phase.snapshot {
                sim.alloc.check_invariants().map_err(Error::Invariant)?;
                sim.snapshot(title, &phase.name, done);
            }
        }
        if done % PROGRESS_EVERY == 0 {
            progress.inc(PROGRESS_EVERY);
        }
    }
    sim.alloc.check_invariants().map_err(Error::Invariant)?;
    if let Some(alloc) = Rc::get_mut(&mut sim.alloc) {
        alloc.set_event_sink(None);
    }
    let emitted_trace = writer.map(|w| w.finish()).transpose()?;
    let nr_orders = sim.alloc.config().nr_orders as usize;
    let stats = sim.alloc.stats();
    let engine = EngineStats::new(&stats, nr_orders);
    let reporting = variant.reporting.map(|r| ReportingReport {
        order: sim.alloc.config().report_order().map_or(0, |o| o.get()),
        capacity: r.policy.capacity,
        budget_fraction: r.policy.budget_fraction,
        every: r.every,
        passes: stats.report_passes,
        continued_passes: sim.continued_passes,
        batches: stats.report_batches,
        failed_batches: stats.report_failures,
        reported_pages: stats.reported_pages,
        reported_reallocated: stats.reported_reallocated,
        end: sim.reporting_point(total).unwrap_or(ReportingPoint {
            at: total,
            free_reportable: 0,
            reported: 0,
            fraction: 1.0,
        }),
        samples: std::mem::take(&mut sim.reporting_samples),
    });
    let cma_areas = sim.cma_report();
    let compaction = sim.compaction_report();
    let regions = sim.region_pages().map(|pages| {
        RegionOutcome::measure(
            &sim.alloc,
            pages,
            sim.alloc.nr_allocated_pages(),
            std::mem::take(&mut sim.region_samples),
        )
    });
    Ok(VariantReport {
        name: variant.name.clone(),
        description: variant.description.clone(),
        snapshots: sim.snapshots,
        actors: sim
            .actors
            .into_iter()
            .map(|a| ActorStats {
                pages_end: a.pages,
                ..a.stats
            })
            .collect(),
        reclaim: sim.reclaim,
        engine,
        emitted_trace,
        unmovable_spread_end: sim
            .samples
            .last()
            .map_or_else(Default::default, |s| s.unmovable_spread),
        unmovable_spread_peak: SpreadPeak::of(&sim.samples),
        samples: sim.samples,
        reporting,
        cma_areas,
        compaction,
        regions,
    })
}

impl<'a> Sim<'a> {
    /// A simulation of `variant` on `alloc`, at step 0.
    fn new(scenario: &'a Scenario, variant: &'a Variant, alloc: Allocator) -> Sim<'a> {
        let nr_orders = alloc.config().nr_orders as usize;
        let cma_peak = vec![0; alloc.cma_areas().len()];
        let (low, high) = alloc.zones().iter().fold((0, 0), |(l, h), z| {
            (l + z.watermarks().low, h + z.watermarks().high)
        });
        let actors = variant
            .actors
            .iter()
            .map(|a| ActorState {
                rng: Rng::stream(scenario.seed, &a.name),
                carry: 0.0,
                pages: 0,
                held: Vec::new(),
                runs: Vec::new(),
                stats: ActorStats {
                    name: a.name.clone(),
                    kind: match a.behaviour {
                        Behaviour::Churn { .. } => "churn",
                        Behaviour::Hold { .. } => "hold",
                        Behaviour::Contig(_) => "contig",
                    },
                    flags: match a.behaviour {
                        Behaviour::Contig(_) => "-".to_owned(),
                        _ => describe(a.flags),
                    },
                    allocs: vec![0; nr_orders],
                    alloc_failures: vec![0; nr_orders],
                    expired_blocks: 0,
                    reclaimed_blocks: 0,
                    reclaimed_pages: 0,
                    released_pages: 0,
                    pages_end: 0,
                    pages_peak: 0,
                    contig: match &a.behaviour {
                        Behaviour::Contig(b) => Some(contig::initial_stats(b)),
                        _ => None,
                    },
                },
            })
            .collect();
        Sim {
            scenario,
            variant,
            alloc: Rc::new(alloc),
            slots: Vec::new(),
            free_slots: Vec::new(),
            owners: Owners::for_variant(variant),
            has_cma: !cma_peak.is_empty(),
            cma_samples: vec![Vec::new(); cma_peak.len()],
            cma_peak,
            expiry: BinaryHeap::new(),
            lru: VecDeque::new(),
            lru_live: 0,
            actors,
            low,
            high,
            reclaim: ReclaimStats::default(),
            scratch: Scratch::default(),
            samples: Vec::new(),
            snapshots: Vec::new(),
            reporting_samples: Vec::new(),
            region_samples: Vec::new(),
            report_more: false,
            continued_passes: 0,
            compaction: CompactionState::default(),
        }
    }
}

/// With `--emit-trace`, the variant's trace writer, installed as the
/// allocator's event sink.
fn emit_writer(
    scenario: &Scenario,
    variant: &Variant,
    alloc: &mut Allocator,
) -> Result<Option<Arc<TraceWriter>>> {
    let Some(base) = &scenario.emit_trace else {
        return Ok(None);
    };
    let names: Vec<&str> = scenario.variants.iter().map(|v| v.name.as_str()).collect();
    let i = scenario
        .variants
        .iter()
        .position(|v| std::ptr::eq(v, variant))
        .unwrap_or(0);
    let path = &emit_paths(base, &names)[i];
    let w = Arc::new(TraceWriter::create(path, alloc.config().pageblock_order)?);
    alloc.set_event_sink(Some(w.clone()));
    Ok(Some(w))
}

impl Sim<'_> {
    fn step(&mut self, step: u64) {
        let variant = self.variant;
        for (i, a) in variant.actors.iter().enumerate() {
            if let Behaviour::Hold {
                release_step: Some(r),
                ..
            } = a.behaviour
            {
                if r == step {
                    self.release_all(i);
                }
            }
        }
        while let Some(&Reverse((when, idx, generation))) = self.expiry.peek() {
            if when > step {
                break;
            }
            self.expiry.pop();
            if self.is_live((idx, generation)) {
                let actor = self.slots[idx as usize].actor as usize;
                self.actors[actor].stats.expired_blocks += 1;
                self.free_slot(idx);
            }
        }
        for (i, a) in variant.actors.iter().enumerate() {
            if matches!(a.behaviour, Behaviour::Contig(_)) {
                self.expire_runs(i, step);
            }
        }
        for (i, a) in variant.actors.iter().enumerate() {
            if step < a.start || step >= a.stop {
                continue;
            }
            match a.behaviour {
                Behaviour::Churn {
                    rate,
                    lifetime,
                    max_pages,
                } => self.churn(i, a, step, rate, lifetime, max_pages),
                Behaviour::Hold {
                    hold_pages,
                    chunk_pages,
                    ..
                } => self.hold(i, a, hold_pages, chunk_pages),
                Behaviour::Contig(ref b) => self.contig(i, a, step, b),
            }
        }
    }

    fn churn(
        &mut self,
        i: usize,
        a: &Actor,
        step: u64,
        rate: f64,
        lifetime: Lifetime,
        max_pages: Option<u64>,
    ) {
        let st = &mut self.actors[i];
        let due = st.carry + rate;
        let n = due.floor();
        st.carry = due - n;
        for _ in 0..n as u64 {
            let st = &mut self.actors[i];
            // Draw before allocating, so the request stream does not depend
            // on what the allocator did.
            let order = pick_order(&mut st.rng, &a.orders);
            let life = draw_lifetime(&mut st.rng, lifetime);
            if max_pages.is_some_and(|m| st.pages + order.nr_pages().0 > m) {
                continue;
            }
            self.allocate(i, a, order, life.map(|l| step.saturating_add(l)));
        }
    }

    fn hold(&mut self, i: usize, a: &Actor, hold_pages: u64, chunk_pages: u64) {
        let mut taken = 0;
        let only_order0 = a.orders.iter().all(|(o, _)| *o == Order::ZERO);
        if a.alloc_mode == AllocMode::Packed && only_order0 {
            // Seed 001's driver asks for the whole chunk in one packed call;
            // what it cannot pack it takes page by page below, as a driver
            // falling back to alloc_page() would.
            let want = chunk_pages.min(hold_pages.saturating_sub(self.actors[i].pages));
            taken = self.allocate_packed(i, a, want);
        }
        while self.actors[i].pages < hold_pages && taken < chunk_pages {
            let order = pick_order(&mut self.actors[i].rng, &a.orders);
            if self.allocate(i, a, order, None).is_none() {
                break;
            }
            taken += order.nr_pages().0;
        }
    }

    /// Takes up to `want` order-0 pages for actor `i` in packed calls and
    /// returns the pages taken (held, no expiry). A call gives at most what
    /// keeps the zone above its low watermark, so between calls the reclaim
    /// model runs, as it does between plain allocations; packing stops when
    /// a call after a reclaim brings nothing.
    fn allocate_packed(&mut self, i: usize, a: &Actor, want: u64) -> u64 {
        let mut out = vec![Pfn(0); want as usize];
        let mut got = 0;
        loop {
            let n = self.request_packed(a.flags, &mut out[got..]);
            got += n;
            if got == out.len() || !self.variant.reclaim.enabled {
                break;
            }
            if n == 0 && !self.empty_a_pageblock() {
                break;
            }
            self.run_reclaim();
        }
        for &pfn in &out[..got] {
            self.record(i, a, pfn, Order::ZERO, None);
        }
        if self.variant.reclaim.enabled && self.free_pages() <= self.low {
            self.run_reclaim();
        }
        got as u64
    }

    /// Empties the pageblock that is cheapest to empty: one holding only
    /// reclaimable blocks, the fewest pages of them. Linux gets a free
    /// pageblock for a pageblock-order request by compaction (migrating
    /// movable pages out); the model has no migration, so it reclaims
    /// them, and counts the cost. Returns whether a pageblock was emptied.
    fn empty_a_pageblock(&mut self) -> bool {
        let shift = self.alloc.config().pageblock_order;
        // Per pageblock: reclaimable pages, and whether anything else that
        // cannot be reclaimed sits there.
        let mut cost: FxHashMap<u64, (u64, bool)> = FxHashMap::default();
        for s in self.slots.iter().filter(|s| s.live) {
            let entry = cost.entry(s.pfn >> shift).or_default();
            if self.variant.actors[s.actor as usize].reclaimable {
                entry.0 += 1 << s.order;
            } else {
                entry.1 = true;
            }
        }
        let Some(block) = cost
            .iter()
            .filter(|(_, &(pages, pinned))| !pinned && pages > 0)
            .min_by_key(|(&b, &(pages, _))| (pages, b))
            .map(|(&b, _)| b)
        else {
            return false;
        };
        let victims: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| {
                let s = &self.slots[i as usize];
                s.live && s.pfn >> shift == block
            })
            .collect();
        for idx in victims {
            let actor = self.slots[idx as usize].actor as usize;
            let pages = self.free_slot(idx);
            self.reclaim.blocks += 1;
            self.reclaim.pages += pages;
            self.reclaim.emptying_pages += pages;
            let st = &mut self.actors[actor].stats;
            st.reclaimed_blocks += 1;
            st.reclaimed_pages += pages;
        }
        // Freed pages may sit on per-CPU lists: hand them back so the
        // pageblock merges whole (isolation does the same in Linux).
        self.alloc.drain_all();
        self.reclaim.pageblocks_emptied += 1;
        true
    }

    /// One packed call: order-0 pages packed into pageblocks the flags'
    /// migratetype owns, claiming whole free pageblocks when those run out.
    fn request_packed(&mut self, flags: AllocFlags, out: &mut [Pfn]) -> usize {
        self.alloc
            .alloc_packed(CpuId(0), flags, PackClaim::ClaimFreePageblocks, out)
            .unwrap_or(0)
    }

    /// Allocates one block for actor `i`; `expires` is the step it is freed.
    fn allocate(
        &mut self,
        i: usize,
        a: &Actor,
        order: Order,
        expires: Option<u64>,
    ) -> Option<SlotId> {
        let reclaim_on = self.variant.reclaim.enabled;
        let mut result = self.request(a.alloc_mode, order, a.flags);
        if result.is_err() && reclaim_on && self.free_pages() < self.high {
            self.run_reclaim();
            result = self.request(a.alloc_mode, order, a.flags);
        }
        self.tally(order, result.is_ok());
        let Ok(pfn) = result else {
            self.actors[i].stats.alloc_failures[order.get() as usize] += 1;
            return None;
        };
        let id = self.record(i, a, pfn, order, expires);
        if reclaim_on && self.free_pages() <= self.low {
            self.run_reclaim();
        }
        Some(id)
    }

    /// Books a block actor `i` got: its slot, counters, hold list, expiry
    /// and reclaim queue.
    fn record(
        &mut self,
        i: usize,
        a: &Actor,
        pfn: Pfn,
        order: Order,
        expires: Option<u64>,
    ) -> SlotId {
        let id = self.new_slot(pfn, order, i);
        let slots = &self.slots;
        let live = |&(idx, generation): &SlotId| {
            slots
                .get(idx as usize)
                .is_some_and(|s| s.live && s.generation == generation)
        };
        let st = &mut self.actors[i];
        st.stats.allocs[order.get() as usize] += 1;
        st.pages += order.nr_pages().0;
        st.stats.pages_peak = st.stats.pages_peak.max(st.pages);
        if matches!(a.behaviour, Behaviour::Hold { .. }) {
            st.held.push(id);
            // Blocks reclaim took stay listed until the release: drop them
            // once they outnumber the live ones, or a reclaimable hold
            // actor that refills every step grows the list without bound.
            if st.held.len() as u64 > 2 * st.pages + STALE_SLACK {
                st.held.retain(live);
            }
        }
        if let Some(when) = expires {
            self.expiry.push(Reverse((when, id.0, id.1)));
            // The same for expiries of blocks reclaim freed first: with long
            // lifetimes they would pile up for the whole run.
            let nr_live = (slots.len() - self.free_slots.len()) as u64;
            if self.expiry.len() as u64 > 2 * nr_live + STALE_SLACK {
                self.expiry
                    .retain(|&Reverse((_, idx, generation))| live(&(idx, generation)));
            }
        }
        if a.reclaimable {
            self.lru.push_back(id);
            self.lru_live += 1;
        }
        id
    }

    /// The one place an actor's request reaches the engine: a new
    /// allocation mode is a new arm here.
    fn request(
        &mut self,
        mode: AllocMode,
        order: Order,
        flags: AllocFlags,
    ) -> Result<Pfn, AllocError> {
        match mode {
            AllocMode::Plain => self.alloc_block(order, flags),
            // One packed page, or an ordinary one when packing finds none
            // (the seed's partial success, then alloc_page()).
            AllocMode::Packed if order == Order::ZERO => {
                let mut one = [Pfn(0)];
                match self.request_packed(flags, &mut one) {
                    1 => Ok(one[0]),
                    _ => self.alloc.alloc(order, flags),
                }
            }
            AllocMode::Packed => self.alloc_block(order, flags),
        }
    }

    fn new_slot(&mut self, pfn: Pfn, order: Order, actor: usize) -> SlotId {
        let slot = Slot {
            pfn: pfn.0,
            generation: 0,
            order: order.get(),
            actor: actor as u16,
            live: true,
        };
        let id = match self.free_slots.pop() {
            Some(idx) => {
                let s = &mut self.slots[idx as usize];
                let generation = s.generation.wrapping_add(1);
                *s = Slot { generation, ..slot };
                (idx, generation)
            }
            None => {
                self.slots.push(slot);
                ((self.slots.len() - 1) as u32, 0)
            }
        };
        self.owners.insert(pfn.0, id.0);
        id
    }

    /// Free pages as reclaim counts them (summed over zones): without the
    /// free pages of CMA areas, which only movable allocations may use
    /// (Linux's kswapd checks its watermarks without `ALLOC_CMA`, so free
    /// CMA memory does not stop it).
    fn free_pages(&self) -> u64 {
        let free = self.alloc.nr_free_pages();
        if !self.has_cma {
            return free;
        }
        let cma: u64 = self
            .alloc
            .zones()
            .iter()
            .flat_map(|z| {
                (0..self.alloc.config().nr_orders)
                    .filter_map(Order::new)
                    .map(move |o| z.nr_free_blocks(o, MigrateType::Cma) << o.get())
            })
            .sum();
        free.saturating_sub(cma)
    }

    fn is_live(&self, (idx, generation): SlotId) -> bool {
        self.slots
            .get(idx as usize)
            .is_some_and(|s| s.live && s.generation == generation)
    }

    /// Frees a live slot's block; returns its pages.
    fn free_slot(&mut self, idx: u32) -> u64 {
        let s = &mut self.slots[idx as usize];
        s.live = false;
        let (pfn, order, actor) = (s.pfn, s.order, s.actor as usize);
        self.owners.remove(pfn);
        let order = Order::new(order).unwrap_or(Order::ZERO);
        // A live slot is always an allocated block of ours: a failure here
        // would be an engine bug, caught by the invariant check at the end.
        let _ = self.alloc.free(Pfn(pfn), order);
        self.free_slots.push(idx);
        let pages = order.nr_pages().0;
        self.actors[actor].pages -= pages;
        if self.variant.actors[actor].reclaimable {
            self.lru_live -= 1;
        }
        pages
    }

    fn release_all(&mut self, i: usize) {
        let held = std::mem::take(&mut self.actors[i].held);
        for id in held {
            if self.is_live(id) {
                let pages = self.free_slot(id.0);
                self.actors[i].stats.released_pages += pages;
            }
        }
    }

    fn run_reclaim(&mut self) {
        self.reclaim.runs += 1;
        while self.free_pages() < self.high {
            let Some(id) = self.lru.pop_front() else {
                break;
            };
            if !self.is_live(id) {
                continue;
            }
            let actor = self.slots[id.0 as usize].actor as usize;
            let pages = self.free_slot(id.0);
            self.reclaim.blocks += 1;
            self.reclaim.pages += pages;
            let st = &mut self.actors[actor].stats;
            st.reclaimed_blocks += 1;
            st.reclaimed_pages += pages;
        }
        // Drop freed entries once they outnumber the live ones.
        if self.lru.len() > 2 * self.lru_live + 4096 {
            let slots = &self.slots;
            self.lru.retain(|&(idx, generation)| {
                let s = &slots[idx as usize];
                s.live && s.generation == generation
            });
        }
    }

    /// At the end of step `done`: a reporting pass, if reporting is on, the
    /// worker looks now and a pass is wanted.
    fn report(&mut self, done: u64) {
        let Some(r) = self.variant.reporting else {
            return;
        };
        if !done.is_multiple_of(r.every) {
            return;
        }
        let requested = self.alloc.reporting_state() == ReportingState::Requested;
        if !requested && !self.report_more {
            return;
        }
        self.report_more = false;
        // Off and Busy cannot happen here: reporting is on and passes run
        // one at a time on this thread.
        let Ok(pass) = self.alloc.report_pass(&mut AcceptAll) else {
            return;
        };
        if !requested {
            self.continued_passes += 1;
        }
        if pass.pages_reported > 0 {
            self.report_more = self
                .reporting_point(done)
                .is_some_and(|p| p.reported < p.free_reportable);
        }
    }

    /// The reporting figures now, all zones (reporting on only).
    fn reporting_point(&self, at: u64) -> Option<ReportingPoint> {
        let info = self.alloc.reporting_info()?;
        Some(ReportingPoint {
            at,
            free_reportable: info.zones.iter().map(|z| z.free_reportable).sum(),
            reported: info.zones.iter().map(|z| z.reported).sum(),
            fraction: info.reported_fraction(),
        })
    }

    /// Pages per memory region: the variant's own regions, or, for a
    /// variant without them in a scenario where another has them, the
    /// first such variant's size, counted only (the baseline beside it).
    fn region_pages(&self) -> Option<u64> {
        let r = self
            .variant
            .regions
            .or_else(|| self.scenario.variants.iter().find_map(|v| v.regions))?;
        Some(r.size_bytes / self.alloc.config().page_size_bytes)
    }

    fn sample(&mut self, step: u64) {
        if let Some(p) = self.reporting_point(step) {
            self.reporting_samples.push(p);
        }
        if let Some(pages) = self.region_pages() {
            let (fully_free, _) = census::fully_free_regions(&self.alloc, pages);
            self.region_samples.push(RegionSample {
                at: step,
                time_s: None,
                fully_free,
            });
        }
        if self.has_cma {
            self.sample_cma(step);
        }
        self.sample_requests(step);
        let c = census::take(&self.alloc, &mut self.scratch);
        let unusable_index = (0..c.free_blocks.len())
            .filter_map(|o| Order::new(o as u8))
            .map(|o| c.unusable_index(o))
            .collect();
        self.samples.push(Sample {
            at: step,
            time_s: None,
            free_pages: c.free_pages,
            free_blocks: c.free_blocks,
            unusable_index,
            mixed: c.mixed,
            unmovable_spread: c.unmovable_spread,
        });
    }

    fn snapshot(&mut self, title: &str, phase: &str, step: u64) {
        let c = census::take(&self.alloc, &mut self.scratch);
        let pb = self.alloc.config().pageblock();
        let held =
            self.variant
                .actors
                .iter()
                .zip(&self.actors)
                .enumerate()
                .filter_map(|(i, (a, st))| {
                    let pageblocks =
                        match a.behaviour {
                            Behaviour::Hold { .. } => {
                                let blocks = st.held.iter().filter(|id| self.is_live(**id)).map(
                                    |&(idx, _)| {
                                        let s = &self.slots[idx as usize];
                                        (Pfn(s.pfn), Order::new(s.order).unwrap_or(Order::ZERO))
                                    },
                                );
                                census::distinct_pageblocks(blocks, pb)
                            }
                            Behaviour::Contig(_) => self.run_pageblocks(i),
                            Behaviour::Churn { .. } => return None,
                        };
                    Some(HeldPages {
                        actor: a.name.clone(),
                        pages: st.pages,
                        pageblocks,
                        min_pageblocks: st.pages.div_ceil(pb.nr_pages().0),
                    })
                })
                .collect();
        let probes = self
            .scenario
            .probe_orders
            .iter()
            .map(|&order| {
                let mut copy = Allocator::clone(&self.alloc);
                // The probe did not happen: keep it out of --emit-trace.
                copy.set_event_sink(None);
                Probe {
                    order: order.get(),
                    flags: describe(AllocFlags::KERNEL),
                    would_succeed: copy.alloc(order, AllocFlags::KERNEL).is_ok(),
                    unusable_index: c.unusable_index(order),
                }
            })
            .collect();
        let requests = self.snapshot_requests(step);
        self.snapshots.push(Snapshot {
            title: title.to_owned(),
            phase: phase.to_owned(),
            step,
            buddyinfo: self.alloc.buddyinfo(),
            pagetypeinfo: self.alloc.pagetypeinfo(),
            summary: SnapshotSummary {
                held,
                mixed: c.mixed,
                unmovable_spread: c.unmovable_spread,
                free_pages: c.free_pages,
                free_blocks: c.free_blocks,
                probes,
                reporting: self.reporting_point(step),
                requests,
            },
        });
    }
}

fn pick_order(rng: &mut Rng, orders: &[(Order, f64)]) -> Order {
    if let [(only, _)] = orders {
        return *only;
    }
    let u = rng.next_f64();
    orders
        .iter()
        .find(|(_, cum)| u < *cum)
        .or(orders.last())
        .map_or(Order::ZERO, |(o, _)| *o)
}

fn draw_lifetime(rng: &mut Rng, lifetime: Lifetime) -> Option<u64> {
    match lifetime {
        Lifetime::Exponential { mean } => Some((rng.exponential(mean).round() as u64).max(1)),
        Lifetime::Uniform { min, max } => Some(rng.range(min, max).max(1)),
        Lifetime::Fixed { steps } => Some(steps.max(1)),
        Lifetime::Forever => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    /// Runs `steps` steps of the scenario's only variant; returns the
    /// simulation to look at.
    fn stepped(scenario: &Scenario, steps: u64) -> Sim<'_> {
        let variant = &scenario.variants[0];
        let alloc = scenario.machine.allocator().unwrap();
        let mut sim = Sim::new(scenario, variant, alloc);
        for step in 0..steps {
            sim.step(step);
        }
        sim
    }

    /// A reclaimable hold actor that refills every step while reclaim takes
    /// its blocks: its list of held blocks stays within twice its live
    /// blocks (plus the slack) instead of growing by the blocks reclaimed.
    #[test]
    fn a_refilling_hold_actor_keeps_a_bounded_list() {
        let text = r#"seed = 3
[machine]
memory = "16M"
[reclaim]
types = []
[[phase]]
name = "run"
steps = 100
[[actor]]
name = "kernel"
migratetype = "unmovable"
rate = 400
lifetime = { dist = "exponential", mean = 20 }
[[actor]]
name = "driver"
kind = "hold"
reclaimable = true
migratetype = "movable"
hold = "16M"
chunk = "16M"
"#;
        let scenario = parse(text, "t.toml", None).unwrap();
        let sim = stepped(&scenario, 100);
        let driver = &sim.actors[1];
        let reclaimed = driver.stats.reclaimed_blocks;
        assert!(
            reclaimed > 4 * STALE_SLACK,
            "reclaim took {reclaimed} blocks"
        );
        assert!(
            driver.held.len() as u64 <= 2 * driver.pages + STALE_SLACK + 1,
            "{} held for {} pages",
            driver.held.len(),
            driver.pages
        );
    }

    /// Long-lived churn blocks that reclaim frees first leave their expiry
    /// behind: the queue stays within twice the live blocks (plus the
    /// slack) instead of growing with every allocation.
    #[test]
    fn expiries_of_reclaimed_blocks_do_not_pile_up() {
        let text = r#"seed = 3
[machine]
memory = "16M"
[[phase]]
name = "run"
steps = 20
[[actor]]
name = "cache"
migratetype = "movable"
rate = 10000
lifetime = { dist = "fixed", steps = 1000000000000 }
"#;
        let scenario = parse(text, "t.toml", None).unwrap();
        let sim = stepped(&scenario, 20);
        assert!(sim.reclaim.blocks > 4 * STALE_SLACK, "{:?}", sim.reclaim);
        let live = (sim.slots.len() - sim.free_slots.len()) as u64;
        assert!(
            sim.expiry.len() as u64 <= 2 * live + STALE_SLACK + 1,
            "{} expiries for {live} live blocks",
            sim.expiry.len()
        );
    }
}
