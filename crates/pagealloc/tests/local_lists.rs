//! [`LocalLists`]: one CPU's per-CPU lists held across many calls.
//!
//! * `held_lists_and_ordinary_calls_under_remote_drains`: three threads, each
//!   on its own CPU, alternate runs of work through a held `LocalLists`
//!   (single allocations of orders 0..=3 and 9, frees, bulk allocations and
//!   frees, frees of pages other threads handed over, ordinary calls on the
//!   held CPU, drains of the held lists) with runs through the ordinary
//!   per-call API, while a fourth thread keeps calling `drain_all`,
//!   `drain_local` and `stats`, which wait for the holders. Nothing
//!   deadlocks; at quiesce the invariants hold and every page is accounted
//!   for; after freeing everything and draining, the free lists are exactly
//!   those of a fresh allocator.
//! * `local_is_exclusive_and_names_its_cpu`: a held CPU answers `LocalError::Busy`
//!   (to any thread) until the holder drops it, other CPUs stay available,
//!   a missing CPU is `InvalidCpu`, and a remote `drain_all` waits for the
//!   holder.
//! * `local_without_per_cpu_lists_uses_the_buddy_lists`: with
//!   `PcpMode::Disabled` every call through a `LocalLists` goes straight to
//!   the buddy lists, page for page, and its lists stay empty.
//! * `ordinary_calls_on_a_held_cpu_use_the_buddy_lists`: while CPU 0 is held,
//!   `alloc_on_cpu`, `free_on_cpu`, `alloc_bulk` and `free_bulk` on CPU 0
//!   still work, through the buddy lists (the held lists do not change), and
//!   a double free through either path is refused with every page record,
//!   counter and report unchanged.
//! * `racing_local_double_frees_fail_exactly_once`: two threads, each holding
//!   its own CPU's lists, free the same block at the same moment, 2,000
//!   times, singly or one of them as a batch: exactly one free succeeds, the
//!   other fails naming the block, and the invariants hold after every
//!   round; the loser is told `AlreadyFree`. The same under oversubscribed
//!   cores (`racing_local_double_free_is_named_a_double_free`), where a
//!   racer is often preempted mid-drain: the error a lost race gets is
//!   settled under the zone lock, so a block being drained is never misnamed
//!   `NotAllocated` (it was, before that fix, in about every other run).
//! * `local_drain_empties_the_held_lists`: `LocalLists::drain` returns every
//!   page on the held CPU's lists, of every zone, to the buddy lists, and
//!   leaves other CPUs' lists alone.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Duration;

use common::{range, Census, Snapshot};
use pagealloc::{
    AllocError, AllocFlags, Allocator, BlockError, BulkFreeError, Config, CpuId, InvalidCpu,
    LocalError, LocalLists, MemoryMap, MigrateType, Order, PageCount, PcpMode, Pfn, ZoneBounds,
};

fn order(n: u8) -> Order {
    Order::new(n).unwrap()
}

/// 24 MiB of DMA32 with a hole at 0x1800..0x1a00 and 40 MiB of Normal, in
/// small zones so the load reaches the watermarks.
fn machine(nr_cpus: u16, pcp: PcpMode) -> Allocator {
    let config = Config {
        nr_cpus,
        pcp,
        zone_bounds: ZoneBounds {
            dma_end_bytes: None,
            dma32_end_bytes: Some(32 << 20),
            movable_start_bytes: None,
        },
        ..Config::default()
    };
    let map = MemoryMap::new([
        range(0, 0x100, 0x1800),
        range(0, 0x1a00, 0x2000),
        range(0, 0x2000, 0x4800),
    ])
    .unwrap();
    Allocator::new(map, config).unwrap()
}

/// One DMA32 zone of 32 MiB, for tests that walk the invariants often.
fn small_machine(nr_cpus: u16) -> Allocator {
    let config = Config {
        nr_cpus,
        ..Config::default()
    };
    let map = MemoryMap::contiguous(Pfn(0x1000), PageCount(8192)).unwrap();
    Allocator::new(map, config).unwrap()
}

/// One block a thread holds.
type Held = (Pfn, Order);

