//! Two decisions on one approval at once (a double click, approve racing reject): exactly one
//! runs the parked call; the other is a 409 before anything happened.
//!
//! The store below holds every read of the approval until a second reader arrives (or 1 s
//! passes), so two requests that both read it before deciding — the race — always happen
//! here; and it counts the batches that record a decision, which the engine only builds after
//! running the call.

mod common;

use async_trait::async_trait;
use axum::http::StatusCode;
use common::Project;
use orket_store::{
    Applied, ApprovalRecord, BuildRecord, CardTransaction, Change, Comment, EventRecord,
    IssueRecord, MemoryRecord, RunRecord, SandboxRecord, SnapshotRecord, Store, StoreResult,
    SuccessRecord, TickState, TurnInputs, TurnQuery, TurnRecord,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

struct RacingStore {
    inner: OnceLock<Arc<dyn Store>>,
    armed: AtomicBool,
    readers: AtomicUsize,
    arrived: tokio::sync::Notify,
    decisions: AtomicUsize,
}

impl RacingStore {
    fn inner(&self) -> &Arc<dyn Store> {
        self.inner.get().unwrap()
    }
}

#[async_trait]
impl Store for RacingStore {
    async fn apply(&self, changes: Vec<Change>) -> StoreResult<Vec<Applied>> {
        if changes
            .iter()
            .any(|c| matches!(c, Change::DecideApproval { .. }))
        {
            self.decisions.fetch_add(1, Ordering::SeqCst);
        }
        self.inner().apply(changes).await
    }
    async fn get_build(&self, id: &str) -> StoreResult<Option<BuildRecord>> {
        self.inner().get_build(id).await
    }
    async fn list_builds(&self) -> StoreResult<Vec<BuildRecord>> {
        self.inner().list_builds().await
    }
    async fn get_bug_fix_phase(
        &self,
        rock: &str,
    ) -> StoreResult<Option<orket_store::BugFixPhaseRecord>> {
        self.inner().get_bug_fix_phase(rock).await
    }
    async fn get_issue(&self, build_id: &str, id: &str) -> StoreResult<Option<IssueRecord>> {
        self.inner().get_issue(build_id, id).await
    }
    async fn list_issues(&self, build_id: &str) -> StoreResult<Vec<IssueRecord>> {
        self.inner().list_issues(build_id).await
    }
    async fn find_issues(&self, id: &str) -> StoreResult<Vec<IssueRecord>> {
        self.inner().find_issues(id).await
    }
    async fn list_comments(&self, build_id: &str, issue_id: &str) -> StoreResult<Vec<Comment>> {
        self.inner().list_comments(build_id, issue_id).await
    }
    async fn tick_state(&self, run_id: &str, build_id: &str, since: i64) -> StoreResult<TickState> {
        self.inner().tick_state(run_id, build_id, since).await
    }
    async fn turn_inputs(&self, query: &TurnQuery) -> StoreResult<TurnInputs> {
        self.inner().turn_inputs(query).await
    }
    async fn list_card_transactions(
        &self,
        build_id: &str,
        card_id: &str,
    ) -> StoreResult<Vec<CardTransaction>> {
        self.inner().list_card_transactions(build_id, card_id).await
    }
    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        self.inner().get_run(id).await
    }
    async fn list_runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
        self.inner().list_runs(limit).await
    }
    async fn list_turns(&self, run_id: &str) -> StoreResult<Vec<TurnRecord>> {
        self.inner().list_turns(run_id).await
    }
    async fn ledger_head(&self, run_id: &str) -> StoreResult<Option<String>> {
        self.inner().ledger_head(run_id).await
    }

    async fn last_turn_seq(&self, run_id: &str) -> StoreResult<Option<i64>> {
        self.inner().last_turn_seq(run_id).await
    }
    async fn list_events(
        &self,
        run_id: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        self.inner().list_events(run_id, after_id, limit).await
    }
    async fn latest_snapshot(&self, run_id: &str) -> StoreResult<Option<SnapshotRecord>> {
        self.inner().latest_snapshot(run_id).await
    }
    async fn list_success(&self, build_id: Option<&str>) -> StoreResult<Vec<SuccessRecord>> {
        self.inner().list_success(build_id).await
    }
    async fn search_memory(&self, query: &str, limit: usize) -> StoreResult<Vec<MemoryRecord>> {
        self.inner().search_memory(query, limit).await
    }
    async fn get_approval(&self, id: i64) -> StoreResult<Option<ApprovalRecord>> {
        if self.armed.load(Ordering::SeqCst) {
            // Wait for the other decision to read too (it never comes when claims exclude it).
            let arrived = self.arrived.notified();
            if self.readers.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
                self.arrived.notify_waiters();
            } else {
                let _ = tokio::time::timeout(Duration::from_secs(1), arrived).await;
            }
        }
        self.inner().get_approval(id).await
    }
    async fn list_approvals(&self, run_id: Option<&str>) -> StoreResult<Vec<ApprovalRecord>> {
        self.inner().list_approvals(run_id).await
    }
    async fn get_sandbox(&self, id: &str) -> StoreResult<Option<SandboxRecord>> {
        self.inner().get_sandbox(id).await
    }
    async fn get_lease(&self, build_id: &str) -> StoreResult<Option<orket_store::LeaseRecord>> {
        self.inner().get_lease(build_id).await
    }
    async fn list_deliveries(&self, limit: i64) -> StoreResult<Vec<orket_store::DeliveryRecord>> {
        self.inner().list_deliveries(limit).await
    }
    async fn list_pull_requests(&self) -> StoreResult<Vec<orket_store::PullRequestRecord>> {
        self.inner().list_pull_requests().await
    }
    async fn review_cycles(
        &self,
        repository: &str,
        number: i64,
    ) -> StoreResult<Vec<orket_store::ReviewCycle>> {
        self.inner().review_cycles(repository, number).await
    }
    async fn list_sandboxes(&self) -> StoreResult<Vec<SandboxRecord>> {
        self.inner().list_sandboxes().await
    }
}

