//! Criterion benchmarks of the buddy engine, all in one binary so they run
//! side by side under the same conditions:
//!
//! * `buddy/order0_alloc_free`: one order-0 `GFP_KERNEL` allocation
//!   immediately freed again, on a fragmented 1 GiB machine (`steady_50pct`)
//!   and on a fresh one (`fresh_empty`), where every allocation splits an
//!   order-10 block down to order 0 and every free merges it back up.
//! * `buddy/order9_alloc_free`: the same for order 9, `GFP_HIGHUSER_MOVABLE`.
//! * `buddy/churn`: a 1 GiB zone half full of scattered order-0 pages; each
//!   iteration frees a random held page and allocates a new one (two
//!   operations per iteration; the throughput line gives operations/s).
//! * `init/64GiB`: `Allocator::new` for an x86-64 64 GiB memory map. The map
//!   is cloned in untimed setup and the allocator is dropped after the timer
//!   stops, so neither is measured.
//!
//! Every machine is checked with `check_invariants` after its benchmark, so a
//! benchmark that left the allocator broken fails loudly.
//!
//! Run with `cargo bench -p pagealloc --bench buddy`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use pagealloc::{
    AllocFlags, Allocator, Config, MemRange, MemoryMap, MigrateType, NodeId, Order, PageCount,
    PcpMode, Pfn,
};

/// 1 GiB of 4 KiB pages.
const PAGES_1G: u64 = 1 << 18;
/// Frame of 4 GiB: a 1 GiB map starting here is one Normal zone on one node.
const PFN_4G: u64 = 0x10_0000;

/// Marsaglia's xorshift64: fixed seed, no `rand` dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A fresh single-node machine with 1 GiB of RAM above 4 GiB: one Normal
/// zone, default (Linux x86-64) configuration, every page free.
fn machine_1g() -> Allocator {
    let map = MemoryMap::contiguous(Pfn(PFN_4G), PageCount(PAGES_1G)).expect("map");
    // The buddy path: per-CPU lists off (benches/pcp.rs measures them).
    let config = Config {
        pcp: PcpMode::Disabled,
        ..Config::default()
    };
    Allocator::new(map, config).expect("allocator")
}

/// A realistic mix of request types: mostly movable (user pages, page
/// cache), some unmovable kernel memory, a little reclaimable slab.
fn random_flags(rng: &mut XorShift) -> AllocFlags {
    match rng.below(20) {
        0..=4 => AllocFlags::KERNEL,
        5..=6 => AllocFlags::KERNEL_RECLAIMABLE,
        _ => AllocFlags::HIGHUSER_MOVABLE,
    }
}

/// The 1 GiB machine in a fragmented steady state: filled to ~90% with
/// blocks of random order 0..=3 and mixed migratetypes (so fallbacks claim
/// and steal pageblocks), then random blocks freed until 50% of the pages
/// are allocated. The free lists of every order 0..=3 and every ordinary
/// migratetype are then long and scattered. Returns the held blocks.
fn steady_state_1g(seed: u64) -> (Allocator, Vec<(Pfn, Order)>) {
    let a = machine_1g();
    let mut rng = XorShift(seed);
    let mut held = Vec::new();
    while a.nr_allocated_pages() < PAGES_1G * 9 / 10 {
        let order = Order::new(rng.below(4) as u8).expect("order");
        let flags = random_flags(&mut rng);
        match a.alloc(order, flags) {
            Ok(pfn) => held.push((pfn, order)),
            Err(_) => break,
        }
    }
    while a.nr_allocated_pages() > PAGES_1G / 2 {
        let (pfn, order) = held.swap_remove(rng.below(held.len() as u64) as usize);
        a.free(pfn, order).expect("free");
    }
    a.check_invariants().expect("invariants after setup");
    (a, held)
}

/// One line on stderr describing a machine's free lists for `mt`, so the
/// report shows which path the benchmark exercises.
fn describe(name: &str, a: &Allocator, mt: MigrateType) {
    let zone = &a.zones()[0];
    let per_order: Vec<u64> = (0..11)
        .map(|o| zone.nr_free_blocks(Order::new(o).expect("order"), mt))
        .collect();
    eprintln!(
        "[setup {name}] allocated {} / {} pages; free {mt} blocks per order 0..=10: {per_order:?}",
        a.nr_allocated_pages(),
        PAGES_1G
    );
}

/// Benchmarks one allocation of `order`/`flags` immediately freed, on a
/// steady-state and on a fresh machine.
fn alloc_free(c: &mut Criterion, group: &str, order: Order, flags: AllocFlags) {
    let mut g = c.benchmark_group(group);
    let mt = flags.migratetype();

    let (steady, _held) = steady_state_1g(0x2545_f491_4f6c_dd1d);
    describe(&format!("{group}/steady_50pct"), &steady, mt);
    g.bench_function("steady_50pct", |b| {
        b.iter(|| {
            let pfn = steady
                .alloc(black_box(order), black_box(flags))
                .expect("alloc");
            steady.free(black_box(pfn), order).expect("free");
        })
    });
    steady.check_invariants().expect("invariants after bench");

    let fresh = machine_1g();
    // One round outside the timer: the first unmovable allocation claims a
    // movable pageblock; from then on every round splits an order-10 block
    // and merges it back (warm-up would do this too; this makes it explicit).
    let pfn = fresh.alloc(order, flags).expect("alloc");
    fresh.free(pfn, order).expect("free");
    describe(&format!("{group}/fresh_empty"), &fresh, mt);
    g.bench_function("fresh_empty", |b| {
        b.iter(|| {
            let pfn = fresh
                .alloc(black_box(order), black_box(flags))
                .expect("alloc");
            fresh.free(black_box(pfn), order).expect("free");
        })
    });
    fresh.check_invariants().expect("invariants after bench");
    g.finish();
}

