//! The driver: a person talks to an operations-lead model that answers with one
//! structured action, and the action edits the asset tree.
//!
//! [`Driver::handle`] compiles a system prompt describing the organization (departments, teams
//! with their seats, environments, epics with their issues, rocks), sends it with the
//! conversation and a JSON schema that admits exactly one action ([`driver_schema`]: a `oneOf`
//! per action, so a provider with constrained decoding only produces legal actions), parses the
//! reply ([`parse_action`]), validates it against the tree and applies it.
//!
//! Every write stays under the project's own `model/` or `config/` (names are single path
//! components, a linked file is never written, a folder that leads elsewhere through a link is
//! refused), is atomic (`orket_governance::file_tools`'s temporary file renamed over the target), keeps the file's other fields (the JSON is edited as a `serde_json::Value`) and is
//! re-loaded with the asset loader afterwards: when the asset no longer loads, the original is
//! put back and the action is refused with the loader's error. A refused action writes nothing.
//!
//! Choices: `assign_team` is refused when the epic's issues use seats the new team lacks;
//! `turn_directive` appends the directive to the issue's `note` (which the turn prompt shows as
//! `NOTE:`), in the epic file and, when the driver has a store, in the issue's row of the epic's
//! build; `adopt_issue` is refused when the issue depends on issues that stay behind or issues
//! that stay behind depend on it (store rows already seeded are not moved).

#![forbid(unsafe_code)]

use orket_core::assets::diag::{at, idx};
use orket_core::assets::reader::{as_object, Reader};
use orket_core::assets::{
    is_plain_name, AssetError, AssetTree, Category, Epic, IssueSpec, Organization,
};
use orket_core::priority::parse_priority;
use orket_core::tools::MIN_SUMMARY_CHARS;
use orket_core::Event;
use orket_governance::confine::{Access, ProjectFolders, Rules};
use orket_governance::file_tools::write_atomically;
use orket_llm::{ChatMessage, ModelRequest, Provider, ProviderError, RetryPolicy, Retrying};
use orket_store::events::Recorder;
use orket_store::{IssueUpdate, NewEvent, Store};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The folders of the project the driver writes to.
const WRITABLE_FOLDERS: [&str; 2] = ["model", "config"];
/// How it writes there: relative names, no dotfiles, never through a link.
const WRITE_RULES: Rules = Rules {
    no_linked_files: true,
    ..Rules::PROJECT
};

/// The issue id the driver's model calls carry (the replay key of recorded driver replies).
pub const DRIVER_ISSUE_ID: &str = "driver";
/// The role the driver's model calls carry (the replay key of recorded driver replies).
pub const DRIVER_ROLE: &str = "operations_lead";
/// The actions the driver's model may answer with.
const ACTIONS: [&str; 7] = [
    "create_issue",
    "create_epic",
    "create_rock",
    "assign_team",
    "turn_directive",
    "adopt_issue",
    "reply",
];

/// How the driver calls its model.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// The model; `None`: the organization's `process_rules.default_llm`, else `default`.
    pub model: Option<String>,
    /// The department new assets go to and names are looked up in first (`core`).
    pub department: String,
    /// How long one model call may take.
    pub timeout: Duration,
    /// The most tokens a reply may have.
    pub max_tokens: Option<u32>,
    /// How a failed model call is retried.
    pub retry: RetryPolicy,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            model: None,
            department: "core".to_string(),
            timeout: Duration::from_secs(300),
            max_tokens: Some(512),
            retry: RetryPolicy::default(),
        }
    }
}

/// What one driver message did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriverOutcome {
    /// The action applied (`create_epic`, ..., or `reply`).
    pub action: String,
    /// The model's message (`reply`) or what the action did, for a person.
    pub reply: String,
    /// The files written, relative to the project root with `/` separators.
    pub changed_files: Vec<String>,
    /// The model's raw reply (kept for the conversation's history).
    #[serde(skip)]
    pub model_reply: String,
}

/// Why a driver message did not apply an action.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriverError {
    /// The model call failed (after retries for timeouts and connection errors).
    #[error("the model call failed: {0}")]
    Model(ProviderError),
    /// The model's reply is not one action.
    #[error("the model's reply is not an action: {message}")]
    BadReply {
        /// What is wrong with it.
        message: String,
        /// The reply as received.
        model_reply: String,
    },
    /// The action was refused by validation; nothing was written. The message names the
    /// action, the field and, where one is concerned, the file.
    #[error("{message}")]
    Refused {
        /// The action refused.
        action: String,
        /// Why.
        message: String,
    },
    /// Reading or writing the tree failed (nothing is left half-written).
    #[error("{0}")]
    Io(String),
}

/// One action of the driver's model, with its arguments checked for shape (not yet against
/// the tree).
#[derive(Debug, Clone, PartialEq)]
pub enum DriverAction {
    /// A plain answer; no edit.
    Reply {
        /// The message for the person.
        message: String,
    },
    /// A new epic file.
    CreateEpic {
        /// Its department (default: the driver's).
        department: Option<String>,
        /// Its name (the file stem).
        name: String,
        /// The team working on it.
        team: String,
        /// Its environment (default: the first one of the department).
        environment: Option<String>,
        /// What it delivers.
        description: Option<String>,
        /// Its first issues.
        issues: Vec<NewIssue>,
    },
    /// A new issue appended to an epic.
    CreateIssue {
        /// The epic's name.
        epic: String,
        /// The issue.
        issue: NewIssue,
    },
    /// A new rock file.
    CreateRock {
        /// Its department (default: the driver's).
        department: Option<String>,
        /// Its name (the file stem).
        name: String,
        /// Its epics, in order.
        epics: Vec<String>,
        /// What it is to achieve.
        description: Option<String>,
    },
    /// An epic's team changes.
    AssignTeam {
        /// The epic.
        epic: String,
        /// The new team.
        team: String,
    },
    /// A directive the next turn of an issue sees (in its `note`).
    TurnDirective {
        /// The issue's id.
        issue: String,
        /// The directive.
        directive: String,
        /// The issue's epic, when the id is not unique.
        epic: Option<String>,
    },
    /// An issue moves from one epic to another.
    AdoptIssue {
        /// The issue's id.
        issue: String,
        /// The epic it is in (default: the one epic holding it).
        from_epic: Option<String>,
        /// The epic it moves to.
        to_epic: String,
    },
}

impl DriverAction {
    /// The action's name (`create_epic`).
    pub fn name(&self) -> &'static str {
        match self {
            DriverAction::Reply { .. } => "reply",
            DriverAction::CreateEpic { .. } => "create_epic",
            DriverAction::CreateIssue { .. } => "create_issue",
            DriverAction::CreateRock { .. } => "create_rock",
            DriverAction::AssignTeam { .. } => "assign_team",
            DriverAction::TurnDirective { .. } => "turn_directive",
            DriverAction::AdoptIssue { .. } => "adopt_issue",
        }
    }
}

