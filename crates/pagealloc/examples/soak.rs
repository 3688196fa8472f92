//! A soak: random operations over many configurations, several threads at
//! once, with the invariant walk and an exact page count at every pause.
//!
//! `cargo run --release -p pagealloc --example soak -- --ops N --seed S
//! --threads T [--check-every K]`
//!
//! The `N` operations are spread over configurations of [`OPS_PER_CONFIG`]
//! operations each. Configuration `c` is drawn from the seed and `c`: a
//! memory map of 1 to 4 nodes with holes, 4, 16 or 64 KiB pages, 1 to 13
//! orders and any pageblock order below, x86-64 or Normal-only zones,
//! per-CPU lists on or off, every packing policy, confinement on or off,
//! CMA areas or none, free page reporting on or off (passes with a sink that refuses some
//! batches). Contiguous runs (`alloc_contig_pages`, `cma_alloc`) are taken
//! and freed among the other calls, each thread's migrator moving its own
//! movable blocks and refusing the others'. `T`
//! threads run on CPUs `0..T`, each allocating (single, bulk, packed,
//! through [`pagealloc::LocalLists`]), splitting and freeing its own blocks
//! and blocks other threads left in a shared pool, and making bad calls
//! (wrong order, misaligned frames, interior pages, holes, frames outside
//! every zone, invalid CPUs and orders, duplicate bulk entries) that must
//! fail and change nothing. Every `K` operations all threads wait at a
//! barrier and the main thread checks [`pagealloc::Allocator::check_invariants`],
//! that every held block is allocated with its order, that
//! `nr_allocated_pages()` equals the pages the threads hold, that a
//! snapshot agrees with the original, and makes the bad calls that would
//! race with other threads (double frees). At the end of each
//! configuration everything is freed and drained, and nothing may remain
//! allocated or cached.
//!
//! Any violation or unexpected result prints the seed, the configuration
//! index and the operation index and exits with status 1; bad arguments
//! exit with status 2. Operation indices are global (`0..N`); with more than
//! one thread the interleaving is not reproducible, the configuration is.

use std::process::exit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Instant;

use pagealloc::{
    AllocError, AllocFlags, Allocator, BlockError, BulkFreeError, CmaArea, CmaSupport, Config,
    Confinement, ContigConstraints, ContigError, CpuId, HighAtomicReserve, LocalError, MemRange,
    MemoryMap, MigrateRefusal, NodeId, Order, PackClaim, Packing, PageCount, PcpHigh, PcpMode, Pfn,
    RegionMixing, RegionPolicy, ReportPassError, ReportSink, ReportedBlock, ReportingPolicy,
    ZoneBounds,
};

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use common::XorShift;

/// Contiguous calls made, runs taken, and pages migrated for them.
static CONTIG_CALLS: AtomicU64 = AtomicU64::new(0);
static CONTIG_TAKEN: AtomicU64 = AtomicU64::new(0);
static CONTIG_MIGRATED: AtomicU64 = AtomicU64::new(0);
/// Pageblocks emptied by migration (confinement or small-order packing),
/// all configurations.
static EVACUATIONS: AtomicU64 = AtomicU64::new(0);

/// Operations run against one configuration before the next is built.
const OPS_PER_CONFIG: u64 = 5_000;
/// The default pause interval (`--check-every`).
const DEFAULT_CHECK_EVERY: u64 = 1_000;
/// The most threads accepted.
const MAX_THREADS: u64 = 64;
/// The most pages one bulk or packed call asks for.
const MAX_BULK: usize = 48;

/// Parsed command line.
struct Args {
    /// Total operations.
    ops: u64,
    /// The seed every configuration and thread stream is drawn from.
    seed: u64,
    /// Worker threads, each on its own CPU.
    threads: u64,
    /// Operations between pauses for the checks.
    check_every: u64,
    /// Draw CMA areas aligned to pageblocks only (Linux's rule, the
    /// default), not to the largest order (`--cma-max-order-aligned`).
    cma_pageblock_aligned: bool,
    /// Memory regions (seed 000) on in every configuration (`--regions`):
    /// a size of 1-8 largest blocks and a mixing policy drawn from a
    /// stream of their own, so the rest of each configuration is as
    /// without the flag.
    regions: bool,
}

/// Prints `msg` and the usage, and exits with status 2.
fn usage(msg: &str) -> ! {
    eprintln!("soak: {msg}");
    eprintln!(
        "usage: soak --ops N --seed S --threads T [--check-every K] [--cma-max-order-aligned] [--regions]"
    );
    eprintln!(
        "  N >= 1, S any u64, T in 1..={MAX_THREADS}, K >= 1 (default {DEFAULT_CHECK_EVERY})"
    );
    exit(2);
}

