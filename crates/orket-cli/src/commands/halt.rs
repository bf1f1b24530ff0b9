//! `orket halt <run-id>`: asks a run to stop at its next turn boundary, whichever process
//! executes it (`orket run` in another terminal, `orket serve`): the request goes through the
//! store, which every running run reads at each tick and while its turns are in flight.
//! `orket halt --loop` does the same for the project's organization loop, found by its lease.

use crate::project::Project;
use anyhow::{bail, Result};
use orket_core::ids::LOOP_LEASE;
use orket_engine::lease::{holder_is_gone, STALE_AFTER};
use orket_engine::{request_halt, EngineError};
use orket_store::events::Recorder;
use orket_store::StoreError;
use std::process::ExitCode;

/// Records the halt request; exit 0 when it was recorded, 1 for an unknown or ended run.
pub async fn run(project: &Project, run_id: &str) -> Result<ExitCode> {
    let Some(store) = project.existing_store().await? else {
        let path = project.store_name();
        bail!("run {run_id} not found (no store at {path})");
    };
    match request_halt(&Recorder::for_store(store), run_id).await {
        Ok(()) => {
            println!(
                "halt requested for run {run_id}: it stops at its next turn boundary (turns in \
                 flight are committed) and ends canceled"
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(EngineError::Store(StoreError::Conflict(message))) => bail!("{message}"),
        Err(err) => Err(err.into()),
    }
}

/// Asks the project's loop to stop (whichever process runs it): its card in flight halts at
/// its next turn boundary, then the loop ends `canceled`. Exit 1 when no loop runs.
pub async fn halt_loop(project: &Project) -> Result<ExitCode> {
    let Some(store) = project.existing_store().await? else {
        bail!(
            "no loop is running in this project (no store at {})",
            project.store_name()
        );
    };
    let Some(lease) = store.get_lease(LOOP_LEASE).await? else {
        bail!("no loop is running in this project");
    };
    if lease.is_stale(STALE_AFTER) || holder_is_gone(&lease) {
        bail!(
            "no loop is running in this project: loop {} (process {} on {}) stopped without \
             ending; the next `orket loop` takes over",
            lease.run_id,
            lease.holder.pid,
            lease.holder.host
        );
    }
    request_halt(&Recorder::for_store(store), &lease.run_id).await?;
    println!(
        "halt requested for loop {} (process {} on {}): its card in flight stops at its next \
         turn boundary (turns in flight are committed), then the loop stops",
        lease.run_id, lease.holder.pid, lease.holder.host
    );
    Ok(ExitCode::SUCCESS)
}