/// An issue to create (`create_issue`, or one of `create_epic`'s `issues`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssue {
    /// Its name.
    pub summary: String,
    /// The seat working on it.
    pub seat: String,
    /// Its priority as given (`High`, `Medium`, `Low` or a number).
    pub priority: Option<Value>,
    /// Ids of issues of the same epic it waits for (in `create_epic`: also summaries of
    /// issues of the same list).
    pub depends_on: Vec<String>,
    /// What it is about.
    pub description: Option<String>,
}

/// Talks to an operations-lead model and applies its actions to an asset tree.
pub struct Driver {
    tree: AssetTree,
    provider: Arc<dyn Provider>,
    options: DriverOptions,
    /// Records the driver's events (and reaches the store for `turn_directive`), when set.
    recorder: Option<Recorder>,
}

impl Driver {
    /// A driver of the tree `tree` calling `provider`.
    pub fn new(tree: AssetTree, provider: Arc<dyn Provider>, options: DriverOptions) -> Self {
        Driver {
            tree,
            provider,
            options,
            recorder: None,
        }
    }

    /// Records `driver_action` / `driver_action_refused` events (without a run) with
    /// `recorder` (its store, and its bus), and lets `turn_directive` reach the issue's row in
    /// its epic's build.
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// [`Driver::with_recorder`] for a store alone (nobody listens to its events live).
    pub fn with_store(self, store: Arc<dyn Store>) -> Self {
        self.with_recorder(Recorder::for_store(store))
    }

    /// One message of the person, after `history` (earlier user and assistant messages): the
    /// model's action, applied to the tree, and the event recorded.
    pub async fn handle(
        &self,
        history: &[ChatMessage],
        message: &str,
    ) -> Result<DriverOutcome, DriverError> {
        let org = self.tree.organization().unwrap_or_default();
        let model = self
            .options
            .model
            .clone()
            .or_else(|| org.rule_str("default_llm").map(str::to_string))
            .unwrap_or_else(|| "default".to_string());
        let facts = self.facts();
        let mut messages = vec![ChatMessage::system(system_prompt(&org, &facts))];
        messages.extend(history.iter().cloned());
        messages.push(ChatMessage::user(message));
        let request = ModelRequest {
            model,
            messages,
            temperature: 0.0,
            seed: Some(42),
            timeout: self.options.timeout,
            max_tokens: self.options.max_tokens,
            top_p: None,
            context_window: None,
            tool_schema: Some(driver_schema(&facts)),
            issue_id: DRIVER_ISSUE_ID.to_string(),
            role: DRIVER_ROLE.to_string(),
        };
        let reply = Retrying::new(Arc::clone(&self.provider), self.options.retry)
            .complete(&request)
            .await
            .map_err(DriverError::Model)?;
        let action = match parse_action(&reply.content) {
            Ok(action) => action,
            Err(err) => {
                self.record(Event::DriverActionRefused {
                    action: None,
                    error: err.to_string(),
                })
                .await;
                return Err(err);
            }
        };
        let mut outcome = self.apply_and_record(&action).await?;
        outcome.model_reply = reply.content;
        Ok(outcome)
    }

    /// Applies `action` and records the `driver_action` or `driver_action_refused` event.
    async fn apply_and_record(&self, action: &DriverAction) -> Result<DriverOutcome, DriverError> {
        match self.apply(action).await {
            Ok(outcome) => {
                if let DriverAction::TurnDirective { issue, epic, .. } = action {
                    self.directive_to_store(issue, epic.as_deref()).await;
                }
                self.record(Event::DriverAction {
                    action: outcome.action.clone(),
                    reply: outcome.reply.clone(),
                    changed_files: outcome.changed_files.clone(),
                })
                .await;
                Ok(outcome)
            }
            Err(err) => {
                self.record(Event::DriverActionRefused {
                    action: Some(action.name().to_string()),
                    error: err.to_string(),
                })
                .await;
                Err(err)
            }
        }
    }

