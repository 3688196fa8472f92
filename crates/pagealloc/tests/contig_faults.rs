//! Fault injection for contiguous allocation (seed 003): random
//! allocations and frees, pins, and every contiguous call
//! (`alloc_contig_range`, `alloc_contig_pages`, `cma_alloc`,
//! `offline_pages`, and their frees) while the migrator refuses at random.
//! After every step: the invariant walk, exact page accounting (the owner's
//! movable blocks, the unmovable blocks, the contiguous runs and the
//! offline ranges are exactly what the allocator holds, and every block the
//! owner holds is an allocated movable block of its order), and a refusal
//! made before isolation changed nothing at all (digest). The totals of
//! calls and injected failures are printed.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use common::{bounds_mib, range};
use pagealloc::{
    AllocFlags, Allocator, CmaArea, CmaSupport, Config, ContigConstraints, ContigError, CpuId,
    MemoryMap, MigrateRefusal, MigrateType, MinFree, Order, PageCount, Pfn,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

const PAGEBLOCK_ORDER: u8 = 5;
const PB: u64 = 1 << PAGEBLOCK_ORDER;
const CMA_START: u64 = 0x4000;
const CMA_PAGES: u64 = 1024;

/// DMA32 0x1000..0x3000 with a hole at 0x2800..0x2900, Normal
/// 0x3000..0x5000 holding a CMA area; 2 CPUs, 32-page pageblocks.
fn machine() -> Allocator {
    let map = MemoryMap::new([range(0, 0x1000, 0x2800), range(0, 0x2900, 0x5000)]).unwrap();
    let config = Config {
        nr_orders: 8,
        pageblock_order: PAGEBLOCK_ORDER,
        zone_bounds: bounds_mib(Some(16), Some(48), None),
        min_free: MinFree::Kbytes(256),
        nr_cpus: 2,
        cma: CmaSupport::Enabled,
        cma_areas: vec![CmaArea {
            start: Pfn(CMA_START),
            nr_pages: PageCount(CMA_PAGES),
            order_per_bit: 2,
        }],
        ..Config::default()
    };
    Allocator::new(map, config).unwrap()
}

/// The owner of the movable blocks, and the migrator that fails.
struct Owner {
    /// Handle -> its block's frame and order.
    blocks: HashMap<u64, (Pfn, Order)>,
    /// Frame -> handle.
    by_pfn: HashMap<Pfn, u64>,
    pinned: HashSet<u64>,
    next: u64,
    /// Out of 100, how often a migration is refused at random.
    refuse_pct: u64,
    rng: u64,
    calls: u64,
    injected: u64,
    pinned_refusals: u64,
}

impl Owner {
    fn add(&mut self, pfn: Pfn, order: Order) {
        self.blocks.insert(self.next, (pfn, order));
        self.by_pfn.insert(pfn, self.next);
        self.next += 1;
    }

    fn take(&mut self, handle: u64) -> Option<(Pfn, Order)> {
        let (pfn, order) = self.blocks.remove(&handle)?;
        self.by_pfn.remove(&pfn);
        self.pinned.remove(&handle);
        Some((pfn, order))
    }

    fn nth(&self, i: usize) -> Option<u64> {
        let mut handles: Vec<u64> = self.blocks.keys().copied().collect();
        handles.sort_unstable();
        (!handles.is_empty()).then(|| handles[i % handles.len()])
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn migrate(&mut self, from: Pfn, to: Pfn, order: Order) -> Result<(), MigrateRefusal> {
        self.calls += 1;
        let Some(&handle) = self.by_pfn.get(&from) else {
            return Err(MigrateRefusal::Busy);
        };
        if self.pinned.contains(&handle) {
            self.pinned_refusals += 1;
            return Err(MigrateRefusal::Pinned);
        }
        if self.random() % 100 < self.refuse_pct {
            self.injected += 1;
            return Err(MigrateRefusal::Busy);
        }
        assert_eq!(self.blocks[&handle].1, order, "migrated at another order");
        self.by_pfn.remove(&from);
        self.by_pfn.insert(to, handle);
        self.blocks.insert(handle, (to, order));
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Op {
    AllocMovable {
        order: u8,
        cpu: u16,
    },
    AllocUnmovable {
        order: u8,
    },
    FreeMovable(usize),
    FreeUnmovable(usize),
    Pin(usize),
    Unpin(usize),
    Refuse(u64),
    Range {
        at: u64,
        len: u64,
    },
    Pages {
        len: u64,
        align_log: u8,
        boundary: bool,
    },
    Cma {
        count: u64,
        align: u8,
    },
    FreeRun {
        index: usize,
        split: u64,
    },
    Offline {
        block: u64,
        blocks: u64,
    },
    Online(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..5, 0u16..2).prop_map(|(order, cpu)| Op::AllocMovable { order, cpu }),
        2 => (0u8..4).prop_map(|order| Op::AllocUnmovable { order }),
        3 => any::<usize>().prop_map(Op::FreeMovable),
        1 => any::<usize>().prop_map(Op::FreeUnmovable),
        1 => any::<usize>().prop_map(Op::Pin),
        1 => any::<usize>().prop_map(Op::Unpin),
        1 => prop_oneof![Just(0u64), Just(30), Just(70), Just(100)].prop_map(Op::Refuse),
        2 => (0x1000u64..0x5000, 1u64..600).prop_map(|(at, len)| Op::Range { at, len }),
        2 => (1u64..700, 0u8..8, any::<bool>())
            .prop_map(|(len, align_log, boundary)| Op::Pages { len, align_log, boundary }),
        2 => (1u64..400, 0u8..6).prop_map(|(count, align)| Op::Cma { count, align }),
        2 => (any::<usize>(), any::<u64>()).prop_map(|(index, split)| Op::FreeRun { index, split }),
        1 => (0u64..(0x4000 / PB), 1u64..8).prop_map(|(block, blocks)| Op::Offline { block, blocks }),
        1 => any::<usize>().prop_map(Op::Online),
    ]
}

/// What the test holds besides the owner's blocks.
#[derive(Default)]
struct Held {
    unmovable: Vec<(Pfn, Order)>,
    /// Contiguous runs: start, pages, CMA area if from `cma_alloc`.
    runs: Vec<(Pfn, u64, Option<usize>)>,
    offline: Vec<(Pfn, u64)>,
}

static CALLS: AtomicU64 = AtomicU64::new(0);
static CONTIG_CALLS: AtomicU64 = AtomicU64::new(0);
static CONTIG_OK: AtomicU64 = AtomicU64::new(0);
static INJECTED: AtomicU64 = AtomicU64::new(0);
static PINNED: AtomicU64 = AtomicU64::new(0);
static MIGRATE_CALLS: AtomicU64 = AtomicU64::new(0);

/// Whether `e` is refused before anything is isolated, so the call must
/// have changed nothing.
fn refused_up_front(e: &ContigError) -> bool {
    matches!(
        e,
        ContigError::Range { .. }
            | ContigError::Unmovable { .. }
            | ContigError::Isolated { .. }
            | ContigError::Constraint
            | ContigError::NoSuchArea { .. }
            | ContigError::NotContig { .. }
            | ContigError::NotOffline { .. }
    )
}

fn check(a: &Allocator, owner: &Owner, held: &Held, present: u64) -> Result<(), TestCaseError> {
    if let Err(v) = a.check_invariants() {
        return Err(TestCaseError::fail(format!("{v}")));
    }
    for &(pfn, order) in owner.blocks.values() {
        prop_assert_eq!(
            a.allocated_block(pfn),
            Some((order, MigrateType::Movable)),
            "owned block {}",
            pfn
        );
    }
    let owned: u64 = owner.blocks.values().map(|b| b.1.nr_pages().0).sum();
    let unmovable: u64 = held.unmovable.iter().map(|b| b.1.nr_pages().0).sum();
    let runs: u64 = held.runs.iter().map(|r| r.1).sum();
    let offline: u64 = held.offline.iter().map(|r| r.1).sum();
    prop_assert_eq!(a.nr_allocated_pages(), owned + unmovable + runs);
    let managed: u64 = a.zones().iter().map(|z| z.nr_managed().0).sum();
    prop_assert_eq!(managed, present - offline);
    prop_assert_eq!(
        a.nr_free_pages() + a.nr_pcp_pages() + owned + unmovable + runs + offline,
        present
    );
    Ok(())
}

fn run(ops: Vec<Op>, seed: u64) -> Result<(), TestCaseError> {
    let mut a = machine();
    let present: u64 = a.zones().iter().map(|z| z.nr_present().0).sum();
    let mut owner = Owner {
        blocks: HashMap::new(),
        by_pfn: HashMap::new(),
        pinned: HashSet::new(),
        next: 0,
        refuse_pct: 30,
        rng: seed | 1,
        calls: 0,
        injected: 0,
        pinned_refusals: 0,
    };
    let mut held = Held::default();
    // Half of memory in movable blocks, scattered by frees, and a few
    // unmovable pages: contiguous calls meet migrations and refusals.
    let mut live = 0;
    while live < present / 2 {
        let o = Order::new((owner.random() % 5) as u8).unwrap();
        let cpu = CpuId((owner.random() % 2) as u16);
        let pfn = a
            .alloc_on_cpu(cpu, o, AllocFlags::HIGHUSER_MOVABLE)
            .unwrap();
        owner.add(pfn, o);
        live += o.nr_pages().0;
        if owner.random().is_multiple_of(3) {
            let pick = owner.random() as usize;
            let h = owner.nth(pick).unwrap();
            let (p, o) = owner.take(h).unwrap();
            a.free(p, o).unwrap();
            live -= o.nr_pages().0;
        }
        if owner.random().is_multiple_of(64) {
            held.unmovable.push((
                a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap(),
                Order::ZERO,
            ));
        }
    }
    check(&a, &owner, &held, present)?;
    for op in ops {
        CALLS.fetch_add(1, Ordering::Relaxed);
        let digest = a.digest();
        let contig: Option<Result<(), ContigError>> = match op {
            Op::AllocMovable { order, cpu } => {
                let o = Order::new(order).unwrap();
                if let Ok(pfn) = a.alloc_on_cpu(CpuId(cpu), o, AllocFlags::HIGHUSER_MOVABLE) {
                    owner.add(pfn, o);
                }
                None
            }
            Op::AllocUnmovable { order } => {
                let o = Order::new(order).unwrap();
                if let Ok(pfn) = a.alloc(o, AllocFlags::KERNEL) {
                    held.unmovable.push((pfn, o));
                }
                None
            }
            Op::FreeMovable(i) => {
                if let Some((pfn, o)) = owner.nth(i).and_then(|h| owner.take(h)) {
                    a.free_on_cpu(CpuId((i % 2) as u16), pfn, o).unwrap();
                }
                None
            }
            Op::FreeUnmovable(i) => {
                if !held.unmovable.is_empty() {
                    let (pfn, o) = held.unmovable.swap_remove(i % held.unmovable.len());
                    a.free(pfn, o).unwrap();
                }
                None
            }
            Op::Pin(i) => {
                if let Some(h) = owner.nth(i) {
                    owner.pinned.insert(h);
                }
                None
            }
            Op::Unpin(i) => {
                if let Some(h) = owner.nth(i) {
                    owner.pinned.remove(&h);
                }
                None
            }
            Op::Refuse(pct) => {
                owner.refuse_pct = pct;
                None
            }
            Op::Range { at, len } => {
                let (s, e) = (Pfn(at), Pfn(at + len));
                let r = a.alloc_contig_range(s, e, &mut |f, t, o| owner.migrate(f, t, o));
                Some(r.map(|got| held.runs.push((got.start, got.nr_pages.0, None))))
            }
            Op::Pages {
                len,
                align_log,
                boundary,
            } => {
                let c = ContigConstraints {
                    align: PageCount(1 << align_log),
                    boundary: boundary.then_some(PageCount(len.next_power_of_two().max(1024))),
                    ..ContigConstraints::default()
                };
                let r =
                    a.alloc_contig_pages(PageCount(len), &c, &mut |f, t, o| owner.migrate(f, t, o));
                if let Ok(got) = &r {
                    let s = got.start.0;
                    prop_assert_eq!(s % (1 << align_log), 0);
                    if let Some(b) = c.boundary {
                        prop_assert_eq!(s / b.0, (s + len - 1) / b.0);
                    }
                }
                Some(r.map(|got| held.runs.push((got.start, got.nr_pages.0, None))))
            }
            Op::Cma { count, align } => {
                let o = Order::new(align).unwrap();
                let r = a.cma_alloc(0, PageCount(count), o, &mut |f, t, o| {
                    owner.migrate(f, t, o)
                });
                if let Ok(got) = &r {
                    prop_assert!(got.start.0 >= CMA_START);
                    prop_assert!(got.start.0 + count <= CMA_START + CMA_PAGES);
                    prop_assert!(got.start.is_aligned(o));
                }
                Some(r.map(|got| held.runs.push((got.start, got.nr_pages.0, Some(0)))))
            }
            Op::FreeRun { index, split } => {
                if held.runs.is_empty() {
                    None
                } else {
                    let (start, nr, area) = held.runs.swap_remove(index % held.runs.len());
                    let r = match area {
                        Some(area) => a.cma_release(area, start, PageCount(nr)),
                        None => {
                            // In two pieces, the second first.
                            let cut = split % nr;
                            let second =
                                a.free_contig_range(Pfn(start.0 + cut), PageCount(nr - cut));
                            second.and_then(|()| {
                                if cut > 0 {
                                    a.free_contig_range(start, PageCount(cut))
                                } else {
                                    Ok(())
                                }
                            })
                        }
                    };
                    prop_assert!(r.is_ok(), "freeing a held run: {:?}", r);
                    None
                }
            }
            Op::Offline { block, blocks } => {
                let start = Pfn(0x1000 + block * PB);
                let nr = PageCount(blocks * PB);
                let r = a.offline_pages(start, nr, &mut |f, t, o| owner.migrate(f, t, o));
                Some(r.map(|_| held.offline.push((start, nr.0))))
            }
            Op::Online(i) => {
                if held.offline.is_empty() {
                    None
                } else {
                    let (start, nr) = held.offline.swap_remove(i % held.offline.len());
                    let r = a.online_pages(start, PageCount(nr));
                    prop_assert!(r.is_ok(), "onlining an offline range: {:?}", r);
                    None
                }
            }
        };
        if let Some(r) = contig {
            CONTIG_CALLS.fetch_add(1, Ordering::Relaxed);
            match r {
                Ok(()) => {
                    CONTIG_OK.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if refused_up_front(&e) => {
                    prop_assert_eq!(a.digest(), digest, "{:?} changed the allocator", e);
                }
                Err(_) => {}
            }
        }
        check(&a, &owner, &held, present)?;
    }
    MIGRATE_CALLS.fetch_add(owner.calls, Ordering::Relaxed);
    INJECTED.fetch_add(owner.injected, Ordering::Relaxed);
    PINNED.fetch_add(owner.pinned_refusals, Ordering::Relaxed);
    Ok(())
}

#[test]
fn contiguous_calls_with_a_failing_migrator_keep_every_invariant() {
    let cases = std::env::var("CONTIG_FAULT_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48);
    let config = RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    // Deterministic unless CONTIG_FAULT_SEED=random, so the printed
    // figures can be run again.
    let mut runner = if std::env::var("CONTIG_FAULT_SEED").as_deref() == Ok("random") {
        TestRunner::new(config)
    } else {
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
    };
    runner
        .run(
            &(prop::collection::vec(op(), 20..120), any::<u64>()),
            |(ops, seed)| run(ops, seed),
        )
        .unwrap();
    let contig = CONTIG_CALLS.load(Ordering::Relaxed);
    let injected = INJECTED.load(Ordering::Relaxed);
    eprintln!(
        "contig faults: {cases} cases, {} steps, {contig} contiguous calls ({} taken), \
         {} migrations asked, {injected} refused at random, {} refused as pinned",
        CALLS.load(Ordering::Relaxed),
        CONTIG_OK.load(Ordering::Relaxed),
        MIGRATE_CALLS.load(Ordering::Relaxed),
        PINNED.load(Ordering::Relaxed),
    );
    assert!(contig > 0 && injected > 0, "no contiguous call met a fault");
}

/// Many random fillings of a zone with movable allocations only: every
/// `alloc_contig_range` of a random range, and every `alloc_contig_pages`,
/// must succeed when the migrator never refuses.
#[test]
fn only_movable_pages_in_the_way_always_succeeds() {
    let trials = 200;
    let mut served = 0;
    let mut migrated = 0;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..trials {
        let a = machine();
        let mut owner = Owner {
            blocks: HashMap::new(),
            by_pfn: HashMap::new(),
            pinned: HashSet::new(),
            next: 0,
            refuse_pct: 0,
            rng: 1,
            calls: 0,
            injected: 0,
            pinned_refusals: 0,
        };
        // Fill to 30-60% with movable blocks of orders 0..=4, freeing some
        // on the way so the survivors are scattered.
        let target = (16128 * (30 + next() % 31)) / 100;
        let mut live = 0;
        while live < target {
            let o = Order::new((next() % 5) as u8).unwrap();
            let cpu = CpuId((next() % 2) as u16);
            let pfn = a
                .alloc_on_cpu(cpu, o, AllocFlags::HIGHUSER_MOVABLE)
                .unwrap();
            owner.add(pfn, o);
            live += o.nr_pages().0;
            if next().is_multiple_of(3) {
                let h = owner.nth(next() as usize).unwrap();
                let (p, o) = owner.take(h).unwrap();
                a.free(p, o).unwrap();
                live -= o.nr_pages().0;
            }
        }
        // A random range of the Normal zone below the CMA area, or of
        // DMA32 below its hole.
        let (lo, hi) = if next().is_multiple_of(2) {
            (0x3000, 0x4000)
        } else {
            (0x1000, 0x2800)
        };
        let len = 1 + next() % 1500;
        let start = lo + next() % (hi - lo - len);
        let got = a
            .alloc_contig_range(Pfn(start), Pfn(start + len), &mut |f, t, o| {
                owner.migrate(f, t, o)
            })
            .unwrap_or_else(|e| panic!("range {start:#x}+{len}: {e:?}"));
        migrated += got.migrated_pages;
        a.check_invariants().unwrap();
        let pages = a
            .alloc_contig_pages(
                PageCount(1 + next() % 1000),
                &ContigConstraints::default(),
                &mut |f, t, o| owner.migrate(f, t, o),
            )
            .unwrap_or_else(|e| panic!("alloc_contig_pages: {e:?}"));
        a.check_invariants().unwrap();
        a.free_contig_range(got.start, got.nr_pages).unwrap();
        a.free_contig_range(pages.start, pages.nr_pages).unwrap();
        a.check_invariants().unwrap();
        served += 1;
    }
    eprintln!("only movable: {served}/{trials} ranges served, {migrated} pages migrated");
    assert_eq!(served, trials);
    assert!(migrated > 0, "no range needed a migration");
}
