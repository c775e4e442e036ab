//! Direct access to the test bucket, independent of the binary: to see which keys a command
//! wrote, and to corrupt blobs or plant hostile manifests.

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use serde_json::Value;
use tokio::runtime::Runtime;

use super::cache::remote_name;
use super::Garage;

/// One object of a listing.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Relative to the bucket's prefix.
    pub key: String,
    pub size: u64,
    /// The S3 ETag without quotes (MD5-based, `-<parts>` for multipart uploads).
    pub etag: String,
}

/// The test bucket under one prefix; every key argument is relative to that prefix.
pub struct Bucket {
    rt: Runtime,
    client: Client,
    bucket: String,
    prefix: String,
}

impl Bucket {
    /// The read-write view of `prefix` (may be empty: the bucket root).
    pub fn new(garage: &Garage, prefix: &str) -> Bucket {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&garage.endpoint)
            .region(Region::new(garage.region.clone()))
            .credentials_provider(Credentials::new(
                &garage.access_key,
                &garage.secret_key,
                None,
                None,
                "hfcs-test",
            ))
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        let client = Client::from_conf(config);
        Bucket {
            rt,
            client,
            bucket: garage.bucket.clone(),
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    #[track_caller]
    pub fn put(&self, rel: &str, body: impl Into<Vec<u8>>) {
        let key = self.key(rel);
        let body = ByteStream::from(body.into());
        self.rt
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .body(body)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    /// The object's bytes, or `None` if there is no such key.
    #[track_caller]
    pub fn get(&self, rel: &str) -> Option<Vec<u8>> {
        let key = self.key(rel);
        self.rt.block_on(async {
            match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
            {
                Ok(out) => Some(
                    out.body
                        .collect()
                        .await
                        .unwrap_or_else(|e| panic!("read {key}: {e:?}"))
                        .to_vec(),
                ),
                Err(e) => match e.into_service_error() {
                    aws_sdk_s3::operation::get_object::GetObjectError::NoSuchKey(_) => None,
                    e => panic!("get {key}: {e:?}"),
                },
            }
        })
    }

    /// The object's body as text, panicking if it is missing.
    #[track_caller]
    pub fn get_text(&self, rel: &str) -> String {
        let bytes = self
            .get(rel)
            .unwrap_or_else(|| panic!("{} is not in the bucket", self.key(rel)));
        String::from_utf8(bytes).expect("utf-8 object")
    }

    /// The object's S3 ETag (multipart uploads end in `-<parts>`).
    #[track_caller]
    pub fn etag(&self, rel: &str) -> String {
        let key = self.key(rel);
        let out = self
            .rt
            .block_on(
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("head {key}: {e:?}"));
        out.e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string()
    }

    #[track_caller]
    pub fn delete(&self, rel: &str) {
        let key = self.key(rel);
        self.rt
            .block_on(
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("delete {key}: {e:?}"));
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.get(rel).is_some()
    }

    /// Every key under the prefix, relative to it, sorted.
    #[track_caller]
    pub fn keys(&self) -> Vec<String> {
        self.objects().into_iter().map(|o| o.key).collect()
    }

    /// Every object under the prefix as listed (key relative to the prefix), sorted by key.
    #[track_caller]
    pub fn objects(&self) -> Vec<Listed> {
        let list_prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .rt
                .block_on(
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(&list_prefix)
                        .set_continuation_token(token.take())
                        .send(),
                )
                .unwrap_or_else(|e| panic!("list {list_prefix}: {e:?}"));
            for obj in out.contents() {
                if let Some(k) = obj.key() {
                    objects.push(Listed {
                        key: k[list_prefix.len()..].to_string(),
                        size: obj.size().unwrap_or(0).max(0) as u64,
                        etag: obj
                            .e_tag()
                            .unwrap_or_default()
                            .trim_matches('"')
                            .to_string(),
                    });
                }
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects
    }

    /// Keys of multipart uploads still open under the prefix, relative to it.
    #[track_caller]
    pub fn open_uploads(&self) -> Vec<String> {
        let out = self
            .rt
            .block_on(
                self.client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(self.key(""))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("list multipart uploads: {e:?}"));
        let strip = self.key("").len();
        out.uploads()
            .iter()
            .filter_map(|u| u.key().map(|k| k[strip..].to_string()))
            .collect()
    }

    /// Starts a multipart upload and leaves it open, as a killed run would.
    #[track_caller]
    pub fn start_upload(&self, rel: &str) {
        self.rt
            .block_on(
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(self.key(rel))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("create multipart upload {rel}: {e:?}"));
    }

    /// Keys under `sub/` (e.g. `blobs`), relative to the prefix.
    pub fn keys_under(&self, sub: &str) -> Vec<String> {
        let start = format!("{}/", sub.trim_end_matches('/'));
        self.keys()
            .into_iter()
            .filter(|k| k.starts_with(&start))
            .collect()
    }

    /// The parsed manifest of `repo_id` at `commit`.
    #[track_caller]
    pub fn manifest(&self, repo_id: &str, commit: &str) -> Value {
        let text = self.get_text(&manifest_key(repo_id, commit));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("manifest is not JSON: {e}\n{text}"))
    }
}

/// `manifests/<org__name>@<commit>.json`, relative to the prefix.
pub fn manifest_key(repo_id: &str, commit: &str) -> String {
    format!("manifests/{}@{commit}.json", remote_name(repo_id))
}

/// `refs/<org__name>/<ref>`, relative to the prefix.
pub fn ref_key(repo_id: &str, name: &str) -> String {
    format!("refs/{}/{name}", remote_name(repo_id))
}

/// `blobs/<etag>`, relative to the prefix.
pub fn blob_key(etag: &str) -> String {
    format!("blobs/{etag}")
}
