//! The REST API over a copy of the demo project: keys, every route's answers, confinement of
//! the file routes, runs started over the API (replayed), halt, approvals, OpenAPI.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Project, KEY};
use orket_server::routes::{needs_key, table};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use tower::ServiceExt;
use utoipa::OpenApi;

/// A URI of a route with its `{id}` filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
}

#[tokio::test]
async fn every_v1_and_ws_route_needs_the_key() {
    let p = Project::new().await;
    let mut guarded = 0;
    for route in table() {
        let uri = concrete(route.path);
        let (missing, body) = p.send(route.method.clone(), &uri, None, None).await;
        let (wrong, _) = p
            .send(route.method.clone(), &uri, None, Some("wrong-key"))
            .await;
        if needs_key(route.path) {
            guarded += 1;
            assert_eq!(missing, StatusCode::UNAUTHORIZED, "{} {uri}", route.method);
            assert!(body["error"].as_str().unwrap().contains("X-API-Key"));
            assert_eq!(wrong, StatusCode::FORBIDDEN, "{} {uri}", route.method);
        } else if uri.starts_with("/webhook/") {
            // Authenticated by the sender's signature, not the key: unconfigured here, it
            // says what to set, key or no key.
            for (status, answer) in [(missing, &body), (wrong, &body)] {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}: {answer}");
            }
            assert!(body["error"]
                .as_str()
                .unwrap()
                .contains("GITEA_WEBHOOK_SECRET"));
        } else {
            assert_eq!(missing, StatusCode::OK, "{} {uri} is public", route.method);
            assert_eq!(wrong, StatusCode::OK, "{} {uri} is public", route.method);
        }
    }
    assert_eq!(guarded, 32);
    // A key of another length, and one differing only in the last byte.
    let almost = format!("{}x", &KEY[..KEY.len() - 1]);
    for key in [almost.as_str(), "k", ""] {
        let (status, _) = p.send(Method::GET, "/v1/version", None, Some(key)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "key {key:?}");
    }
}

#[tokio::test]
async fn without_a_configured_key_v1_is_open() {
    let p = Project::with(|c| c.api_key = None).await;
    let (status, body) = p.send(Method::GET, "/v1/version", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "orket");
}

