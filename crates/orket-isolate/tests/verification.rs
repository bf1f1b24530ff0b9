//! The verification runner: fixtures under `verification/` only, every fatal path failing all
//! scenarios, resource limits, no network, and (with Landlock) no file outside the workspace;
//! nothing the fixture starts outlives it (PID namespace), a process cap, no unix socket file
//! of the host reachable (seccomp).

use orket_isolate::landlock;
use orket_isolate::verify::{
    network_isolation, pid_namespace, run_verification, run_verification_async,
    FilesystemIsolation, NetworkIsolation, ProcessCap, VerificationResult, VerifyLimits,
};
use serde_json::{json, Value};
use std::path::Path;

/// A workspace with `verification/<name>` holding `source`.
fn workspace_with(name: &str, source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("verification")).unwrap();
    std::fs::write(dir.path().join("verification").join(name), source).unwrap();
    dir
}

fn block(fixture: &str, scenarios: Value) -> Value {
    json!({"fixture_path": fixture, "scenarios": scenarios})
}

fn two_scenarios() -> Value {
    json!([
        {"id": "add", "input_data": {"a": 2, "b": 3}, "expected_output": 5},
        {"id": "neg", "input_data": {"a": -2, "b": -3}, "expected_output": -5}
    ])
}

fn run(ws: &Path, verification: &Value) -> VerificationResult {
    run_verification(ws, verification, &VerifyLimits::default())
}

fn counts(r: &VerificationResult) -> (usize, usize, usize) {
    (r.passed, r.failed, r.total)
}

/// Every scenario failed with the fatal reason, which contains `needle`.
fn all_failed_with(r: &VerificationResult, total: usize, needle: &str) {
    assert!(!r.ok, "{r:#?}");
    assert_eq!(counts(r), (0, total, total), "{r:#?}");
    let error = r.error.as_deref().unwrap_or_default();
    assert!(error.contains(needle), "{needle:?} not in {error:?}");
    assert!(r
        .results
        .iter()
        .all(|s| s.status == "failed" && s.error.as_deref() == Some(error)));
}

#[test]
fn a_passing_fixture_passes_every_scenario() {
    let ws = workspace_with(
        "test_add.py",
        "def verify_add(data):\n    return data['a'] + data['b']\n\ndef verify(data):\n    return data['a'] + data['b']\n",
    );
    let r = run(
        ws.path(),
        &block("verification/test_add.py", two_scenarios()),
    );
    assert!(r.ok, "{r:#?}");
    assert_eq!(counts(&r), (2, 0, 2));
    assert_eq!(r.results[0].actual_output, json!(5));
    assert_eq!(r.results[1].actual_output, json!(-5));
    assert!(r.error.is_none() && !r.security_violation);
    assert!(r
        .summary()
        .contains("PASSED (2/2 scenarios passed, 0 failed)"));
}

#[test]
fn a_mismatch_fails_only_that_scenario() {
    // verify_neg is wrong; add falls back on verify().
    let ws = workspace_with(
        "test_add.py",
        "def verify(data):\n    return data['a'] + data['b']\n\ndef verify_neg(data):\n    return 0\n",
    );
    let r = run(
        ws.path(),
        &block("verification/test_add.py", two_scenarios()),
    );
    assert!(!r.ok);
    assert_eq!(counts(&r), (1, 1, 2));
    let neg = &r.results[1];
    assert_eq!(neg.status, "failed");
    assert_eq!(neg.actual_output, json!(0));
    assert!(neg.error.as_deref().unwrap().contains("expected -5, got 0"));
    assert!(r.error.is_none(), "a mismatch is not fatal");
}

#[test]
fn an_exception_in_the_fixture_fails_its_scenario() {
    let ws = workspace_with(
        "test_add.py",
        "def verify_add(data):\n    return data['a'] + data['b']\n\ndef verify_neg(data):\n    raise ValueError('negative numbers are not supported')\n",
    );
    let r = run(
        ws.path(),
        &block("verification/test_add.py", two_scenarios()),
    );
    assert_eq!(counts(&r), (1, 1, 2));
    let error = r.results[1].error.as_deref().unwrap();
    assert!(
        error.contains("ValueError: negative numbers are not supported"),
        "{error}"
    );
}

