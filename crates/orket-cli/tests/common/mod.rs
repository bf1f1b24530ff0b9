//! Helpers shared by the `orket` command's tests (each test file compiles its own copy, so
//! a helper one file does not use is not dead code).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Work that passes the demo's fixtures: each issue, its file and the file's content.
pub const PASSING_WORK: [(&str, &str, &str); 3] = [
    ("DEMO-1", "hello.py", "print(\"Hello, Orket!\")\n"),
    (
        "DEMO-2",
        "README.md",
        "# Hello CLI\n\nRun `python3 hello.py`.\n",
    ),
    (
        "DEMO-3",
        "NOTES.md",
        "- greet by name\n- a --shout flag\n- other languages\n",
    ),
];

/// The repository's demo project (`demo/`).
pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo")
}

/// Copies a project folder to `to`, without the `workspace/` or `.orket/` (store) a local run
/// may have left in it.
/// Copies `<workspace>/<epic>/verification/` of each epic's workspace.
fn copy_fixtures(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let fixtures = entry.path().join("verification");
        if fixtures.is_dir() {
            copy_project(&fixtures, &to.join(entry.file_name()).join("verification"));
        }
    }
}

pub fn copy_project(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name();
        if name == ".orket" {
            continue;
        }
        if name == "workspace" {
            // Of the workspaces only the verification fixtures: what a run wrote stays behind.
            copy_fixtures(&entry.path(), &to.join(&name));
            continue;
        }
        let kind = entry.file_type().expect("its type");
        if kind.is_dir() {
            copy_project(&entry.path(), &to.join(&name));
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// Sets the demo model's profile in the project at `root` to draw one candidate per developer
/// turn (the demo's profile draws three): a test about the review, or one that must stay
/// within minutes on two cores.
pub fn one_candidate(root: &Path) {
    let profile = root.join("model/core/models/smollm2-135m-instruct.json");
    let text = std::fs::read_to_string(&profile)
        .unwrap_or_else(|e| panic!("read {}: {e}", profile.display()));
    let mut settings: serde_json::Value = serde_json::from_str(&text).expect("a JSON profile");
    settings["candidates"] = serde_json::json!(1);
    std::fs::write(&profile, settings.to_string())
        .unwrap_or_else(|e| panic!("write {}: {e}", profile.display()));
}

/// A copy of the demo with a replay file that completes its epic.
pub fn demo_with_replay() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    copy_project(&demo_dir(), &root);
    let mut lines = Vec::new();
    for (issue, path, content) in PASSING_WORK {
        let dev = serde_json::json!([
            {"tool": "write_file", "args": {"path": path, "content": content}},
            {"tool": "update_issue_status", "args": {"status": "code_review"}}
        ]);
        lines.push(
            serde_json::json!({"issue_id": issue, "role": "coder", "content": dev.to_string()})
                .to_string(),
        );
        let review = serde_json::json!({"tool": "update_issue_status", "args": {"status": "done"}});
        lines.push(
            serde_json::json!({"issue_id": issue, "role": "integrity_guard", "content": review.to_string()})
                .to_string(),
        );
    }
    let replay = dir.path().join("replay.jsonl");
    std::fs::write(&replay, lines.join("\n")).unwrap();
    (dir, root, replay)
}

/// The demo epic's six turns, each once: seqs 1..6 with no gap or repeat, each issue developed
/// once and reviewed once.
pub fn assert_every_turn_once(turns: &[orket_store::TurnRecord]) {
    let seqs: Vec<i64> = turns.iter().map(|t| t.turn.seq).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<i64>>(), "no gap, no repeat");
    let pairs: std::collections::BTreeSet<(String, bool)> = turns
        .iter()
        .map(|t| (t.turn.issue_id.clone(), t.turn.review))
        .collect();
    assert_eq!(
        pairs.len(),
        6,
        "each issue developed once and reviewed once"
    );
}

/// `orket serve`, started from `command` (its stdout is read here), stopped when dropped.
pub struct Server {
    child: std::process::Child,
    /// The `host:port` it says it listens on.
    pub address: String,
}

impl Server {
    /// Starts `command` (an `orket serve …`) and reads the address from its first line.
    pub fn start(mut command: std::process::Command) -> Server {
        use std::io::BufRead;
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let address = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        Server { child, address }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", self.address))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