/// Reads the command line, exiting with status 2 on anything malformed.
fn parse_args() -> Args {
    let (mut ops, mut seed, mut threads, mut check_every) = (None, None, None, None);
    let mut cma_pageblock_aligned = true;
    let mut regions = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--cma-max-order-aligned" => {
                cma_pageblock_aligned = false;
                continue;
            }
            "--regions" => {
                regions = true;
                continue;
            }
            "--ops" => &mut ops,
            "--seed" => &mut seed,
            "--threads" => &mut threads,
            "--check-every" => &mut check_every,
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown argument {other:?}")),
        };
        let Some(value) = args.next() else {
            usage(&format!("{flag} needs a value"));
        };
        let Ok(n) = value.parse::<u64>() else {
            usage(&format!("{flag} {value:?} is not a non-negative integer"));
        };
        if slot.replace(n).is_some() {
            usage(&format!("{flag} given twice"));
        }
    }
    let ops = ops.unwrap_or_else(|| usage("--ops is required"));
    let seed = seed.unwrap_or_else(|| usage("--seed is required"));
    let threads = threads.unwrap_or_else(|| usage("--threads is required"));
    let check_every = check_every.unwrap_or(DEFAULT_CHECK_EVERY);
    if ops == 0 {
        usage("--ops must be at least 1");
    }
    if !(1..=MAX_THREADS).contains(&threads) {
        usage(&format!("--threads must be 1..={MAX_THREADS}"));
    }
    if check_every == 0 {
        usage("--check-every must be at least 1");
    }
    Args {
        ops,
        seed,
        threads,
        check_every,
        cma_pageblock_aligned,
        regions,
    }
}

/// Where a failure happened, for the report.
#[derive(Clone, Copy)]
struct Site {
    /// The run's seed.
    seed: u64,
    /// The configuration index.
    config: u64,
    /// Worker threads (the configuration depends on it).
    threads: u64,
    /// `--cma-pageblock-aligned` (so does the configuration).
    cma_pageblock_aligned: bool,
}

impl Site {
    /// Reports a violation at operation `op` and exits with status 1.
    fn fail(&self, op: u64, what: std::fmt::Arguments) -> ! {
        eprintln!(
            "soak: VIOLATION seed {} config {} op {}: {}",
            self.seed, self.config, op, what
        );
        if std::env::var_os("SOAK_VERBOSE").is_some() {
            let m = draw_machine(
                self.seed,
                self.config,
                self.threads,
                self.cma_pageblock_aligned,
            );
            eprintln!("config: {:?}\nmap: {:?}", m.config, m.map.ranges());
        }
        exit(1);
    }
}

/// One drawn configuration with what the threads need to know about it.
struct Machine {
    /// The memory map.
    map: MemoryMap,
    /// The configuration.
    config: Config,
    /// Frames in holes between ranges of one node (spanned, not present).
    holes: Vec<Pfn>,
    /// A frame above every zone.
    beyond: Pfn,
}

/// A random value in `lo..=hi`.
fn range(rng: &mut XorShift, lo: u64, hi: u64) -> u64 {
    lo + rng.next() % (hi - lo + 1)
}

