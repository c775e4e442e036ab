//! What every request carries: this tool's user agent, the server's clock for `doctor`, and the
//! guesses an endpoint allows (its region, whether it is AWS).

use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};

/// Identifies requests as this tool (`b2ai-hfcache/<version>` on Backblaze, as 0.1 does).
#[derive(Debug)]
pub(super) struct UserAgent(pub(super) String);

impl Intercept for UserAgent {
    fn name(&self) -> &'static str {
        "UserAgent"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request_mut().headers_mut();
        let value = match headers.get("user-agent") {
            Some(sdk) => format!("{} {sdk}", self.0),
            None => self.0.clone(),
        };
        headers.insert("user-agent", value);
        Ok(())
    }
}

/// Keeps the `Date` header of every response (errors included), so the clock can be compared
/// with the server's.
#[derive(Debug)]
pub(super) struct ServerDate(pub(super) Arc<Mutex<Option<String>>>);

impl Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "ServerDate"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            *self.0.lock().expect("not poisoned") = Some(date.to_string());
        }
        Ok(())
    }
}

/// Seconds since the epoch of a `Date` header as [`ServerDate`] keeps it
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), or `None` when it does not read as one.
pub fn http_date_secs(date: &str) -> Option<i64> {
    DateTime::from_str(date.trim(), DateTimeFormat::HttpDate)
        .ok()
        .map(|d| d.secs())
}

pub fn user_agent(endpoint: Option<&str>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    if endpoint.is_some_and(is_backblaze) {
        format!("b2ai-hfcache/{version}")
    } else {
        format!("hf-cache-sync/{version}")
    }
}

pub(super) fn host_of(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

pub(super) fn is_backblaze(endpoint: &str) -> bool {
    host_of(endpoint).ends_with("backblazeb2.com")
}

pub(super) fn is_aws(endpoint: &str) -> bool {
    host_of(endpoint).ends_with("amazonaws.com")
}

/// The region to sign with: configured, else B2's from its endpoint (`s3.us-west-000.…`), else
/// `us-east-1`, which most S3-compatible servers accept.
pub fn default_region(endpoint: Option<&str>) -> String {
    if let Some(ep) = endpoint {
        let host = host_of(ep);
        if is_backblaze(ep) {
            if let Some(region) = host.strip_prefix("s3.").and_then(|h| h.split('.').next()) {
                return region.to_string();
            }
        }
        if is_aws(ep) {
            let parts: Vec<&str> = host.split('.').collect();
            if let Some(i) = parts.iter().position(|p| *p == "amazonaws") {
                if i >= 1 && parts[i - 1] != "s3" {
                    return parts[i - 1].to_string();
                }
            }
        }
    }
    "us-east-1".to_string()
}
