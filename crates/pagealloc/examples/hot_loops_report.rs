//! The `single` and `churn` hot loops of `hot_loops.rs` with free page
//! reporting off and on (benches/reporting.rs), for counting instructions
//! with callgrind. `scripts/instructions.sh hot_loops_report MODE` runs it
//! with zero and with N iterations and divides the difference by N, so the
//! setup (prefill, the passes that report the idle machine) does not count.
//!
//! `cargo run --release -p pagealloc --example hot_loops_report -- MODE N`,
//! where MODE is `single` or `churn` (reporting off) or `single-report` or
//! `churn-report` (the same machine with `ReportingPolicy::default()`, its
//! free memory reported before the loop, and a reporting pass after every
//! 4096 operations inside the loop, so the passes count). The off loops
//! keep the same operation counter and test, without the pass.
//!
//! It is a separate example because `hot_loops.rs` uses only calls that
//! every version of the crate since the per-CPU front end has.

use std::hint::black_box;

use pagealloc::{
    AllocFlags, Allocator, Config, CpuId, MemoryMap, Order, PageCount, PcpHigh, PcpMode, Pfn,
    ReportSink, ReportedBlock, ReportingPolicy, ZoneBounds,
};

// Only the machine's size, prefill and random numbers are used here.
#[allow(dead_code)]
#[path = "common/mod.rs"]
mod common;

use common::{order0_pages, prefill, XorShift, FRAMES};

/// Operations between two reporting passes (as benches/reporting.rs).
const PASS_EVERY: u64 = 4096;

/// Accepts every batch.
struct NullSink;

impl ReportSink for NullSink {
    type Error = ();
    fn report(&mut self, batch: &[ReportedBlock]) -> Result<(), ()> {
        black_box(batch);
        Ok(())
    }
}

/// `common::machine(PcpMode::Enabled)` with reporting as `on` says.
fn machine(on: bool) -> Allocator {
    let map = MemoryMap::contiguous(Pfn(0x4_0000), PageCount(FRAMES)).expect("map");
    let config = Config {
        nr_cpus: 1,
        pcp: PcpMode::Enabled,
        pcp_high: PcpHigh::AutoTune,
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        reporting: on.then(ReportingPolicy::default),
        ..Config::default()
    };
    Allocator::new(map, config).expect("allocator")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "single-report".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (base, on) = match mode.as_str() {
        "single" => ("single", false),
        "churn" => ("churn", false),
        "single-report" => ("single", true),
        "churn-report" => ("churn", true),
        other => {
            eprintln!("unknown mode {other}: single, churn, single-report or churn-report");
            std::process::exit(2);
        }
    };
    let a = machine(on);
    let held = prefill(&a);
    let mut pages = if base == "churn" {
        order0_pages(&a, held)
    } else {
        drop(held);
        Vec::new()
    };
    let mut setup_passes = 0;
    if on {
        while a.reporting_info().expect("on").reported_fraction() < 0.999 {
            a.report_pass(&mut NullSink).expect("pass");
            setup_passes += 1;
            assert!(setup_passes < 100, "never fully reported");
        }
    }
    let (cpu, o0, kernel) = (CpuId(0), Order::ZERO, AllocFlags::KERNEL);
    let (mut passes, mut reported) = (0u64, 0u64);
    let mut tick = |i: u64| {
        if (i + 1).is_multiple_of(PASS_EVERY) && on {
            reported += a.report_pass(&mut NullSink).expect("pass").pages_reported;
            passes += 1;
        }
    };
    let start = std::time::Instant::now();
    if base == "single" {
        for i in 0..n {
            let p = a.alloc_on_cpu(cpu, o0, kernel).expect("alloc");
            a.free_on_cpu(cpu, black_box(p), o0).expect("free");
            tick(i);
        }
    } else {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for i in 0..n {
            let j = (rng.next() % pages.len() as u64) as usize;
            a.free_on_cpu(cpu, black_box(pages[j]), o0).expect("free");
            pages[j] = a.alloc_on_cpu(cpu, o0, kernel).expect("alloc");
            tick(i);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / n.max(1) as f64;
    println!(
        "{mode}: {n} iterations, {ns:.1} ns each (wall clock, for orientation only); \
         {setup_passes} setup passes, {passes} passes in the loop reported {reported} pages"
    );
}
