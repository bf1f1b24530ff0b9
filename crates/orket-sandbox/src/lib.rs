//! Sandboxes: a docker compose deployment of a run's output. The manager allocates
//! a port slot that no live sandbox holds and no process on the machine has bound, writes the
//! compose file for the stack with a random database password kept in the sandbox's `.env`
//! only, registers the sandbox in the store, and deploys / checks / shows logs of / stops it
//! through the compose CLI. Every step is an event; a failure is recorded on the sandbox and
//! never crashes a run. This is the API the CLI (`orket sandbox`) and the HTTP server use.

#![forbid(unsafe_code)]

mod compose;
mod docker;

pub use compose::{compose_file, env_file, Stack};
pub use docker::{ComposeCli, ComposeOutput};

use orket_core::Event;
use orket_store::events::{EventSink, Recorder};
use orket_store::{
    Change, NewEvent, SandboxPorts, SandboxRecord, SandboxStatus, Store, StoreError,
};
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Slots tried before giving up (ports up to 8080 + 999).
pub const MAX_SLOTS: u16 = 1000;
/// Time for `up -d` (images may be pulled).
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(600);
/// Time for `down`.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// Time for `ps` and `logs`.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// What replaces the password wherever compose output is kept.
const REDACTED: &str = "********";

/// Why a sandbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No such sandbox.
    #[error("sandbox {0} not found (see `orket sandbox list`)")]
    NotFound(String),
    /// Every slot is held or bound.
    #[error("no free port slot among {MAX_SLOTS} (every one is held by a sandbox or bound on this machine)")]
    NoFreePorts,
    /// Its files could not be written or read.
    #[error("{path}: {message}")]
    Files {
        /// The file or folder.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The compose CLI failed or is missing.
    #[error("sandbox {id}: {message}")]
    Compose {
        /// The sandbox.
        id: String,
        /// What the CLI said.
        message: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What to deploy.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The epic whose output it is.
    pub epic: String,
    /// The stack.
    pub stack: Stack,
    /// The workspace to deploy.
    pub workspace: PathBuf,
    /// The run deploying it.
    pub run_id: Option<String>,
    /// Its build.
    pub build_id: Option<String>,
}

/// A sandbox as listed: the registry row and its URLs. Never a password.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SandboxInfo {
    /// The registry row.
    #[serde(flatten)]
    pub record: SandboxRecord,
    /// Where its services answer.
    pub urls: Value,
}

impl SandboxInfo {
    fn of(record: SandboxRecord) -> Self {
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let stack: Option<Stack> = record.stack.parse().ok();
        let mut urls = json!({
            "api": url(record.ports.api),
            "admin": url(record.ports.admin),
            "db": format!("127.0.0.1:{}", record.ports.db),
        });
        if stack.is_none_or(Stack::has_frontend) {
            urls["frontend"] = json!(url(record.ports.frontend));
        }
        SandboxInfo { record, urls }
    }
}

/// The result of a health check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SandboxHealth {
    /// The sandbox.
    pub id: String,
    /// Its containers run.
    pub healthy: bool,
    /// What `ps` said, or why it failed.
    pub detail: String,
}

/// True when nothing listens on `port` of 127.0.0.1 (checked by binding it for a moment).
pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A random password: 24 letters and digits.
fn new_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..24)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// Sandboxes of one store, with their files under one folder.
pub struct SandboxManager {
    store: Arc<dyn Store>,
    recorder: Recorder,
    dir: PathBuf,
    compose: Option<Result<ComposeCli, String>>,
}

impl SandboxManager {
    /// A manager over `store` keeping each sandbox's compose file and `.env` in `dir/<id>/`
    /// (keep it outside every workspace, so agents cannot read the password:
    /// `<root>/.orket/sandboxes`).
    pub fn new(store: Arc<dyn Store>, dir: impl Into<PathBuf>) -> Self {
        Self::in_folder(store, dir.into())
    }

    /// The sandboxes of the project at `root`: their files in `<root>/.orket/sandboxes`, beside
    /// the store and outside every workspace.
    pub fn for_project(store: Arc<dyn Store>, root: &std::path::Path) -> Self {
        Self::in_folder(store, root.join(".orket").join("sandboxes"))
    }

