//! Zonelists: per node, the zones an allocation tries, in order (Linux's
//! node-ordered `ZONELIST_FALLBACK`), precomputed per node scope and
//! highest zone so the allocation path never builds one.

use alloc::vec::Vec;

use lock_api::RawMutex;

use crate::engine::watermark::AllocMode;
use crate::engine::zone::Zone;
use crate::units::{AllocFlags, NodeId, ZoneType, NR_ZONE_TYPES};

/// Whether an allocation may leave its preferred node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum NodeScope {
    AllNodes = 0,
    ThisNode = 1,
}

/// Names one precomputed zonelist.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ZonelistId {
    pub(crate) slot: usize,
    pub(crate) highest: ZoneType,
    pub(crate) scope: NodeScope,
}

impl ZonelistId {
    /// The zonelist of node slot `slot` for an allocation with `flags`
    /// whose highest zone is `highest`.
    #[inline]
    pub(crate) fn new(slot: usize, highest: ZoneType, flags: AllocFlags) -> ZonelistId {
        let scope = if flags.contains(AllocFlags::THIS_NODE) {
            NodeScope::ThisNode
        } else {
            NodeScope::AllNodes
        };
        ZonelistId {
            slot,
            highest,
            scope,
        }
    }
}

/// One node's zonelists, precomputed per node scope and highest zone so the
/// allocation path never builds one.
#[derive(Clone, Debug)]
pub(crate) struct NodeZonelists {
    pub(crate) node: NodeId,
    /// `[scope][highest zone]` → zone indices in fallback order.
    pub(crate) lists: [[Vec<usize>; NR_ZONE_TYPES]; 2],
    /// Per highest zone: Linux `alloc_flags_nofragment` for the preferred
    /// zone. When it is Normal and a DMA32 zone could take the request
    /// instead, the first pass avoids splitting other types' pageblocks.
    pub(crate) nofragment: [AllocMode; NR_ZONE_TYPES],
}

/// Zonelists per node: own zones highest first, then other nodes by
/// distance (here: by how far their ids are), each highest first (Linux's
/// node-ordered `ZONELIST_FALLBACK`).
pub(crate) fn build_zonelists<R: RawMutex>(zones: &[Zone<R>]) -> Vec<NodeZonelists> {
    let mut nodes: Vec<NodeId> = zones.iter().map(|z| z.core.node).collect();
    nodes.dedup();
    nodes
        .iter()
        .map(|&node| {
            let mut order: Vec<NodeId> = nodes.clone();
            order.sort_by_key(|n| (n.0.abs_diff(node.0), n.0));
            let full: Vec<usize> = order
                .iter()
                .flat_map(|&n| {
                    let mut own: Vec<usize> = (0..zones.len())
                        .filter(|&i| zones[i].core.node == n)
                        .collect();
                    own.sort_by_key(|&i| core::cmp::Reverse(zones[i].core.zone_type));
                    own
                })
                .collect();
            let select = |scope: NodeScope, highest: ZoneType| -> Vec<usize> {
                full.iter()
                    .copied()
                    .filter(|&i| zones[i].core.zone_type <= highest)
                    .filter(|&i| scope == NodeScope::AllNodes || zones[i].core.node == node)
                    .collect()
            };
            let lists = [NodeScope::AllNodes, NodeScope::ThisNode]
                .map(|scope| ZoneType::ALL.map(|t| select(scope, t)));
            let has_dma32 = zones
                .iter()
                .any(|z| z.core.node == node && z.core.zone_type == ZoneType::Dma32);
            let nofragment = ZoneType::ALL.map(|t| {
                let preferred = lists[0][t.idx()].first().map(|&i| zones[i].core.zone_type);
                let eligible =
                    preferred == Some(ZoneType::Normal) && (nodes.len() == 1 || has_dma32);
                if eligible {
                    AllocMode::NOFRAGMENT
                } else {
                    AllocMode::empty()
                }
            });
            NodeZonelists {
                node,
                lists,
                nofragment,
            }
        })
        .collect()
}

impl NodeZonelists {
    /// The zone indices an allocation of scope and highest zone `id` tries.
    #[inline]
    pub(crate) fn get(&self, id: ZonelistId) -> &[usize] {
        &self.lists[id.scope as usize][id.highest.idx()]
    }
}
