//! The `sandbox_policy` family: when an epic that asks for a sandbox (`params.sandbox`, or its
//! environment's) is deployed.

use orket_core::assets::Epic;

/// A moment a sandbox may be deployed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployMoment {
    /// An issue of the epic reached `code_review` (the first time in a run).
    CodeReview,
    /// A run of the epic completed.
    EpicCompleted,
    /// A pull request naming one of the epic's cards was merged (the Gitea review loop).
    PullRequestMerged,
}

/// Decides when sandboxes are deployed.
pub trait SandboxPolicy: Send + Sync {
    /// Whether `epic`, which asks for a sandbox, is deployed at `moment`.
    fn deploys(&self, moment: DeployMoment, epic: &Epic) -> bool;
}

/// As the specification says: when an issue first reaches code_review in a run (the work
/// under review can be tried), and when a pull request is merged. A completed run deploys
/// nothing more (each deploy takes a sandbox of its own): choose `on_completion` for that.
pub struct DefaultSandboxPolicy;

impl SandboxPolicy for DefaultSandboxPolicy {
    fn deploys(&self, moment: DeployMoment, _epic: &Epic) -> bool {
        matches!(
            moment,
            DeployMoment::CodeReview | DeployMoment::PullRequestMerged
        )
    }
}

/// One moment only: `on_completion`, `on_merge` and `at_review` are registered under these
/// names besides `default`.
pub struct OnlyAt(pub DeployMoment);

impl SandboxPolicy for OnlyAt {
    fn deploys(&self, moment: DeployMoment, _epic: &Epic) -> bool {
        moment == self.0
    }
}
