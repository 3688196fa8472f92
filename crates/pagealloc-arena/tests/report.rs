//! Free page reporting over an arena: reported memory reads as zeros when
//! reused, the engine's invariants hold after every pass, allocated blocks
//! keep their bytes while a reporter thread runs beside their users, and
//! the `MADV_FREE` safeguard holds for reported pages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pagealloc_arena::{
    lazy_free_bytes, Advice, AllocFlags, Arena, Block, Config, Order, ReportError, Reporter,
    ReportingPolicy, ReportingState,
};

const ORDER_9: u8 = 9;

fn arena(bytes: usize) -> Arena {
    let config = Config {
        reporting: Some(ReportingPolicy::default()),
        ..Config::default()
    };
    Arena::new(bytes, config).unwrap()
}

fn alloc_filled(arena: &Arena, order: Order, byte: u8) -> Block {
    let mut block = arena.alloc(order, AllocFlags::HIGHUSER_MOVABLE).unwrap();
    arena.bytes_mut(&mut block).fill(byte);
    block
}

/// Passes until one reports nothing, with the invariants checked after
/// each; returns how many ran.
fn report_all(arena: &Arena, advice: Advice) -> u32 {
    let mut passes = 0;
    loop {
        let pass = arena.report_pass(advice).unwrap();
        passes += 1;
        arena.check_invariants().unwrap();
        let info = arena.reporting_info().unwrap();
        assert!(info.zones.iter().all(|z| z.in_flight == 0), "{info}");
        if pass.batches == 0 {
            return passes;
        }
        assert!(passes < 64);
    }
}

#[test]
fn reported_pages_read_as_zeros_when_reused() {
    let arena = arena(256 << 20);
    let order = Order::new(ORDER_9).unwrap();
    let blocks: Vec<Block> = (0..32).map(|_| alloc_filled(&arena, order, 0xa5)).collect();
    // Order-0 blocks too: they merge back into reportable blocks.
    let small: Vec<Block> = (0..1024)
        .map(|_| alloc_filled(&arena, Order::ZERO, 0x5a))
        .collect();
    for block in blocks.into_iter().chain(small) {
        arena.free(block).unwrap();
    }
    arena.drain_cpu_lists();
    report_all(&arena, Advice::DontNeed);
    assert_eq!(arena.reporting_info().unwrap().reported_fraction(), 1.0);
    // Everything free is reported, so every reused page comes from a
    // reported block and reads as zeros, at both orders.
    let before = arena.stats().reported_reallocated;
    let again: Vec<Block> = (0..48)
        .map(|_| arena.alloc(order, AllocFlags::HIGHUSER_MOVABLE).unwrap())
        .collect();
    let small: Vec<Block> = (0..2048)
        .map(|_| {
            arena
                .alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE)
                .unwrap()
        })
        .collect();
    for block in again.iter().chain(&small) {
        assert!(
            arena.bytes(block).iter().all(|&b| b == 0),
            "block at {} kept old bytes",
            arena.pfn(block)
        );
    }
    assert!(arena.stats().reported_reallocated - before >= 48 * 512 + 2048);
    for block in again.into_iter().chain(small) {
        arena.free(block).unwrap();
    }
    arena.check_invariants().unwrap();
}

#[test]
fn invariants_hold_and_allocated_blocks_keep_their_bytes_across_passes() {
    let arena = arena(256 << 20);
    let order = Order::new(ORDER_9).unwrap();
    // Live blocks interleaved with freed ones, at several orders.
    let mut live = Vec::new();
    let mut freed = Vec::new();
    for i in 0..96u32 {
        let o = Order::new([0, 3, 9][i as usize % 3]).unwrap();
        let block = alloc_filled(&arena, o, i as u8);
        if i % 2 == 0 {
            live.push((block, i as u8));
        } else {
            freed.push(block);
        }
    }
    for block in freed {
        arena.free(block).unwrap();
    }
    for _ in 0..3 {
        report_all(&arena, Advice::DontNeed);
        for (block, byte) in &live {
            assert!(arena.bytes(block).iter().all(|b| b == byte));
        }
        // Churn between rounds: reported blocks are split, used, freed.
        let churn: Vec<Block> = (0..8).map(|_| alloc_filled(&arena, order, 0xee)).collect();
        for block in churn {
            arena.free(block).unwrap();
        }
        arena.check_invariants().unwrap();
    }
    for (block, _) in live {
        arena.free(block).unwrap();
    }
    arena.check_invariants().unwrap();
}

