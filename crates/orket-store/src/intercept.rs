//! A store that lets a caller look at (and refuse) every batch before another store applies
//! it: what a test needs to see that a turn commits as one batch, or to make one batch fail.

use crate::bugfix::BugFixPhaseRecord;
use crate::change::{Applied, Change};
use crate::error::StoreResult;
use crate::lease::LeaseRecord;
use crate::records::{
    ApprovalRecord, BuildRecord, CardTransaction, Comment, EventRecord, IssueRecord, MemoryRecord,
    RunRecord, SnapshotRecord, SuccessRecord, TickState, TurnInputs, TurnQuery, TurnRecord,
};
use crate::sandbox::SandboxRecord;
use crate::store::Store;
use async_trait::async_trait;
use std::sync::Arc;

/// Looks at a batch before it is applied; an error refuses it (nothing is applied).
pub type BatchHook = Box<dyn Fn(&[Change]) -> StoreResult<()> + Send + Sync>;

/// `inner`, with every batch first shown to a hook.
pub struct Intercept {
    inner: Arc<dyn Store>,
    hook: BatchHook,
}

impl Intercept {
    /// `inner` with `hook` called on every batch.
    pub fn new(inner: Arc<dyn Store>, hook: BatchHook) -> Self {
        Intercept { inner, hook }
    }
}

#[async_trait]
impl Store for Intercept {
    async fn apply(&self, changes: Vec<Change>) -> StoreResult<Vec<Applied>> {
        (self.hook)(&changes)?;
        self.inner.apply(changes).await
    }
    async fn get_build(&self, id: &str) -> StoreResult<Option<BuildRecord>> {
        self.inner.get_build(id).await
    }
    async fn get_bug_fix_phase(&self, rock: &str) -> StoreResult<Option<BugFixPhaseRecord>> {
        self.inner.get_bug_fix_phase(rock).await
    }
    async fn list_builds(&self) -> StoreResult<Vec<BuildRecord>> {
        self.inner.list_builds().await
    }
    async fn get_issue(&self, build_id: &str, id: &str) -> StoreResult<Option<IssueRecord>> {
        self.inner.get_issue(build_id, id).await
    }
    async fn list_issues(&self, build_id: &str) -> StoreResult<Vec<IssueRecord>> {
        self.inner.list_issues(build_id).await
    }
    async fn find_issues(&self, id: &str) -> StoreResult<Vec<IssueRecord>> {
        self.inner.find_issues(id).await
    }
    async fn list_comments(&self, build_id: &str, issue_id: &str) -> StoreResult<Vec<Comment>> {
        self.inner.list_comments(build_id, issue_id).await
    }
    async fn list_card_transactions(
        &self,
        build_id: &str,
        card_id: &str,
    ) -> StoreResult<Vec<CardTransaction>> {
        self.inner.list_card_transactions(build_id, card_id).await
    }
    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        self.inner.get_run(id).await
    }
    async fn list_runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
        self.inner.list_runs(limit).await
    }
    async fn list_turns(&self, run_id: &str) -> StoreResult<Vec<TurnRecord>> {
        self.inner.list_turns(run_id).await
    }
    async fn ledger_head(&self, run_id: &str) -> StoreResult<Option<String>> {
        self.inner.ledger_head(run_id).await
    }

    async fn last_turn_seq(&self, run_id: &str) -> StoreResult<Option<i64>> {
        self.inner.last_turn_seq(run_id).await
    }
    async fn list_events(
        &self,
        run_id: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        self.inner.list_events(run_id, after_id, limit).await
    }
    async fn latest_snapshot(&self, run_id: &str) -> StoreResult<Option<SnapshotRecord>> {
        self.inner.latest_snapshot(run_id).await
    }
    async fn list_success(&self, build_id: Option<&str>) -> StoreResult<Vec<SuccessRecord>> {
        self.inner.list_success(build_id).await
    }
    async fn search_memory(&self, query: &str, limit: usize) -> StoreResult<Vec<MemoryRecord>> {
        self.inner.search_memory(query, limit).await
    }
    async fn tick_state(&self, run_id: &str, build_id: &str, since: i64) -> StoreResult<TickState> {
        self.inner.tick_state(run_id, build_id, since).await
    }
    async fn turn_inputs(&self, query: &TurnQuery) -> StoreResult<TurnInputs> {
        self.inner.turn_inputs(query).await
    }
    async fn get_approval(&self, id: i64) -> StoreResult<Option<ApprovalRecord>> {
        self.inner.get_approval(id).await
    }
    async fn list_approvals(&self, run_id: Option<&str>) -> StoreResult<Vec<ApprovalRecord>> {
        self.inner.list_approvals(run_id).await
    }
    async fn get_sandbox(&self, id: &str) -> StoreResult<Option<SandboxRecord>> {
        self.inner.get_sandbox(id).await
    }
    async fn get_lease(&self, build_id: &str) -> StoreResult<Option<LeaseRecord>> {
        self.inner.get_lease(build_id).await
    }
    async fn list_deliveries(&self, limit: i64) -> StoreResult<Vec<crate::DeliveryRecord>> {
        self.inner.list_deliveries(limit).await
    }
    async fn list_pull_requests(&self) -> StoreResult<Vec<crate::PullRequestRecord>> {
        self.inner.list_pull_requests().await
    }
    async fn review_cycles(
        &self,
        repository: &str,
        number: i64,
    ) -> StoreResult<Vec<crate::ReviewCycle>> {
        self.inner.review_cycles(repository, number).await
    }
    async fn list_sandboxes(&self) -> StoreResult<Vec<SandboxRecord>> {
        self.inner.list_sandboxes().await
    }
    async fn list_workers(&self) -> StoreResult<Vec<crate::fleet::WorkerRecord>> {
        self.inner.list_workers().await
    }
}
