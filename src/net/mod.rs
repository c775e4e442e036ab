//! What the bucket's and the Hub's clients have in common: the retry policy, ranged and resuming
//! downloads, TLS trust, and the limits every transfer of a run shares (the bandwidth cap
//! among them).

pub mod buffers;
pub mod ctx;
pub mod ranged;
pub mod rate;
pub mod retry;
pub mod tls;

pub use ctx::TransferCtx;
