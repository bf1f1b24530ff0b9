//! Serving connections within limits. A client has [`ServeLimits::header_timeout`] to send a
//! request's headers, idle time on a kept-alive connection included (a connection that sends
//! half a header, or nothing, is closed — before any key is checked); at most
//! [`ServeLimits::max_connections`] are served at once (more wait in the listen backlog). A
//! stalled request body and a declared body over the cap are answered by the router's own
//! layers (`routes.rs`: 408 and 413).
//!
//! Hand-written because axum's `serve` takes no configuration (its docs: "use hyper or
//! hyper-util if you need configuration"): this is its accept loop on hyper's HTTP/1 builder
//! with a header timer, and a semaphore that both caps the connections and, at shutdown,
//! tells when the last one has finished (hyper-util's `GracefulShutdown` does not take
//! hyper's HTTP/1 connections with upgrades, which the WebSocket needs).

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// How the server protects itself from slow and greedy clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// How long a connection may take to send a request's headers (or wait before its next
    /// request) before it is closed. Default 10 s.
    pub header_timeout: Duration,
    /// How long a request body may go without sending data before the request is answered
    /// 408. Default 30 s.
    pub body_timeout: Duration,
    /// Connections served at once. Default 256.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 256,
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting and waits up to `grace` for the connections in flight to finish.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, do not spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!("connection ended: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every slot back: every connection has finished.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {grace:?}; they close with the process");
    }
}