/// What a stress worker did, to prove the test exercised something.
#[derive(Default, Debug)]
struct Tally {
    local_runs: u64,
    plain_runs: u64,
    /// `local()` found the lists held by the drainer.
    busy: u64,
    local_allocs: u64,
    local_frees: u64,
    /// Frees of blocks another thread allocated.
    handed_over_frees: u64,
    /// Ordinary calls on the CPU whose lists this thread held.
    calls_past_held_lists: u64,
    local_drained: u64,
    alloc_failures: u64,
}

/// One stress thread: its CPU, its blocks and what it counted.
struct Worker<'a> {
    a: &'a Allocator,
    cpu: CpuId,
    rng: common::XorShift,
    held: Vec<Held>,
    shared: &'a Mutex<Vec<Held>>,
    tally: Tally,
}

impl Worker<'_> {
    fn run(&mut self, runs: usize) {
        for run in 0..runs {
            let len = 1 + self.rng.next() % 40;
            if run % 2 == 0 {
                // Borrows the allocator, not the worker; retries while a
                // drain holds the lists.
                let a = self.a;
                let mut lists = loop {
                    match a.local(self.cpu) {
                        Ok(lists) => break lists,
                        Err(LocalError::Busy { cpu }) => {
                            assert_eq!(cpu, self.cpu.0);
                            self.tally.busy += 1;
                            thread::yield_now();
                        }
                        Err(e) => panic!("local({:?}): {e:?}", self.cpu),
                    }
                };
                assert_eq!(lists.cpu(), self.cpu);
                for _ in 0..len {
                    self.step(Some(&mut lists));
                }
                drop(lists);
                self.tally.local_runs += 1;
            } else {
                for _ in 0..len {
                    self.step(None);
                }
                self.tally.plain_runs += 1;
            }
        }
    }

    /// One operation, through `lists` if held, else the ordinary calls.
    fn step(&mut self, mut lists: Option<&mut LocalLists<'_>>) {
        let (a, cpu) = (self.a, self.cpu);
        let r = self.rng.next();
        let flags = match r % 4 {
            0 => AllocFlags::KERNEL,
            1 => AllocFlags::KERNEL_RECLAIMABLE,
            _ => AllocFlags::HIGHUSER_MOVABLE,
        };
        let pick = (r >> 16) as usize;
        match (r >> 8) % 16 {
            0..=6 => {
                let o = order([0, 0, 0, 1, 2, 3, 9][pick % 7]);
                let got = match lists.as_deref_mut() {
                    Some(l) => l.alloc(o, flags),
                    None => a.alloc_on_cpu(cpu, o, flags),
                };
                match got {
                    Ok(pfn) => {
                        assert!(pfn.is_aligned(o), "{pfn} not aligned to {o}");
                        self.held.push((pfn, o));
                        if lists.is_some() {
                            self.tally.local_allocs += 1;
                        }
                    }
                    Err(AllocError::NoMemory { order: got }) => {
                        assert_eq!(got, o);
                        self.tally.alloc_failures += 1;
                    }
                    Err(e) => panic!("alloc({o}, {flags:?}) on {cpu:?}: {e:?}"),
                }
            }
            7 => {
                let mut batch = [Pfn(0); 32];
                let want = 1 + pick % batch.len();
                let got = match lists.as_deref_mut() {
                    Some(l) => l.alloc_bulk(flags, &mut batch[..want]),
                    None => a.alloc_bulk(cpu, flags, &mut batch[..want]),
                };
                match got {
                    Ok(got) => {
                        assert!(got <= want);
                        self.held
                            .extend(batch[..got].iter().map(|&p| (p, Order::ZERO)));
                    }
                    Err(AllocError::NoMemory { .. }) => self.tally.alloc_failures += 1,
                    Err(e) => panic!("alloc_bulk on {cpu:?}: {e:?}"),
                }
            }
            8 => {
                // Hand some blocks to other threads.
                let n = self.held.len().min(8);
                let given: Vec<Held> = self.held.drain(..n).collect();
                self.shared.lock().unwrap().extend(given);
            }
            9 => {
                // Free what others handed over, on this CPU.
                let taken: Vec<Held> = std::mem::take(&mut *self.shared.lock().unwrap());
                for (pfn, o) in taken {
                    let freed = match lists.as_deref_mut() {
                        Some(l) => l.free(pfn, o),
                        None => a.free_on_cpu(cpu, pfn, o),
                    };
                    freed.unwrap_or_else(|e| panic!("free({pfn}, {o}) on {cpu:?}: {e}"));
                    self.tally.handed_over_frees += 1;
                }
            }
            10 => {
                let singles: Vec<Pfn> = self
                    .held
                    .iter()
                    .filter(|h| h.1 == Order::ZERO)
                    .take(1 + pick % 16)
                    .map(|h| h.0)
                    .collect();
                self.held
                    .retain(|h| !(h.1 == Order::ZERO && singles.contains(&h.0)));
                let freed = match lists.as_deref_mut() {
                    Some(l) => l.free_bulk(&singles),
                    None => a.free_bulk(cpu, &singles),
                };
                freed.unwrap_or_else(|e| panic!("free_bulk on {cpu:?}: {e}"));
            }
            11 => match lists.as_deref_mut() {
                Some(l) => {
                    let before = l.nr_pages();
                    assert_eq!(l.drain(), before, "drain returns what was on the lists");
                    assert_eq!(l.nr_pages(), 0);
                    self.tally.local_drained += before;
                }
                None => {
                    // Waits for the drainer if it holds the lists.
                    a.drain_local(cpu).unwrap();
                }
            },
            12 => {
                let Some(l) = lists.as_deref_mut() else {
                    return;
                };
                // The ordinary calls find this CPU's lists held and go to
                // the buddy lists: the held lists do not change.
                let cached = l.nr_pages();
                match a.alloc_on_cpu(cpu, Order::ZERO, flags) {
                    Ok(pfn) => self.held.push((pfn, Order::ZERO)),
                    Err(AllocError::NoMemory { .. }) => self.tally.alloc_failures += 1,
                    Err(e) => panic!("alloc_on_cpu({cpu:?}) past held lists: {e:?}"),
                }
                if !self.held.is_empty() {
                    let (pfn, o) = self.held.swap_remove(pick % self.held.len());
                    a.free_on_cpu(cpu, pfn, o)
                        .unwrap_or_else(|e| panic!("free_on_cpu({pfn}, {o}): {e}"));
                }
                assert_eq!(l.nr_pages(), cached, "an ordinary call used held lists");
                self.tally.calls_past_held_lists += 1;
            }
            _ => {
                if self.held.is_empty() {
                    return;
                }
                let (pfn, o) = self.held.swap_remove(pick % self.held.len());
                let freed = match lists.as_deref_mut() {
                    Some(l) => l.free(pfn, o),
                    None => a.free_on_cpu(cpu, pfn, o),
                };
                freed.unwrap_or_else(|e| panic!("free({pfn}, {o}) on {cpu:?}: {e}"));
                if lists.is_some() {
                    self.tally.local_frees += 1;
                }
            }
        }
    }
}

