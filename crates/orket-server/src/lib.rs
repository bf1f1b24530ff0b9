//! `orket serve`: the REST API, the WebSocket of events and the web board.
//!
//! Start with [`router`]: the routes are one table ([`routes::table`]) that both builds the
//! router and is checked against the OpenAPI document ([`openapi`]). Runs started over the API
//! execute in this process, supervised by the engine ([`runs`]); [`origin`] refuses foreign hosts and origins and
//! non-JSON bodies on `/v1` and `/ws`; [`auth`] guards them with `ORKET_API_KEY`;
//! [`files`] confines the file routes to `model/`, `config/` and `workspace/`; [`ws`] streams
//! the event bus; [`system`] answers health, version, heartbeat, metrics, calendar and board;
//! [`sandboxes`] lists, stops and reads the logs of sandboxes and previews assets; [`chat`]
//! hands a message to the driver, whose action edits the asset tree; [`org_loop`] starts, stops
//! and shows the organization loop.
//! The contract the board codes against is `API.md` beside this crate.

#![forbid(unsafe_code)]

pub mod approvals;
pub mod auth;
pub mod chat;
pub mod error;
pub mod files;
pub mod gitea;
pub mod ledger;
mod listen;
pub mod openapi;
pub mod org_loop;
pub mod origin;
pub mod reference;
pub mod routes;
pub mod runs;
pub mod sandboxes;
pub mod system;
pub mod web;
pub mod workers;
pub mod ws;

use crate::error::{ApiError, ApiResult};
use axum::extract::rejection::BytesRejection;
use axum::Router;
use orket_core::assets::AssetTree;
use orket_engine::Engine;
use orket_llm::Provider;
use orket_store::events::{EventBus, DEFAULT_BUS_CAPACITY};
use orket_store::Store;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The largest request body accepted (larger → 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub use listen::ServeLimits;

/// The model provider a run asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderChoice {
    /// `embedded`, `ollama`, `openai` or `replay`.
    pub name: String,
    /// The replay file (absolute, inside the project), for `replay`.
    pub replay: Option<PathBuf>,
    /// Simulated model time per replayed reply.
    pub replay_delay: Duration,
}

/// Builds the provider of a run; the `orket` binary passes one that also knows the embedded
/// model. The error text is shown to the client.
pub type ProviderFactory =
    Arc<dyn Fn(&ProviderChoice) -> Result<Arc<dyn Provider>, String> + Send + Sync>;

/// The providers of `orket_llm::provider_by_name` (no embedded model).
pub fn default_providers() -> ProviderFactory {
    Arc::new(|choice: &ProviderChoice| {
        orket_llm::provider_by_name(&choice.name, choice.replay.as_deref(), choice.replay_delay)
    })
}

/// What a server serves and how.
pub struct ServerConfig {
    /// The project root (holding `model/`, `config/`, `workspace/`).
    pub root: PathBuf,
    /// The store of the project.
    pub store: Arc<dyn Store>,
    /// `ORKET_API_KEY`: when set, `/v1` and `/ws` need it.
    pub api_key: Option<String>,
    /// `ORKET_ALLOWED_ORIGINS`: origins allowed by CORS (empty: no CORS headers).
    pub allowed_origins: Vec<String>,
    /// Builds the provider of each run.
    pub providers: ProviderFactory,
    /// The provider when a run names none (`ORKET_PROVIDER`).
    pub default_provider: Option<String>,
    /// Events a WebSocket client may fall behind before it is told it lagged.
    pub bus_capacity: usize,
    /// Timeouts and the connection cap of [`serve`].
    pub limits: ServeLimits,
    /// Gitea: its URL and token for the API calls, the webhook secret, the rate limit.
    pub gitea: gitea::GiteaSettings,
    /// The provider of the review runs the Gitea webhook starts (`orket serve --provider`,
    /// else `ORKET_PROVIDER`); none: pull requests are recorded but no review run starts.
    pub review_provider: Option<ProviderChoice>,
    /// The model of those runs (`orket serve --model`).
    pub review_model: Option<String>,
    /// Hand the turns of the runs it starts to the fleet's workers (`orket serve --fleet`).
    #[cfg(feature = "postgres")]
    pub fleet: Option<Arc<orket_store::PgFleet>>,
}

impl ServerConfig {
    /// A configuration for the project at `root` with `store`: no key, no CORS, the default
    /// providers, the default bus.
    pub fn new(root: impl Into<PathBuf>, store: Arc<dyn Store>) -> Self {
        ServerConfig {
            root: root.into(),
            store,
            api_key: None,
            allowed_origins: Vec::new(),
            providers: default_providers(),
            default_provider: None,
            bus_capacity: DEFAULT_BUS_CAPACITY,
            limits: ServeLimits::default(),
            gitea: gitea::GiteaSettings::default(),
            review_provider: None,
            review_model: None,
            #[cfg(feature = "postgres")]
            fleet: None,
        }
    }

