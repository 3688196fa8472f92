//! Confinement (after Contiguitas, Zhao et al., ISCA 2023): unmovable and
//! reclaimable memory kept at the low end of each zone, movable memory
//! above it in whole pageblocks. The policy value is
//! [`Confinement`](crate::policy::Confinement); these are its three
//! mechanisms, each a small step of the buddy engine:
//!
//! * **Growing.** An unmovable or reclaimable request whose own lists have
//!   no block claims the *lowest* wholly free pageblock of the zone, the
//!   one nearest to the area, before Linux's fallback may claim or steal
//!   anywhere else ([`ZoneOps::rmqueue_confined`]). Exactly one pageblock
//!   is claimed: a larger free block is split around it, its other
//!   pageblocks staying free with their type. Finding it is a scan of the
//!   pageblocks' free counts upward from the zone's start, one atomic load
//!   per pageblock, done only on a claim.
//! * **Shrinking.** A free that leaves a block of pageblock order or more
//!   in an unmovable or reclaimable pageblock (the pageblock became wholly
//!   free) retypes it movable at once ([`ZoneOps::confine_release`]), so a
//!   wholly free pageblock is never the area's: the invariant walk checks
//!   that no free block of pageblock order or more sits on an unmovable or
//!   reclaimable list.
//! * **Movable from the top.** A movable request that would break a whole
//!   free pageblock takes the highest free block of pageblock order or more
//!   instead of the list's first, and takes its pages from that block's top
//!   ([`ZoneOps::rmqueue_movable_top`]): movable memory grows down from the
//!   top of the zone, away from the area. This costs one walk of the movable
//!   lists of pageblock order and above per pageblock broken. Smaller
//!   movable blocks come from the head of their lists, wherever they lie,
//!   as in Linux: a movable pageblock below the area's top (one the area
//!   gave back) is used by movable requests once broken, and is broken last.
//!
//! Linux's fallback stays the last resort (a movable request into the
//! area's pageblocks, or an unmovable one into a partly used movable
//! pageblock when no pageblock is wholly free); the request path counts it
//! as `confined_fallbacks`. A confined request larger than a pageblock
//! also goes to Linux's fallback, which claims the largest free block
//! wherever it lies; under confinement it retypes only the pageblocks the
//! request takes (`try_claim_block`), never the free rest.

use crate::engine::free_list::Placement;
use crate::engine::page::PageState;
use crate::engine::zone::ZoneOps;
use crate::events::FallbackEvent;
use crate::units::{MigrateType, Order, Pfn};