    fn in_folder(store: Arc<dyn Store>, dir: PathBuf) -> Self {
        SandboxManager {
            recorder: Recorder::for_store(Arc::clone(&store)),
            store,
            dir,
            compose: None,
        }
    }

    /// The same manager, delivering its events to `sink` (a run's log and bus) too.
    pub fn with_sink(mut self, sink: EventSink) -> Self {
        self.recorder = Recorder::new(Arc::clone(&self.store), sink);
        self
    }

    /// The same manager with a given compose CLI (or the reason there is none) instead of
    /// detecting it.
    pub fn with_compose(mut self, compose: Result<ComposeCli, String>) -> Self {
        self.compose = Some(compose);
        self
    }

    fn compose(&self) -> Result<ComposeCli, String> {
        match &self.compose {
            Some(c) => c.clone(),
            None => ComposeCli::detect(),
        }
    }

    /// The folder of a sandbox's files.
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Commits `changes` with `event` (of run `run_id`) as one batch, and delivers the event.
    async fn emit(
        &self,
        run_id: Option<&str>,
        event: Event,
        mut changes: Vec<Change>,
    ) -> Result<(), SandboxError> {
        changes.push(Change::AppendEvent(
            NewEvent::new(run_id, event).role(orket_core::ENGINE_ACTOR),
        ));
        self.recorder.commit(changes).await?;
        Ok(())
    }

    /// Reserves a port slot held by no live sandbox and bound by no process, writes the
    /// sandbox's compose file and `.env`, and registers it as `allocated`.
    pub async fn allocate(&self, request: &DeployRequest) -> Result<SandboxRecord, SandboxError> {
        let held: HashSet<u16> = self
            .store
            .list_sandboxes()
            .await?
            .into_iter()
            .filter(|s| s.status.holds_ports())
            .map(|s| s.slot)
            .collect();
        for slot in 0..MAX_SLOTS {
            if held.contains(&slot) {
                continue;
            }
            let Some(ports) = SandboxPorts::for_slot(slot) else {
                break;
            };
            if !ports.all().into_iter().all(port_is_free) {
                continue;
            }
            let id = orket_core::ids::random_card_id();
            let dir = self.sandbox_dir(&id);
            let file = dir.join("docker-compose.yml");
            let now = orket_store::now_timestamp();
            let record = SandboxRecord {
                id: id.clone(),
                run_id: request.run_id.clone(),
                build_id: request.build_id.clone(),
                epic: request.epic.clone(),
                stack: request.stack.to_string(),
                slot,
                ports,
                status: SandboxStatus::Allocated,
                reason: None,
                project_name: format!("orket-{id}"),
                compose_file: file.to_string_lossy().into_owned(),
                workspace: request.workspace.to_string_lossy().into_owned(),
                created_at: now.clone(),
                updated_at: now,
            };
            match self.store.insert_sandbox(record.clone()).await {
                Ok(()) => {}
                // Another allocation took the slot first: try the next one.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            if let Err(e) = write_files(&dir, request, &ports) {
                self.fail(&record, &e.to_string()).await?;
                return Err(e);
            }
            self.emit(
                request.run_id.as_deref(),
                Event::SandboxCreated {
                    sandbox_id: id.clone(),
                    stack: record.stack.clone(),
                    ports: json!(ports),
                    compose_file: record.compose_file.clone(),
                },
                vec![],
            )
            .await?;
            return Ok(record);
        }
        Err(SandboxError::NoFreePorts)
    }

    /// Marks a sandbox failed with `reason` (its ports are released) and records
    /// `sandbox_deploy_failed`.
    async fn fail(&self, record: &SandboxRecord, reason: &str) -> Result<(), SandboxError> {
        tracing::warn!("sandbox {} deploy failed: {reason}", record.id);
        self.emit(
            record.run_id.as_deref(),
            Event::SandboxDeployFailed {
                sandbox_id: Some(record.id.clone()),
                epic: None,
                stack: Some(record.stack.clone()),
                reason: reason.to_string(),
            },
            vec![Change::UpdateSandbox {
                id: record.id.clone(),
                status: SandboxStatus::Failed,
                reason: Some(reason.to_string()),
            }],
        )
        .await
    }