#[test]
fn a_syntax_error_fails_every_scenario() {
    let ws = workspace_with("test_add.py", "def verify(data)\n    return 1\n");
    let r = run(
        ws.path(),
        &block("verification/test_add.py", two_scenarios()),
    );
    all_failed_with(&r, 2, "SyntaxError");
    assert!(
        r.error.as_deref().unwrap().contains("exit code 1"),
        "{r:#?}"
    );
}

#[test]
fn a_missing_fixture_fails_every_scenario() {
    let ws = workspace_with("other.py", "def verify(d):\n    return d\n");
    let r = run(
        ws.path(),
        &block("verification/test_gone.py", two_scenarios()),
    );
    all_failed_with(&r, 2, "test_gone.py does not exist");
    assert!(!r.security_violation);
}

#[test]
fn fixtures_outside_verification_are_security_events() {
    let ws = workspace_with("test_ok.py", "def verify(d):\n    return d\n");
    let root = ws.path();
    std::fs::write(root.join("main.py"), "def verify(d):\n    return 5\n").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("evil.py"),
        "def verify(d):\n    return 5\n",
    )
    .unwrap();
    // A link inside verification/ pointing out of it.
    std::os::unix::fs::symlink(
        outside.path().join("evil.py"),
        root.join("verification/link.py"),
    )
    .unwrap();
    // A folder link inside verification/.
    std::os::unix::fs::symlink(outside.path(), root.join("verification/sub")).unwrap();
    for path in [
        "main.py".to_string(),
        "verification/../main.py".to_string(),
        "../evil.py".to_string(),
        outside.path().join("evil.py").display().to_string(),
        "verification/link.py".to_string(),
        "verification/sub/evil.py".to_string(),
        "verification".to_string(),
    ] {
        let r = run(root, &block(&path, two_scenarios()));
        all_failed_with(&r, 2, "security:");
        assert!(r.security_violation, "{path}: {r:#?}");
        assert!(r.isolation.is_none(), "{path}: no process ran");
    }
}

#[test]
fn verification_folder_linked_out_of_the_workspace_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("t.py"),
        "def verify(d):\n    return 5\n",
    )
    .unwrap();
    let ws = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path().join("verification")).unwrap();
    let r = run(ws.path(), &block("verification/t.py", two_scenarios()));
    all_failed_with(&r, 2, "outside");
    assert!(r.security_violation);
}