impl ZoneOps<'_> {
    /// Takes a block of `order` (at most the pageblock order) for the
    /// confined type `mt` from the lowest wholly free pageblock of the zone,
    /// which becomes `mt`'s. The claim is returned as its fallback event
    /// (Linux's `mm_page_alloc_extfrag` with `change_ownership=1`, as
    /// claiming another type's free pageblock is there).
    pub(crate) fn rmqueue_confined(
        &mut self,
        order: Order,
        mt: MigrateType,
    ) -> Option<(u32, Option<FallbackEvent>)> {
        let pb = self.z.geo.pageblock;
        if order > pb {
            return None;
        }
        let (idx, event) = self.claim_lowest_pageblock(order, mt)?;
        // The claimed pageblock is the only block of `order` or more on
        // `mt`'s lists (the own lists had none): the smallest is it.
        self.link_free(idx, pb, mt, Placement::Head);
        let got = self.rmqueue_smallest(order, mt)?;
        Some((got, event))
    }

    /// Claims the lowest wholly free pageblock of an ordinary type for
    /// `mt`: takes it off the lists (a larger free block split around it,
    /// the other halves left free with their type), retypes it, and returns
    /// its index, unlinked but still counted free, for the caller to link
    /// or take, with the claim's event (`alloc_order` is `order`).
    pub(crate) fn claim_lowest_pageblock(
        &mut self,
        order: Order,
        mt: MigrateType,
    ) -> Option<(u32, Option<FallbackEvent>)> {
        let pb = self.z.geo.pageblock;
        let (head, found, from, block) = self.lowest_free_pageblock()?;
        let reported = self.unlink_free(head, found, from);
        self.count_reported_reuse(reported, pb);
        // Split down to the pageblock, keeping the halves without it free.
        let (mut start, mut size) = (head, found);
        let target = self.z.idx(block);
        while size > pb {
            size = size.lower()?;
            let upper = start + size.nr_pages().0 as u32;
            let (keep, other) = if target >= upper {
                (upper, start)
            } else {
                (start, upper)
            };
            self.link_free(other, size, from, Placement::Head);
            start = keep;
        }
        self.set_range_migratetype(block, pb, mt);
        if from == mt {
            return Some((start, None));
        }
        self.f.stats.confined_claims += 1;
        let event = FallbackEvent {
            pfn: block,
            alloc_order: order,
            fallback_order: found,
            alloc_migratetype: mt,
            fallback_migratetype: from,
            change_ownership: true,
        };
        self.z.emit_fallback(&event);
        Some((start, Some(event)))
    }

    /// The lowest pageblock of the zone that is wholly free, in a free
    /// block of an ordinary type: the block's index, order and type, and
    /// the pageblock's first frame.
    fn lowest_free_pageblock(&self) -> Option<(u32, Order, MigrateType, Pfn)> {
        let pb = self.z.geo.pageblock;
        let pb_pages = pb.nr_pages().0;
        let mut pfn = self.z.start.align_up(pb)?;
        while pfn.0 + pb_pages <= self.z.end.0 {
            if u64::from(self.z.blocks.free_pages(pfn)) == pb_pages {
                if let Some((head, meta)) = self.z.containing_head(pfn) {
                    let from = self.z.block_mt(head);
                    if meta.state() == PageState::FreeHead
                        && meta.order() >= pb
                        && from.is_mergeable()
                    {
                        return Some((self.z.idx(head), meta.order(), from, pfn));
                    }
                }
            }
            pfn.0 += pb_pages;
        }
        None
    }

    /// The area shrinks as it empties: a free block of pageblock order or
    /// more about to join an unmovable or reclaimable list (its pageblocks
    /// became wholly free) is retyped movable, and the type it joins is
    /// returned. Any other block keeps `mt`.
    #[inline]
    pub(crate) fn confine_release(
        &mut self,
        pfn: Pfn,
        order: Order,
        mt: MigrateType,
    ) -> MigrateType {
        let pb = self.z.geo.pageblock;
        if order < pb || !self.z.confinement.confines(mt) {
            return mt;
        }
        self.set_range_migratetype(pfn, order, MigrateType::Movable);
        self.f.stats.confined_releases += order.nr_pages().0 / pb.nr_pages().0;
        MigrateType::Movable
    }

    /// For a movable request that would break a whole free pageblock (the
    /// smallest movable block of `order` or more is of pageblock order or
    /// more): takes `order` from the top of the highest such block, its
    /// lower halves left free, unreported blocks before reported ones (seed
    /// 002). `None` when a smaller block will do: the caller takes it as
    /// Linux does.
    pub(crate) fn rmqueue_movable_top(&mut self, order: Order) -> Option<u32> {
        let pb = self.z.geo.pageblock;
        let mt = MigrateType::Movable;
        let mask = self.f.nonempty[mt.idx()] >> order.get();
        if mask == 0 || order.get() + (mask.trailing_zeros() as u8) < pb.get() {
            return None;
        }
        // (unreported, end) of the best block so far, and the block.
        let mut best: Option<((bool, u32), u32, Order)> = None;
        for size in self.z.geo.orders().filter(|o| *o >= pb && *o >= order) {
            let list = &self.f.areas[size.idx()].lists[mt.idx()];
            for idx in list.iter(&self.z.pages) {
                let key = (
                    !self.z.pages.get(idx).flag(),
                    idx + size.nr_pages().0 as u32,
                );
                if best.is_none_or(|(k, _, _)| key > k) {
                    best = Some((key, idx, size));
                }
            }
        }
        let (_, idx, size) = best?;
        let reported = self.unlink_free(idx, size, mt);
        self.count_reported_reuse(reported, size);
        let (mut head, mut at) = (idx, size);
        while at > order {
            at = at.lower()?;
            self.link_free(head, at, mt, Placement::Head);
            head += at.nr_pages().0 as u32;
        }
        self.account_free(head, order, mt, false);
        Some(head)
    }
}
