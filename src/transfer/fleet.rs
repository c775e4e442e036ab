//! One Hub fetch per fleet. When nodes that start together each pull with `--write-through` a
//! revision the bucket lacks, one of them (the holder of the revision's lease,
//! [`crate::remote::bucket_lock::Lease`]) fetches it from the Hub and writes each blob through
//! to the bucket as soon as it has it; the others take the blobs from the bucket as they appear
//! there. A lease whose holder stops refreshing it (killed, cut off) goes stale, and a waiting
//! node takes over. The revision's manifest and ref are still written last, by write-through,
//! once every blob is in. A node that cannot write the bucket (a read-only key) takes no lease
//! and fetches for itself.

use std::sync::Mutex as SyncMutex;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::sync::Mutex;

use super::fetch::{fetch_through, BlobFetch, BlobJob, Served};
use super::plan::Plan;
use super::push::PushPolicy;
use super::source::Sources;
use super::TransferError;
use crate::cache::blob_path;
use crate::net::TransferCtx;
use crate::remote::bucket_lock::{Holder, Lease, Taken};
use crate::remote::BlobSource;
use crate::text::{error_chain, short};

/// How often a waiting node looks for the next blob in the bucket.
const POLL: Duration = Duration::from_secs(1);
/// How often a waiting node reads the lease to see whether its holder is still at work.
const LEASE_CHECK: Duration = Duration::from_secs(5);

/// The leases of a run's plans: `None` for a plan no other node could be fetching for it.
pub struct Fleet {
    plans: Vec<Option<Revision>>,
}

/// One revision fetched for the fleet.
struct Revision {
    /// The nearest remote: where the lease is, and where the blobs are published.
    bucket: usize,
    /// The source that serves the revision (the Hub).
    hub: usize,
    key: String,
    /// `org/m@<12 hex>`, for messages.
    name: String,
    role: Mutex<Role>,
    /// Blobs written through as they came, by remote: how many, how many bytes.
    published: SyncMutex<Published>,
}

/// Blobs a fleet's holder wrote through as the Hub served them, by source index: how many and
/// how many bytes. Write-through counts them as its own.
pub type Published = std::collections::BTreeMap<usize, (usize, u64)>;

enum Role {
    /// This run fetches from the Hub and publishes each blob.
    Leader(Lease),
    /// Another run does; `checked` is when its lease was last seen fresh.
    Follower { checked: Instant },
    /// This run fetches for itself, publishing nothing early (no lease could be taken).
    Alone,
}

impl Fleet {
    pub fn none(plans: usize) -> Fleet {
        Fleet {
            plans: (0..plans).map(|_| None).collect(),
        }
    }

    /// Takes (or finds taken) the lease of each plan the Hub serves and a remote before it
    /// would take written through, all at once. Says on `notes` which revisions another node
    /// fetches.
    pub async fn gather(
        sources: &Sources,
        plans: &[Plan],
        policy: &PushPolicy,
        notes: &SyncMutex<Vec<String>>,
        ctx: &TransferCtx,
    ) -> Fleet {
        let taken = plans.iter().map(|plan| async move {
            let hub = plan.tier;
            if !sources.get(hub).is_hub() || (plan.gated == Some(true) && !policy.allow_gated) {
                return None;
            }
            let bucket = (0..hub).find(|&i| sources.remote(i).is_some())?;
            let (remote, layout) = sources.remote(bucket).expect("a remote");
            let key = layout.lease_key(&plan.folder, &plan.commit);
            let name = format!("{}@{}", plan.repo_id, short(&plan.commit));
            let role = match Lease::take(remote, &key).await {
                Ok(Taken::Mine(lease)) => Role::Leader(lease),
                Ok(Taken::Theirs(holder)) => {
                    let note = following(&name, &holder, &remote.describe());
                    ctx.progress.log(&note);
                    notes.lock().expect("not poisoned").push(note);
                    Role::Follower {
                        checked: Instant::now(),
                    }
                }
                Err(e) => {
                    ctx.progress.log(&format!(
                        "{name}: no lease on {} ({}): fetching it from the Hub without telling \
                         other nodes",
                        remote.describe(),
                        error_chain(&e)
                    ));
                    Role::Alone
                }
            };
            Some(Revision {
                bucket,
                hub,
                key,
                name,
                role: Mutex::new(role),
                published: SyncMutex::new(Published::new()),
            })
        });
        Fleet {
            plans: join_all(taken).await,
        }
    }