    /// The options of a run the server starts with `provider`: the environment's, and the
    /// fleet when the server has one.
    pub fn run_options(&self, provider: Arc<dyn orket_llm::Provider>) -> orket_engine::RunOptions {
        let options = orket_engine::RunOptions::from_env(provider);
        #[cfg(feature = "postgres")]
        let options = orket_engine::RunOptions {
            fleet: self.fleet.clone(),
            ..options
        };
        options
    }

    /// Applies `ORKET_API_KEY`, `ORKET_ALLOWED_ORIGINS` and `ORKET_PROVIDER` from `env`
    /// (empty values count as unset).
    pub fn with_env(mut self, env: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        self.api_key = get("ORKET_API_KEY");
        self.allowed_origins = get("ORKET_ALLOWED_ORIGINS")
            .map(|v| parse_origins(&v))
            .unwrap_or_default();
        self.default_provider = get("ORKET_PROVIDER");
        let (gitea, warning) = gitea::GiteaSettings::from_env(&env);
        if let Some(warning) = warning {
            tracing::warn!("{warning}");
        }
        self.gitea = gitea;
        self.review_provider = self.default_provider.clone().map(|name| ProviderChoice {
            name,
            replay: None,
            replay_delay: Duration::ZERO,
        });
        self
    }
}

/// The origins of a comma-separated list (blanks dropped, trailing `/` removed).
pub fn parse_origins(list: &str) -> Vec<String> {
    list.split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect()
}

/// The server's shared state.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: ServerConfig,
    /// The project's engine: its assets, store and bus, and the runs executing here.
    engine: Engine,
    metrics: system::MetricsSampler,
    /// The rate limit of `POST /webhook/gitea`.
    webhook_limiter: governor::DefaultDirectRateLimiter,
}

/// The project's asset tree from the loader its policies choose (`orket` has only `default`,
/// the project's folders; an unknown name is warned about).
fn project_tree(root: &std::path::Path) -> AssetTree {
    let registry = orket_engine::policy::PolicyRegistry::default();
    match registry.load_tree(root, &|k| std::env::var(k).ok()) {
        Ok((tree, warnings)) => {
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            tree
        }
        Err(e) => {
            tracing::warn!("the asset loader failed ({e}); reading the project's folders");
            AssetTree::new(root)
        }
    }
}

impl AppState {
    /// The state of a server with `config`.
    pub fn new(config: ServerConfig) -> Self {
        let engine = Engine::new(
            project_tree(&config.root),
            Arc::clone(&config.store),
            EventBus::new(config.bus_capacity),
        );
        AppState(Arc::new(Inner {
            engine,
            metrics: system::MetricsSampler::from_env(),
            webhook_limiter: config.gitea.limiter(),
            config,
        }))
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.0.config.root
    }

    /// The project's assets.
    pub fn tree(&self) -> &AssetTree {
        self.0.engine.tree()
    }

    /// The engine runs start on.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.config.store
    }

    /// The bus every run of this server publishes its events to.
    pub fn bus(&self) -> &EventBus {
        self.0.engine.bus()
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// The API key, when one is required.
    pub fn api_key(&self) -> Option<&str> {
        self.0.config.api_key.as_deref()
    }

    /// How many runs execute in this server now.
    pub fn active_runs(&self) -> usize {
        self.0.engine.active_runs()
    }

    /// Asks every run executing in this server to stop at its next turn boundary; returns how
    /// many were asked.
    pub fn halt_all(&self) -> usize {
        self.0.engine.halt_all()
    }

    pub(crate) fn metrics(&self) -> &system::MetricsSampler {
        &self.0.metrics
    }

    pub(crate) fn webhook_limiter(&self) -> &governor::DefaultDirectRateLimiter {
        &self.0.webhook_limiter
    }

    /// Commits to the store, then publishes on the bus (events outside a run).
    pub(crate) fn recorder(&self) -> &orket_store::events::Recorder {
        self.0.engine.recorder()
    }
}

/// The whole application: API, WebSocket, OpenAPI document and board, with the key check on
/// `/v1` and `/ws`, the body limit, CORS and JSON errors.
pub fn router(state: AppState) -> Router {
    routes::build(state)
}

