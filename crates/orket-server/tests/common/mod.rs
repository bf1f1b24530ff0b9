//! A copy of the demo project with a store, a server state over it, and request helpers.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use orket_server::{AppState, ServerConfig};
use orket_store::{SqliteStore, Store};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

pub const KEY: &str = "test-key-0123456789";

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A demo project in a temporary folder, and a server state over it.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub store: Arc<dyn Store>,
    pub state: AppState,
}

impl Project {
    pub async fn new() -> Project {
        Project::with(|_| {}).await
    }

    /// With the configuration changed by `edit` (the key is set to [`KEY`] first).
    pub async fn with(edit: impl FnOnce(&mut ServerConfig)) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        copy_dir(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo"),
            &root,
        );
        std::fs::create_dir_all(root.join("workspace")).unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&root.join(".orket/orket.db"))
                .await
                .unwrap(),
        );
        let mut config = ServerConfig::new(&root, Arc::clone(&store));
        config.api_key = Some(KEY.to_string());
        edit(&mut config);
        let state = AppState::new(config);
        Project {
            dir,
            root,
            store,
            state,
        }
    }

    /// Sends a request (with the key unless `key` says otherwise); returns status and JSON.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        // As every HTTP/1.1 client does (without a key, only loopback hosts are served).
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:8082");
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let body = match body {
            Some(v) => {
                request = request.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let response = orket_server::router(self.state.clone())
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Method::GET, uri, None, Some(KEY)).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, uri, Some(body), Some(KEY)).await
    }

    /// Starts a replayed run of `target` and returns its id.
    pub async fn start(&self, target: &str, delay_ms: u64) -> String {
        let (status, body) = self
            .post(
                "/v1/system/run-active",
                serde_json::json!({"target": target, "provider": "replay",
                    "replay": "replay/hello_cli.jsonl", "replay_delay_ms": delay_ms,
                    "concurrency": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["session_id"].as_str().unwrap().to_string()
    }

    /// Waits until run `id` is no longer running in this server; returns its session.
    pub async fn wait_end(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, session) = self.get(&format!("/v1/sessions/{id}")).await;
            if status == StatusCode::OK
                && session["run"]["status"] != "running"
                && session["run"]["active"] == false
            {
                return session;
            }
            assert!(Instant::now() < deadline, "run {id} did not end: {session}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
