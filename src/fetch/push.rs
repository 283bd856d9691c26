//! One WebSub request (W3C WebSub §5, §7): a hub's verification GET to a
//! subscriber, a content delivery POST, a `hub.mode=publish` ping to a hub. Through
//! the same clients, limits and address guard as every poll; no redirect is followed
//! (a callback answers where it was given, or not at all). Called by the `hub` room.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use std::time::Duration;
use url::Url;

use super::{AddressPolicy, FetchError, Fetcher};

/// 10 seconds for one WebSub request, or the poll timeout when shorter: a callback
/// does no more than store or acknowledge, and a slow one holds a delivery slot.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// 64 KiB of a callback's or hub's answer are read: the challenge echoed back, or an
/// error message for the log; the rest is dropped.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A WebSub request to send.
pub struct Push<'a> {
    pub method: Method,
    pub url: &'a Url,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Which addresses it may reach.
    pub policy: AddressPolicy,
}

/// The answer to a [`Push`]: its status and the start of its body.
#[derive(Debug)]
pub struct PushAnswer {
    pub status: StatusCode,
    /// At most [`MAX_ANSWER_BYTES`].
    pub body: Vec<u8>,
}

impl Fetcher {
    /// Sends `push` and reads the start of the answer, whatever its status; an
    /// address the policy refuses, a timeout or a failed connection are errors.
    pub async fn push(&self, push: Push<'_>) -> Result<PushAnswer, FetchError> {
        let timeout = self.timeout.min(PUSH_TIMEOUT);
        push.policy
            .check_url(push.url, false)
            .map_err(FetchError::Refused)?;
        let client = self
            .client(push.policy)
            .map_err(|e| FetchError::from_reqwest(e, timeout))?;
        let exchange = async {
            let mut response = client
                .request(push.method, push.url.clone())
                .headers(push.headers)
                .body(push.body)
                .send()
                .await?;
            let status = response.status();
            let mut body = Vec::new();
            while body.len() < MAX_ANSWER_BYTES
                && let Some(chunk) = response.chunk().await?
            {
                let room = MAX_ANSWER_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok::<_, reqwest::Error>(PushAnswer { status, body })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result.map_err(|e| FetchError::from_reqwest(e, timeout)),
            Err(_) => Err(FetchError::Timeout { after: timeout }),
        }
    }
}
