//! The media library's routes on the API listener: tus 1.0 uploads, the one-shot multipart
//! upload, and the assets.
//!
//! ```text
//! OPTIONS /api/v1/uploads                 204 Tus-Version, Tus-Extension, Tus-Max-Size
//! POST    /api/v1/uploads                 201 Location: /api/v1/uploads/{id} (tus creation,
//!                                         creation-with-upload; Upload-Length, Upload-Metadata
//!                                         `filename`, `title`)
//! HEAD    /api/v1/uploads/{id}            200 Upload-Offset, Upload-Length, Upload-Expires
//! PATCH   /api/v1/uploads/{id}            204 Upload-Offset (Content-Type:
//!                                         application/offset+octet-stream)
//! DELETE  /api/v1/uploads/{id}            204 (tus termination: an unfinished upload's asset
//!                                         goes too; a whole one's asset stays)
//! POST    /api/v1/assets                  201 Asset (multipart: `file`, optional `title`)
//! GET     /api/v1/assets[?status=&q=&limit=&cursor=]   {"assets":[Asset],"next_cursor"}
//! GET|PATCH|DELETE /api/v1/assets/{id}    Asset | Asset | 204
//! POST    /api/v1/assets/{id}/retry       Asset
//! ```
//!
//! The upload id is the asset id: `GET /api/v1/assets/{id}` answers from the creation on.
//! tus answers carry `Tus-Resumable: 1.0.0`; a request with another version gets 412
//! (tus 1.0 section 3.2).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{ApiError, ApiPath};
use super::AppState;
use crate::error::ErrorKind;
use crate::library::{self, tus, AssetRow, Library, LibraryError};

type Shared = Arc<AppState>;

impl From<LibraryError> for ApiError {
    fn from(e: LibraryError) -> ApiError {
        if e.kind() == ErrorKind::Internal {
            tracing::error!(error = %e, "api: library failure");
            return ApiError::new(ErrorKind::Internal, "internal error");
        }
        ApiError::new(e.kind(), e.to_string())
    }
}

impl From<tus::TusError> for ApiError {
    fn from(e: tus::TusError) -> ApiError {
        let kind = match e {
            tus::TusError::Version => ErrorKind::PreconditionFailed,
            _ => ErrorKind::BadRequest,
        };
        ApiError::new(kind, e.to_string())
    }
}

/// The routes (merged into the API router).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/uploads", post(tus_create).options(tus_options))
        .route(
            "/api/v1/uploads/{id}",
            axum::routing::head(tus_head)
                .patch(tus_patch)
                .delete(tus_delete)
                .options(tus_options),
        )
        .route(
            "/api/v1/assets",
            post(create_asset)
                .get(list_assets)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/assets/{id}",
            get(get_asset).patch(update_asset).delete(delete_asset),
        )
        .route("/api/v1/assets/{id}/retry", post(retry_asset))
}

fn library_of(state: &AppState) -> Result<Arc<Library>, ApiError> {
    state
        .library
        .clone()
        .map_err(|why| ApiError::new(ErrorKind::Unavailable, why))
}

/// The egress base URL with no request at hand (events): the egress address, loopback
/// when it listens on every address.
pub(super) fn egress_base_default(state: &AppState) -> String {
    super::api::egress_base(state, &HeaderMap::new())
}

fn ms(t: i64) -> String {
    crate::archive::format_ms(t)
}

