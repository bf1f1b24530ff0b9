//! What `orket rock status` shows of a rock: its epics with their builds' statuses, and its
//! bug-fix phase with the numbers of the rule as they stand by the clock.

use crate::error::EngineError;
use orket_core::assets::{AssetTree, Rock};
use orket_core::bugfix::{days_elapsed, discovery_rate, BugFixRules};
use orket_core::ids::epic_build_id;
use orket_core::lifecycle::derive_rock_status;
use orket_core::time::{parse_timestamp, Clock};
use orket_core::Status;
use orket_store::{BugFixPhaseRecord, PhaseStatus, Store};
use serde::Serialize;

/// A rock, its epics and its bug-fix phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RockStatus {
    /// The rock's file stem.
    pub rock: String,
    /// Its department.
    pub department: String,
    /// Its status, derived from its epics' builds.
    pub status: Status,
    /// Its epics, in order.
    pub epics: Vec<EpicView>,
    /// Its bug-fix phase, once it started.
    pub phase: Option<PhaseView>,
}

/// An epic of the rock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpicView {
    /// The epic's file stem.
    pub epic: String,
    /// Its department.
    pub department: String,
    /// Its build.
    pub build: String,
    /// The build's status (`ready` before any run).
    pub status: Status,
    /// Its issues that are done.
    pub done: usize,
    /// Its issues (in the build; an epic never run counts none).
    pub issues: usize,
}

/// A rock's bug-fix phase as it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseView {
    /// Active or ended.
    pub status: PhaseStatus,
    /// When it started (by the engine's clock).
    pub started_at: String,
    /// When it is planned to end.
    pub planned_end: String,
    /// Whole days since it started (until its end, once ended).
    pub days_elapsed: i64,
    /// Days until its planned end, rounded up (0 once ended).
    pub days_left: i64,
    /// How many times it was extended.
    pub extensions: u32,
    /// Bugs found in it.
    pub bugs_found: u32,
    /// Critical bugs among them.
    pub critical_bugs: u32,
    /// Those still open (not done, canceled or archived; the bugs an ended phase moved on are
    /// archived in their builds).
    pub open_bugs: usize,
    /// Bugs per day over the days elapsed (at least one), to two decimals.
    pub discovery_rate: f64,
    /// The rule's numbers.
    pub rules: BugFixRules,
    /// When it ended.
    pub ended_at: Option<String>,
    /// The rock its open bugs moved to.
    pub next_rock: Option<String>,
    /// The bugs it found, in the order found.
    pub bugs: Vec<BugView>,
}

/// A bug of the phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BugView {
    /// The issue's id.
    pub id: String,
    /// Its build.
    pub build: String,
    /// Its severity.
    pub severity: orket_core::bugfix::Severity,
    /// Its status now (`None` when the build no longer has it).
    pub status: Option<Status>,
    /// Its summary.
    pub summary: String,
}

/// The status of `rock` by `clock` (read only: bring the phase up to date first with
/// [`super::advance_rock`]).
pub async fn rock_status(
    store: &dyn Store,
    tree: &AssetTree,
    rock: &Rock,
    clock: &Clock,
) -> Result<RockStatus, EngineError> {
    let mut epics = Vec::new();
    for entry in &rock.epics {
        let build = epic_build_id(&entry.epic);
        let status = store
            .get_build(&build)
            .await?
            .map_or(Status::Ready, |b| b.status);
        let issues = store.list_issues(&build).await?;
        epics.push(EpicView {
            epic: entry.epic.clone(),
            department: entry.department.clone(),
            done: issues.iter().filter(|i| i.status == Status::Done).count(),
            issues: issues.len(),
            build,
            status,
        });
    }
    let statuses: Vec<Status> = epics.iter().map(|e| e.status).collect();
    let phase = match store.get_bug_fix_phase(&rock.stem).await? {
        Some(phase) => {
            let rules = tree.organization()?.bug_fix_rules();
            Some(phase_view(store, phase, rules, clock).await?)
        }
        None => None,
    };
    Ok(RockStatus {
        rock: rock.stem.clone(),
        department: rock.department.clone(),
        status: derive_rock_status(&statuses),
        epics,
        phase,
    })
}

async fn phase_view(
    store: &dyn Store,
    phase: BugFixPhaseRecord,
    rules: BugFixRules,
    clock: &Clock,
) -> Result<PhaseView, EngineError> {
    let time = |text: &str| {
        parse_timestamp(text).map_err(|message| EngineError::BugFixPhase {
            rock: phase.rock.clone(),
            message,
        })
    };
    let started = time(&phase.started_at)?;
    let planned_end = time(&phase.planned_end)?;
    let until = match &phase.ended_at {
        Some(ended) => time(ended)?,
        None => clock.now(),
    };
    let days = days_elapsed(started, until);
    let left_secs = (planned_end - until).num_seconds().max(0);
    let mut bugs = Vec::new();
    for bug in &phase.bugs {
        let issue = store.get_issue(&bug.build_id, &bug.id).await?;
        bugs.push(BugView {
            id: bug.id.clone(),
            build: bug.build_id.clone(),
            severity: bug.severity,
            status: issue.as_ref().map(|i| i.status),
            summary: issue.map(|i| i.name).unwrap_or_default(),
        });
    }
    let open = bugs
        .iter()
        .filter(|b| b.status.is_some_and(|s| !s.is_terminal()))
        .count();
    Ok(PhaseView {
        status: phase.status,
        days_elapsed: days,
        days_left: match phase.status {
            PhaseStatus::Active => (left_secs + 86_399) / 86_400,
            PhaseStatus::Ended => 0,
        },
        extensions: phase.extensions,
        bugs_found: phase.bugs_found(),
        critical_bugs: phase.critical_bugs(),
        open_bugs: open,
        discovery_rate: (discovery_rate(phase.bugs_found(), days) * 100.0).round() / 100.0,
        rules,
        started_at: phase.started_at,
        planned_end: phase.planned_end,
        ended_at: phase.ended_at,
        next_rock: phase.next_rock,
        bugs,
    })
}
