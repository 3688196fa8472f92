//! Draining per-CPU lists back to the buddy lists (Linux
//! `drain_local_pages`, `drain_all_pages`, and the drain before an
//! allocation fails).

use lock_api::RawMutex;

use super::slot::try_lock_for_a_while;
use super::zonelist::ZonelistId;
use super::Allocator;
use crate::error::InvalidCpu;
use crate::pcp::lists::CpuLists;
use crate::units::CpuId;

impl<R: RawMutex> Allocator<R> {
    /// Drains every CPU's lists for the zones of a zonelist, before an
    /// allocation fails. `own` are the calling CPU's lists if it holds them.
    /// Another CPU's lists are tried for a bounded while
    /// ([`DRAIN_TRY_SPINS`]), never waited for without bound: the caller
    /// holds its own lists, so two CPUs draining each other, or a thread
    /// holding [`crate::LocalLists`] that allocates on another CPU, cannot
    /// deadlock. An ordinary call holds its lists for well under that bound;
    /// lists held longer (a `LocalLists`) are skipped, and their pages do
    /// not count. Returns whether any page came back.
    pub(crate) fn drain_zonelist(
        &self,
        zonelist: ZonelistId,
        cpu: CpuId,
        mut own: Option<&mut CpuLists>,
    ) -> bool {
        let mut any = false;
        for &zi in self.zonelist(zonelist) {
            for (c, slot) in self.cpus.iter().enumerate() {
                let drained = match own.as_deref_mut() {
                    Some(lists) if c == cpu.0 as usize => self.drain_lists(lists, zi),
                    _ => try_lock_for_a_while(&slot.lists)
                        .map_or(0, |mut lists| self.drain_lists(&mut lists, zi)),
                };
                any |= drained > 0;
            }
        }
        any
    }

    /// Drains one CPU's lists of zone `zi`; returns the pages drained.
    pub(crate) fn drain_lists(&self, lists: &mut CpuLists, zi: usize) -> u64 {
        let pcp = &mut lists.zones[zi];
        if pcp.count == 0 {
            return 0;
        }
        let count = pcp.count;
        let mut guard = self.zones[zi].lock();
        pcp.drain(&mut guard.ops(), count, 0);
        count
    }

    /// Returns every page on `cpu`'s lists to the buddy lists (Linux
    /// `drain_local_pages`). Returns the pages drained.
    ///
    /// It waits for the lists' lock: a thread holding these lists as
    /// [`LocalLists`](crate::LocalLists) drains them with [`LocalLists::drain`](crate::LocalLists::drain) instead.
    pub fn drain_local(&self, cpu: CpuId) -> Result<u64, InvalidCpu> {
        let mut lists = self.cpu_slot(cpu)?.lists.lock();
        Ok((0..self.zones.len())
            .map(|zi| self.drain_lists(&mut lists, zi))
            .sum())
    }

    /// Returns every page on every CPU's lists to the buddy lists (Linux
    /// `drain_all_pages`), as isolation and contiguous allocation need.
    /// Returns the pages drained.
    /// It waits for each CPU's lock in turn, so it must not be called by a
    /// thread that holds [`LocalLists`](crate::LocalLists).
    pub fn drain_all(&self) -> u64 {
        self.cpus
            .iter()
            .map(|slot| {
                let mut lists = slot.lists.lock();
                (0..self.zones.len())
                    .map(|zi| self.drain_lists(&mut lists, zi))
                    .sum::<u64>()
            })
            .sum()
    }
}
