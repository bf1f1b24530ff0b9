//! The `Store` trait: atomic batches of changes, one-change conveniences, and reads.

use crate::bugfix::BugFixPhaseRecord;
use crate::change::{Applied, Change};
use crate::error::{StoreError, StoreResult};
use crate::lease::LeaseRecord;
use crate::records::{
    ApprovalRecord, BuildRecord, CardTransaction, Comment, EventRecord, IssueRecord, IssueUpdate,
    MemoryRecord, NewTurn, RunRecord, RunUpdate, SnapshotRecord, SuccessRecord, TickState,
    TurnInputs, TurnQuery, TurnRecord,
};
use crate::review::{DeliveryRecord, PullRequestRecord, ReviewCycle};
use crate::sandbox::{SandboxRecord, SandboxStatus};
use async_trait::async_trait;
use serde_json::Value;

/// Where Orket keeps builds, issues, runs, transcripts, events and memory.
///
/// Writes go through [`Store::apply`] (all or nothing); the other write methods apply one change.
/// The store records what the engine decided: it does not check the transition table, but it
/// audits every status change and keeps epic builds' statuses derived from their issues.
#[async_trait]
pub trait Store: Send + Sync {
    /// Applies `changes` in order as one transaction: all are written, or none.
    async fn apply(&self, changes: Vec<Change>) -> StoreResult<Vec<Applied>>;

