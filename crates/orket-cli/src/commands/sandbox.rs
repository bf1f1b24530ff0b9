//! `orket sandbox list|logs|stop`: the sandbox registry of the project's store.

use crate::project::Project;
use anyhow::{bail, Result};
use orket_sandbox::{SandboxInfo, SandboxManager};
use std::process::ExitCode;

/// The manager over the project's store (`None` when the store does not exist yet: nothing
/// was ever deployed). Sandbox files live in `<root>/.orket/sandboxes`.
async fn manager(project: &Project) -> Result<Option<SandboxManager>> {
    let Some(store) = project.existing_store().await? else {
        return Ok(None);
    };
    Ok(Some(SandboxManager::for_project(store, project.root())))
}

async fn existing(project: &Project, id: &str) -> Result<SandboxManager> {
    match manager(project).await? {
        Some(m) => Ok(m),
        None => bail!(
            "sandbox {id} not found: there is no store at {} yet",
            project.store_name()
        ),
    }
}

/// Lists the sandboxes, newest first (never their passwords).
pub async fn list(project: &Project, json: bool) -> Result<ExitCode> {
    let sandboxes = match manager(project).await? {
        Some(m) => m.list().await?,
        None => Vec::new(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&sandboxes)?);
    } else {
        print!("{}", render(&sandboxes));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(sandboxes: &[SandboxInfo]) -> String {
    if sandboxes.is_empty() {
        return "No sandboxes.\n".to_string();
    }
    let mut out = format!(
        "{:<8}  {:<9}  {:<22}  {:<12}  {:<24}  {}\n",
        "ID", "STATUS", "STACK", "EPIC", "PORTS (api/web/db/admin)", "REASON"
    );
    for s in sandboxes {
        let r = &s.record;
        out.push_str(&format!(
            "{:<8}  {:<9}  {:<22}  {:<12}  {:<24}  {}\n",
            r.id,
            r.status,
            r.stack,
            r.epic,
            format!(
                "{}/{}/{}/{}",
                r.ports.api, r.ports.frontend, r.ports.db, r.ports.admin
            ),
            r.reason.as_deref().unwrap_or("")
        ));
    }
    out
}

/// Prints the last `tail` lines of a sandbox's container logs.
pub async fn logs(project: &Project, id: &str, tail: usize) -> Result<ExitCode> {
    let text = existing(project, id).await?.logs(id, tail).await?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Checks a sandbox's containers and records `sandbox_health`; exit 1 when it is not healthy.
pub async fn health(project: &Project, id: &str) -> Result<ExitCode> {
    let health = existing(project, id).await?.health(id).await?;
    let state = if health.healthy {
        "healthy"
    } else {
        "not healthy"
    };
    println!("sandbox {} {state}: {}", health.id, health.detail);
    Ok(if health.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Stops a sandbox and releases its ports.
pub async fn stop(project: &Project, id: &str) -> Result<ExitCode> {
    let record = existing(project, id).await?.stop(id).await?;
    println!(
        "sandbox {} {}{}",
        record.id,
        record.status,
        record
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
