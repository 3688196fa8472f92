//! Multi-thread stress of the per-CPU front end: several threads, each on its
//! own CPU slot, allocate single pages and bulk batches of mixed orders and
//! free them, some on another thread's CPU. At quiesce the invariants hold and
//! every page is accounted for; after freeing everything and draining, the
//! free lists are exactly those of a fresh allocator (all merged back).

use std::sync::{Arc, Mutex};
use std::thread;

use pagealloc::{AllocFlags, Allocator, Config, CpuId, MemRange, MemoryMap, NodeId, Order, Pfn};

/// A small deterministic generator so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn machine(nr_cpus: u16) -> Allocator {
    let range = |start, end| MemRange {
        node: NodeId(0),
        start: Pfn(start),
        end: Pfn(end),
    };
    // 24 MiB DMA32 with a hole, and 40 MiB of Normal, in small zones so the
    // load reaches the watermarks.
    let config = Config {
        nr_cpus,
        zone_bounds: pagealloc::ZoneBounds {
            dma_end_bytes: None,
            dma32_end_bytes: Some(32 << 20),
            movable_start_bytes: None,
        },
        ..Config::default()
    };
    let map = MemoryMap::new([
        range(0x100, 0x1800),
        range(0x1a00, 0x2000),
        range(0x2000, 0x4800),
    ])
    .unwrap();
    Allocator::new(map, config).unwrap()
}

/// One block a thread holds.
type Held = (Pfn, Order);

fn worker(
    a: &Allocator,
    cpu: CpuId,
    seed: u64,
    steps: usize,
    shared: &Mutex<Vec<Held>>,
) -> Vec<Held> {
    let mut rng = XorShift(seed);
    let mut held: Vec<Held> = Vec::new();
    let mut batch = [Pfn(0); 32];
    for _ in 0..steps {
        let r = rng.next();
        let flags = match r % 4 {
            0 => AllocFlags::KERNEL,
            1 => AllocFlags::KERNEL_RECLAIMABLE,
            _ => AllocFlags::HIGHUSER_MOVABLE,
        };
        match (r >> 8) % 10 {
            0..=4 => {
                let order = Order::new([0, 0, 0, 1, 2, 3, 9][(r >> 16) as usize % 7]).unwrap();
                if let Ok(pfn) = a.alloc_on_cpu(cpu, order, flags) {
                    held.push((pfn, order));
                }
            }
            5 => {
                let want = 1 + (r >> 16) as usize % batch.len();
                let got = a.alloc_bulk(cpu, flags, &mut batch[..want]).unwrap_or(0);
                held.extend(batch[..got].iter().map(|&p| (p, Order::ZERO)));
            }
            6 => {
                // Hand some pages to other threads.
                let n = held.len().min(8);
                let given: Vec<Held> = held.drain(..n).collect();
                shared.lock().unwrap().extend(given);
            }
            7 => {
                // Free what others handed over, on this CPU.
                let taken: Vec<Held> = std::mem::take(&mut *shared.lock().unwrap());
                for (pfn, order) in taken {
                    a.free_on_cpu(cpu, pfn, order).unwrap();
                }
            }
            8 => {
                let singles: Vec<Pfn> = held
                    .iter()
                    .filter(|h| h.1 == Order::ZERO)
                    .take(16)
                    .map(|h| h.0)
                    .collect();
                held.retain(|h| !(h.1 == Order::ZERO && singles.contains(&h.0)));
                a.free_bulk(cpu, &singles).unwrap();
            }
            _ => {
                if !held.is_empty() {
                    let (pfn, order) = held.swap_remove((r >> 16) as usize % held.len());
                    a.free_on_cpu(cpu, pfn, order).unwrap();
                }
            }
        }
    }
    held
}

