//! Generated benchmark projects: an organization, a two-seat team, two roles, an environment,
//! the five dialects of the demo and one epic of `n` issues, plus the matching replay lines.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The department every generated asset lives in.
const DEPT: &str = "core";
/// The generated epic's name (also its workspace folder and `build-<name>`).
pub const EPIC: &str = "bench_epic";
/// The tools both roles may use.
const TOOLS: [&str; 3] = ["write_file", "update_issue_status", "read_file"];

/// How the issues of the epic depend on each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// No dependencies: every issue is a candidate in the first tick.
    Independent,
    /// Issue `k` depends on issue `k - 1`: one candidate per tick.
    Chain,
}

/// The id of the `index`-th issue (zero based).
pub fn issue_id(index: usize) -> String {
    format!("BENCH-{:04}", index + 1)
}

/// Writes a project for an epic of `issues` issues of `shape` under `root`.
///
/// The iDesign threshold is set above the issue count, so the complexity gate lets the epic
/// through with iDesign off (and the coder's `.txt` writes are never checked by iDesign rules
/// anyway).
pub fn write_project(root: &Path, issues: usize, shape: Shape) -> Result<()> {
    let model = root.join("model").join(DEPT);
    write_json(
        &root.join("config/organization.json"),
        &json!({
            "name": "Orket Bench Works",
            "vision": "Measure the engine, not the model.",
            "ethos": "Numbers or it did not happen.",
            "architecture": {
                "idesign_threshold": issues + 1,
                "preferred_stack": { "language": "Plain text" }
            },
            "departments": [DEPT],
            "process_rules": { "default_llm": "smollm2-135m-instruct" }
        }),
    )?;
    write_json(
        &model.join("teams/bench_team.json"),
        &json!({
            "name": "bench_team",
            "description": "One developer and one integrity guard.",
            "seats": {
                "developer": { "name": "Developer", "roles": ["coder"] },
                "integrity_guard": { "name": "Integrity Guard", "roles": ["integrity_guard"] }
            }
        }),
    )?;
    write_json(
        &model.join("roles/coder.json"),
        &role("ROLE-CODE", "coder", "Writes the file the issue asks for."),
    )?;
    write_json(
        &model.join("roles/integrity_guard.json"),
        &role(
            "ROLE-VERI",
            "integrity_guard",
            "Checks the work before it is done.",
        ),
    )?;
    write_json(
        &model.join("environments/local.json"),
        &json!({
            "name": "local",
            "description": "The replayed model.",
            "model": "smollm2-135m-instruct",
            "temperature": 0.0,
            "seed": 42,
            "timeout": 300,
            "params": { "max_tokens": 512 }
        }),
    )?;
    copy_dir(&demo_dialects(), &model.join("dialects"))?;
    let issue_list: Vec<Value> = (0..issues)
        .map(|i| {
            let mut issue = json!({
                "id": issue_id(i),
                "summary": format!("Bench issue {:04}", i + 1),
                "seat": "developer",
                "priority": "Medium",
                "description": format!("Write out/{}.txt with one line of text.", issue_id(i)),
            });
            if shape == Shape::Chain && i > 0 {
                issue["depends_on"] = json!([issue_id(i - 1)]);
            }
            issue
        })
        .collect();
    write_json(
        &model.join(format!("epics/{EPIC}.json")),
        &json!({
            "name": "Bench Epic",
            "description": "Generated issues that each write one text file.",
            "team": "bench_team",
            "environment": "local",
            "architecture_governance": { "idesign": false, "pattern": "Tactical/Flat" },
            "issues": issue_list
        }),
    )?;
    Ok(())
}

/// The replay file of the "instant provider": per issue, one coder reply (write a file, move
/// to `code_review`) and one integrity-guard reply (move to `done`).
pub fn replay_jsonl(issues: usize) -> String {
    let mut lines = Vec::with_capacity(issues * 2);
    for i in 0..issues {
        let id = issue_id(i);
        let coder = json!([
            {"tool": "write_file", "args": {"path": format!("out/{id}.txt"), "content": format!("output of {id}\n")}},
            {"tool": "update_issue_status", "args": {"status": "code_review"}}
        ]);
        let guard = json!({"tool": "update_issue_status", "args": {"status": "done"}});
        lines.push(
            json!({"issue_id": id, "role": "coder", "content": coder.to_string()}).to_string(),
        );
        lines.push(
            json!({"issue_id": id, "role": "integrity_guard", "content": guard.to_string()})
                .to_string(),
        );
    }
    lines.join("\n")
}

/// A role with the three benchmark tools.
fn role(id: &str, name: &str, description: &str) -> Value {
    json!({
        "id": id,
        "name": name,
        "type": "utility",
        "description": description,
        "intent": description,
        "responsibilities": ["Do what the issue asks, then move it on with update_issue_status."],
        "constraints": ["Write only inside the workspace, with relative paths."],
        "tools": TOOLS,
        "capabilities": { "issue_types": ["issue", "story", "task", "bug"] }
    })
}

/// The demo's five dialects, which every project needs.
fn demo_dialects() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/model/core/dialects")
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy to {}", target.display()))?;
        }
    }
    Ok(())
}
