//! `orket check`: validate the asset tree.

use crate::project::Project;
use anyhow::Result;
use orket_core::assets::{check_tree, Severity};
use std::process::ExitCode;

/// Prints every problem of the tree; exit 1 when there is an error.
pub fn run(project: &Project, department: Option<&str>, json: bool) -> Result<ExitCode> {
    let tree = project.tree()?;
    let report = check_tree(&tree, department);
    if json {
        let out = serde_json::json!({
            "ok": report.is_ok(),
            "errors": report.error_count(),
            "warnings": report.warning_count(),
            "files_checked": report.files_checked,
            "diagnostics": report.diagnostics,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for d in &report.diagnostics {
            let label = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            println!("{label}: {d}");
        }
        if !report.diagnostics.is_empty() {
            println!();
        }
        println!(
            "{}: {} files checked, {} {}, {} {}",
            project.root().display(),
            report.files_checked,
            report.error_count(),
            plural(report.error_count(), "error"),
            report.warning_count(),
            plural(report.warning_count(), "warning"),
        );
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}
