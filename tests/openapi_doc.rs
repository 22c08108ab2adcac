//! The OpenAPI document of the management API (`src/server/openapi.json`) and the
//! conformance helper the API tests call on every response (`common::openapi`): every route
//! of `src/server/api.rs` is documented with its methods, every schema compiles, conforming
//! bodies pass, and must-fail cases (a missing required field, a value outside an enum, an
//! extra field, a wrong type, a bad date-time, an undocumented status, a body on a 204, an
//! unknown path) are refused with a message naming the operation and the error.

mod common;

use common::openapi::{assert_conforms, check_conforms, document, to_json_schema_document};
use serde_json::{json, Value};

fn recording() -> Value {
    json!({
        "id": "rec_0123456789abcdef0123456789abcdef",
        "stream": "live/a",
        "state": "recording",
        "start": "2026-01-01T10:00:00.000Z",
        "end": null,
        "title": null,
        "description": "desk cam",
        "max_duration_secs": null,
        "duration_secs": 12.5,
        "created_at": "2026-01-01T10:00:00.000Z",
        "updated_at": "2026-01-01T10:00:01.000Z",
        "urls": {
            "hls": "http://127.0.0.1:5001/recordings/rec_abc/master.m3u8",
            "dash": "http://127.0.0.1:5001/recordings/rec_abc/manifest.mpd",
            "mp4": "http://127.0.0.1:5001/recordings/rec_abc/download.mp4"
        }
    })
}

fn stream() -> Value {
    json!({
        "name": "live/a",
        "state": "live",
        "disabled": false,
        "sessions": 1,
        "representations": [
            {"id": "0", "kind": "video", "codecs": "avc1.64001e", "bandwidth": 1500000,
             "width": 640, "height": 360},
            {"id": "2", "kind": "audio", "codecs": null, "bandwidth": null,
             "width": null, "height": null}
        ],
        "oldest": "2026-01-01T10:00:00.000Z",
        "newest": "2026-01-01T10:01:00.000Z",
        "urls": {"dash": "http://127.0.0.1:5001/live/a/stream.mpd", "llhls": null}
    })
}

/// `check_conforms` must refuse `body`, with a message containing every `needles`.
fn must_fail(method: &str, path: &str, status: u16, body: &Value, needles: &[&str]) {
    let Err(err) = check_conforms(method, path, status, body) else {
        panic!("{method} {path} {status} must not conform: {body}");
    };
    for n in needles {
        assert!(err.contains(n), "message lacks {n:?}:\n{err}");
    }
}

#[test]
fn conforming_bodies_pass() {
    let rec = recording();
    assert_conforms("GET", "/api/v1/recordings/rec_abc", 200, &rec);
    assert_conforms("patch", "/api/v1/recordings/rec_abc", 200, &rec);
    assert_conforms("POST", "/api/v1/recordings/rec_abc/stop", 200, &rec);
    assert_conforms("POST", "/api/v1/recordings", 201, &rec);
    assert_conforms(
        "GET",
        "http://127.0.0.1:5002/api/v1/recordings?stream=live%2Fa&state=done",
        200,
        &json!({ "recordings": [rec.clone(), rec] }),
    );
    assert_conforms("DELETE", "/api/v1/recordings/rec_abc", 204, &Value::Null);

    assert_conforms(
        "GET",
        "/api/v1/streams",
        200,
        &json!({ "streams": [stream()] }),
    );
    assert_conforms("GET", "/api/v1/streams/live%2Fa", 200, &stream());
    assert_conforms("POST", "/api/v1/streams/live%2Fa/disable", 200, &stream());
    assert_conforms(
        "GET",
        "/api/v1/streams/live%2Fa/ranges?start=1700000000&end=2026-01-01T00%3A00%3A00Z",
        200,
        &json!({"stream": "live/a", "ranges": [
            {"start": "2026-01-01T10:00:00.000Z", "duration": 60.0, "session": 1}
        ]}),
    );
    assert_conforms(
        "DELETE",
        "/api/v1/streams/live%2Fa/archive",
        200,
        &json!({"deleted_segments": 3, "kept_pinned": 0}),
    );
    let not_found = json!({"error": {"code": "not_found", "message": "no recording rec_x"}});
    assert_conforms("GET", "/api/v1/recordings/rec_x", 404, &not_found);
    assert_conforms("GET", "/api/v1/streams/live%2Fa/ranges", 404, &not_found);
    assert_conforms("GET", "/api/v1/openapi.json", 200, document());
    // A text/event-stream answer has no JSON body to check.
    assert_conforms("GET", "/api/v1/events", 200, &Value::Null);
}

