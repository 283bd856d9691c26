//! Which listener serves the operator: with `[server] admin_listen` the operator's
//! endpoints (`/metrics`, `/sources`, `/sources.json`, `/healthz`, `/readyz`) and the
//! admin POSTs are served there, and `listen` serves only what readers need (the
//! operator's paths are 404 on it). Without it the one listener serves both, and
//! takes admin POSTs only when it is bound to a loopback address, so no other
//! machine can send them. `[server] metrics = false` serves no `/metrics` anywhere.
//!
//! The admin POST: `POST /sources/{id}/reset` forgets a source's failures, backoff
//! and 410 Gone in the store (`tributary reset`) and has the scheduler poll it at once.

use hyper::{Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::operator::{healthz, metrics, readyz, sources};
use super::routes::plain;
use super::{Body, HttpState, serve};
use crate::item::SourceId;
use crate::ops::watchdog::Heartbeat;

/// Which endpoints a listener serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// The only listener: the outputs and the operator's endpoints.
    #[default]
    All,
    /// `listen` beside an `admin_listen`: the outputs only.
    Public,
    /// `admin_listen`: the operator's endpoints, the admin POSTs, and the outputs
    /// (which `/sources` links to).
    Admin,
}

/// The operator's side of a listener.
#[derive(Clone, Debug, Default)]
pub struct Admin {
    pub role: Role,
    /// `[server] metrics = false`: no `/metrics`.
    pub metrics_off: bool,
    /// Admin POSTs are taken here (set by [`serve_all`]).
    pub posts: bool,
    /// Where a reset asks the scheduler to poll a source at once.
    pub resets: Option<mpsc::UnboundedSender<SourceId>>,
}

/// Serves the outputs on `public` and, when given, the operator on `admin` (see the
/// module's comment), until `token` is cancelled; the first that fails stops both.
pub async fn serve_all(
    public: TcpListener,
    admin: Option<TcpListener>,
    state: HttpState,
    heartbeat: Heartbeat,
    token: CancellationToken,
) -> std::io::Result<()> {
    let Some(admin) = admin else {
        let mut state = state;
        state.admin.role = Role::All;
        state.admin.posts = public.local_addr()?.ip().is_loopback();
        return serve(public, state, heartbeat, token).await;
    };
    let mut admin_state = state.clone();
    admin_state.admin.role = Role::Admin;
    admin_state.admin.posts = true;
    let mut public_state = state;
    public_state.admin.role = Role::Public;
    public_state.admin.posts = false;
    // `serve` cancels `token` when it fails, which stops the other one too.
    let (public, admin) = tokio::join!(
        serve(public, public_state, heartbeat.clone(), token.clone()),
        serve(admin, admin_state, heartbeat, token),
    );
    public.and(admin)
}

/// The answer to an operator's GET path (404 where this listener does not serve
/// it); `None` when `path` is not one. `query` pages `/sources`.
pub(super) async fn operator(
    state: &HttpState,
    path: &str,
    query: Option<&str>,
) -> Option<Response<Body>> {
    let here = state.admin.role != Role::Public;
    let response = match path {
        "/healthz" | "/readyz" | "/metrics" | "/sources" | "/sources.json" if !here => {
            plain(StatusCode::NOT_FOUND, "no such page")
        }
        "/metrics" if state.admin.metrics_off => plain(StatusCode::NOT_FOUND, "no such page"),
        "/healthz" => healthz(state).await,
        "/readyz" => readyz(state).await,
        "/metrics" => metrics(state).await,
        "/sources" | "/sources.json" => sources(state, path == "/sources.json", query).await,
        _ => return None,
    };
    Some(response)
}

/// The answer to an admin POST; `None` when this listener takes none or `path` is
/// not one (the caller answers 405).
pub(super) async fn post(state: &HttpState, path: &str) -> Option<Response<Body>> {
    if !state.admin.posts {
        return None;
    }
    let id = path.strip_prefix("/sources/")?.strip_suffix("/reset")?;
    Some(reset(state, id).await)
}

/// `POST /sources/{id}/reset`.
async fn reset(state: &HttpState, slug: &str) -> Response<Body> {
    let page = state.sources.borrow().clone();
    let Some((source, enabled)) = page.sources.find(slug) else {
        return plain(StatusCode::NOT_FOUND, "no such source");
    };
    let (store, id) = (state.store.clone(), source.id.clone());
    let before = match tokio::task::spawn_blocking(move || store.reset_source(&id)).await {
        Ok(Ok(before)) => before,
        Ok(Err(err)) => {
            warn!(source = %source.shown_url(), error = %err, "cannot reset the source");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot write the store now",
            );
        }
        Err(err) => {
            warn!(error = %err, "resetting a source crashed");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot write the store now",
            );
        }
    };
    let forgot = crate::ops::status::forgotten(&before);
    info!(source = %source.shown_url(), "source reset: {forgot}");
    let then = match (enabled, &state.admin.resets) {
        (true, Some(resets)) if resets.send(source.id.clone()).is_ok() => "polling it now",
        (true, _) => "it is polled when next due",
        (false, _) => "it is disabled: not polled until enabled",
    };
    plain(
        StatusCode::OK,
        &format!("reset {}: {forgot}; {then}", source.shown_url()),
    )
}
