//! Model check of the engine's concurrency protocols with `shuttle`
//! (docs/model-check.md): each case races two threads over a tiny
//! allocator, and shuttle's random and PCT schedulers choose the
//! interleavings. Under the `model-check` feature every atomic the engine
//! touches and every spin it makes is a scheduling point of the checker
//! (`src/sync.rs`), and the locks are [`ModelLock`], a spinlock over the
//! same atomics. Every schedule ends with the invariant walk and exact
//! page accounting: the blocks the threads hold are allocated, with their
//! orders, and nothing else is.
//!
//! `cargo test -p pagealloc --features model-check --test model_check`;
//! `MODEL_CHECK_SCALE=N` runs N times the schedules,
//! `MODEL_CHECK_ONLY=random|pct` one scheduler, `SHUTTLE_RANDOM_SEED`
//! another seed; a failure names its scheduler and schedule number and
//! prints the schedule for `shuttle::replay`.
#![cfg(feature = "model-check")]

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;
use std::time::Instant;

use lock_api::{GuardSend, RawMutex};
use pagealloc::{
    AllocFlags, Allocator, BlockError, BulkFreeError, Config, Confinement, CpuId,
    HighAtomicReserve, LocalError, MemoryMap, MinFree, Order, Packing, PageCount, PcpMode, Pfn,
    ReportSink, ReportedBlock, ReportingPolicy, ZoneBounds,
};
use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::sync::atomic::{AtomicBool, Ordering};
use shuttle::{thread, Runner};

/// A spinlock over shuttle's atomics: a contended `lock` yields to the
/// checker's scheduler, so every lock handover is a scheduling decision.
/// (`DefaultLock`, the `spin` crate's, uses `core`'s atomics, invisible to
/// the checker.)
pub struct ModelLock(AtomicBool);

// SAFETY: `lock` and `try_lock` return only after this thread's
// compare-and-swap turned the flag from false to true, and only `unlock`
// (called by the holder, as `RawMutex` requires) turns it back, so at most
// one holder at a time; the flag's acquire/release orderings order the
// holders' accesses (shuttle runs every atomic as SeqCst anyway). The
// guard may move to another thread: the flag is not tied to one.
#[allow(unsafe_code)]
unsafe impl RawMutex for ModelLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: ModelLock = ModelLock(AtomicBool::new(false));
    type GuardMarker = GuardSend;

    fn lock(&self) {
        while !self.try_lock() {
            shuttle::hint::spin_loop();
        }
    }

    fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    unsafe fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

type A = Allocator<ModelLock>;

/// Where the tiny machines start (4 GiB: one Normal zone).
const BASE: Pfn = Pfn(0x10_0000);
/// Orders 0..=4; pageblocks of 8 pages, so per-CPU lists cache orders
/// 0..=3 and order 4 always goes to the buddy lists.
const NR_ORDERS: u8 = 5;
const PAGEBLOCK_ORDER: u8 = 3;

/// Schedules per case and scheduler before `MODEL_CHECK_SCALE`, sized so
/// the whole file runs in about a minute (debug build, one case at a
/// time; CI runs it so).
const RANDOM_SCHEDULES: usize = 500;
const PCT_SCHEDULES: usize = 500;
/// PCT's bug depth: how many priority changes a schedule gets.
const PCT_DEPTH: usize = 3;
const SEED: u64 = 0x5eed_0011;

fn order(o: u8) -> Order {
    Order::new(o).unwrap()
}

/// A 2-CPU allocator of `pages` pages with tiny watermarks.
fn machine(pages: u64, pcp: PcpMode, reporting: Option<ReportingPolicy>) -> Arc<A> {
    let config = Config {
        nr_orders: NR_ORDERS,
        pageblock_order: PAGEBLOCK_ORDER,
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        min_free: MinFree::Kbytes(8),
        highatomic: HighAtomicReserve::Disabled,
        nr_cpus: 2,
        pcp,
        reporting,
        ..Config::default()
    };
    let map = MemoryMap::contiguous(BASE, PageCount(pages)).unwrap();
    Arc::new(A::with_lock(map, config).unwrap())
}

fn alloc(a: &A, cpu: u16, o: u8) -> (Pfn, Order) {
    let pfn = a
        .alloc_on_cpu(CpuId(cpu), order(o), AllocFlags::KERNEL)
        .unwrap();
    (pfn, order(o))
}

