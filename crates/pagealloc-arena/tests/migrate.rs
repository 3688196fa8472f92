//! Contiguous allocation over real memory: the arena's migrator moves
//! movable blocks out of the way with their bytes, handles stay valid,
//! pins and live borrows refuse, CMA areas give their runs back, and runs
//! of another arena are refused.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{assert_accounted, assert_intact, fill_all, frames, free_down_to};
use common::{Live, Source, XorShift};
use pagealloc_arena::{
    AllocFlags, Arena, CmaReservation, CmaSupport, Config, ContigConstraints, ContigError,
    ContigFreeError, ContigRequest, MigrateRefusal, NodeId, Order, PageCount, Pfn, PinError,
    CONTIG_MIGRATE_TRIES,
};

const MIB: usize = 1 << 20;
/// Frames per MiB.
const MIB_PAGES: u64 = (MIB / 4096) as u64;

fn order(n: u8) -> Order {
    Order::new(n).unwrap()
}

/// An arena of `bytes` filled with movable blocks of orders 0..=3 (each
/// holding random bytes), then thinned at random to about `percent`% of
/// its pages, so the blocks are spread over all of it.
/// The bytes the blocks were filled from come back as a [`Source`].
fn filled(bytes: usize, config: Config, percent: u64, seed: u64) -> (Arena, Vec<Live>, Source) {
    let arena = Arena::new(bytes, config).unwrap();
    let mut rng = XorShift(seed);
    let mut source = Source::new(seed, 4 * MIB, 32 * MIB);
    let mut live = fill_all(&arena, &mut source, &mut rng, 3);
    let keep = arena.nr_pages().0 * percent / 100;
    free_down_to(&arena, &mut live, &mut rng, keep);
    arena.drain_cpu_lists();
    (arena, live, source)
}

/// Frees everything and checks that the arena is whole again.
fn free_all(mut arena: Arena, live: Vec<Live>, runs: Vec<pagealloc_arena::ContigRun>) {
    for l in live {
        arena.free(l.block).unwrap();
    }
    for r in runs {
        arena.free_contig(r).unwrap();
    }
    arena.drain_cpu_lists();
    assert_accounted(&mut arena, &[], &[]);
    assert_eq!(arena.nr_free_pages(), arena.nr_pages().0);
}

#[test]
fn a_run_of_many_mib_moves_blocks_and_keeps_every_byte() {
    let (mut arena, live, mut source) = filled(256 * MIB, Config::default(), 50, 0x5eed_0001);
    assert!(live.len() > 5000, "{} blocks", live.len());
    assert_intact(&arena, &source, &live);
    let before = frames(&arena, &live);
    let stats = arena.migration_stats();

    let nr = PageCount(32 * MIB_PAGES);
    let (mut run, info) = arena
        .alloc_contig_pages(nr, &ContigConstraints::default())
        .unwrap();
    assert_eq!(run.nr_pages(), nr);
    assert_eq!(run.size_bytes(), 32 * MIB);
    assert!(info.migrated_blocks > 1000, "{info:?}");
    assert!(info.migrated_pages > 4 * MIB_PAGES, "{info:?}");
    // Every moved block is one whose frame changed, and the migrator's
    // counters agree with the engine's.
    let after = frames(&arena, &live);
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    assert_eq!(moved as u64, info.migrated_blocks);
    let now = arena.migration_stats();
    assert_eq!(now.moved_blocks - stats.moved_blocks, info.migrated_blocks);
    assert_eq!(now.moved_pages - stats.moved_pages, info.migrated_pages);
    // The blocks that moved came from the run's frames.
    for (b, a) in before.iter().zip(&after).filter(|(b, a)| b != a) {
        assert!(*b >= run.start() && *b < run.end(), "{b} moved to {a}");
    }
    assert_intact(&arena, &source, &live);
    assert_accounted(&mut arena, &live, &[&run]);

    // The run's bytes are ours: writing all of them disturbs no block.
    let held = source.fill(arena.run_bytes_mut(&mut run));
    assert!(source.holds(arena.run_bytes(&run), held));
    assert_intact(&arena, &source, &live);

    // A second run, exactly over a range that holds blocks.
    let start = Pfn(arena.end_pfn().0 - 16 * MIB_PAGES - 3);
    let end = Pfn(start.0 + 16 * MIB_PAGES);
    let holders = after.iter().filter(|p| **p >= start && **p < end).count();
    assert!(holders > 0);
    let (second, info) = arena.alloc_contig_range(start, end).unwrap();
    assert_eq!((second.start(), second.end()), (start, end));
    assert!(info.migrated_blocks as usize >= holders, "{info:?}");
    for (i, l) in live.iter().enumerate() {
        let p = arena.pfn(&l.block);
        assert!(p < start || p >= end, "block {i} still at {p}");
    }
    assert_intact(&arena, &source, &live);
    assert!(source.holds(arena.run_bytes(&run), held));
    assert_accounted(&mut arena, &live, &[&run, &second]);
    let runs = vec![run, second];
    free_all(arena, live, runs);
}