    /// Fetches `job` of plan `plan`: from the Hub and published at once when this run leads
    /// the fleet for it, from the bucket once there when another run does.
    /// `first` is the source the plan's revision comes from.
    pub async fn fetch(
        &self,
        (plan, first): (usize, usize),
        sources: &Sources,
        cache_dir: &std::path::Path,
        ctx: &TransferCtx,
        job: &BlobJob,
        notes: &SyncMutex<Vec<String>>,
    ) -> Result<Served, TransferError> {
        let Some(rev) = &self.plans[plan] else {
            return fetch_through(sources, first, cache_dir, ctx, job, notes).await;
        };
        let (remote, layout) = sources.remote(rev.bucket).expect("a remote");
        let key = layout.blob_key(&job.etag);
        loop {
            if !matches!(*rev.role.lock().await, Role::Follower { .. }) {
                let served = fetch_through(sources, rev.hub, cache_dir, ctx, job, notes).await?;
                if matches!(*rev.role.lock().await, Role::Leader(_))
                    && matches!(served.fetched, BlobFetch::Downloaded { .. })
                {
                    rev.publish(sources, ctx, job, notes).await;
                }
                return Ok(served);
            }
            match remote.object_size(&key).await {
                Ok(Some(size)) if size == job.size => {
                    return fetch_through(sources, rev.bucket, cache_dir, ctx, job, notes).await;
                }
                Ok(_) => {}
                // The bucket cannot be asked: the Hub can.
                Err(_) => return fetch_through(sources, rev.hub, cache_dir, ctx, job, notes).await,
            }
            rev.check_lease(sources, ctx, notes).await;
            if matches!(*rev.role.lock().await, Role::Follower { .. }) {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// Releases plan `plan`'s lease, once its revision is written through (or failed). Returns
    /// the blobs it wrote through early.
    pub async fn release(&mut self, plan: usize, ctx: &TransferCtx) -> Published {
        let Some(rev) = self.plans[plan].take() else {
            return Published::new();
        };
        let published = rev.published.into_inner().expect("not poisoned");
        if let Role::Leader(lease) = rev.role.into_inner() {
            let key = lease.key().to_string();
            if let Err(e) = lease.release().await {
                ctx.progress.log(&format!(
                    "warning: cannot remove the lease {key} ({e}); others take it over once it \
                     is stale"
                ));
            }
        }
        published
    }
}

impl Revision {
    /// Writes the blob the Hub just served through to every remote before the Hub, so the
    /// nodes waiting for it get it now rather than once the whole revision is in. A failure is
    /// noted, not fatal: write-through tries again at the end.
    async fn publish(
        &self,
        sources: &Sources,
        ctx: &TransferCtx,
        job: &BlobJob,
        notes: &SyncMutex<Vec<String>>,
    ) {
        let src = BlobSource {
            etag: job.etag.clone(),
            path: blob_path(&job.repo_dir, &job.etag),
            size: job.size,
        };
        for i in (0..self.hub).filter(|&i| sources.remote(i).is_some()) {
            let (remote, layout) = sources.remote(i).expect("a remote");
            let uploaded = remote
                .upload_blob(&src, &layout.blob_key(&job.etag), ctx)
                .await;
            if uploaded.is_ok() {
                let mut published = self.published.lock().expect("not poisoned");
                let (count, bytes) = published.entry(i).or_default();
                *count += 1;
                *bytes += job.size;
            }
            if let Err(e) = uploaded {
                let note = format!(
                    "{}: blob {} not written through to {} yet: {}",
                    self.name,
                    job.etag,
                    remote.describe(),
                    error_chain(&e)
                );
                ctx.progress.log(&format!("warning: {note}"));
                notes.lock().expect("not poisoned").push(note);
            }
        }
    }

    /// A follower reads the lease every [`LEASE_CHECK`]: when its holder has stopped
    /// refreshing it (or finished without this blob), this run takes it over.
    async fn check_lease(
        &self,
        sources: &Sources,
        ctx: &TransferCtx,
        notes: &SyncMutex<Vec<String>>,
    ) {
        let mut role = self.role.lock().await;
        let Role::Follower { checked } = &mut *role else {
            return;
        };
        if checked.elapsed() < LEASE_CHECK {
            return;
        }
        let (remote, _) = sources.remote(self.bucket).expect("a remote");
        match Lease::holder(remote, &self.key).await {
            Ok(Some(_)) => *checked = Instant::now(),
            Ok(None) => match Lease::take(remote, &self.key).await {
                Ok(Taken::Mine(lease)) => {
                    let note = format!(
                        "{}: the node fetching it from the Hub stopped; fetching the rest here",
                        self.name
                    );
                    ctx.progress.log(&note);
                    notes.lock().expect("not poisoned").push(note);
                    *role = Role::Leader(lease);
                }
                Ok(Taken::Theirs(_)) => *checked = Instant::now(),
                Err(_) => *role = Role::Alone,
            },
            Err(_) => *role = Role::Alone,
        }
    }
}

/// `org/m@…: another node fetches it from the Hub (`pull …` on node-1 (pid 42), …); taking its
/// blobs from s3://… as they arrive`.
fn following(name: &str, holder: &Holder, remote: &str) -> String {
    format!(
        "{name}: another node is fetching it from the Hub ({}); taking its blobs from {remote} \
         as they arrive",
        holder.describe(std::time::SystemTime::now())
    )
}
