//! Free page reporting (seed 002): passes, batches, budgets, the reported
//! tail runs, allocation order, sink failures and bad configurations, with
//! the invariant walk after every step of a randomized run.

use std::cell::Cell;

use pagealloc::{
    AllocFlags, Allocator, Config, ConfigError, CpuId, MemoryMap, MinFree, Order, PageCount,
    PcpMode, Pfn, ReportPass, ReportPassError, ReportSink, ReportedBlock, ReportingPolicy,
    ReportingProblem, ReportingState, ZoneBounds,
};
use proptest::prelude::*;

/// Pages of [`machine`]: 512 MiB of 4 KiB pages, 128 max-order blocks.
const TOTAL: u64 = 131_072;

/// Pages of the randomized runs' machine: 128 MiB, walked after every step.
const SMALL: u64 = 32_768;

/// 512 MiB of 4 KiB pages in one Normal zone, reporting as `policy` says.
/// (Linux skips a zone with fewer free pages than its low watermark plus a
/// batch of the reporting order, 64 MiB with the defaults.)
fn machine(policy: Option<ReportingPolicy>, pcp: PcpMode) -> Allocator {
    machine_of(TOTAL, policy, pcp)
}

fn machine_of(pages: u64, policy: Option<ReportingPolicy>, pcp: PcpMode) -> Allocator {
    let config = Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        min_free: MinFree::Kbytes(512),
        pcp,
        reporting: policy,
        ..Config::default()
    };
    let map = MemoryMap::contiguous(Pfn(0x10_0000), PageCount(pages)).unwrap();
    Allocator::new(map, config).unwrap()
}

/// A sink that records what it is given and fails when told to.
#[derive(Default)]
struct Recorder {
    batches: Vec<Vec<ReportedBlock>>,
    fail: Cell<bool>,
}

impl ReportSink for Recorder {
    type Error = ();
    fn report(&mut self, batch: &[ReportedBlock]) -> Result<(), ()> {
        if self.fail.get() {
            return Err(());
        }
        self.batches.push(batch.to_vec());
        Ok(())
    }
}

fn reported(a: &Allocator) -> u64 {
    a.reporting_info()
        .unwrap()
        .zones
        .iter()
        .map(|z| z.reported)
        .sum()
}

#[test]
fn an_idle_machine_is_reported_over_passes_by_linux_budget() {
    // 2 GiB: 512 free max-order blocks on one list. Each pass may hand over
    // ceil(512 / (32 * 16)) = 1 batch for the list plus the one it carries
    // (Linux: "a sixteenth of the current list plus one additional call"):
    // 64 blocks a pass, so 95% takes 8 passes.
    let a = machine_of(1 << 19, Some(ReportingPolicy::default()), PcpMode::Enabled);
    assert_eq!(a.reporting_state(), ReportingState::Requested);
    let mut sink = Recorder::default();
    let mut passes = 0;
    let mut fractions = Vec::new();
    while a.reporting_info().unwrap().reported_fraction() < 0.95 {
        let pass = a.report_pass(&mut sink).unwrap();
        assert!(pass.batches > 0, "pass {passes} reported nothing");
        passes += 1;
        fractions.push(a.reporting_info().unwrap().reported_fraction());
        a.check_invariants().unwrap();
        assert!(passes < 64, "never reached 95%: {fractions:?}");
    }
    assert_eq!(passes, 8, "{fractions:?}");
    assert!((fractions[0] - 0.125).abs() < 0.01, "{fractions:?}");
    for batch in &sink.batches {
        assert!(!batch.is_empty() && batch.len() <= 32);
        assert!(
            batch.iter().all(|b| b.order.get() >= 9),
            "below the threshold"
        );
    }
    // A pass that ran out of budget asks for another, until all is done.
    let mut extra = 0;
    while a.reporting_state() == ReportingState::Requested {
        a.report_pass(&mut sink).unwrap();
        extra += 1;
        assert!(extra < 8, "passes never settle");
    }
    assert_eq!(a.reporting_state(), ReportingState::Idle);
    assert_eq!(a.reporting_info().unwrap().reported_fraction(), 1.0);
    let s = a.stats();
    assert_eq!(s.report_passes, passes + extra);
    assert_eq!(s.reported_pages, reported(&a));
}

#[test]
fn reported_blocks_are_allocated_last() {
    let a = machine(Some(ReportingPolicy::default()), PcpMode::Disabled);
    let mut sink = Recorder::default();
    while a.report_pass(&mut sink).unwrap().batches > 0 {}
    let all_reported = reported(&a);
    assert!(all_reported > 0);
    // Free two unreported max-order blocks: take them, give them back.
    let o = Order::new(10).unwrap();
    let flags = AllocFlags::HIGHUSER_MOVABLE;
    let x = a.alloc(o, flags).unwrap();
    let y = a.alloc(o, flags).unwrap();
    let refaulted = a.stats().reported_reallocated;
    assert_eq!(refaulted, 2048, "both came from reported blocks");
    a.free(x, o).unwrap();
    a.free(y, o).unwrap();
    a.check_invariants().unwrap();
    // The next two come from those unreported blocks, not from reported ones.
    let p = a.alloc(o, flags).unwrap();
    let q = a.alloc(o, flags).unwrap();
    assert_eq!(a.stats().reported_reallocated, refaulted);
    let mut got = [p, q];
    got.sort();
    let mut freed = [x, y];
    freed.sort();
    assert_eq!(got, freed);
    // A third comes from a reported block.
    a.alloc(o, flags).unwrap();
    assert_eq!(a.stats().reported_reallocated, refaulted + 1024);
    a.check_invariants().unwrap();
}