    /// Allocates and deploys (`up -d`, then a health check). A deploy that fails is not an
    /// error: the sandbox comes back `failed` with the reason, recorded with an event. Errors
    /// are for the store, for files, and when no port slot is free.
    pub async fn deploy(&self, request: &DeployRequest) -> Result<SandboxRecord, SandboxError> {
        let record = self.allocate(request).await?;
        let compose = match self.compose() {
            Ok(c) => c,
            Err(reason) => return self.failed(record, &reason).await,
        };
        self.store
            .update_sandbox(&record.id, SandboxStatus::Deploying, None)
            .await?;
        let file = PathBuf::from(&record.compose_file);
        let up = compose
            .run(&record.project_name, &file, &["up", "-d"], DEPLOY_TIMEOUT)
            .await;
        if !up.ok {
            let reason = self.redact(
                &record.id,
                &format!("{} up failed: {}", compose.name(), up.failure()),
            );
            return self.failed(record, &reason).await;
        }
        let health = self.check(&compose, &record).await;
        if !health.healthy {
            let reason = format!("deployed, but not running: {}", health.detail);
            return self.failed(record, &reason).await;
        }
        self.emit(
            record.run_id.as_deref(),
            Event::SandboxDeployed {
                sandbox_id: record.id.clone(),
                stack: record.stack.clone(),
                ports: json!(record.ports),
            },
            vec![Change::UpdateSandbox {
                id: record.id.clone(),
                status: SandboxStatus::Running,
                reason: None,
            }],
        )
        .await?;
        self.get(&record.id).await
    }

    async fn failed(
        &self,
        record: SandboxRecord,
        reason: &str,
    ) -> Result<SandboxRecord, SandboxError> {
        self.fail(&record, reason).await?;
        self.get(&record.id).await
    }

    async fn get(&self, id: &str) -> Result<SandboxRecord, SandboxError> {
        self.store
            .get_sandbox(id)
            .await?
            .ok_or_else(|| SandboxError::NotFound(id.to_string()))
    }

    /// Every sandbox, newest first, with its URLs. Never a password.
    pub async fn list(&self) -> Result<Vec<SandboxInfo>, SandboxError> {
        Ok(self
            .store
            .list_sandboxes()
            .await?
            .into_iter()
            .map(SandboxInfo::of)
            .collect())
    }

    /// One sandbox with its URLs.
    pub async fn info(&self, id: &str) -> Result<SandboxInfo, SandboxError> {
        Ok(SandboxInfo::of(self.get(id).await?))
    }

    /// Replaces the sandbox's password with asterisks in `text`.
    fn redact(&self, id: &str, text: &str) -> String {
        match read_password(&self.sandbox_dir(id)) {
            Some(p) if !p.is_empty() => text.replace(&p, REDACTED),
            _ => text.to_string(),
        }
    }

    async fn check(&self, compose: &ComposeCli, record: &SandboxRecord) -> SandboxHealth {
        let file = PathBuf::from(&record.compose_file);
        let ps = compose
            .run(&record.project_name, &file, &["ps", "-q"], QUERY_TIMEOUT)
            .await;
        let containers = ps.stdout.lines().filter(|l| !l.trim().is_empty()).count();
        let (healthy, detail) = if !ps.ok {
            (
                false,
                format!("{} ps failed: {}", compose.name(), ps.failure()),
            )
        } else if containers == 0 {
            (false, "no container is running".to_string())
        } else {
            (true, format!("{containers} containers running"))
        };
        SandboxHealth {
            id: record.id.clone(),
            healthy,
            detail: self.redact(&record.id, &detail),
        }
    }

    /// Checks a sandbox's containers (`ps`) and records `sandbox_health`.
    pub async fn health(&self, id: &str) -> Result<SandboxHealth, SandboxError> {
        let record = self.get(id).await?;
        let health = match self.compose() {
            Ok(compose) => self.check(&compose, &record).await,
            Err(reason) => SandboxHealth {
                id: id.to_string(),
                healthy: false,
                detail: reason,
            },
        };
        self.emit(
            record.run_id.as_deref(),
            Event::SandboxHealth {
                sandbox_id: id.to_string(),
                healthy: health.healthy,
                detail: health.detail.clone(),
            },
            vec![],
        )
        .await?;
        Ok(health)
    }

