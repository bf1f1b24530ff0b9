//! The flattened view of an epic, rock or issue:
//! each issue with the seats its turns go to and, per seat, the system and user messages a
//! turn would send, compiled by the same code the turn uses (the turn's plan stage).

use crate::assets::{not_found, seed_record, RunAssets};
use crate::error::EngineError;
use crate::policy::PolicyRegistry;
use crate::turn::plan::{compile_turn_prompt, plan_seat, turn_query, PromptExtras};
use orket_core::assets::{AssetTree, Category};
use orket_core::ids::epic_build_id;
use orket_core::Status;
use orket_isolate::verify::has_fixture;
use orket_llm::{ModelReply, ModelRequest, Provider, ProviderError};
use orket_store::{IssueRecord, Store};
use serde::Serialize;
use std::sync::Arc;

/// What a preview looks at.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    /// The department to look the name up in.
    pub department: String,
    /// The build instead of `build-<epic>` (as `orket run --build`).
    pub build: Option<String>,
    /// A model for every turn (as `orket run --model`).
    pub model: Option<String>,
    /// The model is held to each step's schema, as the embedded model, Ollama and
    /// OpenAI-compatible servers are (default): the prompt does not spell out the reply's shape.
    pub constrained: bool,
}

impl Default for PreviewOptions {
    fn default() -> Self {
        PreviewOptions {
            department: "core".to_string(),
            build: None,
            model: None,
            constrained: true,
        }
    }
}

/// What was previewed.
#[derive(Debug, Clone, Serialize)]
pub struct AssetPreview {
    /// `epic`, `rock` or `issue`.
    pub kind: String,
    /// The name asked for.
    pub name: String,
    /// The department looked up.
    pub department: String,
    /// The epics involved (one, except for rocks), in run order.
    pub epics: Vec<EpicPreview>,
}

/// One epic of a preview.
#[derive(Debug, Clone, Serialize)]
pub struct EpicPreview {
    /// The epic's file stem.
    pub epic: String,
    /// Its department.
    pub department: String,
    /// Its team.
    pub team: String,
    /// Its environment.
    pub environment: String,
    /// The build its runs work on.
    pub build_id: String,
    /// Its issues (for an issue preview, only that one).
    pub issues: Vec<IssuePreview>,
}

/// One issue with the turns it gets.
#[derive(Debug, Clone, Serialize)]
pub struct IssuePreview {
    /// The issue id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its status: from the store when the build holds it, else from the file.
    pub status: Status,
    /// `store` or `file`: where the issue, its comments and memory came from.
    pub source: String,
    /// The seat named on the issue.
    pub seat: String,
    /// Its dependencies.
    pub depends_on: Vec<String>,
    /// The developer turn and the review turn.
    pub turns: Vec<SeatPreview>,
}

/// One seat's turn on an issue: what it would send.
#[derive(Debug, Clone, Serialize)]
pub struct SeatPreview {
    /// `developer` or `review`.
    pub turn: String,
    /// The seat's key (`None` when it cannot be routed).
    pub seat: Option<String>,
    /// The seat's display name.
    pub seat_name: Option<String>,
    /// The acting roles, the primary one first.
    pub roles: Vec<String>,
    /// The model the turn would call.
    pub model: Option<String>,
    /// What would serve it: the run's provider, or the seat's `model_client` (`openai
    /// http://...`).
    pub client: Option<String>,
    /// The dialect's model family.
    pub dialect: Option<String>,
    /// The tools it may call.
    pub tools: Vec<String>,
    /// The system message, exactly as the turn would send it.
    pub system_prompt: Option<String>,
    /// The user message (the issue); a review's verification result is added at run time.
    pub user_prompt: Option<String>,
    /// Why the turn could not run (unknown seat, missing role, ...).
    pub error: Option<String>,
    /// Remarks (e.g. that the fixture runs first).
    pub notes: Vec<String>,
}

/// Previews `name` (an epic, else a rock, else an issue id, as `orket run` resolves it) in
/// the department of `options`. With a store, issues that exist in the build are shown as
/// stored, with their comments and memory, exactly as the next turn would see them.
pub async fn preview(
    tree: &AssetTree,
    store: Option<&dyn Store>,
    options: &PreviewOptions,
    registry: &PolicyRegistry,
    name: &str,
) -> Result<AssetPreview, EngineError> {
    let dept = options.department.as_str();
    let epic_build = |epic: &str| match &options.build {
        Some(build) => build.clone(),
        None => epic_build_id(epic),
    };
    let (kind, targets): (&str, Vec<Target<'_>>) = if tree.find(Category::Epics, name, dept).is_ok()
    {
        (
            "epic",
            vec![Target::new(name, dept, epic_build(name), None)],
        )
    } else if tree.find(Category::Rocks, name, dept).is_ok() {
        let rock = tree.load_rock(name, dept)?;
        let targets = rock
            .epics
            .iter()
            .map(|e| Target::new(&e.epic, &e.department, epic_build_id(&e.epic), None))
            .collect();
        ("rock", targets)
    } else {
        let epic_name = tree.list(Category::Epics, dept).into_iter().find(|e| {
            tree.load_epic(e, dept)
                .is_ok_and(|epic| epic.issue(name).is_some())
        });
        match epic_name {
            Some(e) => {
                let build = epic_build(&e);
                ("issue", vec![Target::new(&e, dept, build, Some(name))])
            }
            None => return Err(not_found(tree, name, dept)),
        }
    };
    let mut epics = Vec::new();
    for target in &targets {
        epics.push(epic_preview(tree, store, options, registry, target).await?);
    }
    Ok(AssetPreview {
        kind: kind.to_string(),
        name: name.to_string(),
        department: dept.to_string(),
        epics,
    })
}

/// One epic to preview: its name, department, build, and the only issue to show (if one).
struct Target<'a> {
    epic: String,
    department: String,
    build: String,
    only: Option<&'a str>,
}

