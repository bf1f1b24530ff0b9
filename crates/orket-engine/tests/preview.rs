//! `preview`: the flattened view of an epic, rock or issue with each seat's compiled prompt,
//! identical to what a turn sends.

use orket_core::assets::AssetTree;
use orket_core::RunStatus;
use orket_engine::policy::PolicyRegistry;
use orket_engine::preview::PreviewOptions;
use orket_engine::preview::{preview, AssetPreview};
use orket_engine::{Engine, EngineError, RunOptions};
use orket_llm::ReplayProvider;
use orket_store::events::EventBus;
use orket_store::{SqliteStore, Store};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

fn demo() -> AssetTree {
    AssetTree::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo"))
}

async fn of(name: &str) -> Result<AssetPreview, EngineError> {
    of_with(None, &PreviewOptions::default(), name).await
}

async fn of_with(
    store: Option<&dyn Store>,
    options: &PreviewOptions,
    name: &str,
) -> Result<AssetPreview, EngineError> {
    preview(&demo(), store, options, &PolicyRegistry::default(), name).await
}

#[tokio::test]
async fn an_epic_shows_every_issue_with_its_developer_and_review_seats() {
    let p = of("hello_cli").await.unwrap();
    assert_eq!(p.kind, "epic");
    assert_eq!(p.epics.len(), 1);
    let epic = &p.epics[0];
    assert_eq!(epic.build_id, "build-hello_cli");
    let ids: Vec<&str> = epic.issues.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["DEMO-1", "DEMO-2", "DEMO-3"]);
    for issue in &epic.issues {
        assert_eq!(issue.source, "file");
        let [dev, review] = &issue.turns[..] else {
            panic!("two turns expected: {:#?}", issue.turns);
        };
        assert_eq!(dev.turn, "developer");
        assert_eq!(dev.seat.as_deref(), Some("developer"));
        assert_eq!(dev.roles, ["coder"]);
        let system = dev.system_prompt.as_deref().unwrap();
        assert!(system.starts_with("### IDENTITY\n"), "{system}");
        assert!(system.contains(&format!(
            "You work on issue {} (status in_progress)",
            issue.id
        )));
        assert!(dev
            .user_prompt
            .as_deref()
            .unwrap()
            .starts_with(&format!("TASK {}: ", issue.id)));
        assert_eq!(review.turn, "review");
        assert_eq!(review.roles[0], "integrity_guard");
        let system = review.system_prompt.as_deref().unwrap();
        assert!(system.contains("This is a review turn"), "{system}");
        assert!(dev.error.is_none() && review.error.is_none());
    }
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(
        json["epics"][0]["issues"][0]["turns"][0]["seat"],
        json!("developer")
    );
}

#[tokio::test]
async fn a_rock_and_an_issue_are_previewed_too() {
    let rock = of("demo_launch").await.unwrap();
    assert_eq!(rock.kind, "rock");
    assert_eq!(rock.epics[0].epic, "hello_cli");
    assert_eq!(rock.epics[0].issues.len(), 3);

    let issue = of("DEMO-2").await.unwrap();
    assert_eq!(issue.kind, "issue");
    assert_eq!(issue.epics[0].issues.len(), 1);
    assert_eq!(issue.epics[0].issues[0].depends_on, ["DEMO-1"]);
}

#[tokio::test]
async fn an_unknown_card_is_named_in_the_error() {
    let err = of("NOPE-9").await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("\"NOPE-9\" is no epic, rock or issue"),
        "{message}"
    );
    assert!(message.contains("hello_cli"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_preview_is_exactly_what_the_turn_sends() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("o.db")).await.unwrap());
    // The replay provider is not held to the schema: the preview is asked for that prompt.
    let unconstrained = PreviewOptions {
        constrained: false,
        ..PreviewOptions::default()
    };
    let before = of_with(Some(store.as_ref()), &unconstrained, "DEMO-1")
        .await
        .unwrap();
    let dev = &before.epics[0].issues[0].turns[0];

    let reply = json!({"issue_id": "DEMO-1", "role": "coder", "content": json!([
        {"tool": "write_file", "args": {"path": "hello.py", "content": "print(1)\n"}},
        {"tool": "update_issue_status", "args": {"status": "code_review"}}
    ]).to_string()});
    let replay = ReplayProvider::from_jsonl("r.jsonl", &reply.to_string()).unwrap();
    let engine = Engine::new(demo(), Arc::clone(&store), EventBus::default());
    let options = RunOptions {
        workspace_base: Some(dir.path().join("ws")),
        max_iterations: 1,
        ..RunOptions::new(Arc::new(replay))
    };
    let outcome = engine.run("DEMO-1", options).await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Exhausted, "{:?}", outcome.reason);
    let turns = store.list_turns(&outcome.run_id).await.unwrap();
    let messages = &turns[0].turn.messages;
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(
        messages[0]["content"].as_str(),
        dev.system_prompt.as_deref()
    );
    assert_eq!(messages[1]["content"].as_str(), dev.user_prompt.as_deref());

    // Now the issue is in the store (in code_review): the preview shows it from there.
    let after = of_with(Some(store.as_ref()), &unconstrained, "DEMO-1")
        .await
        .unwrap();
    let issue = &after.epics[0].issues[0];
    assert_eq!(issue.source, "store");
    assert_eq!(issue.status, orket_core::Status::CodeReview);
}
