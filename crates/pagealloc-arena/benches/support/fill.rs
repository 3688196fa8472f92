//! The arena the contiguous-allocation cost is measured on, shared by
//! `benches/contig.rs` (criterion) and `examples/contig_cost.rs`
//! (callgrind): 1 GiB, every page touched once, then half full of movable
//! blocks of orders 0 to 3 spread over all of it.
//!
//! A fill allocates movable blocks of random orders (ignoring the
//! watermarks) until the arena is full, then frees random blocks until half
//! of its pages are free, and drains the per-CPU lists: every pageblock
//! ends up about half used, so no 64 MiB range is free and a contiguous
//! allocation has to move about half of its pages. The first fill writes
//! every block, so every page of the arena is resident before anything is
//! timed: a destination frame never costs a page fault.

#![allow(dead_code)]

use pagealloc_arena::{AllocError, AllocFlags, Arena, Block, Config, ContigRun, Order};

/// The arena's size.
pub const ARENA_BYTES: usize = 1 << 30;
/// The contiguous allocation measured: 64 MiB.
pub const RUN_BYTES: usize = 64 << 20;
/// A CMA area's size, for the `cma_alloc` case.
pub const CMA_BYTES: usize = 256 << 20;
/// Blocks are of orders `0..=MAX_FILL_ORDER`.
pub const MAX_FILL_ORDER: u64 = 3;
/// The share of the arena's pages left allocated, in percent.
pub const FULL_PERCENT: u64 = 50;

/// Marsaglia's xorshift64: deterministic and cheap.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number.
    pub fn step(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// An arena and the blocks that fill it.
pub struct Filled {
    /// The arena.
    pub arena: Arena,
    /// Its blocks.
    pub blocks: Vec<Block>,
    /// The run of the last measured call, freed by the next refill.
    pub run: Option<ContigRun>,
    /// Seeds each fill; every fill uses the same sequence.
    seed: u64,
}

impl Filled {
    /// A 1 GiB arena with `config`, every page written once, then filled.
    pub fn new(config: Config, seed: u64) -> Filled {
        let arena = Arena::new(ARENA_BYTES, config).expect("arena");
        let mut filled = Filled {
            arena,
            blocks: Vec::new(),
            run: None,
            seed,
        };
        filled.alloc_all();
        for block in &mut filled.blocks {
            filled.arena.bytes_mut(block).fill(0xa5);
        }
        filled.thin();
        filled
    }

    /// Frees everything (the last run too) and fills again.
    pub fn refill(&mut self) {
        if let Some(run) = self.run.take() {
            self.arena.free_contig(run).expect("free run");
        }
        for block in self.blocks.drain(..) {
            self.arena.free(block).expect("free");
        }
        self.arena.drain_cpu_lists();
        self.alloc_all();
        self.thin();
    }

    /// Allocates movable blocks of random orders until the arena is full.
    fn alloc_all(&mut self) {
        let mut rng = XorShift(self.seed);
        let flags = AllocFlags::HIGHUSER_MOVABLE | AllocFlags::NO_WATERMARKS;
        let mut failures = 0;
        while failures < 16 {
            let order = Order::new((rng.step() % (MAX_FILL_ORDER + 1)) as u8).expect("order");
            match self.arena.alloc(order, flags) {
                Ok(block) => self.blocks.push(block),
                Err(AllocError::NoMemory { .. }) => failures += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Frees random blocks until [`FULL_PERCENT`] of the pages are left.
    fn thin(&mut self) {
        let mut rng = XorShift(self.seed ^ 0x9e37_79b9_7f4a_7c15);
        let keep = self.arena.nr_pages().0 * FULL_PERCENT / 100;
        let mut pages: u64 = self.blocks.iter().map(|b| b.nr_pages().0).sum();
        while pages > keep {
            let i = (rng.step() % self.blocks.len() as u64) as usize;
            let block = self.blocks.swap_remove(i);
            pages -= block.nr_pages().0;
            self.arena.free(block).expect("free");
        }
        self.arena.drain_cpu_lists();
    }
}
