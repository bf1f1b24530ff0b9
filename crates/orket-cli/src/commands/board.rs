//! `orket board`: rocks → epics → issues with their statuses.

use crate::project::Project;
use anyhow::Result;
use orket_core::assets::{Board, BoardEpic};
use orket_store::overlay_builds;
use std::process::ExitCode;

/// Prints the board; statuses come from the store for epics that have a build in it. An
/// invalid or unknown department is an error (exit 1), as for `orket check`.
pub async fn run(project: &Project, department: Option<&str>, json: bool) -> Result<ExitCode> {
    let tree = project.tree()?;
    let mut board = Board::from_files(&tree, department)?;
    if let Some(store) = project.existing_store().await? {
        overlay_builds(&*store, &mut board).await?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&board)?);
    } else {
        print!("{}", render(&board));
    }
    Ok(ExitCode::SUCCESS)
}

/// The board as indented text.
fn render(board: &Board) -> String {
    let mut out = String::new();
    for rock in &board.rocks {
        match &rock.error {
            Some(error) => {
                out.push_str(&format!(
                    "Rock {} ({}) cannot be loaded:\n",
                    rock.id, rock.department
                ));
                for line in error.lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
            None => out.push_str(&format!(
                "Rock {} — {} [{}] ({})\n",
                rock.id, rock.name, rock.status, rock.department
            )),
        }
        for epic in &rock.epics {
            render_epic(&mut out, epic, "  ");
        }
        out.push('\n');
    }
    if !board.epics.is_empty() {
        out.push_str("Epics in no rock:\n");
        for epic in &board.epics {
            render_epic(&mut out, epic, "  ");
        }
    }
    if board.rocks.is_empty() && board.epics.is_empty() {
        out.push_str("No rocks or epics found.\n");
    }
    out
}

fn render_epic(out: &mut String, epic: &BoardEpic, indent: &str) {
    if let Some(error) = &epic.error {
        out.push_str(&format!(
            "{indent}Epic {} ({}) cannot be loaded:\n",
            epic.id, epic.department
        ));
        for line in error.lines() {
            out.push_str(&format!("{indent}    {line}\n"));
        }
        return;
    }
    out.push_str(&format!(
        "{indent}Epic {} — {} [{}] ({}, team {}, statuses from {})\n",
        epic.id, epic.name, epic.status, epic.department, epic.team, epic.source
    ));
    let name_width = epic
        .issues
        .iter()
        .map(|i| i.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    let id_width = epic.issues.iter().map(|i| i.id.len()).max().unwrap_or(0);
    for issue in &epic.issues {
        let name: String = issue.name.chars().take(48).collect();
        let mut line = format!(
            "{indent}  {:<21} {:<id_width$}  {:<name_width$}  {}  P{}",
            issue.status.as_str(),
            issue.id,
            name,
            issue.seat,
            issue.priority,
        );
        if let Some(a) = &issue.assignee {
            line.push_str(&format!("  @{a}"));
        }
        if !issue.depends_on.is_empty() {
            line.push_str(&format!("  after {}", issue.depends_on.join(", ")));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}