#[test]
fn an_infinite_loop_times_out() {
    let ws = workspace_with(
        "test_loop.py",
        "import time\ndef verify(d):\n    while True:\n        time.sleep(0.01)\n",
    );
    let limits = VerifyLimits {
        timeout_sec: 1,
        ..VerifyLimits::default()
    };
    let started = std::time::Instant::now();
    let r = run_verification(
        ws.path(),
        &block("verification/test_loop.py", two_scenarios()),
        &limits,
    );
    all_failed_with(&r, 2, "timed out");
    assert!(r
        .error
        .as_deref()
        .unwrap()
        .contains("ORKET_VERIFY_TIMEOUT_SEC"));
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

#[test]
fn a_busy_loop_hits_the_cpu_limit() {
    let ws = workspace_with(
        "test_spin.py",
        "def verify(d):\n    while True:\n        pass\n",
    );
    let limits = VerifyLimits {
        cpu_sec: 1,
        timeout_sec: 20,
        ..VerifyLimits::default()
    };
    let started = std::time::Instant::now();
    let r = run_verification(
        ws.path(),
        &block("verification/test_spin.py", two_scenarios()),
        &limits,
    );
    all_failed_with(&r, 2, "CPU limit 1 s");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

#[test]
fn a_memory_hog_is_stopped_by_the_limit() {
    let ws = workspace_with(
        "test_hog.py",
        "def verify_hog(d):\n    block = bytearray(1024 * 1024 * 1024)\n    return len(block)\n\ndef verify_small(d):\n    return len(bytearray(1024 * 1024))\n",
    );
    let scenarios = json!([
        {"id": "hog", "input_data": null, "expected_output": 1073741824},
        {"id": "small", "input_data": null, "expected_output": 1048576}
    ]);
    let r = run(ws.path(), &block("verification/test_hog.py", scenarios));
    assert_eq!(counts(&r), (1, 1, 2), "{r:#?}");
    assert!(
        r.results[0]
            .error
            .as_deref()
            .unwrap()
            .contains("MemoryError"),
        "{r:#?}"
    );
    assert_eq!(r.isolation.as_ref().unwrap().limits.mem_mb, 256);
}

#[test]
fn a_fixture_cannot_reach_the_network() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept in the background so a connection that got through would succeed.
    std::thread::spawn(move || for _ in listener.incoming() {});
    let ws = workspace_with(
        "test_net.py",
        "import socket\ndef verify(d):\n    s = socket.create_connection(('127.0.0.1', d['port']), timeout=2)\n    s.close()\n    return 'connected'\n",
    );
    let scenarios =
        json!([{"id": "net", "input_data": {"port": port}, "expected_output": "connected"}]);
    let r = run(ws.path(), &block("verification/test_net.py", scenarios));
    let isolation = r.isolation.clone().unwrap();
    if network_isolation() == NetworkIsolation::None {
        // This machine refuses network namespaces: the result must say so.
        assert!(isolation.weaker, "{r:#?}");
        assert!(isolation.note.unwrap().contains("weaker isolation"));
    } else {
        assert_ne!(isolation.network, NetworkIsolation::None);
        assert_eq!(counts(&r), (0, 1, 1), "{r:#?}");
        let error = r.results[0].error.as_deref().unwrap();
        assert!(
            // Landlock (ABI 4) refuses the connect itself; a bare network namespace has no route.
            error.contains("OSError")
                || error.contains("unreachable")
                || error.contains("refused")
                || error.contains("PermissionError"),
            "{error}"
        );
    }
}

#[test]
fn the_fixture_gets_a_clean_environment_and_its_own_folder() {
    std::env::set_var("ORKET_TEST_SECRET", "hunter2");
    let ws = workspace_with(
        "test_env.py",
        "import os\ndef verify_env(d):\n    return sorted(k for k in os.environ if 'SECRET' in k)\ndef verify_cwd(d):\n    return os.getcwd() != d['workspace'] and os.path.basename(os.getcwd()).startswith('orket-verify-')\n",
    );
    let scenarios = json!([
        {"id": "env", "input_data": null, "expected_output": []},
        {"id": "cwd", "input_data": {"workspace": ws.path().display().to_string()}, "expected_output": true}
    ]);
    let r = run(ws.path(), &block("verification/test_env.py", scenarios));
    assert_eq!(counts(&r), (2, 0, 2), "{r:#?}");
}

#[test]
fn prints_in_the_fixture_do_not_corrupt_the_answer() {
    let ws = workspace_with(
        "test_print.py",
        "print('loading')\ndef verify(d):\n    print('{\"ok\": false}')\n    return d\n",
    );
    let scenarios = json!([{"id": "echo", "input_data": [1, 2], "expected_output": [1, 2]}]);
    let r = run(ws.path(), &block("verification/test_print.py", scenarios));
    assert_eq!(counts(&r), (1, 0, 1), "{r:#?}");
    assert!(r.logs.contains("loading"), "stderr is kept: {:?}", r.logs);
}

#[test]
fn a_fixture_that_exits_fails_every_scenario() {
    let ws = workspace_with("test_exit.py", "import os\nos._exit(3)\n");
    let r = run(
        ws.path(),
        &block("verification/test_exit.py", two_scenarios()),
    );
    all_failed_with(&r, 2, "exit code 3");
}

#[tokio::test(flavor = "current_thread")]
async fn verification_runs_off_the_async_threads() {
    let ws = workspace_with(
        "test_slow.py",
        "import time\ndef verify(d):\n    time.sleep(0.5)\n    return d\n",
    );
    let scenarios = json!([{"id": "slow", "input_data": 1, "expected_output": 1}]);
    let ticker = tokio::spawn(async {
        let mut ticks = 0;
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            ticks += 1;
        }
        ticks
    });
    let r = run_verification_async(
        ws.path().to_path_buf(),
        block("verification/test_slow.py", scenarios),
        VerifyLimits::default(),
    )
    .await;
    assert_eq!(counts(&r), (1, 0, 1), "{r:#?}");
    // On a single-threaded runtime the ticker only finished if the fixture ran elsewhere.
    assert!(ticker.is_finished());
    assert_eq!(ticker.await.unwrap(), 20);
}

