//! The driver with recorded model replies (the replay provider, key `driver` /
//! `operations_lead`) on a copy of the demo: each action writes what it should and the tree
//! still passes `orket check`; refused actions write nothing and name the field.

use orket_core::assets::{check_tree, AssetTree};
use orket_driver::{Driver, DriverError, DriverOptions, DRIVER_ISSUE_ID, DRIVER_ROLE};
use orket_llm::ReplayProvider;
use orket_store::{BuildRecord, Change, Intercept, IssueRecord, SqliteStore, Store, StoreError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn copy_dir(from: &Path, to: &Path) {
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

struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// A copy of the demo plus a second team (`docs_team`: a writer and an integrity guard) and a
/// second epic (`other` with issue OTHER-1).
fn project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo"),
        &root,
    );
    std::fs::write(
        root.join("model/core/teams/docs_team.json"),
        json!({"name": "docs_team", "seats": {
            "writer": {"name": "Writer", "roles": ["coder"]},
            "integrity_guard": {"name": "Integrity Guard", "roles": ["integrity_guard"]}}})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        root.join("model/core/epics/other.json"),
        json!({"name": "Other", "team": "demo_team", "environment": "local",
               "issues": [{"id": "OTHER-1", "summary": "Another thing", "seat": "developer"}]})
        .to_string(),
    )
    .unwrap();
    Project { _dir: dir, root }
}

/// A driver replaying `replies` (raw model texts) in order.
fn driver(root: &Path, replies: &[Value]) -> Driver {
    let text: String = replies
        .iter()
        .map(|r| {
            let content = match r {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            json!({"issue_id": DRIVER_ISSUE_ID, "role": DRIVER_ROLE, "content": content})
                .to_string()
                + "\n"
        })
        .collect();
    let provider = ReplayProvider::from_jsonl("driver.jsonl", &text).unwrap();
    Driver::new(
        AssetTree::new(root),
        Arc::new(provider),
        DriverOptions::default(),
    )
}

fn read(root: &Path, rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root.join(rel)).unwrap()).unwrap()
}

fn assert_checks(root: &Path) {
    let report = check_tree(&AssetTree::new(root), None);
    assert!(
        report.is_ok(),
        "orket check fails after the edit: {:#?}",
        report.diagnostics
    );
}

/// Every file under the root (but `.orket/`) with its bytes.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".orket") {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

async fn refused(action: Value, field: &str) -> String {
    let p = project();
    let before = snapshot(&p.root);
    let err = driver(&p.root, &[action])
        .handle(&[], "do it")
        .await
        .expect_err("the action is refused");
    let DriverError::Refused { message, .. } = &err else {
        panic!("expected a refusal, got {err:?}");
    };
    assert!(
        message.contains(field),
        "the message names {field}: {message}"
    );
    assert_eq!(before, snapshot(&p.root), "a refused action writes nothing");
    message.clone()
}

