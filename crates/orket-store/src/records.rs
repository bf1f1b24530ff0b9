//! The rows the store keeps, and the patches that change them.

use orket_core::bugfix::Severity;
use orket_core::time::now_timestamp;
use orket_core::tools::{ToolCall, ToolResult};
use orket_core::turn::{Candidate, TurnStep};
use orket_core::{Event, RunKind, RunStatus, Status, WaitReason};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

/// A build: the issue rows one epic (or rock) run works on; an epic build's status is derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// `build-<epic>` or `rock-build-<rock>`.
    pub id: String,
    /// `epic` or `rock`.
    pub kind: String,
    /// The epic's or rock's file stem.
    pub card: String,
    /// The department the card belongs to.
    pub department: String,
    /// The build's status (derived from its issues for epic builds).
    pub status: Status,
    /// When the build was created.
    pub created_at: String,
    /// When the build last changed.
    pub updated_at: String,
}

impl BuildRecord {
    /// A new build in status `ready`, stamped now.
    pub fn new(
        id: impl Into<String>,
        kind: impl Into<String>,
        card: impl Into<String>,
        department: impl Into<String>,
    ) -> Self {
        let now = now_timestamp();
        BuildRecord {
            id: id.into(),
            kind: kind.into(),
            card: card.into(),
            department: department.into(),
            status: Status::Ready,
            created_at: now.clone(),
            updated_at: now,
        }
    }
}

/// An issue of a build, with everything the card file and the run gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueRecord {
    /// The build the issue belongs to.
    pub build_id: String,
    /// The issue id (unique within its build).
    pub id: String,
    /// The run that last worked on it.
    pub session_id: Option<String>,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// `issue`, `story`, `bug`, `task`, ...
    pub issue_type: String,
    /// How bad it is (bugs: `medium` unless `create_issue` or the card says).
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Its lifecycle status.
    pub status: Status,
    /// Its priority (High 3.0, Medium 2.0, Low 1.0).
    pub priority: f64,
    /// The seat it is routed to.
    pub seat: String,
    /// Who holds it.
    pub assignee: Option<String>,
    /// Its sprint label.
    pub sprint: Option<String>,
    /// A free note.
    pub note: Option<String>,
    /// Its requirements text.
    pub requirements: Option<String>,
    /// Why it waits (blocked / waiting_for_developer).
    pub wait_reason: Option<WaitReason>,
    /// Ids of the issues it depends on.
    pub depends_on: Vec<String>,
    /// How many times it was retried.
    pub retry_count: u32,
    /// How many retries it may take.
    pub max_retries: u32,
    /// Its verification block (`null` when it has none).
    pub verification: Value,
    /// Metrics recorded about it (a JSON object).
    pub metrics: Value,
    /// Credits spent on it so far.
    pub credits_spent: f64,
    /// Its parent card.
    pub parent_id: Option<String>,
    /// The department that owns it.
    pub owner_department: String,
    /// Its labels.
    pub labels: Vec<String>,
    /// Free parameters (a JSON object).
    pub params: Value,
    /// Extra read-only roots for tools (the card's `references`).
    pub references: Vec<String>,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

impl IssueRecord {
    /// A new issue with the card defaults: ready, priority 2.0, type `issue`, 3 retries, `core`.
    pub fn new(
        build_id: impl Into<String>,
        id: impl Into<String>,
        name: impl Into<String>,
        seat: impl Into<String>,
    ) -> Self {
        let now = now_timestamp();
        IssueRecord {
            build_id: build_id.into(),
            id: id.into(),
            session_id: None,
            name: name.into(),
            description: String::new(),
            issue_type: "issue".to_string(),
            severity: None,
            status: Status::Ready,
            priority: 2.0,
            seat: seat.into(),
            assignee: None,
            sprint: None,
            note: None,
            requirements: None,
            wait_reason: None,
            depends_on: Vec::new(),
            retry_count: 0,
            max_retries: 3,
            verification: Value::Null,
            metrics: json!({}),
            credits_spent: 0.0,
            parent_id: None,
            owner_department: "core".to_string(),
            labels: Vec::new(),
            params: json!({}),
            references: Vec::new(),
            created_at: now.clone(),
            updated_at: now,
        }
    }
}

