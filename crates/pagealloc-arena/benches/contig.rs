//! The cost of a contiguous allocation through migration, against a plain
//! `memcpy` of the bytes it moved, measured in the same run.
//!
//! The arena (`support/fill.rs`): 1 GiB, every page resident, half full of movable
//! blocks of orders 0 to 3 spread over all of it. Benchmarks:
//!
//! * `contig/alloc_contig_pages_64MiB`: `Arena::alloc_contig_pages` of
//!   64 MiB, anywhere: the engine finds no free candidate, takes the lowest
//!   range holding only movable blocks, and the arena's migrator copies
//!   each block out (about 32 MiB) and repoints its handle;
//! * `contig/alloc_contig_pages_aligned_64MiB`: the same with the run
//!   aligned to 64 MiB, as Linux aligns `alloc_contig_pages`' candidates to
//!   the run's size: the engine's search then looks at 16 candidates
//!   instead of one per frame (see docs/benchmarks.md);
//! * `contig/alloc_contig_range_64MiB`: `Arena::alloc_contig_range` of the
//!   arena's first 64 MiB, the range the calls above end up taking: the
//!   same isolation and moves without the search;
//! * `contig/cma_alloc_64MiB`: the same arena with a 256 MiB CMA area
//!   (placed by the engine at the top), half used by movable blocks like
//!   the rest; `Arena::cma_alloc` of 64 MiB from it;
//! * `contig/memcpy_*`: one `copy_from_slice` of as many bytes as the
//!   matching call moved (its median over the run), between two resident
//!   buffers: what moving those bytes costs with no allocator at all.
//!
//! Each timed iteration gets a fresh fill (untimed): the last run and every
//! block are freed and the arena filled again with the same sequence, so
//! every call sees the same kind of arena. Only the call is timed.
//!
//! Every benchmark runs twice: `contig/*` timed by the wall clock,
//! `contig-cpu/*` by the thread's CPU clock, which leaves out time the
//! thread spends preempted (on a shared 2-core host the wall clock also
//! measures the other jobs). After each pair a line on stderr gives the
//! medians of the iterations and the ratio to `memcpy`.
//!
//! Run: `cargo bench -p pagealloc-arena --bench contig` (about 2 minutes
//! on a 2-core host; it needs 1.2 GiB of memory).

#[path = "support/fill.rs"]
mod fill;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode};
use fill::{Filled, CMA_BYTES, RUN_BYTES};
use pagealloc_arena::{
    CmaReservation, CmaSupport, Config, ContigConstraints, NodeId, Order, PageCount, Pfn,
};
use rustix::time::{clock_gettime, ClockId};

/// Pages in the run.
const RUN_PAGES: u64 = (RUN_BYTES / 4096) as u64;

/// What a sample is timed by.
#[derive(Clone, Copy)]
enum Clock {
    /// `Instant`.
    Wall,
    /// The thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`).
    ThreadCpu,
}

impl Clock {
    /// The time now.
    fn now(self) -> Duration {
        match self {
            Clock::Wall => START.with(|s| s.elapsed()),
            Clock::ThreadCpu => {
                let t = clock_gettime(ClockId::ThreadCPUTime);
                Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
            }
        }
    }

    /// The group name for this clock.
    fn group(self) -> &'static str {
        match self {
            Clock::Wall => "contig",
            Clock::ThreadCpu => "contig-cpu",
        }
    }
}

thread_local! {
    /// The wall clock's origin.
    static START: Instant = Instant::now();
}

/// Which contiguous call.
#[derive(Clone, Copy)]
enum Call {
    /// `alloc_contig_pages`, anywhere.
    Pages,
    /// `alloc_contig_pages`, aligned to the run's size.
    PagesAligned,
    /// `alloc_contig_range` of the arena's first 64 MiB.
    Range,
    /// `cma_alloc` from area 0.
    Cma,
}