#[test]
fn held_lists_and_ordinary_calls_under_remote_drains() {
    const THREADS: u16 = 3;
    const RUNS: usize = 2000;
    let a = machine(THREADS, PcpMode::Enabled);
    let fresh = a.buddyinfo();
    let present = a.memory_map().nr_present();
    let shared = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let (drains, drained) = (AtomicU64::new(0), AtomicU64::new(0));
    // Drains that started while some CPU's lists were held.
    let contended = AtomicU64::new(0);
    let (held, tallies): (Vec<Vec<Held>>, Vec<Tally>) = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (a, shared) = (&a, &shared);
                s.spawn(move || {
                    let mut w = Worker {
                        a,
                        cpu: CpuId(t),
                        rng: common::XorShift(0x2545_f491_4f6c_dd1d + t as u64 * 7919),
                        held: Vec::new(),
                        shared,
                        tally: Tally::default(),
                    };
                    w.run(RUNS);
                    (w.held, w.tally)
                })
            })
            .collect();
        // The drainer waits for each holder in turn; the holders drop
        // their lists after every run, so this always makes progress.
        s.spawn(|| {
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let cpu = CpuId((k % THREADS as u64) as u16);
                let held = (0..THREADS)
                    .filter(|&c| matches!(a.local(CpuId(c)), Err(LocalError::Busy { .. })))
                    .count();
                if held > 0 {
                    contended.fetch_add(1, Ordering::Relaxed);
                }
                drained.fetch_add(a.drain_all(), Ordering::Relaxed);
                if k % 4 == 1 {
                    a.drain_local(cpu).unwrap();
                    let _ = a.stats();
                }
                drains.fetch_add(1, Ordering::Relaxed);
                k += 1;
                thread::sleep(Duration::from_micros(100));
            }
        });
        // Stop the drainer before reporting a worker's panic, or the scope
        // would wait for it forever.
        let joined: Vec<_> = workers.into_iter().map(|h| h.join()).collect();
        stop.store(true, Ordering::Relaxed);
        joined
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .unzip()
    });
    let mut held: Vec<Held> = held.into_iter().flatten().collect();
    held.extend(std::mem::take(&mut *shared.lock().unwrap()));
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let (drains, contended) = (drains.into_inner(), contended.into_inner());
    println!(
        "{tallies:?}; {drains} remote drains ({contended} found lists held) took {} pages",
        drained.into_inner()
    );

    // Quiesced: invariants hold and every page is in exactly one place.
    a.check_invariants().unwrap();
    let held_pages: u64 = held.iter().map(|h| h.1.nr_pages().0).sum();
    assert_eq!(a.nr_allocated_pages(), held_pages);
    assert_eq!(a.nr_free_pages() + a.nr_pcp_pages() + held_pages, present);
    // The load must have taken every path, or the test proves little.
    assert!(sum(|t| t.local_allocs) > 1000, "{tallies:?}");
    assert!(sum(|t| t.local_frees) > 500, "{tallies:?}");
    assert!(sum(|t| t.handed_over_frees) > 100, "{tallies:?}");
    assert!(sum(|t| t.calls_past_held_lists) > 50, "{tallies:?}");
    assert!(sum(|t| t.local_drained) > 0, "{tallies:?}");
    assert!(
        drains > 0 && contended > 0,
        "{drains} drains, {contended} contended"
    );
    let stats = a.stats();
    assert!(
        stats.total_alloc_fail() > 0,
        "memory never ran out: {stats:?}"
    );
    assert!(stats.pcp_drained > 0, "{stats:?}");

    // Free everything, half through held lists, and drain: all of memory
    // is merged back as at boot.
    let (through_local, plain) = held.split_at(held.len() / 2);
    let mut l = a.local(CpuId(0)).unwrap();
    for &(pfn, o) in through_local {
        l.free(pfn, o).unwrap();
    }
    drop(l);
    for &(pfn, o) in plain {
        a.free_on_cpu(CpuId(1), pfn, o).unwrap();
    }
    a.check_invariants().unwrap();
    assert_eq!(a.nr_allocated_pages(), 0);
    a.drain_all();
    a.check_invariants().unwrap();
    assert_eq!(a.nr_allocated_pages(), 0);
    assert_eq!(a.nr_pcp_pages(), 0);
    assert_eq!(a.nr_free_pages(), present);
    assert_eq!(a.buddyinfo(), fresh, "not merged back");
    assert_eq!(a.buddyinfo().to_string(), fresh.to_string());
}