/// The end of every schedule: the invariant walk, then exact accounting.
/// `held` are the blocks the threads still hold: each must head an
/// allocated block of its order, none may overlap another, and the
/// allocator must count exactly their pages as allocated.
fn settle(a: &A, held: &[(Pfn, Order)]) {
    if let Err(v) = a.check_invariants() {
        panic!("invariant violated: {v:?}");
    }
    let mut pages: Vec<u64> = Vec::new();
    for &(pfn, o) in held {
        match a.allocated_block(pfn) {
            Some((got, _)) if got == o => {}
            other => panic!("held block {pfn:?}/{o:?} reads {other:?}"),
        }
        pages.extend((0..o.nr_pages().0).map(|k| pfn.0 + k));
    }
    let total = pages.len() as u64;
    pages.sort_unstable();
    pages.dedup();
    assert_eq!(
        pages.len() as u64,
        total,
        "two held blocks overlap: {held:?}"
    );
    assert_eq!(a.nr_allocated_pages(), total, "allocated pages != held");
}

/// Runs `case` under the random scheduler, then PCT, and prints how many
/// schedules each explored and how long it took.
fn explore(name: &str, case: fn()) {
    let scale: usize = std::env::var("MODEL_CHECK_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let config = || {
        let mut c = shuttle::Config::new();
        c.silence_warnings = true; // the engine's Relaxed/AcqRel atomics run as SeqCst
        c.stack_size = 1 << 20; // debug builds of the engine's deeper paths
        c
    };
    let only = std::env::var("MODEL_CHECK_ONLY").unwrap_or_default();
    let (random_n, pct_n) = match only.as_str() {
        "random" => (RANDOM_SCHEDULES * scale, 0),
        "pct" => (0, PCT_SCHEDULES * scale),
        _ => (RANDOM_SCHEDULES * scale, PCT_SCHEDULES * scale),
    };
    // One case at a time: the engine's one static atomic (the allocator
    // id counter) is a shuttle atomic under the feature, and those are not
    // safe to touch from two real threads at once (the harness runs tests
    // on several).
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _report = OnPanic;
    let start = Instant::now();
    let random = Runner::new(RandomScheduler::new_from_seed(SEED, random_n), config())
        .run(counted("random", case));
    let mid = Instant::now();
    let pct = Runner::new(
        PctScheduler::new_from_seed(SEED, PCT_DEPTH, pct_n),
        config(),
    )
    .run(counted("pct", case));
    let end = Instant::now();
    eprintln!(
        "model_check {name}: random {random} schedules in {:.2?}, pct(depth {PCT_DEPTH}) {pct} schedules in {:.2?}",
        mid - start,
        end - mid
    );
}

/// Serializes the cases (see [`explore`]).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

std::thread_local! {
    /// The scheduler and number of the schedule running on this test's
    /// thread (shuttle runs a test's schedules on the thread that calls
    /// `Runner::run`).
    static CURRENT: std::cell::Cell<(&'static str, usize)> = const { std::cell::Cell::new(("", 0)) };
}

/// `case`, numbering its schedules in [`CURRENT`].
fn counted(scheduler: &'static str, case: fn()) -> impl Fn() + Send + Sync + 'static {
    let count = std::sync::atomic::AtomicUsize::new(0);
    move || {
        let n = 1 + count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        CURRENT.with(|c| c.set((scheduler, n)));
        case();
    }
}

/// Says which schedule failed (with the seed, enough to run it again)
/// when a failure unwinds through [`explore`].
struct OnPanic;

impl Drop for OnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let (scheduler, n) = CURRENT.with(|c| c.get());
            eprintln!("model_check: failed in {scheduler} schedule #{n} (seed {SEED:#x})");
        }
    }
}

/// Joins a shuttle thread, passing its panic on.
fn join<T>(h: thread::JoinHandle<T>) -> T {
    h.join().unwrap()
}

/// Moves a migrator accepted and refused over all of a case's schedules
/// (plain atomics: counters outside the model, not part of it).
struct Moves {
    moved: AtomicUsize,
    refused: AtomicUsize,
}

impl Moves {
    const fn new() -> Moves {
        Moves {
            moved: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        }
    }
}

/// The owner's migrator, sharing the owner's table under its lock as the
/// `Migrator` contract asks: a block the owner holds is held at its new
/// frame from now on; one it no longer holds (freed first) is refused as
/// busy. Both counted in `moves`.
fn owner_migrator<'a>(
    owner: &'a shuttle::sync::Mutex<Vec<Option<Pfn>>>,
    moves: &'static Moves,
) -> impl FnMut(Pfn, Pfn, Order) -> Result<(), pagealloc::MigrateRefusal> + 'a {
    move |from, to, _order| {
        let mut slots = owner.lock().unwrap();
        match slots.iter_mut().find(|s| **s == Some(from)) {
            Some(slot) => {
                *slot = Some(to);
                moves.moved.fetch_add(1, StdOrdering::Relaxed);
                Ok(())
            }
            None => {
                moves.refused.fetch_add(1, StdOrdering::Relaxed);
                Err(pagealloc::MigrateRefusal::Busy)
            }
        }
    }
}

