//! Contiguous allocation beyond the largest buddy order (seed 003):
//! pageblock isolation, migration through the owner, contiguous ranges,
//! CMA allocation, and memory offline/online.
//!
//! Every call here runs the same three steps (Linux `alloc_contig_range`):
//! isolate the range's pageblocks ([`isolate`]), migrate the movable
//! allocations out through the client's [`Migrator`] ([`migrate`]), and
//! take the range once every page of it is free ([`range`]); CMA
//! ([`cma`]) and offline ([`offline`]) choose the range and what it becomes;
//! confinement's evacuation ([`evacuate`]) empties a pageblock the same way
//! and leaves it free.

pub(crate) mod area;
pub(crate) mod cma;
pub(crate) mod evacuate;
pub(crate) mod isolate;
pub(crate) mod migrate;
pub(crate) mod offline;
pub(crate) mod range;
