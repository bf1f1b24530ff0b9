//! `orket webhooks`: the Gitea webhook deliveries `orket serve` received, newest first, with
//! what each did.

use super::runs::{aligned, display_timestamp, one_line, truncate_chars};
use crate::project::Project;
use anyhow::Result;
use orket_store::DeliveryRecord;
use std::process::ExitCode;

/// How many characters of a delivery's detail the table shows.
const DETAIL_WIDTH: usize = 70;

/// Prints the `limit` most recent deliveries as a table (or as JSON); never creates the store.
pub async fn run(project: &Project, limit: i64, json: bool) -> Result<ExitCode> {
    let deliveries = match project.existing_store().await? {
        Some(store) => store.list_deliveries(limit).await?,
        None => Vec::new(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&deliveries)?);
    } else {
        print!("{}", render(&deliveries));
    }
    Ok(ExitCode::SUCCESS)
}

/// The deliveries as an aligned table, one line each.
pub fn render(deliveries: &[DeliveryRecord]) -> String {
    if deliveries.is_empty() {
        return "No webhook deliveries yet.\n".to_string();
    }
    let header = [
        "ID",
        "RECEIVED",
        "EVENT",
        "PULL REQUEST",
        "OUTCOME",
        "DETAIL",
    ]
    .map(str::to_string)
    .to_vec();
    let rows = deliveries.iter().map(|record| {
        let d = &record.delivery;
        let pr = match (&d.repository, d.pr_number) {
            (Some(repo), Some(n)) => format!("{repo}#{n}"),
            (Some(repo), None) => repo.clone(),
            _ => String::new(),
        };
        vec![
            record.id.to_string(),
            display_timestamp(&record.received_at),
            d.event_type.clone().unwrap_or_else(|| d.event.clone()),
            pr,
            d.outcome.clone(),
            record
                .detail
                .as_deref()
                .map(|t| truncate_chars(&one_line(t), DETAIL_WIDTH))
                .unwrap_or_default(),
        ]
    });
    aligned(std::iter::once(header).chain(rows).collect(), &[0])
}