/// The asset resource: `{"id","title","status","progress":{"phase","percent","eta_secs"},
/// "duration_secs","source","renditions","playback","poster","thumbnails","error",
/// "created_at","updated_at"}`; URLs are absolute on the egress listener (`base`).
pub fn asset_json(a: &AssetRow, base: &str) -> Value {
    let renditions: Vec<library::ladder::Rung> = a
        .renditions
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let source: Option<Value> = a
        .source
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let ready = a.status == "ready" && !renditions.is_empty();
    let id = &a.id;
    let playback = if ready {
        // The `.csmil` set of the rungs: `<id>_,240,360,p.mp4` (Akamai's multi-bitrate URL).
        let heights: Vec<String> = renditions
            .iter()
            .map(|r| r.name.trim_end_matches('p').to_owned())
            .collect();
        let set = format!("assets/{id}/{id}_,{},p.mp4.csmil", heights.join(","));
        json!({
            "hls": format!("{base}/i/{set}/master.m3u8"),
            "cmaf": format!("{base}/cmaf/{set}/master.m3u8"),
            "dash": format!("{base}/dash/{set}/manifest.mpd"),
        })
    } else {
        Value::Null
    };
    let error = a
        .error_code
        .as_ref()
        .map(|code| json!({"code": code, "message": a.error_message, "log_tail": a.log_tail}));
    json!({
        "id": id,
        "title": a.title,
        "filename": a.filename,
        "status": a.status,
        "progress": {"phase": a.phase, "percent": a.percent, "eta_secs": a.eta_secs},
        "duration_secs": a.duration_secs,
        "source": source,
        "renditions": renditions.iter().map(|r| json!({
            "name": r.name, "width": r.width, "height": r.height, "bitrate": r.bitrate,
        })).collect::<Vec<_>>(),
        "playback": playback,
        "poster": ready.then(|| format!("{base}/assets/{id}/poster.jpg")),
        "thumbnails": ready.then(|| format!("{base}/assets/{id}/thumbnails.vtt")),
        "error": error,
        "created_at": ms(a.created_ms),
        "updated_at": ms(a.updated_ms),
    })
}

fn tus_headers(h: &mut HeaderMap) {
    h.insert("tus-resumable", HeaderValue::from_static(tus::VERSION));
}

/// tus answers carry `Tus-Resumable`, errors included.
fn tus_result(r: Result<Response, ApiError>) -> Response {
    let mut resp = match r {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tus_headers(resp.headers_mut());
    if resp.status() == StatusCode::PRECONDITION_FAILED {
        // tus 1.0 section 3.2: a version the server does not serve is answered with the
        // versions it does.
        resp.headers_mut()
            .insert("tus-version", HeaderValue::from_static(tus::VERSION));
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `Upload-Expires` (tus 1.0 expiration: an RFC 9110 HTTP date).
fn expires(u: &library::UploadRow) -> HeaderValue {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u.expires_ms.max(0) as u64);
    HeaderValue::from_str(&httpdate::fmt_http_date(t)).unwrap_or(HeaderValue::from_static(""))
}

async fn tus_options(State(state): State<Shared>) -> Response {
    let max = state
        .library
        .as_ref()
        .map(|l| l.config().tus_max_size)
        .unwrap_or(0);
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    tus_headers(h);
    h.insert("tus-version", HeaderValue::from_static(tus::VERSION));
    h.insert("tus-extension", HeaderValue::from_static(tus::EXTENSIONS));
    h.insert("tus-max-size", HeaderValue::from(max));
    r
}

fn is_offset_stream(h: &HeaderMap) -> bool {
    header_str(h, "content-type")
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .is_some_and(|c| c.eq_ignore_ascii_case("application/offset+octet-stream"))
}

#[derive(Debug, Deserialize, Default)]
struct UploadOptions {
    /// A ladder for this upload instead of the configured one.
    ladder: Option<Vec<library::ladder::RungSpec>>,
}

async fn tus_create(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    tus_result(tus_create_inner(state, headers, body).await)
}

async fn tus_create_inner(
    state: Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    tus::check_version(header_str(&headers, "tus-resumable"))?;
    let lib = library_of(&state)?;
    if headers.contains_key("upload-defer-length") {
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            "Upload-Defer-Length is not supported: send Upload-Length",
        ));
    }
    let length = tus::number(
        "Upload-Length",
        header_str(&headers, "upload-length")
            .ok_or_else(|| ApiError::new(ErrorKind::BadRequest, "Upload-Length is required"))?,
    )?;
    let meta = tus::metadata(header_str(&headers, "upload-metadata").unwrap_or(""))?;
    let opts: UploadOptions = match meta.get("ladder") {
        Some(l) => UploadOptions {
            ladder: Some(serde_json::from_str(l).map_err(|e| {
                ApiError::new(ErrorKind::BadRequest, format!("ladder metadata: {e}"))
            })?),
        },
        None => UploadOptions::default(),
    };
    let (title, filename) = (meta.get("title").cloned(), meta.get("filename").cloned());
    let l2 = Arc::clone(&lib);
    let (asset, mut upload) = lib
        .blocking(move |l| {
            let _ = &l2;
            l.create_upload(length, title, filename, opts.ladder.as_deref())
        })
        .await?;
    // creation-with-upload: the body of the POST is the first chunk.
    let with_body = is_offset_stream(&headers)
        && header_str(&headers, "content-length").is_none_or(|n| n != "0");
    if with_body {
        let stream = body.into_data_stream();
        upload = lib.append(&asset.id, 0, stream).await?;
    } else if length == 0 {
        // Nothing to send: the upload is whole at its creation.
        upload = lib
            .append(
                &asset.id,
                0,
                futures_util::stream::empty::<Result<bytes::Bytes, std::convert::Infallible>>(),
            )
            .await?;
    }
    let mut r = StatusCode::CREATED.into_response();
    let h = r.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/api/v1/uploads/{}", asset.id))
            .expect("hex ids are header-safe"),
    );
    h.insert("upload-expires", expires(&upload));
    if with_body {
        h.insert("upload-offset", HeaderValue::from(upload.offset));
    }
    Ok(r)
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if library::valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::new(ErrorKind::NotFound, format!("no asset {id}")))
    }
}