/// Why `addr` may not be served: a non-loopback address without an API key.
pub fn check_bind(addr: &SocketAddr, api_key: Option<&str>) -> Result<(), String> {
    if api_key.is_none() && !is_loopback(&addr.ip()) {
        return Err(format!(
            "refusing to listen on {addr} without an API key: anyone who can reach this address \
             could run agents and write files. Set ORKET_API_KEY, or serve on 127.0.0.1"
        ));
    }
    Ok(())
}

fn is_loopback(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// How long [`serve`] waits, after `shutdown`, for the halted runs to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `state` on `listener`, within the configuration's [`ServeLimits`], until `shutdown`
/// completes; then halts the runs executing in this server and waits up to [`SHUTDOWN_GRACE`]
/// for the connections in flight to finish and the runs to stop at a turn boundary.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let halting = state.clone();
    let shutdown = async move {
        shutdown.await;
        let runs = halting.halt_all();
        if runs > 0 {
            tracing::info!("shutting down: halting {runs} run(s)");
        }
    };
    let limits = state.config().limits;
    listen::serve_connections(
        listener,
        router(state.clone()),
        limits,
        shutdown,
        SHUTDOWN_GRACE,
    )
    .await;
    state.halt_all();
    wait_for_runs(&state, SHUTDOWN_GRACE).await;
    Ok(())
}

/// Waits until no run (nor the loop) executes in this server, or `grace` has passed; true when
/// none does.
pub async fn wait_for_runs(state: &AppState, grace: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + grace;
    let looping = |state: &AppState| {
        state
            .engine()
            .current_loop()
            .is_some_and(|c| c.is_running())
    };
    while state.active_runs() > 0 || looping(state) {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                "{} run(s) still executing after {grace:?}; they stop with the process",
                state.active_runs()
            );
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Why a body could not be read: 408 when it stalled past [`ServeLimits::body_timeout`]
/// (tower-http's body timeout), else axum's own status and words (413 past the size limit).
pub(crate) fn body_error(rejection: BytesRejection) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "the request body stopped arriving before it was complete",
            );
        }
        cause = error.source();
    }
    ApiError::new(rejection.status(), rejection.body_text())
}

/// A JSON body, or 400 naming what is wrong (413 past the size limit).
pub(crate) fn parse_body<T: DeserializeOwned>(
    body: Result<axum::body::Bytes, BytesRejection>,
) -> ApiResult<T> {
    let bytes = body.map_err(body_error)?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

/// The JSON body as a value (an empty body is `null`), or 400 / 413.
pub(crate) fn body_value(
    body: Result<axum::body::Bytes, BytesRejection>,
) -> ApiResult<serde_json::Value> {
    let bytes = body.map_err(body_error)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// A string field of a JSON body, trimmed (`None` when absent, `null` or empty); a 400 names
/// the field when it is not a string.
pub(crate) fn body_text(
    map: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> ApiResult<Option<String>> {
    match map.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => {
            Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()))
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "{name}: expected a string, found {other}"
        ))),
    }
}

/// A whole-number field of a JSON body from 0 to `max`; a 400 names the field.
pub(crate) fn body_number(
    map: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    max: u64,
) -> ApiResult<Option<u64>> {
    match map.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => match n.as_u64().filter(|n| *n <= max) {
            Some(n) => Ok(Some(n)),
            None => Err(ApiError::bad_request(format!(
                "{name}: expected a whole number from 0 to {max}, found {n}"
            ))),
        },
        Some(other) => Err(ApiError::bad_request(format!(
            "{name}: expected a number, found {other}"
        ))),
    }
}

/// The body's `department` (default `core`), a plain folder name; a 400 otherwise.
pub(crate) fn body_department(
    map: &serde_json::Map<String, serde_json::Value>,
) -> ApiResult<String> {
    let department = body_text(map, "department")?.unwrap_or_else(|| "core".to_string());
    if !orket_core::assets::is_plain_name(&department) {
        return Err(ApiError::bad_request(format!(
            "department: \"{department}\" is not a plain folder name"
        )));
    }
    Ok(department)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_without_a_key() {
        let local: SocketAddr = "127.0.0.1:8082".parse().unwrap();
        let v6: SocketAddr = "[::1]:8082".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8082".parse().unwrap();
        assert!(check_bind(&local, None).is_ok());
        assert!(check_bind(&v6, None).is_ok());
        assert!(check_bind(&any, None)
            .unwrap_err()
            .contains("without an API key"));
        assert!(check_bind(&any, Some("k")).is_ok());
    }

    #[test]
    fn origins_are_split() {
        assert_eq!(
            parse_origins("http://a:1/, ,http://b"),
            ["http://a:1", "http://b"]
        );
        assert!(parse_origins(" , ").is_empty());
    }
}
