//! The client's power hooks (seed 000's purpose): a platform that can
//! power down or put into self-refresh a region of memory learns when a
//! region holds no page in use and when it is about to be used again.

use crate::units::{NodeId, Pfn, ZoneType};

/// One region, as the power hooks and reports name it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RegionId {
    /// The zone's node.
    pub node: NodeId,
    /// The zone.
    pub zone: ZoneType,
    /// The region's number inside its zone (0 holds the zone's first frame).
    pub index: u32,
    /// The first frame of the region that the zone spans.
    pub start: Pfn,
}

/// Told when a region becomes entirely free and goes to the region
/// allocator, and before one comes back into service.
///
/// The allocator calls both with the zone's lock held (as Linux calls
/// into a driver from the allocator's paths): an implementation records or
/// queues the change and returns; it must not call back into the allocator.
/// `now` is the tick the caller last passed to
/// [`Allocator::set_region_time`](crate::Allocator::set_region_time).
pub trait RegionPower: Send + Sync {
    /// Every page of `region` is free and the allocator will not use it
    /// until [`RegionPower::power_up`]: it may be powered down.
    fn power_down(&self, region: RegionId, now: u64);
    /// `region` is about to be used again: it must be powered up before
    /// this returns.
    fn power_up(&self, region: RegionId, now: u64);
}