#[tokio::test]
async fn openapi_document_lists_exactly_the_routes() {
    let routes: BTreeSet<(String, String)> = table()
        .iter()
        .map(|r| (r.method.as_str().to_lowercase(), r.path.to_string()))
        .collect();
    let doc = serde_json::to_value(orket_server::openapi::ApiDoc::openapi()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(routes, documented);
    // Exactly the routes behind the key declare it, and what its check answers.
    for (method, path) in &documented {
        let operation = &doc["paths"][path][method];
        let security = &operation["security"];
        assert_eq!(
            security.is_array(),
            needs_key(path),
            "{method} {path}: {security}"
        );
        // A path parameter is one the path names; the rest are in the query.
        for param in operation["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap();
            assert_eq!(
                param["in"] == "path",
                path.contains(&format!("{{{name}}}")),
                "{method} {path}: {param}"
            );
        }
        for status in ["401", "403"] {
            // The webhook answers 401 for a bad signature (its own authentication).
            let signed = path.starts_with("/webhook/") && status == "401";
            assert_eq!(
                operation["responses"][status].is_object(),
                needs_key(path) || signed,
                "{method} {path}: {status} in {}",
                operation["responses"]
            );
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"],
        json!({"type": "apiKey", "in": "header", "name": "X-API-Key"})
    );
    // And the document is served as it is built.
    let p = Project::new().await;
    let (status, served) = p.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, doc);
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
}

#[tokio::test]
async fn system_routes_answer() {
    let p = Project::new().await;
    let (status, health) = p.send(Method::GET, "/health", None, None).await;
    assert_eq!((status, health), (StatusCode::OK, json!({"status": "ok"})));
    let (_, version) = p.get("/v1/version").await;
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    let (status, beat) = p.get("/v1/system/heartbeat").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(beat["status"], "ok");
    assert_eq!(beat["active_tasks"], 0);
    assert!(beat["timestamp"].as_str().unwrap().ends_with('Z'));
    let (status, m) = p.get("/v1/system/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let ram = m["ram_percent"].as_f64().unwrap();
    assert!(ram > 0.0 && ram <= 100.0, "{m}");
    assert!((0.0..=100.0).contains(&m["cpu_percent"].as_f64().unwrap()));
    // No GPU here: null, never a made-up number.
    let has_smi = std::process::Command::new("nvidia-smi").output().is_ok();
    if !has_smi {
        assert_eq!(m["vram_used_mb"], Value::Null);
        assert_eq!(m["vram_total_mb"], Value::Null);
    }
    assert!(m["timestamp"].as_str().unwrap().ends_with('Z'));
    let (_, cal) = p.get("/v1/system/calendar").await;
    let today = chrono::Utc::now().date_naive();
    assert_eq!(cal["sprint"], orket_core::sprint::sprint_label(today));
    assert_eq!(cal["date"], today.to_string());

    let (status, board) = p.get("/v1/system/board").await;
    assert_eq!(status, StatusCode::OK);
    assert!(board.to_string().contains("DEMO-1"), "{board}");
    let (status, board) = p.get("/v1/system/board?dept=core").await;
    assert_eq!(status, StatusCode::OK, "{board}");
    let (status, err) = p.get("/v1/system/board?dept=..%2Fx").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["error"].as_str().unwrap().starts_with("dept:"));
    let (status, _) = p.get("/v1/system/board?dept=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A query that does not parse is a JSON 400 too.
    for uri in [
        "/v1/runs?limit=abc",
        "/v1/sandboxes/x/logs?tail=-1",
        "/v1/approvals?run_id=a&run_id=b",
    ] {
        let (status, err) = p.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {err}");
        assert!(
            err["error"].as_str().unwrap().starts_with("query:"),
            "{uri}: {err}"
        );
    }
    let (status, err) = p.get("/v1/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(err["error"].is_string());
    let (status, err) = p.send(Method::POST, "/v1/runs", None, Some(KEY)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(err["error"].is_string());
}

#[tokio::test]
async fn the_board_page_is_static_and_public() {
    let p = Project::new().await;
    for (uri, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let response = orket_server::router(p.state.clone())
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        if uri == "/" {
            // Not to be framed by another site.
            let headers = response.headers();
            assert_eq!(headers["content-security-policy"], "frame-ancestors 'none'");
            assert_eq!(headers["x-frame-options"], "DENY");
        }
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{uri}: {content_type}");
        let file = uri.trim_start_matches('/');
        let file = if file.is_empty() { "index.html" } else { file };
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let on_disk = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("web")
                .join(file),
        )
        .unwrap();
        assert!(
            bytes.as_ref() == on_disk.as_slice(),
            "{uri} is not web/{file} as compiled in"
        );
    }
}

#[tokio::test]
async fn file_routes_list_read_and_save_inside_the_project() {
    let p = Project::new().await;
    let (status, top) = p.get("/v1/system/explorer?path=").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = top["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["model", "config", "workspace"]);
    std::fs::write(p.root.join("model/core/epics/.hidden"), "x").unwrap();
    let (status, epics) = p.get("/v1/system/explorer?path=model/core/epics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        epics["items"],
        json!([{"name": "hello_cli.json", "path": "model/core/epics/hello_cli.json", "is_dir": false,
            "size": std::fs::metadata(p.root.join("model/core/epics/hello_cli.json")).unwrap().len()}])
    );
    let (status, file) = p
        .get("/v1/system/read?path=model/core/epics/hello_cli.json")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(file["content"].as_str().unwrap().contains("DEMO-1"));

    let (status, saved) = p
        .post(
            "/v1/system/save",
            json!({"path": "config/notes/today.md", "content": "# notes\n"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved, json!({"ok": true, "path": "config/notes/today.md"}));
    assert_eq!(
        std::fs::read_to_string(p.root.join("config/notes/today.md")).unwrap(),
        "# notes\n"
    );
    let (_, back) = p.get("/v1/system/read?path=config/notes/today.md").await;
    assert_eq!(back["content"], "# notes\n");
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(p.root.join("config/notes"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1);

    let (status, _) = p.get("/v1/system/read?path=config/missing.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = p.get("/v1/system/read?path=model/core").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, err) = p
        .post("/v1/system/save", json!({"path": "config/x.json"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().contains("content"), "{err}");
    let (status, _) = p.post("/v1/system/save", json!("text")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A parent that is a file is the request's fault, named with its path.
    let (status, err) = p
        .post(
            "/v1/system/save",
            json!({"path": "config/notes/today.md/inner.md", "content": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("config/notes/today.md/inner.md"),
        "{err}"
    );
    let big = "x".repeat(orket_server::MAX_BODY_BYTES + 1);
    let (status, err) = p
        .post(
            "/v1/system/save",
            json!({"path": "config/big.txt", "content": big}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(err["error"].is_string());
    assert!(!p.root.join("config/big.txt").exists());
}

#[tokio::test]
async fn file_routes_refuse_every_way_out() {
    let p = Project::new().await;
    std::fs::write(p.root.join(".env"), "SECRET=1").unwrap();
    std::fs::write(p.root.join("config/.env"), "SECRET=1").unwrap();
    std::fs::create_dir_all(p.root.join("model/.git")).unwrap();
    std::fs::write(p.root.join("model/.git/config"), "x").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(outside.path(), p.root.join("workspace/out")).unwrap();
    std::os::unix::fs::symlink(p.root.join(".env"), p.root.join("config/env_link")).unwrap();
    std::os::unix::fs::symlink(p.root.join(".orket"), p.root.join("workspace/store")).unwrap();
    let refused = [
        "..",
        "../etc/passwd",
        "model/../.env",
        "model/../../secret.txt",
        "%2e%2e/%2e%2e/etc/passwd",
        "model%2f..%2f.env",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        ".env",
        ".orket/orket.db",
        "config/.env",
        "model/.git/config",
        "workspace/out/secret.txt",
        "workspace/out",
        "config/env_link",
        "workspace/store/orket.db",
        "demo/replay/hello_cli.jsonl",
        "replay/hello_cli.jsonl",
        "model%5C..%5C.env",
    ];
    for path in refused {
        for route in ["read", "explorer"] {
            let (status, err) = p.get(&format!("/v1/system/{route}?path={path}")).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{route} {path}: {err}");
            let message = err["error"].as_str().unwrap();
            assert!(message.contains("refused"), "{err}");
            let outside_path = outside.path().display().to_string();
            assert!(
                !message.contains(&outside_path) && !message.contains("/.orket"),
                "a refusal never names where a link leads: {message}"
            );
        }
        let decoded = path
            .replace("%2e", ".")
            .replace("%2f", "/")
            .replace("%2F", "/")
            .replace("%5C", "\\");
        let (status, err) = p
            .post(
                "/v1/system/save",
                json!({"path": decoded, "content": "pwned"}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "save {decoded}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(p.root.join(".env")).unwrap(),
        "SECRET=1"
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(),
        "outside"
    );
    assert!(!outside.path().join("pwned").exists());
    // Listings leave out the links that lead out (nothing of their target is told); a link
    // inside its folder is listed as what it leads to.
    std::fs::write(p.root.join("workspace/notes.txt"), "12345").unwrap();
    std::os::unix::fs::symlink(
        p.root.join("workspace/notes.txt"),
        p.root.join("workspace/notes_link"),
    )
    .unwrap();
    for (folder, hidden) in [
        ("workspace", ["out", "store"]),
        ("config", ["env_link", ".env"]),
    ] {
        let (status, listing) = p.get(&format!("/v1/system/explorer?path={folder}")).await;
        assert_eq!(status, StatusCode::OK, "{listing}");
        let names: Vec<&str> = listing["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        for name in hidden {
            assert!(!names.contains(&name), "{folder}: {names:?}");
        }
    }
    let (_, listing) = p.get("/v1/system/explorer?path=workspace").await;
    let link = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "notes_link")
        .cloned();
    assert_eq!(
        link,
        Some(
            json!({"name": "notes_link", "path": "workspace/notes_link", "is_dir": false, "size": 5})
        )
    );
    // A link out of the project as a top folder is refused too.
    let q = Project::new().await;
    std::fs::remove_dir_all(q.root.join("workspace")).unwrap();
    std::os::unix::fs::symlink(outside.path(), q.root.join("workspace")).unwrap();
    let (status, err) = q.get("/v1/system/read?path=workspace/secret.txt").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
}

#[tokio::test]
async fn a_replayed_run_started_over_the_api_completes() {
    let p = Project::new().await;
    let id = p.start("hello_cli", 0).await;
    assert_eq!(id.len(), 8);
    let session = p.wait_end(&id).await;
    assert_eq!(session["run"]["status"], "completed", "{session}");
    assert_eq!(session["run"]["progress"], json!({"done": 3, "total": 3}));
    let turns = session["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 6);
    for key in [
        "seq",
        "issue_id",
        "seat",
        "role",
        "model",
        "review",
        "tool_calls",
        "tool_results",
        "status",
        "error",
        "tokens_in",
        "tokens_out",
        "started_at",
        "ended_at",
    ] {
        assert!(turns[0].get(key).is_some(), "turn lacks {key}");
    }

    let (_, runs) = p.get("/v1/runs").await;
    let run = &runs.as_array().unwrap()[0];
    assert_eq!(run["id"], id.as_str());
    for key in [
        "id",
        "kind",
        "target",
        "build_id",
        "department",
        "workspace",
        "status",
        "reason",
        "started_at",
        "updated_at",
        "ended_at",
        "progress",
    ] {
        assert!(run.get(key).is_some(), "run lacks {key}");
    }
    assert_eq!(run["target"], "hello_cli");
    assert_eq!(run["kind"], "epic");
    assert_eq!(run["active"], false);

    let (status, backlog) = p.get(&format!("/v1/runs/{id}/backlog")).await;
    assert_eq!(status, StatusCode::OK);
    let backlog = backlog.as_array().unwrap();
    assert_eq!(backlog.len(), 3);
    for issue in backlog {
        assert_eq!(issue["status"], "done", "{issue}");
        for key in [
            "id",
            "name",
            "status",
            "seat",
            "priority",
            "depends_on",
            "wait_reason",
            "retry_count",
            "verification",
            "assignee",
        ] {
            assert!(issue.get(key).is_some(), "issue lacks {key}");
        }
        assert!(issue["verification"].is_object());
    }
    assert_eq!(backlog[1]["depends_on"], json!(["DEMO-1"]));

    let (status, metrics) = p.get(&format!("/v1/runs/{id}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let coder = &metrics["roles"]["coder"];
    assert_eq!(coder["turns"], 3);
    assert!(coder["tool_calls"].as_u64().unwrap() >= 6, "{metrics}");
    let expected_lines: usize = ["hello.py", "README.md", "NOTES.md"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(p.root.join("workspace/hello_cli").join(f))
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(coder["lines_written"], expected_lines);
    assert_eq!(metrics["roles"]["integrity_guard"]["turns"], 3);

    let (status, snapshot) = p.get(&format!("/v1/sessions/{id}/snapshot")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(snapshot["data"]["status"], "completed");
    let (_, beat) = p.get("/v1/system/heartbeat").await;
    assert_eq!(beat["active_tasks"], 0);
}

#[tokio::test]
async fn bad_run_requests_are_400_naming_the_field_and_unknown_targets_404() {
    let p = Project::new().await;
    std::fs::write(p.dir.path().join("outside.jsonl"), "").unwrap();
    let cases = [
        (json!(null), "body"),
        (json!([1]), "body"),
        (json!({}), "target"),
        (json!({"target": 3}), "target"),
        (json!({"target": "  "}), "target"),
        (
            json!({"target": "hello_cli", "provider": "gpt"}),
            "provider",
        ),
        (
            json!({"target": "hello_cli", "provider": "replay"}),
            "replay",
        ),
        (json!({"target": "hello_cli"}), "provider"),
        (
            json!({"target": "hello_cli", "replay": "replay/none.jsonl"}),
            "replay",
        ),
        (
            json!({"target": "hello_cli", "replay": "../outside.jsonl"}),
            "replay",
        ),
        (
            json!({"target": "hello_cli", "replay": "/etc/passwd"}),
            "replay",
        ),
        (json!({"target": "hello_cli", "replay": "replay"}), "replay"),
        (
            json!({"target": "hello_cli", "replay": "replay/hello_cli.jsonl", "concurrency": 0}),
            "concurrency",
        ),
        (
            json!({"target": "hello_cli", "replay": "replay/hello_cli.jsonl", "concurrency": "2"}),
            "concurrency",
        ),
        (
            json!({"target": "hello_cli", "replay": "replay/hello_cli.jsonl", "replay_delay_ms": -1}),
            "replay_delay_ms",
        ),
        (
            json!({"target": "hello_cli", "replay": "replay/hello_cli.jsonl", "reset": "yes"}),
            "reset",
        ),
        (
            json!({"target": "hello_cli", "replay": "replay/hello_cli.jsonl", "department": "../x"}),
            "department",
        ),
        (
            json!({"target": "hello_cli", "replay": "replay/hello_cli.jsonl", "model": 7}),
            "model",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = p.post("/v1/system/run-active", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        let message = err["error"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{body}: {message}"
        );
    }
    let (status, err) = p
        .send(Method::POST, "/v1/system/run-active", None, Some(KEY))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, err) = p
        .post(
            "/v1/system/run-active",
            json!({"target": "nope", "replay": "replay/hello_cli.jsonl"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(err["error"].as_str().unwrap().contains("\"nope\""));
    // An issue id and a rock are targets too.
    let (_, runs) = p.get("/v1/runs").await;
    assert_eq!(runs, json!([]), "nothing was started");
    for uri in [
        "/v1/runs/deadbeef/backlog",
        "/v1/runs/deadbeef/metrics",
        "/v1/sessions/deadbeef",
        "/v1/sessions/deadbeef/snapshot",
    ] {
        let (status, err) = p.get(uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(err["error"].as_str().unwrap().contains("deadbeef"));
    }
    let (status, _) = p.post("/v1/runs/deadbeef/halt", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_replay_file_behind_a_dotfile_is_refused_naming_the_field() {
    let p = Project::new().await;
    let replay = std::fs::read(p.root.join("replay/hello_cli.jsonl")).unwrap();
    // Valid replay files, so only the path rule can refuse them.
    std::fs::write(p.root.join(".env"), &replay).unwrap();
    std::fs::write(p.root.join(".orket/copy.jsonl"), &replay).unwrap();
    std::fs::write(p.root.join("replay/.hidden.jsonl"), &replay).unwrap();
    // Links inside the project that lead to a dotfile are refused like the dotfile.
    std::os::unix::fs::symlink(p.root.join(".env"), p.root.join("replay/env.jsonl")).unwrap();
    std::os::unix::fs::symlink(p.root.join(".orket"), p.root.join("replay/store")).unwrap();
    for file in [
        ".env",
        ".orket/copy.jsonl",
        "replay/.hidden.jsonl",
        "./.env",
        "replay/env.jsonl",
        "replay/store/copy.jsonl",
    ] {
        let (status, err) = p
            .post(
                "/v1/system/run-active",
                json!({"target": "hello_cli", "replay": file}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{file}: {err}");
        let message = err["error"].as_str().unwrap();
        assert!(message.starts_with("replay:"), "{message}");
        assert!(message.contains("dotfile"), "{message}");
    }
    let (_, runs) = p.get("/v1/runs").await;
    assert_eq!(runs, json!([]), "nothing was started");
    // A leading `./` alone is fine.
    let (status, body) = p
        .post(
            "/v1/system/run-active",
            json!({"target": "hello_cli", "replay": "./replay/hello_cli.jsonl"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    p.wait_end(body["session_id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn an_issue_target_runs_its_epic_with_only_that_issue() {
    let p = Project::new().await;
    let id = p.start("DEMO-3", 0).await;
    let session = p.wait_end(&id).await;
    assert_eq!(session["run"]["status"], "completed", "{session}");
    assert_eq!(session["run"]["kind"], "issue");
    let (_, backlog) = p.get(&format!("/v1/runs/{id}/backlog")).await;
    let done: Vec<&str> = backlog
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "done")
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(done, ["DEMO-3"]);
}

#[tokio::test]
async fn halt_stops_a_slow_run_at_a_turn_boundary() {
    let p = Project::new().await;
    let id = p.start("hello_cli", 400).await;
    let (_, beat) = p.get("/v1/system/heartbeat").await;
    assert_eq!(beat["active_tasks"], 1);
    wait_for_a_turn(&p, &id).await;
    let (status, body) = p.post(&format!("/v1/runs/{id}/halt"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"id": id, "status": "halting"}));
    let session = p.wait_end(&id).await;
    assert_eq!(session["run"]["status"], "canceled", "{session}");
    assert_eq!(session["run"]["reason"], "halted by a person");
    let turns = session["turns"].as_array().unwrap();
    assert!(
        !turns.is_empty() && turns.len() < 6,
        "{} turns",
        turns.len()
    );
    assert!(turns.iter().all(|t| t["status"] == "complete"));
    let events = p.store.list_events(Some(&id), 0, 1000).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event, "session_end");
    assert_eq!(last.event.data()["status"], "canceled");
    // Every turn that started was finished and committed.
    let started = events.iter().filter(|e| e.event == "turn_start").count();
    let completed = events.iter().filter(|e| e.event == "turn_complete").count();
    assert_eq!((started, completed), (turns.len(), turns.len()));
    let (status, err) = p.post(&format!("/v1/runs/{id}/halt"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("already ended (canceled)"),
        "{err}"
    );
    let (_, beat) = p.get("/v1/system/heartbeat").await;
    assert_eq!(beat["active_tasks"], 0);
}

/// Waits until run `id` has committed a turn.
async fn wait_for_a_turn(p: &Project, id: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while p.store.list_turns(id).await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "run {id} made no turn"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn halt_stops_a_run_that_another_process_executes() {
    // `orket run` beside the server: another engine on the same store.
    let p = Project::new().await;
    let replay = orket_llm::ReplayProvider::from_jsonl(
        "hello_cli.jsonl",
        &std::fs::read_to_string(p.root.join("replay/hello_cli.jsonl")).unwrap(),
    )
    .unwrap()
    .with_delay(std::time::Duration::from_millis(300));
    let other = orket_engine::Engine::new(
        orket_core::assets::AssetTree::new(&p.root),
        std::sync::Arc::clone(&p.store),
        orket_store::events::EventBus::default(),
    );
    let options = orket_engine::RunOptions {
        concurrency: 1,
        ..orket_engine::RunOptions::new(std::sync::Arc::new(replay))
    };
    let handle = other.spawn("hello_cli", options).unwrap();
    let id = handle.id().to_string();
    wait_for_a_turn(&p, &id).await;
    let (_, run) = p.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(run["run"]["active"], false, "not executing in this server");

    let (status, body) = p.post(&format!("/v1/runs/{id}/halt"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let outcome = handle.join().await.unwrap().remove(0);
    assert_eq!(
        (outcome.status, outcome.reason.as_deref()),
        (orket_core::RunStatus::Canceled, Some("halted by a person"))
    );
    assert!(outcome.turns < 6, "{} turns", outcome.turns);
    let (status, _) = p.post("/v1/runs/deadbeef/halt", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn approvals_are_listed_approved_and_rejected() {
    let p = Project::new().await;
    let org_path = p.root.join("config/organization.json");
    let mut org: Value =
        serde_json::from_str(&std::fs::read_to_string(&org_path).unwrap()).unwrap();
    org["process_rules"]["approval_required"] = json!(["write_file"]);
    std::fs::write(&org_path, org.to_string()).unwrap();

    let id = p.start("hello_cli", 0).await;
    let session = p.wait_end(&id).await;
    assert_eq!(session["run"]["status"], "stalled", "{session}");
    let (status, approvals) = p.get(&format!("/v1/approvals?run_id={id}")).await;
    assert_eq!(status, StatusCode::OK);
    let approvals = approvals.as_array().unwrap().clone();
    let mut issues: Vec<&str> = approvals
        .iter()
        .map(|a| a["issue_id"].as_str().unwrap())
        .collect();
    issues.sort_unstable(); // the two developer turns ran concurrently
    assert_eq!(issues, ["DEMO-1", "DEMO-3"]);
    for a in &approvals {
        assert_eq!(a["status"], "pending");
        assert_eq!(a["tool"], "write_file");
        assert_eq!(a["role"], "coder");
        assert_eq!(a["run_id"], id.as_str());
        assert!(a["args"]["path"].is_string());
        assert!(a["created_at"].is_string());
    }
    let (_, none) = p.get("/v1/approvals?run_id=deadbeef").await;
    assert_eq!(none, json!([]));
    let (_, all) = p.get("/v1/approvals").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let build = "build-hello_cli";
    let issue = |id: &'static str| {
        let store = std::sync::Arc::clone(&p.store);
        async move { store.get_issue(build, id).await.unwrap().unwrap() }
    };
    assert_eq!(
        issue("DEMO-1").await.status.as_str(),
        "waiting_for_developer"
    );
    let workspace = p.root.join("workspace/hello_cli");
    assert!(!workspace.join("hello.py").exists());

    // Approve: the parked write runs, the issue goes back in progress.
    let approval_of = |issue: &str| {
        approvals
            .iter()
            .find(|a| a["issue_id"] == issue)
            .and_then(|a| a["id"].as_i64())
            .unwrap()
    };
    let first = approval_of("DEMO-1");
    let (status, approved) = p
        .post(&format!("/v1/approvals/{first}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["result"]["ok"], true);
    assert!(approved["decided_at"].is_string());
    assert!(std::fs::read_to_string(workspace.join("hello.py"))
        .unwrap()
        .contains("Hello, Orket!"));
    let demo1 = issue("DEMO-1").await;
    assert_eq!(demo1.status.as_str(), "in_progress");
    assert_eq!(demo1.wait_reason, None);
    let (status, err) = p
        .post(&format!("/v1/approvals/{first}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    let (status, _) = p
        .post(&format!("/v1/approvals/{first}/reject"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Reject: nothing runs, the reason is a comment, the issue is ready again.
    let second = approval_of("DEMO-3");
    let (status, err) = p
        .post(
            &format!("/v1/approvals/{second}/reject"),
            json!({"reason": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().starts_with("reason:"));
    let (status, rejected) = p
        .post(
            &format!("/v1/approvals/{second}/reject"),
            json!({"reason": "write the notes in README.md instead"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["reason"], "write the notes in README.md instead");
    assert_eq!(rejected["result"], Value::Null);
    assert!(!workspace.join("NOTES.md").exists());
    let demo3 = issue("DEMO-3").await;
    assert_eq!(demo3.status.as_str(), "ready");
    let comments = p.store.list_comments(build, "DEMO-3").await.unwrap();
    assert!(comments
        .last()
        .unwrap()
        .content
        .contains("write the notes in README.md instead"));
    let audit = p
        .store
        .list_card_transactions(build, "DEMO-3")
        .await
        .unwrap();
    assert_eq!(audit.last().unwrap().role, "person");

    let events = p.store.list_events(Some(&id), 0, 1000).await.unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.event.name()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "approval_requested").count(),
        2
    );
    assert_eq!(
        names.iter().filter(|n| **n == "approval_decided").count(),
        2
    );

    for (uri, code) in [
        ("/v1/approvals/999/approve", StatusCode::NOT_FOUND),
        ("/v1/approvals/abc/approve", StatusCode::BAD_REQUEST),
        ("/v1/approvals/999/reject", StatusCode::NOT_FOUND),
    ] {
        let (status, err) = p.post(uri, json!({})).await;
        assert_eq!(status, code, "{uri}: {err}");
    }
}

#[tokio::test]
async fn cors_only_for_allowed_origins() {
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/runs")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-api-key")
            .body(Body::empty())
            .unwrap()
    };
    let p = Project::with(|c| c.allowed_origins = vec!["http://board.local:3000".into()]).await;
    let response = orket_server::router(p.state.clone())
        .oneshot(preflight("http://board.local:3000"))
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://board.local:3000"
    );
    let response = orket_server::router(p.state.clone())
        .oneshot(preflight("http://evil.local"))
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let q = Project::new().await;
    let response = orket_server::router(q.state.clone())
        .oneshot(
            Request::get("/v1/version")
                .header("host", "127.0.0.1:8082")
                .header("origin", "http://board.local:3000")
                .header("x-api-key", KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    // Not listed: no CORS headers, and the request itself is refused.
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

/// A request with the given headers (no key unless given); status and JSON body.
async fn raw(
    p: &Project,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = orket_server::router(p.state.clone())
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn cross_site_requests_and_foreign_hosts_are_refused() {
    let p = Project::with(|c| {
        c.api_key = None;
        c.allowed_origins = vec!["http://board.local:3000".into()];
    })
    .await;
    let save = json!({"path": "workspace/x.txt", "content": "pwned"}).to_string();
    let local = ("host", "127.0.0.1:8082");
    let json_type = ("content-type", "application/json");

    // A form or `fetch(..., {mode: "no-cors"})` from another site: no preflight, so the
    // server must refuse it itself.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let (status, err) = raw(
            &p,
            Method::POST,
            "/v1/system/save",
            &[local, ("content-type", content_type)],
            &save,
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
        assert!(err["error"].as_str().unwrap().starts_with("Content-Type:"));
    }
    let (status, _) = raw(&p, Method::POST, "/v1/system/save", &[local], &save).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, err) = raw(
        &p,
        Method::POST,
        "/v1/system/save",
        &[local, json_type, ("origin", "http://evil.example")],
        &save,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(err["error"]
        .as_str()
        .unwrap()
        .contains("cross-origin request refused"));
    // DNS rebinding: the page's own origin, but under a name that is not loopback.
    let rebound = [
        ("host", "evil.example:8082"),
        json_type,
        ("origin", "http://evil.example:8082"),
    ];
    let (status, err) = raw(&p, Method::POST, "/v1/system/save", &rebound, &save).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(err["error"]
        .as_str()
        .unwrap()
        .starts_with("Host not allowed"));
    let (status, _) = raw(
        &p,
        Method::GET,
        "/v1/version",
        &[("host", "evil.example")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = raw(&p, Method::GET, "/v1/version", &[], "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no Host at all");
    assert!(!p.root.join("workspace/x.txt").exists());
    // Public routes are not concerned.
    let (status, _) = raw(&p, Method::GET, "/health", &[("host", "evil.example")], "").await;
    assert_eq!(status, StatusCode::OK);

    // The board (same origin), loopback names, allowed origins and empty POSTs pass.
    for (host, origin) in [
        ("127.0.0.1:8082", "http://127.0.0.1:8082"),
        ("localhost:8082", "http://localhost:8082"),
        ("[::1]:8082", "http://[::1]:8082"),
        ("127.0.0.1:8082", "http://board.local:3000"),
    ] {
        let (status, body) = raw(
            &p,
            Method::POST,
            "/v1/system/save",
            &[("host", host), ("origin", origin), json_type],
            &save,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{host} {origin}: {body}");
    }
    let (status, _) = raw(&p, Method::GET, "/v1/version", &[local], "").await;
    assert_eq!(status, StatusCode::OK, "no Origin (curl)");
    let (status, body) = raw(
        &p,
        Method::POST,
        "/v1/approvals/999/reject",
        &[local, ("origin", "http://127.0.0.1:8082")],
        "",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an empty POST needs no type: {body}"
    );

    // With a key, any host name may be served, but origins are still checked.
    let k = Project::new().await;
    let named = [("host", "orket.example"), ("x-api-key", KEY)];
    let (status, _) = raw(&k, Method::GET, "/v1/version", &named, "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = raw(
        &k,
        Method::GET,
        "/v1/version",
        &[named[0], named[1], ("origin", "https://orket.example")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = raw(
        &k,
        Method::GET,
        "/v1/version",
        &[named[0], named[1], ("origin", "http://evil.example")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_run_that_cannot_start_is_recorded_failed_with_the_reason() {
    let p = Project::new().await;
    let epic = p.root.join("model/core/epics/broken.json");
    std::fs::write(
        &epic,
        json!({"name": "Broken", "team": "no_such_team", "environment": "local",
            "issues": [{"id": "B-1", "summary": "Something", "seat": "developer"}]})
        .to_string(),
    )
    .unwrap();
    let mut events = p.state.bus().subscribe();
    let id = p.start("broken", 0).await;
    let session = p.wait_end(&id).await;
    assert_eq!(session["run"]["status"], "failed", "{session}");
    let reason = session["run"]["reason"].as_str().unwrap();
    assert!(reason.contains("no_such_team"), "{reason}");
    assert_eq!(session["run"]["build_id"], "build-broken");
    let end = events.recv().await.unwrap();
    assert_eq!(
        (end.event.name(), end.run_id.as_deref()),
        ("session_end", Some(id.as_str()))
    );
    assert_eq!(end.event.data()["status"], "failed");
}
