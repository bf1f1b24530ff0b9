//! The policy families a program embedding the engine plugs its own implementations into
//! (`loop`, `sandbox_policy`, `model_client`, `loader`), chosen by
//! `process_rules.<family>_node`, and the defaults of those families, on the demo epic with
//! recorded replies.

mod common;

use async_trait::async_trait;
use common::{all_replies, copy_demo, copy_dir, edit_json, without_fixtures};
use orket_core::assets::{AssetTree, Epic};
use orket_core::RunStatus;
use orket_engine::policy::{
    ClientChoice, DeployMoment, Loader, LoopChoice, LoopPolicy, LoopSettings, ModelClient,
    PolicyRegistry, SandboxPolicy, Served,
};
use orket_engine::{Engine, RunOptions, RunOutcome};
use orket_llm::{ModelReply, ModelRequest, Provider, ProviderError, ReplayProvider};
use orket_store::events::EventBus;
use orket_store::{SqliteStore, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A copy of the demo without fixtures, its organization's `process_rules` extended by
/// `rules`.
fn demo_project(dir: &Path, rules: serde_json::Value) -> PathBuf {
    let root = dir.join("project");
    copy_demo(&root);
    without_fixtures(&root);
    edit_json(&root.join("config/organization.json"), |org| {
        for (k, v) in rules.as_object().unwrap() {
            org["process_rules"][k] = v.clone();
        }
    });
    root
}

/// Runs the demo epic of the project at `root` (assets from `tree`) with `registry`'s
/// policies, the run's provider replaying `replies`.
async fn run_demo(
    root: &Path,
    tree: AssetTree,
    registry: PolicyRegistry,
    replies: &[String],
) -> (Arc<dyn Store>, RunOutcome) {
    let replay = ReplayProvider::from_jsonl("replay.jsonl", &replies.join("\n")).unwrap();
    run_demo_with(root, tree, registry, Arc::new(replay)).await
}

/// Runs the demo epic with `provider` as the run's provider.
async fn run_demo_with(
    root: &Path,
    tree: AssetTree,
    registry: PolicyRegistry,
    provider: Arc<dyn Provider>,
) -> (Arc<dyn Store>, RunOutcome) {
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&root.join(".orket/orket.db"))
            .await
            .unwrap(),
    );
    let engine = Engine::new(tree, Arc::clone(&store), EventBus::default()).with_policies(registry);
    let options = RunOptions::new(provider);
    let outcome = engine.run("hello_cli", options).await.unwrap().remove(0);
    (store, outcome)
}

/// A provider under another name, counting its calls (a second model server).
struct Counted {
    name: &'static str,
    inner: Arc<dyn Provider>,
    calls: AtomicUsize,
}

#[async_trait]
impl Provider for Counted {
    fn name(&self) -> &str {
        self.name
    }
    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.complete(request).await
    }
}

/// Serves the integrity guard's seat from its own provider, every other seat from the run's.
struct GuardApart(Arc<Counted>);

