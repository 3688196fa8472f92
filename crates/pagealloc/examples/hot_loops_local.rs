//! The `LocalLists` hot loops alone (see `hot_loops.rs`), for counting
//! instructions with callgrind (which counts the same total on every run, however busy the
//! machine, unlike a timer). `scripts/instructions.sh` runs it twice, with
//! zero and with N iterations, and divides the difference by N.
//!
//! `cargo run --release -p pagealloc --example hot_loops_local -- MODE N`,
//! where MODE is `single`, `bulk` or `churn` as in `hot_loops`, each made
//! through CPU 0's lists held as one [`pagealloc::LocalLists`] for the
//! whole loop (no lock per call).

use std::hint::black_box;

use pagealloc::{AllocFlags, CpuId, Order, PcpMode, Pfn};

#[path = "common/mod.rs"]
mod common;

use common::{machine, order0_pages, prefill, XorShift, BULK};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "single".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let a = machine(PcpMode::Enabled);
    let held = prefill(&a);
    let (cpu, o0, kernel) = (CpuId(0), Order::ZERO, AllocFlags::KERNEL);
    let mut pages: Vec<Pfn> = match mode.as_str() {
        "churn" => order0_pages(&a, held),
        _ => Vec::new(),
    };
    let mut local = a.local(cpu).expect("CPU 0's lists are free");
    let start = std::time::Instant::now();
    match mode.as_str() {
        "single" => {
            for _ in 0..n {
                let p = local.alloc(o0, kernel).expect("alloc");
                local.free(black_box(p), o0).expect("free");
            }
        }
        "bulk" => {
            let mut buf = [Pfn(0); BULK];
            for _ in 0..n / BULK as u64 {
                let got = local.alloc_bulk(kernel, &mut buf).expect("alloc_bulk");
                assert_eq!(got, BULK);
                local.free_bulk(black_box(&buf)).expect("free_bulk");
            }
        }
        "churn" => {
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
            for _ in 0..n {
                let i = (rng.next() % pages.len() as u64) as usize;
                local.free(black_box(pages[i]), o0).expect("free");
                pages[i] = local.alloc(o0, kernel).expect("alloc");
            }
        }
        other => {
            eprintln!("unknown mode {other}: single, bulk or churn");
            std::process::exit(2);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / n.max(1) as f64;
    println!("{mode}: {n} iterations, {ns:.1} ns each (wall clock, for orientation only)");
}
