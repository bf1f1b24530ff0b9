//! The verification runner: an issue's fixture, which must live under
//! `<workspace>/verification/`, runs in a separate process with a clean environment, its own
//! working directory and JSON on stdin/stdout, inside a sandbox ([`crate::sandbox`]) that
//! holds where the OS allows it:
//! - no network: a new network namespace;
//! - nothing left behind: a new PID namespace, so every process the fixture started (in a
//!   session of its own or not) is killed when it ends;
//! - a process cap (`ORKET_VERIFY_PROCS`): a pids cgroup of the run's own, or RLIMIT_NPROC
//!   where that binds;
//! - the filesystem confined by Landlock (read-only: the system, Python and the workspace;
//!   writable: its own folder; see [`crate::landlock`]);
//! - no unix-domain sockets of its own making, by a seccomp filter ([`crate::seccomp`]): no
//!   connecting to the docker socket or any other socket file of the host;
//! - CPU, memory and wall-time limits.
//!
//! What the OS refused is said in the result's [`Isolation`] (`weaker` and `note`). The child
//! is sent each scenario's id and input only, never its expected output (code the fixture
//! imports could read it there): it reports what each call returned, and pass or fail is
//! decided here. Every fatal path (fixture outside `verification/`, missing fixture, non-zero
//! exit, bad output, timeout, processes left holding its output) fails all scenarios with the
//! reason.

use crate::interpreter::{python, Installation, FIXTURE_PATH};
use crate::namespace::namespaces;
use crate::process::{self, tail};
use crate::sandbox::Sandbox;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use orket_core::tools::VERIFICATION_DIR;

/// The Python side of the protocol: reads `{fixture_path, scenarios: [{id, input_data}]}`,
/// loads the fixture, calls `verify_<id>(input)` or `verify(input)` per scenario, and answers
/// `{ok, results: [{id, actual_output, status, error}]}` on the original stdout (the fixture's
/// own prints go to stderr), where `status` is `returned` or `raised`.
const PYTHON_RUNNER: &str = include_str!("verify_runner.py");

/// How much of the fixture's stderr a result keeps.
const LOG_CHARS: usize = 4000;

/// Resource limits of one fixture run (`ORKET_VERIFY_CPU_SEC`, `ORKET_VERIFY_MEM_MB`,
/// `ORKET_VERIFY_TIMEOUT_SEC`, `ORKET_VERIFY_PROCS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyLimits {
    /// CPU seconds (RLIMIT_CPU; the kernel sends SIGXCPU past it). Default 2.
    pub cpu_sec: u64,
    /// Address-space megabytes (RLIMIT_AS). Default 256.
    pub mem_mb: u64,
    /// Wall-clock seconds before the process group is killed. Default 5.
    pub timeout_sec: u64,
    /// Processes and threads the fixture may have at once, its own Python included (the
    /// `pids.max` of the run's pids cgroup, or RLIMIT_NPROC): past it `fork` fails with
    /// EAGAIN. Default 64. `0`: no cap (and in results stored before the cap existed).
    #[serde(default)]
    pub procs: u64,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        VerifyLimits {
            cpu_sec: 2,
            mem_mb: 256,
            timeout_sec: 5,
            procs: 64,
        }
    }
}

impl VerifyLimits {
    /// The defaults with `ORKET_VERIFY_*` applied from `lookup`; values that are not positive
    /// integers are ignored with a warning (returned).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> (Self, Vec<String>) {
        let mut limits = VerifyLimits::default();
        let mut warnings = Vec::new();
        for (key, slot) in [
            ("ORKET_VERIFY_CPU_SEC", &mut limits.cpu_sec),
            ("ORKET_VERIFY_MEM_MB", &mut limits.mem_mb),
            ("ORKET_VERIFY_TIMEOUT_SEC", &mut limits.timeout_sec),
            ("ORKET_VERIFY_PROCS", &mut limits.procs),
        ] {
            if let Some(raw) = lookup(key) {
                match raw.trim().parse::<u64>() {
                    Ok(n) if n > 0 => *slot = n,
                    _ => warnings.push(format!(
                        "{key}={raw:?} is not a positive whole number; using {}",
                        *slot
                    )),
                }
            }
        }
        (limits, warnings)
    }

    /// The defaults with `ORKET_VERIFY_*` from the environment (warnings are logged).
    pub fn from_env() -> Self {
        let (limits, warnings) = Self::from_lookup(&|k| std::env::var(k).ok());
        for w in warnings {
            tracing::warn!("{w}");
        }
        limits
    }
}

