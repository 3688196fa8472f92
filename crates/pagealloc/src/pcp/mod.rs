//! The per-CPU front end (seed 004): per-CPU lists of small blocks
//! ([`lists`]; order 0 in [`magazine`]s; which list a block goes on,
//! [`index`]; their sizing and tuning, [`tuning`]), bulk allocation and
//! batched free ([`bulk`]), and holding a CPU's lists across calls
//! ([`local`]).

pub(crate) mod bulk;
pub(crate) mod index;
pub(crate) mod lists;
pub(crate) mod local;
pub(crate) mod magazine;
pub(crate) mod tuning;