/// Case 7's migrator's moves (not asserted on).
static CASE7_MOVES: Moves = Moves::new();

// --- (1) two racing frees of one block ------------------------------------

/// Two threads free the same blocks on different CPUs: an order-0 page
/// (per-CPU path) and an order-4 block (buddy path, above the cached
/// orders). Exactly one free of each wins; the other is told
/// `AlreadyFree`.
fn racing_double_free() {
    let a = machine(128, PcpMode::Enabled, None);
    let page = alloc(&a, 0, 0);
    let big = alloc(&a, 0, 4);
    let kept = alloc(&a, 1, 1);
    let frees = |cpu: u16| {
        let a = Arc::clone(&a);
        thread::spawn(move || [page, big].map(|(pfn, o)| a.free_on_cpu(CpuId(cpu), pfn, o)))
    };
    let (t0, t1) = (frees(0), frees(1));
    let (r0, r1) = (join(t0), join(t1));
    for (i, &(pfn, _)) in [page, big].iter().enumerate() {
        match (&r0[i], &r1[i]) {
            (Ok(()), Err(e)) | (Err(e), Ok(())) => {
                assert_eq!(*e, BlockError::AlreadyFree { pfn }, "loser of {pfn:?}")
            }
            other => panic!("frees of {pfn:?}: {other:?} (exactly one must win)"),
        }
    }
    settle(&a, &[kept]);
}

#[test]
fn two_racing_frees_of_one_block() {
    explore("two racing frees", racing_double_free);
}

// --- (2) a free racing a remote drain -------------------------------------

/// CPU 1's lists hold pages; one thread frees and allocates (with a
/// refill) through CPU 1 while another drains every CPU (`drain_all`,
/// which waits for each CPU's lists, then takes the zone lock).
fn free_vs_drain_all() {
    let a = machine(128, PcpMode::Enabled, None);
    // Fill CPU 1's lists a little, then hold blocks to free in the race.
    let warm: Vec<_> = (0..3).map(|_| alloc(&a, 1, 0)).collect();
    let to_free: Vec<_> = [0, 0, 1].iter().map(|&o| alloc(&a, 1, o)).collect();
    let kept = alloc(&a, 0, 2);
    for &(pfn, o) in &warm {
        a.free_on_cpu(CpuId(1), pfn, o).unwrap();
    }
    let worker = {
        let a = Arc::clone(&a);
        let to_free = to_free.clone();
        thread::spawn(move || {
            a.free_on_cpu(CpuId(1), to_free[0].0, to_free[0].1).unwrap();
            // Order 2 is not on the lists yet: a refill, which takes the
            // zone lock with CPU 1's lists held.
            let got = alloc(&a, 1, 2);
            a.free_on_cpu(CpuId(1), to_free[1].0, to_free[1].1).unwrap();
            a.free_on_cpu(CpuId(1), to_free[2].0, to_free[2].1).unwrap();
            got
        })
    };
    let drainer = {
        let a = Arc::clone(&a);
        thread::spawn(move || a.drain_all())
    };
    let got = join(worker);
    join(drainer);
    settle(&a, &[kept, got]);
    // Whatever the drain missed is still on the lists, and drains now.
    a.drain_all();
    assert_eq!(a.nr_pcp_pages(), 0);
    settle(&a, &[kept, got]);
}

#[test]
fn a_free_racing_a_remote_drain() {
    explore("free vs drain_all", free_vs_drain_all);
}

// --- (3) free_bulk with a duplicate racing a single free -----------------

/// One thread frees a batch that names a page twice (so the batch must be
/// refused and change nothing); another frees one of its pages on its
/// own. The single free may win, or lose to the batch's transient mark
/// (`AlreadyFree`), but the batch never frees anything.
fn bulk_with_duplicate_vs_single_free() {
    let a = machine(128, PcpMode::Enabled, None);
    let pages: Vec<_> = (0..3).map(|_| alloc(&a, 0, 0)).collect();
    let p = |i: usize| pages[i].0;
    let batch = [p(0), p(1), p(2), p(0)];
    let bulk = {
        let a = Arc::clone(&a);
        thread::spawn(move || a.free_bulk(CpuId(0), &batch))
    };
    let single = {
        let a = Arc::clone(&a);
        let pfn = p(1);
        thread::spawn(move || a.free_on_cpu(CpuId(1), pfn, Order::ZERO))
    };
    let (rb, rs) = (join(bulk), join(single));
    match rb {
        // The duplicate (index 3), or the page the single free took first.
        Err(BulkFreeError::Entry { index: 3, .. }) => {}
        Err(BulkFreeError::Entry { index: 1, error }) => {
            assert!(rs.is_ok(), "batch lost page 1 to a free that failed");
            assert_eq!(error, BlockError::AlreadyFree { pfn: p(1) });
        }
        other => panic!("batch with a duplicate: {other:?}"),
    }
    let mut held = pages.clone();
    match rs {
        Ok(()) => held.retain(|&(pfn, _)| pfn != p(1)),
        Err(e) => assert_eq!(e, BlockError::AlreadyFree { pfn: p(1) }),
    }
    settle(&a, &held);
}

