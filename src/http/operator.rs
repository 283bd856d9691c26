//! The operator's endpoints: `/healthz`, `/readyz`, `/metrics`, and `/sources` (HTML)
//! or `/sources.json`, each source's status.

use bytes::Bytes;
use chrono::Utc;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode, header::HeaderValue};
use tracing::warn;

use super::routes::plain;
use super::{Body, HttpState};
use crate::ops::metrics;
use crate::ops::status;

/// Whether the store answers a read (off the accept loop: it may touch the disk).
async fn store_answers(state: &HttpState) -> bool {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.is_healthy())
        .await
        .unwrap_or(false)
}

pub(super) async fn healthz(state: &HttpState) -> Response<Body> {
    if store_answers(state).await {
        plain(StatusCode::OK, "ok")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
    }
}

/// 200 when the daemon should get traffic, else 503 with the reason (before the
/// first poll cycle, while draining, when the store stops answering).
pub(super) async fn readyz(state: &HttpState) -> Response<Body> {
    if let Err(reason) = state.health.readiness() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, reason);
    }
    if store_answers(state).await {
        plain(StatusCode::OK, "ready")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
    }
}

pub(super) async fn metrics(state: &HttpState) -> Response<Body> {
    let store = state.store.clone();
    let size = tokio::task::spawn_blocking(move || store.size_on_disk())
        .await
        .ok()
        .and_then(|size| {
            size.map_err(|err| warn!(error = %err, "cannot measure the store"))
                .ok()
        })
        .unwrap_or(0);
    let mut response = Response::new(Body::new(Bytes::from(state.metrics.encode(size))));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

/// `/sources` or `/sources.json`: each source's status, read from the store's source
/// states (one small read per source) and the cached item counts.
pub(super) async fn sources(state: &HttpState, json: bool) -> Response<Body> {
    let store = state.store.clone();
    let page = state.sources.borrow().clone();
    let metrics = state.metrics.clone();
    let listed = page.clone();
    let statuses = tokio::task::spawn_blocking(move || {
        let mut statuses = status::collect(&listed.sources, &store, |id| metrics.source_items(id))?;
        statuses.extend(status::collect_disabled(&listed.disabled, &store, |_| {
            None
        })?);
        Ok::<_, crate::store::StoreError>(statuses)
    })
    .await;
    let statuses = match statuses {
        Ok(Ok(statuses)) => statuses,
        Ok(Err(err)) => {
            warn!(error = %err, "cannot read the source states");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "cannot read the store now");
        }
        Err(err) => {
            warn!(error = %err, "reading the source states crashed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "cannot read the store now");
        }
    };
    let (body, content_type) = if json {
        (status::render_json(&statuses), "application/json")
    } else {
        (
            status::render_html(&statuses, &page.title, Utc::now()),
            "text/html; charset=utf-8",
        )
    };
    let mut response = Response::new(Body::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A status is true for a moment: caches must not keep it.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
