//! `orket approval list|approve|reject`: a person's decision on tool calls parked by
//! `process_rules.approval_required`, from the command line — the same decision as
//! `POST /v1/approvals/{id}/approve|reject` (`Engine::decide_approval`).

use crate::project::Project;
use anyhow::{bail, Result};
use orket_engine::approval::ApprovalDecision;
use orket_engine::Engine;
use orket_store::events::EventBus;
use orket_store::{ApprovalRecord, Store};
use std::process::ExitCode;
use std::sync::Arc;

/// How many characters of a call's arguments the table shows.
const ARGS_WIDTH: usize = 60;

/// Opens the project's store; an approval needs one, so a missing store is an error.
async fn store(project: &Project) -> Result<Arc<dyn Store>> {
    let Some(store) = project.existing_store().await? else {
        bail!(
            "no store at {}: nothing has run in this project, so no call waits for approval",
            project.store_name()
        );
    };
    Ok(store)
}

/// Prints the approvals (all, or one run's), pending first; exit 0.
pub async fn list(project: &Project, run: Option<&str>, json: bool) -> Result<ExitCode> {
    let mut approvals = store(project).await?.list_approvals(run).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&approvals)?);
        return Ok(ExitCode::SUCCESS);
    }
    if approvals.is_empty() {
        println!("No approvals.");
        return Ok(ExitCode::SUCCESS);
    }
    approvals.sort_by_key(|a| (a.status != "pending", a.id));
    for a in &approvals {
        println!("{}", line(a));
    }
    Ok(ExitCode::SUCCESS)
}

/// One approval as a line: id, status, issue, seat/role, the call, and what was decided.
fn line(a: &ApprovalRecord) -> String {
    let args = a.call.args.to_string();
    let args = if args.chars().count() > ARGS_WIDTH {
        let cut: String = args.chars().take(ARGS_WIDTH - 1).collect();
        format!("{cut}…")
    } else {
        args
    };
    let mut out = format!(
        "{:>4}  {:<8}  {:<10}  {}/{}  {} {}  (run {})",
        a.id, a.status, a.call.issue_id, a.call.seat, a.call.role, a.call.tool, args, a.call.run_id
    );
    if let Some(reason) = &a.reason {
        out.push_str(&format!("  reason: {reason}"));
    }
    out
}

/// Approves (runs the parked call) or rejects approval `id`; exit 0 when decided.
pub async fn decide(project: &Project, id: i64, decision: ApprovalDecision) -> Result<ExitCode> {
    let store = store(project).await?;
    let runs = Arc::clone(&store);
    let engine = Engine::new(project.tree()?, store, EventBus::default());
    // The engine's errors name the approval ("approval 7 not found", "... is already approved").
    let approval = engine.decide_approval(id, decision).await?;
    match approval.status.as_str() {
        "approved" => {
            let result = approval
                .result
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default();
            println!(
                "approval {id}: approved — {} ran for {}: {result}",
                approval.call.tool, approval.call.issue_id
            );
        }
        _ => println!(
            "approval {id}: rejected — {} goes back to ready{}",
            approval.call.issue_id,
            approval
                .reason
                .as_deref()
                .map(|r| format!(" with the comment \"{r}\""))
                .unwrap_or_default()
        ),
    }
    // A run that parked a call has ended (stalled) or still goes on and picks the issue up.
    if let Some(run) = runs.get_run(&approval.call.run_id).await? {
        if run.status.is_final() {
            println!(
                "Run {} has ended ({}): continue the build with `orket run {}`.",
                run.id, run.status, run.target
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
