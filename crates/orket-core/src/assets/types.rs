//! The typed assets of a project: organization, team, role, dialect, environment, model
//! profile, epic (with its issues) and rock.

use crate::bugfix::BugFixRules;
use crate::status::{normalize_name, Status, WaitReason};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// The default `architecture.idesign_threshold`: epics with more issues need iDesign.
pub const DEFAULT_IDESIGN_THRESHOLD: usize = 7;

/// The organization: who the agents work for and the rules of the house.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Organization {
    /// The organization's name (`ORKET_ORG_NAME` overrides).
    pub name: String,
    /// Its vision (`ORKET_ORG_VISION` overrides).
    pub vision: String,
    /// Its ethos.
    pub ethos: String,
    /// Branding (colours, fonts, dos and don'ts), as written.
    pub branding: Value,
    /// Architecture rules, as written (`idesign_threshold`, `preferred_stack`, `cicd_rules`).
    pub architecture: Map<String, Value>,
    /// `architecture.idesign_threshold`, default 7.
    pub idesign_threshold: usize,
    /// The departments (folders under `model/`).
    pub departments: Vec<String>,
    /// Policy names and defaults (`<family>_node`, `default_llm`, thresholds).
    pub process_rules: Map<String, Value>,
    /// Contact details, as written.
    pub contact: Value,
    /// The files it was read from, relative to the project root (empty for the defaults).
    pub sources: Vec<String>,
}

impl Default for Organization {
    fn default() -> Self {
        Organization {
            name: "Orket".to_string(),
            vision: String::new(),
            ethos: String::new(),
            branding: Value::Object(Map::new()),
            architecture: Map::new(),
            idesign_threshold: DEFAULT_IDESIGN_THRESHOLD,
            departments: vec!["core".to_string()],
            process_rules: Map::new(),
            contact: Value::Object(Map::new()),
            sources: Vec::new(),
        }
    }
}

impl Organization {
    /// Applies `ORKET_ORG_NAME` / `ORKET_ORG_VISION` as read by `get`.
    pub fn apply_env_overrides(&mut self, get: impl Fn(&str) -> Option<String>) {
        if let Some(name) = get("ORKET_ORG_NAME").filter(|s| !s.is_empty()) {
            self.name = name;
        }
        if let Some(vision) = get("ORKET_ORG_VISION").filter(|s| !s.is_empty()) {
            self.vision = vision;
        }
    }

    /// A process rule as text (`process_rules.<key>`), if set to a string.
    pub fn rule_str(&self, key: &str) -> Option<&str> {
        self.process_rules.get(key).and_then(Value::as_str)
    }

    /// A process rule as a whole number within `range`; `None` when unset or invalid (the
    /// loader reports invalid values).
    fn rule_count(&self, key: &str, range: RangeInclusive<u64>) -> Option<usize> {
        self.process_rules
            .get(key)
            .and_then(Value::as_u64)
            .filter(|n| range.contains(n))
            .and_then(|n| usize::try_from(n).ok())
    }

    /// `process_rules.max_steps` (1–20), when set to a valid number.
    pub fn max_steps(&self) -> Option<usize> {
        self.rule_count("max_steps", STEPS)
    }

    /// `process_rules.max_corrections` (0–10), when set to a valid number.
    pub fn max_corrections(&self) -> Option<usize> {
        self.rule_count("max_corrections", CORRECTIONS)
    }

    /// `process_rules.candidates` (1–10), when set to a valid number.
    pub fn candidates(&self) -> Option<usize> {
        self.rule_count("candidates", CANDIDATES)
    }

    /// `process_rules.bug_fix_phase`: the numbers of a rock's bug-fix phase, each unset or
    /// invalid one at its default (the loader reports invalid ones, so a loaded organization
    /// has none).
    pub fn bug_fix_rules(&self) -> BugFixRules {
        let mut rules = BugFixRules::default();
        let Some(set) = self
            .process_rules
            .get(BUG_FIX_PHASE)
            .and_then(Value::as_object)
        else {
            return rules;
        };
        let days = |key: &str| {
            set.get(key)
                .and_then(Value::as_u64)
                .filter(|n| PHASE_DAYS.contains(n))
                .and_then(|n| u32::try_from(n).ok())
        };
        if let Some(n) = days("initial_duration_days") {
            rules.initial_duration_days = n;
        }
        if let Some(n) = days("max_duration_days") {
            rules.max_duration_days = n;
        }
        if rules.initial_duration_days > rules.max_duration_days {
            rules.initial_duration_days = rules.max_duration_days;
        }
        if let Some(rate) = set
            .get("bug_discovery_high_rate")
            .and_then(Value::as_f64)
            .filter(|r| r.is_finite() && *r >= 0.0)
        {
            rules.bug_discovery_high_rate = rate;
        }
        if let Some(n) = set
            .get("bug_critical_threshold")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
        {
            rules.bug_critical_threshold = n;
        }
        rules
    }
}

