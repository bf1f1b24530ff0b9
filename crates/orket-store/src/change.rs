//! Changes: the writes a store applies, all or nothing, in one batch.

use crate::bugfix::BugFixPhaseRecord;
use crate::lease::LeaseRequest;
use crate::records::{
    BuildRecord, Comment, IssueRecord, IssueUpdate, NewApproval, NewEvent, NewTurn, RunRecord,
    RunUpdate,
};
use crate::review::{NewDelivery, PullRequestChange};
use crate::sandbox::{SandboxRecord, SandboxStatus};
use serde_json::Value;

/// One write. A batch of them (`Store::apply`) commits as one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Creates or replaces a build row (an epic build's status is then derived from its issues).
    UpsertBuild(BuildRecord),
    /// Adds an issue to its build (`Conflict` if `(build_id, id)` exists).
    InsertIssue(IssueRecord),
    /// Patches an issue; a status change is audited and the build's status derived again.
    UpdateIssue {
        /// The issue's build.
        build_id: String,
        /// The issue.
        id: String,
        /// The patch.
        update: IssueUpdate,
    },
    /// Adds `amount` to the issue's `credits_spent` atomically (audited as `report_credits`).
    AddCredits {
        /// The issue's build.
        build_id: String,
        /// The issue.
        id: String,
        /// Credits to add.
        amount: f64,
        /// Who reports them.
        actor: String,
    },
    /// Adds a comment to an issue (`NotFound` if the issue does not exist).
    AddComment {
        /// The issue's build.
        build_id: String,
        /// The issue.
        issue_id: String,
        /// Who writes it.
        author: String,
        /// The text.
        content: String,
    },
    /// Removes a build's issues and their comments (for `--reset`); audit rows stay.
    DeleteBuildIssues {
        /// The build.
        build_id: String,
    },
    /// Creates a run (`Conflict` if its id exists).
    CreateRun(RunRecord),
    /// Patches a run.
    UpdateRun {
        /// The run.
        id: String,
        /// The patch.
        update: RunUpdate,
    },
    /// Asks a running run to halt at its next turn boundary (`Conflict` if it is not running,
    /// `NotFound` if unknown). Asking twice keeps the first time.
    RequestHalt {
        /// The run.
        run_id: String,
    },
    /// Appends a turn to a run's transcript (`Conflict` if its seq exists).
    AppendTurn(NewTurn),
    /// Appends an event.
    AppendEvent(NewEvent),
    /// Saves a snapshot of a run's state.
    SaveSnapshot {
        /// The run.
        run_id: String,
        /// The snapshot.
        data: Value,
    },
    /// Records a run that finished its card in the success ledger.
    RecordSuccess {
        /// The run.
        run_id: String,
        /// Its build.
        build_id: String,
        /// The card it finished.
        card: String,
        /// Details.
        data: Value,
    },
    /// Adds a memory entry.
    Remember {
        /// What to remember.
        content: String,
        /// Who remembers it.
        role: Option<String>,
        /// The issue it comes from.
        issue_id: Option<String>,
        /// The run it comes from.
        run_id: Option<String>,
    },
    /// Parks a tool call for a person's decision (status `pending`).
    RequestApproval(NewApproval),
    /// Claims a pending approval for one decision: `pending` → `deciding` in one statement, so
    /// of two concurrent deciders exactly one wins (`Conflict` if it is not pending, `NotFound`
    /// if unknown).
    ClaimApproval {
        /// The approval.
        id: i64,
    },
    /// Gives a claimed approval back (`deciding` → `pending`) after a decision failed
    /// (`Conflict` if it is not `deciding`).
    ReleaseApproval {
        /// The approval.
        id: i64,
    },
    /// Records the decision of a claimed approval (`Conflict` if it is not `deciding`,
    /// `NotFound` if unknown).
    DecideApproval {
        /// The approval.
        id: i64,
        /// `approved` or `rejected`.
        status: String,
        /// The person's reason.
        reason: Option<String>,
        /// The executed call's result.
        result: Option<Value>,
    },
    /// Takes a build's lease for a run: free, stale (no heartbeat for `stale_after`), held by
    /// a holder known to be gone (`replacing`), or already this holder's (re-entrant; the run
    /// is updated). Otherwise `StoreError::Held`, naming the holder.
    TakeLease(LeaseRequest),
    /// Renews a build's lease (its heartbeat): `StoreError::Held` if another holder took it,
    /// `Conflict` if it is no longer held at all. Put first in a run's commits, it refuses the
    /// commit of a process that lost its build.
    RenewLease {
        /// The build.
        build_id: String,
        /// The holder's token.
        token: String,
    },
    /// Releases a build's lease if this holder has it (nothing otherwise).
    ReleaseLease {
        /// The build.
        build_id: String,
        /// The holder's token.
        token: String,
    },
    /// Records a webhook delivery (its row id): `StoreError::Duplicate` when its delivery id or
    /// its exact body was recorded before.
    RecordDelivery(NewDelivery),
    /// Sets what a delivery did (`NotFound` if unknown).
    SetDeliveryOutcome {
        /// The delivery's row id.
        id: i64,
        /// What was done.
        outcome: String,
        /// Why, in words.
        detail: Option<String>,
    },
    /// Creates or updates a pull request (its epoch and last review are kept).
    UpsertPullRequest(PullRequestChange),
    /// Starts a pull request's next epoch of review cycles (after a merge or a reopen).
    NewReviewEpoch {
        /// `owner/name`.
        repository: String,
        /// Its number.
        number: i64,
    },
    /// Records a pull request's last review (`NotFound` if the pull request is unknown).
    RecordReview {
        /// `owner/name`.
        repository: String,
        /// Its number.
        number: i64,
        /// `approved: ...`, `rejected: ...` or `comment: ...`.
        review: String,
    },
    /// Adds a change request to the pull request's current epoch; gives the cycle's number
    /// (`Applied::Id`). `NotFound` if the pull request is unknown.
    AddReviewCycle {
        /// `owner/name`.
        repository: String,
        /// Its number.
        number: i64,
        /// The review's content.
        reason: String,
        /// The head commit reviewed.
        head_sha: Option<String>,
    },
    /// Starts a rock's bug-fix phase (`Conflict` if the rock has one).
    StartBugFixPhase(BugFixPhaseRecord),
    /// Writes a rock's bug-fix phase over the stored one, only if that is still at the
    /// record's `revision` (`Conflict` otherwise, `NotFound` if the rock has no phase); the
    /// stored row then has the next revision.
    UpdateBugFixPhase(BugFixPhaseRecord),
    /// Registers a sandbox. `Conflict` if its id exists or another sandbox holding its ports
    /// (allocated, deploying, running) has the same slot.
    InsertSandbox(SandboxRecord),
    /// Moves a sandbox to `status` with `reason` (`NotFound` if it does not exist).
    UpdateSandbox {
        /// The sandbox.
        id: String,
        /// Its new status.
        status: SandboxStatus,
        /// Why (cleared when `None`).
        reason: Option<String>,
    },
}

/// What one change produced, in the order of the batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Written; nothing to report (builds, inserted issues, runs, deletions).
    Done,
    /// The new row's id (turns, events, snapshots, success rows, memory entries).
    Id(i64),
    /// The issue as it stands after the change (issue updates, credits).
    Issue(Box<IssueRecord>),
    /// The stored comment.
    Comment(Comment),
}

impl Applied {
    /// The new row's id, for changes that insert a row with one.
    pub fn id(&self) -> Option<i64> {
        match self {
            Applied::Id(id) => Some(*id),
            Applied::Comment(comment) => Some(comment.id),
            Applied::Done | Applied::Issue(_) => None,
        }
    }
}
