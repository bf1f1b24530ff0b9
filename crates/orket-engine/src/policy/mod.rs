//! Policies (decision nodes): each volatile decision of the loop is a trait with a
//! default implementation, chosen by name from `process_rules.<family>_node`, overridden by
//! `ORKET_<FAMILY>_NODE`; an unknown name falls back to `default` with a warning. A program
//! embedding the engine registers its own implementations by name.

mod cadence;
mod loader;
mod model_client;
mod sandbox;

pub use cadence::{DefaultLoopPolicy, LoopChoice, LoopPolicy, LoopSettings};
pub use loader::{DefaultLoader, Loader};
pub use model_client::{ClientChoice, DefaultModelClient, ModelClient, Served};
pub use sandbox::{DefaultSandboxPolicy, DeployMoment, OnlyAt, SandboxPolicy};

use orket_core::assets::{model_family, Epic, Organization, Role, Seat, Team};
use orket_core::ids::{new_issue_id, new_run_id};
use orket_core::plan::{ready_queue, PlanCard};
use orket_core::INTEGRITY_GUARD;
use std::collections::HashMap;
use std::sync::Arc;

/// Picks the issues of a tick, in order.
pub trait Planner: Send + Sync {
    /// The candidates among `cards` (only `target` when given).
    fn plan(&self, cards: &[PlanCard<'_>], target: Option<&str>) -> Vec<String>;
}

/// Critical path: reviews first, then workable issues by priority + downstream count.
pub struct DefaultPlanner;

impl Planner for DefaultPlanner {
    fn plan(&self, cards: &[PlanCard<'_>], target: Option<&str>) -> Vec<String> {
        ready_queue(cards, target)
    }
}

/// Picks the seat that acts on an issue.
pub trait Router: Send + Sync {
    /// The seat for a turn on an issue written for `seat`; `review` for code_review turns.
    fn route<'t>(&self, team: &'t Team, seat: &str, review: bool) -> Option<&'t Seat>;
}

/// Reviews go to the first seat (team order) holding integrity_guard; other turns to the
/// issue's seat.
pub struct DefaultRouter;

impl Router for DefaultRouter {
    fn route<'t>(&self, team: &'t Team, seat: &str, review: bool) -> Option<&'t Seat> {
        if review {
            team.first_seat_with_role(INTEGRITY_GUARD)
        } else {
            team.seat(seat)
        }
    }
}

/// What the model choice of a turn may depend on.
pub struct ModelChoice<'a> {
    /// `--model`, over everything.
    pub explicit: Option<&'a str>,
    /// The epic (its `params.model_overrides`).
    pub epic: &'a Epic,
    /// The model the seat's client names (its `model_client.model`).
    pub seat: Option<&'a str>,
    /// The acting role.
    pub role: &'a str,
    /// The user's settings (`preferred_coder`, `preferred_architect`, `preferred_reviewer`).
    pub user: &'a HashMap<String, String>,
    /// The environment's model.
    pub environment: &'a str,
    /// The organization (`process_rules.default_llm`).
    pub org: &'a Organization,
}

/// Picks the model and dialect family of a turn.
pub trait PromptStrategy: Send + Sync {
    /// The model for the turn.
    fn model(&self, choice: &ModelChoice<'_>) -> String;
    /// The dialect family of a model.
    fn dialect(&self, model: &str) -> &'static str {
        model_family(model)
    }
}

/// The model used when nothing else names one.
pub const FALLBACK_MODEL: &str = "qwen2.5-coder:7b";

/// The model: explicit → epic override → the seat's client → user setting → environment →
/// organization default → the fallback; dialect by substring of the model name.
pub struct DefaultPromptStrategy;

impl PromptStrategy for DefaultPromptStrategy {
    fn model(&self, c: &ModelChoice<'_>) -> String {
        let setting = match c.role {
            "coder" | "backend_specialist" | "senior_developer" => "preferred_coder",
            "architect" | "lead_architect" => "preferred_architect",
            "reviewer" | "integrity_guard" => "preferred_reviewer",
            _ => "",
        };
        c.explicit
            .map(str::to_string)
            .or_else(|| c.epic.model_override(c.role).map(str::to_string))
            .or_else(|| c.seat.map(str::to_string))
            .or_else(|| c.user.get(setting).cloned())
            .or_else(|| Some(c.environment.to_string()).filter(|m| !m.is_empty()))
            .or_else(|| c.org.rule_str("default_llm").map(str::to_string))
            .unwrap_or_else(|| FALLBACK_MODEL.to_string())
    }
}

/// Which tools a turn may call.
pub trait ToolStrategy: Send + Sync {
    /// The tools of a turn acted by `roles`.
    fn tools(&self, roles: &[Role]) -> Vec<String>;
}

