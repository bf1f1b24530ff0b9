//! Critical-path scores and the ready queue the traction loop plans each tick from.

use crate::status::Status;
use std::collections::{HashMap, HashSet};

/// What planning needs to know of an issue.
#[derive(Debug, Clone, Copy)]
pub struct PlanCard<'a> {
    /// The issue id.
    pub id: &'a str,
    /// Its current status.
    pub status: Status,
    /// Its priority (High 3, Medium 2, Low 1).
    pub priority: f64,
    /// The ids it depends on.
    pub depends_on: &'a [String],
}

/// For every issue, how many issues depend on it directly or transitively (each counted once,
/// cycles tolerated).
pub fn downstream_counts(cards: &[PlanCard<'_>]) -> HashMap<String, usize> {
    // dependents[x] = issues that name x in depends_on
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for card in cards {
        for dep in card.depends_on {
            dependents.entry(dep.as_str()).or_default().push(card.id);
        }
    }
    let mut counts = HashMap::with_capacity(cards.len());
    for card in cards {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack: Vec<&str> = vec![card.id];
        while let Some(id) = stack.pop() {
            for &next in dependents.get(id).map(Vec::as_slice).unwrap_or(&[]) {
                if next != card.id && seen.insert(next) {
                    stack.push(next);
                }
            }
        }
        counts.insert(card.id.to_string(), seen.len());
    }
    counts
}

/// Critical-path score of every issue: its priority plus its transitive downstream count.
pub fn critical_path_scores(cards: &[PlanCard<'_>]) -> HashMap<String, f64> {
    let downstream = downstream_counts(cards);
    cards
        .iter()
        .map(|c| (c.id.to_string(), c.priority + downstream[c.id] as f64))
        .collect()
}

/// The issues to work on next, in order: every `code_review` issue, then every `ready` or
/// `in_progress` issue (work continues on an issue a turn left in progress) whose dependencies
/// are all `done`; each group by critical-path score (highest first), then priority, then id.
/// With a target, only the target (when it is a candidate).
pub fn ready_queue(cards: &[PlanCard<'_>], target: Option<&str>) -> Vec<String> {
    let status: HashMap<&str, Status> = cards.iter().map(|c| (c.id, c.status)).collect();
    let scores = critical_path_scores(cards);
    let deps_done = |c: &PlanCard<'_>| {
        c.depends_on
            .iter()
            .all(|d| status.get(d.as_str()) == Some(&Status::Done))
    };
    let mut reviews: Vec<&PlanCard<'_>> = Vec::new();
    let mut ready: Vec<&PlanCard<'_>> = Vec::new();
    for card in cards {
        if target.is_some_and(|t| t != card.id) {
            continue;
        }
        match card.status {
            Status::CodeReview => reviews.push(card),
            Status::Ready | Status::InProgress if deps_done(card) => ready.push(card),
            _ => {}
        }
    }
    let order = |a: &&PlanCard<'_>, b: &&PlanCard<'_>| {
        scores[b.id]
            .total_cmp(&scores[a.id])
            .then(b.priority.total_cmp(&a.priority))
            .then(a.id.cmp(b.id))
    };
    reviews.sort_by(order);
    ready.sort_by(order);
    reviews
        .into_iter()
        .chain(ready)
        .map(|c| c.id.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn low_issue_blocking_three_outranks_unblocked_high() {
        let none = deps(&[]);
        let on_low = deps(&["LOW"]);
        let cards = [
            PlanCard {
                id: "HIGH",
                status: Status::Ready,
                priority: 3.0,
                depends_on: &none,
            },
            PlanCard {
                id: "LOW",
                status: Status::Ready,
                priority: 1.0,
                depends_on: &none,
            },
            PlanCard {
                id: "A",
                status: Status::Ready,
                priority: 2.0,
                depends_on: &on_low,
            },
            PlanCard {
                id: "B",
                status: Status::Ready,
                priority: 2.0,
                depends_on: &on_low,
            },
            PlanCard {
                id: "C",
                status: Status::Ready,
                priority: 2.0,
                depends_on: &on_low,
            },
        ];
        let scores = critical_path_scores(&cards);
        assert_eq!(scores["LOW"], 4.0);
        assert_eq!(scores["HIGH"], 3.0);
        assert_eq!(ready_queue(&cards, None), vec!["LOW", "HIGH"]);
    }

    #[test]
    fn downstream_is_transitive_and_counted_once() {
        let none = deps(&[]);
        let on_a = deps(&["A"]);
        let on_b = deps(&["B"]);
        let on_a_b = deps(&["A", "B"]);
        let cards = [
            PlanCard {
                id: "A",
                status: Status::Ready,
                priority: 2.0,
                depends_on: &none,
            },
            PlanCard {
                id: "B",
                status: Status::Ready,
                priority: 2.0,
                depends_on: &on_a,
            },
            PlanCard {
                id: "C",
                status: Status::Ready,
                priority: 2.0,
                depends_on: &on_b,
            },
            PlanCard {
                id: "D",
                status: Status::Ready,
                priority: 2.0,
                depends_on: &on_a_b,
            },
        ];
        let counts = downstream_counts(&cards);
        assert_eq!(counts["A"], 3);
        assert_eq!(counts["B"], 2);
        assert_eq!(counts["C"], 0);
        assert_eq!(counts["D"], 0);
    }

    #[test]
    fn cycles_do_not_loop_forever() {
        let on_b = deps(&["B"]);
        let on_a = deps(&["A"]);
        let cards = [
            PlanCard {
                id: "A",
                status: Status::Ready,
                priority: 1.0,
                depends_on: &on_b,
            },
            PlanCard {
                id: "B",
                status: Status::Ready,
                priority: 1.0,
                depends_on: &on_a,
            },
        ];
        let counts = downstream_counts(&cards);
        assert_eq!(counts["A"], 1);
        assert_eq!(counts["B"], 1);
        assert!(ready_queue(&cards, None).is_empty());
    }

    #[test]
    fn reviews_first_then_ready_with_done_dependencies() {
        let none = deps(&[]);
        let on_done = deps(&["D1"]);
        let on_open = deps(&["R1"]);
        let on_missing = deps(&["NOPE"]);
        let cards = [
            PlanCard {
                id: "D1",
                status: Status::Done,
                priority: 3.0,
                depends_on: &none,
            },
            PlanCard {
                id: "R1",
                status: Status::Ready,
                priority: 1.0,
                depends_on: &on_done,
            },
            PlanCard {
                id: "R2",
                status: Status::Ready,
                priority: 3.0,
                depends_on: &on_open,
            },
            PlanCard {
                id: "R3",
                status: Status::Ready,
                priority: 3.0,
                depends_on: &on_missing,
            },
            PlanCard {
                id: "CR",
                status: Status::CodeReview,
                priority: 1.0,
                depends_on: &none,
            },
            PlanCard {
                id: "IP",
                status: Status::InProgress,
                priority: 3.0,
                depends_on: &none,
            },
            PlanCard {
                id: "BL",
                status: Status::Blocked,
                priority: 3.0,
                depends_on: &none,
            },
        ];
        assert_eq!(ready_queue(&cards, None), vec!["CR", "IP", "R1"]);
        assert_eq!(ready_queue(&cards, Some("R1")), vec!["R1"]);
        assert!(ready_queue(&cards, Some("R2")).is_empty());
    }

    #[test]
    fn ties_break_by_priority_then_id() {
        let none = deps(&[]);
        let cards = [
            PlanCard {
                id: "b",
                status: Status::Ready,
                priority: 2.0,
                depends_on: &none,
            },
            PlanCard {
                id: "a",
                status: Status::Ready,
                priority: 2.0,
                depends_on: &none,
            },
            PlanCard {
                id: "c",
                status: Status::Ready,
                priority: 2.5,
                depends_on: &none,
            },
        ];
        assert_eq!(ready_queue(&cards, None), vec!["c", "a", "b"]);
    }
}
