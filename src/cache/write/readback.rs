//! Hashing a resumed partial download by reading back what is on disk, on a thread of its own,
//! while the rest of the blob is still arriving: the kept bytes must be hashed before the new
//! ones, and doing that first would hold the transfer for as long as it takes (a second per GiB
//! or so). The thread reads the file from its start and catches up with the writer, which only
//! says how far it has written; what is verified is what landed on disk. Once it has caught up,
//! the writer takes the hash back ([`ReadBack::take_if_caught_up`]) and hashes the rest as it
//! writes it, instead of it being read back.
//!
//! The kept bytes are read by a second thread, a few 4 MiB reads ahead of the hashing. Each read
//! takes what the page cache holds without waiting on the disk (`RWF_NOWAIT`): a run killed
//! moments ago leaves its partial there, and reading it past the cache would first write any
//! dirty pages out and then read them back from the disk. A read the cache cannot serve whole
//! goes past it (`O_DIRECT`) rather than waiting for the page cache to be filled; the refused
//! read has started the kernel's readahead, so the next ones mostly find their bytes cached.
//! A resumed pull is faster so than when every kept byte was read past the cache
//! (bench/RESULTS.md). Where the file system refuses reads past the cache, the kept bytes go
//! through the page cache as the rest does.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::{Verifier, WriteError};
use crate::cache::hash::READ_CHUNK;

/// The size of one read of the kept bytes past the page cache.
const DIRECT_READ: usize = 4 * 1024 * 1024;
/// Reads of the kept bytes in flight or waiting to be hashed.
const DIRECT_BUFFERS: usize = 3;
/// The alignment reads past the page cache need: of the offset, the length and the buffer.
const DIRECT_ALIGN: usize = 4096;

/// The thread hashing a file as it grows.
pub struct ReadBack {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<Verifier, WriteError>>>,
    path: PathBuf,
}

struct Shared {
    state: Mutex<State>,
    grown: Condvar,
}

#[derive(Default)]
struct State {
    /// Bytes on disk the thread may hash.
    written: u64,
    /// No more bytes will come.
    finished: bool,
    /// The writer is gone: stop.
    abandoned: bool,
    /// The thread has hashed all `written` bytes and waits for more.
    idle: bool,
    /// The writer takes the hash back: return it.
    hand_back: bool,
}

impl ReadBack {
    /// Starts hashing `file` (`path`, for errors) from its start into `verifier`, of which the
    /// first `written` bytes are on disk already.
    pub fn start(
        file: File,
        path: PathBuf,
        verifier: Verifier,
        written: u64,
    ) -> std::io::Result<ReadBack> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                written,
                ..State::default()
            }),
            grown: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("read-back hash".into())
            .spawn({
                let (shared, path) = (shared.clone(), path.clone());
                move || hash_as_it_grows(&shared, &file, &path, verifier)
            })?;
        Ok(ReadBack {
            shared,
            thread: Some(thread),
            path,
        })
    }

    /// The file now holds `written` bytes.
    pub fn advance(&self, written: u64) {
        self.shared.lock().written = written;
        self.shared.grown.notify_one();
    }

    /// The verifier that has seen all `written` bytes, once the thread has hashed them and
    /// waits for more; `None` while it is still behind.
    pub fn take_if_caught_up(&mut self, written: u64) -> Option<Result<Verifier, WriteError>> {
        {
            let mut state = self.shared.lock();
            if !state.idle || state.written != written {
                return None;
            }
            state.hand_back = true;
        }
        self.shared.grown.notify_one();
        Some(self.join())
    }

    /// Waits for the thread to hash all `written` bytes; returns the verifier that saw them.
    pub fn finish(mut self, written: u64) -> Result<Verifier, WriteError> {
        {
            let mut state = self.shared.lock();
            state.written = written;
            state.finished = true;
        }
        self.shared.grown.notify_one();
        self.join()
    }

    /// The thread's verifier; an error once it was taken (or failed to be).
    fn join(&mut self) -> Result<Verifier, WriteError> {
        match self.thread.take() {
            Some(thread) => thread.join().expect("the read-back thread does not panic"),
            None => Err(unreadable(
                &self.path,
                std::io::ErrorKind::Interrupted.into(),
            )),
        }
    }
}

