//! The operator's endpoints: `/healthz`, `/readyz`, `/metrics`, and `/sources` (HTML)
//! or `/sources.json`, each source's status.

use bytes::Bytes;
use chrono::Utc;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, LINK};
use hyper::{Response, StatusCode, header::HeaderValue};
use tracing::warn;

use super::routes::plain;
use super::{Body, HttpState};
use crate::ops::cluster;
use crate::ops::listing::{Listing, PageQuery};
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

/// 200 when the daemon should get traffic, else 503 with the reason (before polling
/// starts or the sources new to the store are polled, while draining, when the store
/// stops answering; see [`crate::ops::health`]).
pub(super) async fn readyz(state: &HttpState) -> Response<Body> {
    if let Err(reason) = state.health.readiness() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, reason);
    }
    if store_answers(state).await {
        match &state.cluster {
            Some(cluster) => plain(StatusCode::OK, &format!("ready\n{}", cluster.describe())),
            None => plain(StatusCode::OK, "ready"),
        }
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
    }
}

pub(super) async fn metrics(state: &HttpState) -> Response<Body> {
    let store = state.store.clone();
    let cluster = state.cluster.clone();
    let read = tokio::task::spawn_blocking(move || {
        let size = store
            .size_on_disk()
            .map_err(|err| warn!(error = %err, "cannot measure the store"))
            .unwrap_or(0);
        let summary = cluster.and_then(|cluster| {
            cluster
                .read()
                .map_err(|err| warn!(error = %err, "cannot read the lease table"))
                .ok()
        });
        (size, summary)
    })
    .await;
    let (size, summary) = read.unwrap_or((0, None));
    let mut text = state.metrics.encode(size);
    if let Some((summary, _)) = &summary {
        cluster::add_families(&mut text, summary);
    }
    let mut response = Response::new(Body::new(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

/// `/sources` or `/sources.json`: a page of the sources' statuses (`?limit=&after=`,
/// see [`listing`]), read from the store's source states (one small read per source
/// of the page) and the cached item counts; a `Link` header names the next page.
pub(super) async fn sources(state: &HttpState, json: bool, query: Option<&str>) -> Response<Body> {
    let query = match PageQuery::parse(query) {
        Ok(query) => query,
        Err(reason) => return plain(StatusCode::BAD_REQUEST, &reason),
    };
    let page = state.sources.borrow().clone();
    let rows = match page.sources.page(&query) {
        Ok(rows) => rows,
        Err(reason) => return plain(StatusCode::BAD_REQUEST, &reason),
    };
    let store = state.store.clone();
    let metrics = state.metrics.clone();
    let listed = page.clone();
    let range = rows.clone();
    let view = state.cluster.clone();
    let statuses = tokio::task::spawn_blocking(move || {
        let mut statuses = listed
            .sources
            .statuses(range.clone(), &store, |id| metrics.source_items(id))?;
        let summary = match view {
            Some(view) => {
                Some(view.mark(&mut statuses, range.map(|place| listed.sources.get(place)))?)
            }
            None => None,
        };
        Ok::<_, crate::store::StoreError>((statuses, summary))
    })
    .await;
    let (statuses, summary) = match statuses {
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
    let next = page.sources.next(&query, &rows);
    let (total, failing) = (page.sources.len(), state.metrics.failing_sources());
    let (body, content_type, link) = if json {
        let link = next.as_ref().map(|next| format!("sources.json?{next}"));
        let listing = Listing {
            sources: statuses,
            total: Some(total),
            failing: Some(failing),
            next: link.clone(),
            cluster: summary,
        };
        (listing.to_json(), "application/json", link)
    } else {
        let header = status::PageHeader {
            title: &page.title,
            total,
            failing,
            first: rows.start,
            next: next.clone(),
            cluster: summary.as_ref().map(cluster::html_line),
        };
        let body = status::render_html(&statuses, &header, Utc::now());
        let link = next.map(|next| format!("sources?{next}"));
        (body, "text/html; charset=utf-8", link)
    };
    let mut response = Response::new(Body::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A status is true for a moment: caches must not keep it.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(link) = link
        && let Ok(value) = HeaderValue::from_str(&format!("<{link}>; rel=\"next\""))
    {
        headers.insert(LINK, value);
    }
    response
}
