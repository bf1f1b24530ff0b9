//! `POST /webhook/gitea`: the team's Gitea tells Orket about its pull requests. The route needs
//! no API key — the delivery's signature is its authentication — and checks, in this order,
//! before anything is recorded or done: a webhook secret is configured (503 naming
//! `GITEA_WEBHOOK_SECRET` otherwise), the body's size (413 past 1 MiB, by the router's limit;
//! a body that stalls 30 s, 408), the signature (401: missing, empty — what Gitea sends for a
//! hook without a secret —, malformed or wrong), the rate limit of signed deliveries (429 with
//! `Retry-After`), the payload (400 naming what does not read). Then the delivery is recorded once — a delivery id seen before, or the very same
//! bytes under a new id (Gitea's "redeliver"), answers 200 `{"duplicate": true}` and changes
//! nothing — and the review policy ([`policy`]) acts on it; what it did is the delivery's
//! outcome.

pub mod policy;
pub mod views;

use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use orket_gitea::hook::{self, DELIVERY_HEADER, EVENT_HEADER, EVENT_TYPE_HEADER};
use orket_gitea::signature::{self, GITEA_SIGNATURE_HEADER, HUB_SIGNATURE_256_HEADER};
use orket_store::{ledger::sha256_hex, Change, NewDelivery, StoreError};
use serde::Serialize;
use serde_json::json;
use std::num::NonZeroU32;
use utoipa::ToSchema;

/// Deliveries accepted per 60 s when `ORKET_RATE_LIMIT` is not set.
pub const DEFAULT_RATE_LIMIT: u32 = 120;

/// The Gitea side of the configuration (`GITEA_URL`, `GITEA_TOKEN`, `GITEA_WEBHOOK_SECRET`,
/// `ORKET_RATE_LIMIT`).
#[derive(Clone, Default)]
pub struct GiteaSettings {
    /// Gitea's base URL (`https://git.example.com`), for the API calls.
    pub url: Option<String>,
    /// The API token, sent as `Authorization: token …`.
    pub token: Option<String>,
    /// The webhook secret the hooks are signed with.
    pub secret: Option<String>,
    /// Deliveries accepted per 60 s.
    pub rate_limit: Option<NonZeroU32>,
}

impl std::fmt::Debug for GiteaSettings {
    /// Never the token or the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GiteaSettings")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .field("secret", &self.secret.as_ref().map(|_| "(set)"))
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

impl GiteaSettings {
    /// The settings from `get` (empty values count as unset); a bad `ORKET_RATE_LIMIT` is
    /// returned as a warning and the default used.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> (Self, Option<String>) {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let (rate_limit, warning) = match get("ORKET_RATE_LIMIT") {
            None => (None, None),
            Some(raw) => match raw.trim().parse::<NonZeroU32>() {
                Ok(n) => (Some(n), None),
                Err(_) => (
                    None,
                    Some(format!(
                        "ORKET_RATE_LIMIT={raw:?} is not a positive whole number; using {DEFAULT_RATE_LIMIT} per 60 s"
                    )),
                ),
            },
        };
        let settings = GiteaSettings {
            url: get("GITEA_URL").map(|u| u.trim().trim_end_matches('/').to_string()),
            token: get("GITEA_TOKEN"),
            secret: get("GITEA_WEBHOOK_SECRET"),
            rate_limit,
        };
        (settings, warning)
    }

    /// The rate limiter of the webhook route.
    pub(crate) fn limiter(&self) -> DefaultDirectRateLimiter {
        let per_minute = self
            .rate_limit
            .unwrap_or(NonZeroU32::new(DEFAULT_RATE_LIMIT).expect("the default is not zero"));
        RateLimiter::direct(Quota::per_minute(per_minute))
    }
}

/// What a delivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Handled {
    /// The delivery's row id (see `GET /v1/webhooks`).
    pub delivery: i64,
    /// What the policy did: `review_started`, `cycle_recorded`, `escalated`, `rejected`,
    /// `merged`, `merge_refused`, `deployed`, `deploy_failed`, `recorded`, `ignored`, ...
    pub outcome: String,
    /// Why, in words.
    pub detail: String,
}

/// A header's value as text (`None` when absent or not text).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// 429 with `Retry-After` (whole seconds, at least 1).
fn too_many(wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many deliveries (ORKET_RATE_LIMIT per 60 s); retry in {seconds} s"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

/// Receives a Gitea webhook delivery (see the module's documentation for the order of checks).
#[utoipa::path(post, path = "/webhook/gitea", request_body(content = Object, description = "a Gitea webhook payload, signed"),
    responses((status = 200, body = Handled, description = "acted on, or `{\"duplicate\": true}` for a delivery seen before"),
        (status = 400), (status = 401), (status = 413), (status = 429), (status = 503)))]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let settings = &state.config().gitea;
    let Some(secret) = settings.secret.as_deref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the Gitea webhook is not configured: set GITEA_WEBHOOK_SECRET (the secret of the \
             Gitea hook) for orket serve",
        ));
    };
    let body = body.map_err(crate::body_error)?;
    signature::verify(
        secret.as_bytes(),
        &body,
        header(&headers, GITEA_SIGNATURE_HEADER),
        header(&headers, HUB_SIGNATURE_256_HEADER),
    )
    .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    // Counted only once signed: unsigned requests cannot use up Gitea's budget.
    if let Err(not_until) = state.webhook_limiter().check() {
        let clock = governor::clock::DefaultClock::default();
        return Ok(too_many(
            not_until.wait_time_from(governor::clock::Clock::now(&clock)),
        ));
    }
    let event = header(&headers, EVENT_HEADER);
    let event_type = header(&headers, EVENT_TYPE_HEADER);
    let hook =
        hook::parse(event, event_type, &body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let body_sha256 = sha256_hex(&body);
    let delivery = NewDelivery {
        // A signed delivery without an id (not Gitea's way) is known by its body.
        delivery_id: header(&headers, DELIVERY_HEADER)
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map_or_else(|| format!("sha256:{body_sha256}"), str::to_string),
        event: event.or(event_type).unwrap_or_default().to_string(),
        event_type: event_type.map(str::to_string),
        repository: policy::repository(&hook).map(|r| r.full_name.clone()),
        pr_number: policy::pr_number(&hook),
        body_sha256,
        outcome: "received".to_string(),
    };
    let id = match state
        .store()
        .apply(vec![Change::RecordDelivery(delivery)])
        .await
    {
        Ok(applied) => applied.first().and_then(|a| a.id()).unwrap_or_default(),
        Err(StoreError::Duplicate(what)) => {
            return Ok(Json(json!({"duplicate": true, "detail": what})).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    // Acted on in a task of its own: if Gitea stops waiting (its delivery timeout), the work
    // and its outcome still complete; the answer waits for them otherwise.
    let acting = state.clone();
    let done = tokio::spawn(async move {
        let done = policy::act(&acting, &hook).await;
        let outcome = Change::SetDeliveryOutcome {
            id,
            outcome: done.outcome.clone(),
            detail: Some(done.detail.clone()),
        };
        acting.store().apply(vec![outcome]).await.map(|_| done)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the review policy stopped: {e}")))??;
    Ok(Json(Handled {
        delivery: id,
        outcome: done.outcome,
        detail: done.detail,
    })
    .into_response())
}