    /// A build.
    async fn get_build(&self, id: &str) -> StoreResult<Option<BuildRecord>>;
    /// Every build, by id.
    async fn list_builds(&self) -> StoreResult<Vec<BuildRecord>>;
    /// An issue of a build.
    async fn get_issue(&self, build_id: &str, id: &str) -> StoreResult<Option<IssueRecord>>;
    /// A build's issues, in insertion order.
    async fn list_issues(&self, build_id: &str) -> StoreResult<Vec<IssueRecord>>;
    /// Every issue with this id, whatever its build.
    async fn find_issues(&self, id: &str) -> StoreResult<Vec<IssueRecord>>;
    /// An issue's comments, in insertion order.
    async fn list_comments(&self, build_id: &str, issue_id: &str) -> StoreResult<Vec<Comment>>;
    /// A card's audit rows, in order.
    async fn list_card_transactions(
        &self,
        build_id: &str,
        card_id: &str,
    ) -> StoreResult<Vec<CardTransaction>>;
    /// A run.
    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>>;
    /// The `limit` most recent runs, newest first.
    async fn list_runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>>;
    /// A run's turns, by seq.
    async fn list_turns(&self, run_id: &str) -> StoreResult<Vec<TurnRecord>>;
    /// The highest turn seq of a run.
    async fn last_turn_seq(&self, run_id: &str) -> StoreResult<Option<i64>>;
    /// The ledger hash of the run's last committed turn (`None` for a run with no hashed turn,
    /// or unknown).
    async fn ledger_head(&self, run_id: &str) -> StoreResult<Option<String>>;
    /// Up to `limit` events with an id above `after_id`, by id; of one run or of all.
    async fn list_events(
        &self,
        run_id: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>>;
    /// A run's most recent snapshot.
    async fn latest_snapshot(&self, run_id: &str) -> StoreResult<Option<SnapshotRecord>>;
    /// Success-ledger rows, of one build or of all, in order.
    async fn list_success(&self, build_id: Option<&str>) -> StoreResult<Vec<SuccessRecord>>;
    /// Up to `limit` memory entries sharing words with `query`: most shared first, then newest.
    async fn search_memory(&self, query: &str, limit: usize) -> StoreResult<Vec<MemoryRecord>>;
    /// An approval.
    async fn get_approval(&self, id: i64) -> StoreResult<Option<ApprovalRecord>>;
    /// Approvals, of one run or of all, by id.
    async fn list_approvals(&self, run_id: Option<&str>) -> StoreResult<Vec<ApprovalRecord>>;
    /// What a tick of run `run_id` on `build_id` needs, read as one unit: the issues changed
    /// after version `since` (all of them when 0), the build's version now, and the run's
    /// halt request. Reading only what changed keeps a long run's ticks cheap.
    async fn tick_state(&self, run_id: &str, build_id: &str, since: i64) -> StoreResult<TickState>;
    /// What a turn reads before its model call, as one unit: the issue, its latest comments,
    /// the remembered decisions, its history in the run.
    async fn turn_inputs(&self, query: &TurnQuery) -> StoreResult<TurnInputs>;
    /// A sandbox of the registry.
    async fn get_sandbox(&self, id: &str) -> StoreResult<Option<SandboxRecord>>;
    /// A build's lease, while a run holds it.
    async fn get_lease(&self, build_id: &str) -> StoreResult<Option<LeaseRecord>>;
    /// The `limit` most recent webhook deliveries, newest first.
    async fn list_deliveries(&self, limit: i64) -> StoreResult<Vec<DeliveryRecord>>;
    /// The pull requests Orket knows of, most recently changed first.
    async fn list_pull_requests(&self) -> StoreResult<Vec<PullRequestRecord>>;
    /// A pull request's review cycles, every epoch, in order.
    async fn review_cycles(&self, repository: &str, number: i64) -> StoreResult<Vec<ReviewCycle>>;
    /// Every sandbox, newest first.
    async fn list_sandboxes(&self) -> StoreResult<Vec<SandboxRecord>>;
    /// A rock's bug-fix phase, once it started.
    async fn get_bug_fix_phase(&self, rock: &str) -> StoreResult<Option<BugFixPhaseRecord>>;
    /// The fleet's workers, by name (none but on a PostgreSQL store).
    async fn list_workers(&self) -> StoreResult<Vec<crate::fleet::WorkerRecord>> {
        Ok(Vec::new())
    }

    /// Registers a sandbox (`Conflict` if its slot is held or its id exists).
    async fn insert_sandbox(&self, sandbox: SandboxRecord) -> StoreResult<()> {
        self.apply(vec![Change::InsertSandbox(sandbox)]).await?;
        Ok(())
    }

    /// Moves a sandbox to `status` with `reason`.
    async fn update_sandbox(
        &self,
        id: &str,
        status: SandboxStatus,
        reason: Option<String>,
    ) -> StoreResult<()> {
        let change = Change::UpdateSandbox {
            id: id.to_string(),
            status,
            reason,
        };
        self.apply(vec![change]).await?;
        Ok(())
    }

    /// Creates or replaces a build row.
    async fn upsert_build(&self, build: BuildRecord) -> StoreResult<()> {
        self.apply(vec![Change::UpsertBuild(build)]).await?;
        Ok(())
    }

    /// Adds an issue (`Conflict` if it exists).
    async fn insert_issue(&self, issue: IssueRecord) -> StoreResult<()> {
        self.apply(vec![Change::InsertIssue(issue)]).await?;
        Ok(())
    }

    /// Patches an issue and returns it as it now stands.
    async fn update_issue(
        &self,
        build_id: &str,
        id: &str,
        update: IssueUpdate,
    ) -> StoreResult<IssueRecord> {
        let change = Change::UpdateIssue {
            build_id: build_id.to_string(),
            id: id.to_string(),
            update,
        };
        expect_issue(single(self.apply(vec![change]).await?)?)
    }

    /// Adds credits to an issue and returns it as it now stands.
    async fn add_credits(
        &self,
        build_id: &str,
        id: &str,
        amount: f64,
        actor: &str,
    ) -> StoreResult<IssueRecord> {
        let change = Change::AddCredits {
            build_id: build_id.to_string(),
            id: id.to_string(),
            amount,
            actor: actor.to_string(),
        };
        expect_issue(single(self.apply(vec![change]).await?)?)
    }

    /// Adds a comment to an issue and returns it.
    async fn add_comment(
        &self,
        build_id: &str,
        issue_id: &str,
        author: &str,
        content: &str,
    ) -> StoreResult<Comment> {
        let change = Change::AddComment {
            build_id: build_id.to_string(),
            issue_id: issue_id.to_string(),
            author: author.to_string(),
            content: content.to_string(),
        };
        match single(self.apply(vec![change]).await?)? {
            Applied::Comment(comment) => Ok(comment),
            other => Err(unexpected("a comment", &other)),
        }
    }

    /// Removes a build's issues and their comments.
    async fn delete_build_issues(&self, build_id: &str) -> StoreResult<()> {
        let change = Change::DeleteBuildIssues {
            build_id: build_id.to_string(),
        };
        self.apply(vec![change]).await?;
        Ok(())
    }

    /// Creates a run.
    async fn create_run(&self, run: RunRecord) -> StoreResult<()> {
        self.apply(vec![Change::CreateRun(run)]).await?;
        Ok(())
    }

    /// Patches a run.
    async fn update_run(&self, id: &str, update: RunUpdate) -> StoreResult<()> {
        let change = Change::UpdateRun {
            id: id.to_string(),
            update,
        };
        self.apply(vec![change]).await?;
        Ok(())
    }

    /// Appends a turn; returns its row id.
    async fn append_turn(&self, turn: NewTurn) -> StoreResult<i64> {
        expect_id(single(self.apply(vec![Change::AppendTurn(turn)]).await?)?)
    }

    /// Saves a snapshot of a run; returns its row id.
    async fn save_snapshot(&self, run_id: &str, data: Value) -> StoreResult<i64> {
        let change = Change::SaveSnapshot {
            run_id: run_id.to_string(),
            data,
        };
        expect_id(single(self.apply(vec![change]).await?)?)
    }

    /// Records a success-ledger row; returns its row id.
    async fn record_success(
        &self,
        run_id: &str,
        build_id: &str,
        card: &str,
        data: Value,
    ) -> StoreResult<i64> {
        let change = Change::RecordSuccess {
            run_id: run_id.to_string(),
            build_id: build_id.to_string(),
            card: card.to_string(),
            data,
        };
        expect_id(single(self.apply(vec![change]).await?)?)
    }

    /// Adds a memory entry; returns its row id.
    async fn remember(
        &self,
        content: &str,
        role: Option<&str>,
        issue_id: Option<&str>,
        run_id: Option<&str>,
    ) -> StoreResult<i64> {
        let change = Change::Remember {
            content: content.to_string(),
            role: role.map(str::to_string),
            issue_id: issue_id.map(str::to_string),
            run_id: run_id.map(str::to_string),
        };
        expect_id(single(self.apply(vec![change]).await?)?)
    }
}

/// The one result of a one-change batch.
fn single(applied: Vec<Applied>) -> StoreResult<Applied> {
    let count = applied.len();
    let mut results = applied.into_iter();
    match (results.next(), results.next()) {
        (Some(result), None) => Ok(result),
        _ => Err(StoreError::Unexpected(format!(
            "a batch of one change produced {count} results"
        ))),
    }
}

fn expect_issue(applied: Applied) -> StoreResult<IssueRecord> {
    match applied {
        Applied::Issue(issue) => Ok(*issue),
        other => Err(unexpected("an issue", &other)),
    }
}

fn expect_id(applied: Applied) -> StoreResult<i64> {
    applied.id().ok_or_else(|| unexpected("a row id", &applied))
}

fn unexpected(wanted: &str, got: &Applied) -> StoreError {
    StoreError::Unexpected(format!("expected {wanted}, got {got:?}"))
}