    /// Records an event without a run (when there is a recorder) and publishes it.
    async fn record(&self, event: Event) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let name = event.name();
        let event = NewEvent::new(None, event).role(DRIVER_ROLE);
        if let Err(e) = recorder.record(vec![event]).await {
            tracing::warn!("cannot record the {name} event: {e}");
        }
    }

    /// A directive also reaches the issue's row in its epic's build (a continued build reads
    /// the note from the store, not from the file).
    async fn directive_to_store(&self, issue: &str, epic: Option<&str>) {
        let Some(store) = self.recorder.as_ref().map(Recorder::store) else {
            return;
        };
        let Ok((_, epic, index)) = self.issue_home(issue, epic, "issue", "epic") else {
            return;
        };
        let Some(note) = epic.issues[index].card.note.clone() else {
            return;
        };
        let build = orket_core::ids::epic_build_id(&epic.stem);
        if let Ok(Some(_)) = store.get_issue(&build, issue).await {
            if let Err(e) = store
                .update_issue(&build, issue, IssueUpdate::by(DRIVER_ROLE).note(note))
                .await
            {
                tracing::warn!("cannot write the directive to issue {issue} of {build}: {e}");
            }
        }
    }

    /// Validates `action` against the tree and applies it. A refusal writes nothing.
    async fn apply(&self, action: &DriverAction) -> Result<DriverOutcome, DriverError> {
        let outcome = match action {
            DriverAction::Reply { message } => Ok(DriverOutcome {
                action: "reply".to_string(),
                reply: message.clone(),
                changed_files: Vec::new(),
                model_reply: String::new(),
            }),
            DriverAction::CreateEpic {
                department,
                name,
                team,
                environment,
                description,
                issues,
            } => {
                self.create_epic(
                    department.as_deref(),
                    name,
                    team,
                    environment.as_deref(),
                    description.as_deref(),
                    issues,
                )
                .await
            }
            DriverAction::CreateIssue { epic, issue } => self.create_issue(epic, issue).await,
            DriverAction::CreateRock {
                department,
                name,
                epics,
                description,
            } => {
                self.create_rock(department.as_deref(), name, epics, description.as_deref())
                    .await
            }
            DriverAction::AssignTeam { epic, team } => self.assign_team(epic, team).await,
            DriverAction::TurnDirective {
                issue,
                directive,
                epic,
            } => self.turn_directive(issue, directive, epic.as_deref()).await,
            DriverAction::AdoptIssue {
                issue,
                from_epic,
                to_epic,
            } => self.adopt_issue(issue, from_epic.as_deref(), to_epic).await,
        };
        outcome.map_err(|e| match e {
            Fail::Refused(message) => DriverError::Refused {
                action: action.name().to_string(),
                message: format!("{}: {message}", action.name()),
            },
            Fail::Io(message) => DriverError::Io(format!("{}: {message}", action.name())),
        })
    }

    // ---- the actions -------------------------------------------------------------------

    async fn create_epic(
        &self,
        department: Option<&str>,
        name: &str,
        team_name: &str,
        environment: Option<&str>,
        description: Option<&str>,
        issues: &[NewIssue],
    ) -> Result<DriverOutcome, Fail> {
        let dept = self.new_asset(Category::Epics, name, department)?;
        let team = self.team(team_name, &dept)?;
        let environment = match environment {
            Some(env) => {
                plain("environment", env)?;
                match self.tree.load_environment(env, &dept) {
                    Ok(_) => env.to_string(),
                    Err(AssetError::NotFound { .. }) => {
                        return refuse(format!(
                            "environment: unknown environment \"{env}\" (environments: {})",
                            list_or_none(&self.tree.list(Category::Environments, &dept))
                        ))
                    }
                    Err(e) => return refuse(format!("environment: {e}")),
                }
            }
            None => match self.tree.list(Category::Environments, &dept).first() {
                Some(env) => env.clone(),
                None => return refuse("environment: required (the project has no environment)"),
            },
        };
        let mut taken = self.all_issue_ids();
        let mut ids: Vec<String> = Vec::new();
        for _ in issues {
            let id = next_issue_id(&ids, &taken);
            taken.insert(id.clone());
            ids.push(id);
        }
        let mut written = Vec::new();
        for (i, issue) in issues.iter().enumerate() {
            let field = format!("issues[{i}]");
            let depends_on = issue
                .depends_on
                .iter()
                .map(|dep| {
                    ids.iter()
                        .zip(issues)
                        .find(|(id, other)| *id == dep || other.summary == *dep)
                        .map(|(id, _)| id.clone())
                        .ok_or_else(|| {
                            Fail::Refused(format!(
                                "{field}.depends_on: \"{dep}\" is neither the id nor the summary of another issue of the new epic"
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            written.push(issue_object(&ids[i], issue, &team, &depends_on, &field)?);
        }
        let mut epic = Map::new();
        epic.insert("name".into(), json!(name));
        if let Some(d) = description.filter(|d| !d.trim().is_empty()) {
            epic.insert("description".into(), json!(d));
        }
        epic.insert("team".into(), json!(team.name));
        epic.insert("environment".into(), json!(environment));
        epic.insert("issues".into(), Value::Array(written));
        let changed = self
            .write_new(Category::Epics, name, &dept, Value::Object(epic))
            .await?;
        Ok(outcome(
            "create_epic",
            format!(
                "created epic {name} for team {} with {} issue(s) in {}",
                team.name,
                issues.len(),
                changed.join(", ")
            ),
            changed,
        ))
    }

    async fn create_issue(&self, epic_name: &str, issue: &NewIssue) -> Result<DriverOutcome, Fail> {
        let (path, epic) = self.epic(epic_name, "epic")?;
        let team = self.team(&epic.team, &epic.department)?;
        let known: Vec<&str> = epic.issues.iter().map(|i| i.card.id.as_str()).collect();
        for (i, dep) in issue.depends_on.iter().enumerate() {
            if !known.contains(&dep.as_str()) {
                return refuse(format!(
                    "depends_on[{i}]: \"{dep}\" is not an issue of epic \"{}\" (issues: {})",
                    epic.stem,
                    list_or_none(&known)
                ));
            }
        }
        let epic_ids: Vec<String> = known.iter().map(|s| s.to_string()).collect();
        let id = next_issue_id(&epic_ids, &self.all_issue_ids());
        let object = issue_object(&id, issue, &team, &issue.depends_on, "")?;
        let mut value = self.read_value(&path)?;
        push_issue(&mut value, &epic.issues_key, object)?;
        let changed = self.commit_epic(path, value, &epic).await?;
        Ok(outcome(
            "create_issue",
            format!(
                "created issue {id} \"{}\" for seat {} in epic {} ({})",
                issue.summary.trim(),
                issue.seat,
                epic.stem,
                changed.join(", ")
            ),
            changed,
        ))
    }

    async fn create_rock(
        &self,
        department: Option<&str>,
        name: &str,
        epics: &[String],
        description: Option<&str>,
    ) -> Result<DriverOutcome, Fail> {
        let dept = self.new_asset(Category::Rocks, name, department)?;
        if epics.is_empty() {
            return refuse("epics: a rock needs at least one epic");
        }
        let mut entries = Vec::new();
        for (i, epic) in epics.iter().enumerate() {
            plain(&format!("epics[{i}]"), epic)?;
            match self.tree.find(Category::Epics, epic, &dept) {
                Ok(path) => {
                    let rel = self.tree.relative(&path);
                    let epic_dept = match rel.split('/').collect::<Vec<_>>().as_slice() {
                        ["model", d, "epics", _] => (*d).to_string(),
                        _ => dept.clone(),
                    };
                    entries.push(json!({"epic": epic, "department": epic_dept}));
                }
                Err(_) => {
                    return refuse(format!(
                        "epics[{i}]: unknown epic \"{epic}\" (epics: {})",
                        list_or_none(&self.tree.list(Category::Epics, &dept))
                    ))
                }
            }
        }
        let mut rock = Map::new();
        rock.insert("name".into(), json!(name));
        if let Some(d) = description.filter(|d| !d.trim().is_empty()) {
            rock.insert("description".into(), json!(d));
        }
        rock.insert("owner_department".into(), json!(dept));
        rock.insert("epics".into(), Value::Array(entries));
        let changed = self
            .write_new(Category::Rocks, name, &dept, Value::Object(rock))
            .await?;
        Ok(outcome(
            "create_rock",
            format!(
                "created rock {name} with epics {} in {}",
                epics.join(", "),
                changed.join(", ")
            ),
            changed,
        ))
    }

    async fn assign_team(&self, epic_name: &str, team_name: &str) -> Result<DriverOutcome, Fail> {
        let (path, epic) = self.epic(epic_name, "epic")?;
        let team = self.team(team_name, &epic.department)?;
        let missing: BTreeSet<&str> = epic
            .issues
            .iter()
            .filter(|i| team.seat(&i.seat).is_none())
            .map(|i| i.seat.as_str())
            .collect();
        if !missing.is_empty() {
            return refuse(format!(
                "team: team \"{}\" lacks the seat(s) {} that issues of epic \"{}\" use (its seats: {})",
                team.name,
                missing.into_iter().collect::<Vec<_>>().join(", "),
                epic.stem,
                seat_list(&team)
            ));
        }
        if epic.team == team.name {
            return Ok(outcome(
                "assign_team",
                format!(
                    "epic {} already has team {}; nothing changed",
                    epic.stem, team.name
                ),
                Vec::new(),
            ));
        }
        let mut value = self.read_value(&path)?;
        set_field(&mut value, "team", json!(team.name))?;
        let changed = self.commit_epic(path, value, &epic).await?;
        Ok(outcome(
            "assign_team",
            format!(
                "epic {} now has team {} (was {}) in {}",
                epic.stem,
                team.name,
                epic.team,
                changed.join(", ")
            ),
            changed,
        ))
    }

    async fn turn_directive(
        &self,
        issue: &str,
        directive: &str,
        epic_name: Option<&str>,
    ) -> Result<DriverOutcome, Fail> {
        if directive.trim().is_empty() {
            return refuse("directive: must not be empty");
        }
        let (path, epic, index) = self.issue_home(issue, epic_name, "issue", "epic")?;
        let mut value = self.read_value(&path)?;
        let object = issue_at(&mut value, &epic.issues_key, index)?;
        let note = match object.get("note").and_then(Value::as_str) {
            Some(old) if !old.trim().is_empty() => {
                format!("{}\n{}", old.trim_end(), directive.trim())
            }
            _ => directive.trim().to_string(),
        };
        object.insert("id".into(), json!(issue));
        object.insert("note".into(), json!(note));
        let changed = self.commit_epic(path, value, &epic).await?;
        Ok(outcome(
            "turn_directive",
            format!(
                "the next turn of issue {issue} (epic {}) will see the directive in its note ({})",
                epic.stem,
                changed.join(", ")
            ),
            changed,
        ))
    }

    async fn adopt_issue(
        &self,
        issue: &str,
        from_epic: Option<&str>,
        to_epic: &str,
    ) -> Result<DriverOutcome, Fail> {
        let (to_path, to) = self.epic(to_epic, "to_epic")?;
        let (from_path, from, index) = self.issue_home(issue, from_epic, "issue", "from_epic")?;
        if from_path == to_path {
            return refuse(format!(
                "to_epic: issue {issue} is already in epic \"{}\"",
                to.stem
            ));
        }
        let spec: &IssueSpec = &from.issues[index];
        let team = self.team(&to.team, &to.department)?;
        if team.seat(&spec.seat).is_none() {
            return refuse(format!(
                "to_epic: seat \"{}\" of issue {issue} is not a seat of team \"{}\" of epic \"{}\" (seats: {})",
                spec.seat,
                team.name,
                to.stem,
                seat_list(&team)
            ));
        }
        if to.issue(issue).is_some() {
            return refuse(format!(
                "issue: epic \"{}\" already has an issue with id {issue}",
                to.stem
            ));
        }
        if !spec.depends_on.is_empty() {
            return refuse(format!(
                "issue: {issue} depends on {} of epic \"{}\", which would stay behind; move or drop those dependencies first",
                spec.depends_on.join(", "),
                from.stem
            ));
        }
        let dependents: Vec<&str> = from
            .issues
            .iter()
            .filter(|i| i.depends_on.iter().any(|d| d == issue))
            .map(|i| i.card.id.as_str())
            .collect();
        if !dependents.is_empty() {
            return refuse(format!(
                "issue: {} of epic \"{}\" depend(s) on {issue}; they would be left with a dependency on another epic",
                dependents.join(", "),
                from.stem
            ));
        }
        let mut from_value = self.read_value(&from_path)?;
        let mut moved = issue_at(&mut from_value, &from.issues_key, index)?.clone();
        moved.insert("id".into(), json!(issue));
        remove_issue(&mut from_value, &from.issues_key, index)?;
        let mut to_value = self.read_value(&to_path)?;
        push_issue(&mut to_value, &to.issues_key, Value::Object(moved))?;
        let changed = self
            .commit(
                vec![(from_path, from_value), (to_path, to_value)],
                &[
                    (Category::Epics, &from.stem, &from.department),
                    (Category::Epics, &to.stem, &to.department),
                ],
            )
            .await?;
        Ok(outcome(
            "adopt_issue",
            format!(
                "moved issue {issue} from epic {} to epic {} ({})",
                from.stem,
                to.stem,
                changed.join(", ")
            ),
            changed,
        ))
    }

    // ---- lookups -----------------------------------------------------------------------

    /// The department of a new epic or rock `name`, which must be a plain name no layer of
    /// the tree has yet (assets are never overwritten).
    fn new_asset(
        &self,
        category: Category,
        name: &str,
        department: Option<&str>,
    ) -> Result<String, Fail> {
        plain("name", name)?;
        let dept = self.department(department)?;
        match self.tree.find(category, name, &dept) {
            Ok(existing) => refuse(format!(
                "name: {category} \"{name}\" already exists ({}); {category}s are never overwritten",
                self.tree.relative(&existing)
            )),
            Err(_) => Ok(dept),
        }
    }

    /// The department of a new asset: given (plain, known) or the driver's.
    fn department(&self, given: Option<&str>) -> Result<String, Fail> {
        let dept = given
            .filter(|d| !d.trim().is_empty())
            .unwrap_or(&self.options.department)
            .to_string();
        plain("department", &dept)?;
        let known = self.tree.departments();
        let org_known = self
            .tree
            .organization()
            .map(|o| o.departments)
            .unwrap_or_default();
        if known.contains(&dept) || org_known.contains(&dept) {
            Ok(dept)
        } else {
            refuse(format!(
                "department: unknown department \"{dept}\" (departments: {})",
                known.join(", ")
            ))
        }
    }

    fn team(&self, name: &str, dept: &str) -> Result<orket_core::assets::Team, Fail> {
        plain("team", name)?;
        match self.tree.load_team(name, dept) {
            Ok(team) => Ok(team),
            Err(AssetError::NotFound { .. }) => refuse(format!(
                "team: unknown team \"{name}\" (teams: {})",
                list_or_none(&self.tree.list(Category::Teams, dept))
            )),
            Err(e) => refuse(format!("team: team \"{name}\" does not load: {e}")),
        }
    }

    /// An existing epic: its file and its loaded form. `field` names the argument.
    fn epic(&self, name: &str, field: &str) -> Result<(PathBuf, Epic), Fail> {
        plain(field, name)?;
        let mut depts = vec![self.options.department.clone()];
        depts.extend(self.tree.departments());
        for dept in &depts {
            if let Ok(path) = self.tree.find(Category::Epics, name, dept) {
                return match self.tree.load_epic(name, dept) {
                    Ok(epic) => Ok((path, epic)),
                    Err(e) => refuse(format!(
                        "{field}: epic \"{name}\" ({}) does not load: {e}",
                        self.tree.relative(&path)
                    )),
                };
            }
        }
        refuse(format!(
            "{field}: unknown epic \"{name}\" (epics: {})",
            list_or_none(
                &self
                    .all_epics()
                    .iter()
                    .map(|e| e.stem.as_str())
                    .collect::<Vec<_>>()
            )
        ))
    }

    /// Every epic of the tree that loads (config/ and every department), each file once.
    fn all_epics(&self) -> Vec<Epic> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let root = self.tree.root();
        let mut dirs = vec![(
            root.join("config").join("epics"),
            self.options.department.clone(),
        )];
        for dept in self.tree.departments() {
            dirs.push((root.join("model").join(&dept).join("epics"), dept));
        }
        for (dir, dept) in dirs {
            for stem in json_stems(&dir) {
                if let Ok(epic) = self.tree.load_epic(&stem, &dept) {
                    if seen.insert(epic.file.clone()) {
                        out.push(epic);
                    }
                }
            }
        }
        out
    }

    fn all_issue_ids(&self) -> BTreeSet<String> {
        self.all_epics()
            .iter()
            .flat_map(|e| e.issues.iter().map(|i| i.card.id.clone()))
            .collect()
    }

    /// The epic holding issue `id` (in `epic` when given): its file, the epic and the issue's
    /// index in it.
    fn issue_home(
        &self,
        id: &str,
        epic: Option<&str>,
        field: &str,
        epic_field: &str,
    ) -> Result<(PathBuf, Epic, usize), Fail> {
        if id.trim().is_empty() {
            return refuse(format!("{field}: required (an issue id)"));
        }
        if let Some(name) = epic.filter(|e| !e.trim().is_empty()) {
            let (path, epic) = self.epic(name, epic_field)?;
            return match epic.issues.iter().position(|i| i.card.id == id) {
                Some(index) => Ok((path, epic, index)),
                None => refuse(format!(
                    "{field}: \"{id}\" is not an issue of epic \"{}\" (issues: {})",
                    epic.stem,
                    list_or_none(
                        &epic
                            .issues
                            .iter()
                            .map(|i| i.card.id.as_str())
                            .collect::<Vec<_>>()
                    )
                )),
            };
        }
        let mut holders: Vec<Epic> = self
            .all_epics()
            .into_iter()
            .filter(|e| e.issue(id).is_some())
            .collect();
        if holders.len() > 1 {
            let names: Vec<&str> = holders.iter().map(|e| e.stem.as_str()).collect();
            return refuse(format!(
                "{field}: issue \"{id}\" is in several epics ({}); name the epic with {epic_field}",
                names.join(", ")
            ));
        }
        let Some((epic, index)) = holders.pop().and_then(|epic| {
            let index = epic.issues.iter().position(|i| i.card.id == id)?;
            Some((epic, index))
        }) else {
            return refuse(format!("{field}: unknown issue \"{id}\" (no epic has it)"));
        };
        let path = self.tree.root().join(&epic.file);
        Ok((path, epic, index))
    }

    /// What the prompt and the schema tell the model about the tree now (see
    /// [`driver_schema`]).
    pub fn facts(&self) -> Facts {
        let dept = &self.options.department;
        let departments = self.tree.departments();
        let mut teams = Vec::new();
        for name in self.tree.list(Category::Teams, dept) {
            if let Ok(team) = self.tree.load_team(&name, dept) {
                teams.push((name, team));
            }
        }
        Facts {
            departments,
            teams,
            environments: self.tree.list(Category::Environments, dept),
            epics: self.all_epics(),
            rocks: self
                .tree
                .list(Category::Rocks, dept)
                .into_iter()
                .filter_map(|r| self.tree.load_rock(&r, dept).ok())
                .collect(),
        }
    }

    // ---- writing -----------------------------------------------------------------------

    /// Writes the new asset `model/<dept>/<category>/<name>.json` and loads it again.
    async fn write_new(
        &self,
        category: Category,
        name: &str,
        dept: &str,
        value: Value,
    ) -> Result<Vec<String>, Fail> {
        let path = self
            .tree
            .root()
            .join("model")
            .join(dept)
            .join(category.dir())
            .join(format!("{name}.json"));
        self.commit(vec![(path, value)], &[(category, name, dept)])
            .await
    }

    fn read_value(&self, path: &Path) -> Result<Value, Fail> {
        let rel = self.tree.relative(path);
        let text = std::fs::read_to_string(path)
            .map_err(|e| Fail::Io(format!("{rel}: cannot read: {e}")))?;
        serde_json::from_str(&text).map_err(|e| Fail::Refused(format!("{rel}: invalid JSON: {e}")))
    }

    /// [`Self::commit`] of one edited epic file.
    async fn commit_epic(
        &self,
        path: PathBuf,
        value: Value,
        epic: &Epic,
    ) -> Result<Vec<String>, Fail> {
        self.commit(
            vec![(path, value)],
            &[(Category::Epics, &epic.stem, &epic.department)],
        )
        .await
    }

    /// Writes every `(path, value)` atomically, then loads every `(category, name, dept)` of
    /// `reload` with the asset loader; when one does not load, or a write fails, every file is
    /// put back as it was. Returns the files written.
    async fn commit(
        &self,
        files: Vec<(PathBuf, Value)>,
        reload: &[(Category, &str, &str)],
    ) -> Result<Vec<String>, Fail> {
        let mut prepared = Vec::new();
        for (path, value) in files {
            self.confine(&path)?;
            let original = match std::fs::read(&path) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(Fail::Io(format!(
                        "{}: cannot read: {e}",
                        self.tree.relative(&path)
                    )))
                }
            };
            let mut text = serde_json::to_string_pretty(&value)
                .map_err(|e| Fail::Io(format!("cannot serialize: {e}")))?;
            text.push('\n');
            prepared.push((path, original, text));
        }
        let mut done: Vec<(PathBuf, Option<Vec<u8>>)> = Vec::new();
        for (path, original, text) in prepared {
            let written = match path.parent().map(std::fs::create_dir_all) {
                Some(Err(e)) => Err(Fail::Io(format!(
                    "{}: cannot create its folder: {e}",
                    self.tree.relative(&path)
                ))),
                // The folder may have been created through a link: check again.
                _ => match self.confine(&path) {
                    Ok(()) => write_atomically(&path, text.as_bytes()).await.map_err(|e| {
                        Fail::Io(format!("{}: cannot write: {e}", self.tree.relative(&path)))
                    }),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = written {
                self.restore(&done).await;
                return Err(e);
            }
            done.push((path, original));
        }
        for (category, name, dept) in reload {
            let loaded = match category {
                Category::Rocks => self.tree.load_rock(name, dept).map(drop),
                _ => self.tree.load_epic(name, dept).map(drop),
            };
            if let Err(e) = loaded {
                self.restore(&done).await;
                return Err(Fail::Refused(format!(
                    "the edited asset does not load, so it was put back as it was: {e}"
                )));
            }
        }
        Ok(done.iter().map(|(p, _)| self.tree.relative(p)).collect())
    }

    async fn restore(&self, done: &[(PathBuf, Option<Vec<u8>>)]) {
        for (path, original) in done.iter().rev() {
            let result = match original {
                Some(bytes) => write_atomically(path, bytes).await,
                None => std::fs::remove_file(path),
            };
            if let Err(e) = result {
                tracing::error!("cannot restore {}: {e}", path.display());
            }
        }
    }

    /// A file the driver writes: under the project's own `model/` or `config/`
    /// (`orket-governance`'s [`ProjectFolders`]: plain relative names, no dotfiles, links
    /// followed the file stays inside that folder) and never itself a link.
    fn confine(&self, path: &Path) -> Result<(), Fail> {
        let outside = || {
            Fail::Refused(format!(
                "{}: outside the project's model/ and config/",
                path.display()
            ))
        };
        let rel = path.strip_prefix(self.tree.root()).map_err(|_| outside())?;
        let rel = rel.to_str().ok_or_else(outside)?;
        let folders = ProjectFolders::new(self.tree.root(), &WRITABLE_FOLDERS, WRITE_RULES)
            .map_err(|e| Fail::Io(format!("{}: {e}", self.tree.root().display())))?;
        folders
            .resolve(rel, Access::Write)
            .map(drop)
            .map_err(|e| Fail::Refused(e.to_string()))
    }
}

/// Why an action failed, before the action's name is put in front.
enum Fail {
    Refused(String),
    Io(String),
}

fn refuse<T>(message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Refused(message.into()))
}

fn plain(field: &str, name: &str) -> Result<(), Fail> {
    if is_plain_name(name) {
        Ok(())
    } else {
        refuse(format!(
            "{field}: \"{name}\" is not a plain name (one path component: no `/`, `\\` or leading `.`)"
        ))
    }
}

fn outcome(action: &str, reply: String, changed_files: Vec<String>) -> DriverOutcome {
    DriverOutcome {
        action: action.to_string(),
        reply,
        changed_files,
        model_reply: String::new(),
    }
}

fn list_or_none<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn seat_list(team: &orket_core::assets::Team) -> String {
    list_or_none(
        &team
            .seats
            .iter()
            .map(|s| s.key.as_str())
            .collect::<Vec<_>>(),
    )
}

/// The JSON object of a new issue, after checking its summary, seat and priority.
fn issue_object(
    id: &str,
    issue: &NewIssue,
    team: &orket_core::assets::Team,
    depends_on: &[String],
    field: &str,
) -> Result<Value, Fail> {
    let at = |name: &str| {
        if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        }
    };
    let summary = issue.summary.trim();
    if summary.chars().count() < MIN_SUMMARY_CHARS {
        return refuse(format!(
            "{}: \"{summary}\" is too short (at least {MIN_SUMMARY_CHARS} characters)",
            at("summary")
        ));
    }
    let Some(seat) = team.seat(&issue.seat) else {
        return refuse(format!(
            "{}: \"{}\" is not a seat of team \"{}\" (seats: {})",
            at("seat"),
            issue.seat,
            team.name,
            seat_list(team)
        ));
    };
    let mut object = Map::new();
    object.insert("id".into(), json!(id));
    object.insert("summary".into(), json!(summary));
    object.insert("seat".into(), json!(seat.key));
    if let Some(priority) = &issue.priority {
        parse_priority(Some(priority))
            .map_err(|e| Fail::Refused(format!("{}: {e}", at("priority"))))?;
        object.insert("priority".into(), priority.clone());
    }
    if !depends_on.is_empty() {
        object.insert("depends_on".into(), json!(depends_on));
    }
    if let Some(d) = issue
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        object.insert("description".into(), json!(d));
    }
    Ok(Value::Object(object))
}

fn issues_mut<'a>(value: &'a mut Value, key: &str) -> Result<&'a mut Vec<Value>, Fail> {
    let Value::Object(map) = value else {
        return refuse("the epic file is not a JSON object");
    };
    let list = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    match list {
        Value::Array(items) => Ok(items),
        _ => refuse(format!("{key}: the epic's issues are not a list")),
    }
}