#[test]
fn a_merged_block_loses_its_mark_and_is_reported_again() {
    let a = machine(
        Some(ReportingPolicy {
            order: Some(3),
            ..ReportingPolicy::default()
        }),
        PcpMode::Disabled,
    );
    let o3 = Order::new(3).unwrap();
    // Carve a max-order block into order-3 pieces, free every other one.
    let pieces: Vec<Pfn> = (0..128)
        .map(|_| a.alloc(o3, AllocFlags::KERNEL).unwrap())
        .collect();
    for p in pieces.iter().step_by(2) {
        a.free(*p, o3).unwrap();
    }
    let mut sink = Recorder::default();
    while a.report_pass(&mut sink).unwrap().batches > 0 {}
    a.check_invariants().unwrap();
    let before = reported(&a);
    // Freeing the other halves merges reported buddies: their marks go.
    for p in pieces.iter().skip(1).step_by(2) {
        a.free(*p, o3).unwrap();
    }
    a.check_invariants().unwrap();
    assert!(reported(&a) < before, "merges kept the reported marks");
    assert_eq!(a.reporting_state(), ReportingState::Requested);
    while a.report_pass(&mut sink).unwrap().batches > 0 {}
    assert!(
        sink.batches.iter().flatten().any(|b| b.order.get() > 3),
        "the merged blocks were reported again"
    );
    a.check_invariants().unwrap();
}

#[test]
fn a_failing_sink_marks_nothing_and_loses_nothing() {
    let a = machine(Some(ReportingPolicy::default()), PcpMode::Enabled);
    let free = a.nr_free_pages();
    let mut sink = Recorder::default();
    sink.fail.set(true);
    let pass = a.report_pass(&mut sink).unwrap();
    assert!(pass.batches > 0);
    assert_eq!(pass.failed_batches, pass.batches);
    assert_eq!(pass.pages_reported, 0);
    assert_eq!(reported(&a), 0);
    assert_eq!(a.nr_free_pages(), free);
    assert_eq!(a.stats().report_failures, pass.batches);
    a.check_invariants().unwrap();
    // Every other batch failing: half the batches land.
    struct EveryOther(u64);
    impl ReportSink for EveryOther {
        type Error = &'static str;
        fn report(&mut self, _: &[ReportedBlock]) -> Result<(), &'static str> {
            self.0 += 1;
            if self.0.is_multiple_of(2) {
                Err("refused")
            } else {
                Ok(())
            }
        }
    }
    let mut flaky = EveryOther(0);
    let pass = a.report_pass(&mut flaky).unwrap();
    assert!(pass.failed_batches > 0 && pass.failed_batches < pass.batches);
    assert_eq!(reported(&a), pass.pages_reported);
    a.check_invariants().unwrap();
}

#[test]
fn a_zone_below_its_low_watermark_plus_a_batch_is_skipped() {
    let a = machine(Some(ReportingPolicy::default()), PcpMode::Disabled);
    let mut held = Vec::new();
    let o = Order::new(9).unwrap();
    while a.nr_free_pages() > 32 * 512 / 2 {
        held.push(a.alloc(o, AllocFlags::HIGHUSER_MOVABLE).unwrap());
    }
    let pass = a.report_pass(&mut Recorder::default()).unwrap();
    assert_eq!(
        pass,
        ReportPass {
            zones_skipped: 1,
            ..ReportPass::default()
        }
    );
    for p in held {
        a.free(p, o).unwrap();
    }
    a.check_invariants().unwrap();
}

#[test]
fn bad_reporting_configurations_are_refused() {
    let map = || MemoryMap::contiguous(Pfn(0x10_0000), PageCount(TOTAL)).unwrap();
    let with = |policy: ReportingPolicy| Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        reporting: Some(policy),
        ..Config::default()
    };
    let cases = [
        (
            ReportingPolicy {
                order: Some(11),
                ..ReportingPolicy::default()
            },
            ReportingProblem::OrderAboveMax { order: 11, max: 10 },
        ),
        (
            ReportingPolicy {
                capacity: 0,
                ..ReportingPolicy::default()
            },
            ReportingProblem::Capacity {
                capacity: 0,
                max: 1024,
            },
        ),
        (
            ReportingPolicy {
                capacity: 1025,
                ..ReportingPolicy::default()
            },
            ReportingProblem::Capacity {
                capacity: 1025,
                max: 1024,
            },
        ),
        (
            ReportingPolicy {
                budget_fraction: 0,
                ..ReportingPolicy::default()
            },
            ReportingProblem::BudgetFraction,
        ),
    ];
    for (policy, problem) in cases {
        let err = Allocator::new(map(), with(policy)).unwrap_err();
        assert_eq!(err, ConfigError::Reporting(problem));
        assert!(!err.to_string().is_empty());
    }
    let off = machine(None, PcpMode::Enabled);
    assert_eq!(off.reporting_state(), ReportingState::Off);
    assert_eq!(
        off.report_pass(&mut Recorder::default()),
        Err(ReportPassError::Off)
    );
    assert!(off.reporting_info().is_none());
}

