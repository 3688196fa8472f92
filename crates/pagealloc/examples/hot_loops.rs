//! The per-CPU and buddy hot loops alone, for counting instructions with
//! callgrind (which counts the same total on every run, however busy the
//! machine, unlike a timer). `scripts/instructions.sh` runs it twice, with
//! zero and with N iterations, and divides the difference by N.
//!
//! `cargo run --release -p pagealloc --example hot_loops -- MODE N`, where
//! MODE is `single` (order-0 alloc + free through CPU 0's lists, one call
//! each), `nopcp` (the same with per-CPU lists off: the buddy path), `bulk`
//! (`alloc_bulk` + `free_bulk` of 64 pages; N counts pages), `churn`
//! (free a random held page, allocate one) or `order9` (an order-9
//! alloc + free through CPU 0's lists, the pageblock-order list). The machine is the benchmarks'
//! (benches/pcp.rs): 1 GiB of 4 KiB pages in one Normal zone, half held in
//! blocks of random orders 0..=3 (`churn`: order-0 pages). It uses only
//! calls that every version of the crate since the per-CPU front end has,
//! so the same file (with `common/`) measures an older commit too; `hot_loops_local` has
//! the `LocalLists` variants.

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
    let pcp = if mode == "nopcp" {
        PcpMode::Disabled
    } else {
        PcpMode::Enabled
    };
    let a = machine(pcp);
    let held = prefill(&a);
    let (cpu, o0, kernel) = (CpuId(0), Order::ZERO, AllocFlags::KERNEL);
    let start = std::time::Instant::now();
    match mode.as_str() {
        "single" | "nopcp" => {
            for _ in 0..n {
                let p = a.alloc_on_cpu(cpu, o0, kernel).expect("alloc");
                a.free_on_cpu(cpu, black_box(p), o0).expect("free");
            }
        }
        "order9" => {
            let o9 = Order::new(9).expect("order 9");
            for _ in 0..n {
                let p = a.alloc_on_cpu(cpu, o9, kernel).expect("alloc");
                a.free_on_cpu(cpu, black_box(p), o9).expect("free");
            }
        }
        "bulk" => {
            let mut buf = [Pfn(0); BULK];
            for _ in 0..n / BULK as u64 {
                let got = a.alloc_bulk(cpu, kernel, &mut buf).expect("alloc_bulk");
                assert_eq!(got, BULK);
                a.free_bulk(cpu, black_box(&buf)).expect("free_bulk");
            }
        }
        "churn" => {
            let mut pages = order0_pages(&a, held);
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
            for _ in 0..n {
                let i = (rng.next() % pages.len() as u64) as usize;
                a.free_on_cpu(cpu, black_box(pages[i]), o0).expect("free");
                pages[i] = a.alloc_on_cpu(cpu, o0, kernel).expect("alloc");
            }
        }
        other => {
            eprintln!("unknown mode {other}: single, nopcp, order9, bulk or churn");
            std::process::exit(2);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / n.max(1) as f64;
    println!("{mode}: {n} iterations, {ns:.1} ns each (wall clock, for orientation only)");
}
