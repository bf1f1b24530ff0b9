//! A rock's bug-fix phase driven by `orket_engine::bugfix` with a fixed clock, on a small tree
//! and a SQLite store: concurrent advances extend once, a file in the way keeps the phase
//! active, and a large set of open bugs is split into epics `orket run` takes.

use orket_core::assets::{check_tree, AssetTree};
use orket_core::bugfix::Severity;
use orket_core::time::{parse_timestamp, Clock};
use orket_core::Status;
use orket_engine::bugfix::{advance, advance_rock, PhaseChange};
use orket_store::events::Recorder;
use orket_store::{BuildRecord, Change, IssueRecord, PhaseStatus, SqliteStore, Store};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn write(root: &Path, rel: &str, value: serde_json::Value) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

/// A rock `launch` of one epic `app` whose one issue is done, with `threshold` as the
/// organization's iDesign threshold.
async fn project(root: &Path, threshold: u64) -> (AssetTree, Arc<dyn Store>) {
    write(
        root,
        "config/organization.json",
        json!({"name": "Test", "architecture": {"idesign_threshold": threshold},
               "process_rules": {"bug_fix_phase": {"initial_duration_days": 7}}}),
    );
    write(
        root,
        "model/core/teams/team.json",
        json!({"name": "team", "seats": {"developer": {"name": "Dev", "roles": ["coder"]}}}),
    );
    write(
        root,
        "model/core/roles/coder.json",
        json!({"name": "coder", "description": "codes", "tools": ["write_file"]}),
    );
    write(
        root,
        "model/core/environments/local.json",
        json!({"name": "local", "model": "m"}),
    );
    write(
        root,
        "model/core/epics/app.json",
        json!({"name": "App", "team": "team", "environment": "local",
               "issues": [{"id": "APP-1", "summary": "Write it", "seat": "developer"}]}),
    );
    write(
        root,
        "model/core/rocks/launch.json",
        json!({"name": "Launch", "epics": [{"epic": "app", "department": "core"}]}),
    );
    for family in orket_core::assets::MODEL_FAMILIES {
        write(
            root,
            &format!("model/core/dialects/{family}.json"),
            json!({"model_family": family, "dsl_format": "{}", "constraints": [], "hallucination_guard": "x"}),
        );
    }
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&root.join(".orket/orket.db"))
            .await
            .unwrap(),
    );
    let mut done = IssueRecord::new("build-app", "APP-1", "Write it", "developer");
    done.status = Status::Done;
    store
        .apply(vec![
            Change::UpsertBuild(BuildRecord::new("build-app", "epic", "app", "core")),
            Change::InsertIssue(done),
        ])
        .await
        .unwrap();
    (AssetTree::new(root), store)
}

fn at(text: &str) -> Clock {
    Clock::Fixed(parse_timestamp(text).unwrap())
}

async fn file_bugs(store: &dyn Store, bugs: &[(&str, Severity)]) {
    let changes = bugs
        .iter()
        .map(|(id, severity)| {
            let mut bug = IssueRecord::new("build-app", *id, format!("Bug {id}"), "developer");
            bug.issue_type = "bug".to_string();
            bug.severity = Some(*severity);
            Change::InsertIssue(bug)
        })
        .collect();
    store.apply(changes).await.unwrap();
}