#[test]
fn missing_required_field_fails() {
    let mut rec = recording();
    rec.as_object_mut().unwrap().remove("state");
    must_fail(
        "GET",
        "/api/v1/recordings/rec_abc",
        200,
        &rec,
        &[
            "GET /api/v1/recordings/{id}",
            "getRecording",
            "200",
            "state",
            "required",
        ],
    );
    // Deep: a stream's urls without llhls.
    let mut s = stream();
    s["urls"].as_object_mut().unwrap().remove("llhls");
    must_fail(
        "GET",
        "/api/v1/streams",
        200,
        &json!({ "streams": [s] }),
        &["/streams/0/urls", "llhls"],
    );
}

#[test]
fn value_outside_enum_fails() {
    let mut rec = recording();
    rec["state"] = json!("paused");
    must_fail(
        "POST",
        "/api/v1/recordings",
        201,
        &rec,
        &["createRecording", "/state", "paused"],
    );
    let err = json!({"error": {"code": "teapot", "message": "x"}});
    must_fail(
        "GET",
        "/api/v1/recordings/rec_x",
        404,
        &err,
        &["/error/code", "teapot"],
    );
}

#[test]
fn extra_field_fails() {
    let mut rec = recording();
    rec["reason"] = json!("no segment");
    must_fail("GET", "/api/v1/recordings/rec_abc", 200, &rec, &["reason"]);
    let mut rec = recording();
    rec["urls"]["webm"] = json!("http://x/y.webm");
    must_fail(
        "GET",
        "/api/v1/recordings/rec_abc",
        200,
        &rec,
        &["/urls", "webm"],
    );
}

#[test]
fn wrong_types_and_formats_fail() {
    // null only where the document says nullable.
    let mut rec = recording();
    rec["start"] = Value::Null;
    must_fail("GET", "/api/v1/recordings/rec_abc", 200, &rec, &["/start"]);
    let mut rec = recording();
    rec["id"] = json!("rec_abc");
    must_fail(
        "GET",
        "/api/v1/recordings/rec_abc",
        200,
        &rec,
        &["/id", "rec_abc"],
    );
    let mut rec = recording();
    rec["duration_secs"] = json!("12.5");
    must_fail(
        "GET",
        "/api/v1/recordings/rec_abc",
        200,
        &rec,
        &["/duration_secs"],
    );
    let mut rec = recording();
    rec["created_at"] = json!("yesterday");
    must_fail(
        "GET",
        "/api/v1/recordings/rec_abc",
        200,
        &rec,
        &["/created_at", "date-time"],
    );
    let mut s = stream();
    s["representations"][0]["width"] = json!(-1);
    must_fail(
        "GET",
        "/api/v1/streams/live%2Fa",
        200,
        &s,
        &["/representations/0/width"],
    );
    let mut s = stream();
    s["representations"][1]["kind"] = Value::Null;
    must_fail(
        "GET",
        "/api/v1/streams/live%2Fa",
        200,
        &s,
        &["/representations/1/kind"],
    );
    // An empty body where a JSON object is documented.
    must_fail(
        "GET",
        "/api/v1/streams",
        200,
        &Value::Null,
        &["listStreams"],
    );
}

