//! A rock's bug-fix phase, kept up to date against a clock (`orket_core::bugfix` is the rule).
//!
//! A phase starts when a rock's epics are done ([`start`]: a `bug_fix_phases` row and
//! `bug_fix_phase_started`); the bugs existing then are its baseline and never count. Every bug
//! (an issue of type `bug`) that appears afterwards in one of the rock's epic builds — created
//! by `create_issue` in any run of those epics, or seeded from an epic file — is found by the
//! next [`advance`] and recorded in the phase with its severity, once. [`advance`] (every rock)
//! and [`advance_rock`] (one) bring phases up to date: the rule extends a phase
//! (`bug_fix_phase_extended`, at most once per seven-day window, so repeated checks on the
//! same evidence extend it once) or ends it at its planned end (`bug_fix_phase_ended`), when
//! its open bugs move to the next phase's rock (`next_rock.rs`): new rock and epic files
//! holding them, and the bugs archived where they were, with a comment naming where they went.
//! The rock runs call them at their end, `orket rock status` before it answers, and an
//! organization loop may call [`advance`] on each pick.
//!
//! Every change of a phase is one batch over the revision that was read: two processes
//! advancing the same phase at once apply it once (the other's batch is refused and it reads
//! the phase again).

mod next_rock;
mod view;

pub use view::{rock_status, BugView, EpicView, PhaseView, RockStatus};

use crate::error::EngineError;
use orket_core::assets::{AssetTree, Category, Rock};
use orket_core::bugfix::{
    assess, initial_end, BugFixRules, PhaseFacts, Severity, Verdict, BUG_TYPE,
};
use orket_core::ids::epic_build_id;
use orket_core::lifecycle::derive_rock_status;
use orket_core::time::{parse_timestamp, timestamp, Clock};
use orket_core::{Event, Status};
use orket_store::events::Recorder;
use orket_store::{
    BugFixPhaseRecord, Change, IssueRecord, NewEvent, PhaseBug, PhaseStatus, Store, StoreError,
};
use std::collections::HashSet;

/// What bringing one phase up to date did.
#[derive(Debug, Clone, PartialEq)]
pub enum PhaseChange {
    /// Nothing (no new bug, no extension, not over).
    Unchanged,
    /// The phase started now.
    Started,
    /// New bugs were recorded; nothing else changed.
    Counted,
    /// The phase was extended (the event's reason).
    Extended(String),
    /// The phase ended; its open bugs moved to this rock (none: no bug was open).
    Ended(Option<String>),
}

/// One phase brought up to date.
#[derive(Debug, Clone, PartialEq)]
pub struct Advanced {
    /// The phase as it stands now.
    pub phase: BugFixPhaseRecord,
    /// What was done.
    pub change: PhaseChange,
}

/// What [`advance`] did: each phase brought up to date, and each rock that could not be.
#[derive(Debug, Default)]
pub struct AdvanceReport {
    /// The phases looked at, by rock.
    pub advanced: Vec<Advanced>,
    /// The rocks that could not be, with why.
    pub failed: Vec<(String, EngineError)>,
}

/// Brings every rock's phase up to date by `clock`: each rock of the tree (every department)
/// whose epics are done gets its phase started, and every active phase is counted, extended or
/// ended. A rock that fails is reported and the others go on.
pub async fn advance(recorder: &Recorder, tree: &AssetTree, clock: &Clock) -> AdvanceReport {
    let mut report = AdvanceReport::default();
    let mut seen = HashSet::new();
    for dept in tree.departments() {
        for rock in tree.list(Category::Rocks, &dept) {
            if !seen.insert(rock.clone()) {
                continue;
            }
            match advance_rock(recorder, tree, &rock, &dept, clock).await {
                Ok(Some(advanced)) => report.advanced.push(advanced),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!("bug-fix phase of rock {rock}: {err}");
                    report.failed.push((rock, err));
                }
            }
        }
    }
    report
}