/// A fixture that searches the runner's frames and `__main__` for the scenarios it was sent.
const SNOOPING_FIXTURE: &str = r#"import sys

def _dicts(value, depth=0):
    if depth > 6:
        return
    if isinstance(value, dict):
        yield value
        for v in list(value.values()):
            yield from _dicts(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _dicts(v, depth + 1)

def _everything():
    frame = sys._getframe()
    while frame is not None:
        yield from _dicts(dict(frame.f_locals))
        yield from _dicts(dict(frame.f_globals))
        frame = frame.f_back
    yield from _dicts(dict(vars(sys.modules['__main__'])))

def verify_probe(data):
    # The search does reach what the runner was sent.
    return any(d.get('input_data') == 'probe-marker' for d in _everything())

def verify_cheat(data):
    for d in _everything():
        if d.get('id') == 'cheat' and 'expected_output' in d:
            return d['expected_output']
    return 'no answer found'
"#;

#[test]
fn the_fixture_cannot_read_the_expected_output() {
    let ws = workspace_with("test_snoop.py", SNOOPING_FIXTURE);
    let scenarios = json!([
        {"id": "probe", "input_data": "probe-marker", "expected_output": true},
        {"id": "cheat", "input_data": null, "expected_output": "the secret answer 42"}
    ]);
    let r = run(ws.path(), &block("verification/test_snoop.py", scenarios));
    assert_eq!(counts(&r), (1, 1, 2), "{r:#?}");
    assert!(
        r.results[0].passed(),
        "the search reaches the request: {r:#?}"
    );
    let cheat = &r.results[1];
    assert_eq!(cheat.status, "failed");
    assert_eq!(cheat.actual_output, json!("no answer found"), "{r:#?}");
    let error = cheat.error.as_deref().unwrap();
    assert!(
        error.contains("expected \"the secret answer 42\", got \"no answer found\""),
        "{error}"
    );
}

/// A number no other process's command line holds: `sleep` adds up its arguments, so
/// `sleep 30 <marker>` sleeps 30 s and is found by its marker in `/proc`, whatever PID
/// namespace it lives in.
fn marker(n: u32) -> String {
    format!("0.{}{n:03}", std::process::id())
}

/// Host pids of live (not zombie) processes with `marker` among their arguments.
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "<pid> (<comm>) <state> ...": the state follows the last ')'.
            let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
            cmdline.split(|b| *b == 0).any(|a| a == marker.as_bytes()) && !state.starts_with('Z')
        })
        .collect()
}

/// Kills what still carries `marker` (a failing test leaves nothing behind); returns it.
fn kill_marked(marker: &str) -> Vec<u32> {
    let left = processes_with(marker);
    for pid in &left {
        // SAFETY: kill(2) takes integers only.
        unsafe {
            libc::kill(*pid as libc::pid_t, libc::SIGKILL);
        }
    }
    left
}

/// Waits up to `within` for every process carrying `marker` to be gone; fails naming (and
/// killing) the ones still there.
fn assert_gone_within(marker: &str, within: std::time::Duration) {
    let until = std::time::Instant::now() + within;
    while !processes_with(marker).is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let left = kill_marked(marker);
    assert!(
        left.is_empty(),
        "still running after the verification: {left:?}"
    );
}

