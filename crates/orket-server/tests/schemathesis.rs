//! The server against its own OpenAPI document, fuzzed by schemathesis (a real client built to
//! find where an API and its document disagree) on a loopback listener: no 5xx for any
//! generated request, every status code and content type documented, every response body
//! matching its schema, invalid input refused, the key enforced. Bounded: 50 cases per
//! operation with a fixed seed (`ORKET_SCHEMATHESIS_SEED` to try another).
//!
//! Left out, and why: `/ws/events` (a WebSocket upgrade, which OpenAPI cannot describe) and the
//! `positive_data_acceptance` check (it fails any 4xx other than 401/403/404/409/429 for a
//! request the schema allows, while some refusals depend on the project's state, not the
//! request's shape: "model is a folder", a server with no default provider).
//!
//! schemathesis comes from `ORKET_SCHEMATHESIS`, else `target/schemathesis-venv` (where
//! `.ci/setup` installs it), else `schemathesis` on PATH. Missing, the test fails under
//! `CI=true`.

mod common;

use common::{Project, KEY};
use std::path::PathBuf;
use std::process::Command;

/// The seed of the generated cases (fixed, so that CI tests the same requests each time).
const SEED: &str = "20261207";

/// The schemathesis command, if it is installed.
fn schemathesis() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("ORKET_SCHEMATHESIS") {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/schemathesis-venv/bin/schemathesis");
    if venv.is_file() {
        return Some(venv);
    }
    Command::new("schemathesis")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("schemathesis"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_matches_its_openapi_document_under_fuzzing() {
    let Some(command) = schemathesis() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "schemathesis is needed for this test under CI (bash .ci/setup installs it)"
        );
        eprintln!("not run: schemathesis is not installed");
        return;
    };
    // With a webhook secret, as a server taking Gitea's deliveries runs (without one the
    // route answers 503, which schemathesis counts as a server error).
    let p = Project::with(|c| c.gitea.secret = Some("fuzzing-secret".into())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(orket_server::serve(
        p.state.clone(),
        listener,
        std::future::pending(),
    ));
    let seed = std::env::var("ORKET_SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.to_string());
    let report = tempfile::tempdir().unwrap();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(command)
            .args(["run", &format!("http://{addr}/openapi.json")])
            .args(["--header", &format!("X-API-Key: {KEY}")])
            .args([
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
            ])
            .args(["--exclude-path", "/ws/events"])
            .args(["--phases", "examples,coverage,fuzzing,stateful"])
            .args(["--max-examples", "50", "--workers", "1", "--seed", &seed])
            .args(["--request-timeout", "30", "--no-color"])
            .arg("--report-dir")
            .arg(report.path())
            .current_dir(report.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis found the server and its document disagreeing:\n{said}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // It did test the API: every operation of the document, none failing.
    assert!(
        said.contains("Coverage") && said.contains("Fuzzing"),
        "{said}"
    );
    assert!(!said.contains("failures"), "{said}");
}
