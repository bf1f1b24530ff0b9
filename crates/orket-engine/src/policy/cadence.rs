//! The `loop` family: how the traction loop of a run is paced (turns in flight, ticks, ticks
//! without progress, history per prompt, steps and corrections per turn).

use orket_core::assets::{Epic, Organization};

/// The traction loop's settings of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopSettings {
    /// Turns in flight at once.
    pub concurrency: usize,
    /// Ticks before the run ends `exhausted`.
    pub max_iterations: usize,
    /// Ticks in a row without progress before the run ends `stalled`.
    pub no_progress_limit: usize,
    /// Turns of an issue's history sent with its prompt.
    pub context_window: usize,
    /// Steps per turn, over the model profile's and `process_rules.max_steps`.
    pub steps: Option<usize>,
    /// Corrections per turn, over the model profile's and `process_rules.max_corrections`.
    pub corrections: Option<usize>,
}

/// What a run's loop settings are chosen from.
pub struct LoopChoice<'a> {
    /// The organization.
    pub org: &'a Organization,
    /// The epic the run works on.
    pub epic: &'a Epic,
    /// The settings the run was started with (`orket run` options, `ORKET_CONTEXT_WINDOW`).
    pub given: LoopSettings,
}

/// Paces a run's traction loop.
pub trait LoopPolicy: Send + Sync {
    /// The settings of the run.
    fn settings(&self, choice: &LoopChoice<'_>) -> LoopSettings;
}

/// The settings the run was started with; steps and corrections from the model's profile, else
/// `process_rules`, else Orket's defaults.
pub struct DefaultLoopPolicy;

impl LoopPolicy for DefaultLoopPolicy {
    fn settings(&self, choice: &LoopChoice<'_>) -> LoopSettings {
        choice.given.clone()
    }
}