/// Draws configuration `index` for `threads` threads; CMA areas are aligned
/// to pageblocks if `cma_pageblock_aligned`, else to the largest order.
fn draw_machine(seed: u64, index: u64, threads: u64, cma_pageblock_aligned: bool) -> Machine {
    let mut rng = XorShift((seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
    for _ in 0..4 {
        rng.next();
    }
    let page_size: u64 = [4096, 16384, 65536][(index % 3) as usize];
    let pcp = if (index / 3).is_multiple_of(2) {
        PcpMode::Enabled
    } else {
        PcpMode::Disabled
    };
    let packing = [
        Packing::Off,
        Packing::Unmovable,
        Packing::UnmovableAndReclaimable,
        Packing::SmallOrders,
    ][(rng.next() % 4) as usize];
    let nr_orders = range(&mut rng, 1, 13) as u8;
    let pageblock_order = if rng.next().is_multiple_of(2) {
        (nr_orders - 1).min(9)
    } else {
        range(&mut rng, 0, nr_orders as u64 - 1) as u8
    };
    let x86 = rng.next().is_multiple_of(2);
    let zone_bounds = if x86 {
        ZoneBounds::X86_64
    } else {
        ZoneBounds::NORMAL_ONLY
    };
    let dma_end = (16u64 << 20) / page_size;
    let dma32_end = (4u64 << 30) / page_size;
    let nodes = range(&mut rng, 1, 4);
    let mut ranges = Vec::new();
    let mut holes = Vec::new();
    for node in 0..nodes {
        // Node 0 starts low, across the DMA bound on x86; the others above
        // 4 GiB, in Normal.
        let mut at = if node == 0 {
            range(&mut rng, 0, dma_end / 2)
        } else {
            node * dma32_end + range(&mut rng, 0, 4096)
        };
        for r in 0..range(&mut rng, 1, 3) {
            if r > 0 {
                let gap = range(&mut rng, 1, 1500);
                holes.push(Pfn(at + gap / 2));
                at += gap;
            }
            let len = range(&mut rng, 1, 6000);
            ranges.push(MemRange {
                node: NodeId(node as u16),
                start: Pfn(at),
                end: Pfn(at + len),
            });
            at += len;
        }
    }
    let beyond = Pfn(ranges.last().map_or(0, |r| r.end.0) + range(&mut rng, 0, 1 << 20));
    let mut cma_areas = Vec::new();
    let cma = rng.next().is_multiple_of(3);
    if cma {
        // Pageblock-aligned areas are what Linux allows, but the engine
        // builds free blocks across a CMA area's edge when the area is not
        // aligned to the largest order (seed 1, config 11): only with
        // `--cma-pageblock-aligned` until that is fixed.
        let unit = if cma_pageblock_aligned {
            1u64 << pageblock_order
        } else {
            1u64 << (nr_orders - 1).max(pageblock_order)
        };
        for _ in 0..range(&mut rng, 1, 2) {
            let r = ranges[(rng.next() % ranges.len() as u64) as usize];
            let start = r.start.0.div_ceil(unit) * unit;
            let end = start + range(&mut rng, 1, 2) * unit;
            let crosses = x86 && [dma_end, dma32_end].iter().any(|&b| start < b && b < end);
            let overlaps = cma_areas
                .iter()
                .any(|a: &CmaArea| start < a.start.0 + a.nr_pages.0 && a.start.0 < end);
            if end <= r.end.0 && !crosses && !overlaps {
                cma_areas.push(CmaArea {
                    start: Pfn(start),
                    nr_pages: PageCount(end - start),
                    order_per_bit: 0,
                });
            }
        }
    }
    let config = Config {
        page_size_bytes: page_size,
        nr_orders,
        pageblock_order,
        zone_bounds,
        highatomic: if rng.next().is_multiple_of(2) {
            HighAtomicReserve::Linux
        } else {
            HighAtomicReserve::Disabled
        },
        cma: if cma {
            CmaSupport::Enabled
        } else {
            CmaSupport::Disabled
        },
        nr_cpus: (threads + rng.next() % 2) as u16,
        pcp,
        pcp_high: if rng.next().is_multiple_of(2) {
            PcpHigh::AutoTune
        } else {
            PcpHigh::Fixed
        },
        packing,
        cma_areas,
        // Free page reporting (seed 002) in half the configurations, with
        // small batches and any order from 0 up, so passes run often.
        reporting: rng.next().is_multiple_of(2).then(|| ReportingPolicy {
            order: Some((rng.next() % u64::from(nr_orders)) as u8),
            capacity: 1 + (rng.next() % 16) as u16,
            budget_fraction: 1 + (rng.next() % 16) as u16,
        }),
        ..Config::default()
    };
    // Confinement in half the configurations, drawn last so the draws
    // above stay what they were.
    let mut config = config;
    if rng.next().is_multiple_of(2) {
        config.confinement = Confinement::LowEnd;
    }
    let map = MemoryMap::new(ranges).expect("drawn ranges are disjoint and ordered");
    Machine {
        map,
        config,
        holes,
        beyond,
    }
}

/// The shared state of one configuration's run.
struct Shared<'a> {
    /// The allocator under test.
    a: &'a Allocator,
    /// The machine it was built from.
    m: &'a Machine,
    /// Each thread's held blocks (locked by its owner, and by the main
    /// thread at a pause).
    held: Vec<Mutex<Vec<(Pfn, Order)>>>,
    /// Blocks left for any thread to free: the cross-thread frees.
    pool: Mutex<Vec<(Pfn, Order)>>,
    /// Pages held by all threads and the pool, approximately current.
    held_pages: AtomicU64,
    /// Present pages.
    present: u64,
    /// Where failures are reported.
    site: Site,
}

/// A migrator over one thread's held blocks: a block it holds is held at
/// its new frame from now on; any other (another thread's) is refused as
/// busy.
fn mover(
    held: &mut [(Pfn, Order)],
) -> impl FnMut(Pfn, Pfn, Order) -> Result<(), MigrateRefusal> + '_ {
    move |from, to, order| match held.iter_mut().find(|b| **b == (from, order)) {
        Some(b) => {
            b.0 = to;
            Ok(())
        }
        None => Err(MigrateRefusal::Busy),
    }
}

/// Allocation flags for a draw.
fn draw_flags(rng: &mut XorShift) -> AllocFlags {
    const BASE: [AllocFlags; 9] = [
        AllocFlags::KERNEL,
        AllocFlags::HIGHUSER_MOVABLE,
        AllocFlags::HIGHUSER_MOVABLE,
        AllocFlags::MOVABLE,
        AllocFlags::KERNEL_RECLAIMABLE,
        AllocFlags::GFP_ATOMIC,
        AllocFlags::DMA,
        AllocFlags::DMA32,
        AllocFlags::GFP_ATOMIC.union(AllocFlags::DMA32),
    ];
    let mut f = BASE[(rng.next() % BASE.len() as u64) as usize];
    let extra = rng.next();
    for (bit, flag) in [
        (0, AllocFlags::NO_FALLBACK),
        (3, AllocFlags::THIS_NODE),
        (6, AllocFlags::NO_WARN),
        (9, AllocFlags::NO_MEMALLOC),
        (12, AllocFlags::HIGH),
    ] {
        if (extra >> bit) & 7 == 0 {
            f |= flag;
        }
    }
    if extra >> 20 & 255 == 0 {
        f |= AllocFlags::NO_WATERMARKS;
    }
    f
}