/// A fixture that leaves `sleep 30 <marker>` in a session of its own, holding its output.
const DAEMON_FIXTURE: &str = "import subprocess\ndef verify(d):\n    subprocess.Popen(['sleep', '30', d['marker']], start_new_session=True)\n    return d['n']\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_fixture_that_leaves_a_process_in_its_own_session_does_not_hang_the_run() {
    let ws = workspace_with("test_daemon.py", DAEMON_FIXTURE);
    let marker = marker(1);
    let scenarios = json!([
        {"id": "one", "input_data": {"n": 1, "marker": marker}, "expected_output": 1},
        {"id": "two", "input_data": {"n": 2, "marker": marker}, "expected_output": 2}
    ]);
    let limits = VerifyLimits {
        timeout_sec: 2,
        ..VerifyLimits::default()
    };
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(25),
        run_verification_async(
            ws.path().to_path_buf(),
            block("verification/test_daemon.py", scenarios),
            limits,
        ),
    )
    .await
    .expect("the verification returns although the fixture left a process holding its output");
    if pid_namespace() {
        // The leftovers died with the fixture's PID namespace, closing its output at once:
        // the scenarios count, and nothing was left to find and kill.
        assert_eq!(counts(&r), (2, 0, 2), "{r:#?}");
        assert!(r.isolation.as_ref().unwrap().pid_namespace, "{r:#?}");
    } else {
        let _ = missing("a PID namespace");
        all_failed_with(&r, 2, "left processes running");
        // One leftover per scenario, each found by the pipe it held and killed.
        let error = r.error.as_deref().unwrap();
        assert!(
            error.contains("own session") && error.contains("(2 killed)"),
            "{r:#?}"
        );
    }
    assert_gone_within(&marker, std::time::Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixture_that_times_out_after_leaving_a_process_does_not_hang_the_run() {
    let ws = workspace_with(
        "test_daemon_loop.py",
        "import subprocess, time\ndef verify(d):\n    subprocess.Popen(['sleep', '30', d['marker']], start_new_session=True)\n    while True:\n        time.sleep(0.01)\n",
    );
    let marker = marker(2);
    let scenarios = json!([
        {"id": "one", "input_data": {"marker": marker}, "expected_output": 1},
        {"id": "two", "input_data": {"marker": marker}, "expected_output": 2}
    ]);
    let limits = VerifyLimits {
        timeout_sec: 1,
        ..VerifyLimits::default()
    };
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(25),
        run_verification_async(
            ws.path().to_path_buf(),
            block("verification/test_daemon_loop.py", scenarios),
            limits,
        ),
    )
    .await
    .expect("the verification returns although the fixture left a process holding its output");
    all_failed_with(&r, 2, "timed out");
    let error = r.error.as_deref().unwrap();
    assert!(error.contains("ORKET_VERIFY_TIMEOUT_SEC"), "{r:#?}");
    if pid_namespace() {
        // The group kill reached the namespace's anchor, and the namespace took the leftover.
        assert!(!error.contains("left processes"), "{r:#?}");
    } else {
        let _ = missing("a PID namespace");
        assert!(error.contains("(1 killed)"), "{r:#?}");
    }
    assert_gone_within(&marker, std::time::Duration::from_secs(5));
}

/// Forks twice; the grandchild starts a session of its own, lets go of the fixture's output
/// and becomes `sleep 30 <marker>`, out of reach of the process group and of the pipes.
const DOUBLE_FORK_FIXTURE: &str = r#"import os