/// How the fixture process was cut off from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkIsolation {
    /// A new network namespace (only a down loopback inside).
    Namespace,
    /// A new user namespace holding a new network namespace (unprivileged).
    UserNamespace,
    /// None: the OS refused both; the fixture shares the host's network.
    None,
}

/// How the fixture process was confined on the filesystem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilesystemIsolation {
    /// Landlock: read-only system, Python and workspace, writable own folder, nothing else.
    Landlock,
    /// Not confined: the fixture could read what the user running Orket can read.
    #[default]
    None,
}

/// What capped the number of the fixture's processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessCap {
    /// A pids cgroup of the run's own (`pids.max`).
    PidsCgroup,
    /// RLIMIT_NPROC, counting the fixture's processes in its user namespace.
    Rlimit,
    /// Nothing: a fork bomb could fill the machine.
    #[default]
    None,
}

/// The isolation a run actually had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// The network isolation.
    pub network: NetworkIsolation,
    /// The filesystem confinement (absent in results stored before it existed: `none`).
    #[serde(default)]
    pub filesystem: FilesystemIsolation,
    /// The kernel's Landlock ABI version used, when Landlock was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock_abi: Option<u32>,
    /// The fixture's processes lived in a PID namespace of their own: every one it started was
    /// killed when it ended (absent in results stored before it existed: `false`).
    #[serde(default)]
    pub pid_namespace: bool,
    /// What capped its processes (absent in older results: `none`).
    #[serde(default)]
    pub process_cap: ProcessCap,
    /// A seccomp filter refused it unix-domain sockets of its own making, so no socket file of
    /// the host was reachable (absent in older results: `false`).
    #[serde(default)]
    pub unix_sockets_refused: bool,
    /// True when isolation was weaker than asked (any of the above missing).
    pub weaker: bool,
    /// What was weaker and why, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The limits applied.
    pub limits: VerifyLimits,
}

/// One scenario's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// The scenario id.
    pub id: String,
    /// What the fixture returned (`null` when it did not return).
    pub actual_output: Value,
    /// `passed` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
}

impl ScenarioResult {
    /// True when the scenario passed.
    pub fn passed(&self) -> bool {
        self.status == "passed"
    }
}

/// The result of running an issue's fixture: stored as `verification.last_run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationResult {
    /// Every scenario passed (and there was at least one).
    pub ok: bool,
    /// The fixture as the issue names it.
    pub fixture_path: String,
    /// Scenarios that passed.
    pub passed: usize,
    /// Scenarios that failed.
    pub failed: usize,
    /// All scenarios.
    pub total: usize,
    /// Per scenario, in the order.
    pub results: Vec<ScenarioResult>,
    /// The fatal reason that failed every scenario, if any.
    pub error: Option<String>,
    /// The fixture path left `verification/` (a security event).
    pub security_violation: bool,
    /// The isolation the process had (`None` when no process ran).
    pub isolation: Option<Isolation>,
    /// The tail of the fixture's stderr and the runner's notes.
    pub logs: String,
    /// When the run started (UTC).
    pub started_at: String,
    /// How long it took.
    pub duration_ms: u64,
}