/// An order for a draw: mostly small, sometimes up to the largest.
fn draw_order(rng: &mut XorShift, max: u8) -> Order {
    let r = rng.next();
    let n = if r % 8 < 6 {
        (r >> 8) % 4
    } else {
        (r >> 8) % (max as u64 + 1)
    };
    Order::new((n as u8).min(max)).expect("order within the limit")
}

/// Whether an allocation failure is one the engine may give.
fn acceptable(e: AllocError, order: Order) -> bool {
    match e {
        AllocError::NoMemory { order: o } => o == order,
        AllocError::NoZone => true,
        _ => false,
    }
}

impl Shared<'_> {
    /// Checks a fresh block and records it as held by `me`.
    fn took(&self, held: &mut Vec<(Pfn, Order)>, pfn: Pfn, order: Order, op: u64) {
        if !pfn.is_aligned(order) || !self.m.map.is_present(pfn) {
            self.site.fail(
                op,
                format_args!("allocated {pfn} at {order:?}: misaligned or in a hole"),
            );
        }
        match self.a.allocated_block(pfn) {
            Some((o, _)) if o == order => {}
            other => self.site.fail(
                op,
                format_args!("allocated {pfn} at {order:?} but the record says {other:?}"),
            ),
        }
        held.push((pfn, order));
        self.held_pages
            .fetch_add(order.nr_pages().0, Ordering::Relaxed);
    }

    /// Records that `order` pages' worth left the held set.
    fn gave(&self, order: Order) {
        self.held_pages
            .fetch_sub(order.nr_pages().0, Ordering::Relaxed);
    }

    /// A bad call must fail with an error and leave the block held.
    fn expect_err<T: std::fmt::Debug, E>(&self, op: u64, what: &str, r: Result<T, E>) {
        if let Ok(v) = r {
            self.site
                .fail(op, format_args!("bad call {what} succeeded: {v:?}"));
        }
    }

    /// Runs `n` operations as thread `me`, numbered from `first`.
    fn run(&self, me: usize, rng: &mut XorShift, first: u64, n: u64) {
        let (a, cpu) = (self.a, CpuId(me as u16));
        let max = a.config().max_order();
        let nr_orders = a.config().nr_orders;
        let mut held = self.held[me].lock().expect("held lock");
        let mut buf = [Pfn(0); MAX_BULK];
        for op in first..first + n {
            let full = self.held_pages.load(Ordering::Relaxed) * 10 > self.present * 9;
            let kind = rng.next() % 100;
            match kind {
                // Allocate one block.
                0..=29 if !full => {
                    let (order, flags) = (draw_order(rng, max.get()), draw_flags(rng));
                    // Under confinement or small-order packing, now and
                    // then with this thread's migrator at hand, so that a
                    // pageblock may be emptied for kernel memory (other
                    // threads' blocks refuse as busy).
                    let confining = kind < 5 && a.config().evacuates();
                    let r = if confining {
                        a.alloc_confining(cpu, order, flags, &mut mover(&mut held))
                    } else {
                        a.alloc_on_cpu(cpu, order, flags)
                    };
                    match r {
                        Ok(pfn) => self.took(&mut held, pfn, order, op),
                        Err(e) if acceptable(e, order) => {}
                        Err(e) => self
                            .site
                            .fail(op, format_args!("alloc {order:?} {flags:?}: {e:?}")),
                    }
                }
                // Free one of mine.
                0..=44 if !held.is_empty() => {
                    let i = (rng.next() % held.len() as u64) as usize;
                    let (pfn, order) = held.swap_remove(i);
                    if let Err(e) = a.free_on_cpu(cpu, pfn, order) {
                        self.site
                            .fail(op, format_args!("free {pfn} {order:?}: {e:?}"));
                    }
                    self.gave(order);
                }
                // Hand one to the pool, or free one from it.
                45..=54 => {
                    if rng.next().is_multiple_of(2) && !held.is_empty() {
                        let i = (rng.next() % held.len() as u64) as usize;
                        let b = held.swap_remove(i);
                        self.pool.lock().expect("pool").push(b);
                    } else {
                        let b = {
                            let mut pool = self.pool.lock().expect("pool");
                            let len = pool.len() as u64;
                            (len > 0).then(|| pool.swap_remove((rng.next() % len) as usize))
                        };
                        if let Some((pfn, order)) = b {
                            if let Err(e) = a.free_on_cpu(cpu, pfn, order) {
                                self.site.fail(
                                    op,
                                    format_args!("cross-thread free {pfn} {order:?}: {e:?}"),
                                );
                            }
                            self.gave(order);
                        }
                    }
                }
                // Bulk allocation, or packed allocation.
                55..=61 if !full => {
                    let want = range(rng, 1, MAX_BULK as u64) as usize;
                    let flags = draw_flags(rng);
                    let r = if kind < 60 {
                        a.alloc_bulk(cpu, flags, &mut buf[..want])
                    } else {
                        let claim = if rng.next().is_multiple_of(2) {
                            PackClaim::OwnedOnly
                        } else {
                            PackClaim::ClaimFreePageblocks
                        };
                        a.alloc_packed(cpu, flags, claim, &mut buf[..want])
                    };
                    match r {
                        Ok(got) if got <= want => {
                            for &pfn in &buf[..got] {
                                self.took(&mut held, pfn, Order::ZERO, op);
                            }
                        }
                        Err(e) if acceptable(e, Order::ZERO) => {}
                        other => self
                            .site
                            .fail(op, format_args!("bulk of {want} {flags:?}: {other:?}")),
                    }
                }
                // Bulk free of my order-0 pages.
                62..=67 => {
                    let want = range(rng, 1, MAX_BULK as u64) as usize;
                    let mut batch = Vec::new();
                    let mut i = 0;
                    while i < held.len() && batch.len() < want {
                        if held[i].1 == Order::ZERO {
                            batch.push(held.swap_remove(i).0);
                        } else {
                            i += 1;
                        }
                    }
                    if let Err(e) = a.free_bulk(cpu, &batch) {
                        self.site
                            .fail(op, format_args!("free_bulk of {}: {e:?}", batch.len()));
                    }
                    for _ in &batch {
                        self.gave(Order::ZERO);
                    }
                }
                // Split one of mine (orders 1..=6).
                68..=71 => {
                    let i = held.iter().position(|&(_, o)| (1..=6).contains(&o.get()));
                    if let Some(i) = i {
                        let (pfn, order) = held.swap_remove(i);
                        if let Err(e) = a.split_page(pfn, order) {
                            self.site
                                .fail(op, format_args!("split_page {pfn} {order:?}: {e:?}"));
                        }
                        self.gave(order);
                        for k in 0..order.nr_pages().0 {
                            self.took(&mut held, Pfn(pfn.0 + k), Order::ZERO, op);
                        }
                    }
                }
                // A few calls through the held lists.
                72..=79 => match a.local(cpu) {
                    Ok(mut local) => {
                        for _ in 0..range(rng, 1, 8) {
                            if rng.next().is_multiple_of(2) && !full {
                                let (order, flags) = (draw_order(rng, max.get()), draw_flags(rng));
                                match local.alloc(order, flags) {
                                    Ok(pfn) => self.took(&mut held, pfn, order, op),
                                    Err(e) if acceptable(e, order) => {}
                                    Err(e) => self
                                        .site
                                        .fail(op, format_args!("local alloc {order:?}: {e:?}")),
                                }
                            } else if let Some((pfn, order)) = held.pop() {
                                if let Err(e) = local.free(pfn, order) {
                                    self.site.fail(op, format_args!("local free {pfn}: {e:?}"));
                                }
                                self.gave(order);
                            }
                        }
                        if rng.next().is_multiple_of(16) {
                            local.drain();
                        }
                    }
                    Err(LocalError::Busy { .. }) => {}
                    Err(e) => self.site.fail(op, format_args!("local: {e:?}")),
                },
                // Drains, and now and then a reporting pass (refused while
                // another thread runs one).
                80..=81 => {
                    if a.config().reporting.is_some() && rng.next().is_multiple_of(3) {
                        let mut sink = FlakySink(rng.next());
                        match a.report_pass(&mut sink) {
                            Ok(_) | Err(ReportPassError::Busy) => {}
                            Err(e) => self.site.fail(op, format_args!("report_pass: {e:?}")),
                        }
                    } else if rng.next().is_multiple_of(4) {
                        a.drain_all();
                    } else if let Err(e) = a.drain_local(cpu) {
                        self.site.fail(op, format_args!("drain_local: {e:?}"));
                    }
                }
                // A contiguous run (seed 003), from anywhere or from a CMA
                // area, migrating this thread's own movable blocks out of
                // the way (other threads' blocks are refused as busy), then
                // freed again, in two pieces now and then.
                82..=83 => self.contig(&mut held, rng, op),
                // Bad calls that cannot race: on blocks only this thread
                // holds, or on frames nobody can hold.
                _ => self.bad_call(&held, rng, cpu, nr_orders, op),
            }
        }
    }

    /// One contiguous allocation and its free (see `run`).
    fn contig(&self, held: &mut [(Pfn, Order)], rng: &mut XorShift, op: u64) {
        let a = self.a;
        let max = a.config().max_order().nr_pages().0;
        let nr = range(rng, 1, max * 4);
        let mut migrator = mover(held);
        let areas = a.cma_areas();
        let from_cma = !areas.is_empty() && rng.next().is_multiple_of(2);
        let r = if from_cma {
            let area = (rng.next() % areas.len() as u64) as usize;
            let nr = nr.min(areas[area].nr_pages.0);
            a.cma_alloc(area, PageCount(nr), Order::ZERO, &mut migrator)
                .map(|got| (got, Some(area)))
        } else {
            let c = ContigConstraints::default();
            a.alloc_contig_pages(PageCount(nr), &c, &mut migrator)
                .map(|got| (got, None))
        };
        CONTIG_CALLS.fetch_add(1, Ordering::Relaxed);
        let (got, area) = match r {
            Ok(got) => got,
            Err(
                ContigError::Busy { .. }
                | ContigError::NotFound { .. }
                | ContigError::NoMemory
                | ContigError::Isolated { .. }
                | ContigError::Unmovable { .. },
            ) => return,
            Err(e) => self
                .site
                .fail(op, format_args!("contiguous run of {nr}: {e:?}")),
        };
        CONTIG_TAKEN.fetch_add(1, Ordering::Relaxed);
        CONTIG_MIGRATED.fetch_add(got.migrated_pages, Ordering::Relaxed);
        for k in 0..got.nr_pages.0 {
            let pfn = Pfn(got.start.0 + k);
            if a.allocated_block(pfn) != Some((Order::ZERO, pagealloc::MigrateType::Unmovable)) {
                self.site.fail(
                    op,
                    format_args!("page {pfn} of a contiguous run is not taken"),
                );
            }
            self.expect_err(op, "free of a contiguous page", a.free(pfn, Order::ZERO));
        }
        let freed = match area {
            Some(area) => a.cma_release(area, got.start, got.nr_pages),
            None if got.nr_pages.0 > 1 && rng.next().is_multiple_of(2) => {
                let cut = range(rng, 1, got.nr_pages.0 - 1);
                a.free_contig_range(Pfn(got.start.0 + cut), PageCount(got.nr_pages.0 - cut))
                    .and_then(|()| a.free_contig_range(got.start, PageCount(cut)))
            }
            None => a.free_contig_range(got.start, got.nr_pages),
        };
        if let Err(e) = freed {
            self.site
                .fail(op, format_args!("free of a contiguous run: {e:?}"));
        }
    }

    /// One bad call, which must fail and leave everything as it was.
    fn bad_call(
        &self,
        held: &[(Pfn, Order)],
        rng: &mut XorShift,
        cpu: CpuId,
        nr_orders: u8,
        op: u64,
    ) {
        let a = self.a;
        let block = (!held.is_empty()).then(|| held[(rng.next() % held.len() as u64) as usize]);
        let bad_cpu = CpuId(a.nr_cpus() + (rng.next() % 3) as u16);
        match (rng.next() % 9, block) {
            (0, Some((pfn, order))) => {
                let wrong = Order::new(((order.get() as u64 + range(rng, 1, 3)) % 16) as u8)
                    .expect("order");
                self.expect_err(
                    op,
                    "free at the wrong order",
                    a.free_on_cpu(cpu, pfn, wrong),
                );
            }
            (1, Some((pfn, order))) if order.get() > 0 => {
                let inner = Pfn(pfn.0 + range(rng, 1, order.nr_pages().0 - 1));
                self.expect_err(
                    op,
                    "free of an interior frame",
                    a.free_on_cpu(cpu, inner, order),
                );
                self.expect_err(
                    op,
                    "order-0 free of an interior frame",
                    a.free_on_cpu(cpu, inner, Order::ZERO),
                );
                self.expect_err(op, "split of an interior frame", a.split_page(inner, order));
            }
            (2, Some((pfn, order))) => {
                self.expect_err(
                    op,
                    "free on an invalid CPU",
                    a.free_on_cpu(bad_cpu, pfn, order),
                );
            }
            (3, Some((pfn, Order::ZERO))) => {
                let r = a.free_bulk(cpu, &[pfn, pfn]);
                if !matches!(r, Err(BulkFreeError::Entry { .. })) {
                    self.site
                        .fail(op, format_args!("free_bulk with a duplicate: {r:?}"));
                }
            }
            (3, Some((pfn, _))) => {
                self.expect_err(
                    op,
                    "free_bulk of a high-order head",
                    a.free_bulk(cpu, &[pfn]),
                );
            }
            (4, _) => {
                let pfn = self.m.beyond;
                let r = a.free_on_cpu(cpu, pfn, Order::ZERO);
                if !matches!(r, Err(BlockError::OutOfRange { .. })) {
                    self.site
                        .fail(op, format_args!("free of {pfn} beyond every zone: {r:?}"));
                }
                self.expect_err(
                    op,
                    "free of frame u64::MAX",
                    a.free_on_cpu(cpu, Pfn(u64::MAX), Order::ZERO),
                );
            }
            (5, _) if !self.m.holes.is_empty() => {
                let pfn = self.m.holes[(rng.next() % self.m.holes.len() as u64) as usize];
                self.expect_err(
                    op,
                    "free of a frame in a hole",
                    a.free_on_cpu(cpu, pfn, Order::ZERO),
                );
            }
            (6, _) => {
                if let Some(o) = Order::new(nr_orders) {
                    let r = a.alloc_on_cpu(cpu, o, AllocFlags::KERNEL);
                    if !matches!(r, Err(AllocError::InvalidOrder { .. })) {
                        self.site
                            .fail(op, format_args!("alloc above the largest order: {r:?}"));
                    }
                }
            }
            (7, _) => {
                let r = a.alloc_on_cpu(bad_cpu, Order::ZERO, AllocFlags::KERNEL);
                if !matches!(r, Err(AllocError::InvalidCpu(_))) {
                    self.site
                        .fail(op, format_args!("alloc on an invalid CPU: {r:?}"));
                }
                let mut one = [Pfn(0)];
                self.expect_err(
                    op,
                    "alloc_bulk on an invalid CPU",
                    a.alloc_bulk(bad_cpu, AllocFlags::KERNEL, &mut one),
                );
                self.expect_err(op, "local on an invalid CPU", a.local(bad_cpu).map(|_| ()));
                self.expect_err(op, "drain_local on an invalid CPU", a.drain_local(bad_cpu));
            }
            (_, Some((pfn, order))) if order.get() > 0 => {
                // A misaligned frame at the block's order.
                let pfn = Pfn(pfn.0 | 1);
                self.expect_err(
                    op,
                    "free of a misaligned frame",
                    a.free_on_cpu(cpu, pfn, order),
                );
            }
            _ => {}
        }
        if let Some((pfn, order)) = block {
            match a.allocated_block(pfn) {
                Some((o, _)) if o == order => {}
                other => self.site.fail(
                    op,
                    format_args!("after a bad call {pfn} at {order:?} reads {other:?}"),
                ),
            }
        }
    }

    /// The checks at a pause (every thread waiting): invariants, every held
    /// block, the exact page count, a snapshot, and double frees.
    fn check(&self, op: u64) {
        let a = self.a;
        if let Err(v) = a.check_invariants() {
            self.site.fail(op, format_args!("{v}"));
        }
        let mut pages = 0;
        let pool = self.pool.lock().expect("pool");
        let held: Vec<_> = self.held.iter().map(|h| h.lock().expect("held")).collect();
        for &(pfn, order) in held.iter().flat_map(|h| h.iter()).chain(pool.iter()) {
            match a.allocated_block(pfn) {
                Some((o, _)) if o == order => {}
                other => self.site.fail(
                    op,
                    format_args!("held block {pfn} at {order:?} reads {other:?}"),
                ),
            }
            pages += order.nr_pages().0;
        }
        let counted = a.nr_allocated_pages();
        if counted != pages {
            self.site.fail(
                op,
                format_args!("nr_allocated_pages() = {counted}, the threads hold {pages}"),
            );
        }
        if pages != self.held_pages.load(Ordering::Relaxed) {
            self.site
                .fail(op, format_args!("soak's own page count drifted"));
        }
        let snap = a.clone();
        if let Err(v) = snap.check_invariants() {
            self.site.fail(op, format_args!("snapshot: {v}"));
        }
        if snap.digest() != a.digest() {
            self.site.fail(
                op,
                format_args!("a snapshot's digest differs from the original's"),
            );
        }
        drop(snap);
        // Double frees, with nobody else running to reuse the frame.
        let cpu = CpuId((op % a.nr_cpus() as u64) as u16);
        let order = Order::new((op % 3) as u8).filter(|o| *o <= a.config().max_order());
        if let Some(order) = order {
            match a.alloc_on_cpu(cpu, order, AllocFlags::KERNEL) {
                Ok(pfn) => {
                    if let Err(e) = a.free_on_cpu(cpu, pfn, order) {
                        self.site
                            .fail(op, format_args!("free before double free: {e:?}"));
                    }
                    self.expect_err(op, "double free", a.free_on_cpu(cpu, pfn, order));
                    self.expect_err(op, "double free (CPU 0)", a.free(pfn, order));
                    if order == Order::ZERO {
                        self.expect_err(op, "double free_bulk", a.free_bulk(cpu, &[pfn]));
                    } else {
                        self.expect_err(op, "split of a free block", a.split_page(pfn, order));
                    }
                }
                Err(e) if acceptable(e, order) => {}
                Err(e) => self
                    .site
                    .fail(op, format_args!("alloc for double free: {e:?}")),
            }
        }
        if a.nr_allocated_pages() != pages {
            self.site.fail(
                op,
                format_args!("the double-free probe changed the page count"),
            );
        }
    }
}

