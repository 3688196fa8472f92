//! The operations of a random sequence and their strategies, and how a
//! "bad" operation picks the frame and order it names.

use pagealloc::Order;
use proptest::prelude::*;

use crate::common::FLAGS;
use crate::reference::{Held, Model};

/// One step of a random sequence.
#[derive(Clone, Debug)]
pub enum Op {
    /// Allocate; `node` 0 uses `alloc`, 1 `alloc_on(1)`, 2 an absent node.
    Alloc { order: u8, flags: usize, node: u8 },
    /// Allocate with the same request until it fails or `max` succeeded.
    Burst { order: u8, flags: usize, max: u16 },
    /// Allocate with one request until it fails (memory pressure), then
    /// make a few `GFP_ATOMIC` requests of `atomic_order`.
    Pressure {
        order: u8,
        flags: usize,
        atomic_order: u8,
        atomics: u8,
    },
    /// Free one held block.
    Free { pick: usize },
    /// Free up to `n` held blocks.
    FreeMany { pick: usize, n: u16 },
    /// `split_page` a held block.
    Split { pick: usize },
    /// Free every piece of one split block, in a shuffled order.
    FreeGroup { pick: usize, seed: u64 },
    /// A call that names something other than an allocated block.
    Bad {
        kind: BadKind,
        pick: usize,
        raw: u64,
        split: bool,
    },
    /// Hold CPU 0's lists (`Allocator::local`) for a few calls, then drop
    /// them.
    Local { steps: Vec<LocalStep> },
}

/// One call through a held `LocalLists`.
#[derive(Clone, Copy, Debug)]
pub enum LocalStep {
    Alloc {
        order: u8,
        flags: usize,
    },
    /// Free one held block.
    Free {
        pick: usize,
    },
    /// Free a recently freed block again.
    AlreadyFree {
        pick: usize,
    },
    /// `LocalLists::drain`.
    Drain,
}

/// What a bad call aims at (the model decides the exact error, since an
/// aim can land on something else, even on a valid block).
#[derive(Clone, Copy, Debug)]
pub enum BadKind {
    AlreadyFree,
    WrongOrder,
    Misaligned,
    TailPage,
    OutOfRange,
    InHole,
    InvalidOrder,
    Random,
}

fn order_strategy(max: u8) -> BoxedStrategy<u8> {
    prop_oneof![
        8 => Just(0u8),
        4 => 1..=max.min(3),
        3 => 0..=max,
        1 => (max + 1)..=Order::LIMIT.get(),
    ]
    .boxed()
}

pub fn flag_index(name: &str) -> usize {
    FLAGS.iter().position(|(n, _)| *n == name).unwrap()
}

pub fn op_strategy(max: u8) -> impl Strategy<Value = Op> {
    let nr_flags = FLAGS.len();
    let atomic = flag_index("GFP_ATOMIC");
    let bad_kind = prop_oneof![
        Just(BadKind::AlreadyFree),
        Just(BadKind::WrongOrder),
        Just(BadKind::Misaligned),
        Just(BadKind::TailPage),
        Just(BadKind::OutOfRange),
        Just(BadKind::InHole),
        Just(BadKind::InvalidOrder),
        Just(BadKind::Random),
    ];
    prop_oneof![
        30 => (order_strategy(max), 0..nr_flags, prop_oneof![8 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)])
            .prop_map(|(order, flags, node)| Op::Alloc { order, flags, node }),
        5 => (1..=max).prop_map(move |order| Op::Alloc { order, flags: atomic, node: 0 }),
        4 => (order_strategy(max), 0..nr_flags, 1u16..80)
            .prop_map(|(order, flags, max)| Op::Burst { order, flags, max }),
        1 => (order_strategy(max), 0..nr_flags, 1..=max, 1u8..8).prop_map(
            |(order, flags, atomic_order, atomics)| Op::Pressure { order, flags, atomic_order, atomics }
        ),
        20 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        3 => (any::<usize>(), 1u16..48).prop_map(|(pick, n)| Op::FreeMany { pick, n }),
        5 => any::<usize>().prop_map(|pick| Op::Split { pick }),
        3 => (any::<usize>(), any::<u64>()).prop_map(|(pick, seed)| Op::FreeGroup { pick, seed }),
        20 => (bad_kind, any::<usize>(), any::<u64>(), any::<bool>())
            .prop_map(|(kind, pick, raw, split)| Op::Bad { kind, pick, raw, split }),
        4 => proptest::collection::vec(local_step_strategy(max), 1..8)
            .prop_map(|steps| Op::Local { steps }),
    ]
}