/// The union of the acting roles' tools, in order.
pub struct DefaultToolStrategy;

impl ToolStrategy for DefaultToolStrategy {
    fn tools(&self, roles: &[Role]) -> Vec<String> {
        let mut tools: Vec<String> = Vec::new();
        for t in roles.iter().flat_map(|r| r.tools.iter()) {
            if !tools.contains(t) {
                tools.push(t.clone());
            }
        }
        tools
    }
}

/// What a successful turn did, for the evaluator.
pub struct TurnReport<'a> {
    /// True for review turns.
    pub review: bool,
    /// The issue's status after the turn's calls.
    pub status: orket_core::Status,
    /// The turn wrote or deleted files.
    pub wrote_files: bool,
    /// The model's reply.
    pub reply: &'a str,
    /// The acting roles.
    pub roles: &'a [Role],
}

/// What the evaluator decides after a successful turn.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// Move the issue to code_review (a developer turn wrote files without handing over).
    pub promote: bool,
    /// Remember the turn as a decision.
    pub remember: bool,
}

/// Judges a successful turn.
pub trait Evaluator: Send + Sync {
    /// The decision for one turn.
    fn evaluate(&self, report: &TurnReport<'_>) -> Evaluation;
}

/// A developer turn that wrote files but left the issue in progress is promoted; a turn that
/// mentions a decision, or by an architect, is remembered.
pub struct DefaultEvaluator;

impl Evaluator for DefaultEvaluator {
    fn evaluate(&self, r: &TurnReport<'_>) -> Evaluation {
        let text = r.reply.to_lowercase();
        Evaluation {
            promote: !r.review && r.status == orket_core::Status::InProgress && r.wrote_files,
            remember: text.contains("decision")
                || text.contains("decided")
                || r.roles.iter().any(|role| role.name.contains("architect")),
        }
    }
}

/// New ids for runs and agent-created issues.
pub trait ExecutionRuntime: Send + Sync {
    /// A new run id.
    fn run_id(&self) -> String;
    /// A new issue id (callers retry on a collision).
    fn issue_id(&self) -> String;
}

/// 8 random hex characters; `ISSUE-XXXX`.
pub struct DefaultRuntime;

impl ExecutionRuntime for DefaultRuntime {
    fn run_id(&self) -> String {
        new_run_id()
    }
    fn issue_id(&self) -> String {
        new_issue_id()
    }
}

/// Named implementations of one family.
pub struct Family<T: ?Sized> {
    name: &'static str,
    entries: HashMap<String, Arc<T>>,
}

impl<T: ?Sized> Family<T> {
    fn new(name: &'static str, default: Arc<T>) -> Self {
        let mut entries = HashMap::new();
        entries.insert("default".to_string(), default);
        Family { name, entries }
    }

    /// Registers (or replaces) an implementation under `name`.
    pub fn register(&mut self, name: impl Into<String>, implementation: Arc<T>) {
        self.entries.insert(name.into(), implementation);
    }

