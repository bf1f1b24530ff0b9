//! A [`Store`] decorator that counts the calls the engine makes and the time they take, so the
//! benchmark can say how much of a turn is spent in the store and in which method.
//!
//! Only the required methods are wrapped; the trait's default write helpers go through
//! [`Store::apply`] and are counted there. The time of a call includes waiting for a pooled
//! connection (the SQLite store has a single writer connection), so with several turns in flight
//! the summed time can exceed the wall time.

use async_trait::async_trait;
use orket_store::{
    Applied, ApprovalRecord, BuildRecord, CardTransaction, Change, Comment, EventRecord,
    IssueRecord, MemoryRecord, RunRecord, SandboxRecord, SnapshotRecord, Store, StoreResult,
    SuccessRecord, TickState, TurnInputs, TurnQuery, TurnRecord,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Calls and total time of one store method.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MethodStats {
    /// How many times it was called.
    pub calls: u64,
    /// The summed duration of those calls.
    pub total: Duration,
}

/// Wraps a store and records [`MethodStats`] per method name.
pub struct TimedStore {
    inner: Arc<dyn Store>,
    stats: Mutex<BTreeMap<&'static str, MethodStats>>,
}

impl TimedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        TimedStore {
            inner,
            stats: Mutex::new(BTreeMap::new()),
        }
    }

    /// The statistics so far, by method name.
    pub fn stats(&self) -> BTreeMap<&'static str, MethodStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Awaits `call` and adds its duration to `method`'s statistics.
    async fn timed<T>(&self, method: &'static str, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = call.await;
        let elapsed = started.elapsed();
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let entry = stats.entry(method).or_default();
        entry.calls += 1;
        entry.total += elapsed;
        out
    }
}

#[async_trait]
impl Store for TimedStore {
    async fn apply(&self, changes: Vec<Change>) -> StoreResult<Vec<Applied>> {
        self.timed("apply", self.inner.apply(changes)).await
    }

    async fn get_build(&self, id: &str) -> StoreResult<Option<BuildRecord>> {
        self.timed("get_build", self.inner.get_build(id)).await
    }

    async fn list_builds(&self) -> StoreResult<Vec<BuildRecord>> {
        self.timed("list_builds", self.inner.list_builds()).await
    }

    async fn get_bug_fix_phase(
        &self,
        rock: &str,
    ) -> StoreResult<Option<orket_store::BugFixPhaseRecord>> {
        self.timed("get_bug_fix_phase", self.inner.get_bug_fix_phase(rock))
            .await
    }

    async fn get_issue(&self, build_id: &str, id: &str) -> StoreResult<Option<IssueRecord>> {
        self.timed("get_issue", self.inner.get_issue(build_id, id))
            .await
    }

    async fn list_issues(&self, build_id: &str) -> StoreResult<Vec<IssueRecord>> {
        self.timed("list_issues", self.inner.list_issues(build_id))
            .await
    }

    async fn find_issues(&self, id: &str) -> StoreResult<Vec<IssueRecord>> {
        self.timed("find_issues", self.inner.find_issues(id)).await
    }

    async fn tick_state(&self, run_id: &str, build_id: &str, since: i64) -> StoreResult<TickState> {
        self.timed("tick_state", self.inner.tick_state(run_id, build_id, since))
            .await
    }

    async fn turn_inputs(&self, query: &TurnQuery) -> StoreResult<TurnInputs> {
        self.timed("turn_inputs", self.inner.turn_inputs(query))
            .await
    }

    async fn list_comments(&self, build_id: &str, issue_id: &str) -> StoreResult<Vec<Comment>> {
        self.timed(
            "list_comments",
            self.inner.list_comments(build_id, issue_id),
        )
        .await
    }

    async fn list_card_transactions(
        &self,
        build_id: &str,
        card_id: &str,
    ) -> StoreResult<Vec<CardTransaction>> {
        self.timed(
            "list_card_transactions",
            self.inner.list_card_transactions(build_id, card_id),
        )
        .await
    }

    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        self.timed("get_run", self.inner.get_run(id)).await
    }

    async fn list_runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
        self.timed("list_runs", self.inner.list_runs(limit)).await
    }

    async fn list_turns(&self, run_id: &str) -> StoreResult<Vec<TurnRecord>> {
        self.timed("list_turns", self.inner.list_turns(run_id))
            .await
    }

    async fn ledger_head(&self, run_id: &str) -> StoreResult<Option<String>> {
        self.timed("ledger_head", self.inner.ledger_head(run_id))
            .await
    }

    async fn last_turn_seq(&self, run_id: &str) -> StoreResult<Option<i64>> {
        self.timed("last_turn_seq", self.inner.last_turn_seq(run_id))
            .await
    }

    async fn list_events(
        &self,
        run_id: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        self.timed(
            "list_events",
            self.inner.list_events(run_id, after_id, limit),
        )
        .await
    }

    async fn get_approval(&self, id: i64) -> StoreResult<Option<ApprovalRecord>> {
        self.timed("get_approval", self.inner.get_approval(id))
            .await
    }

    async fn list_approvals(&self, run_id: Option<&str>) -> StoreResult<Vec<ApprovalRecord>> {
        self.timed("list_approvals", self.inner.list_approvals(run_id))
            .await
    }

    async fn latest_snapshot(&self, run_id: &str) -> StoreResult<Option<SnapshotRecord>> {
        self.timed("latest_snapshot", self.inner.latest_snapshot(run_id))
            .await
    }

    async fn list_success(&self, build_id: Option<&str>) -> StoreResult<Vec<SuccessRecord>> {
        self.timed("list_success", self.inner.list_success(build_id))
            .await
    }

    async fn search_memory(&self, query: &str, limit: usize) -> StoreResult<Vec<MemoryRecord>> {
        self.timed("search_memory", self.inner.search_memory(query, limit))
            .await
    }

    async fn get_sandbox(&self, id: &str) -> StoreResult<Option<SandboxRecord>> {
        self.timed("get_sandbox", self.inner.get_sandbox(id)).await
    }

    async fn get_lease(&self, build_id: &str) -> StoreResult<Option<orket_store::LeaseRecord>> {
        self.timed("get_lease", self.inner.get_lease(build_id))
            .await
    }

    async fn list_deliveries(&self, limit: i64) -> StoreResult<Vec<orket_store::DeliveryRecord>> {
        self.timed("list_deliveries", self.inner.list_deliveries(limit))
            .await
    }

    async fn list_pull_requests(&self) -> StoreResult<Vec<orket_store::PullRequestRecord>> {
        self.timed("list_pull_requests", self.inner.list_pull_requests())
            .await
    }

    async fn review_cycles(
        &self,
        repository: &str,
        number: i64,
    ) -> StoreResult<Vec<orket_store::ReviewCycle>> {
        self.timed(
            "review_cycles",
            self.inner.review_cycles(repository, number),
        )
        .await
    }

    async fn list_sandboxes(&self) -> StoreResult<Vec<SandboxRecord>> {
        self.timed("list_sandboxes", self.inner.list_sandboxes())
            .await
    }
}
