//! Every event Orket records, defined once: [`Event`] is the typed form the engine,
//! the sandboxes, the driver and the server emit and that `orket show`, the server, the
//! WebSocket and the board read. On the wire an event is its name and its data:
//! `{"event": "status_change", "data": {"from": "ready", "to": "in_progress", ...}}` (inside
//! the envelope `{id, run_id, timestamp, role, issue_id, ...}` the store adds). The one list
//! below defines the variants, their wire names, their fields and the descriptions of the
//! generated reference ([`Event::CATALOG`]).

use crate::refusal::RefusalCode;
use crate::run::RunStatus;
use crate::status::{Status, WaitReason};
use crate::tools::ToolResult;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why a turn failed (`turn_failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnFailure {
    /// The gate refused a call: a governance violation.
    Governance,
    /// The model call failed (after its retries).
    Model,
    /// The issue could not be routed to a seat (unknown seat, missing role or dialect).
    Routing,
    /// The turn spent its steps or its corrections without the seat's move.
    Steps,
}

/// Writes `value`'s wire name (a unit variant as serde names it).
fn wire_name(value: &impl Serialize, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => f.write_str(&name),
        _ => f.write_str("?"),
    }
}

impl std::fmt::Display for TurnFailure {
    /// Its wire name (`governance`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        wire_name(self, f)
    }
}

/// Why a step of a turn was answered with a correction instead of going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionKind {
    /// The reply held no tool call.
    NoCall,
    /// The gate refused the call (its code is given).
    Refused,
    /// The tool failed on its own terms (a missing file, a folder read as a file).
    ToolFailed,
    /// The call repeated the previous step's call exactly; it was not run again.
    Repeated,
    /// The call is not a move that can make progress from where the turn is.
    NotLegal,
}

impl std::fmt::Display for CorrectionKind {
    /// Its wire name (`no_call`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        wire_name(self, f)
    }
}

/// One event's entry in the reference: its name, what it means and its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDoc {
    /// The wire name.
    pub name: &'static str,
    /// What it records.
    pub description: &'static str,
    /// Its data's fields: name and type, as written in the code.
    pub fields: &'static [(&'static str, &'static str)],
}

macro_rules! events {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $name:literal {
            $(
                $(#[serde($($fattr:tt)*)])*
                $field:ident : $ty:ty
            ),* $(,)?
        }
    )*) => {
        /// An event, typed. Serialized adjacently tagged: `{"event": NAME, "data": {...}}`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "event", content = "data")]
        pub enum Event {
            $(
                $(#[doc = $doc])*
                #[serde(rename = $name)]
                $variant {
                    $(
                        #[allow(missing_docs)]
                        $(#[serde($($fattr)*)])*
                        $field: $ty,
                    )*
                },
            )*
        }

        impl Event {
            /// Every event of the reference, in its order.
            pub const CATALOG: &'static [EventDoc] = &[$(
                EventDoc {
                    name: $name,
                    description: concat!($($doc),*),
                    fields: &[$((stringify!($field), stringify!($ty))),*],
                },
            )*];

            /// The wire name (`status_change`).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Event::$variant { .. } => $name,)*
                }
            }
        }
    };
}

events! {
    /// A run started (its epic, target issue, workspace and provider).
    SessionStart = "session_start" {
        epic: String,
        #[serde(default)]
        target: Option<String>,
        workspace: String,
        provider: String,
    }
    /// An interrupted run was resumed after its committed turns.
    SessionResumed = "session_resumed" {
        committed_turns: usize,
    }
    /// A run took over its build from a process that is gone or stopped heartbeating (the
    /// run that held it, that process and its last heartbeat).
    BuildTakenOver = "build_taken_over" {
        from_run: String,
        pid: u32,
        host: String,
        heartbeat_at: String,
    }
    /// A fleet run put a turn on its model's queue (`orket run --fleet`): the turn's seq, its
    /// issue and the model whose workers may take it.
    TurnQueued = "turn_queued" {
        seq: i64,
        issue: String,
        model: String,
    }
    /// A fleet run's turn has waited this long with no worker taking it: no worker serving its
    /// model is running (start one with `orket worker --model <model>`). Said once per turn.
    TurnWaiting = "turn_waiting" {
        seq: i64,
        model: String,
        waited_secs: u64,
    }
    /// A worker of the fleet took a turn's job from the queue (`orket worker`): the turn's seq,
    /// the worker and its host, and how many times the job was taken (above 1: redone after a
    /// worker died or lost it).
    TurnClaimed = "turn_claimed" {
        seq: i64,
        worker: String,
        host: String,
        attempt: i32,
    }
    /// A worker's turn was not committed because the worker no longer held its job (paused or
    /// cut off past its lease, and another worker took the job): nothing of the turn was kept.
    TurnCommitRefused = "turn_commit_refused" {
        seq: i64,
        worker: String,
        reason: String,
    }
    /// Orket called Gitea's API for a pull request (the review loop): the call and how it went
    /// (`ok`, `refused: ...`, `failed: ...`), after its retries.
    GiteaCall = "gitea_call" {
        method: String,
        path: String,
        status: Option<u16>,
        attempts: u32,
        outcome: String,
    }
    /// A run ended (its final status, why, and the turns this invocation committed).
    SessionEnd = "session_end" {
        status: RunStatus,
        reason: String,
        turns: usize,
    }
    /// A person asked the run to halt; it stops at its next turn boundary.
    HaltRequested = "halt_requested" {}
    /// The organization loop started (`orket loop`, `POST /v1/loop/start`): the department it
    /// picks from (none: every department), whether it stops once nothing is ready, how long it
    /// sleeps when nothing is, and its budgets for the whole loop and for each card.
    LoopStarted = "loop_started" {
        #[serde(default)]
        department: Option<String>,
        once: bool,
        idle_sleep_secs: u64,
        #[serde(default)]
        token_budget: Option<u64>,
        #[serde(default)]
        time_budget_secs: Option<u64>,
        #[serde(default)]
        card_token_budget: Option<u64>,
        #[serde(default)]
        card_time_budget_secs: Option<u64>,
    }
    /// The loop continues a run a killed process left running (its issue or epic) before it
    /// picks anything.
    LoopResumed = "loop_resumed" {
        run: String,
        target: String,
    }
    /// The loop picked the ready issue with the best critical-path score of every epic it
    /// looks at (its epic and department, the score, how many issues wait on it) and started
    /// its issue run.
    LoopPicked = "loop_picked" {
        issue: String,
        epic: String,
        department: String,
        score: f64,
        downstream: usize,
        run: String,
    }
    /// A run the loop started or resumed ended (its status and the tokens its turns used).
    LoopCardEnded = "loop_card_ended" {
        issue: String,
        run: String,
        status: RunStatus,
        tokens: u64,
    }
    /// An issue whose run ended without finishing it (stalled, failed, over its card budget,
    /// or refused to start) is not picked again until it changes (in the store or in its epic
    /// file), so the loop cannot spin on it.
    LoopSetAside = "loop_set_aside" {
        issue: String,
        epic: String,
        department: String,
        reason: String,
    }
    /// Nothing is ready: the loop sleeps this long between looks (said once per idle stretch;
    /// `set_aside` issues wait for a change, `busy` ready issues for the other run that works
    /// on their build).
    LoopIdle = "loop_idle" {
        sleep_secs: u64,
        set_aside: usize,
        #[serde(default)]
        busy: usize,
    }
    /// The loop's token or time budget ran out (`budget` is `tokens` or `time`); it stops.
    LoopBudgetExceeded = "loop_budget_exceeded" {
        budget: String,
        reason: String,
    }
    /// The loop stopped (its status — `completed` when nothing was left ready with `--once`,
    /// `canceled` when halted, `budget_exceeded`, `failed` — why, the cards it ran and the
    /// tokens they used).
    LoopStopped = "loop_stopped" {
        status: RunStatus,
        reason: String,
        cards: usize,
        tokens: u64,
    }
    /// One tick of the traction loop began with these candidates, in order.
    OrchestratorTick = "orchestrator_tick" {
        tick: usize,
        candidates: Vec<String>,
    }
    /// An issue was handed to a seat.
    OrchestratorDispatch = "orchestrator_dispatch" {
        seat: String,
        review: bool,
        model: String,
    }
    /// Every issue of the epic is done or canceled.
    OrchestratorEpicComplete = "orchestrator_epic_complete" {
        epic: String,
    }
    /// A success-ledger row was recorded for the epic.
    SuccessRecorded = "success_recorded" {
        epic: String,
    }
    /// A model turn began.
    TurnStart = "turn_start" {
        seq: i64,
        seat: String,
    }
    /// A model turn was committed (its calls, the issue's status after it, tokens, notes).
    TurnComplete = "turn_complete" {
        seq: i64,
        calls: usize,
        #[serde(default)]
        status: Option<Status>,
        tokens_in: u64,
        tokens_out: u64,
        #[serde(default)]
        notes: Vec<String>,
    }
    /// A step went wrong and the model was told what and what it may do now (a gate refusal carries its code).
    StepCorrected = "step_corrected" {
        seq: i64,
        step: u32,
        kind: CorrectionKind,
        #[serde(default)]
        code: Option<RefusalCode>,
        message: String,
    }
    /// A turn failed: a gate refusal (with its code), a failed model call, or an issue that cannot be routed.
    TurnFailed = "turn_failed" {
        #[serde(default)]
        seq: Option<i64>,
        kind: TurnFailure,
        #[serde(default)]
        code: Option<RefusalCode>,
        #[serde(alias = "message")]
        error: String,
    }
    /// An issue changed status (from, to, wait reason).
    StatusChange = "status_change" {
        #[serde(default)]
        from: Option<Status>,
        to: Status,
        #[serde(default)]
        wait_reason: Option<WaitReason>,
    }
    /// A failed turn sends the issue back for another attempt.
    RetryTriggered = "retry_triggered" {
        retry_count: u32,
        max_retries: u32,
        error: String,
    }
    /// An issue ran out of retries: blocked as catastrophic, and the run fails.
    CatastrophicFailure = "catastrophic_failure" {
        retries: u32,
        error: String,
    }
    /// A policy violation report was written to the workspace's `agent_output/`.
    PolicyViolationReportSaved = "policy_violation_report_saved" {
        path: String,
        code: RefusalCode,
    }
    /// A review's verification fixture started (its path and limits).
    VerificationStarted = "verification_started" {
        #[serde(default)]
        fixture_path: Option<String>,
        limits: Value,
    }
    /// A review's verification finished (counts, a fatal reason, whether isolation was weaker than asked).
    VerificationCompleted = "verification_completed" {
        #[serde(default)]
        fixture_path: Option<String>,
        ok: bool,
        passed: usize,
        failed: usize,
        total: usize,
        #[serde(default)]
        error: Option<String>,
        isolation_weaker: bool,
        duration_ms: u64,
    }
    /// A fixture path led out of `verification/`: the review fails, the run goes on.
    SecurityViolation = "security_violation" {
        #[serde(default)]
        fixture_path: Option<String>,
        #[serde(default)]
        error: Option<String>,
    }
    /// A reviewer's move to `done` was refused because the verification failed; the issue went back to its developer.
    DoneRefused = "done_refused" {
        code: RefusalCode,
        message: String,
    }
    /// A tool call waits for a person's approval.
    ApprovalRequested = "approval_requested" {
        tool: String,
        args: Map<String, Value>,
    }
    /// A person approved or rejected a parked tool call (with the call's result when it ran).
    ApprovalDecided = "approval_decided" {
        approval: i64,
        tool: String,
        status: String,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        result: Option<ToolResult>,
    }
    /// A model call timed out and is retried.
    ModelTimeoutRetry = "model_timeout_retry" {
        attempt: u32,
        error: String,
    }
    /// A model call could not connect and is retried.
    ModelConnectionRetry = "model_connection_retry" {
        attempt: u32,
        error: String,
    }
    /// An agent nominated a card for attention (`nominate_card`; its arguments as given).
    NominateCard = "nominate_card" {
        #[serde(flatten)]
        args: Map<String, Value>,
    }
    /// An agent proposed a refinement (`refinement_proposal`; its arguments as given).
    RefinementProposal = "refinement_proposal" {
        #[serde(flatten)]
        args: Map<String, Value>,
    }
    /// A sandbox's ports were reserved and its compose file written.
    SandboxCreated = "sandbox_created" {
        sandbox_id: String,
        stack: String,
        ports: Value,
        compose_file: String,
    }
    /// A sandbox deploy failed (the sandbox, or the epic when no sandbox could be made).
    SandboxDeployFailed = "sandbox_deploy_failed" {
        #[serde(default)]
        sandbox_id: Option<String>,
        #[serde(default)]
        epic: Option<String>,
        #[serde(default)]
        stack: Option<String>,
        reason: String,
    }
    /// A sandbox was deployed and is running.
    SandboxDeployed = "sandbox_deployed" {
        sandbox_id: String,
        stack: String,
        ports: Value,
    }
    /// A sandbox's health was checked.
    SandboxHealth = "sandbox_health" {
        sandbox_id: String,
        healthy: bool,
        detail: String,
    }
    /// Stopping a sandbox failed.
    SandboxStopFailed = "sandbox_stop_failed" {
        sandbox_id: String,
        reason: String,
    }
    /// A sandbox was stopped; its ports are free again.
    SandboxStopped = "sandbox_stopped" {
        sandbox_id: String,
        was: String,
    }
    /// The driver applied an action (its reply and the files it wrote).
    DriverAction = "driver_action" {
        action: String,
        reply: String,
        changed_files: Vec<String>,
    }
    /// The driver refused an action (nothing was written).
    DriverActionRefused = "driver_action_refused" {
        #[serde(default)]
        action: Option<String>,
        error: String,
    }
    /// A rock's epics are all done and its bug-fix phase started (the clock's time, and when it
    /// is planned to end).
    BugFixPhaseStarted = "bug_fix_phase_started" {
        rock: String,
        department: String,
        started_at: String,
        planned_end: String,
    }
    /// A rock's bug-fix phase was extended (by 7 days, up to its maximum) on the evidence
    /// given: the discovery rate over the whole days elapsed, and the critical bugs.
    BugFixPhaseExtended = "bug_fix_phase_extended" {
        rock: String,
        planned_end: String,
        extensions: u32,
        days_elapsed: i64,
        bugs_found: u32,
        rate: f64,
        critical_bugs: u32,
        reason: String,
    }
    /// A rock's bug-fix phase reached its planned end: its open bugs (`build/id`) moved to the
    /// next phase's rock (none when no bug was open).
    BugFixPhaseEnded = "bug_fix_phase_ended" {
        rock: String,
        ended_at: String,
        bugs_found: u32,
        critical_bugs: u32,
        open_bugs: Vec<String>,
        #[serde(default)]
        next_rock: Option<String>,
    }
    /// Sent only on the WebSocket, never stored: the client fell behind and missed this many events.
    Lagged = "lagged" {
        skipped: u64,
    }
}

/// An event equals its wire name (`event == "status_change"`).
impl PartialEq<&str> for Event {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl Event {
    /// The data of the event (its fields as a JSON object).
    pub fn data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => map.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// The event named `name` with `data`, as stored; an error says what does not fit.
    pub fn from_parts(name: &str, data: Value) -> Result<Event, String> {
        let mut tagged = Map::new();
        tagged.insert("event".to_string(), Value::String(name.to_string()));
        tagged.insert("data".to_string(), data);
        serde_json::from_value(Value::Object(tagged)).map_err(|e| format!("event \"{name}\": {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for doc in Event::CATALOG {
            assert!(seen.insert(doc.name), "{} twice", doc.name);
            assert!(!doc.description.is_empty(), "{}", doc.name);
        }
        let event = Event::StatusChange {
            from: Some(Status::Ready),
            to: Status::InProgress,
            wait_reason: None,
        };
        assert_eq!(event.name(), "status_change");
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"event": "status_change", "data": {"from": "ready", "to": "in_progress", "wait_reason": null}})
        );
        assert_eq!(Event::from_parts(event.name(), event.data()), Ok(event));
    }

    #[test]
    fn stored_shapes_of_earlier_versions_still_read() {
        // A governance failure wrote `message`, a model failure `error`.
        let old = Event::from_parts(
            "turn_failed",
            json!({"seq": 3, "kind": "governance", "code": "PATH_ESCAPE", "message": "no"}),
        )
        .unwrap();
        assert_eq!(
            old,
            Event::TurnFailed {
                seq: Some(3),
                kind: TurnFailure::Governance,
                code: Some(RefusalCode::PathEscape),
                error: "no".to_string()
            }
        );
        let model = Event::from_parts("turn_failed", json!({"kind": "model", "error": "timeout"}));
        assert!(model.is_ok(), "{model:?}");
        // Free-form events keep their arguments as the data.
        let nominated =
            Event::from_parts("nominate_card", json!({"card": "A-1", "why": "fast"})).unwrap();
        assert_eq!(nominated.data(), json!({"card": "A-1", "why": "fast"}));
        assert!(Event::from_parts("no_such_event", json!({}))
            .unwrap_err()
            .contains("no_such_event"));
        assert!(Event::from_parts("turn_start", json!({"seat": 1})).is_err());
    }

    #[test]
    fn the_catalog_lists_fields_as_written() {
        let doc = Event::CATALOG
            .iter()
            .find(|d| d.name == "session_end")
            .unwrap();
        assert_eq!(
            doc.fields,
            &[
                ("status", "RunStatus"),
                ("reason", "String"),
                ("turns", "usize")
            ]
        );
        assert_eq!(Event::HaltRequested {}.data(), json!({}));
    }
}
