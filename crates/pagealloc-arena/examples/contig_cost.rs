//! The contiguous allocations of `benches/contig.rs`, for counting their
//! instructions with callgrind, which counts the same on every run however
//! busy the host is.
//!
//! ```text
//! contig_cost MODE [N]     MODE: pages | pages-aligned | range | cma | memcpy:BYTES
//! ```
//!
//! `pages`, `pages-aligned`, `range` and `cma` build the benchmark's arena (1 GiB, half
//! full of movable blocks of orders 0 to 3; with a 256 MiB CMA area for
//! `cma`) and make `N` (default 3) calls of 64 MiB, each on a fresh fill,
//! printing what each moved (`pages-aligned` asks for 64 MiB alignment,
//! as Linux's candidates have; `range` takes the arena's first 64 MiB,
//! where `pages` ends up: the same moves without the engine's search); `memcpy:BYTES` copies `BYTES` between two resident
//! buffers `N` times. The measured work is in one function,
//! `measured_call`, so callgrind can count it alone:
//!
//! ```sh
//! cargo build --release -p pagealloc-arena --example contig_cost
//! valgrind --tool=callgrind --toggle-collect='*measured_call*' \
//!     --callgrind-out-file=/tmp/cg.pages target/release/examples/contig_cost pages 3
//! ```
//!
//! The `Collected` total divided by `N` is the instructions per call;
//! `callgrind_annotate --inclusive=yes /tmp/cg.pages` splits it by function
//! (the copy is `memcpy`, the rest the engine and the handle table).

#[path = "../benches/support/fill.rs"]
mod fill;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use fill::{Filled, CMA_BYTES, RUN_BYTES};
use pagealloc_arena::{
    CmaReservation, CmaSupport, Config, ContigAlloc, ContigConstraints, ContigError, ContigRun,
    NodeId, Order, PageCount, Pfn,
};

/// Pages in the run.
const RUN_PAGES: u64 = (RUN_BYTES / 4096) as u64;

/// What is measured.
#[derive(Clone, Copy)]
enum Mode {
    /// `Arena::alloc_contig_pages` of 64 MiB.
    Pages,
    /// `Arena::alloc_contig_pages` of 64 MiB aligned to 64 MiB (Linux's
    /// `alloc_contig_pages` aligns its candidates to the run's size).
    PagesAligned,
    /// `Arena::alloc_contig_range` of the arena's first 64 MiB, the range
    /// `Pages` ends up taking: the same migration without the search.
    Range,
    /// `Arena::cma_alloc` of 64 MiB from a 256 MiB area.
    Cma,
    /// A `memcpy` of this many bytes.
    Memcpy(usize),
}

/// The measured work: one call, and nothing else.
#[inline(never)]
fn measured_call(mode: Mode, filled: &Filled) -> Result<(ContigRun, ContigAlloc), ContigError> {
    let arena = &filled.arena;
    match mode {
        Mode::Pages => {
            arena.alloc_contig_pages(PageCount(RUN_PAGES), &ContigConstraints::default())
        }
        Mode::PagesAligned => {
            let c = ContigConstraints {
                align: PageCount(RUN_PAGES),
                ..ContigConstraints::default()
            };
            arena.alloc_contig_pages(PageCount(RUN_PAGES), &c)
        }
        Mode::Range => {
            let start = arena.start_pfn();
            arena.alloc_contig_range(start, Pfn(start.0 + RUN_PAGES))
        }
        Mode::Cma | Mode::Memcpy(_) => arena.cma_alloc(0, PageCount(RUN_PAGES), Order::ZERO),
    }
}

/// The measured copy.
#[inline(never)]
fn measured_call_memcpy(dst: &mut [u8], src: &[u8]) {
    dst.copy_from_slice(src);
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("pages") => Mode::Pages,
        Some("pages-aligned") => Mode::PagesAligned,
        Some("range") => Mode::Range,
        Some("cma") => Mode::Cma,
        Some(m) if m.starts_with("memcpy:") => match m["memcpy:".len()..].parse() {
            Ok(bytes) => Mode::Memcpy(bytes),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    let n: u32 = match args.next().map(|a| a.parse()) {
        None => 3,
        Some(Ok(n)) => n,
        Some(Err(_)) => return usage(),
    };
    if let Mode::Memcpy(bytes) = mode {
        let src = vec![0x5au8; bytes];
        let mut dst = vec![0xa5u8; bytes];
        for i in 0..n {
            let start = Instant::now();
            measured_call_memcpy(black_box(&mut dst), black_box(&src));
            let took = start.elapsed();
            println!(
                "memcpy {i} of {bytes} bytes: {:.2} ms",
                took.as_secs_f64() * 1e3
            );
        }
        return ExitCode::SUCCESS;
    }
    let config = match mode {
        Mode::Cma => Config {
            cma: CmaSupport::Enabled,
            cma_reservations: vec![CmaReservation {
                nr_pages: PageCount((CMA_BYTES / 4096) as u64),
                align: PageCount(512),
                node: NodeId(0),
                order_per_bit: 0,
            }],
            ..Config::default()
        },
        Mode::Pages | Mode::PagesAligned | Mode::Range | Mode::Memcpy(_) => Config::default(),
    };
    let mut filled = Filled::new(config, 0x5eed);
    for i in 0..n {
        // Every call on a refill, as in the benchmark (a fresh arena's
        // first fill places blocks a little differently).
        filled.refill();
        let start = Instant::now();
        let got = measured_call(mode, &filled);
        let took = start.elapsed();
        match got {
            Ok((run, info)) => {
                println!(
                    "call {i}: {:.2} ms, run at {} ({} pages), moved {} blocks, {} pages ({} bytes), {} tries, {} candidates failed",
                    took.as_secs_f64() * 1e3,
                    run.start(),
                    run.nr_pages().0,
                    info.migrated_blocks,
                    info.migrated_pages,
                    info.migrated_pages * 4096,
                    info.tries,
                    info.failed_candidates
                );
                filled.run = Some(run);
            }
            Err(e) => {
                eprintln!("call {i} failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("usage: contig_cost pages|pages-aligned|range|cma|memcpy:BYTES [N]");
    ExitCode::from(2)
}
