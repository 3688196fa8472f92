//! A digest of the whole state: two allocators that answer every future
//! call alike have equal digests, so a test or a what-if probe compares
//! two allocators (or one before and after a refused call) in one number.

use lock_api::RawMutex;

use crate::allocator::Allocator;

/// FNV-1a, 64-bit: small, no table, and good enough to tell states apart
/// (this is no defence against an adversary).
struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn word(&mut self, w: u64) {
        for byte in w.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Fnv::PRIME);
        }
    }
}

impl<R: RawMutex> Allocator<R> {
    /// A 64-bit digest of everything that decides future answers: every
    /// page's hot record (state, order, flags, an allocation's
    /// migratetype), every pageblock's type and isolate mark, pages
    /// offline, every CMA area's bitmap, every free list's entries in
    /// order, the free counters, and every CPU's lists (entries in order)
    /// and tuning. Link slots are not read as such: a slot outside a list
    /// keeps whatever it last held, which decides nothing. Counters of
    /// past events ([`Allocator::stats`]) are left out. It holds every
    /// lock while it reads, and costs one pass over the page records and
    /// the lists.
    pub fn digest(&self) -> u64 {
        let held = self.hold_all();
        let mut h = Fnv(Fnv::OFFSET);
        for (zone, guard) in self.zones.iter().zip(&held.zones) {
            let z = &zone.core;
            h.word(z.start.0);
            for idx in 0..z.pages.len() as u32 {
                h.word(u64::from(z.pages.get(idx).bits()));
            }
            h.word(z.nr_offline);
            for start in z.pageblock_starts() {
                h.word(z.block_mt(start) as u64);
                h.word(z.blocks.base(start) as u64);
            }
            let f = guard.free_areas();
            for area in &f.areas {
                h.word(area.nr_free);
                for list in &area.lists {
                    h.word(list.len());
                    for idx in list.iter(&z.pages) {
                        h.word(u64::from(idx));
                    }
                }
            }
            for w in [
                f.nr_free_pages,
                f.nr_free_cma,
                f.nr_free_highatomic,
                f.nr_reserved_highatomic,
                f.nr_isolated_pageblocks,
            ] {
                h.word(w);
            }
            if let Some(rg) = f.regions.as_deref() {
                // Seed 000: which regions are held (their pages' records
                // say so too) and what each region counts.
                for &w in rg.held_words() {
                    h.word(w);
                }
                for &w in &rg.free {
                    h.word(w);
                }
            }
        }
        for lists in &held.cpus {
            for info in lists.info() {
                for w in [info.count, info.high, info.batch] {
                    h.word(w);
                }
            }
            for (pcp, zone) in lists.zones.iter().zip(&self.zones) {
                for w in pcp.contents(&zone.core) {
                    h.word(w);
                }
            }
        }
        for cma in &self.cma {
            let bitmap = cma.bitmap.lock();
            h.word(cma.area.start.0);
            for &w in bitmap.words() {
                h.word(w);
            }
        }
        drop(held);
        h.0
    }
}
