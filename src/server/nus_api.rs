//! The NUS CS5248 server's routes on the API listener (the seed was one server), with its
//! form fields and JSON field names, for its Android app (`library::nus` does the work):
//!
//! ```text
//! GET  /videos                    [Video] newest first (`?_admin=yes` accepted)
//! POST /videos                    201 Video (form `title`)
//! GET|PUT|DELETE /video/<id>      Video | 201 Video (form `title`: a rename) | 204
//! POST /video_segment/<id>        201 Segment (multipart `segment_id`, `original_extension`, `data`)
//! GET  /video_segment/<id>        [Segment]
//! GET  /video_segment/<id>/<seg>  Segment
//! POST /video_end/<id>            201 Video (form `last_segment_id`)
//! GET  /live_mpd/<id>.mpd         MPD (`?last_segment_id=`: only later segments); headers
//!                                 `lastSegmentId`, `streamEnded`
//! GET  /live_m3u8/<id>/root.m3u8  multivariant playlist
//! GET  /live_m3u8/<id>/<repr>/stream.m3u8   media playlist of a rendition
//! GET  /livestreams               [Video] still recording (the app calls it; the seed lacked it)
//! GET  /segments/<id>             [Segment] (the same)
//! GET  /video_files/<id>/<repr>/<seg>.ts    a transcoded segment
//! ```
//!
//! Errors are the API's JSON errors (`{"error":{"code","message"}}`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::TryStreamExt;
use serde_json::{json, Value};

use super::api::ApiError;
use super::AppState;
use crate::error::ErrorKind;
use crate::library::nus::{self, NusSegment, NusVideo};
use crate::library::Library;

type Shared = Arc<AppState>;

/// The routes (merged into the API router).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/videos", get(list_videos).post(create_video))
        .route(
            "/video/{id}",
            get(get_video).put(rename_video).delete(delete_video),
        )
        .route(
            "/video_segment/{id}",
            post(upload_segment)
                .get(list_segments)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/video_segment/{id}/{seg}", get(get_segment))
        .route("/video_end/{id}", post(end_video))
        .route("/live_mpd/{file}", get(live_mpd))
        .route("/live_m3u8/{id}/root.m3u8", get(root_m3u8))
        .route("/live_m3u8/{id}/{repr}/stream.m3u8", get(stream_m3u8))
        .route("/livestreams", get(livestreams))
        .route("/segments/{id}", get(list_segments))
        .route("/video_files/{id}/{repr}/{file}", get(video_file))
}

fn library(state: &AppState) -> Result<Arc<Library>, ApiError> {
    state
        .library
        .clone()
        .map_err(|why| ApiError::new(ErrorKind::Unavailable, why))
}

fn video_id(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("no video {s}")))
}

/// `http://host:port` of the API listener as this client reached it.
fn api_base(state: &AppState, headers: &HeaderMap) -> String {
    let scheme = if state.cfg.tls.api.is_some() {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-[]:_".contains(&b))
        })
        .map_or_else(|| state.cfg.api_addr.to_string(), str::to_owned);
    format!("{scheme}://{host}")
}

/// The seed's `video_fields`.
fn video_json(v: &NusVideo, base: &str) -> Value {
    let mut o = json!({
        "video_id": v.video_id,
        "title": v.title,
        "created_at": crate::archive::format_ms(v.created_ms),
        "type": if v.ended { "VOD" } else { "LIVE" },
        "status": v.status(),
        "segment_count": v.segment_count,
        "segment_duration": 3000,
        "uri_mpd": format!("{base}/live_mpd/{}.mpd", v.video_id),
        "uri_m3u8": format!("{base}/live_m3u8/{}/root.m3u8", v.video_id),
        "uri_thumbnail": Value::Null,
        "base_url": format!("{base}/video_files/{}/", v.video_id),
    });
    // repr_1 is the highest rendition, like the seed's HIGH, MEDIUM, LOW; before the first
    // segment is transcoded, the seed's nominal ladder.
    let reprs: Vec<(String, u64, u32, u32)> = if v.rungs.is_empty() {
        vec![
            ("HIGH".into(), 3_000_000, 720, 480),
            ("MEDIUM".into(), 768_000, 480, 320),
            ("LOW".into(), 200_000, 240, 160),
        ]
    } else {
        v.rungs
            .iter()
            .rev()
            .map(|r| (r.name.clone(), r.bitrate, r.width, r.height))
            .collect()
    };
    for i in 0..3 {
        let r = reprs.get(i);
        o[format!("repr_{}_name", i + 1)] = json!(r.map(|r| &r.0));
        o[format!("repr_{}_bandwidth", i + 1)] = json!(r.map(|r| r.1));
        o[format!("repr_{}_width", i + 1)] = json!(r.map(|r| r.2));
        o[format!("repr_{}_height", i + 1)] = json!(r.map(|r| r.3));
    }
    o
}

