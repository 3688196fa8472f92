//! Memory regions and the region allocator (seed 000, Srivatsa S. Bhat's
//! "Memory Power Management" series).
//!
//! A zone is cut into fixed regions ([`map`]); its free lists are kept
//! sorted by region with per-region entry points ([`sorted`]), so every
//! path that takes a list's first block takes it from the lowest region;
//! a region whose every page is free leaves the lists for the region
//! allocator and comes back when a request needs it ([`back`]); the
//! client's [`power`] hooks hear both; [`api`] is what the caller sees.
//! All of it is off unless `Config::regions` is set.

pub(crate) mod api;
pub(crate) mod back;
pub(crate) mod book;
pub(crate) mod map;
pub(crate) mod power;
pub(crate) mod sorted;
