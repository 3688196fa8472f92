//! The walk behind `Arena::check_handles`: the table against itself and
//! against the engine.

use std::sync::atomic::Ordering;

use pagealloc::{Order, Pfn};

use super::{frame_of, order_of, HandleTable, WORD_BITS};
use super::{BORROW_MASK, BORROW_ONE, LIVE, LOCKED, PIN_MASK, PIN_ONE};
use crate::error::HandleViolation;

impl HandleTable {
    /// Checks the table against itself and against `allocated`, which
    /// says the order of the allocated block starting at a frame, if one
    /// does; frame indices count from `start`. The caller makes sure
    /// nothing changes meanwhile.
    pub(crate) fn census(
        &self,
        start: Pfn,
        allocated: impl Fn(Pfn) -> Option<Order>,
    ) -> Result<HandleCensus, HandleViolation> {
        let pfn = |frame: usize| Pfn(start.0 + frame as u64);
        let mut census = HandleCensus::default();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for (k, entry) in self.entries.iter().enumerate() {
            let word = entry.load(Ordering::Acquire);
            let used = self.used[k / WORD_BITS].load(Ordering::Relaxed) & 1 << (k % WORD_BITS) != 0;
            let key = k as u32;
            if word & LIVE == 0 {
                if word != 0 || used {
                    return Err(HandleViolation::Vacancy { key, used });
                }
                continue;
            }
            if !used {
                return Err(HandleViolation::Vacancy { key, used });
            }
            if word & LOCKED != 0 {
                return Err(HandleViolation::Locked { key });
            }
            let frame = frame_of(word);
            let order = order_of(word);
            if self.heads.get(frame).map(|h| h.load(Ordering::Relaxed)) != Some(key + 1) {
                return Err(HandleViolation::NotInHeads {
                    key,
                    pfn: pfn(frame),
                });
            }
            if allocated(pfn(frame)) != Some(order) {
                return Err(HandleViolation::NotAllocated {
                    key,
                    pfn: pfn(frame),
                    order,
                });
            }
            let nr = order.nr_pages().0;
            census.blocks += 1;
            census.pages += nr;
            census.borrows += (word & BORROW_MASK) / BORROW_ONE;
            census.pins += (word & PIN_MASK) / PIN_ONE;
            spans.push((frame, frame + nr as usize));
        }
        spans.sort_unstable();
        if let Some(pair) = spans.windows(2).find(|p| p[0].1 > p[1].0) {
            return Err(HandleViolation::Overlap {
                pfn: pfn(pair[1].0),
            });
        }
        for (frame, head) in self.heads.iter().enumerate() {
            let Some(key) = head.load(Ordering::Relaxed).checked_sub(1) else {
                continue;
            };
            let word = self
                .entries
                .get(key as usize)
                .map_or(0, |e| e.load(Ordering::Relaxed));
            if word & LIVE == 0 || frame_of(word) != frame {
                return Err(HandleViolation::StrayHead {
                    pfn: pfn(frame),
                    key,
                });
            }
        }
        Ok(census)
    }
}

/// What [`Arena::check_handles`](crate::Arena::check_handles) found.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct HandleCensus {
    /// Live blocks.
    pub blocks: u64,
    /// Frames in live blocks.
    pub pages: u64,
    /// Byte borrows counted (live access guards, and any leaked with
    /// `mem::forget`).
    pub borrows: u64,
    /// Pins counted.
    pub pins: u64,
}
