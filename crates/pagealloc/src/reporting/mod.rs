//! Free page reporting (seed 002): free blocks at or above the reporting
//! order are handed to the host in batches, marked reported, kept at the
//! tails of their lists, and allocated last.
//!
//! The mechanism is in the engine's lists: a reported block carries the
//! record's flag and sits in its list's tail run (`engine/list_ops.rs`), so
//! every allocation path, which takes from the head, uses unreported
//! blocks first, and the packing source sorts reported blocks last. The
//! mark goes whenever a block leaves its list (allocation, merge,
//! isolation), and a merged block is reported again at its new order.
//! [`cycle`] takes blocks for a batch and puts them back; [`api`] is the
//! pass the caller drives ([`Allocator::report_pass`](crate::Allocator::report_pass))
//! and the [`ReportSink`] it reports to.

pub(crate) mod api;
pub(crate) mod cycle;