#[test]
fn a_pinned_block_makes_its_range_refuse_and_keeps_its_bytes() {
    let (mut arena, live, source) = filled(64 * MIB, Config::default(), 50, 0x5eed_0002);
    // A block in the middle of the arena, and a 4 MiB range around it.
    let target = live
        .iter()
        .position(|l| arena.pfn(&l.block).0 >= arena.start_pfn().0 + 8192)
        .unwrap();
    let pfn = arena.pfn(&live[target].block);
    let nr = 4 * MIB_PAGES;
    let start = Pfn(pfn.0 & !(nr - 1));
    let end = Pfn(start.0 + nr);
    let before = frames(&arena, &live);
    let stats = arena.migration_stats();
    {
        let pin = arena.pin(&live[target].block).unwrap();
        assert_eq!(pin.pfn(), pfn);
        let err = arena.alloc_contig_range(start, end).unwrap_err();
        assert_eq!(
            err,
            ContigError::Busy {
                pfn,
                tries: CONTIG_MIGRATE_TRIES
            }
        );
        // Refused once per try; its neighbours moved out on the first.
        let now = arena.migration_stats();
        assert_eq!(
            now.refused_pinned - stats.refused_pinned,
            u64::from(CONTIG_MIGRATE_TRIES)
        );
        assert!(now.moved_blocks > stats.moved_blocks);
        assert_eq!(pin.pfn(), arena.pfn(&live[target].block));

        // alloc_contig_pages gives that candidate up and takes another.
        let c = ContigConstraints {
            low: start,
            align: PageCount(nr),
            ..ContigConstraints::default()
        };
        let (run, info) = arena.alloc_contig_pages(PageCount(nr), &c).unwrap();
        assert!(info.failed_candidates >= 1, "{info:?}");
        assert!(run.start() >= end, "{} taken over the pin", run.start());
        assert_eq!(arena.pfn(&live[target].block), pfn);
        drop(pin);
        arena.free_contig(run).unwrap();
    }
    // Blocks moved before the failure are valid where they went.
    let after = frames(&arena, &live);
    assert_eq!(after[target], before[target]);
    assert_intact(&arena, &source, &live);
    assert_accounted(&mut arena, &live, &[]);

    // Unpinned, it moves.
    let (run, _) = arena.alloc_contig_range(start, end).unwrap();
    assert_ne!(arena.pfn(&live[target].block), pfn);
    assert_intact(&arena, &source, &live);
    assert_accounted(&mut arena, &live, &[&run]);
    free_all(arena, live, vec![run]);
}

