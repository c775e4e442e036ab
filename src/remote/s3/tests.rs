//! The S3 remote without a server: the write gate, regions, user agents, error text.

use super::interceptors::host_of;
use super::*;
use crate::net::retry::{RetryClass, Retryable};
use crate::text::error_chain;

fn offline_remote() -> S3Remote {
    let creds = Credentials {
        access_key: "GK0".into(),
        secret_key: crate::config::Secret::new("s".into()),
        session_token: None,
        source: CredentialSource::Config,
        overridden: Vec::new(),
    };
    S3Remote::new(Some("http://127.0.0.1:9"), "b", None, &creds, None, None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_first_write_is_the_only_one_sent() {
    let remote = offline_remote();
    let sent = std::sync::atomic::AtomicUsize::new(0);
    let writes = (0..16).map(|_| {
        remote.gated(|| async {
            sent.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err::<(), _>(RemoteError::AccessDenied {
                bucket: "b".into(),
                action: Access::Write,
                code: "AccessDenied".into(),
                key: "blobs/x".into(),
            })
        })
    });
    let results = futures::future::join_all(writes).await;
    assert_eq!(sent.load(Ordering::SeqCst), 1);
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(RemoteError::AccessDenied { .. }))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_run_concurrently_once_one_went_through() {
    let remote = offline_remote();
    let transient = remote
        .gated(|| async {
            Err::<(), _>(RemoteError::Transient {
                detail: "503".into(),
                code: "SlowDown".into(),
            })
        })
        .await;
    assert!(transient.is_err());
    remote.gated(|| async { Ok(()) }).await.unwrap();
    let inflight = std::sync::atomic::AtomicUsize::new(0);
    let peak = std::sync::atomic::AtomicUsize::new(0);
    let writes = (0..8).map(|_| {
        remote.gated(|| async {
            let now = inflight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            inflight.fetch_sub(1, Ordering::SeqCst);
            Ok::<(), RemoteError>(())
        })
    });
    futures::future::join_all(writes).await;
    assert!(peak.load(Ordering::SeqCst) > 1, "writes were serialized");
}

#[test]
fn regions_from_endpoints() {
    assert_eq!(
        default_region(Some("https://s3.us-west-000.backblazeb2.com")),
        "us-west-000"
    );
    assert_eq!(
        default_region(Some("https://s3.eu-west-1.amazonaws.com")),
        "eu-west-1"
    );
    assert_eq!(default_region(Some("http://127.0.0.1:3900")), "us-east-1");
    assert_eq!(default_region(None), "us-east-1");
}

#[test]
fn user_agents() {
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(
        user_agent(Some("https://s3.us-west-000.backblazeb2.com")),
        format!("b2ai-hfcache/{v}")
    );
    assert_eq!(
        user_agent(Some("http://localhost:3900")),
        format!("hf-cache-sync/{v}")
    );
    assert_eq!(user_agent(None), format!("hf-cache-sync/{v}"));
}

fn dispatch_failure(
    e: aws_sdk_s3::error::ConnectorError,
) -> SdkError<
    aws_sdk_s3::operation::get_object::GetObjectError,
    aws_sdk_s3::config::http::HttpResponse,
> {
    SdkError::dispatch_failure(e)
}

#[test]
fn a_connection_closed_mid_answer_is_retried_without_stopping_the_run() {
    use aws_sdk_s3::error::ConnectorError;
    let r = offline_remote();
    let closed = ConnectorError::other("connection closed before message completed".into(), None);
    let e = r.error(dispatch_failure(closed), Access::Read, "blobs/x");
    assert!(matches!(e, RemoteError::Transient { .. }), "{e:?}");
    assert!(e.retry_class() != RetryClass::Never && !e.is_fatal());
    let reset = ConnectorError::io("Connection reset by peer (os error 104)".into());
    let e = r.error(dispatch_failure(reset), Access::Read, "blobs/x");
    assert!(matches!(e, RemoteError::Transient { .. }), "{e:?}");
    // Nobody listening is a wrong endpoint, not a blip.
    let refused = ConnectorError::io("Connection refused (os error 111)".into());
    let e = r.error(dispatch_failure(refused), Access::Read, "blobs/x");
    assert!(matches!(e, RemoteError::Unreachable { .. }), "{e:?}");
    assert!(e.is_fatal());
}

#[test]
fn error_chains_read_as_text_without_debug_dumps() {
    let inner = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "end of file");
    let outer = aws_sdk_s3::primitives::ByteStreamError::from(inner);
    let text = error_chain(&outer);
    assert!(text.contains("end of file"), "{text}");
    assert!(
        !text.contains("Error {") && !text.contains("kind:"),
        "{text}"
    );
}

#[test]
fn hosts() {
    assert_eq!(
        host_of("https://s3.x.backblazeb2.com:443/path"),
        "s3.x.backblazeb2.com"
    );
    assert!(is_aws("https://s3.amazonaws.com"));
    assert!(!is_aws("http://127.0.0.1:3900"));
}

#[tokio::test]
async fn a_presigned_url_names_the_endpoint_path_style_and_expires() {
    let remote = offline_remote();
    let url = remote
        .presign_get("team/blobs/abc", Duration::from_secs(90))
        .await
        .unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:9/b/team/blobs/abc?"),
        "{url}"
    );
    for part in [
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Credential=GK0%2F",
        "X-Amz-Expires=90",
        "X-Amz-Signature=",
    ] {
        assert!(url.contains(part), "{part} not in {url}");
    }
    // Nothing but the URL is needed: no header is signed besides the host.
    assert!(url.contains("X-Amz-SignedHeaders=host&"), "{url}");
    let week_and_a_day = Duration::from_secs(8 * 24 * 3600);
    assert!(remote.presign_get("k", week_and_a_day).await.is_err());
}
