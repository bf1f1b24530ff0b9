//! `WS /ws/events` on a real listener: the key (header or query), every event of a run in
//! order, the run filter, and a slow client told how many events it missed.

mod common;

use common::{Project, KEY};
use futures::StreamExt;
use orket_store::EventRecord;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn listen(p: &Project) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = p.state.clone();
    tokio::spawn(orket_server::serve(state, listener, std::future::pending()));
    addr
}

async fn connect(addr: SocketAddr, query: &str) -> Socket {
    let url = format!("ws://{addr}/ws/events?api_key={KEY}{query}");
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next JSON frame, or `None` after `wait` without one.
async fn next(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

fn event(id: i64, run: &str) -> EventRecord {
    EventRecord {
        id,
        run_id: Some(run.to_string()),
        timestamp: "2026-11-22T08:00:00.000Z".to_string(),
        role: Some("coder".to_string()),
        issue_id: Some("DEMO-1".to_string()),
        event: orket_core::Event::TurnStart {
            seq: id,
            seat: "developer".to_string(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_needed_as_header_or_query() {
    let p = Project::new().await;
    let addr = listen(&p).await;
    let url = format!("ws://{addr}/ws/events");
    let err = tokio_tungstenite::connect_async(url.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let err = tokio_tungstenite::connect_async(format!("{url}?api_key=nope"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let mut request = url.clone().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-api-key", KEY.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    p.state.bus().publish(event(1, "aaaa0001"));
    let frame = next(&mut socket, Duration::from_secs(5)).await.unwrap();
    assert_eq!(frame["id"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_receives_every_event_of_a_run_in_order() {
    let p = Project::new().await;
    let addr = listen(&p).await;
    let mut all = connect(addr, "").await;
    let mut other = connect(addr, "&run_id=ffffffff").await;
    let id = p.start("hello_cli", 0).await;
    p.wait_end(&id).await;
    let stored = p.store.list_events(Some(&id), 0, 10_000).await.unwrap();
    assert!(stored.len() > 20, "{} events", stored.len());
    let mut received = Vec::new();
    while received.len() < stored.len() {
        let Some(frame) = next(&mut all, Duration::from_secs(10)).await else {
            break;
        };
        received.push(frame);
    }
    let want: Vec<Value> = stored
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(received, want);
    let first = &received[0];
    for key in ["timestamp", "run_id", "role", "event", "issue_id", "data"] {
        assert!(first.get(key).is_some(), "frame lacks {key}");
    }
    assert_eq!(first["event"], "session_start");
    assert_eq!(received.last().unwrap()["event"], "session_end");
    let status_change = received
        .iter()
        .find(|f| f["event"] == "status_change")
        .unwrap();
    assert_eq!(status_change["data"]["from"], "ready");
    // The client filtered on another run received none of it.
    assert_eq!(next(&mut other, Duration::from_millis(300)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_client_receives_only_its_run() {
    let p = Project::new().await;
    let addr = listen(&p).await;
    let mut a = connect(addr, "&run_id=aaaa0001").await;
    let mut b = connect(addr, "&run_id=bbbb0002").await;
    for id in 1..=20 {
        let run = if id % 3 == 0 { "bbbb0002" } else { "aaaa0001" };
        p.state.bus().publish(event(id, run));
    }
    let ids = |frames: Vec<Value>| -> Vec<i64> {
        frames.iter().map(|f| f["id"].as_i64().unwrap()).collect()
    };
    let mut got_a = Vec::new();
    while let Some(frame) = next(&mut a, Duration::from_millis(500)).await {
        assert_eq!(frame["run_id"], "aaaa0001");
        got_a.push(frame);
    }
    let mut got_b = Vec::new();
    while let Some(frame) = next(&mut b, Duration::from_millis(500)).await {
        assert_eq!(frame["run_id"], "bbbb0002");
        got_b.push(frame);
    }
    assert_eq!(
        ids(got_a),
        (1..=20).filter(|i| i % 3 != 0).collect::<Vec<_>>()
    );
    assert_eq!(ids(got_b), vec![3, 6, 9, 12, 15, 18]);
}

/// One thread: the server cannot drain the bus while the test publishes, so the client lags.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_client_is_told_how_many_events_it_missed() {
    let p = Project::with(|c| c.bus_capacity = 8).await;
    let addr = listen(&p).await;
    let mut slow = connect(addr, "").await;
    for id in 1..=100 {
        p.state.bus().publish(event(id, "aaaa0001"));
    }
    let mut received = Vec::new();
    let mut skipped = 0;
    while let Some(frame) = next(&mut slow, Duration::from_millis(500)).await {
        if frame["event"] == "lagged" {
            skipped += frame["data"]["skipped"].as_u64().unwrap();
        } else {
            received.push(frame["id"].as_i64().unwrap());
        }
    }
    assert!(skipped > 0, "no lag reported");
    assert_eq!(received.len() as u64 + skipped, 100);
    assert_eq!(received.last(), Some(&100));
    assert!(received.windows(2).all(|w| w[0] < w[1]));
    // The bus and the run were never blocked: publishing returned at once.
    p.state.bus().publish(event(101, "aaaa0001"));
    assert_eq!(
        next(&mut slow, Duration::from_secs(5)).await.unwrap()["id"],
        101
    );
}

/// Browsers apply no CORS to WebSockets: a page on another site could read every event, so
/// the upgrade is refused unless its `Origin` is the server's own (or allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_cannot_open_the_websocket() {
    let p = Project::with(|c| c.api_key = None).await;
    let addr = listen(&p).await;
    let url = format!("ws://{addr}/ws/events");
    let with_origin = |origin: &str| {
        let mut request = url.clone().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
    };
    let err = tokio_tungstenite::connect_async(with_origin("http://evil.example"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    // DNS rebinding: the page's own origin under a name that is not loopback.
    let mut rebound = with_origin("http://evil.example");
    rebound
        .headers_mut()
        .insert("host", "evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(rebound).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    // The board: same origin.
    let (mut socket, _) = tokio_tungstenite::connect_async(with_origin(&format!("http://{addr}")))
        .await
        .unwrap();
    p.state.bus().publish(event(1, "aaaa0001"));
    let frame = next(&mut socket, Duration::from_secs(5)).await.unwrap();
    assert_eq!(frame["id"], 1);
}
