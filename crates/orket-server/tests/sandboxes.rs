//! Sandboxes and the asset preview over the API: listed without passwords, stopped, their
//! logs asked for; unknown ids 404; an epic previewed with each seat's prompts.

mod common;

use axum::http::StatusCode;
use common::Project;
use orket_sandbox::{DeployRequest, SandboxManager, Stack};
use serde_json::{json, Value};
use std::sync::Arc;

/// A sandbox registered (allocated: files written, nothing started) in the project's store.
async fn allocate(p: &Project) -> (String, String) {
    let workspace = p.root.join("workspace/hello_cli");
    std::fs::create_dir_all(&workspace).unwrap();
    let dir = p.root.join(".orket/sandboxes");
    let manager = SandboxManager::new(Arc::clone(&p.store), &dir);
    let record = manager
        .allocate(&DeployRequest {
            epic: "hello_cli".to_string(),
            stack: Stack::FastapiReactPostgres,
            workspace,
            run_id: None,
            build_id: Some("build-hello_cli".to_string()),
        })
        .await
        .unwrap();
    let env = std::fs::read_to_string(manager.sandbox_dir(&record.id).join(".env")).unwrap();
    let password = env
        .lines()
        .find_map(|l| l.strip_prefix("DB_PASSWORD="))
        .unwrap()
        .to_string();
    (record.id, password)
}

#[tokio::test]
async fn sandboxes_are_listed_without_passwords_and_stopped() {
    let p = Project::new().await;
    let (_, empty) = p.get("/v1/sandboxes").await;
    assert_eq!(empty, json!([]));
    let (id, password) = allocate(&p).await;
    assert!(password.len() >= 16);
    let (status, list) = p.get("/v1/sandboxes").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let sandbox = &list[0];
    assert_eq!(sandbox["id"], id.as_str());
    assert_eq!(sandbox["status"], "allocated");
    assert_eq!(sandbox["stack"], "fastapi-react-postgres");
    let api_port = sandbox["ports"]["api"].as_u64().unwrap();
    assert_eq!(
        sandbox["urls"]["api"],
        format!("http://127.0.0.1:{api_port}")
    );
    assert!(
        !list.to_string().contains(&password),
        "a password leaked: {list}"
    );

    let (status, stopped) = p.post(&format!("/v1/sandboxes/{id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    assert!(!stopped.to_string().contains(&password));
    let (_, list) = p.get("/v1/sandboxes").await;
    assert_eq!(list[0]["status"], "stopped");

    // Logs need the compose CLI and a docker engine: here there is none, which is a 502 that
    // names the sandbox; where one runs, the logs come back.
    let (status, health) = p.get(&format!("/v1/sandboxes/{id}/health")).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["id"], id.as_str());
    assert_eq!(health["healthy"], false, "no engine runs here: {health}");
    assert!(!health.to_string().contains(&password));
    let (status, logs) = p.get(&format!("/v1/sandboxes/{id}/logs?tail=5")).await;
    match status {
        StatusCode::OK => assert_eq!(logs["id"], id.as_str()),
        StatusCode::BAD_GATEWAY => {
            let message = logs["error"].as_str().unwrap();
            assert!(message.contains(&id), "{message}");
            assert!(!message.contains(&password));
        }
        other => panic!("logs answered {other}: {logs}"),
    }

    for (uri, post) in [
        ("/v1/sandboxes/deadbeef/stop", true),
        ("/v1/sandboxes/deadbeef/logs", false),
        ("/v1/sandboxes/deadbeef/health", false),
    ] {
        let (status, err) = if post {
            p.post(uri, json!({})).await
        } else {
            p.get(uri).await
        };
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {err}");
        assert!(err["error"].as_str().unwrap().contains("deadbeef"));
    }
}

#[tokio::test]
async fn preview_asset_flattens_an_epic_with_its_prompts() {
    let p = Project::new().await;
    let (status, view) = p.get("/v1/system/preview-asset?name=hello_cli").await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["kind"], "epic");
    let text = view.to_string();
    for id in ["DEMO-1", "DEMO-2", "DEMO-3"] {
        assert!(text.contains(id), "{id} missing");
    }
    assert!(text.contains("IDENTITY"), "no compiled prompt: {view}");
    let (status, issue) = p.get("/v1/system/preview-asset?name=DEMO-2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(issue["kind"], "issue");

    let (status, err) = p.get("/v1/system/preview-asset?name=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert!(err["error"].as_str().unwrap().contains("nope"));
    for uri in [
        "/v1/system/preview-asset",
        "/v1/system/preview-asset?name=%20",
        "/v1/system/preview-asset?name=hello_cli&dept=..%2Fx",
    ] {
        let (status, err): (StatusCode, Value) = p.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {err}");
    }
}