fn local_step_strategy(max: u8) -> impl Strategy<Value = LocalStep> {
    let nr_flags = FLAGS.len();
    prop_oneof![
        6 => (order_strategy(max), 0..nr_flags)
            .prop_map(|(order, flags)| LocalStep::Alloc { order, flags }),
        5 => any::<usize>().prop_map(|pick| LocalStep::Free { pick }),
        2 => any::<usize>().prop_map(|pick| LocalStep::AlreadyFree { pick }),
        1 => Just(LocalStep::Drain),
    ]
}

impl Model {
    /// The frame and order a bad call of `kind` names.
    pub fn bad_target(&self, kind: BadKind, pick: usize, raw: u64) -> (u64, u8) {
        let m = self;
        let max = m.max();
        let random = (m.present_pfn(raw), (raw >> 32) as u8 % (max + 1));
        match kind {
            BadKind::AlreadyFree => match m.freed.len() {
                0 => (m.present_pfn(raw), 0),
                n => m.freed[pick % n],
            },
            BadKind::WrongOrder => m.nth_held(pick).map_or(random, |(p, h)| {
                (p, (h.order + 1 + (raw % max as u64) as u8) % (max + 1))
            }),
            BadKind::Misaligned => (m.present_pfn(raw) | 1, 1 + (raw >> 40) as u8 % max),
            BadKind::TailPage => {
                let big: Vec<(u64, Held)> = m
                    .held
                    .iter()
                    .filter(|(_, h)| h.order > 0)
                    .map(|(&p, &h)| (p, h))
                    .collect();
                if big.is_empty() {
                    return random;
                }
                let (p, h) = big[pick % big.len()];
                let tail = p + 1 + raw % ((1 << h.order) - 1);
                let order = if raw & (1 << 63) != 0 {
                    0
                } else {
                    (tail.trailing_zeros() as u8).min(max)
                };
                (tail, order)
            }
            BadKind::OutOfRange => {
                let last = m.zones.iter().map(|z| z.end).max().unwrap();
                let first = m.zones[0].start;
                let gaps: Vec<u64> = m
                    .zones
                    .windows(2)
                    .filter(|w| w[0].end < w[1].start)
                    .map(|w| w[0].end)
                    .collect();
                let pfn = match raw % 5 {
                    0 => last + (raw >> 8) % 4096,
                    1 => u64::MAX - (raw >> 8) % 16,
                    2 if first > 0 => (raw >> 8) % first,
                    3 if !gaps.is_empty() => gaps[pick % gaps.len()],
                    _ => 1 << 50,
                };
                (pfn, 0)
            }
            BadKind::InHole => match m.holes.len() {
                0 => random,
                n => {
                    let (s, e) = m.holes[pick % n];
                    (s + raw % (e - s), 0)
                }
            },
            BadKind::InvalidOrder => {
                let pfn = m.nth_held(pick).map_or(random.0, |(p, _)| p);
                let span = Order::LIMIT.get() - max;
                (pfn, max + 1 + (raw % span as u64) as u8)
            }
            BadKind::Random => {
                let last = m.zones.iter().map(|z| z.end).max().unwrap();
                (
                    raw % (last + 64),
                    (raw >> 40) as u8 % (Order::LIMIT.get() + 1),
                )
            }
        }
    }
}