fn push_issue(value: &mut Value, key: &str, issue: Value) -> Result<(), Fail> {
    issues_mut(value, key)?.push(issue);
    Ok(())
}

fn issue_at<'a>(
    value: &'a mut Value,
    key: &str,
    index: usize,
) -> Result<&'a mut Map<String, Value>, Fail> {
    match issues_mut(value, key)?.get_mut(index) {
        Some(Value::Object(object)) => Ok(object),
        _ => refuse(format!("{key}[{index}]: not an issue object")),
    }
}

fn remove_issue(value: &mut Value, key: &str, index: usize) -> Result<(), Fail> {
    let items = issues_mut(value, key)?;
    if index < items.len() {
        items.remove(index);
        Ok(())
    } else {
        refuse(format!("{key}[{index}]: no such issue"))
    }
}

fn set_field(value: &mut Value, key: &str, new: Value) -> Result<(), Fail> {
    match value {
        Value::Object(map) => {
            map.insert(key.to_string(), new);
            Ok(())
        }
        _ => refuse("the file is not a JSON object"),
    }
}

/// The stems of the `*.json` files directly in `dir`, sorted.
fn json_stems(dir: &Path) -> Vec<String> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
                .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    stems.sort();
    stems
}

/// A fresh issue id in the project's style: when the epic's ids are `PREFIX-<n>` with one
/// prefix (other than `ISSUE`), the next number (`DEMO-4`); otherwise `ISSUE-XXXX` (as agents'
/// issues). Never an id any epic already uses.
fn next_issue_id(epic_ids: &[String], taken: &BTreeSet<String>) -> String {
    let numbered: Vec<(&str, u64)> = epic_ids
        .iter()
        .filter_map(|id| {
            let (prefix, n) = id.rsplit_once('-')?;
            let n = n.parse::<u64>().ok()?;
            let ok = !prefix.is_empty()
                && prefix != "ISSUE"
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            ok.then_some((prefix, n))
        })
        .collect();
    let prefixes: BTreeSet<&str> = numbered.iter().map(|(p, _)| *p).collect();
    if prefixes.len() == 1 {
        if let Some(prefix) = prefixes.first() {
            let mut n = numbered.iter().map(|(_, n)| *n).max().unwrap_or(0) + 1;
            loop {
                let id = format!("{prefix}-{n}");
                if !taken.contains(&id) && !epic_ids.contains(&id) {
                    return id;
                }
                n += 1;
            }
        }
    }
    loop {
        let id = orket_core::ids::new_issue_id();
        if !taken.contains(&id) && !epic_ids.contains(&id) {
            return id;
        }
    }
}