async fn count_events(store: &dyn Store, name: &str) -> usize {
    let events = store.list_events(None, 0, 1000).await.unwrap();
    events.iter().filter(|e| e.event.name() == name).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_advances_at_once_extend_a_phase_once() {
    let dir = tempfile::tempdir().unwrap();
    let (tree, store) = project(dir.path(), 7).await;
    // A bug filed (and fixed) before the phase is its baseline: never counted.
    let mut old = IssueRecord::new("build-app", "OLD-1", "Old bug", "developer");
    old.issue_type = "bug".to_string();
    old.status = Status::Done;
    store.apply(vec![Change::InsertIssue(old)]).await.unwrap();
    let recorder = Recorder::for_store(Arc::clone(&store));
    let day0 = at("2030-01-01T00:00:00Z");
    let started = advance(&recorder, &tree, &day0).await;
    assert!(started.failed.is_empty(), "{:?}", started.failed);
    assert_eq!(started.advanced.len(), 1);
    assert_eq!(started.advanced[0].change, PhaseChange::Started);
    assert_eq!(started.advanced[0].phase.baseline, ["build-app/OLD-1"]);

    file_bugs(
        &*store,
        &[
            ("B-1", Severity::Low),
            ("B-2", Severity::Low),
            ("B-3", Severity::Low),
            ("B-4", Severity::Low),
            ("B-5", Severity::Critical),
            ("B-6", Severity::High),
        ],
    )
    .await;
    let day1 = at("2030-01-02T12:00:00Z");
    let other = Recorder::for_store(Arc::new(
        SqliteStore::open(&dir.path().join(".orket/orket.db"))
            .await
            .unwrap(),
    ));
    let (a, b) = tokio::join!(
        advance_rock(&recorder, &tree, "launch", "core", &day1),
        advance_rock(&other, &tree, "launch", "core", &day1)
    );
    let changes = [a.unwrap().unwrap().change, b.unwrap().unwrap().change];
    let extended = changes
        .iter()
        .filter(|c| matches!(c, PhaseChange::Extended(_)))
        .count();
    assert_eq!(extended, 1, "{changes:?}");
    assert_eq!(count_events(&*store, "bug_fix_phase_extended").await, 1);
    let phase = store.get_bug_fix_phase("launch").await.unwrap().unwrap();
    assert_eq!(
        (phase.extensions, phase.bugs_found(), phase.critical_bugs()),
        (1, 6, 1)
    );
    assert_eq!(phase.planned_end, "2030-01-15T00:00:00.000Z");
    assert_eq!(phase.last_extension_window, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_in_the_way_keeps_the_phase_active_and_many_bugs_split_into_epics() {
    let dir = tempfile::tempdir().unwrap();
    let (tree, store) = project(dir.path(), 2).await;
    let recorder = Recorder::for_store(Arc::clone(&store));
    advance(&recorder, &tree, &at("2030-01-01T00:00:00Z")).await;
    file_bugs(
        &*store,
        &[
            ("B-1", Severity::Low),
            ("B-2", Severity::Medium),
            ("B-3", Severity::High),
            ("B-4", Severity::Critical),
            ("B-5", Severity::Low),
        ],
    )
    .await;
    // A person's own launch-phase2 is in the way: the phase says so and stays active.
    let own = json!({"name": "Mine", "epics": [{"epic": "app", "department": "core"}]});
    write(
        dir.path(),
        "model/core/rocks/launch-phase2.json",
        own.clone(),
    );
    let day9 = at("2030-01-10T00:00:00Z");
    let err = advance_rock(&recorder, &tree, "launch", "core", &day9)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "model/core/rocks/launch-phase2.json exists and was not written by this bug-fix phase"
        ),
        "{err}"
    );
    let phase = store.get_bug_fix_phase("launch").await.unwrap().unwrap();
    assert_eq!(phase.status, PhaseStatus::Active);
    assert!(
        !dir.path()
            .join("model/core/epics/launch-phase2-app.json")
            .exists(),
        "nothing of the next rock is left behind"
    );
    let kept: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("model/core/rocks/launch-phase2.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(kept, own, "the person's file is untouched");

    std::fs::remove_file(dir.path().join("model/core/rocks/launch-phase2.json")).unwrap();
    let ended = advance_rock(&recorder, &tree, "launch", "core", &day9)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ended.change,
        PhaseChange::Ended(Some("launch-phase2".to_string()))
    );
    // Five bugs, at most two per epic (the iDesign threshold): three epics, in order.
    let rock = tree.load_rock("launch-phase2", "core").unwrap();
    let epics: Vec<&str> = rock.epics.iter().map(|e| e.epic.as_str()).collect();
    assert_eq!(
        epics,
        [
            "launch-phase2-app",
            "launch-phase2-app-2",
            "launch-phase2-app-3"
        ]
    );
    let mut held = Vec::new();
    for name in &epics {
        let epic = tree.load_epic(name, "core").unwrap();
        assert!(epic.issues.len() <= 2);
        held.extend(epic.issues.iter().map(|i| (i.card.id.clone(), i.severity)));
    }
    assert_eq!(
        held,
        [
            ("B-1".to_string(), Some(Severity::Low)),
            ("B-2".to_string(), Some(Severity::Medium)),
            ("B-3".to_string(), Some(Severity::High)),
            ("B-4".to_string(), Some(Severity::Critical)),
            ("B-5".to_string(), Some(Severity::Low)),
        ]
    );
    let report = check_tree(&tree, None);
    assert_eq!(report.error_count(), 0, "{:?}", report.diagnostics);
    for id in ["B-1", "B-5"] {
        let bug = store.get_issue("build-app", id).await.unwrap().unwrap();
        assert_eq!(bug.status, Status::Archived);
        let comments = store.list_comments("build-app", id).await.unwrap();
        assert!(
            comments[0].content.contains("moved to rock launch-phase2"),
            "{comments:?}"
        );
    }
    // The phase-2 rock is not done, so it has no phase yet; the ended one stays ended.
    let again = advance(&recorder, &tree, &at("2030-02-01T00:00:00Z")).await;
    assert!(again.failed.is_empty(), "{:?}", again.failed);
    let changes: Vec<(&str, &PhaseChange)> = again
        .advanced
        .iter()
        .map(|a| (a.phase.rock.as_str(), &a.change))
        .collect();
    assert_eq!(changes, [("launch", &PhaseChange::Unchanged)]);
    assert_eq!(count_events(&*store, "bug_fix_phase_ended").await, 1);
}
