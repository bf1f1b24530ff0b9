//! What an epic run needs from the asset tree, loaded and checked once: the organization, the
//! epic with its team, environment, roles and dialects, the policies chosen for it and the
//! user's settings. Also how a name is resolved (epic, rock, issue) and how an issue of the
//! epic file is seeded into the store.

use crate::error::EngineError;
use crate::policy::{Policies, PolicyRegistry};
use orket_core::assets::{
    AssetError, AssetTree, Category, Dialect, Environment, Epic, FileShape, IssueSpec,
    ModelProfile, Organization, Role, Team, MODEL_FAMILIES,
};
use orket_core::INTEGRITY_GUARD;
use orket_store::IssueRecord;
use std::collections::HashMap;

/// What a name given to a run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An epic (by file stem).
    Epic,
    /// A rock (by file stem).
    Rock,
    /// An issue, run with its epic.
    Issue {
        /// The epic holding it.
        epic: String,
    },
}

/// What `name` is in department `dept`: an epic, a rock, or an issue of an epic (looked up in
/// that order); `None` when it is none of them.
pub fn resolve(tree: &AssetTree, name: &str, dept: &str) -> Option<Target> {
    if tree.find(Category::Epics, name, dept).is_ok() {
        return Some(Target::Epic);
    }
    if tree.find(Category::Rocks, name, dept).is_ok() {
        return Some(Target::Rock);
    }
    tree.list(Category::Epics, dept)
        .into_iter()
        .find(|epic_name| {
            tree.load_epic(epic_name, dept)
                .is_ok_and(|epic| epic.issue(name).is_some())
        })
        .map(|epic| Target::Issue { epic })
}

/// The error for a name that is no epic, rock or issue (it lists what exists).
pub fn not_found(tree: &AssetTree, name: &str, dept: &str) -> EngineError {
    EngineError::NotFound(format!(
        "\"{name}\" is no epic, rock or issue of department \"{dept}\" (epics: {}; rocks: {})",
        tree.list(Category::Epics, dept).join(", "),
        tree.list(Category::Rocks, dept).join(", ")
    ))
}

/// The assets an epic run needs, loaded and checked, and the policies chosen for it.
pub(crate) struct RunAssets {
    pub org: Organization,
    pub epic: Epic,
    pub team: Team,
    pub env: Environment,
    pub roles: HashMap<String, Role>,
    pub dialects: HashMap<String, Dialect>,
    pub policies: Policies,
    pub user_settings: HashMap<String, String>,
    /// The model profiles (`models/<model>.json`) of the three layers, by model name.
    pub profiles: HashMap<String, ModelProfile>,
}

impl RunAssets {
    /// Loads what a run of `epic_name` needs and refuses epics over the complexity threshold.
    pub fn load(
        tree: &AssetTree,
        registry: &PolicyRegistry,
        epic_name: &str,
        dept: &str,
    ) -> Result<RunAssets, EngineError> {
        let org = tree.organization()?;
        let epic = tree.load_epic(epic_name, dept)?;
        if epic.issues.len() > org.idesign_threshold && !epic.idesign {
            return Err(EngineError::Complexity(format!(
                "epic \"{epic_name}\" has {} issues, more than the iDesign threshold of {} (architecture.idesign_threshold), and architecture_governance.idesign is off: turn it on or split the epic",
                epic.issues.len(),
                org.idesign_threshold
            )));
        }
        let team = tree.load_team(&epic.team, dept)?;
        let env = tree.load_environment(&epic.environment, dept)?;
        let roles = load_roles(tree, &team, dept)?;
        let dialects = MODEL_FAMILIES
            .iter()
            .filter_map(|f| tree.load_dialect(f, dept).ok().map(|d| (f.to_string(), d)))
            .collect();
        let (policies, warnings) = registry.resolve(&org, &|k| std::env::var(k).ok());
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        Ok(RunAssets {
            org,
            epic,
            team,
            env,
            roles,
            dialects,
            policies,
            user_settings: user_settings(tree)?,
            profiles: model_profiles(tree, dept)?,
        })
    }