#[test]
fn local_is_exclusive_and_names_its_cpu() {
    let a = machine(2, PcpMode::Enabled);
    let l0 = a.local(CpuId(0)).unwrap();
    assert_eq!(l0.cpu(), CpuId(0));
    assert_eq!(a.local(CpuId(0)).unwrap_err(), LocalError::Busy { cpu: 0 });
    // Busy for every thread, not just the holder.
    let elsewhere = thread::scope(|s| s.spawn(|| a.local(CpuId(0)).map(drop)).join().unwrap());
    assert_eq!(elsewhere, Err(LocalError::Busy { cpu: 0 }));
    // Other CPUs are not affected.
    let l1 = a.local(CpuId(1)).unwrap();
    assert_eq!(l1.cpu(), CpuId(1));
    assert_eq!(a.local(CpuId(1)).unwrap_err(), LocalError::Busy { cpu: 1 });
    drop(l1);
    drop(l0);
    let l0 = a.local(CpuId(0)).expect("free again after drop");
    drop(l0);
    for cpu in [2, 3, u16::MAX] {
        assert_eq!(
            a.local(CpuId(cpu)).unwrap_err(),
            LocalError::InvalidCpu(InvalidCpu {
                cpu,
                nr_cpus: a.nr_cpus()
            })
        );
    }

    // A remote drain waits for the holder, and finishes once it drops.
    let mut l0 = a.local(CpuId(0)).unwrap();
    let page = l0.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    l0.free(page, Order::ZERO).unwrap();
    let cached = l0.nr_pages();
    assert!(cached > 0, "the free left nothing on the lists");
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        let drainer = s.spawn(|| {
            let n = a.drain_all();
            done.store(true, Ordering::SeqCst);
            n
        });
        thread::sleep(Duration::from_millis(50));
        assert!(!done.load(Ordering::SeqCst), "drain_all did not wait");
        assert_eq!(l0.nr_pages(), cached, "the held lists were drained");
        drop(l0);
        assert_eq!(drainer.join().unwrap(), cached);
    });
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(a.nr_pcp_pages(), 0);
    a.check_invariants().unwrap();
}

