//! A form POST through the same client, timeouts and address guard as every fetch:
//! the WebSub subscriber's requests to a hub (subscribe, unsubscribe). Redirects are
//! not followed (a hub answers its subscribers directly), and no source credentials
//! are sent: the hub is not the source's origin.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use url::Url;

use super::{FetchError, Fetcher, RequestOptions};

/// 4 KiB of a hub's answer is read, for the error message of a refusal.
const MAX_ANSWER_BYTES: usize = 4096;

impl Fetcher {
    /// POSTs `form` (`application/x-www-form-urlencoded`) to `url` under the address
    /// policy of `options`; the status and the start of the answer's body.
    pub async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        options: &RequestOptions,
    ) -> Result<(StatusCode, String), FetchError> {
        let timeout = self.timeout;
        let request = async {
            options
                .addresses
                .check_url(url, false)
                .map_err(FetchError::Refused)?;
            let client = self
                .client(options.addresses)
                .map_err(|e| FetchError::from_reqwest(e, timeout))?;
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            let mut response = client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .map_err(|e| FetchError::from_reqwest(e, timeout))?;
            let status = response.status();
            let mut answer = Vec::new();
            while answer.len() < MAX_ANSWER_BYTES
                && let Ok(Some(chunk)) = response.chunk().await
            {
                answer.extend_from_slice(&chunk);
            }
            answer.truncate(MAX_ANSWER_BYTES);
            Ok((status, String::from_utf8_lossy(&answer).trim().to_string()))
        };
        match tokio::time::timeout(timeout, request).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout { after: timeout }),
        }
    }
}