#[test]
fn threads_share_the_allocator_and_every_page_adds_up() {
    const THREADS: u16 = 4;
    const STEPS: usize = 20_000;
    let a = Arc::new(machine(THREADS));
    let fresh = a.buddyinfo();
    let present = a.memory_map().nr_present();
    let shared = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let a = Arc::clone(&a);
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                worker(&a, CpuId(t), 0x9e37_79b9 + t as u64 * 7919, STEPS, &shared)
            })
        })
        .collect();
    let mut held: Vec<Held> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    held.extend(std::mem::take(&mut *shared.lock().unwrap()));

    // Quiesced: invariants hold and every page is in exactly one place.
    a.check_invariants().unwrap();
    let held_pages: u64 = held.iter().map(|h| h.1.nr_pages().0).sum();
    assert_eq!(a.nr_allocated_pages(), held_pages);
    assert_eq!(a.nr_free_pages() + a.nr_pcp_pages() + held_pages, present);
    let stats = a.stats();
    assert!(stats.alloc_calls.iter().sum::<u64>() > 10_000, "{stats:?}");
    // The load must have reached exhaustion and crossed migratetypes, or the
    // test proves little.
    assert!(stats.total_alloc_fail() > 0, "{stats:?}");
    assert!(
        stats.extfrag_events > 0 && stats.pcp_drained > 0,
        "{stats:?}"
    );

    // Free everything, drain, and all of memory is merged back as at boot.
    for (pfn, order) in held {
        a.free(pfn, order).unwrap();
    }
    a.drain_all();
    a.check_invariants().unwrap();
    assert_eq!(a.nr_pcp_pages(), 0);
    assert_eq!(a.nr_free_pages(), present);
    assert_eq!(a.buddyinfo(), fresh);
}

#[test]
fn racing_double_frees_fail_exactly_once() {
    let a = Arc::new(machine(2));
    let pages: Vec<Pfn> = (0..2000)
        .map(|_| a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap())
        .collect();
    let pages = Arc::new(pages);
    let results: Vec<usize> = (0..2u16)
        .map(|t| {
            let (a, pages) = (Arc::clone(&a), Arc::clone(&pages));
            thread::spawn(move || {
                pages
                    .iter()
                    .filter(|&&p| a.free_on_cpu(CpuId(t), p, Order::ZERO).is_ok())
                    .count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(
        results.iter().sum::<usize>(),
        pages.len(),
        "each page freed exactly once: {results:?}"
    );
    a.check_invariants().unwrap();
    assert_eq!(a.nr_allocated_pages(), 0);
}

#[test]
fn bulk_fills_and_rejects_bad_batches_whole() {
    let a = machine(1);
    let mut out = [Pfn(0); 64];
    let got = a
        .alloc_bulk(CpuId(0), AllocFlags::KERNEL, &mut out)
        .unwrap();
    assert_eq!(got, 64);
    let mut sorted = out.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 64, "bulk pages are distinct");
    a.check_invariants().unwrap();
    let before = (a.nr_allocated_pages(), a.stats());
    // A batch naming one page twice is refused whole.
    let dup = [out[0], out[1], out[0]];
    let err = a.free_bulk(CpuId(0), &dup).unwrap_err();
    assert_eq!(err.index, 2);
    assert_eq!((a.nr_allocated_pages(), a.stats()), before);
    // So is one with a frame that is not allocated.
    let err = a.free_bulk(CpuId(0), &[out[3], Pfn(1 << 40)]).unwrap_err();
    assert_eq!(err.index, 1);
    assert_eq!((a.nr_allocated_pages(), a.stats()), before);
    a.free_bulk(CpuId(0), &out).unwrap();
    assert_eq!(a.nr_allocated_pages(), 0);
    assert!(a
        .alloc_bulk(CpuId(5), AllocFlags::KERNEL, &mut out)
        .is_err());
    a.check_invariants().unwrap();
}

#[test]
fn this_cpu_spreads_threads_over_slots() {
    let a = Arc::new(machine(2));
    let mine = a.this_cpu();
    assert_eq!(mine, a.this_cpu(), "stable per thread");
    let other = {
        let a = Arc::clone(&a);
        thread::spawn(move || a.this_cpu()).join().unwrap()
    };
    assert_ne!(mine, other);
}