impl VerificationResult {
    /// A text for the reviewer's prompt and the comment.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "Verification of {}: {} ({}/{} scenarios passed, {} failed).",
            self.fixture_path,
            if self.ok { "PASSED" } else { "FAILED" },
            self.passed,
            self.total,
            self.failed
        );
        if let Some(error) = &self.error {
            out.push_str(&format!("\nFatal: {error}"));
        }
        for r in &self.results {
            out.push_str(&format!("\n- {}: {}", r.id, r.status));
            if let Some(e) = &r.error {
                out.push_str(&format!(" ({})", tail(e, 300)));
            }
        }
        if let Some(iso) = self.isolation.as_ref().and_then(|i| i.note.as_ref()) {
            out.push_str(&format!("\nIsolation: {iso}"));
        }
        out
    }
}

/// A scenario of the issue. Only `id` and `input_data` are sent to the runner.
#[derive(Debug, Clone)]
struct ScenarioInput {
    id: String,
    input_data: Value,
    expected_output: Value,
}

/// The runner's `status` for a call that returned a value (anything else failed).
const RETURNED: &str = "returned";

/// Why a fixture cannot be run.
enum Refused {
    /// It is not under `verification/`: a security event.
    Outside(String),
    /// It is not there.
    Missing(String),
}

/// The fixture file of `fixture_path` in `workspace`, if it is a file inside
/// `<workspace>/verification/` once every link is followed.
fn resolve_fixture(workspace: &Path, fixture_path: &str) -> Result<PathBuf, Refused> {
    let given = Path::new(fixture_path);
    if given.components().any(|c| c == Component::ParentDir) {
        return Err(Refused::Outside(format!(
            "fixture path \"{fixture_path}\" contains \"..\"; fixtures must be inside {VERIFICATION_DIR}/"
        )));
    }
    let dir = workspace.join(VERIFICATION_DIR);
    let candidate = if given.is_absolute() {
        given.to_path_buf()
    } else {
        workspace.join(given)
    };
    if !candidate.starts_with(&dir) || candidate == dir {
        return Err(Refused::Outside(format!(
            "fixture path \"{fixture_path}\" is not inside {VERIFICATION_DIR}/ of the workspace {}",
            workspace.display()
        )));
    }
    if std::fs::symlink_metadata(&candidate).is_err() {
        return Err(Refused::Missing(format!(
            "fixture {} does not exist",
            candidate.display()
        )));
    }
    let real_root = workspace
        .canonicalize()
        .map_err(|e| Refused::Missing(format!("workspace {}: {e}", workspace.display())))?;
    let real_dir = dir
        .canonicalize()
        .map_err(|e| Refused::Missing(format!("{}: {e}", dir.display())))?;
    if !real_dir.starts_with(&real_root) {
        return Err(Refused::Outside(format!(
            "{} is a link to {}, outside the workspace",
            dir.display(),
            real_dir.display()
        )));
    }
    let real = candidate.canonicalize().map_err(|e| {
        Refused::Missing(format!(
            "fixture {} cannot be resolved (a dangling link?): {e}",
            candidate.display()
        ))
    })?;
    if !real.starts_with(&real_dir) {
        return Err(Refused::Outside(format!(
            "fixture \"{fixture_path}\" resolves to {}, outside {VERIFICATION_DIR}/ (a link escapes)",
            real.display()
        )));
    }
    if !real.is_file() {
        return Err(Refused::Missing(format!(
            "fixture {} is not a regular file",
            candidate.display()
        )));
    }
    Ok(real)
}

