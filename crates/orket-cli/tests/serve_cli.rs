//! `orket serve` as a user starts it: refused on a non-loopback address without a key, and
//! serving the API on any address with one, the key checked.

mod common;

use assert_cmd::Command;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn a_non_loopback_address_without_a_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for host in ["0.0.0.0", "::"] {
        let out = Command::cargo_bin("orket")
            .unwrap()
            .args(["serve", "--host", host, "--port", "0", "--root"])
            .arg(common::demo_dir())
            .arg("--db")
            .arg(dir.path().join("orket.db"))
            .env_remove("ORKET_API_KEY")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{host}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("without an API key") && stderr.contains("ORKET_API_KEY"),
            "{stderr}"
        );
        assert!(!dir.path().join("orket.db").exists(), "nothing was opened");
    }
    let out = Command::cargo_bin("orket")
        .unwrap()
        .args(["serve", "--host", "no such host!", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// One HTTP/1.1 request on a fresh connection; returns the status line and the body.
fn http_get(port: u16, path: &str, key: Option<&str>) -> (String, String) {
    // The listener may take a moment to be reachable from here: retry for a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(e) if std::time::Instant::now() > deadline => panic!("port {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let key = key
        .map(|k| format!("X-API-Key: {k}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{key}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    // Until the server closes (a reset after the whole answer is fine too).
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[test]
fn with_a_key_serve_listens_on_any_address_and_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("orket"));
    command
        .args(["serve", "--host", "0.0.0.0", "--port", "0", "--root"])
        .arg(common::demo_dir())
        .arg("--db")
        .arg(dir.path().join("orket.db"))
        .env("ORKET_API_KEY", "cli-test-key");
    let server = common::Server::start(command);
    let port = server.port();
    let (status, body) = http_get(port, "/health", None);
    let (unauthorized, _) = http_get(port, "/v1/version", None);
    let (ok, version) = http_get(port, "/v1/version", Some("cli-test-key"));
    drop(server);
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("\"ok\""), "{body}");
    assert!(unauthorized.contains("401"), "{unauthorized}");
    assert!(ok.contains("200"), "{ok}");
    assert!(version.contains("orket"), "{version}");
}
