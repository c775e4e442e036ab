//! What a lock object in the bucket says and how runs judge each other's: who holds it, since
//! when, whether it is stale, and which locks a new holder must back off from. Pure, so a lease
//! (one holder per key) can reuse it.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// A lock (or lease) whose holder has not refreshed it for this long is ignored.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

/// Who a lock lets in beside its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Any number of holders at once, no exclusive one: push, write-through.
    Shared,
    /// One holder and nobody else: gc.
    Exclusive,
}

impl LockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LockKind::Shared => "shared",
            LockKind::Exclusive => "exclusive",
        }
    }

    pub fn parse(text: &str) -> Option<LockKind> {
        match text {
            "shared" => Some(LockKind::Shared),
            "exclusive" => Some(LockKind::Exclusive),
            _ => None,
        }
    }

    /// Must a holder of `self` back off from a fresh lock of `other`?
    pub fn conflicts_with(self, other: LockKind) -> bool {
        self == LockKind::Exclusive || other == LockKind::Exclusive
    }
}

/// Who holds a lock and since when: the body of a lock object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Random, one per lock or lease taken: tells a holder its own object from another run's
    /// on the same host and pid (containers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// The command line, program name first (`hf-cache-sync push org/m`).
    pub command: String,
    #[serde(with = "rfc3339")]
    pub created: SystemTime,
    #[serde(with = "rfc3339")]
    pub refreshed: SystemTime,
}

