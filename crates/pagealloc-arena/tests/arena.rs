//! The arena end to end: blocks own their bytes, live blocks never overlap,
//! discarded frames come back as zeros (or, lazily freed, are kept when
//! handed out again), several threads share one arena, and every kind of
//! bad input is a typed error that changes nothing.

use std::sync::Arc;

use pagealloc_arena::pagealloc::{BlockError, ConfigError};
use pagealloc_arena::{
    Advice, AllocError, AllocFlags, Arena, Block, Config, DiscardError, FreeError, NewError, Order,
    PageCount, Pfn,
};

/// 16 MiB: a few thousand frames, enough for every order.
const SMALL_BYTES: usize = 16 << 20;

fn order(n: u8) -> Order {
    Order::new(n).unwrap()
}

fn arena(size_bytes: usize) -> Arena {
    Arena::new(size_bytes, Config::default()).unwrap()
}

/// A pattern byte for offset `i` of block number `tag`.
fn pattern(tag: usize, i: usize) -> u8 {
    (tag.wrapping_mul(31) ^ i.wrapping_mul(7) ^ (i >> 12)) as u8
}

/// A small xorshift, so runs repeat.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Allocates blocks of `order` until the allocator says no.
fn alloc_all(arena: &Arena, order: Order) -> Vec<Block> {
    let mut blocks = Vec::new();
    loop {
        match arena.alloc(order, AllocFlags::HIGHUSER_MOVABLE) {
            Ok(block) => blocks.push(block),
            Err(AllocError::NoMemory { .. }) => return blocks,
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

#[test]
fn alloc_write_read_free_round_trip() {
    let arena = arena(SMALL_BYTES);
    assert_eq!(arena.page_size_bytes(), 4096);
    assert_eq!(arena.size_bytes(), SMALL_BYTES);
    assert_eq!(arena.nr_pages(), PageCount((SMALL_BYTES / 4096) as u64));
    for (tag, n) in [0u8, 1, 3, 9, 10].into_iter().enumerate() {
        let mut block = arena.alloc(order(n), AllocFlags::KERNEL).unwrap();
        assert_eq!(block.order(), order(n));
        assert_eq!(block.nr_pages(), order(n).nr_pages());
        assert_eq!(block.size_bytes(), 4096 << n);
        assert!(arena.pfn(&block) >= arena.start_pfn() && arena.pfn(&block) < arena.end_pfn());
        assert!(arena.pfn(&block).is_aligned(order(n)));
        let mut bytes = arena.bytes_mut(&mut block);
        assert_eq!(bytes.len(), 4096 << n);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = pattern(tag, i);
        }
        drop(bytes);
        let bytes = arena.bytes(&block);
        assert!(bytes.iter().enumerate().all(|(i, &b)| b == pattern(tag, i)));
        drop(bytes);
        arena.free(block).unwrap();
        arena.check_invariants().unwrap();
    }
}

#[test]
fn live_blocks_never_overlap() {
    let arena = arena(SMALL_BYTES);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<(usize, Block)> = Vec::new();
    for tag in 0..600 {
        // Churn: free a random block now and then, so frames are reused.
        if !live.is_empty() && rng.next().is_multiple_of(3) {
            let (_, block) = live.swap_remove(rng.next() as usize % live.len());
            arena.free(block).unwrap();
        }
        let n = order((rng.next() % 6) as u8);
        let Ok(mut block) = arena.alloc(n, AllocFlags::HIGHUSER_MOVABLE) else {
            continue;
        };
        arena
            .bytes_mut(&mut block)
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = pattern(tag, i));
        live.push((tag, block));
    }
    assert!(live.len() > 100, "only {} blocks live", live.len());

    // Address ranges are disjoint...
    let mut ranges: Vec<(usize, usize)> = live
        .iter()
        .map(|(_, b)| {
            let start = arena.bytes(b).as_ptr() as usize;
            (start, start + b.size_bytes())
        })
        .collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "{pair:x?} overlap");
    }
    // ...and every block still holds what was written to it.
    for (tag, block) in &live {
        let bytes = arena.bytes(block);
        assert!(bytes
            .iter()
            .enumerate()
            .all(|(i, &b)| b == pattern(*tag, i)));
    }
    for (_, block) in live {
        arena.free(block).unwrap();
    }
    arena.check_invariants().unwrap();
}

#[test]
fn discarded_frames_read_back_as_zeros() {
    let mut arena = arena(SMALL_BYTES);
    let mut blocks = alloc_all(&arena, Order::ZERO);
    assert!(blocks.len() > 1000);
    for block in &mut blocks {
        arena.bytes_mut(block).fill(0xab);
    }
    for block in blocks {
        arena.free(block).unwrap();
    }
    let (start, nr_pages) = (arena.start_pfn(), arena.nr_pages());
    arena
        .discard_range(start, nr_pages, Advice::DontNeed)
        .unwrap();

    // Every frame that can be had again, in whatever order, reads as zeros.
    let blocks = alloc_all(&arena, Order::ZERO);
    assert!(blocks.len() > 1000);
    for block in &blocks {
        assert!(arena.bytes(block).iter().all(|&b| b == 0));
    }
    for block in blocks {
        arena.free(block).unwrap();
    }
    arena.check_invariants().unwrap();
}

