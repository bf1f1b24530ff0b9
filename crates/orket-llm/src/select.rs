//! Choosing a provider by name, as `orket run --provider` and `orket serve`'s
//! `POST /v1/system/run-active` do. The embedded model is chosen by its caller (it needs the
//! `embedded` feature and a model file), every other provider here.

use crate::{OllamaProvider, OpenAiProvider, Provider, ReplayProvider};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The provider names `orket` knows.
pub const PROVIDER_NAMES: [&str; 5] = ["embedded", "ollama", "openai", "replay", "fleet"];

/// The provider of a run whose turns run on the fleet's workers (`orket run --fleet`): the
/// run itself calls no model, and a call says so.
pub struct FleetProvider;

#[async_trait::async_trait]
impl Provider for FleetProvider {
    fn name(&self) -> &str {
        "fleet"
    }

    fn serves_every_seat(&self) -> bool {
        true
    }

    async fn complete(
        &self,
        request: &crate::ModelRequest,
    ) -> Result<crate::ModelReply, crate::ProviderError> {
        Err(crate::ProviderError::Other(format!(
            "model {}: a fleet run's turns call their models on the fleet's workers, not here",
            request.model
        )))
    }
}

/// `ollama` (`OLLAMA_HOST`), `openai` (`ORKET_OPENAI_BASE_URL`, `ORKET_OPENAI_API_KEY`),
/// `replay` (the JSON Lines `replay` file, each reply after `replay_delay`) or `fleet` (none:
/// the turns run on the fleet's workers). `embedded` and
/// unknown names are refused with a message saying what to do.
pub fn provider_by_name(
    name: &str,
    replay: Option<&Path>,
    replay_delay: Duration,
) -> Result<Arc<dyn Provider>, String> {
    match name {
        "ollama" => Ok(Arc::new(OllamaProvider::from_env())),
        "fleet" => Ok(Arc::new(FleetProvider)),
        "openai" => Ok(Arc::new(OpenAiProvider::from_env())),
        "replay" => {
            let Some(file) = replay else {
                return Err("the replay provider needs a replay file (JSON Lines: {\"issue_id\", \"role\", \"content\"} per line)".to_string());
            };
            let replay = ReplayProvider::open(file)
                .map_err(|e| e.to_string())?
                .with_delay(replay_delay);
            Ok(Arc::new(replay))
        }
        "embedded" => Err(
            "the embedded model is loaded by the orket binary built with the `embedded` feature"
                .to_string(),
        ),
        other => Err(format!(
            "unknown provider \"{other}\" (known: {})",
            PROVIDER_NAMES.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let err = provider_by_name("gpt", None, Duration::ZERO).err();
        assert_eq!(
            err.as_deref(),
            Some("unknown provider \"gpt\" (known: embedded, ollama, openai, replay, fleet)")
        );
        let err = provider_by_name("replay", None, Duration::ZERO).err();
        assert!(err.is_some_and(|e| e.contains("needs a replay file")));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.jsonl");
        std::fs::write(
            &file,
            "{\"issue_id\":\"A-1\",\"role\":\"coder\",\"content\":\"x\"}\n",
        )
        .unwrap();
        let provider = provider_by_name("replay", Some(&file), Duration::ZERO).unwrap();
        assert_eq!(provider.name(), "replay");
        assert_eq!(
            provider_by_name("ollama", None, Duration::ZERO)
                .unwrap()
                .name(),
            "ollama"
        );
    }
}