#[test]
fn a_block_whose_bytes_are_borrowed_is_busy_until_the_guard_drops() {
    let (mut arena, mut live, mut source) = filled(32 * MIB, Config::default(), 50, 0x5eed_0003);
    let pfn = arena.pfn(&live[0].block);
    let start = Pfn(pfn.0 & !511);
    let end = Pfn(start.0 + 512);
    let stats = arena.migration_stats();
    {
        let bytes = arena.bytes(&live[0].block);
        let err = arena.alloc_contig_range(start, end).unwrap_err();
        assert!(
            matches!(err, ContigError::Busy { pfn: p, .. } if p == pfn),
            "{err:?}"
        );
        assert!(source.holds(&bytes, live[0].held));
    }
    let now = arena.migration_stats();
    assert_eq!(
        now.refused_busy - stats.refused_busy,
        u64::from(CONTIG_MIGRATE_TRIES)
    );
    assert_eq!(now.refused_pinned, stats.refused_pinned);
    let (run, _) = arena.alloc_contig_range(start, end).unwrap();
    assert_ne!(arena.pfn(&live[0].block), pfn);
    // Written through a guard after the move, read back through another.
    let held = source.fill(&mut arena.bytes_mut(&mut live[0].block));
    live[0].held = held;
    assert_intact(&arena, &source, &live);
    assert_accounted(&mut arena, &live, &[&run]);
    free_all(arena, live, vec![run]);
}

#[test]
fn a_refusing_gate_keeps_blocks_in_place_and_is_counted() {
    let (mut arena, live, source) = filled(32 * MIB, Config::default(), 50, 0x5eed_0004);
    let (start, end) = (arena.start_pfn(), Pfn(arena.start_pfn().0 + 1024));
    let before = frames(&arena, &live);
    let stats = arena.migration_stats();
    let mut asked = 0u64;
    let mut refuse = |_: Pfn, _: Pfn, _: Order| {
        asked += 1;
        Err(MigrateRefusal::Busy)
    };
    let err = arena
        .alloc_contig_gated(&ContigRequest::Range { start, end }, &mut refuse)
        .unwrap_err();
    assert!(matches!(err, ContigError::Busy { .. }), "{err:?}");
    assert!(asked >= u64::from(CONTIG_MIGRATE_TRIES));
    let now = arena.migration_stats();
    assert_eq!(now.refused_by_gate - stats.refused_by_gate, asked);
    assert_eq!(now.moved_blocks, stats.moved_blocks);
    assert_eq!(frames(&arena, &live), before);
    assert_intact(&arena, &source, &live);
    assert_accounted(&mut arena, &live, &[]);
    free_all(arena, live, Vec::new());
}

/// An arena with one CMA area of `cma` bytes (placed at its top).
fn cma_config(cma: usize) -> Config {
    Config {
        cma: CmaSupport::Enabled,
        cma_reservations: vec![CmaReservation {
            nr_pages: PageCount((cma / 4096) as u64),
            align: PageCount(512),
            node: NodeId(0),
            order_per_bit: 0,
        }],
        ..Config::default()
    }
}

