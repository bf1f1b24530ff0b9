//! Runs started over the API: one run per build at a time, a run that panics ends `failed`
//! and leaves the active runs, and shutting the server down halts the runs it executes.

mod common;

use async_trait::async_trait;
use axum::http::StatusCode;
use common::Project;
use orket_llm::{ModelReply, ModelRequest, Provider, ProviderError};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_a_running_build_is_409_naming_the_run() {
    let p = Project::new().await;
    let first = p.start("hello_cli", 300).await;
    let issues_before = loop {
        let issues = p.store.list_issues("build-hello_cli").await.unwrap();
        if !issues.is_empty() {
            break issues;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The same epic, the same epic with `reset` (it would delete the issues under the live
    // run), and one issue of that epic: all work on build-hello_cli.
    for body in [
        json!({"target": "hello_cli", "provider": "replay", "replay": "replay/hello_cli.jsonl"}),
        json!({"target": "hello_cli", "provider": "replay", "replay": "replay/hello_cli.jsonl",
            "reset": true}),
        json!({"target": "DEMO-3", "provider": "replay", "replay": "replay/hello_cli.jsonl"}),
    ] {
        let (status, err) = p.post("/v1/system/run-active", body.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}: {err}");
        let message = err["error"].as_str().unwrap();
        assert!(message.starts_with("target:"), "{message}");
        assert!(message.contains(&format!("run {first}")), "{message}");
        assert!(message.contains("build-hello_cli"), "{message}");
    }
    let (_, beat) = p.get("/v1/system/heartbeat").await;
    assert_eq!(beat["active_tasks"], 1, "refused runs never started");
    let after = p.store.list_issues("build-hello_cli").await.unwrap();
    let created = |issues: &[orket_store::IssueRecord]| -> Vec<(String, String)> {
        issues
            .iter()
            .map(|i| (i.id.clone(), i.created_at.clone()))
            .collect()
    };
    assert_eq!(
        created(&after),
        created(&issues_before),
        "the refused reset deleted nothing"
    );
    let (status, _) = p.post(&format!("/v1/runs/{first}/halt"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    p.wait_end(&first).await;
    // Once it ended, the build can be run again.
    let second = p.start("hello_cli", 0).await;
    assert_ne!(second, first);
    let session = p.wait_end(&second).await;
    assert_eq!(session["run"]["status"], "completed", "{session}");
    // The success ledger has the run that finished the epic, and only it.
    let (status, ledger) = p.get("/v1/ledger").await;
    assert_eq!(status, StatusCode::OK, "{ledger}");
    let rows = ledger.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{ledger}");
    assert_eq!(rows[0]["run_id"], second.as_str());
    assert_eq!(rows[0]["card"], "hello_cli");
    let (_, other) = p.get("/v1/ledger?build=build-nothing").await;
    assert_eq!(other, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_another_process_runs_is_409_naming_that_process() {
    let p = Project::new().await;
    // An `orket run` on another machine sharing the store holds the build, heartbeating.
    let other = orket_store::LeaseHolder {
        token: "other-box/4242/1".into(),
        pid: 4242,
        host: "other-box".into(),
    };
    let take = orket_store::Change::TakeLease(orket_store::LeaseRequest {
        build_id: "build-hello_cli".into(),
        run_id: "remote01".into(),
        holder: other.clone(),
        stale_after: Duration::from_secs(30),
        replacing: None,
    });
    p.store.apply(vec![take]).await.unwrap();
    let body = json!({"target": "hello_cli", "provider": "replay",
        "replay": "replay/hello_cli.jsonl"});
    let (status, err) = p.post("/v1/system/run-active", body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.starts_with("build build-hello_cli is being run by run remote01 (process 4242 on other-box, last heartbeat "),
        "{message}"
    );
    let (_, runs) = p.get("/v1/runs").await;
    assert_eq!(
        runs.as_array().map(Vec::len),
        Some(0),
        "no run started: {runs}"
    );

    // Once that process gives the build back, the server runs it, and gives it back at the end.
    let release = orket_store::Change::ReleaseLease {
        build_id: "build-hello_cli".into(),
        token: other.token,
    };
    p.store.apply(vec![release]).await.unwrap();
    let (status, started) = p.post("/v1/system/run-active", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let session = p.wait_end(started["session_id"].as_str().unwrap()).await;
    assert_eq!(session["run"]["status"], "completed", "{session}");
    assert!(p
        .store
        .get_lease("build-hello_cli")
        .await
        .unwrap()
        .is_none());
}

/// A provider whose every call panics.
struct Exploding;

#[async_trait]
impl Provider for Exploding {
    fn name(&self) -> &str {
        "exploding"
    }

    async fn complete(&self, _request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        panic!("the provider exploded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_panics_is_recorded_failed_and_leaves_the_active_runs() {
    let p = Project::with(|c| {
        c.providers = Arc::new(|_| Ok(Arc::new(Exploding) as Arc<dyn Provider>));
    })
    .await;
    let mut events = p.state.bus().subscribe();
    let id = p.start("hello_cli", 0).await;
    let session = p.wait_end(&id).await;
    assert_eq!(session["run"]["status"], "failed", "{session}");
    assert_eq!(session["run"]["active"], false);
    let reason = session["run"]["reason"].as_str().unwrap();
    assert!(reason.contains("panicked"), "{reason}");
    assert!(reason.contains("the provider exploded"), "{reason}");
    assert!(session["run"]["ended_at"].is_string());
    let (_, beat) = p.get("/v1/system/heartbeat").await;
    assert_eq!(beat["active_tasks"], 0);
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("no session_end published")
            .unwrap();
        if event.event == "session_end" && event.run_id.as_deref() == Some(id.as_str()) {
            assert_eq!(event.event.data()["status"], "failed");
            break;
        }
    }
    // Its build is free again.
    let (status, body) = p
        .post(
            "/v1/system/run-active",
            json!({"target": "hello_cli", "provider": "replay",
                "replay": "replay/hello_cli.jsonl"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    p.wait_end(body["session_id"].as_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_halts_the_runs_and_waits_for_them() {
    let p = Project::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(orket_server::serve(p.state.clone(), listener, async {
        let _ = stopped.await;
    }));
    let id = p.start("hello_cli", 400).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("serve did not return")
        .unwrap()
        .unwrap();
    // When serve returns, the run has stopped at a turn boundary.
    assert_eq!(p.state.active_runs(), 0);
    let run = p.store.get_run(&id).await.unwrap().unwrap();
    assert_eq!(run.status.to_string(), "canceled", "{run:?}");
}
