//! `orket ledger`: the success ledger — what was finished, when, by which run.

use crate::project::Project;
use anyhow::Result;
use orket_store::SuccessRecord;
use std::process::ExitCode;

/// Prints the success ledger (of one build, or of all), oldest first.
pub async fn run(project: &Project, build: Option<&str>, json: bool) -> Result<ExitCode> {
    let rows = match project.existing_store().await? {
        Some(store) => store.list_success(build).await?,
        None => Vec::new(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", render(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(rows: &[SuccessRecord]) -> String {
    if rows.is_empty() {
        return "Nothing finished yet.\n".to_string();
    }
    let mut out = format!(
        "{:<24}  {:<8}  {:<24}  {}\n",
        "FINISHED", "RUN", "BUILD", "CARD"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<24}  {:<8}  {:<24}  {}\n",
            r.recorded_at, r.run_id, r.build_id, r.card
        ));
    }
    out
}