#[test]
fn cma_alloc_moves_movable_blocks_out_of_the_area() {
    let (mut arena, live, source) = filled(128 * MIB, cma_config(32 * MIB), 50, 0x5eed_0005);
    let areas = arena.cma_areas();
    assert_eq!(areas.len(), 1);
    let area = areas[0];
    let area_end = area.end().unwrap();
    let inside = |p: Pfn| p >= area.start && p < area_end;
    let users = frames(&arena, &live)
        .into_iter()
        .filter(|p| inside(*p))
        .count();
    assert!(users > 100, "only {users} blocks in the CMA area");

    let half = PageCount(16 * MIB_PAGES);
    let (run, info) = arena.cma_alloc(0, half, order(9)).unwrap();
    assert!(inside(run.start()) && run.end() <= area_end);
    assert!(run.start().is_aligned(order(9)));
    assert_eq!(run.cma_area(), Some(0));
    assert!(info.migrated_blocks > 0, "{info:?}");
    assert_eq!(arena.cma_used_pages(0).unwrap(), half);
    assert_intact(&arena, &source, &live);
    assert_accounted(&mut arena, &live, &[&run]);

    // The rest of the area, in a second run; a third does not fit.
    let (rest, _) = arena.cma_alloc(0, half, Order::ZERO).unwrap();
    assert!(matches!(
        arena.cma_alloc(0, PageCount(1), Order::ZERO).unwrap_err(),
        ContigError::NotFound { .. }
    ));
    for l in &live {
        assert!(!inside(arena.pfn(&l.block)), "a block is left in the area");
    }
    assert_intact(&arena, &source, &live);
    assert_accounted(&mut arena, &live, &[&run, &rest]);

    // cma_release for CMA runs; free_contig frees them too.
    arena.cma_release(run).unwrap();
    assert_eq!(arena.cma_used_pages(0).unwrap(), half);
    arena.free_contig(rest).unwrap();
    assert_eq!(arena.cma_used_pages(0).unwrap(), PageCount(0));
    // A run not from a CMA area is not cma_release's.
    let (plain, _) = arena
        .alloc_contig_pages(PageCount(1024), &ContigConstraints::default())
        .unwrap();
    let Err(ContigFreeError::NotCma { run: plain }) = arena.cma_release(plain) else {
        panic!("cma_release took a plain run");
    };
    assert!(matches!(
        arena.cma_alloc(3, PageCount(1), Order::ZERO),
        Err(ContigError::NoSuchArea { area: 3 })
    ));
    assert_accounted(&mut arena, &live, &[&plain]);
    free_all(arena, live, vec![plain]);
}

#[test]
fn runs_and_pins_of_another_arena_are_refused() {
    let a = Arena::new(8 * MIB, Config::default()).unwrap();
    let b = Arena::new(8 * MIB, Config::default()).unwrap();
    let any = ContigConstraints::default();
    let (run, _) = a.alloc_contig_pages(PageCount(600), &any).unwrap();
    let Err(ContigFreeError::Foreign { run }) = b.free_contig(run) else {
        panic!("another arena's run was freed");
    };
    let Err(err) = b.cma_release(run) else {
        panic!("another arena's run was released");
    };
    assert!(err.to_string().contains("another arena"), "{err}");
    let ContigFreeError::Foreign { run } = err else {
        panic!("{err:?}");
    };
    a.free_contig(run).unwrap();
    let block = a.alloc(Order::ZERO, AllocFlags::MOVABLE).unwrap();
    assert!(matches!(b.pin(&block), Err(PinError::Foreign)));
    a.free(block).unwrap();
}

#[test]
#[should_panic(expected = "contiguous run belongs to another arena")]
fn bytes_of_a_run_of_another_arena_panics() {
    let a = Arena::new(8 * MIB, Config::default()).unwrap();
    let b = Arena::new(8 * MIB, Config::default()).unwrap();
    let (run, _) = a
        .alloc_contig_pages(PageCount(8), &ContigConstraints::default())
        .unwrap();
    let _ = b.run_bytes(&run);
}

#[test]
fn pins_count_up_to_their_limit() {
    let arena = Arena::new(8 * MIB, Config::default()).unwrap();
    let block = arena.alloc(order(2), AllocFlags::MOVABLE).unwrap();
    let pfn = arena.pfn(&block);
    let pins: Vec<_> = (0..1023).map(|_| arena.pin(&block).unwrap()).collect();
    assert_eq!(
        arena.pin(&block).unwrap_err(),
        PinError::TooManyPins { pfn }
    );
    assert!(pins.iter().all(|p| p.pfn() == pfn));
    drop(pins);
    let again = arena.pin(&block).unwrap();
    drop(again);
    arena.free(block).unwrap();
}

