//! The settings a turn runs with: how its model is sampled and how much room it gets (steps,
//! corrections, candidates). From the lowest to the highest: Orket's defaults, the
//! organization's `process_rules` and the environment (temperature, seed,
//! `params.max_tokens`), the model's profile (`models/<model>.json`), the run's own seed
//! (`--seed`) and the `loop` policy's steps and corrections. They are recorded with every turn.

use crate::assets::RunAssets;
use crate::policy::Served;
use crate::run::RunOptions;
use orket_core::assets::{FileContent, SeedPolicy};
use orket_core::tools::{DEFAULT_MAX_CORRECTIONS, DEFAULT_MAX_STEPS, MAX_STEPS};
use serde::Serialize;
use serde_json::Value;

/// How one turn is sampled and bounded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TurnSettings {
    /// Sampling temperature.
    pub temperature: f64,
    /// Nucleus sampling, when set.
    pub top_p: Option<f64>,
    /// The repeat penalty, when set.
    pub repeat_penalty: Option<f64>,
    /// The run's seed.
    pub seed: Option<i64>,
    /// Each model call gets its own seed, derived from the run's and its place in the run.
    pub per_call_seeds: bool,
    /// The most tokens a reply may have.
    pub max_tokens: Option<u32>,
    /// The model's context, in tokens, when known.
    pub context_window: Option<u32>,
    /// Steps per turn.
    pub steps: u32,
    /// Corrections per turn.
    pub corrections: u32,
    /// Candidates a developer turn with a fixture draws.
    pub candidates: u32,
    /// How a `write_file` step gives the file's content.
    pub file_content: FileContent,
    /// The model profile these came from, when the model has one.
    pub profile: Option<String>,
    /// The provider the turn calls (`embedded`, `openai`, ...).
    pub provider: String,
    /// The seat's `model_client`, when the assets name one (`openai http://...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl TurnSettings {
    /// The settings of the turns of this run that call `model`: its profile first, then the
    /// environment and `process_rules`, then Orket's defaults; the run's own seed before the
    /// environment's.
    pub fn resolve(
        assets: &RunAssets,
        options: &RunOptions,
        model: &str,
        served: &Served,
    ) -> TurnSettings {
        let profile = assets.profiles.get(model);
        let org = &assets.org;
        let env = &assets.env;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        TurnSettings {
            temperature: profile
                .and_then(|p| p.temperature)
                .unwrap_or(env.temperature),
            top_p: profile.and_then(|p| p.top_p),
            repeat_penalty: profile.and_then(|p| p.repeat_penalty),
            seed: options.seed.or(env.seed),
            per_call_seeds: profile.and_then(|p| p.seed_policy) == Some(SeedPolicy::PerCall),
            max_tokens: profile.and_then(|p| p.max_tokens).or_else(|| {
                env.params
                    .get("max_tokens")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
            }),
            context_window: profile.and_then(|p| p.context_window),
            steps: count(
                options
                    .steps
                    .or(profile.and_then(|p| p.steps))
                    .or(org.max_steps())
                    .unwrap_or(DEFAULT_MAX_STEPS)
                    .clamp(1, MAX_STEPS),
            ),
            corrections: count(
                options
                    .corrections
                    .or(profile.and_then(|p| p.corrections))
                    .or(org.max_corrections())
                    .unwrap_or(DEFAULT_MAX_CORRECTIONS),
            ),
            candidates: count(
                profile
                    .and_then(|p| p.candidates)
                    .or(org.candidates())
                    .unwrap_or(1)
                    .max(1),
            ),
            file_content: profile.and_then(|p| p.file_content).unwrap_or_default(),
            profile: profile.map(|p| p.file.clone()),
            provider: served.provider.name().to_string(),
            client: served.client.clone(),
        }
    }

    /// The seed of step `step` of candidate `candidate` (from 1) of turn `seq`: the run's seed,
    /// moved on for each candidate, and for each call when calls get their own seeds.
    pub fn seed_for(&self, seq: i64, candidate: u32, step: u32) -> Option<i64> {
        let base = self.seed?;
        let candidate = i64::from(candidate.saturating_sub(1)) * 7919;
        let call = if self.per_call_seeds {
            seq.wrapping_mul(1000).wrapping_add(i64::from(step))
        } else {
            0
        };
        Some(base.wrapping_add(candidate).wrapping_add(call))
    }
}
