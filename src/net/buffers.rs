//! Reading upload parts into buffers that earlier parts used, so a run allocates its part memory
//! once rather than once per part.

use std::path::Path;

use bytes::Bytes;

use crate::cache::write::WriteError;

/// Reads the next `len` bytes of `file` into `buf` (whose old content is dropped, its memory
/// kept): no zero-filling, and no fresh allocation when `buf` is large enough.
pub fn read_part(
    file: &mut std::fs::File,
    path: &Path,
    len: u64,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, WriteError> {
    use std::io::Read;
    buf.clear();
    buf.reserve_exact(len as usize);
    let read = file
        .take(len)
        .read_to_end(&mut buf)
        .map_err(crate::cache::write::io_err(path))?;
    if read as u64 != len {
        let cut = std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "the file ended after {read} of {len} bytes of a part: it changed while being read"
            ),
        );
        return Err(crate::cache::write::io_err(path)(cut));
    }
    Ok(buf)
}

/// Part buffers handed back after each upload: a multipart upload reads every part into a buffer
/// an earlier part used, so a run allocates (and the kernel faults in) its part memory once, not
/// once per part. Holds at most as many buffers as the memory budget has room for.
pub struct PartBuffers {
    free: std::sync::Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl PartBuffers {
    pub fn new(keep: usize) -> PartBuffers {
        PartBuffers {
            free: std::sync::Mutex::new(Vec::new()),
            keep,
        }
    }

    /// A buffer to read a part into: a used one when there is one.
    pub fn take(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    /// Keeps `used` for the next part.
    pub fn give_back(&self, used: Vec<u8>) {
        let mut free = self.lock();
        if free.len() < self.keep {
            free.push(used);
        }
    }

    /// Keeps the buffer of `used` for the next part, when nothing else still refers to it.
    pub fn give_back_bytes(&self, used: Bytes) {
        if let Ok(buf) = used.try_into_mut() {
            self.give_back(Vec::from(buf));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_read_into_the_buffers_earlier_parts_used() {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 3000]).unwrap();
        std::io::Seek::rewind(&mut f).unwrap();
        let path = Path::new("blob");
        let pool = PartBuffers::new(1);
        let first = read_part(&mut f, path, 2000, pool.take()).unwrap();
        assert_eq!(first, vec![7u8; 2000]);
        let at = first.as_ptr();
        pool.give_back_bytes(Bytes::from(first));
        let second = read_part(&mut f, path, 1000, pool.take()).unwrap();
        assert_eq!(
            (second.len(), second.as_ptr()),
            (1000, at),
            "the buffer is reused"
        );

        // A buffer something else still reads from is not reused, and the pool keeps at most
        // `keep` buffers.
        let shared = Bytes::from(second);
        let reader = shared.clone();
        pool.give_back_bytes(shared);
        assert!(pool.take().capacity() == 0 && reader.len() == 1000);
        pool.give_back(vec![1u8; 10]);
        pool.give_back(vec![2u8; 10]);
        assert_eq!(pool.lock().len(), 1);

        // A file shorter than the part is an error, not a short part.
        let err = read_part(&mut f, path, 10, Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("changed while being read"),
            "{err}"
        );
    }
}