/// Two threads fill, check, rewrite, pin and free their own blocks while
/// the main thread takes and frees contiguous runs over the part of the
/// arena they use.
#[test]
fn runs_are_taken_while_other_threads_use_their_blocks() {
    let arena = Arc::new(Arena::new(64 * MIB, Config::default()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..2u64)
        .map(|t| {
            let arena = Arc::clone(&arena);
            let (stop, checks) = (Arc::clone(&stop), Arc::clone(&checks));
            std::thread::spawn(move || worker(&arena, t, &stop, &checks))
        })
        .collect();
    let mut rng = XorShift(0x77);
    let (mut taken, mut failed, mut moved) = (0u64, 0u64, 0u64);
    // Ranges in the lower half, where the workers' blocks are, once they
    // have some.
    while checks.load(Ordering::Relaxed) < 2000 {
        std::thread::yield_now();
    }
    let half = arena.nr_pages().0 / 2;
    for _ in 0..200 {
        let nr = (1 + rng.below(8) as u64) * 256;
        let start = Pfn(arena.start_pfn().0 + rng.below((half - nr) as usize) as u64);
        match arena.alloc_contig_range(start, Pfn(start.0 + nr)) {
            Ok((mut run, info)) => {
                taken += 1;
                moved += info.migrated_blocks;
                arena.run_bytes_mut(&mut run).fill(0x5a);
                assert!(arena.run_bytes(&run) == vec![0x5a; run.size_bytes()]);
                arena.free_contig(run).unwrap();
            }
            Err(
                ContigError::Busy { .. } | ContigError::NotFound { .. } | ContigError::NoMemory,
            ) => failed += 1,
            Err(e) => panic!("{e}"),
        }
        arena.check_invariants().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    eprintln!(
        "beside 2 threads ({} checks): {taken} runs taken, {failed} failed, {moved} blocks moved",
        checks.load(Ordering::Relaxed)
    );
    assert!(taken > 0 && moved > 0, "taken {taken}, moved {moved}");
    let mut arena = Arc::into_inner(arena).unwrap();
    arena.drain_cpu_lists();
    assert_accounted(&mut arena, &[], &[]);
}

/// One thread of [`runs_are_taken_while_other_threads_use_their_blocks`]:
/// keeps blocks of its own filling up to 30% of the arena, and until `stop`
/// checks, rewrites, pins or frees one of them at random, counting each
/// step in `checks`.
fn worker(arena: &Arena, t: u64, stop: &AtomicBool, checks: &AtomicU64) {
    let mut rng = XorShift(0xabc0 + t);
    let mut source = Source::new(t + 1, MIB, 64 << 10);
    let mut live: Vec<Live> = Vec::new();
    let (mut pages, most) = (0, arena.nr_pages().0 * 3 / 10);
    while !stop.load(Ordering::Relaxed) {
        if pages < most {
            let order = order(rng.below(5) as u8);
            if let Ok(mut block) = arena.alloc(order, AllocFlags::HIGHUSER_MOVABLE) {
                let held = source.fill(&mut arena.bytes_mut(&mut block));
                pages += block.nr_pages().0;
                live.push(Live { block, held });
            }
        }
        if live.is_empty() {
            continue;
        }
        let i = rng.below(live.len());
        match rng.below(8) {
            0 => {
                let l = live.swap_remove(i);
                assert!(source.holds(&arena.bytes(&l.block), l.held));
                pages -= l.block.nr_pages().0;
                arena.free(l.block).unwrap();
            }
            1 => {
                let l = &mut live[i];
                l.held = source.fill(&mut arena.bytes_mut(&mut l.block));
            }
            2 => {
                let pin = arena.pin(&live[i].block).unwrap();
                assert!(source.holds(&arena.bytes(&live[i].block), live[i].held));
                assert_eq!(pin.pfn(), arena.pfn(&live[i].block));
            }
            _ => assert!(source.holds(&arena.bytes(&live[i].block), live[i].held)),
        }
        checks.fetch_add(1, Ordering::Relaxed);
    }
    for l in live {
        assert!(source.holds(&arena.bytes(&l.block), l.held));
        arena.free(l.block).unwrap();
    }
}