impl ModelClient for GuardApart {
    fn serve(&self, choice: &ClientChoice<'_>) -> Result<Served, String> {
        if choice.seat.key == "integrity_guard" {
            let provider: Arc<dyn Provider> = self.0.clone();
            return Ok(Served {
                provider,
                model: Some("guard-model".into()),
                client: Some("guard server".into()),
            });
        }
        Ok(Served::by_run(choice.run_provider, None))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_model_client_serves_the_reviews_from_another_provider() {
    let dir = tempfile::tempdir().unwrap();
    let root = demo_project(dir.path(), json!({"model_client_node": "guard_apart"}));
    let (coder, guard): (Vec<String>, Vec<String>) = all_replies()
        .into_iter()
        .partition(|r| r.contains("\"coder\""));
    let guard_server = Arc::new(Counted {
        name: "guard-server",
        inner: Arc::new(ReplayProvider::from_jsonl("guard.jsonl", &guard.join("\n")).unwrap()),
        calls: AtomicUsize::new(0),
    });
    let mut registry = PolicyRegistry::default();
    registry.model_client.register(
        "guard_apart",
        Arc::new(GuardApart(Arc::clone(&guard_server))),
    );
    let (store, outcome) = run_demo(&root, AssetTree::new(&root), registry, &coder).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);
    assert_eq!(guard_server.calls.load(Ordering::SeqCst), 3);
    for turn in store.list_turns(&outcome.run_id).await.unwrap() {
        let settings = turn.turn.settings.clone().unwrap();
        if turn.turn.role == "integrity_guard" {
            assert_eq!(settings["provider"], "guard-server");
            assert_eq!(settings["client"], "guard server");
            assert_eq!(turn.turn.model, "guard-model");
        } else {
            assert_eq!(settings["provider"], "replay");
            assert!(settings.get("client").is_none(), "{settings}");
            assert_eq!(turn.turn.model, "smollm2-135m-instruct");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seat_whose_client_reads_an_unset_key_variable_fails_its_turn_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = demo_project(dir.path(), json!({}));
    edit_json(&root.join("model/core/environments/local.json"), |env| {
        env["seat_model_clients"] = json!({"integrity_guard": {
            "provider": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key_env": "ORKET_KEY_NOBODY_SET_IN_TESTS"
        }});
    });
    let report = orket_core::assets::check_tree(&AssetTree::new(&root), None);
    assert!(report.is_ok(), "{:?}", report.diagnostics);
    // The run's provider plays recorded replies under another name (a replay run would
    // replay every seat).
    let scripted = Arc::new(Counted {
        name: "scripted",
        inner: Arc::new(
            ReplayProvider::from_jsonl("replay.jsonl", &all_replies().join("\n")).unwrap(),
        ),
        calls: AtomicUsize::new(0),
    });
    let (store, outcome) = run_demo_with(
        &root,
        AssetTree::new(&root),
        PolicyRegistry::default(),
        scripted.clone(),
    )
    .await;
    assert_ne!(outcome.status, RunStatus::Completed);
    // Every turn that ran was a developer's, on the run's provider: no review reached a model.
    let turns = store.list_turns(&outcome.run_id).await.unwrap();
    assert!(!turns.is_empty());
    for turn in &turns {
        assert_eq!(turn.turn.role, "coder");
        assert_eq!(turn.turn.settings.as_ref().unwrap()["provider"], "scripted");
    }
    let events = store
        .list_events(Some(&outcome.run_id), 0, 1000)
        .await
        .unwrap();
    let said = events.iter().any(|e| {
        e.event
            .data()
            .to_string()
            .contains("ORKET_KEY_NOBODY_SET_IN_TESTS, which is not set")
    });
    assert!(said, "no event names the unset variable");
    // The developers' turns ran on the run's provider: the files were written.
    assert!(root.join("workspace/hello_cli/hello.py").is_file());
}

/// One tick per run.
struct OneTick;

impl LoopPolicy for OneTick {
    fn settings(&self, choice: &LoopChoice<'_>) -> LoopSettings {
        LoopSettings {
            max_iterations: 1,
            ..choice.given.clone()
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_loop_policy_paces_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = demo_project(dir.path(), json!({"loop_node": "one_tick"}));
    let mut registry = PolicyRegistry::default();
    registry.loop_policy.register("one_tick", Arc::new(OneTick));
    let (_, outcome) = run_demo(&root, AssetTree::new(&root), registry, &all_replies()).await;
    assert_eq!(outcome.status, RunStatus::Exhausted, "{:?}", outcome.reason);
    assert!(outcome
        .reason
        .unwrap_or_default()
        .contains("max_iterations (1)"));
}

/// Deploys only the epics whose name is listed, and only once their run completed.
struct Listed(Vec<&'static str>);

impl SandboxPolicy for Listed {
    fn deploys(&self, moment: DeployMoment, epic: &Epic) -> bool {
        moment == DeployMoment::EpicCompleted && self.0.contains(&epic.stem.as_str())
    }
}

/// The demo epic asking for a sandbox, run with `registry` and `process_rules` `rules`: the
/// sandboxes it left and the names of its run's events.
async fn sandbox_run(
    registry: PolicyRegistry,
    rules: serde_json::Value,
) -> (Vec<orket_store::SandboxRecord>, Vec<String>) {
    // No docker engine is reachable: each deploy fails cleanly and is recorded.
    std::env::set_var("DOCKER_HOST", "unix:///nonexistent/orket-test/docker.sock");
    let dir = tempfile::tempdir().unwrap();
    let root = demo_project(dir.path(), rules);
    edit_json(&root.join("model/core/epics/hello_cli.json"), |epic| {
        epic["params"] = json!({"sandbox": true, "stack": "fastapi-react-postgres"});
    });
    let (store, outcome) = run_demo(&root, AssetTree::new(&root), registry, &all_replies()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);
    let names = store
        .list_events(Some(&outcome.run_id), 0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.name().to_string())
        .collect();
    (store.list_sandboxes().await.unwrap(), names)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_sandbox_policy_chooses_which_epics_deploy_and_when() {
    for (listed, deploys) in [(vec!["hello_cli"], true), (vec!["other"], false)] {
        let mut registry = PolicyRegistry::default();
        registry
            .sandbox_policy
            .register("listed", Arc::new(Listed(listed.clone())));
        let (sandboxes, names) =
            sandbox_run(registry, json!({"sandbox_policy_node": "listed"})).await;
        let failed = names.iter().position(|e| e == "sandbox_deploy_failed");
        let last_turn = names.iter().rposition(|e| e == "turn_start");
        if deploys {
            assert_eq!(sandboxes.len(), 1, "{listed:?}");
            assert!(failed > last_turn, "after the run's turns: {names:?}");
        } else {
            assert!(sandboxes.is_empty(), "{listed:?}");
            assert_eq!(failed, None, "{names:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_built_in_sandbox_policies_deploy_at_their_moment() {
    for (node, at_end) in [("on_completion", true), ("on_merge", false)] {
        let (sandboxes, names) = sandbox_run(
            PolicyRegistry::default(),
            json!({"sandbox_policy_node": node}),
        )
        .await;
        let failed = names.iter().position(|e| e == "sandbox_deploy_failed");
        let last_turn = names.iter().rposition(|e| e == "turn_start");
        if at_end {
            assert_eq!(sandboxes.len(), 1, "{node}");
            assert!(failed > last_turn, "{node}: {names:?}");
        } else {
            // A run is no merge.
            assert!(sandboxes.is_empty(), "{node}");
            assert_eq!(failed, None, "{node}");
        }
    }
}

/// Assets from another folder: an organization's shared asset tree.
struct Shared(PathBuf);

impl Loader for Shared {
    fn tree(&self, _root: &Path) -> Result<AssetTree, String> {
        Ok(AssetTree::new(&self.0))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_loader_gives_the_assets() {
    let dir = tempfile::tempdir().unwrap();
    // The project names the loader; its own folders hold no epic.
    let root = demo_project(dir.path(), json!({"loader_node": "shared"}));
    let shared = dir.path().join("shared");
    copy_dir(&root, &shared);
    std::fs::remove_dir_all(root.join("model/core/epics")).unwrap();
    let mut registry = PolicyRegistry::default();
    registry
        .loader
        .register("shared", Arc::new(Shared(shared.clone())));
    let (tree, warnings) = registry.load_tree(&root, &|_| None).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(tree.root(), shared.as_path());
    let (_, outcome) = run_demo(&root, tree, registry, &all_replies()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);

    // An unknown loader: the project's folders, with a warning naming it.
    let registry = PolicyRegistry::default();
    let env = |k: &str| (k == "ORKET_LOADER_NODE").then(|| "git".to_string());
    let (tree, warnings) = registry.load_tree(&root, &env).unwrap();
    assert_eq!(tree.root(), root.as_path());
    assert_eq!(
        warnings,
        ["ORKET_LOADER_NODE names an unknown loader policy \"git\" (known: default); using default"]
    );
}