impl Drop for ReadBack {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shared.lock().abandoned = true;
            self.shared.grown.notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The thread: hashes the kept bytes, then the file up to what the writer says is there,
/// waiting for more until the writer finishes, goes, or takes the hash back.
fn hash_as_it_grows(
    shared: &Shared,
    file: &File,
    path: &Path,
    mut verifier: Verifier,
) -> Result<Verifier, WriteError> {
    let kept = shared.lock().written;
    let mut pos = hash_kept(file, path, kept, &mut verifier)?;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let (target, finished) = {
            let mut state = shared.lock();
            while state.written == pos && !state.finished && !state.abandoned && !state.hand_back {
                state.idle = true;
                state = shared.grown.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            state.idle = false;
            if state.abandoned {
                return Err(unreadable(path, std::io::ErrorKind::Interrupted.into()));
            }
            if state.hand_back && state.written == pos {
                return Ok(verifier);
            }
            (state.written, state.finished)
        };
        hash_buffered(file, path, (pos, target), &mut verifier, &mut buf)?;
        pos = target;
        if finished {
            return Ok(verifier);
        }
    }
}

fn unreadable(path: &Path, source: std::io::Error) -> WriteError {
    WriteError::Unreadable {
        path: path.to_path_buf(),
        source,
    }
}

/// Hashes the bytes from `from` to `to` through the page cache.
fn hash_buffered(
    file: &File,
    path: &Path,
    (mut from, to): (u64, u64),
    verifier: &mut Verifier,
    buf: &mut [u8],
) -> Result<(), WriteError> {
    while from < to {
        let n = ((to - from) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], from)
            .map_err(|e| unreadable(path, e))?;
        verifier.update(&buf[..n])?;
        from += n as u64;
    }
    Ok(())
}

/// Hashes the first `kept` bytes of `path` (open as `file`), a few reads ahead: each read from
/// the page cache where it holds them all, past it otherwise; returns how far it got: `kept`, or
/// less where reads past the cache failed, the rest then being read the usual way by the caller.
fn hash_kept(
    file: &File,
    path: &Path,
    kept: u64,
    verifier: &mut Verifier,
) -> Result<u64, WriteError> {
    let Ok(direct) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    else {
        return Ok(0);
    };
    let (free_tx, free_rx) = mpsc::channel::<AlignedBuf>();
    let (full_tx, full_rx) = mpsc::sync_channel::<(AlignedBuf, usize)>(DIRECT_BUFFERS);
    for _ in 0..DIRECT_BUFFERS {
        let _ = free_tx.send(AlignedBuf::new(DIRECT_READ));
    }
    // The hashing side owns `free_tx` and `full_rx`: when it stops early they go, and so does
    // the reader, which the scope waits for.
    std::thread::scope(move |scope| {
        scope.spawn(move || {
            let mut at = 0u64;
            while at < kept {
                let Ok(mut buf) = free_rx.recv() else { return };
                let need = ((kept - at) as usize).min(DIRECT_READ);
                let want = need.next_multiple_of(DIRECT_ALIGN).min(DIRECT_READ);
                let chunk = &mut buf.as_mut()[..want];
                let n = match read_cached(file, chunk, at) {
                    n if n >= need => need,
                    _ => match direct.read_at(chunk, at) {
                        Ok(n) if n > 0 => n.min(need),
                        _ => return,
                    },
                };
                if full_tx.send((buf, n)).is_err() {
                    return;
                }
                at += n as u64;
            }
        });
        let mut hashed = 0u64;
        for (buf, n) in full_rx {
            verifier.update(&buf.as_ref()[..n])?;
            hashed += n as u64;
            let _ = free_tx.send(buf);
        }
        Ok(hashed)
    })
}

/// Reads into `buf` at `at` what the page cache holds, without waiting on the disk: the bytes
/// read, fewer than asked (or none) where some are not cached.
fn read_cached(file: &File, buf: &mut [u8], at: u64) -> usize {
    let Ok(at) = libc::off_t::try_from(at) else {
        return 0;
    };
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the one iovec points into `buf`, which is valid for writes of its length and
    // outlives the call; `file` is open for reading.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, at, libc::RWF_NOWAIT) };
    usize::try_from(n).unwrap_or(0)
}

/// A buffer whose start is aligned for reads past the page cache.
struct AlignedBuf {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize) -> AlignedBuf {
        let bytes = vec![0u8; len + DIRECT_ALIGN];
        let start = bytes.as_ptr().align_offset(DIRECT_ALIGN);
        AlignedBuf { bytes, start, len }
    }

    fn as_ref(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::write::tests::evict;

    #[test]
    fn cached_bytes_come_from_the_cache_and_evicted_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kept");
        std::fs::write(&path, vec![7u8; 2 * DIRECT_READ]).unwrap();
        let file = File::open(&path).unwrap();
        let mut buf = vec![0u8; DIRECT_READ];
        assert_eq!(read_cached(&file, &mut buf, 0), DIRECT_READ);
        assert!(buf.iter().all(|b| *b == 7));
        evict(&file, (0, 2 * DIRECT_READ));
        assert!(read_cached(&file, &mut buf, 0) < DIRECT_READ);
        assert!(read_cached(&file, &mut buf, DIRECT_READ as u64) < DIRECT_READ);
    }
}
