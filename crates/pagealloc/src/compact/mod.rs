//! Compaction (Linux `mm/compaction.c`): a migrate scanner walks up from a
//! zone's start taking movable allocations, a free scanner walks down from
//! its end taking free pages as their destinations, and the owner's
//! [`Migrator`](crate::Migrator) moves each; the scanners stop when they
//! meet or when a free block of the wanted order exists.
//!
//! [`policy`] decides whether and when (suitability, deferral, the
//! fragmentation score of proactive compaction), [`scan`] runs the
//! scanners over one zone, and [`api`] gives the entry points: direct
//! compaction of a failing allocation, compaction of a zone or node on
//! demand, and proactive compaction run as kcompactd would run it.

pub(crate) mod api;
pub(crate) mod policy;
pub(crate) mod scan;