#[test]
fn local_without_per_cpu_lists_uses_the_buddy_lists() {
    let a = machine(2, PcpMode::Disabled);
    let fresh = a.buddyinfo();
    let present = a.memory_map().nr_present();
    let mut l = a.local(CpuId(1)).unwrap();
    let mut held = Vec::new();
    for (k, n) in [0, 1, 2, 3, 9, 0, 3, 9].into_iter().enumerate() {
        let o = order(n);
        let flags = [
            AllocFlags::KERNEL,
            AllocFlags::HIGHUSER_MOVABLE,
            AllocFlags::KERNEL_RECLAIMABLE,
        ][k % 3];
        let free = a.nr_free_pages();
        let pfn = l.alloc(o, flags).unwrap();
        assert_eq!(a.nr_free_pages(), free - o.nr_pages().0, "alloc({o})");
        assert_eq!(a.allocated_block(pfn), Some((o, flags.migratetype())));
        assert_eq!(l.nr_pages(), 0);
        held.push((pfn, o));
    }
    let mut batch = [Pfn(0); 20];
    let free = a.nr_free_pages();
    assert_eq!(l.alloc_bulk(AllocFlags::KERNEL, &mut batch), Ok(20));
    assert_eq!(a.nr_free_pages(), free - 20);
    assert_eq!(l.nr_pages(), 0);
    for (pfn, o) in held {
        let free = a.nr_free_pages();
        l.free(pfn, o).unwrap();
        assert_eq!(a.nr_free_pages(), free + o.nr_pages().0, "free({pfn}, {o})");
        assert_eq!(a.allocated_block(pfn), None);
        assert_eq!(l.nr_pages(), 0);
        assert_eq!(
            l.free(pfn, o),
            Err(BlockError::AlreadyFree { pfn }),
            "second free of {pfn}"
        );
    }
    l.free_bulk(&batch).unwrap();
    assert_eq!(l.nr_pages(), 0);
    assert_eq!(l.drain(), 0);
    drop(l);
    a.check_invariants().unwrap();
    assert_eq!(a.nr_pcp_pages(), 0);
    assert_eq!(a.nr_allocated_pages(), 0);
    assert_eq!(a.nr_free_pages(), present);
    assert_eq!(a.buddyinfo(), fresh);
}

