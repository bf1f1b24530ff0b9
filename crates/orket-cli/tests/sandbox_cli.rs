//! `orket sandbox list|logs|stop` against a store holding a sandbox whose deploy failed (no
//! docker engine is reachable in the tests).

use assert_cmd::Command;
use orket_sandbox::{DeployRequest, SandboxManager, Stack};
use orket_store::{SandboxRecord, SandboxStatus, SqliteStore, Store};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

const NO_ENGINE: &str = "unix:///nonexistent/orket-test/docker.sock";

fn orket(root: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("orket")
        .unwrap()
        .env_remove("ORKET_DB")
        .env("DOCKER_HOST", NO_ENGINE)
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

/// A project whose store holds one failed sandbox; returns it and its password.
fn project_with_sandbox(root: &Path) -> (SandboxRecord, String) {
    std::env::set_var("DOCKER_HOST", NO_ENGINE);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let record = runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&root.join(".orket/orket.db"))
                .await
                .unwrap(),
        );
        let manager = SandboxManager::new(store, root.join(".orket/sandboxes"));
        std::fs::create_dir_all(root.join("workspace/shop")).unwrap();
        manager
            .deploy(&DeployRequest {
                epic: "shop".to_string(),
                stack: Stack::FastapiReactPostgres,
                workspace: root.join("workspace/shop"),
                run_id: None,
                build_id: None,
            })
            .await
            .unwrap()
    });
    let env =
        std::fs::read_to_string(Path::new(&record.compose_file).with_file_name(".env")).unwrap();
    let password = env.trim().strip_prefix("DB_PASSWORD=").unwrap().to_string();
    (record, password)
}

#[test]
fn list_shows_sandboxes_without_passwords_and_stop_frees_them() {
    let dir = tempfile::tempdir().unwrap();
    let (record, password) = project_with_sandbox(dir.path());
    assert_eq!(record.status, SandboxStatus::Failed);

    let out = orket(dir.path(), &["sandbox", "list", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains(&password));
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed[0]["id"], record.id.as_str());
    assert_eq!(listed[0]["status"], "failed");
    assert_eq!(listed[0]["ports"]["api"], record.ports.api);
    assert_eq!(
        listed[0]["urls"]["frontend"],
        format!("http://127.0.0.1:{}", record.ports.frontend)
    );

    let out = orket(dir.path(), &["sandbox", "list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ID "), "{text}");
    assert!(
        text.contains(&record.id)
            && text.contains("failed")
            && text.contains("fastapi-react-postgres")
    );
    assert!(!text.contains(&password));

    let out = orket(dir.path(), &["sandbox", "logs", &record.id]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&format!("sandbox {}: ", record.id)), "{err}");
    assert!(!err.contains(&password));

    // No engine runs here: the sandbox is not healthy (exit 1), says why, and the check is
    // recorded as a `sandbox_health` event.
    let out = orket(dir.path(), &["sandbox", "health", &record.id]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.starts_with(&format!("sandbox {} not healthy: ", record.id)),
        "{said}"
    );
    assert!(!said.contains(&password));
    let health_events = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = SqliteStore::open(&dir.path().join(".orket/orket.db"))
            .await
            .unwrap();
        let events = store.list_events(None, 0, 1000).await.unwrap();
        events
            .iter()
            .filter(|e| e.event.name() == "sandbox_health")
            .map(|e| e.event.data())
            .collect::<Vec<_>>()
    });
    assert_eq!(health_events.len(), 1, "{health_events:?}");
    assert_eq!(health_events[0]["healthy"], false);
    assert_eq!(health_events[0]["sandbox_id"], record.id.as_str());

    let out = orket(dir.path(), &["sandbox", "stop", &record.id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "sandbox {} stopped: stopped (it was failed, nothing ran)\n",
            record.id
        )
    );
    let out = orket(dir.path(), &["sandbox", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["status"], "stopped");
}

#[test]
fn without_a_store_there_are_no_sandboxes_and_unknown_ids_fail() {
    let dir = tempfile::tempdir().unwrap();
    let out = orket(dir.path(), &["sandbox", "list"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "No sandboxes.\n");
    assert!(
        !dir.path().join(".orket").exists(),
        "list never creates the store"
    );

    let out = orket(dir.path(), &["sandbox", "stop", "deadbeef"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("sandbox deadbeef not found"));

    project_with_sandbox(dir.path());
    let out = orket(dir.path(), &["sandbox", "logs", "deadbeef"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("sandbox deadbeef not found (see `orket sandbox list`)"));
}
