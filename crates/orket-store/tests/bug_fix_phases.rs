//! A rock's bug-fix phase rows and bugs' severities, on every backend: a phase starts once per
//! rock, reads back as written, and is updated only over the revision that was read.

mod common;

use common::Backend;
use rstest::rstest;

use common::{seed_issue, temp_store};
use orket_core::bugfix::Severity;
use orket_store::{BugFixPhaseRecord, Change, IssueRecord, PhaseBug, PhaseStatus, StoreError};

fn phase(rock: &str) -> BugFixPhaseRecord {
    BugFixPhaseRecord::new(
        rock,
        "core",
        "2030-01-01T00:00:00.000Z",
        "2030-01-08T00:00:00.000Z",
        vec!["build-app/BUG-OLD".to_string()],
    )
}

fn bug(id: &str, severity: Severity) -> PhaseBug {
    PhaseBug {
        build_id: "build-app".to_string(),
        id: id.to_string(),
        severity,
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_phase_starts_once_and_reads_back_as_written(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    assert_eq!(store.get_bug_fix_phase("launch").await.unwrap(), None);
    let started = phase("launch");
    store
        .apply(vec![Change::StartBugFixPhase(started.clone())])
        .await
        .unwrap();
    let stored = store.get_bug_fix_phase("launch").await.unwrap().unwrap();
    assert_eq!(
        BugFixPhaseRecord {
            updated_at: started.updated_at.clone(),
            ..stored.clone()
        },
        started
    );
    assert_eq!((stored.status, stored.revision), (PhaseStatus::Active, 0));

    let err = store
        .apply(vec![Change::StartBugFixPhase(phase("launch"))])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("rock launch already has a bug-fix phase (active)")),
        "{err}"
    );
    store
        .apply(vec![Change::StartBugFixPhase(phase("another"))])
        .await
        .unwrap();
    // Each rock has its own.
    assert_eq!(
        store
            .get_bug_fix_phase("another")
            .await
            .unwrap()
            .unwrap()
            .rock,
        "another"
    );
    assert_eq!(
        store
            .get_bug_fix_phase("launch")
            .await
            .unwrap()
            .unwrap()
            .rock,
        "launch"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn updates_apply_over_the_revision_read_and_refuse_a_stale_one(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    store
        .apply(vec![Change::StartBugFixPhase(phase("launch"))])
        .await
        .unwrap();
    let read = store.get_bug_fix_phase("launch").await.unwrap().unwrap();
    let mut extended = read.clone();
    extended.bugs = vec![
        bug("BUG-1", Severity::Critical),
        bug("BUG-2", Severity::Low),
        bug("BUG-3", Severity::Critical),
    ];
    extended.planned_end = "2030-01-15T00:00:00.000Z".to_string();
    extended.extensions = 1;
    extended.last_extension_window = Some(0);
    store
        .apply(vec![Change::UpdateBugFixPhase(extended.clone())])
        .await
        .unwrap();
    let stored = store.get_bug_fix_phase("launch").await.unwrap().unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!((stored.bugs_found(), stored.critical_bugs()), (3, 2));
    assert_eq!(stored.bugs, extended.bugs);
    assert_eq!(stored.baseline, ["build-app/BUG-OLD"]);
    assert_eq!(
        (
            stored.planned_end.as_str(),
            stored.extensions,
            stored.last_extension_window
        ),
        ("2030-01-15T00:00:00.000Z", 1, Some(0))
    );

    // A second writer that read revision 0 is refused, and nothing of its batch is applied.
    seed_issue(&*store, "build-app", "BUG-1").await;
    let mut late = read.clone();
    late.status = PhaseStatus::Ended;
    let err = store
        .apply(vec![
            Change::UpdateIssue {
                build_id: "build-app".to_string(),
                id: "BUG-1".to_string(),
                update: orket_store::IssueUpdate::by("orket").status(orket_core::Status::Archived),
            },
            Change::UpdateBugFixPhase(late),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("changed since it was read (revision 1, not 0)")),
        "{err}"
    );
    let bug1 = store
        .get_issue("build-app", "BUG-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        bug1.status,
        orket_core::Status::Ready,
        "the batch was rolled back"
    );

    let mut ended = stored.clone();
    ended.status = PhaseStatus::Ended;
    ended.ended_at = Some("2030-01-15T00:00:00.000Z".to_string());
    ended.next_rock = Some("launch-phase2".to_string());
    store
        .apply(vec![Change::UpdateBugFixPhase(ended)])
        .await
        .unwrap();
    let stored = store.get_bug_fix_phase("launch").await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.next_rock.as_deref(), stored.revision),
        (PhaseStatus::Ended, Some("launch-phase2"), 2)
    );

    let err = store
        .apply(vec![Change::UpdateBugFixPhase(phase("unknown"))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn an_issue_keeps_its_severity(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let mut bug = IssueRecord::new("build-app", "BUG-9", "Crash on start", "developer");
    bug.issue_type = "bug".to_string();
    bug.severity = Some(Severity::Critical);
    let plain = IssueRecord::new("build-app", "APP-1", "Write it", "developer");
    store
        .apply(vec![
            Change::InsertIssue(bug.clone()),
            Change::InsertIssue(plain),
        ])
        .await
        .unwrap();
    let read = store
        .get_issue("build-app", "BUG-9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (read.issue_type.as_str(), read.severity),
        ("bug", Some(Severity::Critical))
    );
    let listed = store.list_issues("build-app").await.unwrap();
    let severities: Vec<Option<Severity>> = listed.iter().map(|i| i.severity).collect();
    assert_eq!(severities, [Some(Severity::Critical), None]);

    store
        .tamper("UPDATE issues SET severity = 'urgent' WHERE id = 'BUG-9'")
        .await;
    let err = store.get_issue("build-app", "BUG-9").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { what, .. } if what.contains("issues.severity of issue build-app/BUG-9")),
        "{err}"
    );
}
