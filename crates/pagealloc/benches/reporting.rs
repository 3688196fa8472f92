//! The cost of free page reporting (seed 002) on the hot paths: the same
//! loops with reporting off and on, side by side in one criterion binary.
//!
//! The machine is `benches/pcp.rs`'s: 1 GiB of 4 KiB pages in one Normal
//! zone, one CPU slot, per-CPU lists on with auto-tuned high marks; "on"
//! adds `reporting: Some(ReportingPolicy::default())` (reporting order 9,
//! batches of 32, a sixteenth of each list per pass) and nothing else. Both
//! are filled by the same fixed-seed sequence of requests; "on" then runs
//! passes (with a sink that accepts every batch) until every free block at
//! or above the reporting order is reported, as on a guest that has been
//! idle a while. Groups:
//!
//! * `reporting/single/*`: one order-0 `alloc_on_cpu` + `free_on_cpu` on
//!   `CpuId(0)`, the allocator 50% full of random-order (0..=3) blocks
//!   (`single` in pcp.rs).
//! * `reporting/churn/*`: 50% full of order-0 pages; free a random held
//!   page, allocate one (`churn` in pcp.rs).
//!
//! With reporting on, a reporting pass runs after every [`PASS_EVERY`]
//! operations inside the timed loop, as a caller driving passes would (it
//! runs the pass whether or not `reporting_state()` asks for one: the
//! pessimistic caller). Its cost is spread over the operations measured.
//! The "off" loop keeps the same operation counter and test, without the
//! pass. Each group runs off, on, on, off (`off`, `on`, `on-2`, `off-2`) so
//! a drift of the host during the group shows as a gap between the two
//! runs of one setting instead of passing for the cost of reporting. After
//! each benchmark a line on stderr says how many passes ran and what they
//! reported.
//!
//! Every group runs twice: `reporting/*` times the loop by the wall clock,
//! `reporting-cpu/*` by the benchmark thread's CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`), which leaves out the time the thread spends
//! preempted: on a shared 2-core host with other builds running, the wall
//! clock mostly measures the scheduler.
//!
//! Run: `cargo bench -p pagealloc --bench reporting` (about two minutes).

// The thread CPU clock is read through libc's `clock_gettime`.
#![allow(unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use pagealloc::{
    AllocFlags, Allocator, Config, CpuId, MemoryMap, Order, PageCount, PcpHigh, PcpMode, Pfn,
    ReportPass, ReportSink, ReportedBlock, ReportingPolicy, ReportingState, ZoneBounds,
};

/// Frames managed: 1 GiB of 4 KiB frames (as benches/pcp.rs).
const FRAMES: u64 = 262_144;
/// The first frame number (1 GiB, so every order up to 10 is aligned).
const BASE_PFN: u64 = 0x4_0000;
/// Seed of every random sequence (as benches/pcp.rs).
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// Operations (alloc+free pairs) between two reporting passes.
const PASS_EVERY: u64 = 4096;

/// What a benchmark's samples are timed by.
#[derive(Clone, Copy)]
enum Clock {
    /// `Instant`.
    Wall,
    /// The thread's CPU time.
    ThreadCpu,
}

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// Linux `CLOCK_THREAD_CPUTIME_ID`.
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

/// The calling thread's CPU time so far.
fn thread_cpu_time() -> Duration {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `struct timespec` (two 64-bit
    // fields on 64-bit Linux) for the call; the clock id is Linux's.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Clock {
    /// Times `iters` runs of `op` by this clock.
    #[inline(always)]
    fn time(self, iters: u64, mut op: impl FnMut()) -> Duration {
        match self {
            Clock::Wall => {
                let start = Instant::now();
                for _ in 0..iters {
                    op();
                }
                start.elapsed()
            }
            Clock::ThreadCpu => {
                let start = thread_cpu_time();
                for _ in 0..iters {
                    op();
                }
                thread_cpu_time() - start
            }
        }
    }
}

/// Marsaglia's xorshift64: deterministic and cheap.
struct XorShift(u64);

impl XorShift {
    #[inline(always)]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A sink that accepts every batch and does nothing with it (the host's
/// side of reporting is not what is measured).
struct NullSink;

impl ReportSink for NullSink {
    type Error = ();
    fn report(&mut self, batch: &[ReportedBlock]) -> Result<(), ()> {
        black_box(batch);
        Ok(())
    }
}

/// Reporting off or on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reporting {
    Off,
    On,
}

/// The machine, with reporting as `r` says; nothing else differs.
fn machine(r: Reporting) -> Allocator {
    let map = MemoryMap::contiguous(Pfn(BASE_PFN), PageCount(FRAMES)).expect("memory map");
    let config = Config {
        nr_cpus: 1,
        pcp: PcpMode::Enabled,
        pcp_high: PcpHigh::AutoTune,
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        reporting: match r {
            Reporting::Off => None,
            Reporting::On => Some(ReportingPolicy::default()),
        },
        ..Config::default()
    };
    Allocator::new(map, config).expect("allocator")
}

/// Fills half the frames with blocks of random orders 0..=3 through CPU 0
/// (benches/pcp.rs `prefill_random`).
fn prefill_random(a: &Allocator) -> Vec<(Pfn, Order)> {
    let mut rng = XorShift(SEED);
    let (mut held, mut used) = (Vec::new(), 0);
    while used < FRAMES / 2 {
        let order = Order::new((rng.next() % 4) as u8).expect("order");
        let p = a
            .alloc_on_cpu(CpuId(0), order, AllocFlags::KERNEL)
            .expect("prefill");
        held.push((p, order));
        used += order.nr_pages().0;
    }
    held
}

/// Fills half the frames with order-0 pages through CPU 0 (benches/pcp.rs
/// `prefill_order0`).
fn prefill_order0(a: &Allocator) -> Vec<Pfn> {
    (0..FRAMES / 2)
        .map(|_| {
            a.alloc_on_cpu(CpuId(0), Order::ZERO, AllocFlags::KERNEL)
                .expect("prefill")
        })
        .collect()
}

/// With reporting on, runs passes until every reportable free page is
/// reported (an idle machine's state); checks the state either way.
fn settle(a: &Allocator, r: Reporting) {
    match r {
        Reporting::Off => assert_eq!(a.reporting_state(), ReportingState::Off),
        Reporting::On => {
            let mut passes = 0;
            loop {
                let info = a.reporting_info().expect("reporting is on");
                if info.reported_fraction() >= 0.999 {
                    break;
                }
                a.report_pass(&mut NullSink).expect("pass");
                passes += 1;
                assert!(passes < 100, "never fully reported: {info}");
            }
            let info = a.reporting_info().expect("reporting is on");
            let reported: u64 = info.zones.iter().map(|z| z.reported).sum();
            assert!(reported > FRAMES / 4, "too little reported: {info}");
            eprintln!(
                "setup: {passes} passes, {reported} pages reported ({:.3} of reportable)",
                info.reported_fraction()
            );
        }
    }
}

/// Counts operations and runs a reporting pass after every [`PASS_EVERY`]
/// of them when reporting is on.
struct Driver<'a> {
    a: &'a Allocator,
    on: bool,
    ops: u64,
    passes: u64,
    total: ReportPass,
}