/// The key of the bug-fix phase's numbers in `process_rules`.
pub const BUG_FIX_PHASE: &str = "bug_fix_phase";
/// The fields of `process_rules.bug_fix_phase`.
pub const BUG_FIX_PHASE_KEYS: [&str; 4] = [
    "initial_duration_days",
    "max_duration_days",
    "bug_discovery_high_rate",
    "bug_critical_threshold",
];
/// The valid lengths of a bug-fix phase, in days.
pub const PHASE_DAYS: RangeInclusive<u64> = 1..=crate::bugfix::MAX_PHASE_DAYS;

/// The valid numbers of steps (a model profile's `steps`, `process_rules.max_steps`).
pub const STEPS: RangeInclusive<u64> = 1..=crate::tools::MAX_STEPS as u64;
/// The valid numbers of corrections (`corrections`, `process_rules.max_corrections`).
pub const CORRECTIONS: RangeInclusive<u64> = 0..=10;
/// The valid numbers of candidates (`candidates`, `process_rules.candidates`).
pub const CANDIDATES: RangeInclusive<u64> = 1..=10;

/// A seat of a team: a display name and the roles it holds, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Seat {
    /// The seat's key, normalized (lower case, `_` for spaces).
    pub key: String,
    /// Its display name.
    pub name: String,
    /// The role names it holds, in order.
    pub roles: Vec<String>,
    /// The provider (and model) that serve this seat's turns, when not the run's own.
    pub model_client: Option<ModelClientSpec>,
}

/// The prefix of the environment variables a `model_client`'s `api_key_env` may name: only
/// variables set for model clients, never another of the process's.
pub const MODEL_KEY_PREFIX: &str = "ORKET_KEY_";

/// The providers a `model_client` may name.
pub const MODEL_CLIENT_PROVIDERS: [&str; 3] = ["embedded", "ollama", "openai"];

/// Which provider serves a seat's turns: a seat's `model_client` (team file), or an
/// environment's (`model_client` for every seat, `seat_model_clients` per seat key). Keys are
/// never written here: `api_key_env` names the environment variable that holds one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelClientSpec {
    /// `embedded` (the run's in-process model), `ollama` or `openai` (an OpenAI-compatible
    /// server).
    pub provider: String,
    /// The model the seat calls, over the environment's (not over `--model` or an epic's
    /// `model_overrides`).
    pub model: Option<String>,
    /// The server: an OpenAI-compatible API's base URL (`http://host:port/v1`) or Ollama's
    /// host; unset, the provider's environment variable (`ORKET_OPENAI_BASE_URL`,
    /// `OLLAMA_HOST`).
    pub base_url: Option<String>,
    /// The environment variable holding the server's API key (OpenAI-compatible servers),
    /// named `ORKET_KEY_...` ([`MODEL_KEY_PREFIX`]).
    pub api_key_env: Option<String>,
}

/// A team: named seats, in the order written, and optional inline role definitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Team {
    /// The team's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its seats, in file order.
    pub seats: Vec<Seat>,
    /// Roles defined inside the team file (used when no role file of that name exists).
    pub roles: Vec<Role>,
    /// The file it was read from.
    pub file: String,
}

impl Team {
    /// The seat a card names, matched lower-cased with spaces as `_`.
    pub fn seat(&self, name: &str) -> Option<&Seat> {
        let key = normalize_name(name);
        self.seats.iter().find(|s| s.key == key)
    }

    /// The first seat (team order) holding `role`.
    pub fn first_seat_with_role(&self, role: &str) -> Option<&Seat> {
        self.seats
            .iter()
            .find(|s| s.roles.iter().any(|r| r == role))
    }

    /// The role defined inline in the team file under `name`.
    pub fn inline_role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }
}

/// Who acts: what the role is for, what it may do, and its tools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Role {
    /// The role's name (the file stem unless the file says otherwise).
    pub name: String,
    /// What the role is.
    pub description: String,
    /// What it aims at.
    pub intent: String,
    /// What it must do.
    pub responsibilities: Vec<String>,
    /// What it must not do.
    pub constraints: Vec<String>,
    /// Extra prompt text.
    pub prompt: Option<String>,
    /// The tools it may call (empty = no restriction by role).
    pub tools: Vec<String>,
    /// The issue types it may handle (`capabilities.issue_types`).
    pub issue_types: Vec<String>,
    /// The file it was read from (the team file for inline roles).
    pub file: String,
}

/// The issue types a role handles when its file does not say.
pub const DEFAULT_ISSUE_TYPES: [&str; 4] = ["issue", "story", "bug", "task"];