#[test]
fn free_bulk_with_a_duplicate_racing_a_single_free() {
    explore("free_bulk dup vs free", bulk_with_duplicate_vs_single_free);
}

// --- (4) an allocation's failure-path drain racing a LocalLists holder ----

/// CPU 1's lists hold pages, and one thread holds them as `LocalLists`
/// for a few calls while another exhausts memory on CPU 0: its failing
/// allocations drain other CPUs' lists, trying CPU 1's lock for a while.
fn failure_drain_vs_local_lists() {
    let a = machine(64, PcpMode::Enabled, None);
    let warm: Vec<_> = (0..4).map(|_| alloc(&a, 1, 0)).collect();
    let mine = alloc(&a, 1, 0);
    for &(pfn, o) in &warm {
        a.free_on_cpu(CpuId(1), pfn, o).unwrap();
    }
    let holder = {
        let a = Arc::clone(&a);
        thread::spawn(move || {
            let mut l = loop {
                match a.local(CpuId(1)) {
                    Ok(l) => break l,
                    // The drain holds the lists right now.
                    Err(LocalError::Busy { .. }) => thread::yield_now(),
                    Err(e) => panic!("{e:?}"),
                }
            };
            // Order 1 is not on CPU 1's lists: it comes from the zone, and
            // when memory has run out its failure path drains CPU 0's
            // lists, which the other thread may hold while it drains ours.
            let got = l.alloc(order(1), AllocFlags::KERNEL).ok();
            l.free(mine.0, mine.1).unwrap();
            drop(l);
            got
        })
    };
    let hog = {
        let a = Arc::clone(&a);
        thread::spawn(move || {
            let mut got = Vec::new();
            while let Ok(pfn) = a.alloc_on_cpu(CpuId(0), Order::ZERO, AllocFlags::KERNEL) {
                got.push((pfn, Order::ZERO));
            }
            got
        })
    };
    let from_local = join(holder);
    let mut held = join(hog);
    held.extend(from_local.map(|pfn| (pfn, order(1))));
    settle(&a, &held);
}

#[test]
fn a_failure_path_drain_racing_a_local_lists_holder() {
    explore("failure drain vs LocalLists", failure_drain_vs_local_lists);
}

// --- (5) split_page racing a free of a piece -------------------------------

/// One thread splits two order-2 blocks; the other frees a piece of the
/// first (valid only once split) and the whole of the second (valid only
/// until split). Exactly one of split and whole free wins.
fn split_vs_free_piece() {
    let a = machine(128, PcpMode::Enabled, None);
    let x = alloc(&a, 0, 2);
    let y = alloc(&a, 0, 2);
    let splitter = {
        let a = Arc::clone(&a);
        thread::spawn(move || (a.split_page(x.0, x.1), a.split_page(y.0, y.1)))
    };
    let freer = {
        let a = Arc::clone(&a);
        thread::spawn(move || {
            let piece = a.free_on_cpu(CpuId(1), Pfn(x.0 .0 + 1), Order::ZERO);
            let whole = a.free_on_cpu(CpuId(1), y.0, y.1);
            (piece, whole)
        })
    };
    let (sx, sy) = join(splitter);
    let (piece, whole) = join(freer);
    sx.unwrap();
    let mut held: Vec<(Pfn, Order)> = (0..4).map(|k| (Pfn(x.0 .0 + k), Order::ZERO)).collect();
    match piece {
        Ok(()) => held.retain(|&(pfn, _)| pfn.0 != x.0 .0 + 1),
        Err(e) => assert_eq!(
            e,
            BlockError::NotAllocated {
                pfn: Pfn(x.0 .0 + 1)
            }
        ),
    }
    match (sy, whole) {
        (Ok(()), Err(e)) => {
            assert_eq!(
                e,
                BlockError::WrongOrder {
                    pfn: y.0,
                    order: y.1,
                    allocated: Order::ZERO
                }
            );
            held.extend((0..4).map(|k| (Pfn(y.0 .0 + k), Order::ZERO)));
        }
        (Err(e), Ok(())) => assert_eq!(e, BlockError::AlreadyFree { pfn: y.0 }),
        other => panic!("split vs free of {y:?}: {other:?} (exactly one must win)"),
    }
    settle(&a, &held);
}