impl<'a> Driver<'a> {
    fn new(a: &'a Allocator, r: Reporting) -> Driver<'a> {
        Driver {
            a,
            on: r == Reporting::On,
            ops: 0,
            passes: 0,
            total: ReportPass::default(),
        }
    }

    #[inline(always)]
    fn tick(&mut self) {
        self.ops += 1;
        if self.ops.is_multiple_of(PASS_EVERY) && self.on {
            let p = self.a.report_pass(&mut NullSink).expect("pass");
            self.passes += 1;
            self.total.batches += p.batches;
            self.total.pages_reported += p.pages_reported;
            self.total.zones_skipped += p.zones_skipped;
        }
    }

    fn summary(&self, name: &str) {
        let s = self.a.stats();
        eprintln!(
            "{name}: {} ops, {} passes in the loop: {} batches, {} pages reported, \
             {} zone skips; reported pages reallocated (whole run) {}",
            self.ops,
            self.passes,
            self.total.batches,
            self.total.pages_reported,
            self.total.zones_skipped,
            s.reported_reallocated
        );
    }
}

/// Applies the run lengths of every benchmark here.
fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.warm_up_time(Duration::from_millis(1000))
        .measurement_time(Duration::from_millis(3000))
        .sample_size(50);
}

/// The order benchmarks run in within a group: off, on, on, off.
const RUNS: [(&str, Reporting); 4] = [
    ("off", Reporting::Off),
    ("on", Reporting::On),
    ("on-2", Reporting::On),
    ("off-2", Reporting::Off),
];

/// The groups' name prefixes and clocks.
const CLOCKS: [(&str, Clock); 2] = [
    ("reporting", Clock::Wall),
    ("reporting-cpu", Clock::ThreadCpu),
];

fn single_one(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, r: Reporting, clock: Clock) {
    let a = machine(r);
    let held = prefill_random(&a);
    settle(&a, r);
    let (cpu, o0, kernel) = (CpuId(0), Order::ZERO, AllocFlags::KERNEL);
    let mut d = Driver::new(&a, r);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            clock.time(iters, || {
                let p = a.alloc_on_cpu(cpu, o0, kernel).expect("alloc");
                a.free_on_cpu(cpu, black_box(p), o0).expect("free");
                d.tick();
            })
        })
    });
    d.summary(&format!("single/{name}"));
    drop(held);
}

fn single(c: &mut Criterion) {
    for (group, clock) in CLOCKS {
        let mut g = c.benchmark_group(format!("{group}/single"));
        configure(&mut g);
        for (name, r) in RUNS {
            single_one(&mut g, name, r, clock);
        }
        g.finish();
    }
}

fn churn_one(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, r: Reporting, clock: Clock) {
    let a = machine(r);
    let mut held = prefill_order0(&a);
    settle(&a, r);
    let (cpu, o0, kernel) = (CpuId(0), Order::ZERO, AllocFlags::KERNEL);
    let mut rng = XorShift(SEED);
    let mut d = Driver::new(&a, r);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            clock.time(iters, || {
                let i = (rng.next() % held.len() as u64) as usize;
                a.free_on_cpu(cpu, black_box(held[i]), o0).expect("free");
                held[i] = a.alloc_on_cpu(cpu, o0, kernel).expect("alloc");
                d.tick();
            })
        })
    });
    d.summary(&format!("churn/{name}"));
}

fn churn(c: &mut Criterion) {
    for (group, clock) in CLOCKS {
        let mut g = c.benchmark_group(format!("{group}/churn"));
        configure(&mut g);
        for (name, r) in RUNS {
            churn_one(&mut g, name, r, clock);
        }
        g.finish();
    }
}

/// Criterion's generated entry point, kept private.
mod entry {
    use super::{churn, criterion_group, single};
    criterion_group!(benches, single, churn);
}
criterion_main!(entry::benches);