/// How one model family is told to write tool calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dialect {
    /// The family (`qwen`, `llama3`, `deepseek-r1`, `phi`, `generic`).
    pub model_family: String,
    /// An example tool call in the family's format.
    pub dsl_format: String,
    /// Rules for the model's output.
    pub constraints: Vec<String>,
    /// The warning against text outside tool calls.
    pub hallucination_guard: String,
    /// The file it was read from.
    pub file: String,
}

/// The model families that each need a dialect.
pub const MODEL_FAMILIES: [&str; 5] = ["qwen", "llama3", "deepseek-r1", "phi", "generic"];

/// The dialect family of a model, by substring of its name.
pub fn model_family(model: &str) -> &'static str {
    let m = model.to_lowercase();
    if m.contains("qwen") {
        "qwen"
    } else if m.contains("llama") {
        "llama3"
    } else if m.contains("deepseek") {
        "deepseek-r1"
    } else if m.contains("phi") {
        "phi"
    } else {
        "generic"
    }
}

/// Model defaults for a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Environment {
    /// The environment's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The model to use.
    pub model: String,
    /// Sampling temperature (default 0.0).
    pub temperature: f64,
    /// Sampling seed.
    pub seed: Option<i64>,
    /// Model-call timeout in seconds (default 300).
    pub timeout: u64,
    /// Extra parameters for the provider.
    pub params: Map<String, Value>,
    /// The provider that serves every seat of its epics, when not the run's own.
    pub model_client: Option<ModelClientSpec>,
    /// Per seat key, the provider that serves that seat (over the seat's own and
    /// `model_client`).
    pub seat_model_clients: BTreeMap<String, ModelClientSpec>,
    /// The file it was read from.
    pub file: String,
}

impl Environment {
    /// The model client of `seat` in this environment: `seat_model_clients`, then the seat's
    /// own (team file), then `model_client`; `None` when the run's provider serves it.
    pub fn model_client_of<'a>(&'a self, seat: &'a Seat) -> Option<&'a ModelClientSpec> {
        self.seat_model_clients
            .get(&seat.key)
            .or(seat.model_client.as_ref())
            .or(self.model_client.as_ref())
    }
}

/// The default model-call timeout, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// How the model calls of a run are seeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedPolicy {
    /// `"fixed"`: every model call uses the run's seed.
    Fixed,
    /// `"per_call"`: each call gets a seed derived from the run's seed and the call's place in
    /// the run.
    PerCall,
}

/// How a developer's step gives a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileContent {
    /// `"json"`: inside the `write_file` call, as a JSON string.
    #[default]
    Json,
    /// `"block"`: the call names the path only; the engine then asks for the content, which
    /// the model writes as it writes code anywhere, in one fenced block (no JSON escaping:
    /// a small model writes `print("hi")` as a string that ends at its first quote).
    Block,
}

/// Per-model settings (`models/<model>.json`): sampling, seeding, token limits, and the
/// numbers of steps, corrections and candidates. Every field but the name is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelProfile {
    /// The model's name as a turn uses it (the file stem unless the file says otherwise).
    pub name: String,
    /// Sampling temperature, 0.0 to 2.0.
    pub temperature: Option<f64>,
    /// Nucleus sampling: the smallest set of tokens whose probabilities add up to this, in
    /// (0, 1].
    pub top_p: Option<f64>,
    /// How much a token already among the reply's last 64 is held back, 1.0 (not at all) to
    /// 2.0: small models otherwise repeat one sentence until their token budget ends.
    pub repeat_penalty: Option<f64>,
    /// How the run's seed is applied to its model calls.
    pub seed_policy: Option<SeedPolicy>,
    /// The most tokens a reply may have (at least 1).
    pub max_tokens: Option<u32>,
    /// The context the model gets, in tokens (at least 256).
    pub context_window: Option<u32>,
    /// Steps, 1 to 20.
    pub steps: Option<usize>,
    /// Corrections, 0 to 10.
    pub corrections: Option<usize>,
    /// Candidates, 1 to 10.
    pub candidates: Option<usize>,
    /// How a `write_file` step gives the file's content (default `json`).
    pub file_content: Option<FileContent>,
    /// The file it was read from.
    pub file: String,
}

/// The least `context_window` a model profile may set.
pub const MIN_CONTEXT_WINDOW: u64 = 256;

/// The fields every card has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CardBase {
    /// The card's id.
    pub id: String,
    /// Its name (alias `summary`).
    pub name: String,
    /// Its type (`rock`, `epic`, `issue`, `story`, `bug`, `task`, `utility`, `app`).
    #[serde(rename = "type")]
    pub card_type: String,
    /// Its status (default `ready`).
    pub status: Status,
    /// What it is about.
    pub description: String,
    /// Its priority (default 2.0).
    pub priority: f64,
    /// Why it waits, if it does.
    pub wait_reason: Option<WaitReason>,
    /// A note for whoever works on it.
    pub note: Option<String>,
    /// The parent card's id.
    pub parent_id: Option<String>,
    /// The owning department (default `core`).
    pub owner_department: String,
    /// Free labels.
    pub labels: Vec<String>,
    /// Free parameters.
    pub params: Map<String, Value>,
    /// Extra read-only roots for tools.
    pub references: Vec<String>,
}