#[test]
fn split_page_racing_a_free_of_a_piece() {
    explore("split_page vs free", split_vs_free_piece);
}

// --- (6) a reporting pass racing frees and allocations nearby -------------

/// A sink that checks, while the blocks are in flight, that none of them
/// is allocated, and counts what it was given.
struct CheckingSink {
    a: Arc<A>,
    blocks: u64,
}

impl ReportSink for CheckingSink {
    type Error = ();
    fn report(&mut self, batch: &[ReportedBlock]) -> Result<(), ()> {
        for b in batch {
            assert_eq!(
                self.a.allocated_block(b.pfn),
                None,
                "reported {b:?} is allocated"
            );
        }
        self.blocks += batch.len() as u64;
        for _ in 0..3 {
            thread::yield_now(); // the host takes its time
        }
        Ok(())
    }
}

/// One thread runs reporting passes (order 2, two blocks a batch) while
/// another frees blocks whose buddies are free or in flight, and
/// allocates beside them (per-CPU lists off, so every free merges at
/// once under the zone lock).
fn report_pass_vs_neighbours() {
    let policy = ReportingPolicy {
        order: Some(2),
        capacity: 2,
        budget_fraction: 1,
    };
    let a = machine(128, PcpMode::Disabled, Some(policy));
    // x, y and z split one order-4 block: y is x's buddy, z their
    // order-3 buddy (asserted).
    let x = alloc(&a, 0, 2);
    let y = alloc(&a, 0, 2);
    let z = alloc(&a, 0, 3);
    let kept = alloc(&a, 0, 1);
    assert_eq!(
        (y.0 .0, z.0 .0),
        (x.0 .0 ^ 4, x.0 .0 ^ 8),
        "x, y, z are not buddies"
    );
    let reporter = {
        let a = Arc::clone(&a);
        thread::spawn(move || {
            let mut sink = CheckingSink {
                a: Arc::clone(&a),
                blocks: 0,
            };
            for _ in 0..2 {
                a.report_pass(&mut sink).unwrap();
            }
            sink.blocks
        })
    };
    let worker = {
        let a = Arc::clone(&a);
        thread::spawn(move || {
            // y merges with x if x is still free, never while x is in
            // flight; then z with the merged block.
            a.free_on_cpu(CpuId(1), x.0, x.1).unwrap();
            a.free_on_cpu(CpuId(1), y.0, y.1).unwrap();
            let b = alloc(&a, 1, 2);
            a.free_on_cpu(CpuId(1), z.0, z.1).unwrap();
            let c = alloc(&a, 1, 3);
            [b, c]
        })
    };
    let reported = join(reporter);
    let [b, c] = join(worker);
    assert!(reported > 0, "nothing was reported");
    settle(&a, &[kept, b, c]);
    let info = a.reporting_info().unwrap();
    assert_eq!(info.zones[0].in_flight, 0);
}

#[test]
fn a_reporting_pass_racing_frees_and_allocations_of_neighbours() {
    explore("report_pass vs neighbours", report_pass_vs_neighbours);
}

// --- (7) a contiguous allocation racing the owner's frees -----------------