#[test]
fn discard_of_one_freed_block() {
    let mut arena = arena(SMALL_BYTES);
    let mut block = arena.alloc(order(9), AllocFlags::KERNEL).unwrap();
    arena.bytes_mut(&mut block).fill(0x5a);
    let (pfn, n) = (arena.pfn(&block), block.order());
    arena.free(block).unwrap();
    arena.discard(pfn, n, Advice::DontNeed).unwrap();
    // Every free block of that order, the discarded one among them, reads
    // as zeros.
    let mut blocks = Vec::new();
    while let Ok(block) = arena.alloc(n, AllocFlags::NO_WATERMARKS) {
        assert!(arena.bytes(&block).iter().all(|&b| b == 0));
        blocks.push(block);
    }
    assert!(blocks.iter().any(|b| arena.pfn(b) == pfn));
    for block in blocks {
        arena.free(block).unwrap();
    }
}

#[test]
fn lazily_freed_pages_are_written_when_handed_out_again() {
    let mut arena = arena(SMALL_BYTES);
    let mut blocks = alloc_all(&arena, order(4));
    for block in &mut blocks {
        arena.bytes_mut(block).fill(0xcd);
    }
    for block in blocks {
        arena.free(block).unwrap();
    }
    let (start, nr_pages) = (arena.start_pfn(), arena.nr_pages());
    arena.discard_range(start, nr_pages, Advice::Free).unwrap();

    // Each page handed out again got one write (a zero at its start), which
    // makes the kernel keep it; the rest holds the old bytes or, if the
    // kernel dropped the page first, zeros.
    let mut blocks = alloc_all(&arena, order(4));
    for block in &blocks {
        for page in arena.bytes(block).chunks(4096) {
            assert_eq!(page[0], 0);
            assert!(page[1..].iter().all(|&b| b == 0xcd) || page[1..].iter().all(|&b| b == 0));
        }
    }
    for block in &mut blocks {
        arena.bytes_mut(block).fill(0x11);
    }
    for block in &blocks {
        assert!(arena.bytes(block).iter().all(|&b| b == 0x11));
    }
    for block in blocks {
        arena.free(block).unwrap();
    }

    // A later MADV_DONTNEED forgets the marks: nothing is written on reuse.
    arena
        .discard_range(start, nr_pages, Advice::DontNeed)
        .unwrap();
    let blocks = alloc_all(&arena, order(4));
    for block in &blocks {
        assert!(arena.bytes(block).iter().all(|&b| b == 0));
    }
    for block in blocks {
        arena.free(block).unwrap();
    }
    arena.check_invariants().unwrap();
}

