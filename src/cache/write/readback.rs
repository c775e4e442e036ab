//! Hashing a resumed partial download by reading back what is on disk, on a thread of its own,
//! while the rest of the blob is still arriving: the kept bytes must be hashed before the new
//! ones, and doing that first would hold the transfer for as long as it takes (a second per GiB
//! or so). The thread reads the file from its start and catches up with the writer, which only
//! says how far it has written; what is verified is what landed on disk.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::{Verifier, WriteError};
use crate::cache::hash::READ_CHUNK;

/// The thread hashing a file as it grows.
pub struct ReadBack {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<Verifier, WriteError>>>,
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
                let shared = shared.clone();
                move || hash_as_it_grows(&shared, &file, &path, verifier)
            })?;
        Ok(ReadBack {
            shared,
            thread: Some(thread),
        })
    }

    /// The file now holds `written` bytes.
    pub fn advance(&self, written: u64) {
        self.shared.lock().written = written;
        self.shared.grown.notify_one();
    }

    /// Waits for the thread to hash all `written` bytes; returns the verifier that saw them.
    pub fn finish(mut self, written: u64) -> Result<Verifier, WriteError> {
        {
            let mut state = self.shared.lock();
            state.written = written;
            state.finished = true;
        }
        self.shared.grown.notify_one();
        let thread = self.thread.take().expect("joined once");
        thread.join().expect("the read-back thread does not panic")
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

/// The thread: hashes from the start of the file up to what the writer says is there, waiting
/// for more until the writer finishes (or goes).
fn hash_as_it_grows(
    shared: &Shared,
    file: &File,
    path: &std::path::Path,
    mut verifier: Verifier,
) -> Result<Verifier, WriteError> {
    use std::os::unix::fs::FileExt;
    let unreadable = |source| WriteError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pos = 0u64;
    loop {
        let (target, finished) = {
            let mut state = shared.lock();
            while state.written == pos && !state.finished && !state.abandoned {
                state = shared.grown.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.abandoned {
                return Err(unreadable(std::io::ErrorKind::Interrupted.into()));
            }
            (state.written, state.finished)
        };
        while pos < target {
            let n = ((target - pos) as usize).min(buf.len());
            file.read_exact_at(&mut buf[..n], pos).map_err(unreadable)?;
            verifier.update(&buf[..n])?;
            pos += n as u64;
        }
        if finished {
            return Ok(verifier);
        }
    }
}
