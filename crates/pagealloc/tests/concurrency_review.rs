//! Bugs a review of the new layout (a053f17) found, each demonstrated by a
//! test that failed there and passes since the fix: `LocalLists` readers
//! deadlocking against all-CPU readers, a batched free winning a race it
//! must lose, and a pageblock-aligned CMA area populated into a mixed block.
//! The deadlock tests detect a deadlock with a timeout (a regression would
//! leave the deadlocked threads spinning until the test binary exits).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pagealloc::{
    AllocFlags, Allocator, Config, CpuId, LocalError, MemoryMap, MinFree, Order, PageCount, Pfn,
    ZoneBounds,
};

fn machine(nr_cpus: u16) -> Allocator {
    let config = Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        min_free: MinFree::Kbytes(128),
        nr_cpus,
        ..Config::default()
    };
    let map = MemoryMap::contiguous(Pfn(0x10_0000), PageCount(2048)).unwrap();
    Allocator::new(map, config).unwrap()
}

/// Waits until another thread holds CPU `cpu`'s lists (our try-lock says
/// Busy), releasing at once any lock we happen to get.
fn wait_until_held(a: &Allocator, cpu: CpuId) {
    let start = Instant::now();
    loop {
        match a.local(cpu) {
            Err(LocalError::Busy { .. }) => return,
            Ok(l) => drop(l),
            Err(e) => panic!("{e:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never held");
        thread::yield_now();
    }
}

/// Runs `reader` through a `LocalLists` of CPU 1 while another thread is
/// inside `all` (a reader that takes every CPU's lists in index order) and
/// has got CPU 0's lists. Returns whether the reader finished in time.
fn local_reader_beside(all: fn(&Allocator), reader: fn(&mut pagealloc::LocalLists<'_>)) -> bool {
    let a = Arc::new(machine(2));
    let (held_tx, held_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    {
        let a = Arc::clone(&a);
        thread::spawn(move || {
            let mut l = a.local(CpuId(1)).unwrap();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            reader(&mut l);
            drop(l);
            let _ = done_tx.send(());
        });
    }
    held_rx.recv().unwrap();
    {
        // Takes CPU 0's lists, then waits for CPU 1's (held above).
        let a = Arc::clone(&a);
        thread::spawn(move || all(&a));
    }
    wait_until_held(&a, CpuId(0));
    go_tx.send(()).unwrap();
    done_rx.recv_timeout(Duration::from_secs(5)).is_ok()
}

/// `hold_all(Some(own))` (and `for_each_cpu_lists`, `LocalLists::drain_all`)
/// lock the other CPUs' lists in index order while already holding CPU
/// `own`'s: a lock-order inversion against every `hold_all(None)` reader
/// (`Clone`, `check_invariants`, `nr_allocated_pages`, `digest`) running
/// on another thread, which holds CPU 0 and waits for CPU 1.
#[test]
fn local_lists_check_invariants_beside_check_invariants_finishes() {
    assert!(
        local_reader_beside(
            |a| a.check_invariants().unwrap(),
            |l| l.check_invariants().unwrap()
        ),
        "LocalLists(1)::check_invariants and check_invariants deadlocked"
    );
}

#[test]
fn local_lists_snapshot_beside_clone_finishes() {
    assert!(
        local_reader_beside(|a| drop(a.clone()), |l| drop(l.snapshot())),
        "LocalLists(1)::snapshot and Allocator::clone deadlocked"
    );
}

#[test]
fn local_lists_stats_beside_nr_allocated_pages_finishes() {
    assert!(
        local_reader_beside(
            |a| {
                a.nr_allocated_pages();
            },
            |l| {
                l.stats();
            }
        ),
        "LocalLists(1)::stats and nr_allocated_pages deadlocked"
    );
}

/// `take_over` (pcp/bulk.rs) reads a page's record twice: once for the
/// `is_allocated_of_order` test and again for the value it then swaps
/// from. If a racing free moves the page to a per-CPU list in between,
/// the second read is that `PcpHead` record, `freeing()` of it is the same
/// record, and the compare-and-swap "succeeds": the batched free takes a
/// page that is already free, and both frees of the page report success
/// (the page ends on two lists). a3daaac read the record once.
#[test]
fn racing_double_free_against_free_bulk_never_succeeds_twice() {
    let a = Arc::new(machine(2));
    let page = Arc::new(AtomicU64::new(0));
    let gen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let won = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let delay = Arc::new(AtomicUsize::new(0));
    // The single free, on CPU 1's lists.
    let single = {
        let (a, page, gen, done, won, stop, delay) = (
            Arc::clone(&a),
            Arc::clone(&page),
            Arc::clone(&gen),
            Arc::clone(&done),
            Arc::clone(&won),
            Arc::clone(&stop),
            Arc::clone(&delay),
        );
        thread::spawn(move || {
            let mut seen = 0;
            loop {
                let mut spins = 0u32;
                while gen.load(Ordering::Acquire) == seen {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    spins += 1;
                    if spins > 100_000 {
                        thread::yield_now();
                    }
                }
                seen = gen.load(Ordering::Acquire);
                let pfn = Pfn(page.load(Ordering::Relaxed));
                for _ in 0..delay.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
                let ok = a.free_on_cpu(CpuId(1), pfn, Order::ZERO).is_ok();
                won.store(ok, Ordering::Relaxed);
                done.store(seen, Ordering::Release);
            }
        })
    };
    let start = Instant::now();
    let (mut rounds, mut bulk_wins, mut single_wins) = (0usize, 0usize, 0usize);
    let mut failure = None;
    while start.elapsed() < Duration::from_secs(5) && failure.is_none() {
        let p = a
            .alloc_on_cpu(CpuId(0), Order::ZERO, AllocFlags::KERNEL)
            .unwrap();
        page.store(p.0, Ordering::Relaxed);
        // Sweep the offset between the two frees, either way round.
        let offset = rounds % 96;
        delay.store(offset.min(48), Ordering::Relaxed);
        let g = gen.fetch_add(1, Ordering::AcqRel) + 1;
        for _ in 48..offset {
            std::hint::spin_loop();
        }
        // The batched free, on CPU 0's lists.
        let bulk = a.free_bulk(CpuId(0), &[p]).is_ok();
        let mut spins = 0u32;
        while done.load(Ordering::Acquire) != g {
            spins += 1;
            if spins > 100_000 {
                thread::yield_now();
            }
        }
        let single = won.load(Ordering::Relaxed);
        rounds += 1;
        bulk_wins += bulk as usize;
        single_wins += single as usize;
        match (bulk, single) {
            (true, true) => failure = Some(format!("round {rounds}: both frees of {p} succeeded")),
            (false, false) => {
                failure = Some(format!("round {rounds}: neither free of {p} succeeded"))
            }
            _ => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    single.join().unwrap();
    eprintln!("{rounds} rounds, bulk won {bulk_wins}, single won {single_wins}");
    if let Some(f) = failure {
        let check = a.check_invariants();
        panic!("{f}; check_invariants: {check:?}");
    }
    a.check_invariants().unwrap();
}

/// `mark_cma_areas` accepts any pageblock-aligned area (as `CmaArea`'s docs
/// promise), but `ZoneOps::populate` then adds max-order free blocks typed
/// by their first pageblock only: a one-pageblock CMA area in the upper
/// half of an order-10 block leaves a free block spanning a Movable and a
/// CMA pageblock on the Movable list, and the fresh allocator fails its
/// own invariant 5 (a claim of that block by a fallback would retype the
/// CMA pageblock too).
#[test]
fn a_pageblock_aligned_cma_area_is_populated_per_pageblock_type() {
    use pagealloc::{CmaArea, CmaSupport};
    for start in [0x10_0000u64, 0x10_0200] {
        let config = Config {
            zone_bounds: ZoneBounds::NORMAL_ONLY,
            cma: CmaSupport::Enabled,
            cma_areas: vec![CmaArea {
                start: Pfn(start),
                nr_pages: PageCount(0x200),
                order_per_bit: 0,
            }],
            ..Config::default()
        };
        let map = MemoryMap::contiguous(Pfn(0x10_0000), PageCount(0x1000)).unwrap();
        let a = Allocator::new(map, config).unwrap();
        a.check_invariants()
            .unwrap_or_else(|v| panic!("CMA area at {start:#x}: {v}"));
    }
}
