//! The generated HTTP reference (`docs/http-api.md`): the route table in its order, with what
//! the OpenAPI document says of each route.

use crate::openapi::ApiDoc;
use utoipa::OpenApi;

/// `docs/http-api.md`: every route of the table, in its order, with what the OpenAPI document
/// says of it (summary, parameters, body, answers, the key). A test keeps the committed page
/// equal to this text.
pub fn reference_md() -> String {
    use std::fmt::Write;
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let mut out = String::from(
        "<!-- Generated from the code by `ORKET_WRITE_DOCS=1 cargo test`; do not edit by hand. -->\n\n# HTTP API\n\n`orket serve` answers on `http://127.0.0.1:8082/` by default. With `ORKET_API_KEY` set, every `/v1` and `/ws` route needs the header `X-API-Key` (the WebSocket also takes `?api_key=`): missing → 401, wrong → 403. Errors are `{\"error\": \"...\"}` naming the field, file or id; bodies over 1 MiB → 413 (at once when `Content-Length` says so), a body that stops arriving for 30 s → 408; a connection that takes over 10 s to send a request's headers (or to start its next request) is closed, and at most 256 connections are served at once. `GET /openapi.json` serves the machine-readable document this page is made from; `crates/orket-server/API.md` gives the JSON shapes.\n",
    );
    for route in crate::routes::table() {
        let method = route.method.as_str().to_lowercase();
        let op = &doc["paths"][route.path][&method];
        let _ = write!(out, "\n## `{} {}`\n\n", route.method, route.path);
        let summary = op["summary"].as_str().unwrap_or_default();
        let description = op["description"].as_str().unwrap_or_default();
        for text in [summary, description].into_iter().filter(|t| !t.is_empty()) {
            let _ = writeln!(out, "{}\n", text.trim());
        }
        if crate::auth::needs_key(route.path) {
            out.push_str("Needs the key when the server has one.\n\n");
        }
        if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
            out.push_str("| parameter | in | required | meaning |\n|---|---|---|---|\n");
            for p in params {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    p["name"].as_str().unwrap_or("?"),
                    p["in"].as_str().unwrap_or("?"),
                    if p["required"] == true { "yes" } else { "no" },
                    p["description"].as_str().unwrap_or("").replace('\n', " ")
                );
            }
            out.push('\n');
        }
        if let Some(content) = op["requestBody"]["content"].as_object() {
            for (kind, body) in content {
                let _ = writeln!(out, "Body: `{kind}`, {}.\n", schema_name(&body["schema"]));
            }
        }
        if let Some(responses) = op["responses"].as_object() {
            let answers: Vec<String> = responses
                .iter()
                .map(|(code, r)| {
                    let what = r["description"].as_str().unwrap_or("").trim();
                    let shape = r["content"]
                        .as_object()
                        .and_then(|c| c.values().next())
                        .map(|c| schema_name(&c["schema"]))
                        .filter(|s| !s.is_empty())
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default();
                    if what.is_empty() {
                        format!("{code}{shape}")
                    } else {
                        format!("{code} {what}{shape}")
                    }
                })
                .collect();
            let _ = writeln!(out, "Answers: {}.", answers.join("; "));
        }
    }
    out
}

/// The name of a schema: a component's name, a list of one, or its type.
fn schema_name(schema: &serde_json::Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return format!("`{}`", reference.rsplit('/').next().unwrap_or(reference));
    }
    if schema["type"] == "array" {
        return format!("list of {}", schema_name(&schema["items"]));
    }
    schema["type"].as_str().unwrap_or_default().to_string()
}