/// A demo project whose organization parks every `write_file`, after one run: the racing
/// store, the project and the approval id of DEMO-1's parked write.
async fn parked() -> (Arc<RacingStore>, Project, i64) {
    let racing = Arc::new(RacingStore {
        inner: OnceLock::new(),
        armed: AtomicBool::new(false),
        readers: AtomicUsize::new(0),
        arrived: tokio::sync::Notify::new(),
        decisions: AtomicUsize::new(0),
    });
    let wrapper = Arc::clone(&racing);
    let p = Project::with(move |c| {
        let _ = wrapper.inner.set(Arc::clone(&c.store));
        c.store = wrapper;
    })
    .await;
    let org_path = p.root.join("config/organization.json");
    let mut org: Value =
        serde_json::from_str(&std::fs::read_to_string(&org_path).unwrap()).unwrap();
    org["process_rules"]["approval_required"] = json!(["write_file"]);
    std::fs::write(&org_path, org.to_string()).unwrap();
    let id = p.start("hello_cli", 0).await;
    p.wait_end(&id).await;
    let (_, approvals) = p.get(&format!("/v1/approvals?run_id={id}")).await;
    let approval = approvals
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["issue_id"] == "DEMO-1")
        .and_then(|a| a["id"].as_i64())
        .unwrap();
    racing.armed.store(true, Ordering::SeqCst);
    (racing, p, approval)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_approvals_run_the_call_once() {
    let (racing, p, id) = parked().await;
    let uri = format!("/v1/approvals/{id}/approve");
    let (a, b) = tokio::join!(p.post(&uri, json!({})), p.post(&uri, json!({})));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        a.1,
        b.1
    );
    let conflict = if a.0 == StatusCode::CONFLICT {
        &a.1
    } else {
        &b.1
    };
    assert!(
        conflict["error"]
            .as_str()
            .unwrap()
            .contains(&format!("approval {id}")),
        "{conflict}"
    );
    assert_eq!(
        racing.decisions.load(Ordering::SeqCst),
        1,
        "the call ran twice"
    );
    let approval = p.store.get_approval(id).await.unwrap().unwrap();
    assert_eq!(approval.status, "approved");
    let comments = p
        .store
        .list_comments("build-hello_cli", "DEMO-1")
        .await
        .unwrap();
    let approved = comments
        .iter()
        .filter(|c| c.content.starts_with("Approved by a person"))
        .count();
    assert_eq!(approved, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_racing_reject_never_runs_a_rejected_call() {
    let (racing, p, id) = parked().await;
    let approve = format!("/v1/approvals/{id}/approve");
    let reject = format!("/v1/approvals/{id}/reject");
    let (a, r) = tokio::join!(
        p.post(&approve, json!({})),
        p.post(&reject, json!({"reason": "no"}))
    );
    let mut statuses = [a.0, r.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        a.1,
        r.1
    );
    let approval = p.store.get_approval(id).await.unwrap().unwrap();
    let written = p.root.join("workspace/hello_cli/hello.py").exists();
    if approval.status == "rejected" {
        assert!(!written, "a rejected call ran");
        assert_eq!(racing.decisions.load(Ordering::SeqCst), 1);
    } else {
        assert_eq!(approval.status, "approved");
        assert!(written);
        assert_eq!(racing.decisions.load(Ordering::SeqCst), 1);
    }
}
