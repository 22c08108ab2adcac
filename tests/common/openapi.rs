//! Conformance of management API responses to the OpenAPI 3.0 document the origin serves
//! (`src/server/openapi.json`, compiled in here so a test checks against the document of
//! its own checkout).
//!
//! [`assert_conforms`] finds the operation (method + concrete path matched to its
//! template, query string ignored), checks that the status is documented for it and
//! validates the body against the documented response schema. OpenAPI 3.0 schemas are
//! turned into JSON Schema 2020-12 for the `jsonschema` crate: `#/components/schemas/X`
//! refs become `#/$defs/X`, `nullable: true` adds `null`, boolean
//! `exclusiveMinimum`/`exclusiveMaximum` become the numeric keywords. Formats
//! (`date-time`) are asserted.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

/// The OpenAPI document, as the origin serves it.
pub const OPENAPI_JSON: &str = include_str!("../../src/server/openapi.json");

/// The parsed document.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(OPENAPI_JSON).expect("src/server/openapi.json is not JSON")
    })
}

/// Panics unless `body` (JSON; `Value::Null` for an empty body) is what the document says
/// `method url_path` answers with `status`. `url_path` is the request path as sent
/// (percent-encoding kept, e.g. `/api/v1/streams/live%2Fa/ranges?start=1`); a full
/// `http://host:port/...` URL is accepted too.
#[track_caller]
pub fn assert_conforms(method: &str, url_path: &str, status: u16, body: &serde_json::Value) {
    if let Err(e) = check_conforms(method, url_path, status, body) {
        panic!("{e}");
    }
}

/// What [`assert_conforms`] checks, as a `Result`: `Err` holds the whole message (the
/// operation, the status, every validation error and the body).
pub fn check_conforms(
    method: &str,
    url_path: &str,
    status: u16,
    body: &Value,
) -> Result<(), String> {
    let method = method.to_ascii_lowercase();
    let path = request_path(url_path);
    let fail = |op: &str, what: String| {
        Err(format!(
            "OpenAPI conformance: {} {url_path} -> {status}{op}: {what}\nbody: {}",
            method.to_ascii_uppercase(),
            serde_json::to_string_pretty(body).unwrap_or_default()
        ))
    };
    let doc = document();
    let Some((template, path_item)) = match_path(doc, path) else {
        return fail("", format!("no path of the document matches {path:?}"));
    };
    let Some(op) = path_item.get(&method) else {
        return fail(
            "",
            format!(
                "{template} has no {} operation",
                method.to_ascii_uppercase()
            ),
        );
    };
    let op_name = format!(
        " ({} {template}, operationId {})",
        method.to_ascii_uppercase(),
        op.get("operationId").and_then(Value::as_str).unwrap_or("-")
    );
    let responses = op.get("responses").and_then(Value::as_object);
    let code = status.to_string();
    let range = format!("{}XX", status / 100);
    let Some(response) = responses.and_then(|r| {
        r.get(&code)
            .or_else(|| r.get(&range))
            .or_else(|| r.get(&range.to_ascii_lowercase()))
            .or_else(|| r.get("default"))
    }) else {
        let documented: Vec<&str> = responses
            .map(|r| r.keys().map(String::as_str).collect())
            .unwrap_or_default();
        return fail(
            &op_name,
            format!(
                "status {status} is not documented (documented: {})",
                documented.join(", ")
            ),
        );
    };
    let response = resolve(doc, response);
    let schema = response
        .get("content")
        .and_then(Value::as_object)
        .and_then(|c| {
            c.get("application/json").or_else(|| {
                c.iter()
                    .find(|(k, _)| k.ends_with("+json") || k.as_str() == "*/*")
                    .map(|(_, v)| v)
            })
        });
    let Some(media) = schema else {
        if response.get("content").is_none() && !body.is_null() {
            return fail(
                &op_name,
                "the response has no documented body but one was given".into(),
            );
        }
        return Ok(());
    };
    let Some(schema) = media.get("schema") else {
        return Ok(());
    };
    let errors = validate(doc, schema, body);
    if errors.is_empty() {
        Ok(())
    } else {
        fail(
            &op_name,
            format!(
                "the body does not match the documented schema:\n  - {}",
                errors.join("\n  - ")
            ),
        )
    }
}

