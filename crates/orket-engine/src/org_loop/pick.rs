//! What the organization loop works on next. [`gather`] reads every epic in the loop's scope
//! in the board's order — each rock's epics in the rock's order, then the epics no rock lists —
//! with its issues' current statuses (the store's where the epic has a build, its file's
//! otherwise; issues an agent created in the build count too). [`ranked`] takes each epic's
//! ready queue (`orket_core::plan::ready_queue`, the traction loop's own rule) and orders all of
//! them by critical-path score; ties keep the board's order, then the ready queue's.

use crate::error::EngineError;
use orket_core::assets::{AssetTree, Board, BoardEpic, Category};
use orket_core::plan::{critical_path_scores, downstream_counts, ready_queue, PlanCard};
use orket_core::Status;
use orket_store::{IssueRecord, Store};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::UNIX_EPOCH;

/// An epic the loop may work on, with its issues as they stand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EpicWork {
    /// The epic's file stem.
    pub epic: String,
    /// Its department.
    pub department: String,
    /// Its build.
    pub build_id: String,
    /// Its issues.
    pub issues: Vec<WorkIssue>,
}

/// An issue as the loop sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WorkIssue {
    /// The issue id.
    pub id: String,
    /// Its status now.
    pub status: Status,
    /// Its priority.
    pub priority: f64,
    /// The issues it waits for.
    pub depends_on: Vec<String>,
    /// What changes when anything about the issue changes: its stored status and last update,
    /// or, for an issue not in the store yet, its file status and the epic file's time.
    pub fingerprint: String,
}

/// A ready issue and why it ranks where it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    /// The issue id.
    pub issue: String,
    /// Its epic.
    pub epic: String,
    /// The epic's department.
    pub department: String,
    /// The epic's build.
    pub build_id: String,
    /// Its critical-path score: priority plus `downstream`.
    pub score: f64,
    /// How many issues wait on it, directly or not.
    pub downstream: usize,
    /// The issue's fingerprint when it was picked (see `WorkIssue::fingerprint`).
    #[serde(skip)]
    pub(crate) fingerprint: String,
}

/// Every ready issue of `work`, best first: by critical-path score, ties in the order of the
/// epics, then of each epic's ready queue (reviews first, then score, priority, id).
pub(crate) fn ranked(work: &[EpicWork]) -> Vec<Pick> {
    let mut picks = Vec::new();
    for epic in work {
        let cards: Vec<PlanCard<'_>> = epic
            .issues
            .iter()
            .map(|i| PlanCard {
                id: &i.id,
                status: i.status,
                priority: i.priority,
                depends_on: &i.depends_on,
            })
            .collect();
        let queue = ready_queue(&cards, None);
        if queue.is_empty() {
            continue;
        }
        let scores = critical_path_scores(&cards);
        let downstream = downstream_counts(&cards);
        for id in queue {
            let Some(issue) = epic.issues.iter().find(|i| i.id == id) else {
                continue;
            };
            picks.push(Pick {
                score: scores.get(&id).copied().unwrap_or(issue.priority),
                downstream: downstream.get(&id).copied().unwrap_or(0),
                issue: id,
                epic: epic.epic.clone(),
                department: epic.department.clone(),
                build_id: epic.build_id.clone(),
                fingerprint: issue.fingerprint.clone(),
            });
        }
    }
    // A stable sort: equal scores keep the order they were gathered in.
    picks.sort_by(|a, b| b.score.total_cmp(&a.score));
    picks
}

/// The issue of `work` with `id` in build `build_id`.
pub(crate) fn find<'a>(work: &'a [EpicWork], build_id: &str, id: &str) -> Option<&'a WorkIssue> {
    work.iter()
        .filter(|e| e.build_id == build_id)
        .flat_map(|e| e.issues.iter())
        .find(|i| i.id == id)
}

/// The epics in scope — every department's, or `department`'s only — in the board's order,
/// each once, with their issues as they stand. Epics that do not load are left out (`orket
/// check` and the board name their problems).
pub(crate) async fn gather(
    tree: &AssetTree,
    store: &dyn Store,
    department: Option<&str>,
) -> Result<Vec<EpicWork>, EngineError> {
    let board = Board::from_files(tree, None).map_err(|e| EngineError::NotFound(e.to_string()))?;
    let epics = board
        .rocks
        .iter()
        .flat_map(|r| r.epics.iter())
        .chain(board.epics.iter())
        .filter(|e| e.error.is_none())
        .filter(|e| department.is_none_or(|d| e.department == d));
    let mut seen = HashSet::new();
    let mut work = Vec::new();
    for epic in epics {
        if !seen.insert(epic.build_id.clone()) {
            continue;
        }
        let stored = store.list_issues(&epic.build_id).await?;
        work.push(epic_work(tree, epic, stored));
    }
    Ok(work)
}