#[test]
fn undocumented_status_path_or_body_fails() {
    let err = json!({"error": {"code": "unprocessable", "message": "x"}});
    must_fail(
        "GET",
        "/api/v1/recordings/rec_abc",
        422,
        &err,
        &["status 422 is not documented", "getRecording"],
    );
    must_fail("GET", "/api/v1/nothing/here", 200, &json!({}), &["no path"]);
    must_fail(
        "PUT",
        "/api/v1/recordings/rec_abc",
        200,
        &recording(),
        &["no PUT operation"],
    );
    must_fail(
        "DELETE",
        "/api/v1/recordings/rec_abc",
        204,
        &json!({"ok": true}),
        &["no documented body"],
    );
    // assert_conforms is the panicking form.
    let panicked = std::panic::catch_unwind(|| {
        assert_conforms("GET", "/api/v1/recordings/rec_abc", 200, &json!({"id": 1}))
    });
    assert!(
        panicked.is_err(),
        "assert_conforms must panic on a non-conforming body"
    );
}

#[test]
fn nullable_is_converted_for_json_schema() {
    use common::openapi::convert;
    assert_eq!(
        convert(&json!({"type": "string", "nullable": true, "enum": ["a"]})),
        json!({"type": ["string", "null"], "enum": ["a", null]})
    );
    assert_eq!(
        convert(&json!({"allOf": [{"$ref": "#/components/schemas/Time"}], "nullable": true})),
        json!({"anyOf": [{"type": "null"}, {"allOf": [{"$ref": "#/$defs/Time"}]}]})
    );
    assert_eq!(
        convert(&json!({"type": "number", "minimum": 0, "exclusiveMinimum": true})),
        json!({"type": "number", "exclusiveMinimum": 0})
    );
}

/// The documented data of a server-sent event (GET /api/v1/events).
#[test]
fn event_data_schema() {
    let doc = document();
    let schema = to_json_schema_document(doc, &json!({"$ref": "#/components/schemas/EventData"}));
    let v = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let stream =
        json!({"type": "stream.started", "time": "2026-01-01T10:00:00.000Z", "stream": "live/a"});
    assert!(v.is_valid(&stream));
    let rec = json!({"type": "recording.stopped", "time": "2026-01-01T10:00:00.000Z", "stream": "live/a",
        "recording": {"id": "rec_1", "state": "done", "start": "2026-01-01T09:00:00.000Z",
                      "end": "2026-01-01T10:00:00.000Z", "title": null}});
    assert!(v.is_valid(&rec));
    // Must fail: an unknown type, a missing time.
    assert!(!v.is_valid(
        &json!({"type": "stream.paused", "time": "2026-01-01T10:00:00.000Z", "stream": "a"})
    ));
    assert!(!v.is_valid(&json!({"type": "stream.ended", "stream": "a"})));

    // Asset events: the asset as the API returns it, null once deleted.
    let asset = json!({
        "id": "0123456789abcdef0123456789abcdef", "title": "Clip", "filename": "clip.mp4",
        "status": "uploading",
        "progress": {"phase": "upload", "percent": 5.0, "eta_secs": null},
        "duration_secs": null, "source": null, "renditions": [], "playback": null,
        "poster": null, "thumbnails": null, "error": null,
        "created_at": "2026-01-01T10:00:00.000Z", "updated_at": "2026-01-01T10:00:01.000Z"
    });
    let id = "0123456789abcdef0123456789abcdef";
    for kind in [
        "asset.created",
        "asset.updated",
        "asset.progress",
        "asset.ready",
        "asset.errored",
        "upload.expired",
    ] {
        let ev = json!({"type": kind, "time": "2026-01-01T10:00:00.000Z", "asset_id": id,
                        "asset": asset});
        assert!(v.is_valid(&ev), "{kind}");
    }
    let deleted = json!({"type": "asset.deleted", "time": "2026-01-01T10:00:00.000Z",
                         "asset_id": id, "asset": null});
    assert!(v.is_valid(&deleted));
    // Must fail: an asset event without asset_id or asset, a stream event type with asset
    // fields, an asset event type with stream fields, a malformed asset.
    assert!(!v.is_valid(
        &json!({"type": "asset.ready", "time": "2026-01-01T10:00:00.000Z", "asset": asset})
    ));
    assert!(!v.is_valid(
        &json!({"type": "asset.deleted", "time": "2026-01-01T10:00:00.000Z", "asset_id": id})
    ));
    assert!(!v.is_valid(
        &json!({"type": "stream.started", "time": "2026-01-01T10:00:00.000Z",
                                "asset_id": id, "asset": null})
    ));
    assert!(!v.is_valid(
        &json!({"type": "asset.created", "time": "2026-01-01T10:00:00.000Z", "stream": "live/a"})
    ));
    let mut bad = asset.clone();
    bad["status"] = json!("done");
    assert!(!v.is_valid(
        &json!({"type": "asset.updated", "time": "2026-01-01T10:00:00.000Z",
                                "asset_id": id, "asset": bad})
    ));
}

