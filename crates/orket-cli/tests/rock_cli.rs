//! A rock's bug-fix phase as a user lives it, with recorded model turns and a clock set by
//! `ORKET_NOW`: the rock's epic finishes and its phase starts; a sweep files bugs (some
//! critical) through `create_issue`, so the discovery rate is high and `orket rock status`
//! shows the phase extended, once; two bugs are fixed; past the planned end the phase ends and
//! `<rock>-phase2` holds exactly the bugs left open, which `orket check` accepts and
//! `orket run` works on.

mod common;

use assert_cmd::Command;
use orket_store::{SqliteStore, Store};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;

const ROCK: &str = "demo_launch";

fn orket(root: &Path, now: &str) -> Command {
    let mut cmd = Command::cargo_bin("orket").unwrap();
    cmd.env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .env("ORKET_NOW", now)
        .arg("--root")
        .arg(root);
    cmd
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `orket run <target>` with the replies of `replay`.
fn run(root: &Path, now: &str, target: &str, replay: &Path) -> Output {
    orket(root, now)
        .args(["run", target, "--provider", "replay", "--replay"])
        .arg(replay)
        .output()
        .unwrap()
}

/// `orket rock status <rock>`, as text and as JSON.
fn status(root: &Path, now: &str, rock: &str) -> (String, Value) {
    let text = orket(root, now)
        .args(["rock", "status", rock])
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(0), "{}", said(&text));
    let json = orket(root, now)
        .args(["rock", "status", rock, "--json"])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(0), "{}", said(&json));
    let doc = serde_json::from_slice(&json.stdout).unwrap();
    (String::from_utf8(text.stdout).unwrap(), doc)
}