def verify(d):
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            try:
                os.setsid()
                null = os.open("/dev/null", os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.execv("/bin/sleep", ["sleep", "30", d["marker"]])
            finally:
                os._exit(1)
        os._exit(0)
    os.close(w)
    os.waitpid(middle, 0)
    # End of file once the grandchild's copy of w closed, when it became sleep.
    os.read(r, 1)
    return "started"
"#;

#[test]
fn a_fixture_that_double_forks_into_a_new_session_leaves_nothing_running() {
    let ws = workspace_with("test_escape.py", DOUBLE_FORK_FIXTURE);
    let marker = marker(3);
    let scenarios =
        json!([{"id": "escape", "input_data": {"marker": marker}, "expected_output": "started"}]);
    let r = run(ws.path(), &block("verification/test_escape.py", scenarios));
    assert_eq!(counts(&r), (1, 0, 1), "{r:#?}");
    let isolation = r.isolation.clone().unwrap();
    if !isolation.pid_namespace {
        let _ = missing("a PID namespace");
        let note = isolation.note.clone().unwrap_or_default();
        assert!(note.contains("refused a PID namespace"), "{isolation:?}");
        if isolation.process_cap != ProcessCap::PidsCgroup {
            // Nothing could reach the escaped process; the result said so.
            kill_marked(&marker);
            return;
        }
    }
    assert_gone_within(&marker, std::time::Duration::from_secs(5));
}

/// Starts up to `tries` `sleep 5`: `capped` catches the error past the cap and reports how
/// many it started (on stderr), `unguarded` lets it raise.
const FORK_BOMB_FIXTURE: &str = r#"import subprocess, sys

def start(tries, started):
    for _ in range(tries):
        started.append(subprocess.Popen(["sleep", "5"]))

def stop(started):
    for p in started:
        p.kill()
        p.wait()

def verify_capped(d):
    started = []
    try:
        start(d["tries"], started)
    except OSError as e:
        sys.stderr.write("started %d, then %s\n" % (len(started), type(e).__name__))
        return "refused"
    finally:
        stop(started)
    sys.stderr.write("started %d\n" % len(started))
    return "started all"

def verify_unguarded(d):
    started = []
    try:
        start(d["tries"], started)
    finally:
        stop(started)
    return "started all"
"#;

#[test]
fn a_fork_bomb_stops_at_the_process_cap() {
    let ws = workspace_with("test_bomb.py", FORK_BOMB_FIXTURE);
    let scenarios = json!([
        {"id": "capped", "input_data": {"tries": 200}, "expected_output": "refused"},
        {"id": "unguarded", "input_data": {"tries": 200}, "expected_output": "started all"}
    ]);
    let limits = VerifyLimits {
        procs: 16,
        ..VerifyLimits::default()
    };
    let started = std::time::Instant::now();
    let r = run_verification(
        ws.path(),
        &block("verification/test_bomb.py", scenarios),
        &limits,
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let isolation = r.isolation.clone().unwrap();
    if isolation.process_cap == ProcessCap::None {
        let _ =
            missing("a process cap (a writable pids cgroup, or RLIMIT_NPROC in a user namespace)");
        assert!(isolation.weaker, "{isolation:?}");
        assert!(isolation.note.unwrap().contains("no process cap"));
        return;
    }
    // Past the cap, fork fails: caught, the fixture says so; not caught, its scenario fails.
    assert_eq!(r.results[0].actual_output, json!("refused"), "{r:#?}");
    assert_eq!(counts(&r), (1, 1, 2), "{r:#?}");
    assert_eq!(isolation.limits.procs, 16);
    // The fixture got some processes, fewer than the cap (its own Python is one of them).
    let line = r.logs.lines().find(|l| l.starts_with("started ")).unwrap();
    let n: usize = line["started ".len()..]
        .split(',')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!((1..16).contains(&n), "{line}");
    assert!(line.ends_with("then BlockingIOError"), "{line}");
    let error = r.results[1].error.as_deref().unwrap();
    assert!(
        error.contains("BlockingIOError")
            && error.contains("the process cap is 16 processes and threads, ORKET_VERIFY_PROCS"),
        "{error}"
    );
}

/// A project as Orket lays it out: a secret `.env` at the root, the agent's code in
/// `workspace/app.py` and a fixture in `workspace/verification/test_fs.py`.
fn project_with_fixture(fixture: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join(".env"), "ORKET_API_KEY=hunter2\n").unwrap();
    let ws = root.path().join("workspace");
    std::fs::create_dir_all(ws.join("verification")).unwrap();
    std::fs::write(ws.join("app.py"), "def add(a, b):\n    return a + b\n").unwrap();
    std::fs::write(ws.join("verification").join("test_fs.py"), fixture).unwrap();
    (root, ws)
}

/// Python that tries `action` and answers "denied" on PermissionError.
const TRY_FIXTURE: &str = r##"import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def attempt(action):
    try:
        return action()
    except PermissionError:
        return "denied"

def verify_code(d):
    import app
    return app.add(2, 3)

def verify_secret(d):
    return attempt(lambda: open(d["path"]).read())

verify_shadow = verify_secret

def verify_home(d):
    return attempt(lambda: sorted(os.listdir(d["path"]))[:1] and "listed")

def verify_tamper(d):
    return attempt(lambda: open(d["path"], "a").write("# changed") and "written")

def verify_scratch(d):
    with open("scratch.txt", "w") as f:
        f.write("ok")
    return open("scratch.txt").read()

def verify_signal(d):
    import signal
    return attempt(lambda: os.kill(d["pid"], signal.SIGTERM) or "sent")

def verify_unix(d):
    import socket
    def connect():
        s = socket.socket(socket.AF_UNIX)
        s.connect(d["path"])
        s.close()
        return "connected"
    return attempt(connect)

def verify_datagram(d):
    import socket
    def send():
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.sendto(b"hi", d["path"])
        return "sent"
    return attempt(send)

def verify_pair(d):
    import socket
    a, b = socket.socketpair()
    a.sendall(b"x")
    return b.recv(1).decode()

def verify_uring(d):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(425, 4, params)
    if fd >= 0:
        os.close(fd)
        return "created"
    return "denied" if ctypes.get_errno() == 1 else "errno %d" % ctypes.get_errno()
"##;

#[test]
fn the_fixture_reads_the_workspace_but_nothing_else_and_writes_only_its_folder() {
    let (root, ws) = project_with_fixture(TRY_FIXTURE);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("id_rsa"), "PRIVATE").unwrap();
    let scenarios = json!([
        {"id": "code", "input_data": null, "expected_output": 5},
        {"id": "secret", "input_data": {"path": root.path().join(".env")}, "expected_output": "denied"},
        {"id": "home", "input_data": {"path": home.path()}, "expected_output": "denied"},
        {"id": "tamper", "input_data": {"path": ws.join("app.py")}, "expected_output": "denied"},
        {"id": "shadow", "input_data": {"path": "/etc/shadow"}, "expected_output": "denied"},
        {"id": "scratch", "input_data": null, "expected_output": "ok"}
    ]);
    let r = run(&ws, &block("verification/test_fs.py", scenarios));
    let isolation = r.isolation.clone().unwrap();
    match landlock::abi() {
        Some(abi) => {
            assert_eq!(counts(&r), (6, 0, 6), "{r:#?}");
            assert_eq!(isolation.filesystem, FilesystemIsolation::Landlock);
            assert_eq!(isolation.landlock_abi, Some(abi));
            let app = std::fs::read_to_string(ws.join("app.py")).unwrap();
            assert!(!app.contains("changed"), "the agent's code is untouched");
        }
        None => {
            // No Landlock here (a broken machine under CI): the fixture got through, and the
            // result must say so.
            let _ = missing("Landlock");
            assert_eq!(isolation.filesystem, FilesystemIsolation::None);
            assert!(isolation.weaker, "{r:#?}");
            assert!(isolation.note.unwrap().contains("no Landlock"));
        }
    }
}