/// Every schema the document uses compiles as JSON Schema, and every `$ref` resolves.
#[test]
fn every_schema_of_the_document_compiles() {
    let doc = document();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for r in &refs {
        let ptr = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(ptr).is_some(), "$ref {r} does not resolve");
    }
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        let s = to_json_schema_document(
            doc,
            &json!({"$ref": format!("#/components/schemas/{name}")}),
        );
        jsonschema::draft202012::new(&s).unwrap_or_else(|e| panic!("schema {name}: {e}"));
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// The routes (path and methods) of `router` in `src`, read from the source: the
/// `.route("path", method(handler).method(handler))` calls of `fn_marker`'s body, up to
/// `.fallback(` when there is one.
fn routes_in(src: &str, fn_marker: &str) -> Vec<(String, Vec<String>)> {
    let router = &src[src
        .find(fn_marker)
        .unwrap_or_else(|| panic!("no {fn_marker}"))..];
    let router = &router[..router.find(".fallback(").unwrap_or(router.len())];
    // The function's body only: up to the first line that closes it.
    let router = &router[..router.find("\n}").unwrap_or(router.len())];
    let mut routes: Vec<(String, Vec<String>)> = Vec::new();
    for chunk in router.split(".route(").skip(1) {
        let path = chunk
            .split('"')
            .nth(1)
            .expect("a route path literal")
            .to_owned();
        let mut methods = Vec::new();
        for m in ["get", "post", "put", "patch", "delete", "head", "options"] {
            let pat = format!("{m}(");
            let found = chunk.match_indices(&pat).any(|(i, _)| {
                let before = if i == 0 {
                    b' '
                } else {
                    chunk.as_bytes()[i - 1]
                };
                !(before.is_ascii_alphanumeric() || before == b'_')
            });
            if found {
                methods.push(m.to_owned());
            }
        }
        routes.push((path, methods));
    }
    routes
}

/// The routes of `api::router` and of the media library's `library_api::routes` (path and
/// methods, read from their source) are exactly the documented operations.
#[test]
fn every_route_of_the_api_is_documented() {
    let mut routes = routes_in(include_str!("../src/server/api.rs"), "pub fn router");
    assert!(
        routes.len() >= 10,
        "could not read the routes of api.rs: {routes:?}"
    );
    let library = routes_in(
        include_str!("../src/server/library_api.rs"),
        "pub fn routes",
    );
    assert!(
        library.len() >= 4,
        "could not read the routes of library_api.rs: {library:?}"
    );
    routes.extend(library);
    let paths = document()["paths"].as_object().unwrap();
    for (path, methods) in &routes {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("route {path} of the API is not in openapi.json"));
        let mut documented: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| {
                ["get", "post", "put", "patch", "delete", "head", "options"].contains(&k.as_str())
            })
            .cloned()
            .collect();
        documented.sort();
        let mut methods = methods.clone();
        methods.sort();
        assert_eq!(
            documented, methods,
            "methods of {path}: openapi.json vs the router"
        );
    }
    for path in paths.keys() {
        assert!(
            routes.iter().any(|(p, _)| p == path),
            "openapi.json documents {path}, which the API does not route"
        );
    }
}
