//! Discarding gives memory back to the OS, as the kernel counts it.
//!
//! One test in its own binary (its own process), so no other test touches
//! memory while the resident set is measured. The assertions compare
//! measured figures with each other: the resident set must grow by most of
//! what was touched, and discarding must take back at least half of that
//! growth.

use pagealloc_arena::{
    lazy_free_bytes, resident_bytes, Advice, AllocFlags, Arena, Block, Config, Order,
};

/// Bytes touched: 64 MiB.
const TOUCHED_BYTES: usize = 64 << 20;

const MIB: f64 = (1 << 20) as f64;

/// Allocates `TOUCHED_BYTES` in 2 MiB blocks and writes every byte.
fn touch(arena: &Arena) -> Vec<Block> {
    let order = Order::new(9).unwrap();
    let mut blocks = Vec::new();
    while blocks.len() * (4096 << 9) < TOUCHED_BYTES {
        let mut block = arena.alloc(order, AllocFlags::HIGHUSER_MOVABLE).unwrap();
        arena.bytes_mut(&mut block).fill(0x3c);
        blocks.push(block);
    }
    blocks
}

fn free_all(arena: &Arena, blocks: Vec<Block>) {
    for block in blocks {
        arena.free(block).unwrap();
    }
}

#[test]
fn discarding_freed_memory_shrinks_the_resident_set() {
    // Twice what is touched, so the watermarks never get in the way.
    let mut arena = Arena::new(2 * TOUCHED_BYTES, Config::default()).unwrap();
    let (start, nr_pages) = (arena.start_pfn(), arena.nr_pages());

    let before = resident_bytes().unwrap();
    let blocks = touch(&arena);
    let touched = resident_bytes().unwrap();
    free_all(&arena, blocks);
    let freed = resident_bytes().unwrap();
    arena
        .discard_range(start, nr_pages, Advice::DontNeed)
        .unwrap();
    let discarded = resident_bytes().unwrap();
    eprintln!(
        "MADV_DONTNEED: resident {:.1} MiB before, {:.1} touched, {:.1} freed, {:.1} discarded",
        before as f64 / MIB,
        touched as f64 / MIB,
        freed as f64 / MIB,
        discarded as f64 / MIB
    );
    let grown = touched.saturating_sub(before);
    assert!(
        grown >= (TOUCHED_BYTES as u64) * 3 / 4,
        "touching {TOUCHED_BYTES} bytes grew the resident set by only {grown}"
    );
    let dropped = touched.saturating_sub(discarded);
    assert!(
        dropped >= grown / 2,
        "discarding gave back {dropped} bytes of the {grown} touched"
    );

    // MADV_FREE leaves the pages resident until the kernel wants them, but
    // counts them as lazily freed.
    let lazy_before = lazy_free_bytes().unwrap();
    let blocks = touch(&arena);
    free_all(&arena, blocks);
    arena.discard_range(start, nr_pages, Advice::Free).unwrap();
    let lazy_after = lazy_free_bytes().unwrap();
    eprintln!(
        "MADV_FREE: lazily freed {:.1} MiB before, {:.1} after; resident {:.1} MiB",
        lazy_before as f64 / MIB,
        lazy_after as f64 / MIB,
        resident_bytes().unwrap() as f64 / MIB
    );
    let lazy = lazy_after.saturating_sub(lazy_before);
    assert!(
        lazy >= grown / 2,
        "MADV_FREE on {grown} touched bytes left only {lazy} lazily freed"
    );
    arena.check_invariants().unwrap();
}