/// The path part of `url_path`: no scheme/authority, no query, no fragment.
fn request_path(url_path: &str) -> &str {
    let mut p = url_path;
    for scheme in ["http://", "https://"] {
        if let Some(rest) = p.strip_prefix(scheme) {
            p = rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    let end = p.find(['?', '#']).unwrap_or(p.len());
    &p[..end]
}

/// The document's path template matching `path` (`{param}` matches one non-empty
/// segment), the one with the most literal segments when several do.
fn match_path<'d>(doc: &'d Value, path: &str) -> Option<(&'d str, &'d Value)> {
    let segs: Vec<&str> = path.split('/').collect();
    doc.get("paths")?
        .as_object()?
        .iter()
        .filter_map(|(template, item)| {
            let t: Vec<&str> = template.split('/').collect();
            if t.len() != segs.len() {
                return None;
            }
            let mut literal = 0;
            for (t, s) in t.iter().zip(&segs) {
                if t.starts_with('{') && t.ends_with('}') {
                    if s.is_empty() {
                        return None;
                    }
                } else if t == s {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template.as_str(), item))
        })
        .max_by_key(|&(literal, _, _)| literal)
        .map(|(_, t, item)| (t, item))
}

/// Follows `$ref`s to objects of the same document (`#/components/responses/X`, ...).
fn resolve<'d>(doc: &'d Value, mut v: &'d Value) -> &'d Value {
    for _ in 0..32 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                v = r
                    .strip_prefix('#')
                    .and_then(|p| doc.pointer(p))
                    .unwrap_or_else(|| panic!("unresolvable $ref {r} in openapi.json"));
            }
            None => break,
        }
    }
    v
}

/// Every validation error of `body` against the OpenAPI `schema`, as text.
fn validate(doc: &Value, schema: &Value, body: &Value) -> Vec<String> {
    let json_schema = to_json_schema_document(doc, schema);
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&json_schema)
        .unwrap_or_else(|e| {
            panic!("openapi.json: the schema does not compile ({e}): {json_schema}")
        });
    validator
        .iter_errors(body)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!(
                "at {:?}: {e}",
                if at.is_empty() { "/" } else { at.as_str() }
            )
        })
        .collect()
}

/// `schema` as a JSON Schema 2020-12 document, with every component schema under `$defs`.
pub fn to_json_schema_document(doc: &Value, schema: &Value) -> Value {
    let mut defs = Map::new();
    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, s) in schemas {
            defs.insert(name.clone(), convert(s));
        }
    }
    let mut root = match convert(schema) {
        Value::Object(m) => m,
        Value::Bool(b) => {
            let mut m = Map::new();
            if !b {
                m.insert("not".into(), json!({}));
            }
            m
        }
        other => panic!("openapi.json: a schema is not an object: {other}"),
    };
    root.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    root.insert("$defs".into(), Value::Object(defs));
    Value::Object(root)
}

/// One OpenAPI 3.0 Schema Object as JSON Schema 2020-12.
pub fn convert(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        // OpenAPI 3.0: siblings of $ref are ignored.
        let target = match r.strip_prefix("#/components/schemas/") {
            Some(name) => format!("#/$defs/{name}"),
            None => panic!("openapi.json: only #/components/schemas refs are supported, not {r}"),
        };
        return json!({ "$ref": target });
    }
    let mut out = Map::new();
    for (k, v) in obj {
        let v = match k.as_str() {
            "properties" | "patternProperties" => Value::Object(
                v.as_object()
                    .map(|m| m.iter().map(|(n, s)| (n.clone(), convert(s))).collect())
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" => {
                if v.is_object() {
                    convert(v)
                } else {
                    v.clone()
                }
            }
            "allOf" | "oneOf" | "anyOf" => Value::Array(
                v.as_array()
                    .map(|a| a.iter().map(convert).collect())
                    .unwrap_or_default(),
            ),
            // OpenAPI-only or handled below.
            "nullable" | "discriminator" | "xml" | "externalDocs" | "example"
            | "exclusiveMinimum" | "exclusiveMaximum" => continue,
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    // Draft 4 style boolean exclusive bounds -> numeric ones.
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if obj.get(flag) == Some(&Value::Bool(true)) {
            if let Some(b) = out.remove(bound) {
                out.insert(flag.into(), b);
            }
        } else if let Some(n @ Value::Number(_)) = obj.get(flag) {
            out.insert(flag.into(), n.clone());
        }
    }
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        match out.get("type").cloned() {
            Some(Value::String(t)) => {
                out.insert("type".into(), json!([t, "null"]));
                if let Some(Value::Array(e)) = out.get_mut("enum") {
                    if !e.contains(&Value::Null) {
                        e.push(Value::Null);
                    }
                }
            }
            _ => {
                return json!({ "anyOf": [{ "type": "null" }, Value::Object(out)] });
            }
        }
    }
    Value::Object(out)
}