impl Holder {
    /// This process, as of `now`.
    pub fn this_process(now: SystemTime) -> Holder {
        Holder {
            id: format!("{:016x}", fastrand::u64(..)),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            command: command_line(),
            created: now,
            refreshed: now,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut body = serde_json::to_vec_pretty(self).expect("a holder serializes");
        body.push(b'\n');
        body
    }

    pub fn parse(body: &[u8]) -> Result<Holder, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// Not refreshed for [`STALE_AFTER`] at `now`. A time ahead of `now` (a clock ahead of
    /// ours) is fresh.
    pub fn is_stale(&self, now: SystemTime) -> bool {
        self.is_older_than(STALE_AFTER, now)
    }

    /// Not refreshed for `age` at `now`.
    pub fn is_older_than(&self, age: Duration, now: SystemTime) -> bool {
        since(self.refreshed, now) >= age
    }

    /// `` `hf-cache-sync push` on node-1 (pid 4242), started 3m ago, refreshed 12s ago ``.
    pub fn describe(&self, now: SystemTime) -> String {
        format!(
            "`{}` on {} (pid {}), started {} ago, refreshed {} ago",
            self.command,
            self.host,
            self.pid,
            ago(self.created, now),
            ago(self.refreshed, now)
        )
    }
}

/// The program's name and arguments: what a person looking at a lock recognises. No argument
/// of this tool takes a secret.
fn command_line() -> String {
    let mut args = std::env::args_os();
    let program = args
        .next()
        .map(|p| {
            std::path::Path::new(&p)
                .file_name()
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_else(|| env!("CARGO_PKG_NAME").into());
    let mut line = std::iter::once(program)
        .chain(args.map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    if line.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    line
}

fn since(then: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

/// `3m 12s`: whole seconds, for people.
fn ago(then: SystemTime, now: SystemTime) -> String {
    humantime::format_duration(Duration::from_secs(since(then, now).as_secs())).to_string()
}

mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_seconds(*time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

/// Another run's lock, as listed.
#[derive(Debug, Clone)]
pub struct SeenLock {
    pub key: String,
    pub kind: LockKind,
    /// `None` when the body could not be parsed: the object's time stands in for its refresh.
    pub holder: Option<Holder>,
    /// When the object was last written, by the store.
    pub written: Option<SystemTime>,
}

impl SeenLock {
    /// Not refreshed for [`STALE_AFTER`]; a lock of unknown age is fresh.
    pub fn is_stale(&self, now: SystemTime) -> bool {
        match (&self.holder, self.written) {
            (Some(h), _) => h.is_stale(now),
            (None, Some(t)) => since(t, now) >= STALE_AFTER,
            (None, None) => false,
        }
    }

    /// `locks/shared-ab12.json: push … on node-1 (pid 4242), started …`.
    pub fn describe(&self, now: SystemTime) -> String {
        let who = match (&self.holder, self.written) {
            (Some(h), _) => h.describe(now),
            (None, Some(t)) => format!("unreadable lock written {} ago", ago(t, now)),
            (None, None) => "unreadable lock".into(),
        };
        format!("{} ({} lock): {who}", self.key, self.kind.as_str())
    }
}

/// What the locks listed after writing one's own say.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Fresh locks of others that the lock taken cannot stand beside: back off.
    pub blocking: Vec<SeenLock>,
    /// Locks left from killed runs: ignored, and worth a warning.
    pub stale: Vec<SeenLock>,
}

/// Sorts what a holder of a `kind` lock stored at `own` sees at `now`.
pub fn judge(kind: LockKind, own: &str, seen: Vec<SeenLock>, now: SystemTime) -> Verdict {
    let mut verdict = Verdict::default();
    for lock in seen.into_iter().filter(|l| l.key != own) {
        if lock.is_stale(now) {
            verdict.stale.push(lock);
        } else if kind.conflicts_with(lock.kind) {
            verdict.blocking.push(lock);
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs_ago: u64, now: SystemTime) -> SystemTime {
        now - Duration::from_secs(secs_ago)
    }

    fn seen(key: &str, kind: LockKind, refreshed_ago: u64, now: SystemTime) -> SeenLock {
        SeenLock {
            key: key.into(),
            kind,
            holder: Some(Holder {
                id: String::new(),
                host: "node-1".into(),
                pid: 42,
                command: "hf-cache-sync push".into(),
                created: at(refreshed_ago + 60, now),
                refreshed: at(refreshed_ago, now),
            }),
            written: Some(now),
        }
    }

    #[test]
    fn a_lock_body_round_trips_and_hand_written_ones_are_read() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = Holder {
            id: "0a1b2c3d4e5f6789".into(),
            host: "node-1".into(),
            pid: 4242,
            command: "hf-cache-sync gc --remote".into(),
            created: now,
            refreshed: now + Duration::from_secs(300),
        };
        let body = h.to_json();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(
            text.contains("\"created\": \"2023-11-14T22:13:20Z\""),
            "{text}"
        );
        assert_eq!(Holder::parse(&body).unwrap(), h);
        // Written by hand or by another tool: fractions and unknown fields are fine.
        let other =
            br#"{"host": "h", "pid": 1, "command": "c", "created": "2023-11-14T22:13:20.5Z",
            "refreshed": "2023-11-14T22:13:20Z", "user": "me"}"#;
        assert_eq!(Holder::parse(other).unwrap().pid, 1);
        assert!(Holder::parse(b"{\"host\": \"h\"}").is_err());
        assert!(Holder::parse(b"not json").is_err());
    }

    #[test]
    fn a_lock_is_stale_thirty_minutes_after_its_last_refresh() {
        let now = SystemTime::now();
        assert!(!seen("k", LockKind::Shared, 29 * 60, now).is_stale(now));
        assert!(seen("k", LockKind::Shared, 30 * 60, now).is_stale(now));
        // A clock ahead of ours is not a reason to ignore a lock.
        let mut ahead = seen("k", LockKind::Shared, 0, now);
        ahead.holder.as_mut().unwrap().refreshed = now + Duration::from_secs(3600);
        assert!(!ahead.is_stale(now));
        // An unreadable body ages by the object's time; of unknown age it is fresh.
        let unreadable = |written| SeenLock {
            key: "k".into(),
            kind: LockKind::Shared,
            holder: None,
            written,
        };
        assert!(unreadable(Some(at(31 * 60, now))).is_stale(now));
        assert!(!unreadable(Some(at(60, now))).is_stale(now));
        assert!(!unreadable(None).is_stale(now));
    }

    #[test]
    fn gc_backs_off_from_any_fresh_lock_and_a_push_only_from_a_gc() {
        let now = SystemTime::now();
        let push = seen("locks/shared-a.json", LockKind::Shared, 10, now);
        let other_push = seen("locks/shared-b.json", LockKind::Shared, 10, now);
        let gc = seen("locks/exclusive-c.json", LockKind::Exclusive, 10, now);
        let dead_push = seen("locks/shared-d.json", LockKind::Shared, 31 * 60, now);

        let v = judge(
            LockKind::Exclusive,
            &gc.key,
            vec![gc.clone(), push.clone(), dead_push.clone()],
            now,
        );
        assert_eq!(keys(&v.blocking), [push.key.as_str()]);
        assert_eq!(keys(&v.stale), [dead_push.key.as_str()]);

        let v = judge(
            LockKind::Shared,
            &push.key,
            vec![push.clone(), other_push.clone(), dead_push.clone()],
            now,
        );
        assert!(v.blocking.is_empty(), "pushes stand beside each other");
        assert_eq!(keys(&v.stale), [dead_push.key.as_str()]);

        // Both see each other: both back off (the push tries again later, the gc gives up).
        assert_eq!(
            keys(
                &judge(
                    LockKind::Shared,
                    &push.key,
                    vec![push.clone(), gc.clone()],
                    now
                )
                .blocking
            ),
            [gc.key.as_str()]
        );
        assert_eq!(
            keys(
                &judge(
                    LockKind::Exclusive,
                    &gc.key,
                    vec![push.clone(), gc.clone()],
                    now
                )
                .blocking
            ),
            [push.key.as_str()]
        );
        // Two gcs do not share the bucket either.
        let other_gc = seen("locks/exclusive-e.json", LockKind::Exclusive, 10, now);
        assert_eq!(
            judge(LockKind::Exclusive, &gc.key, vec![other_gc], now)
                .blocking
                .len(),
            1
        );
    }

    fn keys(locks: &[SeenLock]) -> Vec<&str> {
        locks.iter().map(|l| l.key.as_str()).collect()
    }

    #[test]
    fn a_holder_is_named_by_host_pid_command_and_age() {
        let now = SystemTime::now();
        let text = seen("locks/shared-a.json", LockKind::Shared, 12, now).describe(now);
        assert_eq!(
            text,
            "locks/shared-a.json (shared lock): `hf-cache-sync push` on node-1 (pid 42), \
             started 1m 12s ago, refreshed 12s ago"
        );
        let me = Holder::this_process(now);
        assert_eq!(me.pid, std::process::id());
        assert!(!me.host.is_empty() && !me.command.is_empty());
    }
}
