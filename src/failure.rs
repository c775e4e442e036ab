//! One failed item of a run (a blob, a revision, a repo), named in the summary. The error stays
//! typed until it is printed, so a caller asks what went wrong (a full disk) instead of
//! searching the message.

use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::text::error_chain;

type ItemError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// One failed item and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub item: String,
    #[serde(serialize_with = "as_text")]
    pub error: ItemError,
}

/// A failure known only by its message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

impl Failure {
    pub fn new(
        item: impl Into<String>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Failure {
        Failure {
            item: item.into(),
            error: Arc::new(error),
        }
    }

    pub fn message(item: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure::new(item, Message(message.into()))
    }

    /// The error as people read it: each cause once.
    pub fn text(&self) -> String {
        error_chain(self.error.as_ref())
    }

    /// Did it fail because the disk (or the user's quota on it) is full?
    pub fn is_disk_full(&self) -> bool {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self.error.as_ref());
        while let Some(e) = current {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if is_disk_full(io) {
                    return true;
                }
            }
            current = e.source();
        }
        false
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

fn as_text<S: Serializer>(error: &ItemError, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&error_chain(error.as_ref()))
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.item, self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::write::WriteError;

    #[test]
    fn a_full_disk_is_found_through_the_causes() {
        let full = WriteError::Io {
            path: "/cache/blobs/x".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        };
        let f = Failure::new("blob x", crate::transfer::TransferError::Local(full));
        assert!(f.is_disk_full());
        assert!(f.text().starts_with("/cache/blobs/x: "), "{}", f.text());
        let other = Failure::message("blob y", "no space left on device, says the server");
        assert!(!other.is_disk_full(), "decided by type, not by words");
    }

    #[test]
    fn serializes_as_its_message() {
        let f = Failure::message("org/m@abc", "not published");
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["item"], "org/m@abc");
        assert_eq!(json["error"], "not published");
    }
}