    /// The last `tail` lines of the sandbox's container logs (password redacted).
    pub async fn logs(&self, id: &str, tail: usize) -> Result<String, SandboxError> {
        let record = self.get(id).await?;
        let compose = self.compose().map_err(|message| SandboxError::Compose {
            id: id.to_string(),
            message,
        })?;
        let tail = tail.to_string();
        let out = compose
            .run(
                &record.project_name,
                Path::new(&record.compose_file),
                &["logs", "--no-color", "--tail", &tail],
                QUERY_TIMEOUT,
            )
            .await;
        if !out.ok {
            return Err(SandboxError::Compose {
                id: id.to_string(),
                message: self.redact(
                    id,
                    &format!("{} logs failed: {}", compose.name(), out.failure()),
                ),
            });
        }
        Ok(self.redact(id, &out.stdout))
    }

    /// Stops a sandbox (`down -v`) and releases its ports; records `sandbox_stopped`. A
    /// sandbox that never deployed (failed, allocated) is just marked stopped; one already
    /// stopped is returned as is.
    pub async fn stop(&self, id: &str) -> Result<SandboxRecord, SandboxError> {
        let record = self.get(id).await?;
        if record.status == SandboxStatus::Stopped {
            return Ok(record);
        }
        let deployed = matches!(
            record.status,
            SandboxStatus::Running | SandboxStatus::Deploying
        );
        if deployed {
            let down = match self.compose() {
                Ok(compose) => {
                    let out = compose
                        .run(
                            &record.project_name,
                            Path::new(&record.compose_file),
                            &["down", "-v", "--remove-orphans"],
                            STOP_TIMEOUT,
                        )
                        .await;
                    (!out.ok).then(|| format!("{} down failed: {}", compose.name(), out.failure()))
                }
                Err(reason) => Some(reason),
            };
            if let Some(reason) = down {
                let reason = self.redact(id, &reason);
                self.emit(
                    record.run_id.as_deref(),
                    Event::SandboxStopFailed {
                        sandbox_id: id.to_string(),
                        reason: reason.clone(),
                    },
                    vec![],
                )
                .await?;
                return Err(SandboxError::Compose {
                    id: id.to_string(),
                    message: reason,
                });
            }
        }
        let reason = if deployed {
            "stopped".to_string()
        } else {
            format!("stopped (it was {}, nothing ran)", record.status)
        };
        self.emit(
            record.run_id.as_deref(),
            Event::SandboxStopped {
                sandbox_id: id.to_string(),
                was: record.status.as_str().to_string(),
            },
            vec![Change::UpdateSandbox {
                id: id.to_string(),
                status: SandboxStatus::Stopped,
                reason: Some(reason),
            }],
        )
        .await?;
        self.get(id).await
    }
}

/// Writes `docker-compose.yml` and `.env` (owner-only) into `dir`.
fn write_files(
    dir: &Path,
    request: &DeployRequest,
    ports: &SandboxPorts,
) -> Result<(), SandboxError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |path: &Path, e: std::io::Error| SandboxError::Files {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let file = dir.join("docker-compose.yml");
    std::fs::write(
        &file,
        compose_file(request.stack, &request.workspace, ports),
    )
    .map_err(|e| err(&file, e))?;
    let env = dir.join(".env");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&env)
        .map_err(|e| err(&env, e))?;
    out.write_all(env_file(&new_password()).as_bytes())
        .map_err(|e| err(&env, e))?;
    Ok(())
}

/// The password in a sandbox folder's `.env`.
fn read_password(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(".env"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("DB_PASSWORD=").map(str::to_string))
}

/// The stack an epic asks to be deployed with: `params.sandbox: true` on the epic (or its
/// environment) turns deploys on, `params.stack` (epic first) names the stack. `None` when
/// sandboxes are off; `Some(Err)` when on without a valid stack.
pub fn requested_stack(epic_params: &Value, env_params: &Value) -> Option<Result<Stack, String>> {
    let on = [epic_params, env_params]
        .iter()
        .any(|p| p.get("sandbox") == Some(&Value::Bool(true)));
    if !on {
        return None;
    }
    let stack = epic_params
        .get("stack")
        .or_else(|| env_params.get("stack"))
        .and_then(Value::as_str);
    Some(match stack {
        Some(s) => s.parse(),
        None => Err(format!(
            "params.sandbox is true but no params.stack names the stack (one of: {})",
            Stack::ALL.map(Stack::as_str).join(", ")
        )),
    })
}
