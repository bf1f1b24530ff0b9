//! The web board in a real browser: `orket serve` (with an API key) on a copy of the demo
//! project, and headless Chromium driven by playwright-core (the scripts in
//! `crates/orket-server/tests/browser/`): the API-key banner, a replayed run of `hello_cli`
//! started from the board's form with card DEMO-1 moving to the done column live without a
//! reload, Halt, approvals decided from the board, and the operations-lead chat; screenshots in
//! `target/board-screenshot.png`, `target/board-approvals-screenshot.png` and
//! `target/board-chat-screenshot.png`.
//!
//! Needs Debian's Chromium (`/usr/bin/chromium`, or `ORKET_CHROMIUM`), Node.js and the npm
//! package in `crates/orket-server/tests/browser/node_modules`; `bash .ci/setup` installs them.
//! Without them this test fails and says how to install them.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const INSTALL_HINT: &str = "install the browser test's prerequisites with `bash .ci/setup`, or by \
     hand: `apt-get install -y chromium` and `cd crates/orket-server/tests/browser && npm ci`";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

fn browser_dir() -> PathBuf {
    workspace_root().join("crates/orket-server/tests/browser")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Fails (never skips) when a prerequisite is missing, saying how to install it.
fn check_prerequisites() -> PathBuf {
    let chromium = std::env::var_os("ORKET_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.is_file(),
        "the board's browser test needs Chromium at {}: {INSTALL_HINT}",
        chromium.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        matches!(&node, Ok(out) if out.status.success()),
        "the board's browser test needs Node.js (`node` on PATH): {INSTALL_HINT}"
    );
    let package = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(
        package.is_file(),
        "the board's browser test needs the npm package playwright-core in {}: {INSTALL_HINT}",
        browser_dir().join("node_modules").display()
    );
    chromium
}

/// Kills the server when the test ends, however it ends.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `orket serve` on a free port (`--port 0`); stdout and stderr go to `log`.
fn start_server(root: &Path, key: &str, log: &Path) -> Server {
    let out = fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_orket"))
        .args(["serve", "--root"])
        .arg(root)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .env("ORKET_API_KEY", key)
        .env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .env_remove("ORKET_ALLOWED_ORIGINS")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("starting orket serve");
    Server {
        child,
        log: log.to_path_buf(),
    }
}

/// The port in the server's first line, `orket serve: http://127.0.0.1:<port>/ ...`.
fn announced_port(log: &str) -> Option<u16> {
    let rest = log.split("http://127.0.0.1:").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `GET /health` answered 200.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// Waits for the server to say where it listens and to answer `/health`; returns the port.
fn wait_healthy(server: &mut Server) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(port) = announced_port(&server.log_text()) {
            if healthy(port) {
                return port;
            }
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!(
                "orket serve exited ({status}) before answering /health:\n{}",
                server.log_text()
            );
        }
        assert!(
            Instant::now() < deadline,
            "orket serve did not announce its address and answer /health within 60 s:\n{}",
            server.log_text()
        );
        sleep(Duration::from_millis(100));
    }
}

/// Runs a browser script with a time limit; returns (exit code, stdout + stderr).
fn run_browser(
    chromium: &Path,
    script: &str,
    url: &str,
    key: &str,
    shot: &Path,
    out_file: &Path,
) -> (Option<i32>, String) {
    let out = fs::File::create(out_file).unwrap();
    let mut child = Command::new("node")
        .arg(browser_dir().join(script))
        .args([url, key])
        .arg(shot)
        .arg("replay/hello_cli.jsonl")
        .env("ORKET_CHROMIUM", chromium)
        .current_dir(browser_dir())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("starting node");
    let deadline = Instant::now() + Duration::from_secs(360);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        sleep(Duration::from_millis(200));
    };
    let text = fs::read_to_string(out_file).unwrap_or_default();
    match status {
        Some(status) => (status.code(), text),
        None => (None, format!("{text}\n(killed after 360 s)")),
    }
}

