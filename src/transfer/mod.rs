//! The engine between the commands and storage: the bounded pool every transfer runs in,
//! fetching one blob into the cache, and the push and pull engines the commands call.

pub mod fetch;
pub mod lifecycle;
pub mod pool;
pub mod pull;
pub mod push;
pub mod source;
pub mod write_through;
