//! Multi-thread stress of the per-CPU front end: several threads, each on its
//! own CPU slot, allocate single pages and bulk batches of mixed orders and
//! free them, some on another thread's CPU. At quiesce the invariants hold and
//! every page is accounted for; after freeing everything and draining, the
//! free lists are exactly those of a fresh allocator (all merged back).
//!
//! Batched frees are all or nothing: `bulk_fills_and_rejects_bad_batches_whole`
//! and `rejected_bulk_frees_restore_every_record` prove that a refused
//! `free_bulk` (a frame named twice, at the end or in the middle; an order-1
//! block in an order-0 batch; a tail page; a free page; a hole; a frame
//! outside every zone) names the first bad entry and leaves every page record
//! exactly as it was, including the migratetype each allocated page was
//! allocated as, along with the counters, `/proc/buddyinfo` and the per-CPU
//! lists: through `Allocator::free_bulk`, through a held `LocalLists`, and
//! through `Allocator::free_bulk` on a CPU whose lists are held (where the
//! batch goes to the buddy lists).

mod common;

use std::sync::{Arc, Mutex};
use std::thread;

use common::Census;
use pagealloc::{
    AllocError, AllocFlags, Allocator, BlockError, BulkFreeError, Config, CpuId, LocalLists,
    MemRange, MemoryMap, MigrateType, NodeId, Order, Pfn, VmStats,
};

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
    let mut rng = common::XorShift(seed);
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
                match a.alloc_on_cpu(cpu, order, flags) {
                    Ok(pfn) => held.push((pfn, order)),
                    // Running out is part of the load; any other error is a bug.
                    Err(AllocError::NoMemory { .. }) => {}
                    Err(e) => panic!("alloc_on_cpu({cpu:?}, {order}): {e}"),
                }
            }
            5 => {
                let want = 1 + (r >> 16) as usize % batch.len();
                let got = match a.alloc_bulk(cpu, flags, &mut batch[..want]) {
                    Ok(got) => got,
                    Err(AllocError::NoMemory { .. }) => 0,
                    Err(e) => panic!("alloc_bulk({cpu:?}, {want}): {e}"),
                };
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

/// Everything a refused batch must leave exactly as it was. `stats` and
/// `nr_pcp` take every per-CPU lock: not to be taken while holding a
/// `LocalLists` (see [`HeldState`]).
#[derive(Clone, PartialEq, Eq, Debug)]
struct State {
    census: Census,
    stats: VmStats,
    buddyinfo: String,
    nr_pcp: u64,
    nr_allocated: u64,
}

impl State {
    fn take(a: &Allocator) -> State {
        State {
            census: Census::take(a),
            stats: a.stats(),
            buddyinfo: a.buddyinfo().to_string(),
            nr_pcp: a.nr_pcp_pages(),
            nr_allocated: a.nr_allocated_pages(),
        }
    }
}

/// The part of [`State`] that can be read while holding `lists`.
#[derive(Clone, PartialEq, Eq, Debug)]
struct HeldState {
    census: Census,
    buddyinfo: String,
    nr_free: u64,
    held_lists: u64,
}

impl HeldState {
    fn take(a: &Allocator, lists: &LocalLists<'_>) -> HeldState {
        HeldState {
            census: Census::take(a),
            buddyinfo: a.buddyinfo().to_string(),
            nr_free: a.nr_free_pages(),
            held_lists: lists.nr_pages(),
        }
    }
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
    let before = State::take(&a);
    assert!(before.nr_pcp > 0, "the refill left nothing cached");
    // A batch naming one page twice is refused whole.
    let dup = [out[0], out[1], out[0]];
    let err = a.free_bulk(CpuId(0), &dup).unwrap_err();
    assert_eq!(
        err,
        BulkFreeError::Entry {
            index: 2,
            error: BlockError::AlreadyFree { pfn: out[0] }
        }
    );
    assert_eq!(State::take(&a), before);
    // So is one with a frame that is not allocated.
    let err = a.free_bulk(CpuId(0), &[out[3], Pfn(1 << 40)]).unwrap_err();
    assert_eq!(
        err,
        BulkFreeError::Entry {
            index: 1,
            error: BlockError::OutOfRange { pfn: Pfn(1 << 40) }
        }
    );
    assert_eq!(State::take(&a), before);
    a.check_invariants().unwrap();
    a.free_bulk(CpuId(0), &out).unwrap();
    assert_eq!(a.nr_allocated_pages(), 0);
    assert!(a
        .alloc_bulk(CpuId(5), AllocFlags::KERNEL, &mut out)
        .is_err());
    a.check_invariants().unwrap();
}

/// How a batch is freed.
#[derive(Clone, Copy, Debug)]
enum BulkPath {
    /// `Allocator::free_bulk` on CPU 0.
    Plain,
    /// `LocalLists::free_bulk` on CPU 0's held lists.
    Local,
    /// `Allocator::free_bulk` on CPU 0 while the caller holds CPU 0's
    /// lists: no lists for the batch, straight to the buddy lists.
    PlainPastHeld,
}

#[test]
fn rejected_bulk_frees_restore_every_record() {
    let a = machine(2);
    let o1 = Order::new(1).unwrap();
    // Unmovable, movable and reclaimable order-0 pages, an order-1 block, a
    // page freed again, a frame in the hole and one outside every zone.
    let mut u = [Pfn(0); 8];
    assert_eq!(a.alloc_bulk(CpuId(0), AllocFlags::KERNEL, &mut u), Ok(8));
    let m: Vec<Pfn> = (0..3)
        .map(|_| a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE).unwrap())
        .collect();
    let r = a
        .alloc_on_cpu(CpuId(1), Order::ZERO, AllocFlags::KERNEL_RECLAIMABLE)
        .unwrap();
    let w = a.alloc(o1, AllocFlags::KERNEL).unwrap();
    let freed = a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    a.free(freed, Order::ZERO).unwrap();
    let (hole, far) = (Pfn(0x1900), Pfn(1 << 40));
    let w_tail = Pfn(w.0 + 1);
    a.check_invariants().unwrap();

    use BlockError as BE;
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<Pfn>, usize, BlockError)> = vec![
        ("duplicate at the end", vec![u[0], u[1], u[2], u[0]], 3, BE::AlreadyFree { pfn: u[0] }),
        ("duplicate in the middle", vec![u[0], u[1], u[2], u[1], u[3], u[4]], 3,
            BE::AlreadyFree { pfn: u[1] }),
        ("adjacent duplicate", vec![u[5], u[5], u[6]], 1, BE::AlreadyFree { pfn: u[5] }),
        ("movable pages among unmovable ones, one twice",
            vec![u[0], m[0], u[1], m[1], r, m[2], u[2], m[1], u[3]], 7, BE::AlreadyFree { pfn: m[1] }),
        ("movable and reclaimable pages before a frame outside every zone",
            vec![m[0], u[0], r, m[1], m[2], far], 5, BE::OutOfRange { pfn: far }),
        ("an order-1 block in an order-0 batch", vec![u[0], m[0], u[1], w], 3,
            BE::WrongOrder { pfn: w, order: Order::ZERO, allocated: o1 }),
        ("the order-1 block's tail page", vec![m[2], u[7], w_tail], 2, BE::NotAllocated { pfn: w_tail }),
        ("a page already free", vec![u[0], m[0], freed, u[1]], 2, BE::AlreadyFree { pfn: freed }),
        ("a frame in a hole", vec![m[0], m[1], u[0], hole], 3, BE::InHole { pfn: hole }),
        ("a bad first entry", vec![far, u[0], m[0]], 0, BE::OutOfRange { pfn: far }),
        ("every page once, then a duplicate",
            [&u[..], &m[..], &[r][..], &[u[4]][..]].concat(), 12, BE::AlreadyFree { pfn: u[4] }),
    ];
    let mt_of = |pfn: Pfn| a.allocated_block(pfn).map(|b| b.1);
    for path in [BulkPath::Plain, BulkPath::Local, BulkPath::PlainPastHeld] {
        for (name, batch, index, error) in &cases {
            let what = format!("{name} ({path:?})");
            let want = BulkFreeError::Entry {
                index: *index,
                error: *error,
            };
            let before = State::take(&a);
            let got = match path {
                BulkPath::Plain => a.free_bulk(CpuId(0), batch),
                BulkPath::Local | BulkPath::PlainPastHeld => {
                    let mut l = a.local(CpuId(0)).unwrap();
                    let held = HeldState::take(&a, &l);
                    assert_eq!(held.census, before.census, "{what}: holding changed state");
                    let got = match path {
                        BulkPath::Local => l.free_bulk(batch),
                        _ => a.free_bulk(CpuId(0), batch),
                    };
                    assert_eq!(HeldState::take(&a, &l), held, "{what}: state changed");
                    got
                }
            };
            assert_eq!(got, Err(want), "{what}");
            let after = State::take(&a);
            if after != before {
                let changed: Vec<_> = before
                    .census
                    .blocks
                    .iter()
                    .filter(|b| !after.census.blocks.contains(b))
                    .collect();
                panic!("{what}: state changed; blocks before that are gone: {changed:?}");
            }
            assert_eq!(mt_of(m[1]), Some(MigrateType::Movable), "{what}");
            assert_eq!(mt_of(r), Some(MigrateType::Reclaimable), "{what}");
            assert_eq!(mt_of(u[0]), Some(MigrateType::Unmovable), "{what}");
            assert_eq!(a.allocated_block(w), Some((o1, MigrateType::Unmovable)));
            a.check_invariants().unwrap();
        }
    }

    // Every entry good: the batches go through, each path once.
    let all: Vec<Pfn> = [&u[..], &m[..], &[r][..]].concat();
    let (first, rest) = all.split_at(4);
    let (second, third) = rest.split_at(4);
    a.free_bulk(CpuId(0), first).unwrap();
    let mut l = a.local(CpuId(0)).unwrap();
    l.free_bulk(second).unwrap();
    a.free_bulk(CpuId(0), third).unwrap();
    drop(l);
    for pfn in &all {
        assert_eq!(a.allocated_block(*pfn), None, "{pfn} still allocated");
    }
    a.free(w, o1).unwrap();
    a.check_invariants().unwrap();
    assert_eq!(a.nr_allocated_pages(), 0);
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

