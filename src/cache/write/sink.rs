//! Where a verified download goes: a blob's partial download in the cache ([`BlobWriter`]), or
//! anything else that takes the bytes in order and checks them against the blob's name (a
//! response streamed to a client). The bucket, directory and Hub downloads write into any of
//! them the same way.

use std::fs::File;

use super::{BlobWriter, WriteError};

/// Takes a blob's bytes in order, hashing each as it passes, and checks the whole at the end.
/// Its methods block (hashing, file writes): call them off the async workers.
pub trait BlobSink: Send + 'static {
    /// What a finished, verified download yields (the blob's path in the cache, …).
    type Done: Send + 'static;

    /// Bytes taken so far, a resumed partial's included: where the source goes on from.
    fn written(&self) -> u64;

    /// Takes the next bytes of the blob.
    fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError>;

    /// Takes the rest of the blob from `src` (from its offset to its end) with a copy inside
    /// the kernel, where the sink can; `Ok(false)`, having taken nothing, where it cannot.
    fn copy_from(
        &mut self,
        _src: &File,
        _on_bytes: &mut dyn FnMut(u64),
    ) -> Result<bool, WriteError> {
        Ok(false)
    }

    /// Checks the whole against the blob's name and completes.
    fn finish(self) -> Result<Self::Done, WriteError>;
}

impl BlobSink for BlobWriter {
    type Done = std::path::PathBuf;

    fn written(&self) -> u64 {
        BlobWriter::written(self)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        BlobWriter::write(self, bytes)
    }

    fn copy_from(&mut self, src: &File, on_bytes: &mut dyn FnMut(u64)) -> Result<bool, WriteError> {
        BlobWriter::copy_from(self, src, on_bytes)
    }

    fn finish(self) -> Result<Self::Done, WriteError> {
        BlobWriter::finish(self)
    }
}
