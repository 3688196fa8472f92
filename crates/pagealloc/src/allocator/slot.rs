//! One CPU's slot: its per-CPU lists for every zone under one lock, and
//! where it allocates from; and the bounded wait for another CPU's lists.

use lock_api::{Mutex, MutexGuard, RawMutex};

use crate::pcp::lists::CpuLists;
use crate::units::NodeId;

/// One CPU: its per-CPU lists for every zone under one lock, and where it
/// allocates from. Aligned so two CPUs' locks never share a cache line
/// (nor the adjacent line the prefetcher pairs with it).
#[repr(align(128))]
pub(crate) struct CpuSlot<R: RawMutex> {
    pub(crate) lists: Mutex<R, CpuLists>,
    /// The CPU's home node.
    pub(crate) node: NodeId,
    /// The home node's index in the zonelists.
    pub(crate) zonelists: usize,
}

/// How many times a failing allocation tries another CPU's busy lists
/// before it gives up on them: far longer than any ordinary call holds
/// them, short enough that skipping a long-held `LocalLists` costs little.
pub(crate) const DRAIN_TRY_SPINS: u32 = 4096;

/// `lock.try_lock()`, retried up to [`DRAIN_TRY_SPINS`] times.
pub(crate) fn try_lock_for_a_while<R: RawMutex, T>(
    lock: &Mutex<R, T>,
) -> Option<MutexGuard<'_, R, T>> {
    for _ in 0..DRAIN_TRY_SPINS {
        if let Some(guard) = lock.try_lock() {
            return Some(guard);
        }
        crate::sync::spin_loop();
    }
    None
}