/// One thread takes the first two pageblocks as a contiguous run
/// (`alloc_contig_range`: isolate, drain, migrate, take) while the owner
/// of movable pages in them frees some on CPU 1 and allocates more. The
/// owner and the migrator share the owner's table under one lock, as the
/// `Migrator` contract asks (a block is never freed while it migrates, and
/// a block the owner no longer holds is refused). Only movable pages are
/// in the way and memory is plentiful, so the run must always be taken,
/// every racing free landing in the isolated range or on a drained list.
fn contig_vs_owner_frees() {
    let a = machine(128, PcpMode::Enabled, None);
    let movable = |a: &A, cpu: u16| {
        a.alloc_on_cpu(CpuId(cpu), Order::ZERO, AllocFlags::HIGHUSER_MOVABLE)
            .unwrap()
    };
    // The owner's slots: each a block it holds (and may see moved).
    let slots: Vec<Option<Pfn>> = (0..6).map(|_| Some(movable(&a, 1))).collect();
    let range = (BASE, Pfn(BASE.0 + 16));
    assert!(
        slots.iter().flatten().any(|p| *p < range.1),
        "no owned page lies in the range"
    );
    let owner = Arc::new(shuttle::sync::Mutex::new(slots));
    let taker = {
        let a = Arc::clone(&a);
        let owner = Arc::clone(&owner);
        thread::spawn(move || {
            let mut migrator = owner_migrator(&owner, &CASE7_MOVES);
            a.alloc_contig_range(range.0, range.1, &mut migrator)
        })
    };
    let freer = {
        let a = Arc::clone(&a);
        let owner = Arc::clone(&owner);
        thread::spawn(move || {
            for i in [0, 2, 4] {
                let mut slots = owner.lock().unwrap();
                if let Some(pfn) = slots[i].take() {
                    a.free_on_cpu(CpuId(1), pfn, Order::ZERO).unwrap();
                }
            }
            let extra = movable(&a, 1);
            owner.lock().unwrap().push(Some(extra));
        })
    };
    let got = join(taker);
    join(freer);
    let got = match got {
        Ok(got) => got,
        Err(e) => panic!("the range holds only movable pages, yet: {e:?}"),
    };
    let held: Vec<(Pfn, Order)> = owner
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .map(|&p| (p, Order::ZERO))
        .collect();
    for &(p, _) in &held {
        assert!(p >= range.1, "owned page {p:?} still in the run");
    }
    // The run's pages are allocated but no block's: account for them.
    assert_eq!(a.nr_allocated_pages(), held.len() as u64 + 16);
    a.free_contig_range(got.start, got.nr_pages).unwrap();
    settle(&a, &held);
}

#[test]
fn a_contiguous_allocation_racing_the_owners_frees() {
    explore("alloc_contig_range vs owner frees", contig_vs_owner_frees);
}

// --- (8) compaction racing the owner's frees and allocations --------------

/// One thread compacts the zone (`compact_memory`: the scanners, the
/// migrator without a lock, destinations taken from the free lists) while
/// the owner frees pages on CPU 1 and allocates more. Owner and migrator
/// share the owner's table under one lock. Nothing may be lost: at the end
/// every owned block is allocated at its (possibly new) frame, and the
/// allocator counts exactly the owned pages.
fn compaction_vs_owner() {
    let a = machine(128, PcpMode::Enabled, None);
    let movable = |a: &A, cpu: u16| {
        a.alloc_on_cpu(CpuId(cpu), Order::ZERO, AllocFlags::HIGHUSER_MOVABLE)
            .unwrap()
    };
    // A checkerboard in the low pages: owned pages with free ones between
    // (all allocated first: a page freed at once would be the next one
    // allocated, and the owned pages would lie side by side).
    let pages: Vec<Pfn> = (0..24).map(|_| movable(&a, 1)).collect();
    let mut slots: Vec<Option<Pfn>> = Vec::new();
    for (k, &p) in pages.iter().enumerate() {
        if k % 2 == 0 {
            a.free_on_cpu(CpuId(1), p, Order::ZERO).unwrap();
        } else {
            slots.push(Some(p));
        }
    }
    // The holes go to the buddy lists: order-0 free blocks in the
    // checkerboard's pageblocks are the only destinations the free
    // scanner takes (whole free pageblocks are not, as in Linux).
    a.drain_all();
    let owner = Arc::new(shuttle::sync::Mutex::new(slots));
    let compactor = {
        let a = Arc::clone(&a);
        let owner = Arc::clone(&owner);
        thread::spawn(move || {
            let mut migrator = owner_migrator(&owner, &CASE8_MOVES);
            a.compact_memory(&mut migrator)
        })
    };
    let worker = {
        let a = Arc::clone(&a);
        let owner = Arc::clone(&owner);
        thread::spawn(move || {
            for i in [0, 3] {
                let mut slots = owner.lock().unwrap();
                if let Some(pfn) = slots[i].take() {
                    a.free_on_cpu(CpuId(1), pfn, Order::ZERO).unwrap();
                }
            }
            let extra = movable(&a, 1);
            owner.lock().unwrap().push(Some(extra));
        })
    };
    join(compactor);
    join(worker);
    let held: Vec<(Pfn, Order)> = owner
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .map(|&p| (p, Order::ZERO))
        .collect();
    settle(&a, &held);
}

/// Migrations case 8's migrator accepted and refused over all its
/// schedules.
static CASE8_MOVES: Moves = Moves::new();

#[test]
fn compaction_racing_the_owners_frees_and_allocations() {
    explore("compact_memory vs owner", compaction_vs_owner);
    // The case must exercise what it is about: blocks moved, and moves
    // refused because the owner freed the block first (the race).
    let moved = CASE8_MOVES.moved.load(StdOrdering::Relaxed);
    let refused = CASE8_MOVES.refused.load(StdOrdering::Relaxed);
    assert!(moved > 0 && refused > 0, "moved {moved}, refused {refused}");
}