async fn tus_head(
    State(state): State<Shared>,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
) -> Response {
    tus_result(
        async {
            tus::check_version(header_str(&headers, "tus-resumable"))?;
            check_id(&id)?;
            let lib = library_of(&state)?;
            let u = lib.blocking(move |l| l.upload(&id)).await?;
            let mut r = StatusCode::OK.into_response();
            let h = r.headers_mut();
            h.insert("upload-offset", HeaderValue::from(u.offset));
            h.insert("upload-length", HeaderValue::from(u.length));
            h.insert("upload-expires", expires(&u));
            Ok(r)
        }
        .await,
    )
}

async fn tus_patch(
    State(state): State<Shared>,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
    body: Body,
) -> Response {
    tus_result(
        async {
            tus::check_version(header_str(&headers, "tus-resumable"))?;
            check_id(&id)?;
            if !is_offset_stream(&headers) {
                return Err(ApiError::new(
                    ErrorKind::Unsupported,
                    "Content-Type must be application/offset+octet-stream",
                ));
            }
            let offset = tus::number(
                "Upload-Offset",
                header_str(&headers, "upload-offset").ok_or_else(|| {
                    ApiError::new(ErrorKind::BadRequest, "Upload-Offset is required")
                })?,
            )?;
            let lib = library_of(&state)?;
            // A body announced past Upload-Length is refused before a byte is read (tus 1.0
            // core: 413), so nothing of it is kept.
            if let Some(n) =
                header_str(&headers, "content-length").and_then(|n| n.parse::<u64>().ok())
            {
                let idc = id.clone();
                let u = lib.blocking(move |l| l.upload(&idc)).await?;
                if offset.checked_add(n).is_none_or(|end| end > u.length) {
                    return Err(ApiError::new(
                        ErrorKind::TooLarge,
                        format!("the body goes past Upload-Length {}", u.length),
                    ));
                }
            }
            let u = lib.append(&id, offset, body.into_data_stream()).await?;
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert("upload-offset", HeaderValue::from(u.offset));
            r.headers_mut().insert("upload-expires", expires(&u));
            Ok(r)
        }
        .await,
    )
}