#[tokio::test]
async fn create_epic_writes_the_epic_file() {
    let p = project();
    let out = driver(
        &p.root,
        &[json!({"action": "create_epic", "args": {
            "name": "docs_site", "team": "demo_team", "description": "The docs.",
            "issues": [
                {"summary": "Write the index page", "seat": "developer", "priority": "High"},
                {"summary": "Link the pages", "seat": "developer", "depends_on": ["Write the index page"]}
            ]}})],
    )
    .handle(&[], "Create an epic named docs_site for team demo_team")
    .await
    .unwrap();
    assert_eq!(out.action, "create_epic");
    assert_eq!(out.changed_files, vec!["model/core/epics/docs_site.json"]);
    assert!(
        out.reply.contains("created epic docs_site"),
        "{}",
        out.reply
    );
    let epic = read(&p.root, "model/core/epics/docs_site.json");
    assert_eq!(epic["name"], "docs_site");
    assert_eq!(epic["description"], "The docs.");
    assert_eq!(epic["team"], "demo_team");
    assert_eq!(
        epic["environment"], "local",
        "the department's first environment"
    );
    let issues = epic["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 2);
    let first = issues[0]["id"].as_str().unwrap();
    assert!(first.starts_with("ISSUE-") && first.len() == 10, "{first}");
    assert_eq!(issues[0]["summary"], "Write the index page");
    assert_eq!(issues[0]["priority"], "High");
    assert_eq!(issues[1]["depends_on"], json!([first]));
    assert_checks(&p.root);
}

#[tokio::test]
async fn create_issue_appends_with_the_next_id_and_keeps_the_other_fields() {
    let p = project();
    let before = read(&p.root, "model/core/epics/hello_cli.json");
    let out = driver(
        &p.root,
        &[json!({"action": "create_issue", "args": {
            "epic": "hello_cli", "summary": "Add a --name flag", "seat": "developer",
            "priority": "Low", "depends_on": ["DEMO-1"], "description": "Greets NAME."}})],
    )
    .handle(&[], "add an issue")
    .await
    .unwrap();
    assert_eq!(out.changed_files, vec!["model/core/epics/hello_cli.json"]);
    let after = read(&p.root, "model/core/epics/hello_cli.json");
    let issues = after["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 4);
    assert_eq!(
        issues[3],
        json!({"id": "DEMO-4", "summary": "Add a --name flag", "seat": "developer",
               "priority": "Low", "depends_on": ["DEMO-1"], "description": "Greets NAME."})
    );
    assert_eq!(issues[..3], before["issues"].as_array().unwrap()[..]);
    assert_eq!(
        after["architecture_governance"],
        before["architecture_governance"]
    );
    assert_eq!(after["description"], before["description"]);
    assert_checks(&p.root);
}

#[tokio::test]
async fn create_rock_writes_the_rock_file() {
    let p = project();
    let out = driver(
        &p.root,
        &[json!({"action": "create_rock", "args": {
            "name": "q3_launch", "epics": ["hello_cli", "other"], "description": "Q3."}})],
    )
    .handle(&[], "a rock")
    .await
    .unwrap();
    assert_eq!(out.changed_files, vec!["model/core/rocks/q3_launch.json"]);
    assert_eq!(
        read(&p.root, "model/core/rocks/q3_launch.json"),
        json!({"name": "q3_launch", "description": "Q3.", "owner_department": "core",
               "epics": [{"epic": "hello_cli", "department": "core"},
                         {"epic": "other", "department": "core"}]})
    );
    assert_checks(&p.root);
}

#[tokio::test]
async fn assign_team_changes_the_team_when_its_seats_fit() {
    let p = project();
    std::fs::write(
        p.root.join("model/core/teams/big_team.json"),
        json!({"name": "big_team", "seats": {
            "developer": {"name": "Dev", "roles": ["coder"]},
            "integrity_guard": {"name": "IG", "roles": ["integrity_guard"]}}})
        .to_string(),
    )
    .unwrap();
    let out = driver(
        &p.root,
        &[json!({"action": "assign_team", "args": {"epic": "hello_cli", "team": "big_team"}})],
    )
    .handle(&[], "move it")
    .await
    .unwrap();
    assert_eq!(out.changed_files, vec!["model/core/epics/hello_cli.json"]);
    assert_eq!(
        read(&p.root, "model/core/epics/hello_cli.json")["team"],
        "big_team"
    );
    assert_checks(&p.root);

    let message = refused(
        json!({"action": "assign_team", "args": {"epic": "hello_cli", "team": "docs_team"}}),
        "team",
    )
    .await;
    assert!(message.contains("lacks the seat(s) developer"), "{message}");
}

#[tokio::test]
async fn turn_directive_goes_to_the_note_in_the_file_and_the_build() {
    let p = project();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&p.root.join(".orket/orket.db"))
            .await
            .unwrap(),
    );
    store
        .apply(vec![
            Change::UpsertBuild(BuildRecord::new(
                "build-hello_cli",
                "epic",
                "hello_cli",
                "core",
            )),
            Change::InsertIssue(IssueRecord::new(
                "build-hello_cli",
                "DEMO-2",
                "Document hello.py in README.md",
                "developer",
            )),
        ])
        .await
        .unwrap();
    let d = driver(
        &p.root,
        &[
            json!({"action": "turn_directive", "args": {"issue": "DEMO-2", "directive": "Use a level-1 heading."}}),
            json!({"action": "turn_directive", "args": {"issue": "DEMO-2", "directive": "Keep it under 10 lines."}}),
        ],
    )
    .with_store(Arc::clone(&store));
    d.handle(&[], "tell DEMO-2").await.unwrap();
    let out = d.handle(&[], "and more").await.unwrap();
    assert_eq!(out.changed_files, vec!["model/core/epics/hello_cli.json"]);
    let note = "Use a level-1 heading.\nKeep it under 10 lines.";
    assert_eq!(
        read(&p.root, "model/core/epics/hello_cli.json")["issues"][1]["note"],
        note
    );
    let row = store
        .get_issue("build-hello_cli", "DEMO-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.note.as_deref(), Some(note));
    let events = store.list_events(None, 0, 100).await.unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.event.name()).collect();
    assert_eq!(names, vec!["driver_action", "driver_action"]);
    assert_eq!(
        events[0].event.data()["changed_files"],
        json!(["model/core/epics/hello_cli.json"])
    );
    assert_checks(&p.root);
}