// ---- the model side ----------------------------------------------------------------------

/// What the driver tells its model about the tree.
pub struct Facts {
    departments: Vec<String>,
    teams: Vec<(String, orket_core::assets::Team)>,
    environments: Vec<String>,
    epics: Vec<Epic>,
    rocks: Vec<orket_core::assets::Rock>,
}

fn system_prompt(org: &Organization, facts: &Facts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "You are the operations lead of {}. {}",
        org.name,
        org.vision.trim()
    );
    let _ = writeln!(
        out,
        "A person tells you what work the organization needs. Answer with exactly one JSON object: one action that edits the plan, or a reply."
    );
    let _ = writeln!(out, "\nORGANIZATION");
    let _ = writeln!(out, "Departments: {}", facts.departments.join(", "));
    let _ = writeln!(out, "Teams:");
    for (name, team) in &facts.teams {
        let seats: Vec<String> = team
            .seats
            .iter()
            .map(|s| format!("{} ({})", s.key, s.roles.join(", ")))
            .collect();
        let _ = writeln!(out, "- {name}: seats {}", seats.join("; "));
    }
    let _ = writeln!(out, "Environments: {}", list_or_none(&facts.environments));
    let _ = writeln!(out, "Epics:");
    if facts.epics.is_empty() {
        let _ = writeln!(out, "- none");
    }
    for epic in &facts.epics {
        let _ = writeln!(
            out,
            "- {} (department {}, team {}, environment {}): {}",
            epic.stem, epic.department, epic.team, epic.environment, epic.card.name
        );
        for issue in &epic.issues {
            let deps = if issue.depends_on.is_empty() {
                String::new()
            } else {
                format!(" (after {})", issue.depends_on.join(", "))
            };
            let _ = writeln!(
                out,
                "  - {} [seat {}, {}] {}{deps}",
                issue.card.id, issue.seat, issue.card.status, issue.card.name
            );
        }
    }
    let _ = writeln!(out, "Rocks:");
    if facts.rocks.is_empty() {
        let _ = writeln!(out, "- none");
    }
    for rock in &facts.rocks {
        let epics: Vec<&str> = rock.epics.iter().map(|e| e.epic.as_str()).collect();
        let _ = writeln!(out, "- {}: epics {}", rock.stem, epics.join(", "));
    }
    let _ = writeln!(out, "\nACTIONS (answer with one of these JSON objects)");
    for line in [
        r#"{"action": "create_epic", "args": {"name": "docs_site", "team": "<team>", "environment": "<environment>", "description": "...", "issues": [{"summary": "...", "seat": "<seat>", "priority": "High"}]}}"#,
        r#"{"action": "create_issue", "args": {"epic": "<epic>", "summary": "...", "seat": "<seat of the epic's team>", "priority": "Medium", "depends_on": ["<issue id of that epic>"], "description": "..."}}"#,
        r#"{"action": "create_rock", "args": {"name": "q3_launch", "epics": ["<epic>"], "description": "..."}}"#,
        r#"{"action": "assign_team", "args": {"epic": "<epic>", "team": "<team>"}}"#,
        r#"{"action": "turn_directive", "args": {"issue": "<issue id>", "directive": "what the next turn must do"}}"#,
        r#"{"action": "adopt_issue", "args": {"issue": "<issue id>", "to_epic": "<epic>"}}"#,
        r#"{"action": "reply", "message": "your answer"}"#,
    ] {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "\nRULES\n- Names of new epics and rocks are lower-case words joined by _.\n- Use only the teams, seats, environments, epics and issue ids listed above.\n- Optional args may be left out.\n- When the person asks a question or nothing should change, use reply."
    );
    out
}

