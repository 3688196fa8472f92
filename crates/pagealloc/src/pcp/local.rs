//! Holding one CPU's per-CPU lists across many calls.
//!
//! Every ordinary call ([`Allocator::alloc_on_cpu`], [`Allocator::free_on_cpu`],
//! the bulk calls) try-locks its CPU's lists, does its work and unlocks: an
//! atomic read-modify-write (the try-lock; the unlock is a release store)
//! per call, which on a current x86 core costs more than a dozen plain
//! instructions. A kernel that has already made itself the only
//! user of a CPU (interrupts and preemption off) needs no lock for each
//! call; [`LocalLists`] is that state as a value. It holds the CPU's lock
//! from [`Allocator::local`] until it is dropped, and every call through it
//! goes straight to the lists. It is the guard-as-proof pattern: the
//! borrow says the lists are held.
//!
//! While it is held, remote drains of this CPU wait ([`Allocator::drain_all`],
//! [`Allocator::drain_local`], and the readers that take every CPU's lock:
//! [`Allocator::stats`], [`Allocator::nr_pcp_pages`],
//! [`Allocator::nr_pcp_pages_per_zone`], [`Allocator::nr_allocated_pages`],
//! [`Allocator::pcp_info`], [`Allocator::metadata_bytes`],
//! [`Allocator::check_invariants`], cloning), so
//! it is for short runs of work, like an interrupts-off section. The
//! thread that holds it calls the guard's own forms of those instead
//! ([`LocalLists::stats`], [`LocalLists::nr_pcp_pages`],
//! [`LocalLists::nr_pcp_pages_per_zone`], [`LocalLists::nr_allocated_pages`],
//! [`LocalLists::pcp_info`], [`LocalLists::metadata_bytes`], [`LocalLists::check_invariants`],
//! [`LocalLists::snapshot`], [`LocalLists::drain`],
//! [`LocalLists::drain_all`]): each lets go of the lists for the call and
//! takes them back after, so it never waits for another CPU while holding
//! its own. Allocation slow paths never wait for
//! a lock held this way: they drain what they can and skip busy CPUs. Frees
//! still take each block over with a compare-and-swap, so a double free
//! racing from another CPU fails cleanly here too.

use lock_api::{MutexGuard, RawMutex};

use alloc::vec::Vec;

use crate::allocator::Allocator;
use crate::config::PcpMode;
use crate::error::{AllocError, BlockError, BulkFreeError, InvariantViolation, LocalError};
use crate::events::{AllocKind, FreeKind};
use crate::pcp::lists::{CpuLists, PcpInfo};
use crate::stats::VmStats;
use crate::sync::DefaultLock;
use crate::units::{AllocFlags, CpuId, Order, Pfn};

/// One CPU's per-CPU lists, held (see the module docs). Made by
/// [`Allocator::local`]; the lock is released when it is dropped.
///
/// ```
/// use pagealloc::{AllocFlags, Allocator, Config, CpuId, LocalError, MemoryMap, Order, PageCount, Pfn};
///
/// let map = MemoryMap::contiguous(Pfn(0x1000), PageCount(16384)).unwrap();
/// let a: Allocator = Allocator::new(map, Config::default()).unwrap();
/// let mut cpu0 = a.local(CpuId(0)).unwrap();
/// let page = cpu0.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
/// cpu0.free(page, Order::ZERO).unwrap();
/// assert!(cpu0.free(page, Order::ZERO).is_err()); // still a typed error
/// assert_eq!(a.local(CpuId(0)).unwrap_err(), LocalError::Busy { cpu: 0 });
/// drop(cpu0); // releases CPU 0's lists
/// a.check_invariants().unwrap();
/// ```
pub struct LocalLists<'a, R: RawMutex = DefaultLock> {
    allocator: &'a Allocator<R>,
    cpu: CpuId,
    zonelists: usize,
    lists: MutexGuard<'a, R, CpuLists>,
}

impl<R: RawMutex> Allocator<R> {
    /// Holds `cpu`'s per-CPU lists until the returned value is dropped, so
    /// that the calls made through it pay no lock each. Fails with
    /// [`LocalError::Busy`] if someone else holds them (another
    /// `LocalLists`, a drain, an ordinary call in flight on that CPU): it
    /// never waits.
    pub fn local(&self, cpu: CpuId) -> Result<LocalLists<'_, R>, LocalError> {
        let slot = self.cpu_slot(cpu)?;
        let lists = slot
            .lists
            .try_lock()
            .ok_or(LocalError::Busy { cpu: cpu.0 })?;
        Ok(LocalLists {
            allocator: self,
            cpu,
            zonelists: slot.zonelists,
            lists,
        })
    }
}