#[tokio::test]
async fn adopt_issue_moves_an_issue_without_dependencies() {
    let p = project();
    let out = driver(
        &p.root,
        &[json!({"action": "adopt_issue", "args": {"issue": "DEMO-3", "to_epic": "other"}})],
    )
    .handle(&[], "move DEMO-3")
    .await
    .unwrap();
    assert_eq!(
        out.changed_files,
        vec![
            "model/core/epics/hello_cli.json",
            "model/core/epics/other.json"
        ]
    );
    let hello = read(&p.root, "model/core/epics/hello_cli.json");
    let ids: Vec<&str> = hello["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["DEMO-1", "DEMO-2"]);
    let other = read(&p.root, "model/core/epics/other.json");
    assert_eq!(other["issues"][1]["id"], "DEMO-3");
    assert_eq!(other["issues"][1]["summary"], "Write NOTES.md");
    assert_checks(&p.root);
}

#[tokio::test]
async fn adopting_an_issue_tied_to_issues_left_behind_is_refused() {
    let message = refused(
        json!({"action": "adopt_issue", "args": {"issue": "DEMO-2", "to_epic": "other"}}),
        "depends on DEMO-1",
    )
    .await;
    assert!(message.starts_with("adopt_issue: issue:"), "{message}");
    refused(
        json!({"action": "adopt_issue", "args": {"issue": "DEMO-1", "to_epic": "other"}}),
        "DEMO-2 of epic \"hello_cli\" depend(s) on DEMO-1",
    )
    .await;
}

#[tokio::test]
async fn refusals_write_nothing_and_name_the_field() {
    let m = refused(
        json!({"action": "create_epic", "args": {"name": "docs_site", "team": "ghost_team"}}),
        "team: unknown team \"ghost_team\" (teams: demo_team, docs_team)",
    )
    .await;
    assert!(m.starts_with("create_epic: "), "{m}");
    refused(
        json!({"action": "create_epic", "args": {"name": "hello_cli", "team": "demo_team"}}),
        "name: epic \"hello_cli\" already exists (model/core/epics/hello_cli.json)",
    )
    .await;
    refused(
        json!({"action": "create_epic", "args": {"name": "x", "team": "demo_team", "environment": "cloud"}}),
        "environment: unknown environment \"cloud\" (environments: local)",
    )
    .await;
    refused(
        json!({"action": "create_epic", "args": {"name": "x", "team": "demo_team", "department": "sales"}}),
        "department: unknown department \"sales\"",
    )
    .await;
    refused(
        json!({"action": "create_rock", "args": {"name": "r", "epics": ["hello_cli", "nope"]}}),
        "create_rock: epics[1]: unknown epic \"nope\"",
    )
    .await;
    refused(
        json!({"action": "create_issue", "args": {"epic": "hello_cli", "summary": "Test it all", "seat": "qa"}}),
        "create_issue: seat: \"qa\" is not a seat of team \"demo_team\" (seats: developer, integrity_guard)",
    )
    .await;
    refused(
        json!({"action": "create_epic", "args": {"name": "../x", "team": "demo_team"}}),
        "create_epic: name: \"../x\" is not a plain name",
    )
    .await;
    refused(
        json!({"action": "create_rock", "args": {"name": "..", "epics": ["hello_cli"]}}),
        "name: \"..\" is not a plain name",
    )
    .await;
    // A name too long for a file name (it was written and failed as the server's error).
    refused(
        json!({"action": "create_epic", "args": {"name": "e".repeat(400), "team": "demo_team"}}),
        "create_epic: name: \"eeeeeeeeeeeeeeeeeeee...\" is 400 bytes long; a name has at most 200",
    )
    .await;
    refused(
        json!({"action": "create_issue", "args": {"epic": "hello_cli", "summary": "Depends elsewhere", "seat": "developer", "depends_on": ["OTHER-1"]}}),
        "create_issue: depends_on[0]: \"OTHER-1\" is not an issue of epic \"hello_cli\" (issues: DEMO-1, DEMO-2, DEMO-3)",
    )
    .await;
    refused(
        json!({"action": "turn_directive", "args": {"issue": "NOPE-9", "directive": "x"}}),
        "turn_directive: issue: unknown issue \"NOPE-9\"",
    )
    .await;
}

#[tokio::test]
async fn a_reply_changes_nothing_and_garbage_is_a_clear_error() {
    let p = project();
    let before = snapshot(&p.root);
    let d = driver(
        &p.root,
        &[
            json!({"action": "reply", "message": "hello_cli has three issues."}),
            Value::String("I think we should maybe do something".to_string()),
            Value::String(
                "{\"action\": \"create_epic\", \"args\": {\"team\": \"demo_team\"}}".into(),
            ),
        ],
    );
    let out = d.handle(&[], "what is there?").await.unwrap();
    assert_eq!(out.action, "reply");
    assert_eq!(out.reply, "hello_cli has three issues.");
    assert!(out.changed_files.is_empty());
    let err = d.handle(&[], "do something").await.unwrap_err();
    assert!(matches!(err, DriverError::BadReply { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the model's reply is not an action: no JSON object found"),
        "{err}"
    );
    let err = d.handle(&[], "an epic").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the model's reply is not an action: create_epic: args.name: required field is missing (expected a string)"
    );
    let err = d.handle(&[], "one more").await.unwrap_err();
    assert!(
        matches!(err, DriverError::Model(_)),
        "replies ran out: {err:?}"
    );
    assert_eq!(before, snapshot(&p.root));
}

#[tokio::test]
async fn an_epic_that_does_not_load_is_refused_with_the_loaders_error() {
    // A dependency cycle written into the file by hand makes the epic fail to load: the
    // driver refuses to edit it, quoting the loader, and the file stays as it was.
    let p = project();
    let path = p.root.join("model/core/epics/other.json");
    let mut epic = read(&p.root, "model/core/epics/other.json");
    epic["issues"][0]["depends_on"] = json!(["OTHER-1"]);
    std::fs::write(&path, epic.to_string()).unwrap();
    let before = snapshot(&p.root);
    let err = driver(
        &p.root,
        &[json!({"action": "create_issue", "args": {"epic": "other", "summary": "Something new", "seat": "developer"}})],
    )
    .handle(&[], "x")
    .await
    .unwrap_err();
    assert!(err.to_string().contains("does not load"), "{err}");
    assert_eq!(before, snapshot(&p.root));
}

#[cfg(unix)]
#[tokio::test]
async fn a_folder_linked_outside_the_project_is_never_written() {
    let p = project();
    let outside = p._dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::rename(
        p.root.join("model/core/rocks/demo_launch.json"),
        outside.join("demo_launch.json"),
    )
    .unwrap();
    std::fs::remove_dir(p.root.join("model/core/rocks")).unwrap();
    std::os::unix::fs::symlink(&outside, p.root.join("model/core/rocks")).unwrap();
    let before = snapshot(&p.root);
    let outside_before = snapshot(&outside);
    let err = driver(
        &p.root,
        &[json!({"action": "create_rock", "args": {"name": "q3_launch", "epics": ["hello_cli"]}})],
    )
    .handle(&[], "a rock")
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message
            == "create_rock: path 'model/core/rocks/q3_launch.json' is refused: it leads \
                through a link to outside the project's model/",
        "{message}"
    );
    assert_eq!(before, snapshot(&p.root));
    assert_eq!(
        outside_before,
        snapshot(&outside),
        "nothing written outside"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_folder_linked_elsewhere_in_the_project_or_a_linked_epic_file_is_never_written() {
    // `model/core/rocks` leads into the project's `workspace/`: inside the root, but not under
    // `model/` or `config/`.
    let p = project();
    let elsewhere = p.root.join("workspace/rocks");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::rename(
        p.root.join("model/core/rocks/demo_launch.json"),
        elsewhere.join("demo_launch.json"),
    )
    .unwrap();
    std::fs::remove_dir(p.root.join("model/core/rocks")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, p.root.join("model/core/rocks")).unwrap();
    let before = snapshot(&p.root);
    let err = driver(
        &p.root,
        &[json!({"action": "create_rock", "args": {"name": "q3_launch", "epics": ["hello_cli"]}})],
    )
    .handle(&[], "a rock")
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message
            == "create_rock: path 'model/core/rocks/q3_launch.json' is refused: it leads \
                through a link to outside the project's model/",
        "{message}"
    );
    assert_eq!(before, snapshot(&p.root));

    // An epic file that is itself a link: its target is never rewritten.
    let p = project();
    let target = p._dir.path().join("other_target.json");
    std::fs::rename(p.root.join("model/core/epics/other.json"), &target).unwrap();
    std::os::unix::fs::symlink(&target, p.root.join("model/core/epics/other.json")).unwrap();
    let target_before = std::fs::read(&target).unwrap();
    let err = driver(
        &p.root,
        &[json!({"action": "create_issue", "args": {"epic": "other", "summary": "Something new", "seat": "developer"}})],
    )
    .handle(&[], "add one")
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "create_issue: writing 'model/core/epics/other.json' is refused: it is a link, and links are never written through"
    );
    assert_eq!(target_before, std::fs::read(&target).unwrap());
}

#[tokio::test]
async fn a_written_asset_the_loader_refuses_is_taken_back() {
    // An issue of a new epic that depends on itself passes the driver's own checks but not the
    // loader (a dependency cycle): the new file is removed again and the action refused.
    let message = refused(
        json!({"action": "create_epic", "args": {"name": "docs_site", "team": "demo_team",
            "issues": [{"summary": "Write the index page", "seat": "developer",
                        "depends_on": ["Write the index page"]}]}}),
        "the edited asset does not load, so it was put back as it was",
    )
    .await;
    assert!(message.starts_with("create_epic: "), "{message}");
}

#[tokio::test]
async fn an_organization_that_does_not_load_is_an_error_not_a_blank_one() {
    let p = project();
    std::fs::write(p.root.join("config/organization.json"), "{ not json").unwrap();
    let before = snapshot(&p.root);
    let err = driver(&p.root, &[json!({"action": "reply", "message": "hello"})])
        .handle(&[], "hello?")
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Io(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("the organization does not load: ")
            && message.contains("config/organization.json"),
        "{message}"
    );
    assert_eq!(before, snapshot(&p.root));
}

#[tokio::test]
async fn a_directive_the_build_cannot_take_is_said_in_the_reply() {
    let p = project();
    let sqlite: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&p.root.join(".orket/orket.db"))
            .await
            .unwrap(),
    );
    sqlite
        .apply(vec![
            Change::UpsertBuild(BuildRecord::new(
                "build-hello_cli",
                "epic",
                "hello_cli",
                "core",
            )),
            Change::InsertIssue(IssueRecord::new(
                "build-hello_cli",
                "DEMO-2",
                "Document hello.py in README.md",
                "developer",
            )),
        ])
        .await
        .unwrap();
    // The store takes events but refuses every issue update.
    let store: Arc<dyn Store> = Arc::new(Intercept::new(
        Arc::clone(&sqlite),
        Box::new(|changes| {
            if changes
                .iter()
                .any(|c| matches!(c, Change::UpdateIssue { .. }))
            {
                Err(StoreError::Conflict("updates are off".into()))
            } else {
                Ok(())
            }
        }),
    ));
    let out = driver(
        &p.root,
        &[json!({"action": "turn_directive", "args": {"issue": "DEMO-2", "directive": "Use a level-1 heading."}})],
    )
    .with_store(store)
    .handle(&[], "tell DEMO-2")
    .await
    .unwrap();
    assert_eq!(out.changed_files, vec!["model/core/epics/hello_cli.json"]);
    assert!(
        out.reply.contains(
            "but the directive did not reach issue DEMO-2 of build build-hello_cli: conflict: updates are off"
        ),
        "{}",
        out.reply
    );
    let row = sqlite
        .get_issue("build-hello_cli", "DEMO-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.note, None);
    let events = sqlite.list_events(None, 0, 100).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.data()["reply"], json!(out.reply));
}

#[tokio::test]
async fn an_issue_not_found_names_the_epics_that_do_not_load() {
    let p = project();
    std::fs::write(p.root.join("model/core/epics/other.json"), "{ broken").unwrap();
    let before = snapshot(&p.root);
    let err = driver(
        &p.root,
        &[json!({"action": "turn_directive", "args": {"issue": "OTHER-1", "directive": "x"}})],
    )
    .handle(&[], "tell OTHER-1")
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "turn_directive: issue: unknown issue \"OTHER-1\" (no epic has it); not read: epic \"other\" (does not load: "
        ),
        "{message}"
    );
    assert_eq!(before, snapshot(&p.root));
}
