//! The organization loop over the API: `POST /v1/loop/start` runs it in the server, `GET
//! /v1/loop` shows it, `POST /v1/loop/stop` halts it; one loop at a time; bad bodies are 400
//! naming the field.

mod common;

use axum::http::StatusCode;
use common::Project;
use orket_core::{Event, Status};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Waits up to a minute for `GET /v1/loop` to satisfy `done`; returns it.
async fn wait_loop(p: &Project, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, view) = p.get("/v1/loop").await;
        assert_eq!(status, StatusCode::OK, "{view}");
        if done(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_starts_works_the_demo_idles_and_stops_over_http() {
    let p = Project::new().await;
    let (status, none) = p.get("/v1/loop").await;
    assert_eq!(
        (status, none["running"].clone(), none["id"].clone()),
        (StatusCode::OK, json!(false), Value::Null)
    );
    let (status, err) = p.post("/v1/loop/stop", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(err["error"], "no loop is running in this project");

    let body = json!({"provider": "replay", "replay": "replay/hello_cli.jsonl", "idle_sleep": 1,
        "concurrency": 1, "card_time_budget": 600});
    let (status, started) = p.post("/v1/loop/start", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let (status, err) = p.post("/v1/loop/start", body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(
        err["error"].as_str().unwrap().starts_with(&format!(
            "a loop is already running in this process: loop {id}"
        )),
        "{err}"
    );

    // The demo epic's three issues, by score, then nothing is ready.
    let idle = wait_loop(&p, "the loop to go idle", |v| {
        v["cards"] == 3
            && v["last_decision"]
                .as_str()
                .is_some_and(|d| d.starts_with("nothing is ready"))
    })
    .await;
    assert_eq!(idle["running"], true);
    assert_eq!(idle["here"], true);
    assert_eq!(idle["id"], id.as_str());
    assert_eq!(idle["department"], Value::Null);
    assert_eq!(idle["current"], Value::Null);
    assert_eq!(
        idle["last_decision"],
        "nothing is ready: sleeping 1 s between looks"
    );
    assert!(idle["tokens"].as_u64().unwrap() > 0, "{idle}");
    let issues = p.store.list_issues("build-hello_cli").await.unwrap();
    assert!(
        issues.iter().all(|i| i.status == Status::Done),
        "{issues:#?}"
    );
    let events = p.store.list_events(Some(&id), 0, 1000).await.unwrap();
    let picked: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::LoopPicked { issue, .. } => Some(issue.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(picked, ["DEMO-1", "DEMO-2", "DEMO-3"]);
    // The loop is a row of its own, listed with the runs.
    let (_, runs) = p.get("/v1/runs").await;
    let row = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert_eq!(
        (row["kind"].clone(), row["status"].clone()),
        (json!("loop"), json!("running"))
    );

    let (status, halting) = p.post("/v1/loop/stop", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{halting}");
    assert_eq!(halting, json!({"id": id, "status": "halting"}));
    let stopped = wait_loop(&p, "the loop to stop", |v| v["running"] == false).await;
    assert_eq!(stopped["status"], "canceled");
    assert_eq!(stopped["reason"], "halted by a person");
    assert_eq!(stopped["cards"], 3);
    let (status, _) = p.post("/v1/loop/stop", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(p.store.get_lease("loop").await.unwrap().is_none());
    let run = p.store.get_run(&id).await.unwrap().unwrap();
    assert_eq!(run.status, orket_core::RunStatus::Canceled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_loop_body_is_400_naming_the_field() {
    let p = Project::new().await;
    let replay = json!({"provider": "replay", "replay": "replay/hello_cli.jsonl"});
    let with = |extra: Value| {
        let mut body = replay.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (body, field) in [
        (
            with(json!({"idle_sleep": 0})),
            "idle_sleep: must be at least 1",
        ),
        (
            with(json!({"idle_sleep": 100_000})),
            "idle_sleep: expected a whole number from 0 to 86400",
        ),
        (with(json!({"once": "yes"})), "once: expected true or false"),
        (
            with(json!({"concurrency": 0})),
            "concurrency: must be at least 1",
        ),
        (
            with(json!({"token_budget": -1})),
            "token_budget: expected a whole number",
        ),
        (
            with(json!({"department": "../x"})),
            "department: \"../x\" is not a plain folder name",
        ),
        (
            with(json!({"department": "nowhere"})),
            "department: department \"nowhere\" not found: model/nowhere/ does not exist",
        ),
        (json!({"provider": "bogus"}), "provider: unknown \"bogus\""),
        (json!([1]), "body: expected a JSON object"),
    ] {
        let (status, err) = p.post("/v1/loop/start", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        let message = err["error"].as_str().unwrap();
        assert!(message.starts_with(field), "{body}: {message}");
    }
    // Nothing started.
    let (_, view) = p.get("/v1/loop").await;
    assert_eq!(view["running"], false);
    assert!(p.store.get_lease("loop").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_the_server_down_halts_its_loop_and_waits_for_it() {
    let p = Project::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(orket_server::serve(p.state.clone(), listener, async {
        let _ = stopped.await;
    }));
    let (status, started) = p
        .post(
            "/v1/loop/start",
            json!({"provider": "replay", "replay": "replay/hello_cli.jsonl",
                "replay_delay_ms": 400, "concurrency": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let picked = wait_loop(&p, "the loop's first card", |v| !v["current"].is_null()).await;
    let card = picked["current"]["run"].as_str().unwrap().to_string();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("serve did not return")
        .unwrap()
        .unwrap();
    // When serve returns, the card stopped at a turn boundary and the loop ended.
    let run = p.store.get_run(&card).await.unwrap().unwrap();
    assert_eq!(run.status.to_string(), "canceled", "{run:?}");
    let row = p.store.get_run(&id).await.unwrap().unwrap();
    assert_eq!(row.status.to_string(), "canceled", "{row:?}");
    assert!(p.store.get_lease("loop").await.unwrap().is_none());
}