impl IssueRecord {
    /// Every stored `(column, value)` of the issue but `position`, in table order.
    pub(crate) fn columns(&self) -> Vec<(&'static str, ColumnValue)> {
        vec![
            ("build_id", self.build_id.to_column()),
            ("id", self.id.to_column()),
            ("session_id", self.session_id.to_column()),
            ("name", self.name.to_column()),
            ("description", self.description.to_column()),
            ("issue_type", self.issue_type.to_column()),
            ("status", self.status.to_column()),
            ("priority", self.priority.to_column()),
            ("seat", self.seat.to_column()),
            ("assignee", self.assignee.to_column()),
            ("sprint", self.sprint.to_column()),
            ("note", self.note.to_column()),
            ("requirements", self.requirements.to_column()),
            ("wait_reason", self.wait_reason.to_column()),
            ("depends_on", self.depends_on.to_column()),
            ("retry_count", self.retry_count.to_column()),
            ("max_retries", self.max_retries.to_column()),
            ("verification", self.verification.to_column()),
            ("metrics", self.metrics.to_column()),
            ("credits_spent", self.credits_spent.to_column()),
            ("parent_id", self.parent_id.to_column()),
            ("owner_department", self.owner_department.to_column()),
            ("labels", self.labels.to_column()),
            ("params", self.params.to_column()),
            ("refs", self.references.to_column()),
            ("created_at", self.created_at.to_column()),
            ("updated_at", self.updated_at.to_column()),
            ("severity", self.severity.to_column()),
        ]
    }
}

/// Reads a present field (even `null`) as `Some(..)`, so a patch can clear a nullable field.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A patch to an issue: only the fields set are written; `Some(None)` clears a nullable field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IssueUpdate {
    /// The role or seat making the change (recorded in the audit row).
    pub actor: String,
    /// Compare-and-set: the update is refused (`Conflict`) unless the stored status is this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<Status>,
    /// New run id.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub session_id: Option<Option<String>>,
    /// New name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New issue type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
    /// New status (audited, and the build's status is derived again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// New priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<f64>,
    /// New seat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    /// New assignee.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub assignee: Option<Option<String>>,
    /// New sprint.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub sprint: Option<Option<String>>,
    /// New note.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub note: Option<Option<String>>,
    /// New requirements.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub requirements: Option<Option<String>>,
    /// New wait reason.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub wait_reason: Option<Option<WaitReason>>,
    /// New dependencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<String>>,
    /// New retry count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u32>,
    /// New retry limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// New verification block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Value>,
    /// New metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Value>,
    /// New credits total (use `Change::AddCredits` to add atomically).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits_spent: Option<f64>,
    /// New parent card.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub parent_id: Option<Option<String>>,
    /// New owning department.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_department: Option<String>,
    /// New labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// New params.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// New references.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<Vec<String>>,
}

/// Builder setters: `field(value)` sets a field; for nullable ones `clear_field()` clears it.
macro_rules! setters {
    ($($field:ident: $ty:ty),* $(,)?) => {$(
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        pub fn $field(mut self, value: impl Into<$ty>) -> Self {
            self.$field = Some(value.into());
            self
        }
    )*};
}

macro_rules! nullable_setters {
    ($($field:ident / $clear:ident: $ty:ty),* $(,)?) => {$(
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        pub fn $field(mut self, value: impl Into<$ty>) -> Self {
            self.$field = Some(Some(value.into()));
            self
        }
        #[doc = concat!("Clears `", stringify!($field), "`.")]
        pub fn $clear(mut self) -> Self {
            self.$field = Some(None);
            self
        }
    )*};
}

impl IssueUpdate {
    /// An empty patch made by `actor` (a role or seat).
    pub fn by(actor: impl Into<String>) -> Self {
        IssueUpdate {
            actor: actor.into(),
            ..IssueUpdate::default()
        }
    }

    /// Refuses the update (`Conflict`) unless the stored status is `status`.
    pub fn expecting(mut self, status: Status) -> Self {
        self.expect_status = Some(status);
        self
    }

