//! Runs the demo epic with the embedded demo model and reports, from one run: generation
//! speed (tokens/s), time to first token, prompt evaluation time, and the share of each turn's
//! wall time spent outside the model (engine overhead %).
//!
//! `cargo run --release -p orket-bench-embedded --features embedded --bin embedded_model`

#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use orket_core::assets::AssetTree;
use orket_engine::{Engine, RunOptions};
use orket_llm::embedded::{EmbeddedOptions, EmbeddedProvider, GenerationStats};
use orket_llm::models::{demo_model, fetch, find_local};
use orket_llm::{ModelReply, ModelRequest, Provider, ProviderError};
use orket_store::events::EventBus;
use orket_store::{SqliteStore, Store};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The embedded provider, keeping each call's wall time and llama.cpp's stats.
struct Measured {
    inner: EmbeddedProvider,
    calls: Mutex<Vec<(f64, GenerationStats)>>,
}

#[async_trait]
impl Provider for Measured {
    fn name(&self) -> &str {
        "embedded"
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        let started = Instant::now();
        let reply = self.inner.complete(request).await?;
        let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        if let (Some(stats), Ok(mut calls)) = (self.inner.last_stats(), self.calls.lock()) {
            calls.push((wall_ms, stats));
        }
        Ok(reply)
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
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

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model_path = match std::env::var_os("ORKET_MODEL_PATH") {
        Some(p) => PathBuf::from(p),
        None => match find_local("smollm2") {
            Some(p) => p,
            None => fetch(demo_model("smollm2").context("demo model")?, |s| {
                eprintln!("{s}")
            })?,
        },
    };
    let load_started = Instant::now();
    let inner = EmbeddedProvider::load(&model_path, EmbeddedOptions::default())?;
    let load_ms = load_started.elapsed().as_secs_f64() * 1000.0;
    let provider = Arc::new(Measured {
        inner,
        calls: Mutex::new(Vec::new()),
    });

    let dir = tempfile::tempdir()?;
    let root = dir.path().join("demo");
    copy_dir(&repo.join("demo"), &root)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&root.join(".orket/orket.db")).await?);
    let options = RunOptions {
        concurrency: 1,
        max_iterations: 12,
        ..RunOptions::new(Arc::clone(&provider) as Arc<dyn Provider>)
    };
    let engine = Engine::new(
        AssetTree::new(&root),
        Arc::clone(&store),
        EventBus::default(),
    );
    let started = Instant::now();
    let outcome = engine.run("hello_cli", options).await?.remove(0);
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;

    let calls = provider.calls.lock().map(|c| c.clone()).unwrap_or_default();
    if calls.is_empty() {
        bail!(
            "the run made no model call ({}: {:?})",
            outcome.status,
            outcome.reason
        );
    }
    let model_ms: f64 = calls.iter().map(|(ms, _)| ms).sum();
    let turns = calls.len();
    let rows = [
        (
            "model",
            model_path
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default(),
        ),
        ("model load (ms)", format!("{load_ms:.0}")),
        (
            "run outcome",
            format!("{} after {turns} model calls", outcome.status),
        ),
        (
            "generation speed (tokens/s, mean)",
            format!(
                "{:.1}",
                mean(calls.iter().map(|(_, s)| s.tokens_per_second))
            ),
        ),
        (
            "time to first token (ms, mean)",
            format!(
                "{:.0}",
                mean(calls.iter().map(|(_, s)| s.time_to_first_token_ms))
            ),
        ),
        (
            "prompt tokens (mean)",
            format!(
                "{:.0}",
                mean(calls.iter().map(|(_, s)| s.prompt_tokens as f64))
            ),
        ),
        (
            "completion tokens (mean)",
            format!(
                "{:.1}",
                mean(calls.iter().map(|(_, s)| s.completion_tokens as f64))
            ),
        ),
        (
            "prompt evaluation (ms, mean)",
            format!("{:.0}", mean(calls.iter().map(|(_, s)| s.prompt_ms))),
        ),
        (
            "model time per turn (ms, mean)",
            format!("{:.0}", model_ms / turns as f64),
        ),
        ("run wall time (ms)", format!("{wall_ms:.0}")),
        (
            "engine overhead (% of wall outside the model)",
            format!("{:.2}", 100.0 * (wall_ms - model_ms) / wall_ms),
        ),
        (
            "engine time per turn (ms)",
            format!("{:.1}", (wall_ms - model_ms) / turns as f64),
        ),
    ];
    let mut table = String::from("| measure | value |\n|---|---:|\n");
    for (k, v) in rows {
        table.push_str(&format!("| {k} | {v} |\n"));
    }
    print!("{table}");
    let results = repo.join("bench/EMBEDDED_RESULTS.md");
    let text = format!(
        "# Embedded model: results\n\nMeasured with `cargo run --release -p orket-bench-embedded --features embedded --bin embedded_model` \
         (the demo epic, concurrency 1, one run; `nproc` = {}).\n\n{table}\nEngine overhead = (run wall time − the sum of the model calls' wall time) / run wall time.\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    std::fs::write(&results, text).with_context(|| format!("writing {}", results.display()))?;
    eprintln!("wrote {}", results.display());
    Ok(())
}