#[test]
fn a_snapshot_during_a_report_holds_no_block_in_flight() {
    struct Snapshotting<'a> {
        a: &'a Allocator,
        copies: Vec<Allocator>,
    }
    impl ReportSink for Snapshotting<'_> {
        type Error = ();
        fn report(&mut self, _: &[ReportedBlock]) -> Result<(), ()> {
            // Every lock is free here: the report runs with them dropped.
            self.a.check_invariants().unwrap();
            assert!(self.a.reporting_info().unwrap().zones[0].in_flight > 0);
            self.copies.push(self.a.clone());
            Ok(())
        }
    }
    let a = machine(Some(ReportingPolicy::default()), PcpMode::Enabled);
    let mut sink = Snapshotting {
        a: &a,
        copies: Vec::new(),
    };
    a.report_pass(&mut sink).unwrap();
    assert!(!sink.copies.is_empty());
    for copy in &sink.copies {
        copy.check_invariants().unwrap();
        assert_eq!(copy.reporting_info().unwrap().zones[0].in_flight, 0);
        assert_eq!(copy.nr_free_pages(), a.nr_free_pages());
    }
    assert_eq!(
        sink.a.report_pass(&mut Recorder::default()).map(|_| ()),
        Ok(())
    );
}

#[derive(Clone, Debug)]
enum Op {
    Alloc { order: u8, movable: bool },
    Free { pick: usize },
    Pass { fail_every: u8 },
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..=10, any::<bool>()).prop_map(|(order, movable)| Op::Alloc { order, movable }),
        4 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        2 => (0u8..4).prop_map(|fail_every| Op::Pass { fail_every }),
        1 => Just(Op::Drain),
    ]
}

/// A sink failing every `n`th batch (never with 0).
struct Flaky {
    n: u8,
    seen: u64,
}

impl ReportSink for Flaky {
    type Error = ();
    fn report(&mut self, batch: &[ReportedBlock]) -> Result<(), ()> {
        assert!(!batch.is_empty());
        self.seen += 1;
        if self.n > 0 && self.seen.is_multiple_of(u64::from(self.n)) {
            Err(())
        } else {
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20, ..ProptestConfig::default() })]

    /// Random allocations, frees, passes with failing sinks and drains: the
    /// invariant walk (tail runs, reported counters equal to a walk, no
    /// block left in flight) after every step, and every page accounted.
    #[test]
    fn random_reporting_keeps_every_invariant(
        ops in proptest::collection::vec(op(), 50..200),
        low_order in any::<bool>(),
    ) {
        let policy = ReportingPolicy {
            order: low_order.then_some(2),
            capacity: 8,
            budget_fraction: 4,
        };
        let a = machine_of(SMALL, Some(policy), PcpMode::Enabled);
        let mut held: Vec<(Pfn, Order)> = Vec::new();
        for op in &ops {
            match *op {
                Op::Alloc { order, movable } => {
                    let flags = if movable { AllocFlags::HIGHUSER_MOVABLE } else { AllocFlags::KERNEL };
                    let o = Order::new(order).unwrap();
                    if let Ok(p) = a.alloc_on_cpu(CpuId(0), o, flags) {
                        held.push((p, o));
                    }
                }
                Op::Free { pick } if !held.is_empty() => {
                    let (p, o) = held.swap_remove(pick % held.len());
                    a.free(p, o).unwrap();
                }
                Op::Free { .. } => {}
                Op::Pass { fail_every } => {
                    let mut sink = Flaky { n: fail_every, seen: 0 };
                    let pass = a.report_pass(&mut sink).unwrap();
                    prop_assert_eq!(pass.batches, sink.seen);
                }
                Op::Drain => {
                    a.drain_all();
                }
            }
            a.check_invariants().map_err(|v| TestCaseError::fail(v.to_string()))?;
            let info = a.reporting_info().unwrap();
            prop_assert!(info.zones.iter().all(|z| z.in_flight == 0));
            prop_assert!(info.zones.iter().all(|z| z.reported <= z.free_reportable));
            let mine: u64 = held.iter().map(|(_, o)| o.nr_pages().0).sum();
            prop_assert_eq!(a.nr_allocated_pages(), mine);
        }
        for (p, o) in held {
            a.free(p, o).unwrap();
        }
        a.drain_all();
        a.check_invariants().map_err(|v| TestCaseError::fail(v.to_string()))?;
        prop_assert_eq!(a.nr_free_pages(), SMALL);
    }
}