    setters!(
        name: String,
        description: String,
        issue_type: String,
        status: Status,
        priority: f64,
        seat: String,
        depends_on: Vec<String>,
        retry_count: u32,
        max_retries: u32,
        verification: Value,
        metrics: Value,
        credits_spent: f64,
        owner_department: String,
        labels: Vec<String>,
        params: Value,
        references: Vec<String>,
    );

    nullable_setters!(
        session_id / clear_session_id: String,
        assignee / clear_assignee: String,
        sprint / clear_sprint: String,
        note / clear_note: String,
        requirements / clear_requirements: String,
        wait_reason / clear_wait_reason: WaitReason,
        parent_id / clear_parent_id: String,
    );

    /// The `(column, value)` pairs this patch writes, in table order.
    pub(crate) fn assignments(&self) -> Vec<(&'static str, ColumnValue)> {
        fn set<T: ToColumn>(
            out: &mut Vec<(&'static str, ColumnValue)>,
            column: &'static str,
            field: &Option<T>,
        ) {
            if let Some(value) = field {
                out.push((column, value.to_column()));
            }
        }
        let mut out = Vec::new();
        set(&mut out, "session_id", &self.session_id);
        set(&mut out, "name", &self.name);
        set(&mut out, "description", &self.description);
        set(&mut out, "issue_type", &self.issue_type);
        set(&mut out, "status", &self.status);
        set(&mut out, "priority", &self.priority);
        set(&mut out, "seat", &self.seat);
        set(&mut out, "assignee", &self.assignee);
        set(&mut out, "sprint", &self.sprint);
        set(&mut out, "note", &self.note);
        set(&mut out, "requirements", &self.requirements);
        set(&mut out, "wait_reason", &self.wait_reason);
        set(&mut out, "depends_on", &self.depends_on);
        set(&mut out, "retry_count", &self.retry_count);
        set(&mut out, "max_retries", &self.max_retries);
        set(&mut out, "verification", &self.verification);
        set(&mut out, "metrics", &self.metrics);
        set(&mut out, "credits_spent", &self.credits_spent);
        set(&mut out, "parent_id", &self.parent_id);
        set(&mut out, "owner_department", &self.owner_department);
        set(&mut out, "labels", &self.labels);
        set(&mut out, "params", &self.params);
        set(&mut out, "refs", &self.references);
        out
    }
}

/// A value as written to a column (JSON fields as their text).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ColumnValue {
    /// SQL NULL.
    Null,
    /// TEXT.
    Text(String),
    /// REAL.
    Real(f64),
    /// INTEGER.
    Int(i64),
}

/// How a field type is stored.
pub(crate) trait ToColumn {
    /// The stored form.
    fn to_column(&self) -> ColumnValue;
}

impl ToColumn for String {
    fn to_column(&self) -> ColumnValue {
        ColumnValue::Text(self.clone())
    }
}

impl ToColumn for f64 {
    fn to_column(&self) -> ColumnValue {
        ColumnValue::Real(*self)
    }
}

impl ToColumn for u32 {
    fn to_column(&self) -> ColumnValue {
        ColumnValue::Int(i64::from(*self))
    }
}

impl ToColumn for Status {
    fn to_column(&self) -> ColumnValue {
        ColumnValue::Text(self.as_str().to_string())
    }
}

impl ToColumn for Severity {
    fn to_column(&self) -> ColumnValue {
        ColumnValue::Text(self.as_str().to_string())
    }
}

impl ToColumn for WaitReason {
    fn to_column(&self) -> ColumnValue {
        ColumnValue::Text(self.as_str().to_string())
    }
}

impl ToColumn for Vec<String> {
    fn to_column(&self) -> ColumnValue {
        ColumnValue::Text(Value::from(self.as_slice()).to_string())
    }
}

impl ToColumn for Value {
    fn to_column(&self) -> ColumnValue {
        ColumnValue::Text(self.to_string())
    }
}

impl<T: ToColumn> ToColumn for Option<T> {
    fn to_column(&self) -> ColumnValue {
        self.as_ref().map_or(ColumnValue::Null, ToColumn::to_column)
    }
}

