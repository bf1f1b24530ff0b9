//! `orket rock status <rock>`: a rock's epics and its bug-fix phase, brought up to date by the
//! clock (`ORKET_NOW` for tests and rehearsals) before it is shown.

use crate::project::{self, Project};
use anyhow::{bail, Result};
use orket_core::assets::{AssetError, Category, Rock};
use orket_core::ids::epic_build_id;
use orket_core::Status;
use orket_engine::bugfix::{self, EpicView, PhaseView, RockStatus};
use orket_store::events::Recorder;
use orket_store::PhaseStatus;
use std::process::ExitCode;

/// Prints rock `name`'s status (as JSON with `json`). The phase is started, extended or ended
/// first, as the clock says; without a store (nothing ran yet) nothing is written.
pub async fn status(project: &Project, name: &str, dept: &str, json: bool) -> Result<ExitCode> {
    let tree = project.tree()?;
    let rock = match tree.load_rock(name, dept) {
        Ok(rock) => rock,
        Err(AssetError::NotFound { .. }) => bail!(
            "rock \"{name}\" not found in department \"{dept}\" (rocks: {})",
            names(&tree.list(Category::Rocks, dept))
        ),
        Err(err) => return Err(err.into()),
    };
    let clock = project::clock()?;
    let status = match project.existing_store().await? {
        Some(store) => {
            let recorder = Recorder::for_store(store.clone());
            bugfix::advance_rock(&recorder, &tree, &rock.stem, dept, &clock).await?;
            bugfix::rock_status(store.as_ref(), &tree, &rock, &clock).await?
        }
        None => not_run(&rock),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// The status of a rock in a project whose store does not exist yet: nothing ran.
fn not_run(rock: &Rock) -> RockStatus {
    let epics = rock
        .epics
        .iter()
        .map(|e| EpicView {
            epic: e.epic.clone(),
            department: e.department.clone(),
            build: epic_build_id(&e.epic),
            status: Status::Ready,
            done: 0,
            issues: 0,
        })
        .collect();
    RockStatus {
        rock: rock.stem.clone(),
        department: rock.department.clone(),
        status: Status::Ready,
        epics,
        phase: None,
    }
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}

/// The status as text.
fn render(status: &RockStatus) -> String {
    let mut out = format!(
        "rock {} ({}): {}\n",
        status.rock, status.department, status.status
    );
    out.push_str("epics:\n");
    for epic in &status.epics {
        out.push_str(&format!(
            "  {:<24} {:<12} {}/{} issues done  ({})\n",
            epic.epic, epic.status, epic.done, epic.issues, epic.build
        ));
    }
    match &status.phase {
        None => out.push_str(
            "bug-fix phase: not started (it starts when every epic of the rock is done)\n",
        ),
        Some(phase) => out.push_str(&render_phase(phase)),
    }
    out
}

fn render_phase(phase: &PhaseView) -> String {
    let mut out = format!("bug-fix phase: {}\n", phase.status);
    out.push_str(&format!("  started         {}\n", phase.started_at));
    match phase.status {
        PhaseStatus::Active => out.push_str(&format!(
            "  planned end     {} ({} days left; at most {} days in all)\n",
            phase.planned_end, phase.days_left, phase.rules.max_duration_days
        )),
        PhaseStatus::Ended => {
            out.push_str(&format!("  planned end     {}\n", phase.planned_end));
            out.push_str(&format!(
                "  ended           {}\n",
                phase.ended_at.as_deref().unwrap_or("?")
            ));
        }
    }
    out.push_str(&format!("  extensions      {}\n", phase.extensions));
    out.push_str(&format!(
        "  bugs found      {} ({} critical; extends above {}), {} open\n",
        phase.bugs_found, phase.critical_bugs, phase.rules.bug_critical_threshold, phase.open_bugs
    ));
    out.push_str(&format!(
        "  discovery rate  {:.2} bugs/day over {} day(s) (extends above {})\n",
        phase.discovery_rate, phase.days_elapsed, phase.rules.bug_discovery_high_rate
    ));
    if phase.status == PhaseStatus::Ended {
        out.push_str(&match &phase.next_rock {
            Some(next) => format!("  open bugs moved to rock {next} (archived here)\n"),
            None => "  no bug was open at the end\n".to_string(),
        });
    }
    if !phase.bugs.is_empty() {
        out.push_str("  bugs:\n");
        for bug in &phase.bugs {
            let status = bug
                .status
                .map_or_else(|| "gone".to_string(), |s| s.to_string());
            out.push_str(&format!(
                "    {:<12} {:<9} {:<22} {}  ({})\n",
                bug.id, bug.severity, status, bug.summary, bug.build
            ));
        }
    }
    out
}