fn order0_alloc_free(c: &mut Criterion) {
    alloc_free(
        c,
        "buddy/order0_alloc_free",
        Order::ZERO,
        AllocFlags::KERNEL,
    );
}

fn order9_alloc_free(c: &mut Criterion) {
    let order9 = Order::new(9).expect("order 9");
    alloc_free(
        c,
        "buddy/order9_alloc_free",
        order9,
        AllocFlags::HIGHUSER_MOVABLE,
    );
}

/// Number of pre-generated victim indices (a power of two).
const CHURN_INDICES: usize = 1 << 20;

fn churn(c: &mut Criterion) {
    const FLAGS: AllocFlags = AllocFlags::HIGHUSER_MOVABLE;
    let mut g = c.benchmark_group("buddy/churn");
    // Each iteration is one free plus one allocation.
    g.throughput(Throughput::Elements(2));

    // Fill to ~90% with order-0 pages, then free random ones down to 50%:
    // the held pages are scattered and so are the free ones.
    let a = machine_1g();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut held: Vec<Pfn> = Vec::new();
    while a.nr_allocated_pages() < PAGES_1G * 9 / 10 {
        match a.alloc(Order::ZERO, FLAGS) {
            Ok(pfn) => held.push(pfn),
            Err(_) => break,
        }
    }
    while a.nr_allocated_pages() > PAGES_1G / 2 {
        let pfn = held.swap_remove(rng.below(held.len() as u64) as usize);
        a.free(pfn, Order::ZERO).expect("free");
    }
    a.check_invariants().expect("invariants after setup");
    describe("buddy/churn", &a, FLAGS.migratetype());

    // Victims are drawn outside the timed loop; the loop only reads them in
    // sequence.
    let victims: Vec<u32> = (0..CHURN_INDICES)
        .map(|_| rng.below(held.len() as u64) as u32)
        .collect();
    let mut pos = 0usize;
    g.bench_function("free_random_alloc_order0", |b| {
        b.iter(|| {
            let slot = &mut held[victims[pos] as usize];
            pos = (pos + 1) & (CHURN_INDICES - 1);
            a.free(black_box(*slot), Order::ZERO).expect("free");
            *slot = a.alloc(black_box(Order::ZERO), FLAGS).expect("alloc");
        })
    });
    a.check_invariants().expect("invariants after bench");
    g.finish();
}

/// An x86-64 machine with 64 GiB of RAM, as its e820 map shows it: low
/// memory below 640 KiB, RAM up to 3 GiB (the PCI hole above), and the
/// remaining 61 GiB remapped above 4 GiB, so memory ends at 65 GiB. Zones:
/// DMA, DMA32 (3 GiB present) and Normal (61 GiB, 0xf40000 pages).
fn map_64g() -> MemoryMap {
    let range = |start, end| MemRange {
        node: NodeId(0),
        start: Pfn(start),
        end: Pfn(end),
    };
    MemoryMap::new([
        range(0x1, 0x9f),
        range(0x100, 0xc_0000),
        range(0x10_0000, 0x104_0000),
    ])
    .expect("64 GiB map")
}

fn init(c: &mut Criterion) {
    let mut g = c.benchmark_group("init");
    // Tens of milliseconds per run: flat sampling with few samples keeps the
    // group to a few seconds.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(20);
    let map = map_64g();
    // 64 GiB less the 0x62 frames of the holes below 1 MiB.
    assert_eq!(map.nr_present(), (64 << 18) - 0x62);
    {
        let a = Allocator::new(map.clone(), Config::default()).expect("allocator");
        a.check_invariants().expect("invariants after init");
        assert_eq!(a.nr_free_pages(), map.nr_present());
    }
    g.bench_function("64GiB", |b| {
        // Setup (cloning the map) and the drop of the allocator are outside
        // the timer: `iter_batched` drops the outputs after stopping it.
        b.iter_batched(
            || map.clone(),
            |m| Allocator::new(m, Config::default()).expect("allocator"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

/// The benchmark group, in a private module so the function the macro
/// generates is not part of the crate's (undocumented) public surface.
mod group {
    use super::{churn, config, init, order0_alloc_free, order9_alloc_free};
    use criterion::criterion_group;

    criterion_group! {
        name = benches;
        config = config();
        targets = order0_alloc_free, order9_alloc_free, churn, init
    }
}

criterion_main!(group::benches);