#[test]
fn threads_share_one_arena() {
    let arena = Arc::new(arena(SMALL_BYTES));
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let arena = Arc::clone(&arena);
            std::thread::spawn(move || {
                let mut rng = XorShift(0x1234_5678 + t as u64);
                let mut live: Vec<(usize, Block)> = Vec::new();
                for round in 0..600 {
                    let tag = t * 1_000_000 + round;
                    if live.len() > 32 || (!live.is_empty() && rng.next().is_multiple_of(2)) {
                        let (tag, block) = live.swap_remove(rng.next() as usize % live.len());
                        let bytes = arena.bytes(&block);
                        assert!(bytes.iter().enumerate().all(|(i, &b)| b == pattern(tag, i)));
                        drop(bytes);
                        arena.free(block).unwrap();
                    }
                    let n = order((rng.next() % 3) as u8);
                    let mut block = arena.alloc(n, AllocFlags::KERNEL).unwrap();
                    arena
                        .bytes_mut(&mut block)
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, b)| *b = pattern(tag, i));
                    live.push((tag, block));
                }
                for (_, block) in live {
                    arena.free(block).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    arena.check_invariants().unwrap();
}

#[test]
fn discard_outside_the_arena_is_refused() {
    let mut arena = arena(SMALL_BYTES);
    let (start, end) = (arena.start_pfn(), arena.end_pfn());
    let cases = [
        (Pfn(start.0 - 1), PageCount(1)), // the frame before
        (Pfn(start.0 - 1), PageCount(2)), // straddling the start
        (end, PageCount(1)),              // the frame after
        (Pfn(end.0 - 1), PageCount(2)),   // straddling the end
        (Pfn(0), PageCount(1)),           // far below
        (Pfn(u64::MAX), PageCount(2)),    // overflowing
        (Pfn(end.0 + 1), PageCount(0)),   // empty, but not inside
    ];
    for (pfn, nr_pages) in cases {
        let err = arena
            .discard_range(pfn, nr_pages, Advice::DontNeed)
            .unwrap_err();
        assert!(
            matches!(err, DiscardError::OutOfArena { start, nr_pages: n } if start == pfn && n == nr_pages),
            "{pfn} +{}: {err:?}",
            nr_pages.0
        );
        assert!(err.to_string().contains(&pfn.to_string()), "{err}");
    }
    let err = arena
        .discard(Pfn(end.0 - 1), order(1), Advice::Free)
        .unwrap_err();
    assert!(matches!(err, DiscardError::OutOfArena { .. }), "{err:?}");
    // An empty range inside the arena is nothing to do.
    arena
        .discard_range(start, PageCount(0), Advice::DontNeed)
        .unwrap();
}

#[test]
fn discard_over_an_allocated_block_is_refused() {
    let mut arena = arena(SMALL_BYTES);
    let mut block = arena.alloc(order(3), AllocFlags::KERNEL).unwrap();
    arena.bytes_mut(&mut block).fill(0x77);
    let (pfn, n) = (arena.pfn(&block), block.order());
    let inside = Pfn(pfn.0 + 5);
    // The block's first frame, one frame inside it (found by its head before
    // the range), a range around it, and the whole arena.
    let cases = [
        (pfn, PageCount(1)),
        (inside, PageCount(1)),
        (
            Pfn(pfn.0.saturating_sub(8).max(arena.start_pfn().0)),
            PageCount(32),
        ),
        (arena.start_pfn(), arena.nr_pages()),
    ];
    for (start, nr_pages) in cases {
        let err = arena
            .discard_range(start, nr_pages, Advice::DontNeed)
            .unwrap_err();
        assert!(
            matches!(err, DiscardError::Allocated { pfn: p, order: o } if p == pfn && o == n),
            "{start} +{}: {err:?}",
            nr_pages.0
        );
        assert!(err.to_string().contains(&pfn.to_string()), "{err}");
    }
    // Nothing was discarded.
    assert!(arena.bytes(&block).iter().all(|&b| b == 0x77));
    // Next to it is fine.
    let after = Pfn(pfn.0 + n.nr_pages().0);
    arena
        .discard_range(after, PageCount(8), Advice::DontNeed)
        .unwrap();
    arena.free(block).unwrap();
    arena.discard(pfn, n, Advice::DontNeed).unwrap();
}

#[test]
fn a_block_of_another_arena_is_given_back() {
    let a = arena(SMALL_BYTES);
    let b = arena(SMALL_BYTES);
    let block = a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    let pfn = a.pfn(&block);
    let Err(FreeError::Foreign { block }) = b.free(block) else {
        panic!("another arena's block was accepted");
    };
    assert_eq!(a.pfn(&block), pfn);
    b.check_invariants().unwrap();
    a.free(block).unwrap();
    let err = FreeError::Foreign {
        block: a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap(),
    };
    assert!(err.to_string().contains("another arena"), "{err}");
    let refused = FreeError::Refused {
        block: a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap(),
        pfn,
        error: BlockError::AlreadyFree { pfn },
    };
    assert!(std::error::Error::source(&refused).is_some());
}

#[test]
#[should_panic(expected = "belongs to another arena")]
fn bytes_of_a_block_of_another_arena_panics() {
    let a = arena(SMALL_BYTES);
    let b = arena(SMALL_BYTES);
    let block = a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    let _ = b.bytes(&block);
}

#[test]
fn bad_arenas_are_refused() {
    let size = |bytes| Arena::new(bytes, Config::default()).unwrap_err();
    assert!(matches!(
        size(0),
        NewError::Size {
            size_bytes: 0,
            page_size_bytes: 4096
        }
    ));
    let err = size(SMALL_BYTES + 1);
    assert!(matches!(err, NewError::Size { size_bytes, .. } if size_bytes == SMALL_BYTES + 1));
    assert!(
        err.to_string().contains(&(SMALL_BYTES + 1).to_string()),
        "{err}"
    );

    let with = |f: fn(&mut Config)| {
        let mut config = Config::default();
        f(&mut config);
        Arena::new(SMALL_BYTES, config).unwrap_err()
    };
    let err = with(|c| c.page_size_bytes = 8192);
    assert!(matches!(
        err,
        NewError::PageSize {
            config_bytes: 8192,
            os_bytes: 4096
        }
    ));
    assert!(err.to_string().contains("8192"), "{err}");
    let err = with(|c| c.nr_orders = 0);
    assert!(
        matches!(err, NewError::Config(ConfigError::NrOrders { .. })),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn allocation_errors_are_the_allocators() {
    let arena = arena(SMALL_BYTES);
    assert_eq!(
        arena.alloc(order(11), AllocFlags::KERNEL).unwrap_err(),
        AllocError::InvalidOrder {
            order: order(11),
            max: order(10)
        }
    );
    // The arena is one Normal zone: DMA32-only requests have nowhere to go.
    assert_eq!(
        arena.alloc(Order::ZERO, AllocFlags::DMA32).unwrap_err(),
        AllocError::NoZone
    );
    let blocks = alloc_all(&arena, order(10));
    assert!(!blocks.is_empty());
    assert_eq!(
        arena.alloc(order(10), AllocFlags::KERNEL).unwrap_err(),
        AllocError::NoMemory { order: order(10) }
    );
    for block in blocks {
        arena.free(block).unwrap();
    }
    arena.check_invariants().unwrap();
}