/// A note an agent left on an issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// Row id (insertion order).
    pub id: i64,
    /// The issue's build.
    pub build_id: String,
    /// The issue.
    pub issue_id: String,
    /// Who wrote it (a role or seat).
    pub author: String,
    /// The text.
    pub content: String,
    /// When it was written.
    pub created_at: String,
}

/// An audit row: one status change (or other card action) and who made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardTransaction {
    /// Row id (order of the changes).
    pub id: i64,
    /// The card's build.
    pub build_id: String,
    /// The card (an issue id, or the epic's stem for derived build statuses).
    pub card_id: String,
    /// Who acted.
    pub role: String,
    /// `status_change`, `report_credits`, `status_derived`.
    pub action: String,
    /// Status before, for status changes.
    pub from_status: Option<Status>,
    /// Status after, for status changes.
    pub to_status: Option<Status>,
    /// Details (the wait reason, the credits added).
    pub detail: Value,
    /// When it happened.
    pub timestamp: String,
}

/// A run (session): one execution of a rock, epic or issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// 8 hex characters.
    pub id: String,
    /// What it executes.
    pub kind: RunKind,
    /// The rock, epic or issue it executes.
    pub target: String,
    /// The build it works on.
    pub build_id: String,
    /// The department of the target.
    pub department: String,
    /// Its workspace directory.
    pub workspace: String,
    /// `running`, then its outcome.
    pub status: RunStatus,
    /// Why it ended as it did.
    pub reason: Option<String>,
    /// Run parameters (a JSON object).
    pub params: Value,
    /// When it started.
    pub started_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When it ended (set with a final status).
    pub ended_at: Option<String>,
    /// When a person asked to halt it (`orket halt`); the run stops at its next turn boundary.
    pub halt_requested_at: Option<String>,
}

impl RunRecord {
    /// A new run in status `running` with empty params, started now.
    pub fn new(
        id: impl Into<String>,
        kind: RunKind,
        target: impl Into<String>,
        build_id: impl Into<String>,
        department: impl Into<String>,
        workspace: impl Into<String>,
    ) -> Self {
        let now = now_timestamp();
        RunRecord {
            id: id.into(),
            kind,
            target: target.into(),
            build_id: build_id.into(),
            department: department.into(),
            workspace: workspace.into(),
            status: RunStatus::Running,
            reason: None,
            params: json!({}),
            started_at: now.clone(),
            updated_at: now,
            ended_at: None,
            halt_requested_at: None,
        }
    }
}

/// A patch to a run; a final status also sets `ended_at` (`running` clears it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunUpdate {
    /// New status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// New reason (`Some(None)` clears it).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub reason: Option<Option<String>>,
    /// New params.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

impl RunUpdate {
    /// A patch that ends (or resumes) the run with `status` and `reason`.
    pub fn finish(status: RunStatus, reason: impl Into<String>) -> Self {
        RunUpdate {
            status: Some(status),
            reason: Some(Some(reason.into())),
            params: None,
        }
    }
}

/// A model turn to append to a run's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTurn {
    /// The run.
    pub run_id: String,
    /// Its position in the run (unique per run).
    pub seq: i64,
    /// The issue's build.
    pub build_id: String,
    /// The issue worked on.
    pub issue_id: String,
    /// The seat that acted.
    pub seat: String,
    /// The role it acted as.
    pub role: String,
    /// The model that answered.
    pub model: String,
    /// True for review turns.
    pub review: bool,
    /// The prompt messages (JSON).
    pub messages: Value,
    /// The model's answer.
    pub content: String,
    /// The parsed tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// Their results, in order (a call the turn stopped before has none).
    pub tool_results: Vec<ToolResult>,
    /// Prompt tokens.
    pub tokens_in: i64,
    /// Completion tokens.
    pub tokens_out: i64,
    /// How the turn ended (`complete`, `failed`, ...).
    pub status: String,
    /// The error, for failed turns.
    pub error: Option<String>,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    pub ended_at: String,
    /// Its steps, in order (a turn stored before steps existed has none).
    #[serde(default)]
    pub steps: Vec<TurnStep>,
    /// The candidates drawn for it, when it drew several.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// The settings it ran with (sampling, step budget, the model profile applied), as JSON.
    #[serde(default)]
    pub settings: Option<Value>,
}