/// A batched free moves the per-CPU lists exactly as the same frees one by
/// one do (Linux commits each folio of `free_unref_folios` separately): the
/// same pages drained at the same points, the same counters, the same free
/// lists. Many pages, so the lists cross their high mark mid-batch.
#[test]
fn free_bulk_moves_the_lists_as_single_frees_do() {
    let a = machine(1);
    let mut pages = Vec::new();
    while pages.len() < 3000 {
        match a.alloc(Order::ZERO, AllocFlags::KERNEL) {
            Ok(pfn) => pages.push(pfn),
            Err(e) => panic!("alloc: {e}"),
        }
    }
    // Free a few first, so the batch starts from a partly filled list.
    for &pfn in &pages[..100] {
        a.free(pfn, Order::ZERO).unwrap();
    }
    let batch = &pages[100..];
    let singles = a.clone();
    a.free_bulk(CpuId(0), batch).unwrap();
    for &pfn in batch {
        singles.free_on_cpu(CpuId(0), pfn, Order::ZERO).unwrap();
    }
    let drained = a.stats().pcp_drained;
    assert!(drained > 0, "the batch never crossed the high mark");
    assert_eq!(a.stats(), singles.stats());
    assert_eq!(a.nr_pcp_pages(), singles.nr_pcp_pages());
    assert_eq!(a.buddyinfo(), singles.buddyinfo());
    assert_eq!(
        common::Census::take(&a),
        common::Census::take(&singles),
        "different pages drained"
    );
    a.check_invariants().unwrap();
    singles.check_invariants().unwrap();
}