/// Runs configuration `index`: `ops` operations numbered from `first`.
fn run_config(args: &Args, index: u64, first: u64, ops: u64) -> u64 {
    let site = Site {
        seed: args.seed,
        config: index,
        threads: args.threads,
        cma_pageblock_aligned: args.cma_pageblock_aligned,
    };
    let mut m = draw_machine(args.seed, index, args.threads, args.cma_pageblock_aligned);
    if args.regions {
        let mut rng = XorShift((args.seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d)) | 1);
        let largest = m.config.page_size_bytes << m.config.max_order().get();
        m.config.regions = Some(RegionPolicy {
            size_bytes: largest << (rng.next() % 4),
            mixing: if rng.next().is_multiple_of(2) {
                RegionMixing::Packed
            } else {
                RegionMixing::Segregated
            },
        });
        // One placement policy per allocator (`RegionsWithConfinement`).
        m.config.confinement = Confinement::Off;
    }
    // CMA areas without CMA support must be refused.
    if !m.config.cma_areas.is_empty() {
        let mut refused = m.config.clone();
        refused.cma = CmaSupport::Disabled;
        if Allocator::new(m.map.clone(), refused).is_ok() {
            site.fail(first, format_args!("CMA areas accepted with CMA disabled"));
        }
    }
    let a = match Allocator::new(m.map.clone(), m.config.clone()) {
        Ok(a) => a,
        Err(e) => site.fail(
            first,
            format_args!("construction refused: {e} ({:?}, {:?})", m.config, m.map),
        ),
    };
    let shared = Shared {
        a: &a,
        m: &m,
        held: (0..args.threads).map(|_| Mutex::new(Vec::new())).collect(),
        pool: Mutex::new(Vec::new()),
        held_pages: AtomicU64::new(0),
        present: m.map.nr_present(),
        site,
    };
    let threads = args.threads as usize;
    let barrier = Barrier::new(threads + 1);
    // Phases: (first op, ops) of each stretch between pauses.
    let phases: Vec<(u64, u64)> = (0..ops)
        .step_by(args.check_every as usize)
        .map(|s| (first + s, args.check_every.min(ops - s)))
        .collect();
    // The freshly built allocator first.
    shared.check(first);
    std::thread::scope(|scope| {
        for me in 0..threads {
            let (shared, barrier, phases) = (&shared, &barrier, &phases);
            let seed = args.seed;
            scope.spawn(move || {
                let mut rng = XorShift(
                    (seed ^ (index << 8) ^ (me as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03)) | 1,
                );
                for &(start, n) in phases {
                    barrier.wait();
                    let share = n / threads as u64;
                    let extra = u64::from((me as u64) < n % threads as u64);
                    let my_first = start + share * me as u64 + (me as u64).min(n % threads as u64);
                    shared.run(me, &mut rng, my_first, share + extra);
                    barrier.wait();
                }
            });
        }
        for &(start, n) in &phases {
            barrier.wait();
            barrier.wait();
            shared.check(start + n - 1);
        }
    });
    // Free everything, drain, and nothing may remain.
    let last = first + ops - 1;
    let mut all: Vec<(Pfn, Order)> = shared.pool.lock().expect("pool").drain(..).collect();
    for h in &shared.held {
        all.append(&mut h.lock().expect("held"));
    }
    for (i, (pfn, order)) in all.into_iter().enumerate() {
        let cpu = CpuId((i % a.nr_cpus() as usize) as u16);
        if let Err(e) = a.free_on_cpu(cpu, pfn, order) {
            site.fail(last, format_args!("teardown free {pfn} {order:?}: {e:?}"));
        }
    }
    a.drain_all();
    let (allocated, cached) = (a.nr_allocated_pages(), a.nr_pcp_pages());
    if allocated != 0 || cached != 0 {
        site.fail(
            last,
            format_args!("after freeing everything: {allocated} allocated, {cached} cached"),
        );
    }
    if let Err(v) = a.check_invariants() {
        site.fail(last, format_args!("after teardown: {v}"));
    }
    let stats = a.stats();
    EVACUATIONS.fetch_add(stats.confined_evacuations, Ordering::Relaxed);
    stats.report_batches
}