    /// The implementation chosen by `ORKET_<FAMILY>_NODE` (read by `env`), else
    /// `process_rules.<family>_node`, else `default`; an unknown name gives `default` and a
    /// warning.
    fn resolve(
        &self,
        org: &Organization,
        env: &dyn Fn(&str) -> Option<String>,
        warnings: &mut Vec<String>,
    ) -> Arc<T> {
        let variable = format!("ORKET_{}_NODE", self.name.to_uppercase());
        let rule = format!("{}_node", self.name);
        let chosen = env(&variable)
            .filter(|v| !v.is_empty())
            .map(|v| (v, variable.clone()))
            .or_else(|| {
                org.rule_str(&rule)
                    .map(|v| (v.to_string(), format!("process_rules.{rule}")))
            });
        match chosen {
            None => Arc::clone(&self.entries["default"]),
            Some((name, source)) => match self.entries.get(&name) {
                Some(found) => Arc::clone(found),
                None => {
                    let mut known: Vec<&str> = self.entries.keys().map(String::as_str).collect();
                    known.sort();
                    warnings.push(format!(
                        "{source} names an unknown {} policy \"{name}\" (known: {}); using default",
                        self.name,
                        known.join(", ")
                    ));
                    Arc::clone(&self.entries["default"])
                }
            },
        }
    }
}

/// The registry of every policy family.
pub struct PolicyRegistry {
    /// `planner` implementations.
    pub planner: Family<dyn Planner>,
    /// `router` implementations.
    pub router: Family<dyn Router>,
    /// `prompt_strategy` implementations.
    pub prompt_strategy: Family<dyn PromptStrategy>,
    /// `tool_strategy` implementations.
    pub tool_strategy: Family<dyn ToolStrategy>,
    /// `evaluator` implementations.
    pub evaluator: Family<dyn Evaluator>,
    /// `execution_runtime` implementations.
    pub execution_runtime: Family<dyn ExecutionRuntime>,
    /// `loop` implementations.
    pub loop_policy: Family<dyn LoopPolicy>,
    /// `sandbox_policy` implementations (`default`, `at_review`, `on_completion`, `on_merge`).
    pub sandbox_policy: Family<dyn SandboxPolicy>,
    /// `model_client` implementations.
    pub model_client: Family<dyn ModelClient>,
    /// `loader` implementations.
    pub loader: Family<dyn Loader>,
}

impl Default for PolicyRegistry {
    fn default() -> Self {
        let mut sandbox_policy: Family<dyn SandboxPolicy> =
            Family::new("sandbox_policy", Arc::new(DefaultSandboxPolicy));
        for (name, moment) in [
            ("at_review", DeployMoment::CodeReview),
            ("on_completion", DeployMoment::EpicCompleted),
            ("on_merge", DeployMoment::PullRequestMerged),
        ] {
            sandbox_policy.register(name, Arc::new(OnlyAt(moment)));
        }
        PolicyRegistry {
            loop_policy: Family::new("loop", Arc::new(DefaultLoopPolicy)),
            sandbox_policy,
            model_client: Family::new("model_client", Arc::new(DefaultModelClient::default())),
            loader: Family::new("loader", Arc::new(DefaultLoader)),
            planner: Family::new("planner", Arc::new(DefaultPlanner)),
            router: Family::new("router", Arc::new(DefaultRouter)),
            prompt_strategy: Family::new("prompt_strategy", Arc::new(DefaultPromptStrategy)),
            tool_strategy: Family::new("tool_strategy", Arc::new(DefaultToolStrategy)),
            evaluator: Family::new("evaluator", Arc::new(DefaultEvaluator)),
            execution_runtime: Family::new("execution_runtime", Arc::new(DefaultRuntime)),
        }
    }
}

/// The policies chosen for one run.
#[derive(Clone)]
pub struct Policies {
    /// Plans ticks.
    pub planner: Arc<dyn Planner>,
    /// Routes turns to seats.
    pub router: Arc<dyn Router>,
    /// Picks models and dialects.
    pub prompt_strategy: Arc<dyn PromptStrategy>,
    /// Picks a turn's tools.
    pub tool_strategy: Arc<dyn ToolStrategy>,
    /// Judges turns.
    pub evaluator: Arc<dyn Evaluator>,
    /// Makes ids.
    pub execution_runtime: Arc<dyn ExecutionRuntime>,
    /// Paces the traction loop.
    pub loop_policy: Arc<dyn LoopPolicy>,
    /// Decides when sandboxes are deployed.
    pub sandbox_policy: Arc<dyn SandboxPolicy>,
    /// Picks the provider of each seat.
    pub model_client: Arc<dyn ModelClient>,
}

impl PolicyRegistry {
    /// The policies for an organization, with the warnings of unknown names.
    pub fn resolve(
        &self,
        org: &Organization,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> (Policies, Vec<String>) {
        let mut warnings = Vec::new();
        let policies = Policies {
            planner: self.planner.resolve(org, env, &mut warnings),
            router: self.router.resolve(org, env, &mut warnings),
            prompt_strategy: self.prompt_strategy.resolve(org, env, &mut warnings),
            tool_strategy: self.tool_strategy.resolve(org, env, &mut warnings),
            evaluator: self.evaluator.resolve(org, env, &mut warnings),
            execution_runtime: self.execution_runtime.resolve(org, env, &mut warnings),
            loop_policy: self.loop_policy.resolve(org, env, &mut warnings),
            sandbox_policy: self.sandbox_policy.resolve(org, env, &mut warnings),
            model_client: self.model_client.resolve(org, env, &mut warnings),
        };
        (policies, warnings)
    }

    /// The asset tree of the project at `root`, from the loader chosen by `ORKET_LOADER_NODE`
    /// (read by `env`), else the project's own `process_rules.loader_node`, else the
    /// project's folders; with the warnings of an unknown name or an unreadable organization.
    pub fn load_tree(
        &self,
        root: &std::path::Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(orket_core::assets::AssetTree, Vec<String>), String> {
        let own = orket_core::assets::AssetTree::new(root.to_path_buf());
        let org = own.organization().unwrap_or_default();
        let mut warnings = Vec::new();
        let loader = self.loader.resolve(&org, env, &mut warnings);
        Ok((loader.tree(root)?, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orket_core::Status;
    use serde_json::json;

    struct Reversed;
    impl Planner for Reversed {
        fn plan(&self, cards: &[PlanCard<'_>], target: Option<&str>) -> Vec<String> {
            let mut order = ready_queue(cards, target);
            order.reverse();
            order
        }
    }

    fn org(rules: serde_json::Value) -> Organization {
        Organization {
            process_rules: rules.as_object().cloned().unwrap_or_default(),
            ..Organization::default()
        }
    }

    fn cards() -> Vec<PlanCard<'static>> {
        vec![
            PlanCard {
                id: "A",
                status: Status::Ready,
                priority: 3.0,
                depends_on: &[],
            },
            PlanCard {
                id: "B",
                status: Status::Ready,
                priority: 1.0,
                depends_on: &[],
            },
        ]
    }

    #[test]
    fn rules_choose_env_overrides_unknown_falls_back_with_a_warning() {
        let mut registry = PolicyRegistry::default();
        registry.planner.register("reversed", Arc::new(Reversed));
        let no_env = |_: &str| None;

        let (p, warnings) = registry.resolve(&org(json!({})), &no_env);
        assert_eq!(p.planner.plan(&cards(), None), ["A", "B"]);
        assert!(warnings.is_empty());

        let (p, _) = registry.resolve(&org(json!({"planner_node": "reversed"})), &no_env);
        assert_eq!(p.planner.plan(&cards(), None), ["B", "A"]);

        let env = |k: &str| (k == "ORKET_PLANNER_NODE").then(|| "default".to_string());
        let (p, _) = registry.resolve(&org(json!({"planner_node": "reversed"})), &env);
        assert_eq!(p.planner.plan(&cards(), None), ["A", "B"]);

        let (p, warnings) = registry.resolve(&org(json!({"router_node": "round_robin"})), &no_env);
        assert_eq!(
            warnings,
            ["process_rules.router_node names an unknown router policy \"round_robin\" (known: default); using default"]
        );
        let team = Team {
            name: "t".into(),
            description: String::new(),
            seats: vec![
                Seat {
                    key: "dev".into(),
                    name: "Dev".into(),
                    roles: vec!["coder".into()],
                    model_client: None,
                },
                Seat {
                    key: "guard".into(),
                    name: "Guard".into(),
                    roles: vec![INTEGRITY_GUARD.into()],
                    model_client: None,
                },
            ],
            roles: vec![],
            file: String::new(),
        };
        assert_eq!(
            p.router.route(&team, "Dev", false).map(|s| s.key.as_str()),
            Some("dev")
        );
        assert_eq!(
            p.router.route(&team, "dev", true).map(|s| s.key.as_str()),
            Some("guard")
        );
    }

    #[test]
    fn model_precedence() {
        let tree = orket_core::assets::AssetTree::new(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo"),
        );
        let mut epic = tree.load_epic("hello_cli", "core").unwrap();
        let org = org(json!({"default_llm": "org-model"}));
        let mut user = HashMap::new();
        let s = DefaultPromptStrategy;
        let choice =
            |epic: &Epic, user: &HashMap<String, String>, explicit: Option<&str>, env: &str| {
                s.model(&ModelChoice {
                    explicit,
                    epic,
                    seat: None,
                    role: "coder",
                    user,
                    environment: env,
                    org: &org,
                })
            };
        assert_eq!(choice(&epic, &user, None, ""), "org-model");
        assert_eq!(choice(&epic, &user, None, "env-model"), "env-model");
        user.insert("preferred_coder".to_string(), "user-model".to_string());
        assert_eq!(choice(&epic, &user, None, "env-model"), "user-model");
        epic.model_overrides
            .push(("coder".to_string(), "epic-model".to_string()));
        assert_eq!(choice(&epic, &user, None, "env-model"), "epic-model");
        assert_eq!(
            choice(&epic, &user, Some("cli-model"), "env-model"),
            "cli-model"
        );
        let bare = Organization::default();
        let fallback = s.model(&ModelChoice {
            explicit: None,
            epic: &epic,
            seat: None,
            role: "poet",
            user: &HashMap::new(),
            environment: "",
            org: &bare,
        });
        assert_eq!(fallback, FALLBACK_MODEL);
        assert_eq!(s.dialect("Qwen2.5-Coder"), "qwen");
        assert_eq!(s.dialect("llama3.1:8b"), "llama3");
        assert_eq!(s.dialect("deepseek-r1:32b"), "deepseek-r1");
        assert_eq!(s.dialect("phi4"), "phi");
        assert_eq!(s.dialect("smollm2"), "generic");
    }
}
