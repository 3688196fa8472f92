//! The buddy engine (layers 3 to 5 of docs/DESIGN.md): page records, free
//! lists, pageblocks, zones, split and merge, fallback between
//! migratetypes, the high-atomic reserve and watermarks. It knows nothing
//! of per-CPU lists, services or the allocator facade above it.

pub(crate) mod buddy;
pub(crate) mod confine;
pub(crate) mod fallback;
pub(crate) mod free_area;
pub(crate) mod free_list;
pub(crate) mod highatomic;
pub(crate) mod list_ops;
pub(crate) mod page;
pub(crate) mod pageblock;
pub(crate) mod watermark;
pub(crate) mod zone;
