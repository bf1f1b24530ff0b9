//! `orket model list|fetch` and `orket demo` as a user sees them, without network or model.

use assert_cmd::Command;

fn orket() -> Command {
    let mut cmd = Command::cargo_bin("orket").unwrap();
    cmd.env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .env_remove("ORKET_MODEL_PATH");
    cmd
}

#[test]
fn model_list_shows_the_cache_and_an_unreachable_ollama() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.gguf"), b"GGUF").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = orket()
        .args(["model", "list"])
        .env("ORKET_MODEL_DIR", dir.path())
        .env("OLLAMA_HOST", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("GGUF models in {}:", dir.path().display())),
        "{stdout}"
    );
    assert!(stdout.contains("tiny.gguf"), "{stdout}");
    assert!(
        stdout.contains(&format!("Ollama at http://127.0.0.1:{port} not reachable")),
        "{stdout}"
    );
}

#[test]
fn fetching_an_unknown_model_names_the_known_ones() {
    let out = orket().args(["model", "fetch", "gpt-5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("unknown demo model \"gpt-5\" (known: smollm2, gemma3-270m)"));
}

#[cfg(not(feature = "embedded"))]
#[test]
fn without_the_embedded_feature_the_demo_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let out = orket()
        .args(["demo", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("built without the embedded model: rebuild with `cargo build --release -p orket-cli --features embedded`"), "{stderr}");
    // The demo organization was written and is valid.
    let check = orket()
        .args(["check", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