/// The seed's `video_segment_fields`.
fn segment_json(s: &NusSegment) -> Value {
    json!({
        "segment_id": s.segment_id,
        "video_id": s.video_id,
        "original_path": format!("upload/{}/{}.{}", s.video_id, s.segment_id, s.ext),
        "original_extension": s.ext,
        "status": s.status,
        "repr_1_status": s.status,
        "repr_2_status": s.status,
        "repr_3_status": s.status,
        "duration_secs": s.duration_secs,
        "error": s.error,
        "media_mpd": Value::Null,
        "media_m3u8": Value::Null,
    })
}

/// Form fields from `application/x-www-form-urlencoded` (what the app's Retrofit
/// `@Field` sends) or a JSON object.
async fn form(req: Request) -> Result<HashMap<String, String>, ApiError> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if json {
        let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
            .await
            .map_err(|e| ApiError::new(ErrorKind::BadRequest, e.to_string()))?;
        let v: HashMap<String, Value> = serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorKind::BadRequest, format!("body: {e}")))?;
        return Ok(v
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect());
    }
    let axum::Form(f) = axum::Form::<HashMap<String, String>>::from_request(req, &())
        .await
        .map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))?;
    Ok(f)
}

async fn list_videos(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lib = library(&state)?;
    let vs = lib.blocking(|l| l.nus_videos(false)).await?;
    let base = api_base(&state, &headers);
    Ok(axum::Json(vs.iter().map(|v| video_json(v, &base)).collect::<Vec<_>>()).into_response())
}

async fn livestreams(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lib = library(&state)?;
    let vs = lib.blocking(|l| l.nus_videos(true)).await?;
    let base = api_base(&state, &headers);
    Ok(axum::Json(vs.iter().map(|v| video_json(v, &base)).collect::<Vec<_>>()).into_response())
}

async fn create_video(State(state): State<Shared>, req: Request) -> Result<Response, ApiError> {
    let base = api_base(&state, req.headers());
    let f = form(req).await?;
    let title = f.get("title").cloned().unwrap_or_default();
    let lib = library(&state)?;
    let v = lib.blocking(move |l| l.nus_create(&title)).await?;
    Ok((StatusCode::CREATED, axum::Json(video_json(&v, &base))).into_response())
}

async fn get_video(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let lib = library(&state)?;
    let v = lib.blocking(move |l| l.nus_video(id)).await?;
    Ok(axum::Json(video_json(&v, &api_base(&state, &headers))).into_response())
}

async fn rename_video(
    State(state): State<Shared>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let base = api_base(&state, req.headers());
    let f = form(req).await?;
    let title = f
        .get("title")
        .cloned()
        .ok_or_else(|| ApiError::new(ErrorKind::BadRequest, "the form has no title"))?;
    let lib = library(&state)?;
    let v = lib.blocking(move |l| l.nus_rename(id, &title)).await?;
    // The seed answers a rename with 201.
    Ok((StatusCode::CREATED, axum::Json(video_json(&v, &base))).into_response())
}

async fn delete_video(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let lib = library(&state)?;
    lib.blocking(move |l| l.nus_delete(id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn upload_segment(
    State(state): State<Shared>,
    Path(id): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let lib = library(&state)?;
    let mut multipart =
        multipart.map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(ErrorKind::BadRequest, e.body_text())
    };
    let (mut seg, mut ext): (Option<i64>, Option<String>) = (None, None);
    let mut stored = None;
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("segment_id") => {
                let t = field.text().await.map_err(bad)?;
                seg = Some(t.trim().parse().map_err(|_| {
                    ApiError::new(ErrorKind::BadRequest, "segment_id must be an integer")
                })?);
            }
            Some("original_extension") => ext = Some(field.text().await.map_err(bad)?),
            Some("data") if stored.is_none() => {
                // The app sends the fields first; the file's own name gives the extension
                // otherwise.
                let seg = seg.ok_or_else(|| {
                    ApiError::new(ErrorKind::BadRequest, "segment_id must come before data")
                })?;
                let ext = ext.clone().or_else(|| {
                    field
                        .file_name()
                        .and_then(|n| n.rsplit_once('.'))
                        .map(|(_, e)| e.to_owned())
                });
                let stream = field.map_err(|e| e.body_text());
                stored = Some(
                    lib.nus_upload(id, seg, ext.as_deref().unwrap_or("mp4"), stream)
                        .await?,
                );
            }
            _ => {
                let mut f = field;
                while f.chunk().await.map_err(bad)?.is_some() {}
            }
        }
    }
    let s = stored.ok_or_else(|| ApiError::new(ErrorKind::BadRequest, "the form has no data"))?;
    Ok((StatusCode::CREATED, axum::Json(segment_json(&s))).into_response())
}