fn main() {
    let args = parse_args();
    let start = Instant::now();
    let configs = args.ops.div_ceil(OPS_PER_CONFIG);
    let mut report_batches = 0;
    for c in 0..configs {
        let first = c * OPS_PER_CONFIG;
        report_batches += run_config(&args, c, first, OPS_PER_CONFIG.min(args.ops - first));
    }
    println!(
        "soak: seed {} ops {} configs {} threads {} check-every {} report-batches {} contig {}/{} migrated {} evacuations {} elapsed {:.1} s violations 0",
        args.seed,
        args.ops,
        configs,
        args.threads,
        args.check_every,
        report_batches,
        CONTIG_TAKEN.load(Ordering::Relaxed),
        CONTIG_CALLS.load(Ordering::Relaxed),
        CONTIG_MIGRATED.load(Ordering::Relaxed),
        EVACUATIONS.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
}

/// A report sink that refuses every batch whose running count is a
/// multiple of 5, to exercise the failure path.
struct FlakySink(u64);

impl ReportSink for FlakySink {
    type Error = ();
    fn report(&mut self, batch: &[ReportedBlock]) -> Result<(), ()> {
        self.0 = self.0.wrapping_add(1);
        if batch.is_empty() || self.0.is_multiple_of(5) {
            Err(())
        } else {
            Ok(())
        }
    }
}
