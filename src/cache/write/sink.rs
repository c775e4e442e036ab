//! Where a verified download goes: a blob's partial download in the cache ([`BlobWriter`]), or
//! anything else that takes the bytes in order and checks them against the blob's name (a
//! response streamed to a client). The bucket, directory and Hub downloads write into any of
//! them the same way.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use super::{BlobWriter, WriteError};
use crate::cache::hash::READ_CHUNK;

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

/// Fills `writer` from the local file `input`, from where `writer` stands (past a resumed
/// partial) to the file's end: inside the kernel where the sink can take it so, else a chunk at
/// a time. `moved` hears of each chunk (progress, the bandwidth cap); `read_error` names a
/// failed read of `input`. A file that cannot seek, such as a pipe, is only ever read whole.
pub fn fill_from_file<W: BlobSink, E: From<WriteError>>(
    mut input: &File,
    mut writer: W,
    read_error: impl Fn(io::Error) -> E,
    mut moved: impl FnMut(u64),
) -> Result<W::Done, E> {
    if writer.written() > 0 {
        input
            .seek(SeekFrom::Start(writer.written()))
            .map_err(&read_error)?;
    }
    if writer.copy_from(input, &mut moved)? {
        return Ok(writer.finish()?);
    }
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = input.read(&mut buf).map_err(&read_error)?;
        if n == 0 {
            return Ok(writer.finish()?);
        }
        writer.write(&buf[..n])?;
        moved(n as u64);
    }
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