/// Brings rock `name`'s phase up to date by `clock` (looked up in department `dept`): started
/// when its epics are done and it has none, else counted, extended or ended. `None` while the
/// rock's epics are not all done.
pub async fn advance_rock(
    recorder: &Recorder,
    tree: &AssetTree,
    name: &str,
    dept: &str,
    clock: &Clock,
) -> Result<Option<Advanced>, EngineError> {
    let rock = tree.load_rock(name, dept)?;
    let rules = tree.organization()?.bug_fix_rules();
    let store = recorder.store().as_ref();
    let mut phase = match store.get_bug_fix_phase(&rock.stem).await? {
        Some(phase) => phase,
        None => match start(recorder, &rock, &rules, clock).await? {
            Some(started) => {
                return Ok(Some(Advanced {
                    phase: started,
                    change: PhaseChange::Started,
                }))
            }
            None => return Ok(None),
        },
    };
    // Two tries: a batch refused because another process moved the phase on reads it again.
    for _ in 0..2 {
        if phase.status == PhaseStatus::Ended {
            break;
        }
        match step(recorder, tree, &rock, &rules, phase.clone(), clock).await {
            Ok(advanced) => return Ok(Some(advanced)),
            Err(EngineError::Store(StoreError::Conflict(_))) => {
                phase = store
                    .get_bug_fix_phase(&rock.stem)
                    .await?
                    .ok_or_else(|| EngineError::NotFound(format!("rock {name} has no phase")))?;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(Some(Advanced {
        phase,
        change: PhaseChange::Unchanged,
    }))
}

/// Starts `rock`'s phase now when its epics are all done and it has none; `None` otherwise
/// (or when another process started it first).
pub(crate) async fn start(
    recorder: &Recorder,
    rock: &Rock,
    rules: &BugFixRules,
    clock: &Clock,
) -> Result<Option<BugFixPhaseRecord>, EngineError> {
    let store = recorder.store().as_ref();
    if !epics_done(store, rock).await? {
        return Ok(None);
    }
    let baseline = rock_bugs(store, rock)
        .await?
        .iter()
        .map(|issue| key(&issue.build_id, &issue.id))
        .collect();
    let now = clock.now();
    let phase = BugFixPhaseRecord::new(
        &rock.stem,
        &rock.department,
        timestamp(now),
        timestamp(initial_end(now, rules)),
        baseline,
    );
    let event = Event::BugFixPhaseStarted {
        rock: rock.stem.clone(),
        department: rock.department.clone(),
        started_at: phase.started_at.clone(),
        planned_end: phase.planned_end.clone(),
    };
    let changes = vec![
        Change::StartBugFixPhase(phase.clone()),
        Change::AppendEvent(NewEvent::new(None, event)),
    ];
    match recorder.commit(changes).await {
        Ok(_) => Ok(Some(phase)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Whether every epic of the rock has a build and every one is final with at least one done.
async fn epics_done(store: &dyn Store, rock: &Rock) -> Result<bool, EngineError> {
    let mut statuses = Vec::new();
    for entry in &rock.epics {
        match store.get_build(&epic_build_id(&entry.epic)).await? {
            Some(build) => statuses.push(build.status),
            None => return Ok(false),
        }
    }
    Ok(!statuses.is_empty() && derive_rock_status(&statuses) == Status::Done)
}

/// The bugs of the rock's epic builds, build by build in insertion order.
async fn rock_bugs(store: &dyn Store, rock: &Rock) -> Result<Vec<IssueRecord>, EngineError> {
    let mut bugs = Vec::new();
    let mut builds = HashSet::new();
    for entry in &rock.epics {
        let build = epic_build_id(&entry.epic);
        if builds.insert(build.clone()) {
            let issues = store.list_issues(&build).await?;
            bugs.extend(issues.into_iter().filter(|i| i.issue_type == BUG_TYPE));
        }
    }
    Ok(bugs)
}

/// `build/id`.
fn key(build_id: &str, id: &str) -> String {
    format!("{build_id}/{id}")
}

/// One move of an active phase: record the new bugs, then apply the rule.
async fn step(
    recorder: &Recorder,
    tree: &AssetTree,
    rock: &Rock,
    rules: &BugFixRules,
    mut phase: BugFixPhaseRecord,
    clock: &Clock,
) -> Result<Advanced, EngineError> {
    let store = recorder.store().as_ref();
    let bugs = rock_bugs(store, rock).await?;
    let found = record_new_bugs(&mut phase, &bugs);
    let now = clock.now();
    let facts = facts(&phase)?;
    match assess(&facts, rules, now) {
        Verdict::Continue if found == 0 => Ok(Advanced {
            phase,
            change: PhaseChange::Unchanged,
        }),
        Verdict::Continue => {
            recorder
                .commit(vec![Change::UpdateBugFixPhase(phase.clone())])
                .await?;
            Ok(Advanced {
                phase: stored(phase),
                change: PhaseChange::Counted,
            })
        }
        Verdict::Extend(extension) => {
            phase.planned_end = timestamp(extension.planned_end);
            phase.extensions += 1;
            phase.last_extension_window = Some(extension.window);
            let event = Event::BugFixPhaseExtended {
                rock: phase.rock.clone(),
                planned_end: phase.planned_end.clone(),
                extensions: phase.extensions,
                days_elapsed: extension.days_elapsed,
                bugs_found: phase.bugs_found(),
                rate: (extension.rate * 100.0).round() / 100.0,
                critical_bugs: extension.critical_bugs,
                reason: extension.reason.clone(),
            };
            recorder
                .commit(vec![
                    Change::UpdateBugFixPhase(phase.clone()),
                    Change::AppendEvent(NewEvent::new(None, event)),
                ])
                .await?;
            Ok(Advanced {
                phase: stored(phase),
                change: PhaseChange::Extended(extension.reason),
            })
        }
        Verdict::End => end(recorder, tree, rock, phase, &bugs, clock).await,
    }
}

/// Adds to the phase every bug of `bugs` it has not recorded and that is not in its baseline;
/// returns how many.
fn record_new_bugs(phase: &mut BugFixPhaseRecord, bugs: &[IssueRecord]) -> usize {
    let known: HashSet<String> = phase
        .bugs
        .iter()
        .map(PhaseBug::key)
        .chain(phase.baseline.iter().cloned())
        .collect();
    let new: Vec<PhaseBug> = bugs
        .iter()
        .filter(|issue| !known.contains(&key(&issue.build_id, &issue.id)))
        .map(|issue| PhaseBug {
            build_id: issue.build_id.clone(),
            id: issue.id.clone(),
            severity: issue.severity.unwrap_or(Severity::DEFAULT_FOR_BUGS),
        })
        .collect();
    let count = new.len();
    phase.bugs.extend(new);
    count
}

/// What the rule reads of a stored phase.
fn facts(phase: &BugFixPhaseRecord) -> Result<PhaseFacts, EngineError> {
    let time = |text: &str| {
        parse_timestamp(text).map_err(|message| EngineError::BugFixPhase {
            rock: phase.rock.clone(),
            message,
        })
    };
    Ok(PhaseFacts {
        started_at: time(&phase.started_at)?,
        planned_end: time(&phase.planned_end)?,
        bugs_found: phase.bugs_found(),
        critical_bugs: phase.critical_bugs(),
        last_extension_window: phase.last_extension_window,
    })
}

/// The phase as the store holds it after an update of it: the next revision.
fn stored(mut phase: BugFixPhaseRecord) -> BugFixPhaseRecord {
    phase.revision += 1;
    phase
}

/// Ends the phase: its open bugs (those it found that are not done, canceled or archived) go
/// to the next phase's rock — its files written first, then, in one batch, the phase ended,
/// each bug archived in its build with a comment naming where it went, and the event.
async fn end(
    recorder: &Recorder,
    tree: &AssetTree,
    rock: &Rock,
    mut phase: BugFixPhaseRecord,
    bugs: &[IssueRecord],
    clock: &Clock,
) -> Result<Advanced, EngineError> {
    let found: HashSet<String> = phase.bugs.iter().map(PhaseBug::key).collect();
    let open: Vec<&IssueRecord> = bugs
        .iter()
        .filter(|issue| found.contains(&key(&issue.build_id, &issue.id)))
        .filter(|issue| !issue.status.is_terminal())
        .collect();
    phase.status = PhaseStatus::Ended;
    phase.ended_at = Some(clock.timestamp());
    let mut changes = Vec::new();
    if !open.is_empty() {
        let next = next_rock::write(tree, rock, &phase, &open).await?;
        for (issue, epic) in &next.placed {
            changes.extend(move_bug(issue, &next.rock, epic));
        }
        phase.next_rock = Some(next.rock);
    }
    let event = Event::BugFixPhaseEnded {
        rock: phase.rock.clone(),
        ended_at: phase.ended_at.clone().unwrap_or_default(),
        bugs_found: phase.bugs_found(),
        critical_bugs: phase.critical_bugs(),
        open_bugs: open.iter().map(|i| key(&i.build_id, &i.id)).collect(),
        next_rock: phase.next_rock.clone(),
    };
    changes.insert(0, Change::UpdateBugFixPhase(phase.clone()));
    changes.push(Change::AppendEvent(NewEvent::new(None, event)));
    recorder.commit(changes).await?;
    let next_rock = phase.next_rock.clone();
    Ok(Advanced {
        phase: stored(phase),
        change: PhaseChange::Ended(next_rock),
    })
}

/// A bug moved to `next_rock`'s epic `epic`: archived where it was, with a comment saying so.
fn move_bug(issue: &IssueRecord, next_rock: &str, epic: &str) -> Vec<Change> {
    let actor = orket_core::ENGINE_ACTOR;
    vec![
        Change::UpdateIssue {
            build_id: issue.build_id.clone(),
            id: issue.id.clone(),
            update: orket_store::IssueUpdate::by(actor)
                .status(Status::Archived)
                .clear_wait_reason(),
        },
        Change::AddComment {
            build_id: issue.build_id.clone(),
            issue_id: issue.id.clone(),
            author: actor.to_string(),
            content: format!(
                "The bug-fix phase ended with this bug open: it moved to rock {next_rock} \
                 (epic {epic}, same id)."
            ),
        },
    ]
}
