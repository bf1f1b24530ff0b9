//! `orket halt <run-id>`: asks a run to stop at its next turn boundary, whichever process
//! executes it (`orket run` in another terminal, `orket serve`): the request goes through the
//! store, which every running run reads at each tick and while its turns are in flight.

use crate::project::Project;
use anyhow::{bail, Result};
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
