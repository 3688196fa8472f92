//! Packed allocation (seed 001): order-0 pages packed into pageblocks their
//! migratetype already owns, fullest first. [`take`] is the mechanism over
//! the buddy lists, a source of the one request path; [`api`] is the
//! explicit call, [`Allocator::alloc_packed`](crate::Allocator::alloc_packed).

pub(crate) mod api;
pub(crate) mod take;