#[test]
fn the_fixture_cannot_signal_processes_outside_it() {
    // Signal scoping needs Landlock ABI 6; the filesystem test covers the weaker note.
    if landlock::abi().is_none_or(|abi| abi < 6) && missing("Landlock ABI 6 (signal scoping)") {
        return;
    }
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let (_root, ws) = project_with_fixture(TRY_FIXTURE);
    let scenarios =
        json!([{"id": "signal", "input_data": {"pid": victim.id()}, "expected_output": "denied"}]);
    let r = run(&ws, &block("verification/test_fs.py", scenarios));
    let still_running = victim.try_wait().unwrap().is_none();
    victim.kill().ok();
    victim.wait().ok();
    assert_eq!(counts(&r), (1, 0, 1), "{r:#?}");
    assert!(still_running, "the signal did not reach the process");
}

/// Fails under CI (a prerequisite missing there is a broken machine), else says why the test
/// stops.
fn missing(what: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is needed for this test under CI"
    );
    eprintln!("not run: {what}");
    true
}

/// `/bin/python3` on a merged-/usr system: "the folder above the interpreter's folder" is `/`.
/// The read set must come from what the interpreter reports of itself. (Sets
/// `ORKET_VERIFY_PYTHON`; any test of this binary that runs after it in the same process uses
/// the same, valid, interpreter.)
#[test]
fn an_interpreter_in_slash_bin_reads_its_installation_not_the_filesystem() {
    let python = Path::new("/bin/python3");
    if !python.exists() && missing("/bin/python3") {
        return;
    }
    if landlock::abi().is_none() && missing("Landlock") {
        return;
    }
    std::env::set_var("ORKET_VERIFY_PYTHON", python);
    let (root, ws) = project_with_fixture(TRY_FIXTURE);
    let orket_environ = format!("/proc/{}/environ", std::process::id());
    let scenarios = json!([
        {"id": "code", "input_data": null, "expected_output": 5},
        {"id": "secret", "input_data": {"path": root.path().join(".env")}, "expected_output": "denied"},
        {"id": "secret", "input_data": {"path": orket_environ}, "expected_output": "denied"},
        {"id": "shadow", "input_data": {"path": "/etc/shadow"}, "expected_output": "denied"},
        {"id": "home", "input_data": {"path": "/"}, "expected_output": "denied"},
        {"id": "home", "input_data": {"path": root.path()}, "expected_output": "denied"}
    ]);
    let r = run(&ws, &block("verification/test_fs.py", scenarios));
    let outcomes: Vec<(String, Value)> = r
        .results
        .iter()
        .map(|s| (s.id.clone(), s.actual_output.clone()))
        .collect();
    assert_eq!(counts(&r), (6, 0, 6), "{outcomes:?}");
    let isolation = r.isolation.unwrap();
    assert_eq!(isolation.filesystem, FilesystemIsolation::Landlock);
    assert!(!isolation.weaker, "{isolation:?}");
}