/// Times `call` on fresh fills of `filled`; returns the per-call samples
/// and the pages each call moved.
fn time_call(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    filled: &mut Filled,
    call: Call,
    clock: Clock,
) -> (Vec<Duration>, Vec<u64>) {
    let mut samples = Vec::new();
    let mut moved = Vec::new();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                filled.refill();
                let arena = &filled.arena;
                let start = clock.now();
                let got = match call {
                    Call::Pages => arena
                        .alloc_contig_pages(PageCount(RUN_PAGES), &ContigConstraints::default()),
                    Call::PagesAligned => {
                        let c = ContigConstraints {
                            align: PageCount(RUN_PAGES),
                            ..ContigConstraints::default()
                        };
                        arena.alloc_contig_pages(PageCount(RUN_PAGES), &c)
                    }
                    Call::Range => {
                        let s = arena.start_pfn();
                        arena.alloc_contig_range(s, Pfn(s.0 + RUN_PAGES))
                    }
                    Call::Cma => arena.cma_alloc(0, PageCount(RUN_PAGES), Order::ZERO),
                };
                let took = clock.now() - start;
                let (run, info) = got.expect("contiguous allocation");
                total += took;
                samples.push(took);
                moved.push(info.migrated_pages);
                filled.run = Some(black_box(run));
            }
            total
        })
    });
    (samples, moved)
}

/// Times a `memcpy` of `bytes` between two resident buffers.
fn time_memcpy(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    bytes: usize,
    clock: Clock,
) -> Vec<Duration> {
    let src = vec![0x5au8; bytes];
    let mut dst = vec![0xa5u8; bytes];
    let mut samples = Vec::new();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = clock.now();
                dst.copy_from_slice(black_box(&src));
                let took = clock.now() - start;
                black_box(&mut dst);
                total += took;
                samples.push(took);
            }
            total
        })
    });
    samples
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

/// A call and its `memcpy`, with the medians and their ratio on stderr.
fn pair(c: &mut Criterion, filled: &mut Filled, call: Call, label: &str, clock: Clock) {
    let mut g = c.benchmark_group(clock.group());
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    let (samples, moved) = time_call(&mut g, label, filled, call, clock);
    let moved_pages = median(moved.clone());
    let bytes = (moved_pages * 4096) as usize;
    let copy = time_memcpy(&mut g, &format!("memcpy_{label}"), bytes, clock);
    g.finish();
    let (t_call, t_copy) = (median(samples), median(copy));
    eprintln!(
        "{}/{label}: median {:.2} ms over {} calls, moving a median {} pages ({:.1} MiB, \
         {}..={} pages); memcpy of those bytes {:.2} ms; ratio {:.2}x",
        clock.group(),
        t_call.as_secs_f64() * 1e3,
        moved.len(),
        moved_pages,
        bytes as f64 / (1 << 20) as f64,
        moved.iter().min().copied().unwrap_or(0),
        moved.iter().max().copied().unwrap_or(0),
        t_copy.as_secs_f64() * 1e3,
        t_call.as_secs_f64() / t_copy.as_secs_f64()
    );
}

fn contig(c: &mut Criterion) {
    let mut filled = Filled::new(Config::default(), 0x5eed);
    for clock in [Clock::Wall, Clock::ThreadCpu] {
        let calls = [
            (Call::Pages, "alloc_contig_pages_64MiB"),
            (Call::PagesAligned, "alloc_contig_pages_aligned_64MiB"),
            (Call::Range, "alloc_contig_range_64MiB"),
        ];
        for (call, name) in calls {
            pair(c, &mut filled, call, name, clock);
        }
    }
    drop(filled);
    let config = Config {
        cma: CmaSupport::Enabled,
        cma_reservations: vec![CmaReservation {
            nr_pages: PageCount((CMA_BYTES / 4096) as u64),
            align: PageCount(512),
            node: NodeId(0),
            order_per_bit: 0,
        }],
        ..Config::default()
    };
    let mut filled = Filled::new(config, 0x5eed);
    for clock in [Clock::Wall, Clock::ThreadCpu] {
        pair(c, &mut filled, Call::Cma, "cma_alloc_64MiB", clock);
    }
}

/// Criterion's generated entry point, kept private.
mod entry {
    use super::{contig, criterion_group};
    criterion_group!(benches, contig);
}
criterion_main!(entry::benches);
