//! `orket preview`: an epic, rock or issue flattened, with each seat's compiled prompt.

use crate::project::Project;
use anyhow::Result;
use orket_engine::policy::PolicyRegistry;
use orket_engine::preview::{preview, AssetPreview, PreviewOptions};
use std::fmt::Write;
use std::process::ExitCode;

/// Prints the preview of `name`; issues the store holds are shown as stored. A name that is
/// no epic, rock or issue is an error (exit 1).
pub async fn run(
    project: &Project,
    name: &str,
    department: &str,
    model: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    let tree = project.tree()?;
    let options = PreviewOptions {
        department: department.to_string(),
        model,
        ..PreviewOptions::default()
    };
    let store = project.existing_store().await?;
    let view = preview(
        &tree,
        store.as_deref(),
        &options,
        &PolicyRegistry::default(),
        name,
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// The preview as text: each issue, each seat, and its prompts.
fn render(view: &AssetPreview) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Preview of {} {} (department {})",
        view.kind, view.name, view.department
    );
    for epic in &view.epics {
        let _ = writeln!(
            out,
            "\nEpic {} (team {}, environment {}, build {})",
            epic.epic, epic.team, epic.environment, epic.build_id
        );
        for issue in &epic.issues {
            let _ = writeln!(
                out,
                "\n== {} {} [{}, from the {}]",
                issue.id, issue.name, issue.status, issue.source
            );
            for turn in &issue.turns {
                let _ = write!(out, "\n-- {} turn", turn.turn);
                match &turn.error {
                    Some(error) => {
                        let _ = writeln!(out, ": cannot run: {error}");
                        continue;
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            ": seat {} ({}), roles {}, model {} served by {}, dialect {}",
                            turn.seat.as_deref().unwrap_or("?"),
                            turn.seat_name.as_deref().unwrap_or("?"),
                            turn.roles.join(" + "),
                            turn.model.as_deref().unwrap_or("?"),
                            turn.client.as_deref().unwrap_or("?"),
                            turn.dialect.as_deref().unwrap_or("?")
                        );
                    }
                }
                for note in &turn.notes {
                    let _ = writeln!(out, "note: {note}");
                }
                let _ = writeln!(
                    out,
                    "[system]\n{}\n[user]\n{}",
                    turn.system_prompt.as_deref().unwrap_or_default().trim_end(),
                    turn.user_prompt.as_deref().unwrap_or_default().trim_end()
                );
            }
        }
    }
    out
}
