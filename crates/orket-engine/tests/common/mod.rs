//! What the engine's tests share: a copy of the demo project and recorded replies.

#![allow(dead_code)]

use serde_json::json;
use std::path::Path;

/// Copies the folder `from` to `to`, recursively.
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

/// The demo project, copied to `to`.
pub fn copy_demo(to: &Path) {
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo"),
        to,
    );
}

/// One recorded reply.
pub fn reply(issue: &str, role: &str, calls: serde_json::Value) -> String {
    json!({"issue_id": issue, "role": role, "content": calls.to_string()}).to_string()
}

/// Edits the JSON file at `path` in place.
pub fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

/// Takes the demo's verification fixtures, model profiles and short retries away: these tests
/// write contents of their own and judge the engine with its defaults, not the work (the
/// demo's fixtures and profiles are exercised by the CLI's replay and embedded-model tests);
/// tests of verification or candidates add what they need.
pub fn without_fixtures(root: &Path) {
    std::fs::remove_dir_all(root.join("model/core/models")).unwrap();
    edit_json(&root.join("model/core/epics/hello_cli.json"), |epic| {
        for issue in epic["issues"].as_array_mut().unwrap() {
            let issue = issue.as_object_mut().unwrap();
            issue.remove("verification");
            issue.remove("max_retries");
        }
    });
    std::fs::remove_dir_all(root.join("workspace/hello_cli/verification")).unwrap();
}

/// A developer's reply writing `path` and handing it over, then the guard's passing it.
pub fn write_and_review(issue: &str, path: &str, content: &str) -> Vec<String> {
    vec![
        reply(
            issue,
            "coder",
            json!([
                {"tool": "write_file", "args": {"path": path, "content": content}},
                {"tool": "update_issue_status", "args": {"status": "code_review"}}
            ]),
        ),
        reply(
            issue,
            "integrity_guard",
            json!({"tool_calls": [{"tool": "update_issue_status", "args": {"status": "done"}}]}),
        ),
    ]
}

/// Every turn of the demo epic, passing.
pub fn all_replies() -> Vec<String> {
    let mut replies = Vec::new();
    replies.extend(write_and_review("DEMO-1", "hello.py", "print(1)\n"));
    replies.extend(write_and_review("DEMO-2", "README.md", "# r\n"));
    replies.extend(write_and_review("DEMO-3", "NOTES.md", "n\n"));
    replies
}
