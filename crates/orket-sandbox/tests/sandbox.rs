//! Sandboxes: compose files the real `docker-compose` accepts, port allocation that never
//! collides (under concurrency, and around ports bound by other processes), passwords that
//! stay out of listings, and deploys that fail with a recorded reason when docker is not there.

use orket_sandbox::{
    compose_file, env_file, port_is_free, ComposeCli, DeployRequest, SandboxError, SandboxManager,
    Stack,
};
use orket_store::{SandboxPorts, SandboxStatus, SqliteStore, Store};
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// Points the compose CLI at a docker socket that does not exist, so no test ever reaches a
/// real docker engine (this machine has none; CI machines may).
fn no_docker_engine() {
    std::env::set_var("DOCKER_HOST", "unix:///nonexistent/orket-test/docker.sock");
}

async fn store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&dir.join("orket.db")).await.unwrap())
}

fn request(dir: &Path, stack: Stack) -> DeployRequest {
    let workspace = dir.join("workspace/shop");
    std::fs::create_dir_all(&workspace).unwrap();
    DeployRequest {
        epic: "shop".to_string(),
        stack,
        workspace,
        run_id: Some("a1b2c3d4".to_string()),
        build_id: Some("build-shop".to_string()),
    }
}

#[test]
fn every_stack_gives_a_compose_file_docker_compose_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let ports = SandboxPorts::for_slot(7).unwrap();
    let workspace = dir.path().join("work $pace");
    std::fs::create_dir_all(&workspace).unwrap();
    for stack in Stack::ALL {
        let sandbox = dir.path().join(stack.as_str());
        std::fs::create_dir_all(&sandbox).unwrap();
        let file = sandbox.join("docker-compose.yml");
        let yaml = compose_file(stack, &workspace, &ports);
        assert!(
            !yaml.contains("s3cretPw"),
            "the password is never in the file"
        );
        std::fs::write(&file, &yaml).unwrap();
        std::fs::write(sandbox.join(".env"), env_file("s3cretPw42")).unwrap();
        let out = Command::new("docker-compose")
            .arg("-f")
            .arg(&file)
            .arg("config")
            .current_dir(&sandbox)
            .output()
            .expect("docker-compose must be installed (see .ci/setup)");
        let config = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stack}: {}\n{yaml}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The password comes from .env; the ports from the slot; the workspace is mounted
        // as given (its `$` escaped, not interpolated).
        assert!(config.contains("s3cretPw42"), "{stack}: {config}");
        for port in [ports.api, ports.db, ports.admin] {
            assert!(
                config.contains(&port.to_string()),
                "{stack}: {port} in {config}"
            );
        }
        assert_eq!(
            config.contains(&ports.frontend.to_string()),
            stack.has_frontend()
        );
        assert!(config.contains("work $pace"), "{stack}: {config}");
    }
}

