//! CPUs: which slot a thread uses, where each CPU lives, and what its
//! per-CPU lists hold.

use alloc::vec::Vec;

use lock_api::RawMutex;

use super::Allocator;
use crate::error::InvalidCpu;
use crate::pcp::lists::PcpInfo;
use crate::units::{CpuId, NodeId};

impl<R: RawMutex> Allocator<R> {
    /// The CPU slot of the calling thread: threads get slots round-robin the
    /// first time they ask, per allocator.
    #[cfg(feature = "std")]
    pub fn this_cpu(&self) -> CpuId {
        use crate::sync::atomic::Ordering;
        use core::cell::Cell;
        std::thread_local! {
            /// (allocator id, slot) of the last allocator this thread used.
            static SLOT: Cell<(u64, u16)> = const { Cell::new((0, 0)) };
        }
        let nr_cpus = self.cpus.len() as u16;
        SLOT.with(|slot| {
            let (owner, cpu) = slot.get();
            if owner == self.id && cpu < nr_cpus {
                return CpuId(cpu);
            }
            let cpu = self.next_slot.fetch_add(1, Ordering::Relaxed) % nr_cpus;
            slot.set((self.id, cpu));
            CpuId(cpu)
        })
    }

    /// How many CPUs the allocator has (each with its own lists).
    pub fn nr_cpus(&self) -> u16 {
        self.cpus.len() as u16
    }

    /// The home node of `cpu`: its allocations prefer that node's zones.
    pub fn cpu_node(&self, cpu: CpuId) -> Result<NodeId, InvalidCpu> {
        Ok(self.cpu_slot(cpu)?.node)
    }

    /// `cpu`'s per-CPU lists, one entry per zone (in the order of
    /// [`Allocator::zones`]). It waits for the lists' lock: a thread
    /// holding them as [`LocalLists`](crate::LocalLists) asks the guard.
    pub fn pcp_info(&self, cpu: CpuId) -> Result<Vec<PcpInfo>, InvalidCpu> {
        let lists = self.cpu_slot(cpu)?.lists.lock();
        Ok(lists.info())
    }
}
