//! The operations under the commands, one function per job: options in, a serializable report
//! out. An operation never prints; what it has to say (warnings, notes) is data in its report,
//! and the command renders it.

pub mod dedupe;
pub mod delete;
pub mod diff;
pub mod list;
pub mod prune;
pub mod remote_delete;
pub mod repos;
pub mod rm;
pub mod status;
#[cfg(test)]
mod testing;
pub mod verify;

pub use dedupe::{dedupe, scan_caches, DedupeReport};
pub use diff::{diff, DiffOptions, DiffReport};
pub use list::{list, ListOptions, Side};
pub use prune::{plan_prune, PruneOptions, PruneReport};
pub use status::{status, StatusOptions, StatusReport};