/// A stored turn: its row id and what was appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// Row id.
    pub id: i64,
    /// The turn.
    #[serde(flatten)]
    pub turn: NewTurn,
    /// The ledger hash of the run's turn committed before it ("" for the first), when the
    /// turn was stored with a ledger (see [`crate::ledger`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_hash: Option<String>,
    /// Its ledger hash: its canonical content chained to `prev_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The fleet worker that ran it (`None`: the process that ran the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The run it belongs to, if any.
    pub run_id: Option<String>,
    /// The role it concerns.
    pub role: Option<String>,
    /// The event.
    pub event: Event,
    /// The issue it concerns.
    pub issue_id: Option<String>,
    /// When it happened (`None`: now).
    pub timestamp: Option<String>,
}

impl NewEvent {
    /// `event` of `run_id`, stamped now.
    pub fn new(run_id: Option<&str>, event: Event) -> Self {
        NewEvent {
            run_id: run_id.map(str::to_string),
            role: None,
            event,
            issue_id: None,
            timestamp: Some(now_timestamp()),
        }
    }

    /// The same event concerning `role`.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// The same event concerning issue `id`.
    pub fn issue(mut self, id: impl Into<String>) -> Self {
        self.issue_id = Some(id.into());
        self
    }

    /// The event as stored with row id `id`.
    pub fn stored(self, id: i64) -> EventRecord {
        EventRecord {
            id,
            run_id: self.run_id,
            timestamp: self.timestamp.unwrap_or_else(now_timestamp),
            role: self.role,
            issue_id: self.issue_id,
            event: self.event,
        }
    }
}

/// A stored event. On the wire (`orket show --json`, the WebSocket, `orket.log`):
/// `{id, run_id, timestamp, role, event, issue_id, data}` with `event` the name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "EventWire", try_from = "EventWire")]
pub struct EventRecord {
    /// Row id (order of events).
    pub id: i64,
    /// The run it belongs to, if any.
    pub run_id: Option<String>,
    /// When it happened.
    pub timestamp: String,
    /// The role it concerns.
    pub role: Option<String>,
    /// The issue it concerns.
    pub issue_id: Option<String>,
    /// The event.
    pub event: Event,
}

/// The wire form of an [`EventRecord`].
#[derive(Serialize, Deserialize)]
struct EventWire {
    id: i64,
    run_id: Option<String>,
    timestamp: String,
    role: Option<String>,
    event: String,
    issue_id: Option<String>,
    data: Value,
}

impl From<EventRecord> for EventWire {
    fn from(r: EventRecord) -> Self {
        EventWire {
            id: r.id,
            run_id: r.run_id,
            timestamp: r.timestamp,
            role: r.role,
            event: r.event.name().to_string(),
            issue_id: r.issue_id,
            data: r.event.data(),
        }
    }
}

impl TryFrom<EventWire> for EventRecord {
    type Error = String;

    fn try_from(w: EventWire) -> Result<Self, Self::Error> {
        Ok(EventRecord {
            id: w.id,
            run_id: w.run_id,
            timestamp: w.timestamp,
            role: w.role,
            issue_id: w.issue_id,
            event: Event::from_parts(&w.event, w.data)?,
        })
    }
}

/// A saved snapshot of a run's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Row id.
    pub id: i64,
    /// The run.
    pub run_id: String,
    /// When it was saved.
    pub created_at: String,
    /// The snapshot (JSON).
    pub data: Value,
}

/// A success-ledger row: a run that finished its card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuccessRecord {
    /// Row id.
    pub id: i64,
    /// The run.
    pub run_id: String,
    /// Its build.
    pub build_id: String,
    /// The card it finished.
    pub card: String,
    /// When it was recorded.
    pub recorded_at: String,
    /// Details (JSON).
    pub data: Value,
}