// --- (9) confinement's evacuation racing the owner's frees -----------------

/// One thread allocates unmovable pages through `alloc_confining` under
/// confinement on a zone where no pageblock is wholly free (every other
/// page owned and movable), so the area grows by emptying movable
/// pageblocks through the owner's migrator; the owner frees pages on CPU 1
/// and allocates one more meanwhile. Owner and migrator share the owner's
/// table under one lock. Nothing may be lost: every owned block and every
/// unmovable page is allocated where it should be, no unmovable page lies
/// in a movable pageblock unless a fallback was counted, and the
/// allocator counts exactly those pages.
fn evacuation_vs_owner() {
    evacuation_vs_owner_under(Packing::Off, Confinement::LowEnd, &CASE9);
}

/// What one evacuation case counts over its schedules: pageblocks
/// emptied, schedules whose placement check ran (no fallback excused
/// it), and its migrator's moves.
struct EvacuationCounts {
    evacuations: AtomicUsize,
    checked: AtomicUsize,
    moves: Moves,
}

impl EvacuationCounts {
    const fn new() -> EvacuationCounts {
        EvacuationCounts {
            evacuations: AtomicUsize::new(0),
            checked: AtomicUsize::new(0),
            moves: Moves::new(),
        }
    }

    /// The exploration must have emptied pageblocks, refused moves (the
    /// owner freed first), and checked the placement in some schedule.
    fn assert_exercised(&self) {
        let evacuated = self.evacuations.load(StdOrdering::Relaxed);
        let refused = self.moves.refused.load(StdOrdering::Relaxed);
        let checked = self.checked.load(StdOrdering::Relaxed);
        assert!(
            evacuated > 0 && refused > 0 && checked > 0,
            "evacuated {evacuated}, refused {refused}, placement checked {checked}"
        );
    }
}

/// Case 9 under `packing` and `confinement`, counting into `counts`. A
/// kernel page outside an unmovable pageblock must have been put there by
/// a fallback: a counted confined fallback under confinement, a
/// fragmenting steal under small-order packing (which the worker's movable
/// allocation may also make: such schedules skip the check, and at least
/// one schedule must not).
fn evacuation_vs_owner_under(
    packing: Packing,
    confinement: Confinement,
    counts: &'static EvacuationCounts,
) {
    let (evacuations, checked, moves) = (&counts.evacuations, &counts.checked, &counts.moves);
    let config = Config {
        nr_orders: NR_ORDERS,
        pageblock_order: PAGEBLOCK_ORDER,
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        min_free: MinFree::Kbytes(8),
        highatomic: HighAtomicReserve::Disabled,
        nr_cpus: 2,
        packing,
        confinement,
        ..Config::default()
    };
    let map = MemoryMap::contiguous(BASE, PageCount(64)).unwrap();
    let a = Arc::new(A::with_lock(map, config).unwrap());
    let movable =
        |a: &A, cpu: u16| a.alloc_on_cpu(CpuId(cpu), Order::ZERO, AllocFlags::HIGHUSER_MOVABLE);
    let mut pages = Vec::new();
    while let Ok(p) = movable(&a, 1) {
        pages.push(p);
    }
    let mut slots: Vec<Option<Pfn>> = Vec::new();
    for p in pages {
        if p.0 % 2 == 0 {
            a.free_on_cpu(CpuId(1), p, Order::ZERO).unwrap();
        } else {
            slots.push(Some(p));
        }
    }
    a.drain_all();
    // Lowest first: the worker frees pages of the second pageblock, the
    // one the grower empties after the first fills up.
    slots.sort();
    let owner = Arc::new(shuttle::sync::Mutex::new(slots));
    let grower = {
        let a = Arc::clone(&a);
        let owner = Arc::clone(&owner);
        thread::spawn(move || {
            let mut migrator = owner_migrator(&owner, moves);
            (0..10)
                .filter_map(|_| {
                    a.alloc_confining(CpuId(0), Order::ZERO, AllocFlags::KERNEL, &mut migrator)
                        .ok()
                })
                .collect::<Vec<Pfn>>()
        })
    };
    let worker = {
        let a = Arc::clone(&a);
        let owner = Arc::clone(&owner);
        thread::spawn(move || {
            for i in [4, 5, 6] {
                let mut slots = owner.lock().unwrap();
                if let Some(pfn) = slots[i].take() {
                    a.free_on_cpu(CpuId(1), pfn, Order::ZERO).unwrap();
                }
            }
            if let Ok(extra) = movable(&a, 1) {
                owner.lock().unwrap().push(Some(extra));
            }
        })
    };
    let kernel = join(grower);
    join(worker);
    let stats = a.stats();
    evacuations.fetch_add(stats.confined_evacuations as usize, StdOrdering::Relaxed);
    assert_eq!(kernel.len(), 10, "memory is plentiful: {stats:?}");
    let zone = &a.zones()[0];
    let fell_back = match confinement {
        Confinement::LowEnd => stats.confined_fallbacks > 0,
        Confinement::Off => stats.extfrag_fragmenting > 0,
    };
    if !fell_back {
        checked.fetch_add(1, StdOrdering::Relaxed);
        for &p in &kernel {
            assert_eq!(
                zone.block_migratetype(p),
                Some(pagealloc::MigrateType::Unmovable),
                "{p:?} without a fallback: {stats:?}"
            );
        }
    }
    let mut held: Vec<(Pfn, Order)> = owner
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .map(|&p| (p, Order::ZERO))
        .collect();
    held.extend(kernel.iter().map(|&p| (p, Order::ZERO)));
    settle(&a, &held);
}