fn string_enum(names: Vec<String>) -> Value {
    if names.is_empty() {
        json!({"type": "string"})
    } else {
        json!({"type": "string", "enum": names})
    }
}

/// The schema of the driver model's reply: `oneOf` one object per action, `{"action":
/// "<name>", "args": {...}}` (`{"action": "reply", "message": "..."}` for a reply). Teams,
/// environments, seats, epics and issue ids are limited to those of the tree (when there are
/// any), so constrained decoding cannot invent them; new names are free text, checked when the
/// action is applied.
pub fn driver_schema(facts: &Facts) -> Value {
    let teams = string_enum(facts.teams.iter().map(|(n, _)| n.clone()).collect());
    let environments = string_enum(facts.environments.clone());
    let seats: BTreeSet<String> = facts
        .teams
        .iter()
        .flat_map(|(_, t)| t.seats.iter().map(|s| s.key.clone()))
        .collect();
    let seats = string_enum(seats.into_iter().collect());
    let epics = string_enum(facts.epics.iter().map(|e| e.stem.clone()).collect());
    let issue_ids: BTreeSet<String> = facts
        .epics
        .iter()
        .flat_map(|e| e.issues.iter().map(|i| i.card.id.clone()))
        .collect();
    let issue_ids = string_enum(issue_ids.into_iter().collect());
    let departments = string_enum(facts.departments.clone());
    let text = json!({"type": "string"});
    let priority = json!({"type": "string", "enum": ["High", "Medium", "Low"]});
    let object = |properties: Value, required: &[&str]| json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false});
    let new_issue = object(
        json!({"summary": text, "seat": seats, "priority": priority, "description": text}),
        &["summary", "seat"],
    );
    let action = |name: &str, args: Value| {
        object(
            json!({"action": {"const": name}, "args": args}),
            &["action", "args"],
        )
    };
    let variants = vec![
        action(
            "create_epic",
            object(
                json!({"name": text, "team": teams, "environment": environments,
                       "department": departments, "description": text,
                       "issues": {"type": "array", "items": new_issue}}),
                &["name", "team"],
            ),
        ),
        action(
            "create_issue",
            object(
                json!({"epic": epics, "summary": text, "seat": seats, "priority": priority,
                       "depends_on": {"type": "array", "items": issue_ids}, "description": text}),
                &["epic", "summary", "seat"],
            ),
        ),
        action(
            "create_rock",
            object(
                json!({"name": text, "epics": {"type": "array", "items": epics, "minItems": 1},
                       "department": departments, "description": text}),
                &["name", "epics"],
            ),
        ),
        action(
            "assign_team",
            object(json!({"epic": epics, "team": teams}), &["epic", "team"]),
        ),
        action(
            "turn_directive",
            object(
                json!({"issue": issue_ids, "directive": text}),
                &["issue", "directive"],
            ),
        ),
        action(
            "adopt_issue",
            object(
                json!({"issue": issue_ids, "from_epic": epics, "to_epic": epics}),
                &["issue", "to_epic"],
            ),
        ),
        object(
            json!({"action": {"const": "reply"}, "message": text}),
            &["action", "message"],
        ),
    ];
    json!({"oneOf": variants})
}

