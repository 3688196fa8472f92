//! Fault injection into contiguous allocation over real memory: random
//! sequences of allocations, frees, rewrites and contiguous calls
//! (`alloc_contig_range`, `alloc_contig_pages`, `cma_alloc`), where a gate
//! around the arena's migrator refuses moves at random and blocks are
//! pinned at random, before each call and from inside it. After every
//! step: the engine's invariants and the handle table's hold, every page is
//! accounted for (free + cached + allocated = all, the allocated ones being
//! exactly the live blocks and runs), and every byte of every live block
//! and run is what was written to it.
//!
//! `PROPTEST_CASES` sets the number of cases (64 by default). The totals
//! (calls, injected refusals and pins, outcomes) go to stderr: run with
//! `--nocapture` to see them.

mod common;

use std::cell::RefCell;

use common::{assert_accounted, assert_intact, Held, Live, Source, XorShift};
use pagealloc_arena::{
    AllocError, AllocFlags, Arena, CmaReservation, CmaSupport, Config, ContigAlloc,
    ContigConstraints, ContigError, ContigRequest, ContigRun, MigrateRefusal, NodeId, Order,
    PageCount, Pfn,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};

/// The arena: 8 MiB, four pageblocks of 2 MiB.
const ARENA_BYTES: usize = 8 << 20;
/// Its CMA area: one pageblock, placed at the top.
const CMA_PAGES: u64 = 512;
/// The largest run asked for: 4 MiB.
const MAX_RUN_PAGES: u16 = 1024;
/// Cases when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 64;

/// One step of a case.
#[derive(Clone, Debug)]
enum Op {
    /// Allocate `count` blocks of `order`, movable or not.
    Alloc { order: u8, count: u8, movable: bool },
    /// Free `count` random blocks.
    Free { pick: u32, count: u8 },
    /// Write new bytes to a random block.
    Rewrite { pick: u32 },
    /// `alloc_contig_range` of `len` frames at `at` (modulo the arena).
    Range { at: u32, len: u16 },
    /// `alloc_contig_pages` of `nr` frames aligned to `2^align`.
    Pages { nr: u16, align: u8 },
    /// `cma_alloc` of `count` frames aligned to `2^align`.
    Cma { count: u16, align: u8 },
    /// Free a random run.
    FreeRun { pick: u32 },
}

/// How often faults are injected in a case, per thousand.
#[derive(Clone, Debug)]
struct Faults {
    /// The gate refuses a move.
    refuse: u32,
    /// A live block is pinned before a contiguous call.
    pin_before: u32,
    /// A live block's bytes are borrowed (a `Bytes` guard held) over a
    /// contiguous call.
    borrow_before: u32,
    /// The gate pins a random live block (kept to the end of the call).
    pin_during: u32,
    /// Seeds the case's random choices and bytes.
    seed: u64,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..=4, 1u8..48, prop::bool::weighted(0.85))
            .prop_map(|(order, count, movable)| Op::Alloc { order, count, movable }),
        2 => (any::<u32>(), 1u8..24).prop_map(|(pick, count)| Op::Free { pick, count }),
        1 => any::<u32>().prop_map(|pick| Op::Rewrite { pick }),
        3 => (any::<u32>(), 1..=MAX_RUN_PAGES).prop_map(|(at, len)| Op::Range { at, len }),
        3 => (1..=MAX_RUN_PAGES, 0u8..=9).prop_map(|(nr, align)| Op::Pages { nr, align }),
        2 => (1..=CMA_PAGES as u16, 0u8..=9).prop_map(|(count, align)| Op::Cma { count, align }),
        2 => any::<u32>().prop_map(|pick| Op::FreeRun { pick }),
    ]
}

fn faults() -> impl Strategy<Value = Faults> {
    (0u32..=700, 0u32..=60, 0u32..=60, 0u32..=150, any::<u64>()).prop_map(
        |(refuse, pin_before, borrow_before, pin_during, seed)| Faults {
            refuse,
            pin_before,
            borrow_before,
            pin_during,
            seed,
        },
    )
}

/// What the cases did, summed.
#[derive(Default, Debug)]
struct Totals {
    cases: u64,
    steps: u64,
    calls: u64,
    taken: u64,
    failed_busy: u64,
    failed_not_found: u64,
    failed_unmovable: u64,
    failed_no_memory: u64,
    gate_asked: u64,
    injected_refusals: u64,
    injected_pins_before: u64,
    injected_borrows: u64,
    injected_pins_during: u64,
    moved_blocks: u64,
    refused_pinned: u64,
    refused_busy: u64,
    refused_gone: u64,
}