/// One epic's issues: the file's, with the store's status (and fields) where the build holds
/// them, then the build's issues the file does not list.
fn epic_work(tree: &AssetTree, epic: &BoardEpic, stored: Vec<IssueRecord>) -> EpicWork {
    let file_time = epic_file_time(tree, epic);
    let mut by_id: HashMap<String, IssueRecord> =
        stored.iter().map(|i| (i.id.clone(), i.clone())).collect();
    let mut issues: Vec<WorkIssue> = epic
        .issues
        .iter()
        .map(|i| match by_id.remove(&i.id) {
            Some(record) => stored_issue(&record),
            None => WorkIssue {
                id: i.id.clone(),
                status: i.status,
                priority: i.priority,
                depends_on: i.depends_on.clone(),
                fingerprint: format!("file {} {file_time}", i.status),
            },
        })
        .collect();
    issues.extend(
        stored
            .iter()
            .filter(|i| by_id.contains_key(&i.id))
            .map(stored_issue),
    );
    EpicWork {
        epic: epic.id.clone(),
        department: epic.department.clone(),
        build_id: epic.build_id.clone(),
        issues,
    }
}

fn stored_issue(record: &IssueRecord) -> WorkIssue {
    WorkIssue {
        id: record.id.clone(),
        status: record.status,
        priority: record.priority,
        depends_on: record.depends_on.clone(),
        fingerprint: format!("store {} {}", record.status, record.updated_at),
    }
}

/// When the epic's file last changed, in nanoseconds (0 when unknown).
fn epic_file_time(tree: &AssetTree, epic: &BoardEpic) -> u128 {
    tree.find(Category::Epics, &epic.id, &epic.department)
        .ok()
        .and_then(|path| std::fs::metadata(path).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(id: &str, status: Status, priority: f64, deps: &[&str]) -> WorkIssue {
        WorkIssue {
            id: id.to_string(),
            status,
            priority,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            fingerprint: String::new(),
        }
    }

    fn epic(name: &str, dept: &str, issues: Vec<WorkIssue>) -> EpicWork {
        EpicWork {
            epic: name.to_string(),
            department: dept.to_string(),
            build_id: format!("build-{name}"),
            issues,
        }
    }

    fn order(work: &[EpicWork]) -> Vec<(String, f64)> {
        ranked(work)
            .into_iter()
            .map(|p| (p.issue, p.score))
            .collect()
    }

    #[test]
    fn the_best_score_of_every_epic_wins_and_ties_keep_the_board_order() {
        use Status::*;
        let work = vec![
            epic(
                "hello",
                "core",
                vec![
                    issue("H-1", Ready, 3.0, &[]),
                    issue("H-2", Ready, 2.0, &["H-1"]),
                    issue("H-3", Ready, 1.0, &[]),
                ],
            ),
            epic(
                "ops",
                "ops",
                vec![
                    issue("O-1", Ready, 3.0, &[]),
                    issue("O-2", Ready, 2.0, &["O-1"]),
                    issue("O-3", Ready, 1.0, &["O-1"]),
                ],
            ),
        ];
        // O-1 unblocks two (5.0), H-1 one (4.0); H-3 ties nothing else ready.
        assert_eq!(
            order(&work),
            [
                ("O-1".into(), 5.0),
                ("H-1".into(), 4.0),
                ("H-3".into(), 1.0)
            ]
        );
        let picked = &ranked(&work)[0];
        assert_eq!(
            (
                picked.epic.as_str(),
                picked.department.as_str(),
                picked.downstream
            ),
            ("ops", "ops", 2)
        );
        // With O-1 and H-1 done, the tie at 2.0 goes to the epic gathered first.
        let mut work = work;
        work[0].issues[0].status = Done;
        work[1].issues[0].status = Done;
        assert_eq!(
            order(&work),
            [
                ("H-2".into(), 2.0),
                ("O-2".into(), 2.0),
                ("H-3".into(), 1.0),
                ("O-3".into(), 1.0)
            ]
        );
    }

    #[test]
    fn blocked_waiting_and_finished_issues_are_not_ready() {
        use Status::*;
        let work = vec![epic(
            "e",
            "core",
            vec![
                issue("A", Blocked, 3.0, &[]),
                issue("B", Ready, 2.0, &["A"]),
                issue("C", Done, 2.0, &[]),
                issue("D", Canceled, 2.0, &[]),
                issue("E", CodeReview, 1.0, &[]),
                issue("F", InProgress, 1.0, &[]),
            ],
        )];
        assert_eq!(order(&work), [("E".into(), 1.0), ("F".into(), 1.0)]);
        assert!(ranked(&[epic("empty", "core", Vec::new())]).is_empty());
    }
}