/// Parses a model reply into one action: the whole reply as JSON, else the JSON object inside
/// a fence or between the first `{` and the last `}`. Arguments are checked for shape; an
/// error names the action and the field.
pub fn parse_action(text: &str) -> Result<DriverAction, DriverError> {
    action_of(text).map_err(|message| DriverError::BadReply {
        message,
        model_reply: text.to_string(),
    })
}

fn action_of(text: &str) -> Result<DriverAction, String> {
    let actions = ACTIONS.join(", ");
    let value = orket_llm::parse::json_values(text)
        .into_iter()
        .find(Value::is_object)
        .ok_or_else(|| {
            format!(
                "no JSON object found in {:?}; expected {{\"action\": one of {actions}, ...}}",
                shorten(text)
            )
        })?;
    let object = value.as_object().ok_or("expected a JSON object")?;
    let name = match object.get("action") {
        Some(Value::String(name)) if ACTIONS.contains(&name.as_str()) => name.as_str(),
        Some(Value::String(name)) => {
            return Err(format!(
                "action: unknown action \"{name}\" (known: {actions})"
            ))
        }
        Some(other) => return Err(format!("action: expected a string, found {other}")),
        None => return Err(format!("action: missing (one of {actions})")),
    };
    let empty = Map::new();
    let args = match object.get("args") {
        Some(Value::Object(args)) => args,
        None | Some(Value::Null) => &empty,
        Some(other) => return Err(format!("{name}: args: expected an object, found {other}")),
    };
    // Every problem of the arguments at once, each naming its field (`create_epic:
    // args.issues[1].seat: ...`).
    let mut r = Reader::new(name);
    let action = read_action(&mut r, name, object, args);
    match r.errors() {
        Some(errors) => Err(errors),
        None => Ok(action),
    }
}

