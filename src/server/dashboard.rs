//! The dashboard's static files on the API listener: `GET /dashboard/` (its `index.html`)
//! and `GET /dashboard/<file>` from the dashboard folder (`--dashboard-dir`, default
//! `dashboard`), its npm packages included (`dashboard/node_modules`, pinned in
//! `dashboard/package.json`). The files are public; every call the page makes to the API
//! carries the API token its user typed in (the `[[auth.api]]` bearer tokens).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use super::http::{content_type, error_response, file_response};
use super::AppState;
use crate::error::ErrorKind;
use crate::store::ObjectKey;

type Shared = Arc<AppState>;

/// The routes (merged into the API router; the gate lets them through without a token).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::permanent("/dashboard/") }),
        )
        .route("/dashboard/", get(index))
        .route("/dashboard/{*path}", get(file))
}

/// Whether `path` is one of the dashboard's public files.
pub fn is_dashboard(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

async fn index(State(state): State<Shared>, method: Method, headers: HeaderMap) -> Response {
    serve(&state, "index.html", &method, &headers).await
}

async fn file(
    State(state): State<Shared>,
    Path(path): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    serve(&state, &path, &method, &headers).await
}

async fn serve(state: &AppState, rel: &str, method: &Method, headers: &HeaderMap) -> Response {
    // The object-key rules refuse traversal, hidden names and empty segments.
    let key = match ObjectKey::from_decoded(rel) {
        Ok(k) => k,
        Err(e) => return error_response(e.kind(), e).into_response(),
    };
    let path = key.to_path(&state.cfg.dashboard_dir);
    let ct = match key.extension().as_deref() {
        Some("ico") => "image/x-icon",
        _ => content_type(&key, None),
    };
    match file_response(&path, ct, "no-cache", method, headers).await {
        Some(r) => r.into_response(),
        None => {
            error_response(ErrorKind::NotFound, format!("no dashboard file {key}")).into_response()
        }
    }
}