/// A replay file holding, for each `(issue, role, calls)`, one reply with those calls.
fn replay_file(dir: &Path, name: &str, replies: &[(&str, &str, Value)]) -> PathBuf {
    let lines: Vec<String> = replies
        .iter()
        .map(|(issue, role, calls)| {
            json!({"issue_id": issue, "role": role, "content": calls.to_string()}).to_string()
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// A developer's fix of `issue` and its review.
fn fixed(issue: &str) -> [(String, &'static str, Value); 2] {
    [
        (
            issue.to_string(),
            "coder",
            json!([
                {"tool": "write_file", "args": {"path": format!("fixes/{issue}.txt"), "content": "fixed\n"}},
                {"tool": "update_issue_status", "args": {"status": "code_review"}}
            ]),
        ),
        (
            issue.to_string(),
            "integrity_guard",
            json!({"tool": "update_issue_status", "args": {"status": "done"}}),
        ),
    ]
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The demo, with a developer who may file issues and enough steps for a sweep.
fn project() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (dir, root, replay) = common::demo_with_replay();
    common::one_candidate(&root);
    let profile = root.join("model/core/models/smollm2-135m-instruct.json");
    let mut settings = json_file(&profile);
    settings["steps"] = json!(10);
    std::fs::write(&profile, settings.to_string()).unwrap();
    let coder = root.join("model/core/roles/coder.json");
    let mut role = json_file(&coder);
    role["tools"]
        .as_array_mut()
        .unwrap()
        .push(json!("create_issue"));
    std::fs::write(&coder, role.to_string()).unwrap();
    // A rock's run works in workspace/<rock>/<epic>: its fixtures go there.
    common::copy_project(
        &root.join("workspace/hello_cli/verification"),
        &root.join(format!("workspace/{ROCK}/hello_cli/verification")),
    );
    (dir, root, replay)
}

/// The sweep (DEMO-4) and a decision a person has not made yet (DEMO-5), added to the epic
/// after the rock finished, as a person adds work.
fn add_the_sweep(root: &Path) {
    let path = root.join("model/core/epics/hello_cli.json");
    let mut epic = json_file(&path);
    let issues = epic["issues"].as_array_mut().unwrap();
    issues.push(
        json!({"id": "DEMO-4", "summary": "Sweep hello.py for bugs", "seat": "developer",
        "description": "Try hello.py every way you can; file each bug you find."}),
    );
    issues.push(
        json!({"id": "DEMO-5", "summary": "Decide how names are spelled", "seat": "developer",
        "status": "blocked", "wait_reason": "input"}),
    );
    std::fs::write(&path, serde_json::to_string_pretty(&epic).unwrap()).unwrap();
}

fn bug(summary: &str, severity: &str, waits: bool) -> Value {
    let mut args =
        json!({"seat": "developer", "summary": summary, "type": "bug", "severity": severity});
    if waits {
        args["depends_on"] = json!(["DEMO-5"]);
    }
    json!({"tool": "create_issue", "args": args})
}

/// The ids, severities and statuses of the phase's bugs, by summary.
fn bugs(doc: &Value) -> Vec<(String, String, String, String)> {
    doc["phase"]["bugs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["summary"].as_str().unwrap().to_string(),
                b["id"].as_str().unwrap().to_string(),
                b["severity"].as_str().unwrap().to_string(),
                b["status"].as_str().unwrap_or("gone").to_string(),
            )
        })
        .collect()
}

async fn events_named(root: &Path, name: &str) -> Vec<Value> {
    let store = SqliteStore::open(&root.join(".orket/orket.db"))
        .await
        .unwrap();
    let events = store.list_events(None, 0, 10_000).await.unwrap();
    store.close().await;
    events
        .into_iter()
        .filter(|e| e.event.name() == name)
        .map(|e| e.event.data())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rocks_bug_fix_phase_extends_on_a_high_rate_and_ends_in_a_phase_two_rock() {
    let (dir, root, replay) = project();
    let day0 = "2030-01-01T09:00:00Z";

    // Before any run: the rock is ready and has no phase yet.
    let (text, _) = status(&root, day0, ROCK);
    assert!(text.contains("bug-fix phase: not started"), "{text}");

    // The rock's epic finishes: its phase starts by the clock, planned for 7 days.
    let out = run(&root, day0, ROCK, &replay);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let (text, doc) = status(&root, day0, ROCK);
    assert_eq!(doc["status"], "done", "{doc:#}");
    assert_eq!(doc["phase"]["status"], "active");
    assert_eq!(doc["phase"]["started_at"], "2030-01-01T09:00:00.000Z");
    assert_eq!(doc["phase"]["planned_end"], "2030-01-08T09:00:00.000Z");
    assert_eq!(doc["phase"]["days_left"], 7);
    assert_eq!(doc["phase"]["bugs_found"], 0);
    assert!(text.contains("bug-fix phase: active"), "{text}");
    assert!(
        text.contains("(7 days left; at most 28 days in all)"),
        "{text}"
    );

    // A day in, the sweep files six bugs (two critical); four wait on a person's decision.
    add_the_sweep(&root);
    let sweep = json!([
        {"tool": "write_file", "args": {"path": "BUGS.md", "content": "- six bugs filed\n"}},
        bug("Crashes on an empty name", "critical", false),
        bug("Greets twice with --shout", "high", false),
        bug("Loses accents in names", "critical", true),
        bug("Wrong greeting on Mondays", "medium", true),
        bug("Trailing space in output", "low", true),
        bug("Help text is misspelled", "low", true),
        {"tool": "update_issue_status", "args": {"status": "code_review"}}
    ]);
    let sweep_replay = replay_file(
        dir.path(),
        "sweep.jsonl",
        &[
            ("DEMO-4", "coder", sweep),
            (
                "DEMO-4",
                "integrity_guard",
                json!({"tool": "update_issue_status", "args": {"status": "done"}}),
            ),
        ],
    );
    let day1 = "2030-01-02T10:00:00Z";
    let out = run(&root, day1, "DEMO-4", &sweep_replay);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));

    // Six bugs in one day is over five a day: the phase is extended by seven days.
    let (text, doc) = status(&root, day1, ROCK);
    let phase = &doc["phase"];
    assert_eq!(
        (
            &phase["bugs_found"],
            &phase["critical_bugs"],
            &phase["open_bugs"],
            &phase["extensions"]
        ),
        (&json!(6), &json!(2), &json!(6), &json!(1)),
        "{doc:#}"
    );
    assert_eq!(phase["planned_end"], "2030-01-15T09:00:00.000Z");
    assert_eq!(phase["discovery_rate"], 6.0);
    assert_eq!(phase["days_left"], 13);
    assert!(text.contains("extensions      1"), "{text}");
    assert!(
        text.contains("bugs found      6 (2 critical; extends above 3), 6 open"),
        "{text}"
    );
    assert!(
        text.contains("discovery rate  6.00 bugs/day over 1 day(s) (extends above 5)"),
        "{text}"
    );
    let found = bugs(&doc);
    assert_eq!(found.len(), 6);
    let severities: Vec<&str> = found.iter().map(|b| b.2.as_str()).collect();
    assert_eq!(
        severities,
        ["critical", "high", "critical", "medium", "low", "low"]
    );
    assert!(found.iter().all(|b| b.3 == "ready"), "{found:?}");
    // Looking again on the same evidence does not extend it again.
    let (_, again) = status(&root, "2030-01-02T11:00:00Z", ROCK);
    assert_eq!(again["phase"]["extensions"], 1);
    let extended = events_named(&root, "bug_fix_phase_extended").await;
    assert_eq!(extended.len(), 1, "{extended:?}");
    assert_eq!(extended[0]["reason"], "discovery rate 6.00 bugs/day > 5");
    assert_eq!(
        (&extended[0]["rate"], &extended[0]["critical_bugs"]),
        (&json!(6.0), &json!(2))
    );

    // The two free bugs are fixed; the four waiting on DEMO-5 stay open.
    let (fix_a, fix_b) = (found[0].1.clone(), found[1].1.clone());
    let replies: Vec<(String, &str, Value)> =
        fixed(&fix_a).into_iter().chain(fixed(&fix_b)).collect();
    let borrowed: Vec<(&str, &str, Value)> = replies
        .iter()
        .map(|(i, r, v)| (i.as_str(), *r, v.clone()))
        .collect();
    let fix_replay = replay_file(dir.path(), "fix.jsonl", &borrowed);
    let out = run(&root, "2030-01-03T09:00:00Z", "hello_cli", &fix_replay);
    let fixing = said(&out);
    assert!(fixing.contains("stalled"), "{fixing}");
    assert!(fixing.contains("DEMO-5: blocked (input)"), "{fixing}");

    // Past the planned end the phase ends; the four open bugs move to demo_launch-phase2.
    let day15 = "2030-01-16T09:00:00Z";
    let (text, doc) = status(&root, day15, ROCK);
    assert_eq!(doc["phase"]["status"], "ended", "{doc:#}");
    assert_eq!(doc["phase"]["ended_at"], "2030-01-16T09:00:00.000Z");
    assert_eq!(doc["phase"]["next_rock"], "demo_launch-phase2");
    assert!(
        text.contains("open bugs moved to rock demo_launch-phase2 (archived here)"),
        "{text}"
    );
    assert!(text.contains("critical  archived "), "{text}");
    let open: Vec<String> = found[2..].iter().map(|b| b.1.clone()).collect();
    let statuses: Vec<String> = bugs(&doc).into_iter().map(|b| b.3).collect();
    assert_eq!(
        statuses,
        ["done", "done", "archived", "archived", "archived", "archived"]
    );

    let next_rock = json_file(&root.join("model/core/rocks/demo_launch-phase2.json"));
    assert_eq!(
        next_rock["epics"],
        json!([{"epic": "demo_launch-phase2-hello_cli", "department": "core"}])
    );
    let next_epic = json_file(&root.join("model/core/epics/demo_launch-phase2-hello_cli.json"));
    let held: Vec<(String, String, String)> = next_epic["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["type"].as_str().unwrap().to_string(),
                i["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = found[2..]
        .iter()
        .map(|b| (b.1.clone(), "bug".to_string(), b.2.clone()))
        .collect();
    assert_eq!(
        held, expected,
        "exactly the open bugs, with their severities"
    );
    // Its agents may read the code the bugs are about: the rock run's workspace of the epic
    // (and the epic's own folder, which holds the demo's fixtures).
    assert_eq!(
        next_epic["references"],
        json!(["workspace/demo_launch/hello_cli", "workspace/hello_cli"]),
        "{next_epic}"
    );
    assert_eq!(next_epic["team"], "demo_team");
    let ended = events_named(&root, "bug_fix_phase_ended").await;
    assert_eq!(ended.len(), 1);
    let moved: Vec<String> = open
        .iter()
        .map(|id| format!("build-hello_cli/{id}"))
        .collect();
    assert_eq!(ended[0]["open_bugs"], json!(moved));
    // Looking again changes nothing.
    let (_, again) = status(&root, "2030-01-20T09:00:00Z", ROCK);
    assert_eq!(again["phase"], doc["phase"]);
    assert_eq!(events_named(&root, "bug_fix_phase_ended").await.len(), 1);

    // The tree still checks, and the phase-2 rock runs on those bugs.
    let check = orket(&root, day15).arg("check").output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", said(&check));
    let replies: Vec<(String, &str, Value)> = open.iter().flat_map(|id| fixed(id)).collect();
    let borrowed: Vec<(&str, &str, Value)> = replies
        .iter()
        .map(|(i, r, v)| (i.as_str(), *r, v.clone()))
        .collect();
    let phase2_replay = replay_file(dir.path(), "phase2.jsonl", &borrowed);
    let out = run(&root, day15, "demo_launch-phase2", &phase2_replay);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        said(&out).contains("all 4 issues are done or canceled"),
        "{}",
        said(&out)
    );
    let (_, doc) = status(&root, day15, "demo_launch-phase2");
    assert_eq!(doc["status"], "done", "{doc:#}");
    assert_eq!(doc["phase"]["status"], "active", "its own phase starts");
}

#[test]
fn an_unknown_rock_is_named_with_the_rocks_there_are() {
    let (_dir, root, _) = project();
    let out = orket(&root, "2030-01-01T00:00:00Z")
        .args(["rock", "status", "moonshot"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        said(&out).contains(
            "error: rock \"moonshot\" not found in department \"core\" (rocks: demo_launch)"
        ),
        "{}",
        said(&out)
    );
    let out = orket(&root, "next tuesday")
        .args(["rock", "status", ROCK])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(said(&out).contains("ORKET_NOW: \"next tuesday\" is not an RFC 3339 time"));
    assert!(
        !root.join(".orket").exists(),
        "a status never creates the store"
    );
}
