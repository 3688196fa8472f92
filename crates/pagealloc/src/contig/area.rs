//! A CMA area's state: where it lies and its allocation bitmap, one bit
//! per `2^order_per_bit` pages (Linux `struct cma`). Below the allocator,
//! which keeps one per area; [`super::cma`] allocates with it.

use alloc::vec;
use alloc::vec::Vec;

use lock_api::{Mutex, RawMutex};

use crate::config::CmaArea;
use crate::units::Pfn;

/// One CMA area's state: where it is and its allocation bitmap.
pub(crate) struct CmaState<R: RawMutex> {
    /// The area, placed.
    pub(crate) area: CmaArea,
    /// The zone holding it.
    pub(crate) zone: usize,
    /// Bit `i` set: pages `i << order_per_bit ..` are handed out (or being
    /// taken).
    pub(crate) bitmap: Mutex<R, Bitmap>,
}

impl<R: RawMutex> CmaState<R> {
    pub(crate) fn new(area: CmaArea, zone: usize) -> CmaState<R> {
        let bits = area.nr_pages.0 >> area.order_per_bit;
        CmaState {
            area,
            zone,
            bitmap: Mutex::new(Bitmap::new(bits as usize)),
        }
    }

    /// A copy, its bitmap read under its lock.
    pub(crate) fn snapshot(&self) -> CmaState<R> {
        CmaState {
            area: self.area,
            zone: self.zone,
            bitmap: Mutex::new(self.bitmap.lock().clone()),
        }
    }

    /// The bit of `pfn`, which must lie in the area.
    pub(crate) fn bit(&self, pfn: Pfn) -> usize {
        ((pfn.0 - self.area.start.0) >> self.area.order_per_bit) as usize
    }

    /// The first frame of bit `bit`.
    pub(crate) fn pfn(&self, bit: usize) -> Pfn {
        Pfn(self.area.start.0 + ((bit as u64) << self.area.order_per_bit))
    }
}

/// A fixed-size bit set.
#[derive(Clone, Debug)]
pub(crate) struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl Bitmap {
    fn new(len: usize) -> Bitmap {
        Bitmap {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    pub(crate) fn get(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    pub(crate) fn set_range(&mut self, start: usize, n: usize, on: bool) {
        for i in start..start + n {
            if on {
                self.words[i / 64] |= 1 << (i % 64);
            } else {
                self.words[i / 64] &= !(1 << (i % 64));
            }
        }
    }

    /// The bits, 64 to a word.
    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    /// Bits set.
    pub(crate) fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The first run of `n` clear bits at or after `from` whose start
    /// satisfies `aligned` (Linux `bitmap_find_next_zero_area_off`).
    pub(crate) fn find_clear_run(
        &self,
        from: usize,
        n: usize,
        aligned: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut start = from;
        'candidates: while start + n <= self.len {
            if !aligned(start) {
                start += 1;
                continue;
            }
            for i in (start..start + n).rev() {
                if self.get(i) {
                    start = i + 1;
                    continue 'candidates;
                }
            }
            return Some(start);
        }
        None
    }
}
