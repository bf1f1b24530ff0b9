//! `orket serve` against slow and greedy clients, on a real listener: connections that send
//! half a header are closed, a declared body over the cap is answered 413 at once, a stalled
//! body 408, and connections past the cap wait for a free one.

mod common;

use common::{Project, KEY};
use orket_server::ServeLimits;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for what must happen (far above the limits it sets).
const PATIENCE: Duration = Duration::from_secs(30);

async fn listen(limits: ServeLimits) -> (Project, SocketAddr) {
    let p = Project::with(|c| c.limits = limits).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(orket_server::serve(
        p.state.clone(),
        listener,
        std::future::pending(),
    ));
    (p, addr)
}

/// Everything the server sends until it closes the connection (`PATIENCE` at most).
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("the server kept the connection open")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

/// The status line of the server's answer (`PATIENCE` at most).
async fn status_line(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(PATIENCE, async {
        while !out.ends_with(b"\r\n") {
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            out.push(byte[0]);
        }
    })
    .await
    .expect("no answer");
    String::from_utf8_lossy(&out).trim().to_string()
}

/// A connection that has sent `text`.
async fn sent(addr: SocketAddr, text: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(text.as_bytes()).await.unwrap();
    stream
}

/// A whole `GET /health`.
fn health() -> String {
    format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: {KEY}\r\n\r\n")
}

/// A `POST /v1/system/save` that declares `length` body bytes and sends `body`.
fn save(length: u64, body: &str) -> String {
    format!(
        "POST /v1/system/save HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{body}"
    )
}

fn limits(header_secs: u64, body_secs: u64, max_connections: usize) -> ServeLimits {
    ServeLimits {
        header_timeout: Duration::from_secs(header_secs),
        body_timeout: Duration::from_secs(body_secs),
        max_connections,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_that_send_half_a_header_are_closed_and_others_are_served() {
    let (_p, addr) = listen(limits(1, 30, 256)).await;
    let mut slow = Vec::new();
    for _ in 0..100 {
        slow.push(sent(addr, "GET /v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-").await);
    }
    // A client that sends nothing at all is closed too.
    slow.push(TcpStream::connect(addr).await.unwrap());
    for stream in &mut slow {
        let answer = until_closed(stream).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    let mut ok = sent(addr, &health()).await;
    assert_eq!(status_line(&mut ok).await, "HTTP/1.1 200 OK");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_body_over_the_cap_is_413_at_once_and_a_stalled_body_408() {
    let (_p, addr) = listen(limits(30, 1, 256)).await;
    let mut huge = sent(addr, &save(99_999_999_999, "{}")).await;
    assert_eq!(
        status_line(&mut huge).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    assert!(until_closed(&mut huge).await.contains("at most 1048576"));

    let mut stalled = sent(addr, &save(100, "{\"")).await;
    assert_eq!(
        status_line(&mut stalled).await,
        "HTTP/1.1 408 Request Timeout"
    );
    assert!(until_closed(&mut stalled)
        .await
        .contains("stopped arriving"));
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_wait_for_a_free_one() {
    let (_p, addr) = listen(limits(60, 30, 2)).await;
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    let mut third = sent(addr, &health()).await;
    // Both slots are held: no answer while they are.
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "the third connection was served past the cap"
    );
    drop(first);
    assert_eq!(status_line(&mut third).await, "HTTP/1.1 200 OK");
}