/// The scenarios of a verification block; an error names the field.
fn scenarios_of(verification: &Value) -> Result<Vec<ScenarioInput>, String> {
    let Some(list) = verification.get("scenarios") else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err("verification.scenarios: expected an array".to_string());
    };
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let id = match s.get("id") {
                Some(Value::String(id)) if !id.is_empty() => id.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(format!("verification.scenarios[{i}].id: expected a string")),
            };
            Ok(ScenarioInput {
                id,
                input_data: s.get("input_data").cloned().unwrap_or(Value::Null),
                expected_output: s.get("expected_output").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// JSON equality with numbers compared by value (`1` equals `1.0`), as Python compares them.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// The network isolation this machine allows, probed once per process.
pub fn network_isolation() -> NetworkIsolation {
    namespaces().network
}

/// True when fixtures run in a PID namespace of their own on this machine (probed once per
/// process with the network namespace).
pub fn pid_namespace() -> bool {
    namespaces().pid
}

/// A result where every scenario failed for `reason`.
fn fatal(
    fixture_path: &str,
    scenarios: &[ScenarioInput],
    reason: String,
    security_violation: bool,
    isolation: Option<Isolation>,
    logs: String,
) -> VerificationResult {
    let results: Vec<ScenarioResult> = scenarios
        .iter()
        .map(|s| ScenarioResult {
            id: s.id.clone(),
            actual_output: Value::Null,
            status: "failed".to_string(),
            error: Some(reason.clone()),
        })
        .collect();
    tracing::warn!("verification of {fixture_path} failed: {reason}");
    VerificationResult {
        ok: false,
        fixture_path: fixture_path.to_string(),
        passed: 0,
        failed: results.len(),
        total: results.len(),
        results,
        error: Some(reason),
        security_violation,
        isolation,
        logs,
        started_at: String::new(),
        duration_ms: 0,
    }
}

/// Runs the fixture named by an issue's `verification` block against its scenarios, inside
/// `workspace`. Blocking: it waits for the fixture process (see [`run_verification_async`]).
pub fn run_verification(
    workspace: &Path,
    verification: &Value,
    limits: &VerifyLimits,
) -> VerificationResult {
    let started_at = orket_core::time::now_timestamp();
    let started = std::time::Instant::now();
    let mut result = run_inner(workspace, verification, limits);
    result.started_at = started_at;
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

fn run_inner(workspace: &Path, verification: &Value, limits: &VerifyLimits) -> VerificationResult {
    let fixture_path = verification
        .get("fixture_path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let scenarios = match scenarios_of(verification) {
        Ok(s) => s,
        Err(e) => return fatal(&fixture_path, &[], e, false, None, String::new()),
    };
    // Fatal paths before any process ran.
    let refuse = |reason: String, security: bool| {
        fatal(
            &fixture_path,
            &scenarios,
            reason,
            security,
            None,
            String::new(),
        )
    };
    if fixture_path.is_empty() {
        return refuse("verification.fixture_path is missing".to_string(), false);
    }
    let fixture = match resolve_fixture(workspace, &fixture_path) {
        Ok(f) => f,
        Err(Refused::Outside(reason)) => {
            tracing::warn!("security: {reason}");
            return refuse(format!("security: {reason}"), true);
        }
        Err(Refused::Missing(reason)) => return refuse(reason, false),
    };
    if scenarios.is_empty() {
        let reason = format!("{fixture_path}: the issue's verification has no scenarios");
        return refuse(reason, false);
    }
    let python = match python() {
        Ok(p) => p,
        Err(e) => return refuse(e, false),
    };
    // What of the interpreter a fixture may read; a run that would grant a secret is refused.
    let readable = match Installation::of(&python).and_then(|i| i.readable(workspace)) {
        Ok(r) => r,
        Err(e) => return refuse(e, false),
    };
    let workdir = match tempfile::Builder::new().prefix("orket-verify-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            return refuse(format!("cannot create a working folder: {e}"), false);
        }
    };
    let mut sandbox = Sandbox::prepare(limits, &readable, workspace, workdir.path());
    let isolation = sandbox.isolation.clone();
    let fail = |reason: String, logs: String| {
        fatal(
            &fixture_path,
            &scenarios,
            reason,
            false,
            Some(isolation.clone()),
            logs,
        )
    };
    let runner = workdir.path().join("orket_runner.py");
    if let Err(e) = std::fs::write(&runner, PYTHON_RUNNER) {
        return fail(
            format!("cannot write {}: {e}", runner.display()),
            String::new(),
        );
    }
    // Never the expected outputs: the fixture (and the agent code it imports) runs in that
    // process and could find them there.
    let sent: Vec<Value> = scenarios
        .iter()
        .map(|s| json!({"id": s.id, "input_data": s.input_data}))
        .collect();
    let request = json!({
        "fixture_path": fixture.to_string_lossy(),
        "scenarios": sent,
    });
    let mut command = Command::new(&python);
    command
        .arg("-I")
        .arg("-B")
        .arg(&runner)
        .current_dir(workdir.path())
        .env_clear()
        .env("PATH", FIXTURE_PATH)
        .env("HOME", workdir.path())
        .env("TMPDIR", workdir.path())
        .env("LANG", "C.UTF-8")
        .env("PYTHONIOENCODING", "utf-8");
    sandbox.confine(&mut command);
    let input = request.to_string().into_bytes();
    let finished = match process::run(command, &input, Duration::from_secs(limits.timeout_sec)) {
        Ok(f) => f,
        Err(e) => {
            return fail(
                format!("cannot start {}: {e}", python.display()),
                String::new(),
            )
        }
    };
    let logs = finished.stderr_tail(LOG_CHARS);
    let reply: Option<Value> = serde_json::from_slice(&finished.stdout).ok();
    let left = if finished.left_running {
        format!(
            "the fixture left processes running (started in their own session); they kept its output open ({} killed)",
            finished.leftovers_killed
        )
    } else {
        String::new()
    };
    if finished.timed_out {
        let left = if left.is_empty() {
            String::new()
        } else {
            format!("; {left}")
        };
        return fail(
            format!(
                "the fixture {} (wall-time limit {} s, ORKET_VERIFY_TIMEOUT_SEC){left}",
                finished.describe(),
                limits.timeout_sec
            ),
            logs,
        );
    }
    if !left.is_empty() {
        return fail(format!("{left} (after {})", finished.describe()), logs);
    }
    if !finished.success() {
        let said = reply
            .as_ref()
            .and_then(|r| r.get("error"))
            .and_then(Value::as_str)
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        let hint = if finished.describe().contains("SIGXCPU") {
            format!(" (CPU limit {} s, ORKET_VERIFY_CPU_SEC)", limits.cpu_sec)
        } else {
            String::new()
        };
        return fail(
            format!(
                "the fixture process ended with {}{hint}{said}",
                finished.describe()
            ),
            logs,
        );
    }
    let Some(reply) = reply else {
        return fail(
            format!(
                "bad output: the runner's stdout is not JSON ({})",
                tail(&String::from_utf8_lossy(&finished.stdout), 200)
            ),
            logs,
        );
    };
    if reply.get("ok") != Some(&Value::Bool(true)) {
        let said = reply
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("the runner answered ok: false without an error");
        return fail(said.to_string(), logs);
    }
    let Some(answers) = reply.get("results").and_then(Value::as_array) else {
        return fail("bad output: no results array".to_string(), logs);
    };
    let mut results = Vec::with_capacity(scenarios.len());
    for s in &scenarios {
        let Some(answer) = answers
            .iter()
            .find(|a| a.get("id").and_then(Value::as_str) == Some(s.id.as_str()))
        else {
            return fail(format!("bad output: no result for scenario {}", s.id), logs);
        };
        let returned = answer.get("status").and_then(Value::as_str) == Some(RETURNED);
        let actual = if returned {
            answer.get("actual_output").cloned().unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        let passed = returned && json_equal(&actual, &s.expected_output);
        let error = if passed {
            None
        } else if returned {
            Some(format!("expected {}, got {actual}", s.expected_output))
        } else {
            Some(
                answer
                    .get("error")
                    .and_then(Value::as_str)
                    .map(|e| with_cap_hint(e, &isolation))
                    .unwrap_or_else(|| "the fixture did not return a value".to_string()),
            )
        };
        results.push(ScenarioResult {
            id: s.id.clone(),
            actual_output: actual,
            status: if passed { "passed" } else { "failed" }.to_string(),
            error,
        });
    }
    let passed = results.iter().filter(|r| r.passed()).count();
    VerificationResult {
        ok: passed == results.len(),
        fixture_path,
        passed,
        failed: results.len() - passed,
        total: results.len(),
        results,
        error: None,
        security_violation: false,
        isolation: Some(isolation),
        logs,
        started_at: String::new(),
        duration_ms: 0,
    }
}

/// A fixture's error, with the process cap named when the error is the one a fork past the
/// cap raises (EAGAIN: Python's BlockingIOError).
fn with_cap_hint(error: &str, isolation: &Isolation) -> String {
    if isolation.process_cap == ProcessCap::None || !error.contains("[Errno 11]") {
        return error.to_string();
    }
    format!(
        "{error} (the process cap is {} processes and threads, ORKET_VERIFY_PROCS)",
        isolation.limits.procs
    )
}

/// [`run_verification`] on a blocking thread, so the async executor keeps running other
/// turns while the fixture runs.
pub async fn run_verification_async(
    workspace: PathBuf,
    verification: Value,
    limits: VerifyLimits,
) -> VerificationResult {
    let fixture_path = verification
        .get("fixture_path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let scenarios = scenarios_of(&verification).unwrap_or_default();
    match tokio::task::spawn_blocking(move || run_verification(&workspace, &verification, &limits))
        .await
    {
        Ok(result) => result,
        Err(e) => fatal(
            &fixture_path,
            &scenarios,
            format!("the verification task failed: {e}"),
            false,
            None,
            String::new(),
        ),
    }
}

/// True when an issue's verification block names a fixture to run.
pub fn has_fixture(verification: &Value) -> bool {
    verification
        .get("fixture_path")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_and_types_stay_apart() {
        assert!(json_equal(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!json_equal(&json!(1), &json!("1")));
        assert!(!json_equal(&json!(true), &json!(1)));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn limits_come_from_the_variables_and_bad_values_are_reported() {
        let (limits, warnings) = VerifyLimits::from_lookup(&|k| match k {
            "ORKET_VERIFY_CPU_SEC" => Some("7".into()),
            "ORKET_VERIFY_MEM_MB" => Some("lots".into()),
            "ORKET_VERIFY_PROCS" => Some("0".into()),
            _ => None,
        });
        assert_eq!(
            limits,
            VerifyLimits {
                cpu_sec: 7,
                mem_mb: 256,
                timeout_sec: 5,
                procs: 64
            }
        );
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("ORKET_VERIFY_MEM_MB"), "{warnings:?}");
        assert!(
            warnings[1]
                .contains("ORKET_VERIFY_PROCS=\"0\" is not a positive whole number; using 64"),
            "{warnings:?}"
        );
        let (limits, _) =
            VerifyLimits::from_lookup(&|k| (k == "ORKET_VERIFY_PROCS").then(|| "200".to_string()));
        assert_eq!(limits.procs, 200);
    }

    #[test]
    fn results_stored_before_the_new_guarantees_still_parse_and_claim_none_of_them() {
        let stored = json!({
            "network": "namespace",
            "filesystem": "landlock",
            "landlock_abi": 6,
            "weaker": false,
            "limits": {"cpu_sec": 2, "mem_mb": 256, "timeout_sec": 5}
        });
        let isolation: Isolation = serde_json::from_value(stored).unwrap();
        assert!(!isolation.pid_namespace);
        assert_eq!(isolation.process_cap, ProcessCap::None);
        assert!(!isolation.unix_sockets_refused);
        assert_eq!(isolation.limits.procs, 0);
        let written = serde_json::to_value(&isolation).unwrap();
        assert_eq!(written["process_cap"], json!("none"));
    }
}