async fn tus_delete(
    State(state): State<Shared>,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
) -> Response {
    tus_result(
        async {
            tus::check_version(header_str(&headers, "tus-resumable"))?;
            check_id(&id)?;
            let lib = library_of(&state)?;
            let idc = id.clone();
            let whole = lib.blocking(move |l| l.upload_is_whole(&idc)).await?;
            if whole {
                // tus termination frees the upload; the asset it became goes on.
                let idc = id.clone();
                lib.blocking(move |l| l.forget_upload(&idc)).await?;
            } else {
                lib.delete(&id).await?;
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

async fn create_asset(
    State(state): State<Shared>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let lib = library_of(&state)?;
    let mut multipart =
        multipart.map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))?;
    let expected = header_str(&headers, "content-length").and_then(|n| n.parse().ok());
    let mut title: Option<String> = None;
    let mut asset: Option<AssetRow> = None;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))?;
        let Some(field) = field else { break };
        match field.name() {
            Some("title") => {
                let t = field
                    .text()
                    .await
                    .map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))?;
                title = Some(t);
            }
            Some("file") if asset.is_none() => {
                let filename = field.file_name().map(str::to_owned);
                let stream = field.map_err(|e| e.body_text());
                asset = Some(
                    lib.upload_whole(title.clone(), filename, expected, stream)
                        .await?,
                );
            }
            _ => {
                // Unknown fields are read and dropped.
                let mut f = field;
                while f
                    .chunk()
                    .await
                    .map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))?
                    .is_some()
                {}
            }
        }
    }
    let Some(mut asset) = asset else {
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            "the multipart body has no `file` field",
        ));
    };
    // A title part after the file is taken like one before it: cut to 255 characters.
    let title = title.map(|t| t.trim().chars().take(255).collect::<String>());
    if let Some(t) = title.filter(|t| !t.is_empty() && *t != asset.title) {
        let id = asset.id.clone();
        asset = lib.blocking(move |l| l.rename(&id, &t)).await?;
    }
    let base = super::api::egress_base(&state, &headers);
    Ok((StatusCode::CREATED, axum::Json(asset_json(&asset, &base))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

const STATUSES: &[&str] = &[
    "waiting",
    "uploading",
    "queued",
    "processing",
    "ready",
    "errored",
];

async fn list_assets(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))?;
    let lib = library_of(&state)?;
    if let Some(s) = &q.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::new(
                ErrorKind::BadRequest,
                format!("status must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            "limit must be 1..=1000",
        ));
    }
    // The cursor is `<created ms>.<id>` of the last asset of the previous page.
    let after = match &q.cursor {
        None => None,
        Some(c) => {
            let bad = || ApiError::new(ErrorKind::BadRequest, "cursor is not one this API made");
            let (ms, id) = c.split_once('.').ok_or_else(bad)?;
            let ms: i64 = ms.parse().map_err(|_| bad())?;
            if !library::valid_id(id) {
                return Err(bad());
            }
            Some((ms, id.to_owned()))
        }
    };
    let (status, text) = (q.status.clone(), q.q.clone());
    let rows = lib
        .blocking(move |l| {
            l.with_db(|c| {
                library::db::list_assets(
                    c,
                    status.as_deref(),
                    text.as_deref(),
                    after.as_ref().map(|(m, i)| (*m, i.as_str())),
                    limit,
                )
            })
        })
        .await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|a| format!("{}.{}", a.created_ms, a.id)))
        .flatten();
    let base = super::api::egress_base(&state, &headers);
    let assets: Vec<Value> = rows.iter().map(|a| asset_json(a, &base)).collect();
    Ok(axum::Json(json!({"assets": assets, "next_cursor": next})).into_response())
}

async fn get_asset(
    State(state): State<Shared>,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let lib = library_of(&state)?;
    let a = lib.blocking(move |l| l.get(&id)).await?;
    let base = super::api::egress_base(&state, &headers);
    Ok(axum::Json(asset_json(&a, &base)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetPatch {
    title: String,
}

async fn update_asset(
    State(state): State<Shared>,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let patch: AssetPatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(ErrorKind::BadRequest, format!("body: {e}")))?;
    let lib = library_of(&state)?;
    let a = lib.blocking(move |l| l.rename(&id, &patch.title)).await?;
    let base = super::api::egress_base(&state, &headers);
    Ok(axum::Json(asset_json(&a, &base)).into_response())
}

async fn delete_asset(
    State(state): State<Shared>,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let lib = library_of(&state)?;
    lib.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn retry_asset(
    State(state): State<Shared>,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let lib = library_of(&state)?;
    let a = lib.blocking(move |l| l.retry(&id)).await?;
    let base = super::api::egress_base(&state, &headers);
    Ok(axum::Json(asset_json(&a, &base)).into_response())
}