    /// The files issue `id` of the epic names (`files`); none for issues created in the run.
    pub fn issue_files(&self, id: &str) -> &[String] {
        self.epic.issue(id).map_or(&[], |i| i.files.as_slice())
    }

    /// The shape issue `id` of the epic gives the file at `path` in its `files`, if any.
    pub fn file_shape(&self, id: &str, path: &str) -> Option<FileShape> {
        self.epic.issue(id)?.file_shapes.get(path).copied()
    }

    /// `process_rules.halt_on_violation`: the first gate refusal fails the run.
    pub fn halt_on_violation(&self) -> bool {
        self.org
            .process_rules
            .get("halt_on_violation")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// `process_rules.approval_required`: the tools whose calls wait for a person.
    pub fn approval_required(&self) -> Vec<String> {
        self.org
            .process_rules
            .get("approval_required")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The roles of the team's seats, and `integrity_guard` when it exists (only a review needs
/// it).
fn load_roles(
    tree: &AssetTree,
    team: &Team,
    dept: &str,
) -> Result<HashMap<String, Role>, EngineError> {
    let mut roles = HashMap::new();
    let names = team
        .seats
        .iter()
        .flat_map(|s| s.roles.iter().cloned())
        .chain(std::iter::once(INTEGRITY_GUARD.to_string()));
    for name in names {
        if roles.contains_key(&name) {
            continue;
        }
        match tree.load_role(&name, dept, Some(team)) {
            Ok(role) => {
                roles.insert(name, role);
            }
            // A missing integrity_guard role only matters if a review turn needs it.
            Err(AssetError::NotFound { .. }) if name == INTEGRITY_GUARD => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(roles)
}

/// Every model profile the department sees, by the model's name; an invalid profile is an
/// error naming its file and field, as `orket check` reports it.
fn model_profiles(
    tree: &AssetTree,
    dept: &str,
) -> Result<HashMap<String, ModelProfile>, EngineError> {
    let mut profiles = HashMap::new();
    for name in tree.list(Category::Models, dept) {
        if let Some(profile) = tree.load_model_profile(&name, dept)? {
            profiles.insert(profile.name.clone(), profile);
        }
    }
    Ok(profiles)
}

/// `config/user_settings.json` (`preferred_coder`, `preferred_architect`,
/// `preferred_reviewer`, ...), when present.
fn user_settings(tree: &AssetTree) -> Result<HashMap<String, String>, EngineError> {
    let path = tree.root().join("config").join("user_settings.json");
    if !path.is_file() {
        return Ok(HashMap::new());
    }
    let invalid = |message: String| EngineError::Settings(format!("{}: {message}", path.display()));
    let text = std::fs::read_to_string(&path).map_err(|e| invalid(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(format!("invalid JSON: {e}")))?;
    Ok(value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

/// The store row an issue of the epic file is seeded as (its file status is kept).
pub fn seed_record(build_id: &str, spec: &IssueSpec) -> IssueRecord {
    let mut r = IssueRecord::new(build_id, &spec.card.id, &spec.card.name, &spec.seat);
    r.description = spec.card.description.clone();
    r.issue_type = spec.card.card_type.clone();
    r.severity = spec.severity.or_else(|| {
        (r.issue_type == orket_core::bugfix::BUG_TYPE)
            .then_some(orket_core::bugfix::Severity::DEFAULT_FOR_BUGS)
    });
    r.status = spec.card.status;
    r.priority = spec.card.priority;
    r.assignee = spec.assignee.clone();
    r.sprint = spec.sprint.clone();
    r.note = spec.card.note.clone();
    r.requirements = spec.requirements.clone();
    r.wait_reason = spec.card.wait_reason;
    r.depends_on = spec.depends_on.clone();
    r.retry_count = spec.retry_count;
    r.max_retries = spec.max_retries;
    r.verification = spec
        .verification
        .as_ref()
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(serde_json::Value::Null);
    r.metrics = serde_json::Value::Object(spec.metrics.clone());
    r.parent_id = spec.card.parent_id.clone();
    r.owner_department = spec.card.owner_department.clone();
    r.labels = spec.card.labels.clone();
    r.params = serde_json::Value::Object(spec.card.params.clone());
    r.references = spec.card.references.clone();
    r
}