fn config() -> Config {
    Config {
        cma: CmaSupport::Enabled,
        cma_reservations: vec![CmaReservation {
            nr_pages: PageCount(CMA_PAGES),
            align: PageCount(CMA_PAGES),
            node: NodeId(0),
            order_per_bit: 0,
        }],
        ..Config::default()
    }
}

/// A contiguous run and what it holds.
struct Run {
    run: ContigRun,
    held: Held,
}

/// Checks everything after a step.
fn check(arena: &mut Arena, source: &Source, live: &[Live], runs: &[Run]) {
    let plain: Vec<&ContigRun> = runs.iter().map(|r| &r.run).collect();
    assert_accounted(arena, live, &plain);
    assert_intact(arena, source, live);
    for (i, r) in runs.iter().enumerate() {
        assert!(
            source.holds(arena.run_bytes(&r.run), r.held),
            "run {i} at {} lost its bytes",
            r.run.start()
        );
    }
}

/// One contiguous call with the case's faults: pins taken at random
/// before it, and a gate that refuses at random and pins at random.
fn contig_call(
    arena: &Arena,
    live: &[Live],
    request: &ContigRequest,
    faults: &Faults,
    rng: &mut XorShift,
    totals: &mut Totals,
) -> Result<(ContigRun, ContigAlloc), ContigError> {
    let (mut before, mut borrowed) = (Vec::new(), Vec::new());
    for l in live {
        if rng.below(1000) < faults.pin_before as usize {
            before.push(arena.pin(&l.block).expect("a pin"));
        }
        if rng.below(1000) < faults.borrow_before as usize {
            borrowed.push(arena.bytes(&l.block));
        }
    }
    totals.injected_pins_before += before.len() as u64;
    totals.injected_borrows += borrowed.len() as u64;
    let mut during = Vec::new();
    let mut gate = |_: Pfn, _: Pfn, _: Order| {
        totals.gate_asked += 1;
        if !live.is_empty() && rng.below(1000) < faults.pin_during as usize {
            let l = &live[rng.below(live.len())];
            during.push(arena.pin(&l.block).expect("a pin"));
            totals.injected_pins_during += 1;
        }
        if rng.below(1000) < faults.refuse as usize {
            totals.injected_refusals += 1;
            return Err(if rng.next() & 1 == 0 {
                MigrateRefusal::Busy
            } else {
                MigrateRefusal::Pinned
            });
        }
        Ok(())
    };
    let result = arena.alloc_contig_gated(request, &mut gate);
    drop(during);
    drop(before);
    drop(borrowed);
    result
}

fn run_case(faults: &Faults, ops: &[Op], totals: &mut Totals) -> Result<(), TestCaseError> {
    let mut arena = Arena::new(ARENA_BYTES, config()).expect("arena");
    let area = arena.cma_areas()[0];
    let mut rng = XorShift(faults.seed | 1);
    let mut source = Source::new(faults.seed, 1 << 20, usize::from(MAX_RUN_PAGES) * 4096);
    let mut live: Vec<Live> = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    let stats = arena.migration_stats();
    for op in ops {
        totals.steps += 1;
        let request = match *op {
            Op::Alloc {
                order,
                count,
                movable,
            } => {
                let flags = if movable {
                    AllocFlags::HIGHUSER_MOVABLE
                } else {
                    AllocFlags::KERNEL
                };
                let order = Order::new(order).expect("order");
                for _ in 0..count {
                    match arena.alloc(order, flags) {
                        Ok(mut block) => {
                            let held = source.fill(&mut arena.bytes_mut(&mut block));
                            live.push(Live { block, held });
                        }
                        Err(AllocError::NoMemory { .. }) => break,
                        Err(e) => return Err(TestCaseError::fail(format!("alloc: {e}"))),
                    }
                }
                None
            }
            Op::Free { pick, count } => {
                for i in 0..u32::from(count) {
                    if live.is_empty() {
                        break;
                    }
                    let l = live.swap_remove((pick.wrapping_add(i * 7919)) as usize % live.len());
                    arena.free(l.block).expect("free");
                }
                None
            }
            Op::Rewrite { pick } => {
                if !live.is_empty() {
                    let i = pick as usize % live.len();
                    let l = &mut live[i];
                    l.held = source.fill(&mut arena.bytes_mut(&mut l.block));
                }
                None
            }
            Op::FreeRun { pick } => {
                if !runs.is_empty() {
                    let r = runs.swap_remove(pick as usize % runs.len());
                    arena.free_contig(r.run).expect("free_contig");
                }
                None
            }
            Op::Range { at, len } => {
                let nr = arena.nr_pages().0;
                let len = u64::from(len).min(nr);
                let start = Pfn(arena.start_pfn().0 + u64::from(at) % (nr - len + 1));
                Some(ContigRequest::Range {
                    start,
                    end: Pfn(start.0 + len),
                })
            }
            Op::Pages { nr, align } => Some(ContigRequest::Pages {
                nr_pages: PageCount(u64::from(nr)),
                constraints: ContigConstraints {
                    align: PageCount(1 << align),
                    ..ContigConstraints::default()
                },
            }),
            Op::Cma { count, align } => Some(ContigRequest::Cma {
                area: 0,
                count: PageCount(u64::from(count)),
                align: Order::new(align).expect("order"),
            }),
        };
        if let Some(request) = request {
            totals.calls += 1;
            match contig_call(&arena, &live, &request, faults, &mut rng, totals) {
                Ok((mut run, info)) => {
                    totals.taken += 1;
                    check_run(&request, &run, &info, area.start, area.end().expect("end"))?;
                    let held = source.fill(arena.run_bytes_mut(&mut run));
                    runs.push(Run { run, held });
                }
                Err(ContigError::Busy { .. }) => totals.failed_busy += 1,
                Err(ContigError::NotFound { .. }) => totals.failed_not_found += 1,
                Err(ContigError::Unmovable { .. }) => totals.failed_unmovable += 1,
                Err(ContigError::NoMemory) => totals.failed_no_memory += 1,
                Err(e) => return Err(TestCaseError::fail(format!("{request:?}: {e}"))),
            }
        }
        check(&mut arena, &source, &live, &runs);
    }
    let now = arena.migration_stats();
    totals.moved_blocks += now.moved_blocks - stats.moved_blocks;
    totals.refused_pinned += now.refused_pinned - stats.refused_pinned;
    totals.refused_busy += now.refused_busy - stats.refused_busy;
    totals.refused_gone += now.refused_gone - stats.refused_gone;
    for l in live {
        arena.free(l.block).expect("free");
    }
    for r in runs {
        arena.free_contig(r.run).expect("free_contig");
    }
    arena.drain_cpu_lists();
    assert_accounted(&mut arena, &[], &[]);
    prop_assert_eq!(arena.nr_free_pages(), arena.nr_pages().0);
    prop_assert_eq!(arena.cma_used_pages(0).expect("area"), PageCount(0));
    totals.cases += 1;
    Ok(())
}