/// The action `name` with its arguments read from `args` (problems go to `r`).
fn read_action(
    r: &mut Reader,
    name: &str,
    object: &Map<String, Value>,
    args: &Map<String, Value>,
) -> DriverAction {
    const ARGS: &str = "args";
    let text = |r: &mut Reader, key: &str| trimmed(r.opt_str(args, ARGS, key));
    match name {
        "reply" => {
            let message = object
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| text(r, "message"));
            if message.is_none() {
                r.error("message", "required (the answer for the person)");
            }
            DriverAction::Reply {
                message: message.unwrap_or_default(),
            }
        }
        "create_epic" => {
            r.only_keys(
                args,
                ARGS,
                &[
                    "department",
                    "name",
                    "team",
                    "environment",
                    "description",
                    "issues",
                ],
            );
            let mut issues = Vec::new();
            match args.get("issues") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let path = idx(&at(ARGS, "issues"), i);
                        if let Some(map) = as_object(r, item, &path) {
                            r.only_keys(
                                map,
                                &path,
                                &["summary", "seat", "priority", "depends_on", "description"],
                            );
                            issues.push(new_issue(r, map, &path));
                        }
                    }
                }
                Some(other) => r.wrong_type(&at(ARGS, "issues"), "a list", other),
            }
            DriverAction::CreateEpic {
                department: text(r, "department"),
                name: required(r, args, ARGS, "name"),
                team: required(r, args, ARGS, "team"),
                environment: text(r, "environment"),
                description: text(r, "description"),
                issues,
            }
        }
        "create_issue" => {
            r.only_keys(
                args,
                ARGS,
                &[
                    "epic",
                    "summary",
                    "seat",
                    "priority",
                    "depends_on",
                    "description",
                ],
            );
            DriverAction::CreateIssue {
                epic: required(r, args, ARGS, "epic"),
                issue: new_issue(r, args, ARGS),
            }
        }
        "create_rock" => {
            r.only_keys(args, ARGS, &["department", "name", "epics", "description"]);
            DriverAction::CreateRock {
                department: text(r, "department"),
                name: required(r, args, ARGS, "name"),
                epics: names(r.str_list(args, ARGS, "epics", true)),
                description: text(r, "description"),
            }
        }
        "assign_team" => {
            r.only_keys(args, ARGS, &["epic", "team"]);
            DriverAction::AssignTeam {
                epic: required(r, args, ARGS, "epic"),
                team: required(r, args, ARGS, "team"),
            }
        }
        "turn_directive" => {
            r.only_keys(args, ARGS, &["issue", "directive", "epic"]);
            DriverAction::TurnDirective {
                issue: required(r, args, ARGS, "issue"),
                directive: required(r, args, ARGS, "directive"),
                epic: text(r, "epic"),
            }
        }
        _ => {
            r.only_keys(args, ARGS, &["issue", "from_epic", "to_epic"]);
            DriverAction::AdoptIssue {
                issue: required(r, args, ARGS, "issue"),
                from_epic: text(r, "from_epic"),
                to_epic: required(r, args, ARGS, "to_epic"),
            }
        }
    }
}

/// An issue to create, read from `map` at `path`.
fn new_issue(r: &mut Reader, map: &Map<String, Value>, path: &str) -> NewIssue {
    let priority = match map.get("priority") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
        Some(other) => {
            r.wrong_type(
                &at(path, "priority"),
                "High, Medium, Low or a number",
                other,
            );
            None
        }
    };
    NewIssue {
        summary: required(r, map, path, "summary"),
        seat: required(r, map, path, "seat"),
        priority,
        depends_on: names(r.str_list(map, path, "depends_on", true)),
        description: trimmed(r.opt_str(map, path, "description")),
    }
}

/// A required text field, trimmed (missing or empty: an error and an empty string).
fn required(r: &mut Reader, map: &Map<String, Value>, path: &str, key: &str) -> String {
    r.req_str(map, path, key)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// An optional text field, trimmed; empty counts as absent.
fn trimmed(text: Option<String>) -> Option<String> {
    text.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A list of names, each trimmed.
fn names(list: Vec<String>) -> Vec<String> {
    list.into_iter().map(|s| s.trim().to_string()).collect()
}

fn shorten(text: &str) -> String {
    let t: String = text.trim().chars().take(80).collect();
    if text.trim().chars().count() > 80 {
        format!("{t}...")
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_epic_style() {
        let taken = BTreeSet::from(["DEMO-4".to_string()]);
        let ids = vec!["DEMO-1".to_string(), "DEMO-3".to_string()];
        assert_eq!(next_issue_id(&ids, &taken), "DEMO-5");
        let fresh = next_issue_id(&[], &BTreeSet::new());
        assert!(fresh.starts_with("ISSUE-") && fresh.len() == 10, "{fresh}");
        let mixed = vec!["A-1".to_string(), "B-2".to_string()];
        assert!(next_issue_id(&mixed, &BTreeSet::new()).starts_with("ISSUE-"));
    }

    #[test]
    fn actions_parse_from_prose_and_name_bad_fields() {
        let action = parse_action(
            "Sure!\n```json\n{\"action\": \"assign_team\", \"args\": {\"epic\": \"e\", \"team\": \"t\"}}\n```",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            action,
            DriverAction::AssignTeam {
                epic: "e".into(),
                team: "t".into()
            }
        );
        let err = parse_action(
            "{\"action\": \"create_issue\", \"args\": {\"epic\": \"e\", \"seat\": \"x\"}}",
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("the model's reply is not an action: create_issue: args.summary: required field is missing (expected a string)")
        );
        // Every problem at once, each with its field.
        let err = parse_action(
            "{\"action\": \"create_epic\", \"args\": {\"name\": 7, \"team\": \"t\", \"colour\": \"red\", \"issues\": [{\"seat\": \"x\"}]}}",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        for part in [
            "create_epic: args.colour: unknown field",
            "create_epic: args.issues[0].summary: required field is missing",
            "create_epic: args.name: expected a string, found a number",
        ] {
            assert!(err.contains(part), "{part} in {err}");
        }
        let err = parse_action("{\"action\": \"delete_everything\"}")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("unknown action \"delete_everything\""),
            "{err}"
        );
        let err = parse_action("no json here")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no JSON object found"), "{err}");
    }
}