/// One verification scenario: an input and the output expected for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// The scenario's id (`verify_<id>` in Python fixtures).
    pub id: String,
    /// What it checks.
    pub description: String,
    /// The input given to the fixture.
    pub input_data: Value,
    /// The output expected back.
    pub expected_output: Value,
}

/// An issue's verification: a fixture under `verification/` and its scenarios.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// The fixture, relative to the workspace (must be under `verification/`).
    pub fixture_path: Option<String>,
    /// The scenarios.
    pub scenarios: Vec<Scenario>,
    /// The result of the last run, as stored.
    pub last_run: Option<Value>,
}

/// What a file an issue names must hold, as its entry in the issue's `files` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileShape {
    /// `{"path": "NOTES.md", "list": 3}`: a Markdown list of `items` items, one `- ` line
    /// each. When a model profile asks for a file's content apart (`file_content: "block"`),
    /// such a file is asked for as its items, a JSON list held to exactly that many, which the
    /// engine writes one per line: a small model keeps to a count it cannot get wrong far
    /// better than to "three lines, each starting with `- `" in free text.
    List {
        /// How many items.
        items: u32,
    },
}

/// The most items a list file (`FileShape::List`) may ask for.
pub const MAX_LIST_ITEMS: u32 = 50;

/// An issue as written in an epic file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueSpec {
    /// The card fields.
    #[serde(flatten)]
    pub card: CardBase,
    /// The seat that works on it.
    pub seat: String,
    /// How bad it is (bugs; `low`, `medium`, `high`, `critical`).
    pub severity: Option<crate::bugfix::Severity>,
    /// Who holds it.
    pub assignee: Option<String>,
    /// Its sprint label.
    pub sprint: Option<String>,
    /// What must be true when it is done.
    pub requirements: Option<String>,
    /// The workspace files the issue is meant to write (relative paths). When set, a
    /// developer's steps may write only these, and a review is shown them.
    pub files: Vec<String>,
    /// What some of those files must hold, when their entry in `files` says so
    /// (`{"path": "NOTES.md", "list": 3}`), by path.
    pub file_shapes: BTreeMap<String, FileShape>,
    /// The ids of issues that must be done first.
    pub depends_on: Vec<String>,
    /// Failed attempts so far.
    pub retry_count: u32,
    /// Attempts allowed before it is blocked as catastrophic (default 3).
    pub max_retries: u32,
    /// Its verification fixture and scenarios.
    pub verification: Option<Verification>,
    /// Free metrics.
    pub metrics: Map<String, Value>,
}

/// The default number of retries an issue gets.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// An epic: a deliverable of issues worked on by a team in an environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Epic {
    /// The file stem: the name you run.
    pub stem: String,
    /// The department it was found for.
    pub department: String,
    /// The file it was read from.
    pub file: String,
    /// The card fields.
    pub card: CardBase,
    /// The team's name.
    pub team: String,
    /// The environment's name.
    pub environment: String,
    /// The issues, in file order.
    pub issues: Vec<IssueSpec>,
    /// The key the issues were written under (`issues`, `stories` or `cards`).
    pub issues_key: String,
    /// `architecture_governance.idesign`.
    pub idesign: bool,
    /// `architecture_governance.pattern`.
    pub pattern: Option<String>,
    /// `params.model_overrides`: role → model.
    pub model_overrides: Vec<(String, String)>,
    /// The epic's requirements text.
    pub requirements: Option<String>,
    /// The epic's example task text.
    pub example_task: Option<String>,
}

impl Epic {
    /// The issue with this id.
    pub fn issue(&self, id: &str) -> Option<&IssueSpec> {
        self.issues.iter().find(|i| i.card.id == id)
    }

    /// The model override for a role, if any.
    pub fn model_override(&self, role: &str) -> Option<&str> {
        self.model_overrides
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, m)| m.as_str())
    }
}

/// One epic of a rock: its name and department.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RockEpic {
    /// The epic's file stem.
    pub epic: String,
    /// The department to look it up in.
    pub department: String,
}

/// A rock: a milestone made of epics run in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rock {
    /// The file stem: the name you run.
    pub stem: String,
    /// The department it was found for.
    pub department: String,
    /// The file it was read from.
    pub file: String,
    /// The card fields.
    pub card: CardBase,
    /// What the rock is to achieve.
    pub task: Option<String>,
    /// Its epics, in order.
    pub epics: Vec<RockEpic>,
}