/// A run taken for `request` is what it asked for.
fn check_run(
    request: &ContigRequest,
    run: &ContigRun,
    info: &ContigAlloc,
    cma_start: Pfn,
    cma_end: Pfn,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(run.start(), info.start);
    prop_assert_eq!(run.nr_pages(), info.nr_pages);
    match *request {
        ContigRequest::Range { start, end } => {
            prop_assert_eq!((run.start(), run.end()), (start, end));
        }
        ContigRequest::Pages {
            nr_pages,
            constraints,
        } => {
            prop_assert_eq!(run.nr_pages(), nr_pages);
            prop_assert_eq!(run.start().0 % constraints.align.0, 0);
        }
        ContigRequest::Cma { count, align, .. } => {
            prop_assert_eq!(run.nr_pages(), count);
            prop_assert!(run.start().is_aligned(align));
            prop_assert!(run.start() >= cma_start && run.end() <= cma_end);
            prop_assert_eq!(run.cma_area(), Some(0));
        }
    }
    Ok(())
}

#[test]
fn contiguous_calls_under_injected_faults_keep_every_byte() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let totals = RefCell::new(Totals::default());
    let strategy = (faults(), prop::collection::vec(op(), 10..60));
    let result = runner.run(&strategy, |(faults, ops)| {
        run_case(&faults, &ops, &mut totals.borrow_mut())
    });
    let t = totals.into_inner();
    eprintln!(
        "fault injection: {} cases, {} steps, {} contiguous calls: {} taken, failed {} busy, \
         {} not found, {} unmovable, {} no memory",
        t.cases,
        t.steps,
        t.calls,
        t.taken,
        t.failed_busy,
        t.failed_not_found,
        t.failed_unmovable,
        t.failed_no_memory
    );
    eprintln!(
        "injected: gate asked {} times, {} refusals; {} pins and {} byte borrows held over \
         calls, {} pins taken by the gate during them",
        t.gate_asked,
        t.injected_refusals,
        t.injected_pins_before,
        t.injected_borrows,
        t.injected_pins_during
    );
    eprintln!(
        "the migrator moved {} blocks and refused {} pinned, {} busy, {} gone",
        t.moved_blocks, t.refused_pinned, t.refused_busy, t.refused_gone
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(t.taken > 0 && t.moved_blocks > 0, "{t:?}");
    assert!(t.injected_refusals > 0, "{t:?}");
    assert!(t.refused_pinned > 0 && t.refused_busy > 0, "{t:?}");
}
