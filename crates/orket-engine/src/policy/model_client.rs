//! The `model_client` family: which provider (and model) serves a seat's turns. The default
//! reads the asset files (an environment's `seat_model_clients`, the seat's own
//! `model_client`, the environment's `model_client`), so the integrity guard can call an
//! OpenAI-compatible server while the developers use the embedded model, in one run.

use orket_core::assets::{Environment, ModelClientSpec, Seat};
use orket_llm::http::normalize_base_url;
use orket_llm::{OllamaProvider, OpenAiProvider, Provider};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a seat's client is chosen from.
pub struct ClientChoice<'a> {
    /// The seat the turn is routed to.
    pub seat: &'a Seat,
    /// The epic's environment.
    pub env: &'a Environment,
    /// The run's own provider (`--provider`).
    pub run_provider: &'a Arc<dyn Provider>,
}

/// The provider and model that serve a seat.
#[derive(Clone)]
pub struct Served {
    /// The provider its turns call.
    pub provider: Arc<dyn Provider>,
    /// The model it asks for, when the client names one (over the environment's choice).
    pub model: Option<String>,
    /// The seat's client as the assets name it (`openai http://127.0.0.1:8081/v1`); `None`
    /// when nothing names one and the run's provider serves the seat.
    pub client: Option<String>,
}

impl Served {
    /// The run's own provider.
    pub fn by_run(run_provider: &Arc<dyn Provider>, model: Option<String>) -> Served {
        Served {
            provider: Arc::clone(run_provider),
            model,
            client: None,
        }
    }
}

/// A client as recorded with a turn: its provider and server.
fn describe(spec: &ModelClientSpec) -> String {
    match &spec.base_url {
        Some(url) => format!("{} {url}", spec.provider),
        None => spec.provider.clone(),
    }
}

/// The client's server is the one `ORKET_OPENAI_BASE_URL` names (or names none).
fn own_server(spec: &ModelClientSpec) -> bool {
    let own = std::env::var("ORKET_OPENAI_BASE_URL").ok();
    match (&spec.base_url, own) {
        (None, _) => true,
        (Some(url), Some(own)) => normalize_base_url(url) == normalize_base_url(&own),
        (Some(_), None) => false,
    }
}

/// Picks the provider of a seat's turns.
pub trait ModelClient: Send + Sync {
    /// The provider serving `choice.seat`, or why none can (the turn fails with it).
    fn serve(&self, choice: &ClientChoice<'_>) -> Result<Served, String>;
}

/// The asset files' choice ([`Environment::model_client_of`]); without one, the run's
/// provider. A run whose provider serves every seat (`Provider::serves_every_seat`: a replay,
/// a fleet run, a preview) keeps it for every seat, taking only the client's model. HTTP clients are built once per (provider, server, key variable) and reused;
/// a recording run (`--record`) records their replies too.
#[derive(Default)]
pub struct DefaultModelClient {
    built: Mutex<HashMap<ModelClientSpec, Arc<dyn Provider>>>,
}

impl ModelClient for DefaultModelClient {
    fn serve(&self, choice: &ClientChoice<'_>) -> Result<Served, String> {
        let run = choice.run_provider;
        let Some(spec) = choice.env.model_client_of(choice.seat) else {
            return Ok(Served::by_run(run, None));
        };
        let model = spec.model.clone();
        if run.serves_every_seat() {
            return Ok(Served {
                client: Some(describe(spec)),
                ..Served::by_run(run, model)
            });
        }
        match spec.provider.as_str() {
            "embedded" if run.in_process() => Ok(Served {
                client: Some(describe(spec)),
                ..Served::by_run(run, model)
            }),
            "embedded" => Err(format!(
                "seat \"{}\" is served by the embedded model (its model_client), but this run's provider is {}: run with --provider embedded, or give the seat an ollama or openai client",
                choice.seat.key,
                run.name()
            )),
            _ => {
                let provider = run.alongside(self.built(spec, &choice.seat.key)?);
                Ok(Served {
                    provider,
                    model,
                    client: Some(describe(spec)),
                })
            }
        }
    }
}

impl DefaultModelClient {
    /// The provider of an `ollama` / `openai` client, built on first use.
    fn built(&self, spec: &ModelClientSpec, seat: &str) -> Result<Arc<dyn Provider>, String> {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(provider) = built.get(spec) {
            return Ok(Arc::clone(provider));
        }
        let provider: Arc<dyn Provider> = match spec.provider.as_str() {
            "ollama" => Arc::new(match &spec.base_url {
                Some(url) => OllamaProvider::new(url),
                None => OllamaProvider::from_env(),
            }),
            "openai" => {
                let key = match &spec.api_key_env {
                    Some(var) => Some(std::env::var(var).map_err(|_| {
                        format!(
                            "seat \"{seat}\"'s model_client reads its API key from {var}, which is not set"
                        )
                    })?),
                    // The user's own key goes only to the user's own server.
                    None if own_server(spec) => std::env::var("ORKET_OPENAI_API_KEY").ok(),
                    None => None,
                };
                let url = spec
                    .base_url
                    .clone()
                    .or_else(|| std::env::var("ORKET_OPENAI_BASE_URL").ok())
                    .unwrap_or_default();
                Arc::new(OpenAiProvider::new(&url, key))
            }
            other => {
                return Err(format!(
                    "seat \"{seat}\"'s model_client names provider \"{other}\", which serves no seat (embedded, ollama, openai)"
                ))
            }
        };
        built.insert(spec.clone(), Arc::clone(&provider));
        Ok(provider)
    }
}