/// Case 9's counts over all its schedules.
static CASE9: EvacuationCounts = EvacuationCounts::new();

/// Case 11: case 9 under small-order packing instead of confinement: the
/// growing side's first attempt takes the packed source (owned
/// pageblocks, fullest first, then a wholly free one) under the zone
/// lock, where case 9's takes the confined one.
fn packing_evacuation_vs_owner() {
    evacuation_vs_owner_under(Packing::SmallOrders, Confinement::Off, &CASE11);
}

/// Case 11's counts over all its schedules.
static CASE11: EvacuationCounts = EvacuationCounts::new();

#[test]
fn packing_evacuation_racing_the_owners_frees() {
    explore(
        "packed alloc_confining vs owner",
        packing_evacuation_vs_owner,
    );
    CASE11.assert_exercised();
}

#[test]
fn confinement_evacuation_racing_the_owners_frees() {
    explore("alloc_confining vs owner", evacuation_vs_owner);
    // The case must exercise evacuation, and the race with the owner.
    CASE9.assert_exercised();
}

// --- (10) borrowed link slots: owners' frees racing buddy-list traffic ----

/// An order-0 free block keeps its back link in its buddy page's link slot
/// (`engine/page.rs`), written under the zone lock while the buddy is
/// allocated and owned by someone else. Here every even page of a run
/// sits alone on the buddy list and its odd buddy is held: one thread
/// frees buddies through CPU 1 (a compare-and-swap on the hot byte and a
/// magazine push, which must not touch the slot) and allocates again;
/// the other allocates through CPU 0 (refills that unlink even pages and
/// rewrite their neighbours' back links, in the held pages' slots) and
/// drains every CPU (merges that read the back links the slots hold).
/// The invariant walk checks every list's back links.
fn borrowed_slots_vs_owner_frees() {
    let a = machine(64, PcpMode::Enabled, None);
    let mut pages = Vec::new();
    while let Ok(p) = a.alloc_on_cpu(CpuId(0), Order::ZERO, AllocFlags::KERNEL) {
        pages.push(p);
    }
    let mut odd = Vec::new();
    for p in pages {
        if p.0 % 2 == 0 {
            a.free_on_cpu(CpuId(0), p, Order::ZERO).unwrap();
        } else {
            odd.push(p);
        }
    }
    a.drain_all();
    // The even pages are order-0 free blocks on the buddy list (their
    // buddies held), each with its back link in a held page's slot.
    let lone = a.zones()[0].nr_free_blocks_of_order(Order::ZERO);
    assert!(
        lone >= 8 && odd.len() >= 8,
        "{lone} lone pages, {} held",
        odd.len()
    );
    odd.sort();
    let (freed, kept) = odd.split_at(3);
    let owner = {
        let a = Arc::clone(&a);
        let freed = freed.to_vec();
        thread::spawn(move || {
            for &p in &freed {
                a.free_on_cpu(CpuId(1), p, Order::ZERO).unwrap();
            }
            alloc(&a, 1, 0)
        })
    };
    let refiller = {
        let a = Arc::clone(&a);
        thread::spawn(move || {
            let got = [alloc(&a, 0, 0), alloc(&a, 0, 0)];
            a.drain_all();
            got
        })
    };
    let mut held = vec![join(owner)];
    held.extend(join(refiller));
    held.extend(kept.iter().map(|&p| (p, Order::ZERO)));
    settle(&a, &held);
    a.drain_all();
    settle(&a, &held);
}

#[test]
fn borrowed_link_slots_racing_the_owners_frees() {
    explore(
        "borrowed link slots vs owner",
        borrowed_slots_vs_owner_frees,
    );
}