#[test]
fn ordinary_calls_on_a_held_cpu_use_the_buddy_lists() {
    let a = machine(2, PcpMode::Enabled);
    let mut l = a.local(CpuId(0)).unwrap();
    // Put something on the held lists, so that a change would show.
    let warm = l.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    l.free(warm, Order::ZERO).unwrap();
    let cached = l.nr_pages();
    assert!(cached > 0);

    let mut plain = Vec::new();
    for n in [0, 1, 2, 3, 9] {
        let o = order(n);
        let free = a.nr_free_pages();
        let pfn = a
            .alloc_on_cpu(CpuId(0), o, AllocFlags::HIGHUSER_MOVABLE)
            .unwrap();
        assert_eq!(a.nr_free_pages(), free - o.nr_pages().0, "alloc({o})");
        assert_eq!(a.allocated_block(pfn), Some((o, MigrateType::Movable)));
        assert_eq!(l.nr_pages(), cached, "alloc({o}) used the held lists");
        plain.push((pfn, o));
    }
    let mut batch = [Pfn(0); 8];
    let got = a
        .alloc_bulk(CpuId(0), AllocFlags::KERNEL, &mut batch)
        .unwrap();
    assert!(got >= 1);
    assert_eq!(l.nr_pages(), cached, "alloc_bulk used the held lists");
    for &pfn in &batch[..got] {
        assert_eq!(
            a.allocated_block(pfn),
            Some((Order::ZERO, MigrateType::Unmovable))
        );
    }
    for &(pfn, o) in &plain {
        let free = a.nr_free_pages();
        a.free_on_cpu(CpuId(0), pfn, o).unwrap();
        assert_eq!(a.nr_free_pages(), free + o.nr_pages().0, "free({pfn}, {o})");
        assert_eq!(l.nr_pages(), cached, "free({o}) used the held lists");
    }
    let free = a.nr_free_pages();
    a.free_bulk(CpuId(0), &batch[..got]).unwrap();
    assert_eq!(a.nr_free_pages(), free + got as u64);
    assert_eq!(l.nr_pages(), cached, "free_bulk used the held lists");

    // Two blocks freed, one through each path, and a third still held.
    let on_lists = l.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    let on_buddy = l.alloc(order(2), AllocFlags::KERNEL).unwrap();
    let still_held = l.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    l.free(on_lists, Order::ZERO).unwrap();
    a.free_on_cpu(CpuId(0), on_buddy, order(2)).unwrap();
    drop(l);
    let before = (Snapshot::take(&a), Census::take(&a));

    let mut l = a.local(CpuId(0)).unwrap();
    let cached = l.nr_pages();
    let while_held = |l: &LocalLists<'_>| (Census::take(&a), a.buddyinfo(), l.nr_pages());
    let held_before = while_held(&l);
    assert_eq!(held_before.0, before.1);
    for (pfn, o) in [(on_lists, Order::ZERO), (on_buddy, order(2))] {
        let double = BlockError::AlreadyFree { pfn };
        assert_eq!(l.free(pfn, o), Err(double), "local free of {pfn}");
        assert_eq!(while_held(&l), held_before, "local free of {pfn}");
        assert_eq!(
            a.free_on_cpu(CpuId(0), pfn, o),
            Err(double),
            "free of {pfn}"
        );
        assert_eq!(while_held(&l), held_before, "free of {pfn}");
    }
    // A batch naming a free page: refused whole, through either path.
    for bad in [on_lists, on_buddy] {
        let err = l.free_bulk(&[still_held, bad]).unwrap_err();
        assert_eq!(
            err,
            BulkFreeError::Entry {
                index: 1,
                error: BlockError::AlreadyFree { pfn: bad }
            }
        );
        assert_eq!(while_held(&l), held_before, "local free_bulk of {bad}");
        let err = a.free_bulk(CpuId(0), &[still_held, bad]).unwrap_err();
        assert_eq!(
            err,
            BulkFreeError::Entry {
                index: 1,
                error: BlockError::AlreadyFree { pfn: bad }
            }
        );
        assert_eq!(while_held(&l), held_before, "free_bulk of {bad}");
    }
    assert_eq!(l.nr_pages(), cached);
    drop(l);
    assert_eq!((Snapshot::take(&a), Census::take(&a)), before);
    a.check_invariants().unwrap();
    a.free(still_held, Order::ZERO).unwrap();
    assert_eq!(a.nr_allocated_pages(), 0);
}