/// A copy of the demo project (changed by `prepare`) served by `orket serve` with an API key,
/// and `script` run against it; asserts that it passed and left a PNG at
/// `target/<screenshot>`. Returns the project root (kept until the temp dir drops).
fn browser_scenario(
    script: &str,
    screenshot: &str,
    prepare: impl FnOnce(&Path),
) -> tempfile::TempDir {
    let chromium = check_prerequisites();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("project");
    common::copy_project(&workspace_root().join("demo"), &root);
    assert!(root.join("replay/hello_cli.jsonl").is_file());
    prepare(&root);

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let key = format!("board-test-{}-{nanos:x}", std::process::id());
    let mut server = start_server(&root, &key, &tmp.path().join("server.log"));
    let port = wait_healthy(&mut server);

    let shot = target_dir().join(screenshot);
    fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let _ = fs::remove_file(&shot); // a stale screenshot must not pass
    let url = format!("http://127.0.0.1:{port}/");
    let log = tmp.path().join(format!("{script}.log"));
    let (code, output) = run_browser(&chromium, script, &url, &key, &shot, &log);
    println!("{output}");
    assert_eq!(
        code,
        Some(0),
        "the browser test {script} failed:\n{output}\n--- orket serve:\n{}",
        server.log_text()
    );
    drop(server);

    let png =
        fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert!(
        png.len() > 1000 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG ({} bytes)",
        shot.display(),
        png.len()
    );
    println!("board screenshot: {}", shot.display());
    tmp
}

/// The API-key banner; a replayed run of hello_cli started from the form, DEMO-1 moving to
/// done live without a reload; a slow run halted from the board.
#[test]
fn board_moves_a_card_to_done_live_in_a_real_browser() {
    let tmp = browser_scenario("board.test.mjs", "board-screenshot.png", |_| {});
    let workspace = tmp.path().join("project/workspace/hello_cli");
    assert!(
        workspace.join("hello.py").is_file() && workspace.join("README.md").is_file(),
        "the run started from the board should have written its files in {}",
        workspace.display()
    );
}

/// The loop's status line: a loop started and stopped over the API shows live as running,
/// idle after the demo's three cards, then stopped.
#[test]
fn board_shows_the_loop_live_in_a_real_browser() {
    browser_scenario("loop.test.mjs", "board-loop-screenshot.png", |_| {});
}

/// Parked write_file calls shown as approvals: one approved (the file is written), one
/// rejected with a reason (nothing written), both decided from the board.
#[test]
fn board_approves_and_rejects_parked_tool_calls_in_a_real_browser() {
    let tmp = browser_scenario(
        "approvals.test.mjs",
        "board-approvals-screenshot.png",
        |root| {
            let file = root.join("config/organization.json");
            let mut org: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
            org["process_rules"]["approval_required"] = serde_json::json!(["write_file"]);
            fs::write(&file, serde_json::to_string_pretty(&org).unwrap()).unwrap();
        },
    );
    let workspace = tmp.path().join("project/workspace/hello_cli");
    assert!(
        workspace.join("hello.py").is_file(),
        "the approved write_file should have written hello.py in {}",
        workspace.display()
    );
    assert!(
        !workspace.join("NOTES.md").exists(),
        "the rejected write_file must not have written NOTES.md"
    );
}

/// The operations-lead chat: a recorded create_epic shows the file written (and writes it), a
/// recorded create_issue for a seat the team lacks shows the refusal naming the seat.
#[test]
fn board_chat_applies_and_refuses_driver_actions_in_a_real_browser() {
    let line = |action: serde_json::Value| {
        serde_json::json!({"issue_id": "driver", "role": "operations_lead",
                           "content": action.to_string()})
        .to_string()
            + "\n"
    };
    let tmp = browser_scenario("chat.test.mjs", "board-chat-screenshot.png", |root| {
        fs::write(
            root.join("replay/driver.jsonl"),
            line(serde_json::json!({"action": "create_epic",
                "args": {"name": "docs_site", "team": "demo_team"}})),
        )
        .unwrap();
        fs::write(
            root.join("replay/driver_refused.jsonl"),
            line(serde_json::json!({"action": "create_issue",
                "args": {"epic": "hello_cli", "summary": "Test everything", "seat": "qa"}})),
        )
        .unwrap();
    });
    let epic = tmp.path().join("project/model/core/epics/docs_site.json");
    let epic: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&epic).unwrap()).unwrap();
    assert_eq!(epic["team"], "demo_team");
}

/// The board inserts server text as text only and loads nothing from elsewhere (no CDN, no
/// external fonts): no HTML sinks in its script, no remote address in its three files.
#[test]
fn board_files_have_no_html_sinks_and_no_remote_resources() {
    let web = workspace_root().join("crates/orket-server/web");
    let script = fs::read_to_string(web.join("app.js")).unwrap();
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "createContextualFragment",
        "parseFromString",
        "setHTMLUnsafe",
        "srcdoc",
        "document.write",
        "eval(",
        "new Function",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    for file in ["index.html", "app.js", "style.css"] {
        let text = fs::read_to_string(web.join(file)).unwrap();
        for remote in ["http://", "https://", "//fonts.", "@import"] {
            assert!(!text.contains(remote), "{file} refers to {remote}");
        }
    }
}