async fn list_segments(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let lib = library(&state)?;
    let segs = lib.blocking(move |l| l.nus_segments(id)).await?;
    Ok(axum::Json(segs.iter().map(segment_json).collect::<Vec<_>>()).into_response())
}

async fn get_segment(
    State(state): State<Shared>,
    Path((id, seg)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let seg: i64 = seg
        .parse()
        .map_err(|_| ApiError::new(ErrorKind::NotFound, format!("no segment {seg}")))?;
    let lib = library(&state)?;
    let s = lib.blocking(move |l| l.nus_segment(id, seg)).await?;
    Ok(axum::Json(segment_json(&s)).into_response())
}

async fn end_video(
    State(state): State<Shared>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let base = api_base(&state, req.headers());
    let f = form(req).await?;
    let last: i64 = f
        .get("last_segment_id")
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::new(ErrorKind::BadRequest, "last_segment_id must be an integer")
        })?;
    let lib = library(&state)?;
    let v = lib.blocking(move |l| l.nus_end(id, last)).await?;
    Ok((StatusCode::CREATED, axum::Json(video_json(&v, &base))).into_response())
}

/// The video, its playable prefix and whether it is complete (ended, every segment in).
async fn playable(
    lib: &Arc<Library>,
    id: i64,
) -> Result<(NusVideo, Vec<(i64, f64, f64)>, bool), ApiError> {
    Ok(lib
        .blocking(move |l| {
            let v = l.nus_video(id)?;
            let segs = l.nus_playable(id)?;
            let complete = v.ended && segs.len() as i64 == v.segment_count;
            Ok((v, segs, complete))
        })
        .await?)
}

fn text(content_type: &'static str, body: String, complete: bool) -> Response {
    let cache = if complete { "max-age=60" } else { "no-cache" };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

async fn live_mpd(
    State(state): State<Shared>,
    Path(file): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = file
        .strip_suffix(".mpd")
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no such MPD"))?;
    let id = video_id(id)?;
    let lib = library(&state)?;
    let (v, segs, complete) = playable(&lib, id).await?;
    let after: Option<i64> = q.get("last_segment_id").and_then(|s| s.parse().ok());
    let listed: Vec<_> = segs
        .iter()
        .filter(|s| after.is_none_or(|a| s.0 > a))
        .copied()
        .collect();
    let body = nus::mpd(id, &v.rungs, &listed, complete, v.created_ms);
    let mut r = text("application/dash+xml", body, complete);
    let last = segs.last().map_or(-1, |s| s.0);
    r.headers_mut()
        .insert("lastSegmentId", HeaderValue::from(last));
    r.headers_mut().insert(
        "streamEnded",
        HeaderValue::from_static(if complete { "true" } else { "false" }),
    );
    Ok(r)
}

async fn root_m3u8(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let lib = library(&state)?;
    let (v, _, complete) = playable(&lib, id).await?;
    if v.rungs.is_empty() {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("video {id} has no transcoded segment yet"),
        ));
    }
    Ok(text(
        "application/vnd.apple.mpegurl",
        nus::master_playlist(&v.rungs),
        complete,
    ))
}

async fn stream_m3u8(
    State(state): State<Shared>,
    Path((id, repr)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let lib = library(&state)?;
    let (v, segs, complete) = playable(&lib, id).await?;
    if !v.rungs.iter().any(|r| r.name == repr) {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("video {id} has no rendition {repr}"),
        ));
    }
    Ok(text(
        "application/vnd.apple.mpegurl",
        nus::media_playlist(id, &repr, &segs, complete),
        complete,
    ))
}

async fn video_file(
    State(state): State<Shared>,
    Path((id, repr, file)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let lib = library(&state)?;
    let path = lib
        .nus_file(id, &repr, &file)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no such file"))?;
    super::http::file_response(&path, "video/mp2t", "max-age=86400", &method, &headers)
        .await
        .map(|r| r.map(Body::new))
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no such file"))
}