#[test]
fn stacks_parse_by_name_and_unknown_ones_are_listed() {
    assert_eq!(
        "fastapi-vue-mongo".parse::<Stack>(),
        Ok(Stack::FastapiVueMongo)
    );
    let err = "rails".parse::<Stack>().unwrap_err();
    assert!(
        err.contains("\"rails\"") && err.contains("csharp-razor-ef"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_allocations_never_share_a_port_and_skip_bound_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    // A foreign process holds the api port of the first slot that would be handed out.
    let first = (0..1000u16)
        .find(|k| {
            SandboxPorts::for_slot(*k)
                .unwrap()
                .all()
                .into_iter()
                .all(port_is_free)
        })
        .unwrap();
    let foreign_port = SandboxPorts::for_slot(first).unwrap().api;
    let _foreign = std::net::TcpListener::bind(("127.0.0.1", foreign_port)).unwrap();

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let manager = SandboxManager::new(Arc::clone(&store), dir.path().join("sandboxes"));
            let req = request(dir.path(), Stack::FastapiReactPostgres);
            tokio::spawn(async move { manager.allocate(&req).await })
        })
        .collect();
    let mut records = Vec::new();
    for t in tasks {
        records.push(t.await.unwrap().unwrap());
    }
    let slots: HashSet<u16> = records.iter().map(|r| r.slot).collect();
    assert_eq!(slots.len(), 20, "slots: {slots:?}");
    let ports: Vec<u16> = records.iter().flat_map(|r| r.ports.all()).collect();
    let unique: HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(unique.len(), 80, "every port once: {ports:?}");
    assert!(
        !unique.contains(&foreign_port),
        "{foreign_port} is bound by another process"
    );
    assert!(!slots.contains(&first));
    let listed = store.list_sandboxes().await.unwrap();
    assert_eq!(listed.len(), 20);
    assert!(listed.iter().all(|s| s.status == SandboxStatus::Allocated));
    // Each has its compose file and an owner-only .env.
    for r in &records {
        assert!(Path::new(&r.compose_file).is_file());
        let env = Path::new(&r.compose_file).with_file_name(".env");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&env).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_without_a_docker_engine_fails_with_a_recorded_reason() {
    no_docker_engine();
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let manager = SandboxManager::new(Arc::clone(&store), dir.path().join("sandboxes"));
    let record = manager
        .deploy(&request(dir.path(), Stack::FastapiVueMongo))
        .await
        .unwrap();
    assert_eq!(record.status, SandboxStatus::Failed);
    let reason = record.reason.clone().unwrap();
    assert!(
        reason.contains("up failed: the docker engine is not reachable")
            || reason.contains("neither `docker compose`"),
        "{reason}"
    );
    let password = std::fs::read_to_string(Path::new(&record.compose_file).with_file_name(".env"))
        .unwrap()
        .trim()
        .strip_prefix("DB_PASSWORD=")
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 24);
    assert!(!reason.contains(&password));

    // The listing shows the sandbox with its URLs and never the password.
    let listed = manager.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    let json = serde_json::to_string(&listed).unwrap();
    assert!(!json.contains(&password), "{json}");
    assert!(json.contains(&format!("http://127.0.0.1:{}", record.ports.api)));

    let events: Vec<(String, String)> = store
        .list_events(Some("a1b2c3d4"), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event.name().to_string(), e.event.data().to_string()))
        .collect();
    let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["sandbox_created", "sandbox_deploy_failed"]);
    assert!(events.iter().all(|e| !e.1.contains(&password)));

    // A failed sandbox no longer holds its ports.
    assert!(!record.status.holds_ports());

    // Logs need the engine: a clear error. Stopping a sandbox that never ran marks it.
    let err = manager.logs(&record.id, 50).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("sandbox {}: ", record.id)),
        "{err}"
    );
    let stopped = manager.stop(&record.id).await.unwrap();
    assert_eq!(stopped.status, SandboxStatus::Stopped);
    assert_eq!(
        stopped.reason.as_deref(),
        Some("stopped (it was failed, nothing ran)")
    );
    let health = manager.health(&record.id).await.unwrap();
    assert!(!health.healthy);
    let names: Vec<String> = store
        .list_events(Some("a1b2c3d4"), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.name().to_string())
        .collect();
    assert!(names.contains(&"sandbox_stopped".to_string()), "{names:?}");
    assert!(names.contains(&"sandbox_health".to_string()), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_any_compose_cli_the_reason_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let manager = SandboxManager::new(Arc::clone(&store), dir.path().join("sandboxes"))
        .with_compose(Err(
            "neither `docker compose` nor `docker-compose` is installed".to_string(),
        ));
    let record = manager
        .deploy(&request(dir.path(), Stack::CsharpRazorEf))
        .await
        .unwrap();
    assert_eq!(record.status, SandboxStatus::Failed);
    assert!(record.reason.unwrap().contains("is installed"));
    assert!(matches!(
        manager.stop("ffffffff").await.unwrap_err(),
        SandboxError::NotFound(_)
    ));
    assert_eq!(
        manager.stop("ffffffff").await.unwrap_err().to_string(),
        "sandbox ffffffff not found (see `orket sandbox list`)"
    );
}

#[test]
fn the_compose_cli_is_found() {
    // .ci/setup installs docker-compose; the plugin is used when docker has it.
    let cli = ComposeCli::detect().unwrap();
    assert!(matches!(
        cli,
        ComposeCli::Plugin(_) | ComposeCli::Standalone(_)
    ));
}