/// A memory entry, with its search score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRecord {
    /// Row id (higher is newer).
    pub id: i64,
    /// What was remembered.
    pub content: String,
    /// Who remembered it.
    pub role: Option<String>,
    /// The issue it came from.
    pub issue_id: Option<String>,
    /// The run it came from.
    pub run_id: Option<String>,
    /// When it was remembered.
    pub created_at: String,
    /// Distinct words shared with the search query (0 outside search results).
    pub score: usize,
}

/// A tool call parked until a person approves or rejects it (`process_rules.approval_required`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApproval {
    /// The run whose turn made the call.
    pub run_id: String,
    /// The issue's build.
    pub build_id: String,
    /// The issue of the turn.
    pub issue_id: String,
    /// The acting role.
    pub role: String,
    /// The seat key that acted.
    pub seat: String,
    /// The tool called.
    pub tool: String,
    /// Its arguments (a JSON object).
    pub args: Value,
    /// The issue's status when the call was parked, restored when it is approved.
    pub resume_status: Status,
}

/// A stored approval and its decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Row id.
    pub id: i64,
    /// The parked call.
    #[serde(flatten)]
    pub call: NewApproval,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// The person's reason (rejections).
    pub reason: Option<String>,
    /// The tool's result, once approved and executed.
    pub result: Option<Value>,
    /// When it was parked.
    pub created_at: String,
    /// When it was decided.
    pub decided_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_writes_only_what_it_sets() {
        let update = IssueUpdate::by("coder")
            .status(Status::Blocked)
            .wait_reason(WaitReason::Dependency)
            .clear_assignee()
            .labels(vec!["a".to_string()]);
        assert_eq!(
            update.assignments(),
            vec![
                ("status", ColumnValue::Text("blocked".into())),
                ("assignee", ColumnValue::Null),
                ("wait_reason", ColumnValue::Text("dependency".into())),
                ("labels", ColumnValue::Text("[\"a\"]".into())),
            ]
        );
        assert!(IssueUpdate::by("coder").assignments().is_empty());
    }

    #[test]
    fn a_patch_keeps_cleared_and_unset_fields_apart_in_json() {
        let update = IssueUpdate::by("coder").clear_note().priority(3.0);
        let text = serde_json::to_string(&update).unwrap();
        assert_eq!(text, r#"{"actor":"coder","priority":3.0,"note":null}"#);
        let back: IssueUpdate = serde_json::from_str(&text).unwrap();
        assert_eq!(back, update);
    }
}

/// What a tick of a run reads, in one unit ([`crate::Store::tick_state`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TickState {
    /// The build's issue version now: the highest version any of its issues has (0 when none).
    pub version: i64,
    /// The build's issues changed after the version asked for (every issue when 0), in
    /// insertion order.
    pub changed: Vec<IssueRecord>,
    /// When a person asked the run to halt, if one did.
    pub halt_requested_at: Option<String>,
}

/// What a turn reads before its model call ([`crate::Store::turn_inputs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnQuery {
    /// The run.
    pub run_id: String,
    /// The build.
    pub build_id: String,
    /// The issue.
    pub issue_id: String,
    /// How many of its latest comments.
    pub comments: usize,
    /// The words remembered decisions are searched with.
    pub memory_query: String,
    /// How many remembered decisions.
    pub memory: usize,
    /// How many of the issue's latest turns in this run (its history).
    pub history: usize,
}

/// The reads of one turn, in one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnInputs {
    /// The issue as stored (`None` when it is gone).
    pub issue: Option<IssueRecord>,
    /// Its latest comments, oldest first.
    pub comments: Vec<Comment>,
    /// Remembered decisions sharing words with the query, best first.
    pub memory: Vec<MemoryRecord>,
    /// Its latest turns in the run, oldest first.
    pub history: Vec<PastTurn>,
}

/// A turn as a later prompt of its issue sees it: what the model replied and what its tool
/// calls returned (not the prompt it was given, the largest column of a turn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastTurn {
    /// Its position in the run.
    pub seq: i64,
    /// A review turn.
    pub review: bool,
    /// The model's replies.
    pub content: String,
    /// Its tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// What they returned.
    pub tool_results: Vec<ToolResult>,
}
