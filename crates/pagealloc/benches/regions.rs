//! What memory regions (seed 000) cost: the same calls with regions off
//! and on (64 MiB regions) in one run, on the per-CPU benchmarks' machine
//! (benches/pcp.rs: 1 GiB, one Normal zone, half the frames held in blocks
//! of random orders 0..=3 before timing).
//!
//! ```sh
//! cargo bench -p pagealloc --bench regions
//! ```
//!
//! Groups: `single` (one order-0 allocation and free through CPU 0's
//! lists), `churn` (free a random held order-0 page, allocate one: the
//! lists refill and drain in batches), `bulk64` (`alloc_bulk` +
//! `free_bulk` of 64 pages), and `nopcp-churn` (the churn with per-CPU
//! lists off: every call takes the buddy path, where the sorted lists do
//! their work). docs/regions.md has the figures.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use pagealloc::{
    AllocFlags, Allocator, Config, CpuId, MemoryMap, Order, PageCount, PcpMode, Pfn, RegionPolicy,
    ZoneBounds,
};

/// Frames managed: 1 GiB of 4 KiB pages, at 4 GiB (aligned to regions).
const FRAMES: u64 = 262_144;
const BASE_PFN: u64 = 0x10_0000;
/// 64 MiB regions: 16 of them.
const REGION_BYTES: u64 = 64 << 20;
const SEED: u64 = 0x2545_f491_4f6c_dd1d;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn machine(regions: bool, pcp: PcpMode) -> Allocator {
    let map = MemoryMap::contiguous(Pfn(BASE_PFN), PageCount(FRAMES)).expect("map");
    let config = Config {
        nr_cpus: 1,
        pcp,
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        regions: regions.then_some(RegionPolicy {
            size_bytes: REGION_BYTES,
            ..RegionPolicy::default()
        }),
        ..Config::default()
    };
    Allocator::new(map, config).expect("allocator")
}

/// Half the frames in blocks of random orders 0..=3.
fn prefill_random(a: &Allocator) -> Vec<(Pfn, Order)> {
    let mut rng = XorShift(SEED);
    let (mut held, mut used) = (Vec::new(), 0);
    while used < FRAMES / 2 {
        let order = Order::new((rng.next() % 4) as u8).expect("order");
        held.push((a.alloc(order, AllocFlags::KERNEL).expect("prefill"), order));
        used += order.nr_pages().0;
    }
    held
}

fn prefill_order0(a: &Allocator) -> Vec<Pfn> {
    (0..FRAMES / 2)
        .map(|_| a.alloc(Order::ZERO, AllocFlags::KERNEL).expect("prefill"))
        .collect()
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.warm_up_time(Duration::from_millis(1000))
        .measurement_time(Duration::from_millis(3000))
        .sample_size(40);
}

fn name(regions: bool) -> &'static str {
    if regions {
        "regions-on"
    } else {
        "regions-off"
    }
}

fn single(c: &mut Criterion) {
    let mut g = c.benchmark_group("single");
    configure(&mut g);
    for regions in [false, true] {
        let a = machine(regions, PcpMode::Enabled);
        let held = prefill_random(&a);
        let cpu = CpuId(0);
        g.bench_function(name(regions), |b| {
            b.iter(|| {
                let p = a
                    .alloc_on_cpu(cpu, Order::ZERO, AllocFlags::KERNEL)
                    .expect("alloc");
                a.free_on_cpu(cpu, black_box(p), Order::ZERO).expect("free");
            })
        });
        drop(held);
    }
    g.finish();
}

fn churn_group(c: &mut Criterion, group: &str, pcp: PcpMode) {
    let mut g = c.benchmark_group(group);
    configure(&mut g);
    for regions in [false, true] {
        let a = machine(regions, pcp);
        let mut held = prefill_order0(&a);
        let mut rng = XorShift(SEED);
        let cpu = CpuId(0);
        g.bench_function(name(regions), |b| {
            b.iter(|| {
                let i = (rng.next() % held.len() as u64) as usize;
                a.free_on_cpu(cpu, black_box(held[i]), Order::ZERO)
                    .expect("free");
                held[i] = a
                    .alloc_on_cpu(cpu, Order::ZERO, AllocFlags::KERNEL)
                    .expect("alloc");
            })
        });
    }
    g.finish();
}

fn churn(c: &mut Criterion) {
    churn_group(c, "churn", PcpMode::Enabled);
    churn_group(c, "nopcp-churn", PcpMode::Disabled);
}

fn bulk(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulk64");
    configure(&mut g);
    for regions in [false, true] {
        let a = machine(regions, PcpMode::Enabled);
        let held = prefill_random(&a);
        let cpu = CpuId(0);
        let mut buf = vec![Pfn(0); 64];
        g.bench_function(name(regions), |b| {
            b.iter(|| {
                let got = a
                    .alloc_bulk(cpu, AllocFlags::KERNEL, black_box(&mut buf))
                    .expect("alloc_bulk");
                assert_eq!(got, 64, "short bulk allocation");
                a.free_bulk(cpu, black_box(&buf)).expect("free_bulk");
            })
        });
        drop(held);
    }
    g.finish();
}

/// Criterion's generated entry point, kept private.
mod entry {
    use super::{bulk, churn, criterion_group, single};
    criterion_group!(benches, single, churn, bulk);
}
criterion_main!(entry::benches);
