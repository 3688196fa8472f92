//! Policies: values the caller chooses, passed to the engine and compared
//! against Linux's defaults side by side. They live below both the
//! configuration and the services that carry them out, so neither imports
//! the other.

use crate::units::MigrateType;

/// Whether packed allocation may claim whole free pageblocks once the
/// migratetype's own pageblocks have no small free blocks left.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PackClaim {
    /// Only pageblocks the migratetype already owns (the seed's call).
    OwnedOnly,
    /// Then the larger free blocks of owned pageblocks, then whole free
    /// pageblocks, which become the migratetype's.
    ClaimFreePageblocks,
}

/// Which allocations the allocator packs on its own (a policy, compared
/// against Linux's default side by side in `pagesim`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Packing {
    /// Linux's placement.
    Off,
    /// Every unmovable order-0 allocation is packed first.
    Unmovable,
    /// Every unmovable and reclaimable order-0 allocation is packed first.
    UnmovableAndReclaimable,
}

impl Packing {
    /// Whether order-0 allocations of `mt` are packed.
    pub fn packs(self, mt: MigrateType) -> bool {
        match self {
            Packing::Off => false,
            Packing::Unmovable => mt == MigrateType::Unmovable,
            Packing::UnmovableAndReclaimable => {
                matches!(mt, MigrateType::Unmovable | MigrateType::Reclaimable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_selects_types() {
        assert!(!Packing::Off.packs(MigrateType::Unmovable));
        assert!(Packing::Unmovable.packs(MigrateType::Unmovable));
        assert!(!Packing::Unmovable.packs(MigrateType::Reclaimable));
        assert!(Packing::UnmovableAndReclaimable.packs(MigrateType::Reclaimable));
        assert!(!Packing::UnmovableAndReclaimable.packs(MigrateType::Movable));
    }
}