#[test]
fn reporting_off_refuses_passes() {
    let arena = Arena::new(64 << 20, Config::default()).unwrap();
    assert_eq!(arena.reporting_state(), ReportingState::Off);
    assert!(arena.reporting_info().is_none());
    assert!(matches!(
        arena.report_pass(Advice::DontNeed),
        Err(ReportError::Off)
    ));
    let arena = Arc::new(arena);
    let err = Reporter::spawn(arena, Duration::from_millis(1), Advice::DontNeed).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
}

#[test]
fn free_advice_on_reported_pages_is_undone_when_they_are_reused() {
    let arena = arena(256 << 20);
    let order = Order::new(ORDER_9).unwrap();
    let blocks: Vec<Block> = (0..32).map(|_| alloc_filled(&arena, order, 0x77)).collect();
    for block in blocks {
        arena.free(block).unwrap();
    }
    arena.drain_cpu_lists();
    let lazy_before = lazy_free_bytes().unwrap();
    report_all(&arena, Advice::Free);
    let lazy_reported = lazy_free_bytes().unwrap();
    assert!(
        lazy_reported >= lazy_before + (32 << 21) / 2,
        "MADV_FREE reports left {lazy_reported} lazily freed (was {lazy_before})"
    );
    // Reused pages were written once by the arena, so the kernel keeps
    // them: they are no longer lazily freed, and their first byte is 0.
    let again: Vec<Block> = (0..32)
        .map(|_| arena.alloc(order, AllocFlags::HIGHUSER_MOVABLE).unwrap())
        .collect();
    let lazy_reused = lazy_free_bytes().unwrap();
    assert!(
        lazy_reused + (32 << 21) / 2 <= lazy_reported,
        "reused reported pages still lazily freed: {lazy_reused} of {lazy_reported}"
    );
    for block in &again {
        let bytes = arena.bytes(block);
        for page in bytes.chunks(4096) {
            assert_eq!(page[0], 0);
            assert!(page.iter().all(|&b| b == 0 || b == 0x77));
        }
    }
    for block in again {
        arena.free(block).unwrap();
    }
    arena.check_invariants().unwrap();
}

#[test]
fn a_reporter_thread_reports_while_other_threads_use_the_arena() {
    let arena = Arc::new(arena(256 << 20));
    let reporter = Reporter::spawn(
        Arc::clone(&arena),
        Duration::from_millis(1),
        Advice::DontNeed,
    )
    .unwrap();
    // Two users allocate, fill, check and free while the reporter runs.
    let users: Vec<_> = (0..2u8)
        .map(|t| {
            let arena = Arc::clone(&arena);
            std::thread::spawn(move || {
                let order = Order::new(ORDER_9).unwrap();
                for round in 0..50u8 {
                    let byte = t.wrapping_mul(100).wrapping_add(round) | 1;
                    let blocks: Vec<Block> =
                        (0..4).map(|_| alloc_filled(&arena, order, byte)).collect();
                    std::thread::sleep(Duration::from_micros(200));
                    for block in blocks {
                        assert!(arena.bytes(&block).iter().all(|&b| b == byte));
                        arena.free(block).unwrap();
                    }
                }
            })
        })
        .collect();
    for user in users {
        user.join().unwrap();
    }
    arena.drain_cpu_lists();
    // The frees asked for passes; the reporter gets to all of it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while arena.reporting_info().unwrap().reported_fraction() < 0.95 {
        assert!(
            Instant::now() < deadline,
            "{}",
            arena.reporting_info().unwrap()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = reporter.stop();
    assert!(stats.passes > 0 && stats.pages_reported > 0, "{stats:?}");
    assert_eq!(stats.failed_batches, 0, "{stats:?}");
    arena.check_invariants().unwrap();
    let info = arena.reporting_info().unwrap();
    assert!(info.zones.iter().all(|z| z.in_flight == 0), "{info}");
}