/// What one racer did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Freed(Result<(), BlockError>),
    /// A batch of one was refused naming another entry than the first.
    BatchIndex(usize),
    /// `local()` of its own CPU failed.
    NoLists(LocalError),
}

/// Two threads, each holding its own CPU's lists, free the same block at
/// the same moment, `rounds` times, the block's order cycling through
/// `orders`: the loser must be told `AlreadyFree` naming the block.
fn race_double_frees(rounds: usize, orders: &[u8]) {
    let a = small_machine(3);
    let fresh = a.buddyinfo();
    let flags = [
        AllocFlags::KERNEL,
        AllocFlags::HIGHUSER_MOVABLE,
        AllocFlags::KERNEL_RECLAIMABLE,
    ];
    // The round's block, or u64::MAX to stop.
    let target = AtomicU64::new(0);
    let start = Barrier::new(3);
    let go = Barrier::new(2);
    let done = Barrier::new(3);
    let outcomes = [Mutex::new(None), Mutex::new(None)];
    let mut failures: Vec<String> = Vec::new();
    let mut wins = [0usize; 2];
    thread::scope(|s| {
        for t in 0..2usize {
            let (a, target, start, go, done, outcomes) =
                (&a, &target, &start, &go, &done, &outcomes);
            s.spawn(move || {
                for round in 0.. {
                    start.wait();
                    let raw = target.load(Ordering::SeqCst);
                    if raw == u64::MAX {
                        return;
                    }
                    let (pfn, o) = (Pfn(raw), order(orders[round % orders.len()]));
                    let outcome = match a.local(CpuId(t as u16)) {
                        Ok(mut l) => {
                            go.wait();
                            // Every third order-0 round, one racer frees a
                            // batch of one: pass 1's swap against the
                            // other's.
                            let outcome = if t == 1 && o == Order::ZERO && round % 3 == 0 {
                                match l.free_bulk(&[pfn]) {
                                    Err(BulkFreeError::Entry { index, .. }) if index != 0 => {
                                        Outcome::BatchIndex(index)
                                    }
                                    Err(BulkFreeError::Entry { error, .. }) => {
                                        Outcome::Freed(Err(error))
                                    }
                                    Err(e @ BulkFreeError::InvalidCpu(_)) => {
                                        panic!("CPU {} exists: {e}", 1)
                                    }
                                    Ok(()) => Outcome::Freed(Ok(())),
                                }
                            } else {
                                Outcome::Freed(l.free(pfn, o))
                            };
                            drop(l);
                            outcome
                        }
                        Err(e) => {
                            go.wait();
                            Outcome::NoLists(e)
                        }
                    };
                    *outcomes[t].lock().unwrap() = Some(outcome);
                    done.wait();
                }
            });
        }
        for round in 0..rounds {
            // No panics in here: the racers would wait at the barrier.
            let o = order(orders[round % orders.len()]);
            let pfn = match a.alloc_on_cpu(CpuId(2), o, flags[round % flags.len()]) {
                Ok(pfn) => pfn,
                Err(e) => {
                    failures.push(format!("round {round}: alloc({o}): {e:?}"));
                    break;
                }
            };
            target.store(pfn.0, Ordering::SeqCst);
            start.wait();
            done.wait();
            let got: Vec<Outcome> = outcomes
                .iter()
                .map(|m| m.lock().unwrap().take().unwrap())
                .collect();
            let ok = Outcome::Freed(Ok(()));
            let lost = |x: Outcome| x == Outcome::Freed(Err(BlockError::AlreadyFree { pfn }));
            let mut check = || -> Result<(), String> {
                match (got[0], got[1]) {
                    (x, y) if x == ok && lost(y) => wins[0] += 1,
                    (x, y) if lost(x) && y == ok => wins[1] += 1,
                    _ => return Err(format!("freeing {pfn} ({o}) twice: {got:?}")),
                }
                a.check_invariants().map_err(|v| v.to_string())?;
                if a.allocated_block(pfn).is_some() || a.nr_allocated_pages() != 0 {
                    return Err(format!("{pfn} ({o}) still allocated"));
                }
                Ok(())
            };
            if let Err(e) = check() {
                failures.push(format!("round {round}: {e}"));
                break;
            }
        }
        target.store(u64::MAX, Ordering::SeqCst);
        start.wait();
    });
    assert!(failures.is_empty(), "{failures:?}");
    println!("wins per thread: {wins:?}");
    assert_eq!(wins[0] + wins[1], rounds);
    a.drain_all();
    a.check_invariants().unwrap();
    assert_eq!(a.nr_pcp_pages(), 0);
    assert_eq!(a.buddyinfo(), fresh);
}

