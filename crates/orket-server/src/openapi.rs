//! The OpenAPI document of the server (`GET /openapi.json`), generated from the handlers'
//! annotations; a test keeps its paths equal to the route table.

use crate::{
    approvals, chat, files, gitea, ledger, org_loop, runs, sandboxes, system, web, workers, ws,
};
use axum::Json;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{RefOr, Response, Schema};
use utoipa::{Modify, OpenApi};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Orket", description = "orket serve: runs, their events and the project's files. Every /v1 and /ws route needs X-API-Key when the server has ORKET_API_KEY."),
    paths(
        web::index, web::app_js, web::style_css, system::health, document,
        system::version, system::heartbeat, system::metrics, system::calendar, system::board,
        files::explorer, files::read, files::save,
        runs::run_active, chat::chat_driver, runs::list, runs::backlog, runs::metrics, runs::halt,
        runs::session, runs::snapshot, org_loop::status, org_loop::start, org_loop::stop,
        approvals::list, approvals::approve, approvals::reject,
        sandboxes::preview_asset, sandboxes::list, sandboxes::stop, sandboxes::logs,
        sandboxes::health,
        ws::events, gitea::webhook, gitea::views::deliveries, gitea::views::pull_requests,
        workers::list, ledger::list,
    ),
    modifiers(&KeyScheme, &InputAnswers)
)]
pub struct ApiDoc;

/// What the guard of a `/v1` or `/ws` route answers before its handler runs.
const GUARD_ANSWERS: [(&str, &str); 2] = [
    (
        "401",
        "the X-API-Key header is missing (the server has ORKET_API_KEY)",
    ),
    (
        "403",
        "the key is wrong, or the request is cross-site (Origin, Host or Content-Type refused)",
    ),
];

/// Declares the `X-API-Key` scheme and puts it on every `/v1` and `/ws` operation, with the
/// answers the key check and the origin check give there (401, 403).
struct KeyScheme;

impl Modify for KeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        // The routes behind the key say so (the same rule the router applies).
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !crate::auth::needs_key(path) {
                continue;
            }
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                operation.security = Some(vec![SecurityRequirement::new(
                    "api_key",
                    Vec::<String>::new(),
                )]);
                for (status, why) in GUARD_ANSWERS {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| Response::new(why).into());
                }
            }
        }
    }
}

/// A department as a query parameter (`dept`) names: a folder under `model/` (a plain name:
/// no `/`, `\`, NUL or leading `.`; documented up to 50 characters, which any file system
/// holds), or empty for the default.
const DEPARTMENT_PATTERN: &str = r"^([^./\\\u0000][^/\\\u0000]{0,49})?$";

/// The answers every operation that takes input gives before its handler decides: 400 for
/// a query or body that does not parse or is refused (the error names the field), 413 for a body over
/// the 1 MiB cap; and the one rule for `dept` parameters. Derived here so that no operation
/// can forget them.
struct InputAnswers;

impl Modify for InputAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                let has_body = operation.request_body.is_some();
                let params = operation.parameters.iter_mut().flatten();
                let mut has_query = false;
                for parameter in params {
                    has_query |= parameter.parameter_in == ParameterIn::Query;
                    if parameter.name == "dept" {
                        if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut() {
                            object.pattern = Some(DEPARTMENT_PATTERN.to_string());
                        }
                    }
                }
                let mut answers = Vec::new();
                if has_body || has_query {
                    answers.push(("400", "bad input: the error names the field and why"));
                }
                if has_body {
                    answers.push(("413", "the body is over 1 MiB"));
                }
                for (status, why) in answers {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| Response::new(why).into());
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "the OpenAPI document", content_type = "application/json")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
