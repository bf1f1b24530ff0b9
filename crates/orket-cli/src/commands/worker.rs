//! `orket worker` (runs the fleet's turns) and `orket workers` (lists the fleet).

use super::run::ProviderArgs;
use crate::project::Project;
use anyhow::{bail, Result};
use orket_store::fleet::WorkerRecord;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `orket worker`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Its name in the fleet [default: <host>-<pid>].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A model this worker serves (repeat for several): it takes only turns of seats that use
    /// one of them.
    #[arg(long = "model", value_name = "MODEL", required = true)]
    pub models: Vec<String>,
    /// Where it keeps its copies of the runs' projects [default: <root>/.orket/worker/<name>].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Seconds a job stays held without a heartbeat before another worker may take it (the
    /// heartbeat renews it every third of that).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease: u64,
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// Works until Ctrl-C (which finishes the turn in flight first).
#[cfg(feature = "postgres")]
pub async fn run(project: &Project, args: WorkerArgs) -> Result<ExitCode> {
    use super::run::provider;
    use orket_engine::fleet::{run_worker, WorkerOptions};
    use orket_engine::Halt;
    use std::sync::Arc;
    use std::time::Duration;

    let store = project.postgres_store().await?;
    let fleet = Arc::new(orket_store::PgFleet::connect(&store).await?);
    let host = orket_engine::lease::host_name();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{host}-{}", std::process::id()));
    let provider = provider(&args.provider)?;
    let defaults = orket_engine::RunOptions::from_env(Arc::clone(&provider));
    let options = WorkerOptions {
        name: name.clone(),
        host,
        models: args.models.clone(),
        provider,
        dir: args
            .dir
            .clone()
            .unwrap_or_else(|| project.root().join(".orket").join("worker").join(&name)),
        lease: Duration::from_secs(args.lease),
        idle: Duration::from_millis(200),
        verify: defaults.verify,
        context_window: defaults.context_window,
    };
    println!(
        "Worker {name} serving {} on {} (Ctrl-C finishes the turn in flight, then stops)",
        args.models.join(", "),
        project.store_name()
    );
    let stop = Halt::new();
    let work = tokio::spawn(run_worker(fleet, options, stop.clone()));
    tokio::pin!(work);
    let report = loop {
        tokio::select! {
            done = &mut work => break done??,
            _ = tokio::signal::ctrl_c() => {
                println!("stopping after the turn in flight ...");
                stop.raise();
            }
        }
    };
    println!(
        "Worker {name} stopped: {} turns committed, {} refused, {} failed, {} dropped (their run had ended)",
        report.committed, report.refused, report.failed, report.dropped
    );
    Ok(ExitCode::SUCCESS)
}

/// Without the feature: says how to get it.
#[cfg(not(feature = "postgres"))]
pub async fn run(_project: &Project, _args: WorkerArgs) -> Result<ExitCode> {
    bail!(
        "`orket worker` needs PostgreSQL, and this orket was built without it: rebuild with \
         `cargo build --release -p orket-cli --features postgres`"
    )
}

/// Lists the fleet's workers.
pub async fn list(project: &Project, json: bool) -> Result<ExitCode> {
    let workers = match project.existing_store().await? {
        Some(store) => store.list_workers().await?,
        None => Vec::new(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&workers)?);
        return Ok(ExitCode::SUCCESS);
    }
    if workers.is_empty() {
        if !project.store_name().starts_with("postgres") {
            bail!(
                "no workers: a fleet needs a PostgreSQL store (--db postgres://...), and {} is a SQLite file",
                project.store_name()
            );
        }
        println!("No workers yet (start one with `orket worker --model M`).");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table(&workers));
    Ok(ExitCode::SUCCESS)
}

fn table(workers: &[WorkerRecord]) -> String {
    let mut out = format!(
        "{:<20} {:<16} {:<28} {:<25} {:>5} {:>6}\n",
        "NAME", "HOST", "MODELS", "LAST SEEN", "JOBS", "TURNS"
    );
    for w in workers {
        let seen = match &w.stopped_at {
            Some(at) => format!("stopped {at}"),
            None => w.last_seen.clone(),
        };
        out.push_str(&format!(
            "{:<20} {:<16} {:<28} {:<25} {:>5} {:>6}\n",
            w.name,
            w.host,
            w.models.join(","),
            seen,
            w.jobs_held,
            w.turns_done
        ));
    }
    out
}