impl<R: RawMutex> LocalLists<'_, R> {
    /// The CPU whose lists these are.
    pub fn cpu(&self) -> CpuId {
        self.cpu
    }

    /// Pages on these lists, all zones.
    pub fn nr_pages(&self) -> u64 {
        self.lists.count()
    }

    /// The lists for a call, or `None` with per-CPU lists off (then every
    /// call goes to the buddy lists, as the ordinary calls do).
    #[inline(always)]
    fn held(&mut self) -> Option<&mut CpuLists> {
        (self.allocator.config.pcp == PcpMode::Enabled).then_some(&mut *self.lists)
    }

    /// [`Allocator::alloc_on_cpu`] on this CPU.
    #[inline(always)]
    pub fn alloc(&mut self, order: Order, flags: AllocFlags) -> Result<Pfn, AllocError> {
        let (a, cpu, zonelists) = (self.allocator, self.cpu, self.zonelists);
        let pfn = a.alloc_pages(cpu, Some(zonelists), order, flags, self.held())?;
        a.emit_alloc(pfn, order, flags, cpu, AllocKind::Single);
        Ok(pfn)
    }

    /// [`Allocator::free_on_cpu`] on this CPU.
    #[inline(always)]
    pub fn free(&mut self, pfn: Pfn, order: Order) -> Result<(), BlockError> {
        let a = self.allocator;
        a.free_pages(pfn, order, self.held())?;
        a.emit_free(pfn, order, self.cpu, FreeKind::Single);
        Ok(())
    }

    /// [`Allocator::alloc_bulk`] on this CPU.
    pub fn alloc_bulk(&mut self, flags: AllocFlags, out: &mut [Pfn]) -> Result<usize, AllocError> {
        let (a, cpu, zonelists) = (self.allocator, self.cpu, self.zonelists);
        let got = a.alloc_bulk_with(cpu, zonelists, flags, out, self.held())?;
        a.emit_bulk_allocs(cpu, flags, &out[..got]);
        Ok(got)
    }

    /// [`Allocator::free_bulk`] on this CPU.
    pub fn free_bulk(&mut self, pfns: &[Pfn]) -> Result<(), BulkFreeError> {
        let a = self.allocator;
        a.free_bulk_with(pfns, self.held())?;
        a.emit_bulk_frees(self.cpu, pfns);
        Ok(())
    }

    /// Returns every page on these lists to the buddy lists (what
    /// [`Allocator::drain_local`] does, for the holder). Returns the pages
    /// drained.
    pub fn drain(&mut self) -> u64 {
        let a = self.allocator;
        (0..a.zones.len())
            .map(|zi| a.drain_lists(&mut self.lists, zi))
            .sum()
    }
}

impl<R: RawMutex> LocalLists<'_, R> {
    /// Runs `f` with the lists let go of for its duration (lock_api's
    /// `MutexGuard::unlocked`), so a reader that takes every CPU's lists in
    /// the lock order takes these too, and no holder ever waits for
    /// another CPU's lists while holding its own (which could deadlock
    /// against such a reader). Other CPUs may drain or use these lists
    /// meanwhile; the guard holds them again before returning.
    fn let_go<T>(&mut self, f: impl FnOnce(&Allocator<R>) -> T) -> T {
        let a = self.allocator;
        MutexGuard::unlocked(&mut self.lists, || f(a))
    }

    /// [`Allocator::stats`] from the holder.
    pub fn stats(&mut self) -> VmStats {
        self.let_go(Allocator::stats)
    }

    /// [`Allocator::nr_pcp_pages`] from the holder.
    pub fn nr_pcp_pages(&mut self) -> u64 {
        self.let_go(Allocator::nr_pcp_pages)
    }

    /// [`Allocator::nr_pcp_pages_per_zone`] from the holder.
    pub fn nr_pcp_pages_per_zone(&mut self) -> Vec<u64> {
        self.let_go(Allocator::nr_pcp_pages_per_zone)
    }

    /// [`Allocator::nr_allocated_pages`] from the holder.
    pub fn nr_allocated_pages(&mut self) -> u64 {
        self.let_go(Allocator::nr_allocated_pages)
    }

    /// [`Allocator::pcp_info`] of the held CPU (no lock needed).
    pub fn pcp_info(&self) -> Vec<PcpInfo> {
        self.lists.info()
    }

    /// [`Allocator::metadata_bytes`] from the holder.
    pub fn metadata_bytes(&mut self) -> u64 {
        self.let_go(Allocator::metadata_bytes)
    }

    /// [`Allocator::check_invariants`] from the holder.
    pub fn check_invariants(&mut self) -> Result<(), InvariantViolation> {
        self.let_go(Allocator::check_invariants)
    }

    /// A consistent copy of the whole allocator (see its [`Clone`]) from
    /// the holder.
    pub fn snapshot(&mut self) -> Allocator<R> {
        self.let_go(Allocator::clone)
    }

    /// [`Allocator::drain_all`] from the holder.
    pub fn drain_all(&mut self) -> u64 {
        self.let_go(Allocator::drain_all)
    }
}

impl<R: RawMutex> core::fmt::Debug for LocalLists<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalLists")
            .field("cpu", &self.cpu)
            .field("nr_pages", &self.nr_pages())
            .finish_non_exhaustive()
    }
}
