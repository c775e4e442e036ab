//! The checks that talk to the remote: that it answers, what this key (or user) may read and
//! write there, that other users can read its files, and that our clock agrees with the server's.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::cache::{modes_check, MODES_LIMIT};
use super::Check;
use crate::cache::modes::OwnerOnly;
use crate::manifest::{Layout, MAX_REF_BYTES};
use crate::remote::{
    http_date_secs, probe_token, Access, Remote, RemoteError, RemoteKind, WriteProbe,
};

/// More than this between our clock and the server's is reported; S3 refuses requests signed
/// 15 minutes off.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Files in a directory remote that only their owner may read: other machines' users pull
/// nothing from them ("access denied" while `list` works).
fn remote_modes_check(root: PathBuf, found: std::io::Result<OwnerOnly>) -> Check {
    const NAME: &str = "Remote file modes";
    match found {
        Ok(found) => modes_check(NAME, &root, &found, "users of other machines"),
        Err(e) => Check::skipped(NAME, &format!("cannot read {}: {e}", root.display())),
    }
}

fn remote_failure(name: &'static str, e: &RemoteError, fallback: &str, verbose: bool) -> Check {
    let mut detail = e.to_string();
    if verbose {
        if let Some(code) = e.code() {
            detail.push_str(&format!(" [{code}]"));
        }
    }
    Check::failed(name, detail, e.hint().unwrap_or_else(|| fallback.into()))
}

/// Reachability, read and write permission, and the server's clock.
pub(super) async fn remote_checks(
    remote: &Remote,
    layout: &Layout,
    verbose: bool,
    require_write: bool,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let reachable = remote.probe().await;
    let bucket = remote.kind() == RemoteKind::Bucket;
    let name = if bucket {
        "Bucket reachable"
    } else {
        "Remote directory"
    };
    // Denied HEAD alone (some scoped keys) still lets the read and write probes say more.
    let go_on = match &reachable {
        Ok(()) => {
            checks.push(Check::ok(name, remote.describe()));
            true
        }
        Err(e) => {
            let fallback = if bucket {
                "check storage.endpoint, storage.bucket and the credentials"
            } else {
                "create the folder, or fix storage.endpoint (file:///path)"
            };
            checks.push(remote_failure(name, e, fallback, verbose));
            e.denied().is_some()
        }
    };
    if go_on {
        checks.push(read_check(remote, layout, verbose).await);
        checks.push(write_check(remote, layout, verbose, require_write).await);
        if reachable.is_ok() {
            if let Some((root, found)) = remote.owner_only(MODES_LIMIT).await {
                checks.push(remote_modes_check(root, found));
            }
        }
    } else {
        let why = if bucket {
            "the bucket is not reachable"
        } else {
            "the remote directory is not usable"
        };
        checks.push(Check::skipped("Read permission", why));
        checks.push(Check::skipped("Write permission", why));
    }
    if let Some(date) = remote.server_date() {
        // A server that never answered (a refused connection) sent no clock to compare with.
        checks.push(match (&date, &reachable) {
            (None, Err(_)) => Check::skipped("Clock", "the server did not answer"),
            _ => clock_check(date.as_deref(), SystemTime::now()),
        });
    }
    checks
}

async fn read_check(remote: &Remote, layout: &Layout, verbose: bool) -> Check {
    const NAME: &str = "Read permission";
    const HINT: &str =
        "the key needs to list and read objects in this bucket (listFiles, readFiles)";
    if let Err(e) = remote.list(&layout.refs_prefix()).await {
        return remote_failure(NAME, &e, HINT, verbose);
    }
    // A key that does not exist answers "not found" only to a key allowed to read.
    let absent = layout.doctor_probe_key(&format!("absent-{}", probe_token()));
    match remote.get(&absent, MAX_REF_BYTES).await {
        Ok(_) => Check::ok(NAME, "list and get allowed"),
        Err(e) => remote_failure(NAME, &e, HINT, verbose),
    }
}

async fn write_check(
    remote: &Remote,
    layout: &Layout,
    verbose: bool,
    require_write: bool,
) -> Check {
    const NAME: &str = "Write permission";
    let key = layout.doctor_probe_key(&probe_token());
    match remote.probe_write(&key).await {
        WriteProbe::Deleted => Check::ok(NAME, format!("wrote and deleted {key}")),
        WriteProbe::WriteFailed(e) => {
            // Read-only keys for developers, write keys for CI is a normal team setup; the
            // same goes for a shared folder only its owner may write.
            if e.denied() == Some(Access::Write) && !require_write {
                let detail = match &e {
                    RemoteError::DirDenied { .. } => {
                        format!("{e} (pull works; push needs write access to the folder)")
                    }
                    _ => "read-only key: pull works; push needs a key with write access".into(),
                };
                return Check::warning(
                    NAME,
                    detail,
                    "nothing to fix for pulling; pass --require-write to make this a failure",
                );
            }
            remote_failure(
                NAME,
                &e,
                "the key needs write access to push (pull works with a read-only key)",
                verbose,
            )
        }
        WriteProbe::DeleteFailed(e) => Check::failed(
            NAME,
            format!("wrote {key} but could not delete it: {e}"),
            format!("push works, but `rm --remote` needs delete permission; remove {key} by hand"),
        ),
    }
}

fn clock_check(server_date: Option<&str>, now: SystemTime) -> Check {
    const NAME: &str = "Clock";
    let Some(date) = server_date else {
        return Check::skipped(NAME, "the server sent no Date header");
    };
    match clock_skew(date, now) {
        None => Check::skipped(NAME, &format!("cannot read the server's Date {date:?}")),
        Some(skew) if skew.unsigned_abs() > MAX_CLOCK_SKEW.as_secs() => Check::failed(
            NAME,
            describe_skew(skew),
            "S3 refuses requests signed more than 15 minutes off: sync this machine's clock \
             (NTP, e.g. `timedatectl set-ntp true`)",
        ),
        Some(skew) => Check::ok(NAME, describe_skew(skew)),
    }
}

/// Seconds our clock is ahead of the server's `Date` header (negative: behind).
fn clock_skew(server_date: &str, now: SystemTime) -> Option<i64> {
    let server = http_date_secs(server_date)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(now - server)
}

fn describe_skew(skew: i64) -> String {
    match skew {
        // The Date header has one-second resolution and the request took some time.
        -2..=2 => "in step with the server's clock".into(),
        s if s > 0 => format!("this machine's clock is {s}s ahead of the server's"),
        s => format!("this machine's clock is {}s behind the server's", -s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::doctor::Status;

    #[test]
    fn skew_from_http_date() {
        let server = "Sun, 06 Nov 1994 08:49:37 GMT";
        let at = UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(clock_skew(server, at), Some(0));
        assert_eq!(clock_skew(server, at + Duration::from_secs(90)), Some(90));
        assert_eq!(clock_skew(server, at - Duration::from_secs(30)), Some(-30));
        assert_eq!(clock_skew("yesterday", at), None);
    }

    #[test]
    fn large_skew_fails() {
        let server = "Sun, 06 Nov 1994 08:49:37 GMT";
        let an_hour_on = UNIX_EPOCH + Duration::from_secs(784111777 + 3600);
        let check = clock_check(Some(server), an_hour_on);
        assert_eq!(check.status, Status::Failed);
        assert!(check.detail.contains("ahead"), "{}", check.detail);
        assert_eq!(clock_check(None, an_hour_on).status, Status::Skipped);
    }
}