impl<'a> Target<'a> {
    fn new(epic: &str, department: &str, build: String, only: Option<&'a str>) -> Self {
        Target {
            epic: epic.to_string(),
            department: department.to_string(),
            build,
            only,
        }
    }
}

async fn epic_preview(
    tree: &AssetTree,
    store: Option<&dyn Store>,
    options: &PreviewOptions,
    registry: &PolicyRegistry,
    target: &Target<'_>,
) -> Result<EpicPreview, EngineError> {
    let (epic_name, dept, build_id, only) = (
        target.epic.as_str(),
        target.department.as_str(),
        target.build.as_str(),
        target.only,
    );
    let assets = RunAssets::load(tree, registry, epic_name, dept)?;
    let mut issues = Vec::new();
    for spec in &assets.epic.issues {
        if only.is_some_and(|id| id != spec.card.id) {
            continue;
        }
        let stored = match store {
            Some(store) => store.get_issue(build_id, &spec.card.id).await?,
            None => None,
        };
        let (issue, source) = match stored {
            Some(issue) => (issue, "store"),
            None => (seed_record(build_id, spec), "file"),
        };
        let turns = vec![
            seat_preview(&assets, store, options, &issue, false).await?,
            seat_preview(&assets, store, options, &issue, true).await?,
        ];
        issues.push(IssuePreview {
            id: issue.id.clone(),
            name: issue.name.clone(),
            status: issue.status,
            source: source.to_string(),
            seat: issue.seat.clone(),
            depends_on: issue.depends_on.clone(),
            turns,
        });
    }
    Ok(EpicPreview {
        epic: epic_name.to_string(),
        department: dept.to_string(),
        team: assets.team.name.clone(),
        environment: assets.epic.environment.clone(),
        build_id: build_id.to_string(),
        issues,
    })
}

async fn seat_preview(
    assets: &RunAssets,
    store: Option<&dyn Store>,
    options: &PreviewOptions,
    issue: &IssueRecord,
    review: bool,
) -> Result<SeatPreview, EngineError> {
    let kind = if review { "review" } else { "developer" };
    let unplugged: Arc<dyn Provider> = Arc::new(Unplugged);
    let plan = match plan_seat(assets, &unplugged, options.model.as_deref(), issue, review) {
        Ok(plan) => plan,
        Err(error) => {
            return Ok(SeatPreview {
                turn: kind.to_string(),
                seat: None,
                seat_name: None,
                roles: Vec::new(),
                model: None,
                client: None,
                dialect: None,
                tools: Vec::new(),
                system_prompt: None,
                user_prompt: None,
                error: Some(error),
                notes: Vec::new(),
            })
        }
    };
    let (comments, memory) = match store {
        Some(store) => {
            let inputs = store.turn_inputs(&turn_query("", issue, 0)).await?;
            (inputs.comments, inputs.memory)
        }
        None => (Vec::new(), Vec::new()),
    };
    let extras = PromptExtras {
        constrained: options.constrained,
        ..PromptExtras::default()
    };
    let prompt = compile_turn_prompt(assets, &plan, issue, &comments, &memory, &extras);
    let mut notes = Vec::new();
    if review && has_fixture(&issue.verification) {
        notes.push(format!(
            "the review first runs the fixture {}; its result is added to the user message as VERIFICATION",
            issue.verification["fixture_path"].as_str().unwrap_or_default()
        ));
    }
    if issue
        .verification
        .get("last_run")
        .is_some_and(|v| !v.is_null())
    {
        notes.push("the issue holds the result of an earlier verification run".to_string());
    }
    Ok(SeatPreview {
        turn: kind.to_string(),
        seat: Some(plan.seat.key.clone()),
        seat_name: Some(plan.seat.name.clone()),
        roles: plan.role_names.clone(),
        model: Some(plan.model.clone()),
        client: Some(
            plan.served
                .client
                .clone()
                .unwrap_or_else(|| "the run's provider".to_string()),
        ),
        dialect: Some(plan.dialect.model_family.clone()),
        tools: plan
            .tools
            .offered()
            .iter()
            .map(|t| t.name().to_string())
            .collect(),
        system_prompt: Some(prompt.system),
        user_prompt: Some(prompt.user),
        error: None,
        notes,
    })
}

/// The provider of a preview: it shows what a turn would send and calls no model.
struct Unplugged;

#[async_trait::async_trait]
impl Provider for Unplugged {
    fn name(&self) -> &str {
        "preview"
    }

    fn serves_every_seat(&self) -> bool {
        true
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        Err(ProviderError::Other(format!(
            "model {}: a preview calls no model",
            request.model
        )))
    }
}
