//! What the migration tests share: blocks filled with known bytes, and
//! the accounting every test checks after a call.

#![allow(dead_code)]

use pagealloc_arena::{AllocError, AllocFlags, Arena, Block, ContigRun, Order, Pfn};

/// A small xorshift, so runs repeat.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random bytes that blocks copy their contents from, each at its own
/// offset, so no two blocks hold the same bytes and a block that got
/// another's bytes is caught. A block's expected contents are then a slice
/// of the source: checks compare every byte with `memcmp`, which (like the
/// `memcpy` that fills) runs at full speed in unoptimized test builds,
/// where hashing would crawl.
pub struct Source {
    bytes: Vec<u8>,
    rng: XorShift,
}

impl Source {
    /// `len` random bytes plus room for a block of `max_block_bytes`.
    pub fn new(seed: u64, len: usize, max_block_bytes: usize) -> Source {
        let mut rng = XorShift(seed | 1);
        let mut bytes = Vec::with_capacity(len + max_block_bytes);
        while bytes.len() < len + max_block_bytes {
            bytes.extend_from_slice(&rng.next().to_le_bytes());
        }
        Source { bytes, rng }
    }

    /// Fills `dst` with bytes from a random offset; returns what it holds.
    pub fn fill(&mut self, dst: &mut [u8]) -> Held {
        let room = self.bytes.len() - dst.len();
        let at = self.rng.below(room + 1);
        dst.copy_from_slice(&self.bytes[at..at + dst.len()]);
        Held { at, len: dst.len() }
    }

    /// Whether `bytes` are exactly what `held` says.
    pub fn holds(&self, bytes: &[u8], held: Held) -> bool {
        bytes.len() == held.len && bytes == &self.bytes[held.at..held.at + held.len]
    }
}

/// What a block or run was filled with: `len` bytes of the source from
/// `at`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Held {
    pub at: usize,
    pub len: usize,
}

/// A live block and what it holds.
pub struct Live {
    pub block: Block,
    pub held: Held,
}

/// Allocates movable blocks of random orders `0..=max_order` until the
/// allocator says no, each filled from `source`.
pub fn fill_all(
    arena: &Arena,
    source: &mut Source,
    rng: &mut XorShift,
    max_order: u8,
) -> Vec<Live> {
    let mut live = Vec::new();
    let mut failures = 0;
    while failures < 8 {
        let order = Order::new(rng.below(max_order as usize + 1) as u8).unwrap();
        match arena.alloc(order, AllocFlags::HIGHUSER_MOVABLE) {
            Ok(mut block) => {
                let held = source.fill(&mut arena.bytes_mut(&mut block));
                live.push(Live { block, held });
            }
            Err(AllocError::NoMemory { .. }) => failures += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    live
}

/// Frees random blocks of `live` until at most `keep_pages` pages remain
/// in it.
pub fn free_down_to(arena: &Arena, live: &mut Vec<Live>, rng: &mut XorShift, keep_pages: u64) {
    let mut pages: u64 = live.iter().map(|l| l.block.nr_pages().0).sum();
    while pages > keep_pages && !live.is_empty() {
        let l = live.swap_remove(rng.below(live.len()));
        pages -= l.block.nr_pages().0;
        arena.free(l.block).unwrap();
    }
}

/// Every byte of every live block is still what it was filled with.
pub fn assert_intact(arena: &Arena, source: &Source, live: &[Live]) {
    for (i, l) in live.iter().enumerate() {
        assert!(
            source.holds(&arena.bytes(&l.block), l.held),
            "block {i} ({}) at {} lost its bytes",
            l.block.order(),
            arena.pfn(&l.block)
        );
    }
}

/// The first frame of each live block, in order.
pub fn frames(arena: &Arena, live: &[Live]) -> Vec<Pfn> {
    live.iter().map(|l| arena.pfn(&l.block)).collect()
}

/// Every page is accounted for: free + cached + allocated = all, the
/// allocated ones being exactly the live blocks and runs; the handle table
/// agrees with the engine and holds exactly the live blocks; no live block
/// overlaps a run; the engine's invariants hold.
pub fn assert_accounted(arena: &mut Arena, live: &[Live], runs: &[&ContigRun]) {
    arena.check_invariants().unwrap();
    let census = arena.check_handles().unwrap();
    let block_pages: u64 = live.iter().map(|l| l.block.nr_pages().0).sum();
    let run_pages: u64 = runs.iter().map(|r| r.nr_pages().0).sum();
    assert_eq!(census.blocks, live.len() as u64, "handles live");
    assert_eq!(census.pages, block_pages, "pages in handles");
    assert_eq!(census.borrows, 0, "borrows left counted");
    assert_eq!(census.pins, 0, "pins left counted");
    assert_eq!(
        arena.nr_allocated_pages(),
        block_pages + run_pages,
        "allocated pages"
    );
    assert_eq!(
        arena.nr_free_pages() + arena.nr_cached_pages() + arena.nr_allocated_pages(),
        arena.nr_pages().0,
        "pages lost"
    );
    for l in live {
        let (s, e) = (arena.pfn(&l.block), l.block.nr_pages().0);
        for r in runs {
            assert!(
                s.0 + e <= r.start().0 || s >= r.end(),
                "block at {s} inside run {}..{}",
                r.start(),
                r.end()
            );
        }
    }
}