#[test]
fn racing_local_double_frees_fail_exactly_once() {
    race_double_frees(2000, &[0, 0, 1, 2, 3, 9, 0]);
}

/// A racing pair on oversubscribed cores: two spinning threads crowd the
/// two racers, so one is often preempted inside its free, while the other's
/// failed swap is classified. Before the lost race's error was settled
/// under the zone lock, the loser was told `NotAllocated` in about every
/// other run of this test, whenever the winner was draining the block.
#[test]
fn racing_local_double_free_is_named_a_double_free() {
    // Two spinning threads oversubscribe the cores, so that a racer is
    // sometimes preempted in the middle of its drain: that widens the
    // window in which the other one misclassifies its failed free.
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        let result = std::panic::catch_unwind(|| race_double_frees(20_000, &[0, 0, 1, 2, 3, 9, 0]));
        stop.store(true, Ordering::Relaxed);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    });
}

#[test]
fn local_drain_empties_the_held_lists() {
    let a = machine(2, PcpMode::Enabled);
    // Pages on CPU 1's lists, which CPU 0's drain must leave alone.
    let other: Vec<Pfn> = (0..10)
        .map(|_| {
            a.alloc_on_cpu(CpuId(1), Order::ZERO, AllocFlags::KERNEL)
                .unwrap()
        })
        .collect();
    for &pfn in &other {
        a.free_on_cpu(CpuId(1), pfn, Order::ZERO).unwrap();
    }
    let on_cpu1 = a.nr_pcp_pages();
    assert!(on_cpu1 > 0);

    // Blocks of every cached order, in both zones, freed onto CPU 0's
    // lists.
    let mut l = a.local(CpuId(0)).unwrap();
    let mut blocks = Vec::new();
    for flags in [
        AllocFlags::KERNEL,
        AllocFlags::DMA32,
        AllocFlags::HIGHUSER_MOVABLE,
    ] {
        for n in [0, 0, 0, 1, 2, 3, 9] {
            let o = order(n);
            blocks.push((l.alloc(o, flags).unwrap(), o));
        }
    }
    for &(pfn, o) in &blocks {
        l.free(pfn, o).unwrap();
    }
    let cached = l.nr_pages();
    assert!(cached > 0);
    drop(l);
    let per_zone = a.nr_pcp_pages_per_zone();
    assert!(
        per_zone.iter().all(|&n| n > 0),
        "both zones should have cached pages: {per_zone:?}"
    );
    assert_eq!(a.nr_pcp_pages(), on_cpu1 + cached);
    let before = a.stats();

    let mut l = a.local(CpuId(0)).unwrap();
    assert_eq!(l.nr_pages(), cached);
    let free = a.nr_free_pages();
    assert_eq!(l.drain(), cached);
    assert_eq!(l.nr_pages(), 0);
    assert_eq!(a.nr_free_pages(), free + cached);
    assert_eq!(l.drain(), 0, "a second drain finds nothing");
    drop(l);
    assert_eq!(a.nr_pcp_pages(), on_cpu1, "CPU 1's lists changed");
    assert_eq!(a.stats().pcp_drained, before.pcp_drained + cached);
    a.check_invariants().unwrap();
    assert_eq!(a.drain_local(CpuId(0)), Ok(0));
    assert_eq!(a.drain_local(CpuId(1)), Ok(on_cpu1));
    assert_eq!(a.nr_pcp_pages(), 0);
    assert_eq!(a.nr_allocated_pages(), 0);
    a.check_invariants().unwrap();
}