#[test]
fn a_fixture_cannot_reach_unix_socket_files_of_the_host() {
    // Sockets of the host in a folder outside the workspace, as the docker socket would be.
    let host = tempfile::Builder::new()
        .prefix("orket-host-")
        .tempdir_in("/tmp")
        .unwrap();
    let stream = host.path().join("host.sock");
    let listener = std::os::unix::net::UnixListener::bind(&stream).unwrap();
    // Accept in the background so a connection that got through would succeed.
    std::thread::spawn(move || for _ in listener.incoming() {});
    let datagram = host.path().join("log.sock");
    let log = std::os::unix::net::UnixDatagram::bind(&datagram).unwrap();
    log.set_nonblocking(true).unwrap();
    let (_root, ws) = project_with_fixture(TRY_FIXTURE);
    let scenarios = json!([
        {"id": "unix", "input_data": {"path": stream}, "expected_output": "denied"},
        {"id": "datagram", "input_data": {"path": datagram}, "expected_output": "denied"},
        {"id": "pair", "input_data": null, "expected_output": "x"},
        {"id": "uring", "input_data": null, "expected_output": "denied"}
    ]);
    let r = run(&ws, &block("verification/test_fs.py", scenarios));
    let isolation = r.isolation.clone().unwrap();
    if !isolation.unix_sockets_refused {
        let _ = missing("a seccomp filter");
        assert!(isolation.weaker, "{isolation:?}");
        assert!(isolation.note.unwrap().contains("unix socket files"));
        return;
    }
    let outcomes: Vec<(String, Value)> = r
        .results
        .iter()
        .map(|s| (s.id.clone(), s.actual_output.clone()))
        .collect();
    // socket(AF_UNIX) and datagram pairs are refused; a stream pair reaches only itself.
    assert_eq!(counts(&r), (4, 0, 4), "{outcomes:?}");
    let mut buf = [0u8; 8];
    assert!(
        log.recv(&mut buf).is_err(),
        "nothing reached the host's datagram socket"
    );
}

#[test]
fn the_result_states_every_guarantee_that_held() {
    let ws = workspace_with("test_ok.py", "def verify(d):\n    return d\n");
    let scenarios = json!([{"id": "echo", "input_data": 1, "expected_output": 1}]);
    let r = run(ws.path(), &block("verification/test_ok.py", scenarios));
    assert_eq!(counts(&r), (1, 0, 1), "{r:#?}");
    let isolation = r.isolation.unwrap();
    let json = serde_json::to_value(&isolation).unwrap();
    if isolation.weaker {
        // A machine that refuses part of the sandbox (a broken one under CI): the note says what.
        let _ = missing(&format!("the whole sandbox ({:?})", isolation.note));
        assert!(isolation.note.unwrap().starts_with("weaker isolation: "));
        return;
    }
    assert_ne!(isolation.network, NetworkIsolation::None);
    assert_eq!(isolation.filesystem, FilesystemIsolation::Landlock);
    assert!(isolation.pid_namespace, "{json}");
    assert_ne!(isolation.process_cap, ProcessCap::None, "{json}");
    assert!(isolation.unix_sockets_refused, "{json}");
    assert_eq!(isolation.limits.procs, 64);
    assert!(isolation.note.is_none());
    // As stored: the new fields by name.
    for field in ["pid_namespace", "process_cap", "unix_sockets_refused"] {
        assert!(json.get(field).is_some(), "{field} in {json}");
    }
    assert_eq!(json["limits"]["procs"], json!(64));
}
