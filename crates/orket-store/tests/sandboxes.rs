//! The sandbox registry: round trips, slots held while deployed, released when failed or
//! stopped, and errors that name the sandbox.

mod common;

use common::Backend;
use rstest::rstest;

use common::temp_store;
use orket_store::{Change, SandboxPorts, SandboxRecord, SandboxStatus, StoreError};

fn sandbox(id: &str, slot: u16) -> SandboxRecord {
    SandboxRecord {
        id: id.to_string(),
        run_id: Some("a1b2c3d4".to_string()),
        build_id: Some("build-shop".to_string()),
        epic: "shop".to_string(),
        stack: "fastapi-react-postgres".to_string(),
        slot,
        ports: SandboxPorts::for_slot(slot).unwrap(),
        status: SandboxStatus::Allocated,
        reason: None,
        project_name: format!("orket-{id}"),
        compose_file: format!("/ws/.orket-sandboxes/{id}/docker-compose.yml"),
        workspace: "/ws".to_string(),
        created_at: format!("2026-11-22T07:00:0{slot}.000Z"),
        updated_at: format!("2026-11-22T07:00:0{slot}.000Z"),
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn sandboxes_round_trip_newest_first(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    store.insert_sandbox(sandbox("00000001", 0)).await.unwrap();
    store.insert_sandbox(sandbox("00000002", 1)).await.unwrap();
    let got = store.get_sandbox("00000001").await.unwrap().unwrap();
    assert_eq!(got, sandbox("00000001", 0));
    assert_eq!(
        got.ports,
        SandboxPorts {
            api: 8000,
            frontend: 3000,
            db: 5432,
            admin: 8080
        }
    );
    let ids: Vec<String> = store
        .list_sandboxes()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["00000002", "00000001"]);
    assert!(store.get_sandbox("ffffffff").await.unwrap().is_none());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_held_slot_cannot_be_taken_until_it_is_released(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    store.insert_sandbox(sandbox("00000001", 3)).await.unwrap();
    let err = store
        .insert_sandbox(sandbox("00000002", 3))
        .await
        .unwrap_err();
    match &err {
        StoreError::Conflict(m) => assert!(
            m.contains("sandbox 00000002") && m.contains("slot 3"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    // Running still holds it; failed releases it.
    store
        .update_sandbox("00000001", SandboxStatus::Running, None)
        .await
        .unwrap();
    assert!(store.insert_sandbox(sandbox("00000002", 3)).await.is_err());
    store
        .update_sandbox(
            "00000001",
            SandboxStatus::Failed,
            Some("docker is not running".to_string()),
        )
        .await
        .unwrap();
    store.insert_sandbox(sandbox("00000002", 3)).await.unwrap();
    let old = store.get_sandbox("00000001").await.unwrap().unwrap();
    assert_eq!(old.status, SandboxStatus::Failed);
    assert_eq!(old.reason.as_deref(), Some("docker is not running"));
    assert_ne!(old.updated_at, old.created_at);
    // Reviving the failed one onto a held slot is refused.
    let err = store
        .update_sandbox("00000001", SandboxStatus::Running, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn updating_an_unknown_sandbox_names_it_and_batches_roll_back(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let err = store
        .update_sandbox("deadbeef", SandboxStatus::Stopped, None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "sandbox deadbeef not found");
    let err = store
        .apply(vec![
            Change::InsertSandbox(sandbox("00000001", 0)),
            Change::UpdateSandbox {
                id: "nope".to_string(),
                status: SandboxStatus::Stopped,
                reason: None,
            },
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    assert!(store.list_sandboxes().await.unwrap().is_empty());
}

#[test]
fn statuses_parse_and_only_live_ones_hold_ports() {
    for s in SandboxStatus::ALL {
        assert_eq!(s.as_str().parse::<SandboxStatus>(), Ok(s));
    }
    assert!("paused"
        .parse::<SandboxStatus>()
        .unwrap_err()
        .contains("paused"));
    let holding: Vec<_> = SandboxStatus::ALL
        .into_iter()
        .filter(|s| s.holds_ports())
        .collect();
    assert_eq!(
        holding,
        [
            SandboxStatus::Allocated,
            SandboxStatus::Deploying,
            SandboxStatus::Running
        ]
    );
    assert_eq!(SandboxPorts::for_slot(u16::MAX), None);
}
