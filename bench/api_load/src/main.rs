//! `orket serve` under load, on loopback: requests/s and p50/p95/p99 latency of `/health`,
//! `/v1/system/heartbeat` and `/v1/runs` with 16 concurrent clients, and 100 WebSocket clients
//! that must each receive every event of a replayed run of the demo epic. The server runs on
//! its own runtime thread; the clients on another. Appends the results to `bench/RESULTS.md`
//! (replacing the previous `api_load` section).

#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use orket_core::Event;
use orket_server::{AppState, ServerConfig};
use orket_store::{SqliteStore, Store};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The command that produces the section.
const COMMAND: &str = "cargo run --release -p orket-bench-api --bin api_load";
/// The heading of the section in `RESULTS.md`.
const HEADING: &str = "## API load (`bench/api_load`)";
const KEY: &str = "bench-key";
const CONCURRENCY: usize = 16;
const DURATION: Duration = Duration::from_secs(5);
const WS_CLIENTS: usize = 100;
/// Runs in the store while `/v1/runs` is measured (it lists them with their progress).
const RUNS: usize = 10;

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| from.display().to_string())? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Starts the server on its own runtime thread; returns its address.
fn start_server(root: PathBuf) -> Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(anyhow::anyhow!("server runtime: {e}")));
                return;
            }
        };
        runtime.block_on(async move {
            let started = async {
                let store: Arc<dyn Store> =
                    Arc::new(SqliteStore::open(&root.join(".orket/orket.db")).await?);
                let mut config = ServerConfig::new(&root, store);
                config.api_key = Some(KEY.to_string());
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                anyhow::Ok((AppState::new(config), listener, addr))
            }
            .await;
            match started {
                Ok((state, listener, addr)) => {
                    let _ = tx.send(Ok(addr));
                    if let Err(e) =
                        orket_server::serve(state, listener, std::future::pending()).await
                    {
                        eprintln!("server: {e}");
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    rx.recv().context("the server thread ended")?
}

struct Load {
    path: &'static str,
    requests: usize,
    errors: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index].as_secs_f64() * 1000.0
    }
}

/// `CONCURRENCY` clients, each sending requests one after the other for `DURATION`.
async fn load(client: &reqwest::Client, base: &str, path: &'static str) -> Result<Load> {
    let url = format!("{base}{path}");
    let started = Instant::now();
    let workers = (0..CONCURRENCY).map(|_| {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while started.elapsed() < DURATION {
                let t = Instant::now();
                let ok = match client.get(&url).header("x-api-key", KEY).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                latencies.push(t.elapsed());
                errors += usize::from(!ok);
            }
            (latencies, errors)
        })
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in futures::future::join_all(workers).await {
        let (l, e) = worker?;
        latencies.extend(l);
        errors += e;
    }
    let wall = started.elapsed();
    latencies.sort();
    Ok(Load {
        path,
        requests: latencies.len(),
        errors,
        wall,
        latencies,
    })
}

async fn start_run(client: &reqwest::Client, base: &str, reset: bool) -> Result<String> {
    let body = json!({"target": "hello_cli", "provider": "replay",
        "replay": "replay/hello_cli.jsonl", "reset": reset, "concurrency": 3});
    let response = client
        .post(format!("{base}/v1/system/run-active"))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let value: Value = response.json().await?;
    if status.as_u16() != 202 {
        bail!("run-active answered {status}: {value}");
    }
    Ok(value["session_id"].as_str().unwrap_or_default().to_string())
}

async fn wait_run(client: &reqwest::Client, base: &str, id: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let session: Value = client
            .get(format!("{base}/v1/sessions/{id}"))
            .header("x-api-key", KEY)
            .send()
            .await?
            .json()
            .await?;
        if session["run"]["status"] != "running" && session["run"]["active"] == false {
            return Ok(session["run"].clone());
        }
        if Instant::now() > deadline {
            bail!("run {id} did not end: {session}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct WsResult {
    clients: usize,
    stored: usize,
    complete: usize,
    min: usize,
    max: usize,
    lagged: u64,
    run_wall: Duration,
    status: String,
}

/// 100 clients follow one replayed run; each must receive every stored event of it.
async fn websockets(
    client: &reqwest::Client,
    base: &str,
    addr: SocketAddr,
    root: &Path,
) -> Result<WsResult> {
    let mut sockets = Vec::new();
    for _ in 0..WS_CLIENTS {
        let url = format!("ws://{addr}/ws/events?api_key={KEY}");
        sockets.push(tokio_tungstenite::connect_async(url).await?.0);
    }
    let started = Instant::now();
    let id = start_run(client, base, true).await?;
    let run = wait_run(client, base, &id).await?;
    let run_wall = started.elapsed();
    let store = SqliteStore::open(&root.join(".orket/orket.db")).await?;
    let stored = store.list_events(Some(&id), 0, 100_000).await?.len();
    store.close().await;
    let readers = sockets.into_iter().map(|mut socket| {
        let id = id.clone();
        tokio::spawn(async move {
            let mut mine = 0usize;
            let mut lagged = 0u64;
            let mut ended = false;
            while !ended {
                match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
                    Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) => {
                        let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        let event = Event::from_parts(
                            frame["event"].as_str().unwrap_or_default(),
                            frame["data"].clone(),
                        );
                        if let Ok(Event::Lagged { skipped }) = event {
                            lagged += skipped;
                        } else if frame["run_id"] == id.as_str() {
                            mine += 1;
                            ended = matches!(event, Ok(Event::SessionEnd { .. }));
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            (mine, lagged)
        })
    });
    let mut counts = Vec::new();
    let mut lagged = 0;
    for reader in futures::future::join_all(readers).await {
        let (n, l) = reader?;
        counts.push(n);
        lagged += l;
    }
    Ok(WsResult {
        clients: counts.len(),
        stored,
        complete: counts.iter().filter(|n| **n == stored).count(),
        min: counts.iter().copied().min().unwrap_or(0),
        max: counts.iter().copied().max().unwrap_or(0),
        lagged,
        run_wall,
        status: run["status"].as_str().unwrap_or("?").to_string(),
    })
}

fn rustc_version() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

fn section(loads: &[Load], ws: &WsResult, load_avg: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{HEADING}\n");
    let _ = writeln!(
        out,
        "Measured with `{COMMAND}` on {} UTC: `orket serve`'s router on 127.0.0.1 (its own \
         2-thread runtime), clients in the same process (reqwest with keep-alive, another \
         runtime), a copy of `demo/` with {RUNS} replayed runs in the store, the API key on. \
         `nproc` {}, git {}, {}, load average at the start {load_avg}.\n",
        chrono_now(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        git_commit(),
        rustc_version(),
    );
    let _ = writeln!(
        out,
        "| Route | Clients | Seconds | Requests | Errors | Requests/s | p50 (ms) | p95 (ms) | p99 (ms) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for l in loads {
        let _ = writeln!(
            out,
            "| `GET {}` | {CONCURRENCY} | {:.1} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
            l.path,
            l.wall.as_secs_f64(),
            l.requests,
            l.errors,
            l.requests as f64 / l.wall.as_secs_f64(),
            l.percentile(0.50),
            l.percentile(0.95),
            l.percentile(0.99),
        );
    }
    let _ = writeln!(
        out,
        "\nWebSocket: {} clients on `/ws/events` followed one replayed `hello_cli` run ({}, {:.2} s \
         from `run-active` to its end): events stored for the run {}; clients that received all \
         of them {} (per client min {}, max {}); `lagged` notices {}.",
        ws.clients, ws.status, ws.run_wall.as_secs_f64(), ws.stored, ws.complete, ws.min, ws.max, ws.lagged
    );
    out
}

fn chrono_now() -> String {
    // RFC 3339 to the minute, from the store's clock helper.
    let now = orket_store::now_timestamp();
    now.get(..16).unwrap_or(&now).replace('T', " ")
}

/// Replaces the previous section (up to the next `## ` heading) or appends it at the end.
fn write_results(path: &Path, section: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let updated = match text.find(HEADING) {
        Some(start) => {
            let after = start + HEADING.len();
            let end = text[after..]
                .find("\n## ")
                .map(|i| after + i + 1)
                .unwrap_or(text.len());
            format!("{}{}{}", &text[..start], section, &text[end..])
        }
        None => format!(
            "{}\n{section}",
            text.trim_end_matches('\n').to_string() + "\n"
        ),
    };
    std::fs::write(path, updated).with_context(|| path.display().to_string())
}

fn main() -> Result<()> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let load_avg = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".to_string());
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("project");
    copy_dir(&repo.join("demo"), &root)?;
    let addr = start_server(root.clone())?;
    let base = format!("http://{addr}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (loads, ws) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONCURRENCY)
            .no_proxy()
            .build()?;
        eprintln!("{WS_CLIENTS} WebSocket clients, one replayed run ...");
        let ws = websockets(&client, &base, addr, &root).await?;
        eprintln!("{} more runs for /v1/runs ...", RUNS - 1);
        for _ in 1..RUNS {
            let id = start_run(&client, &base, true).await?;
            wait_run(&client, &base, &id).await?;
        }
        let mut loads = Vec::new();
        for path in ["/health", "/v1/system/heartbeat", "/v1/runs"] {
            eprintln!(
                "GET {path}: {CONCURRENCY} clients for {} s ...",
                DURATION.as_secs()
            );
            loads.push(load(&client, &base, path).await?);
        }
        anyhow::Ok((loads, ws))
    })?;
    let text = section(&loads, &ws, &load_avg);
    print!("{text}");
    if !std::env::args().any(|a| a == "--no-write") {
        write_results(&repo.join("bench/RESULTS.md"), &text)?;
    }
    if ws.complete != ws.clients || loads.iter().any(|l| l.errors > 0) {
        bail!("not every client got every answer (see above)");
    }
    Ok(())
}
