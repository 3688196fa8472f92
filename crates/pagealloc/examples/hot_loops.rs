//! The per-CPU and buddy hot loops alone, for counting instructions with
//! callgrind (which counts the same total on every run, however busy the
//! machine, unlike a timer). `scripts/instructions.sh` runs it twice, with
//! zero and with N iterations, and divides the difference by N.
//!
//! `cargo run --release -p pagealloc --example hot_loops -- MODE N`, where
//! MODE is `single` (order-0 alloc + free through CPU 0's lists, one call
//! each), `nopcp` (the same with per-CPU lists off: the buddy path), `bulk`
//! (`alloc_bulk` + `free_bulk` of 64 pages; N counts pages) or `churn`
//! (free a random held page, allocate one). The machine is the benchmarks'
//! (benches/pcp.rs): 1 GiB of 4 KiB pages in one Normal zone, half held in
//! blocks of random orders 0..=3 (`churn`: order-0 pages). It uses only
//! calls that every version of the crate since the per-CPU front end has,
//! so the same file measures an older commit too; `hot_loops_local` has
//! the `LocalLists` variants.

use std::hint::black_box;

use pagealloc::{
    AllocFlags, Allocator, Config, CpuId, MemoryMap, Order, PageCount, PcpHigh, PcpMode, Pfn,
    ZoneBounds,
};

/// Frames managed: 1 GiB of 4 KiB pages.
const FRAMES: u64 = 262_144;
/// Pages per bulk call.
const BULK: usize = 64;

/// Marsaglia's xorshift64, as the benchmarks use.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The benchmarks' machine, with per-CPU lists on or off.
fn machine(pcp: PcpMode) -> Allocator {
    let map = MemoryMap::contiguous(Pfn(0x4_0000), PageCount(FRAMES)).expect("map");
    let config = Config {
        nr_cpus: 1,
        pcp,
        pcp_high: PcpHigh::AutoTune,
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        ..Config::default()
    };
    Allocator::new(map, config).expect("allocator")
}

/// Holds half the frames in blocks of random orders 0..=3.
fn prefill(a: &Allocator) -> Vec<(Pfn, Order)> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut held, mut used) = (Vec::new(), 0);
    while used < FRAMES / 2 {
        let order = Order::new((rng.next() % 4) as u8).expect("order");
        held.push((a.alloc(order, AllocFlags::KERNEL).expect("prefill"), order));
        used += order.nr_pages().0;
    }
    held
}

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
        "bulk" => {
            let mut buf = [Pfn(0); BULK];
            for _ in 0..n / BULK as u64 {
                let got = a.alloc_bulk(cpu, kernel, &mut buf).expect("alloc_bulk");
                assert_eq!(got, BULK);
                a.free_bulk(cpu, black_box(&buf)).expect("free_bulk");
            }
        }
        "churn" => {
            // Half the frames held as order-0 pages instead.
            for (pfn, order) in held {
                a.free(pfn, order).expect("free");
            }
            let mut pages: Vec<Pfn> = (0..FRAMES / 2)
                .map(|_| a.alloc(o0, kernel).expect("prefill"))
                .collect();
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
            for _ in 0..n {
                let i = (rng.next() % pages.len() as u64) as usize;
                a.free_on_cpu(cpu, black_box(pages[i]), o0).expect("free");
                pages[i] = a.alloc_on_cpu(cpu, o0, kernel).expect("alloc");
            }
        }
        other => {
            eprintln!("unknown mode {other}: single, nopcp, bulk or churn");
            std::process::exit(2);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / n.max(1) as f64;
    println!("{mode}: {n} iterations, {ns:.1} ns each (wall clock, for orientation only)");
}
