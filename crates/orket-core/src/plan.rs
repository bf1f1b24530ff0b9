//! Critical-path scores and the ready queue the traction loop plans each tick from.

use crate::status::Status;
use std::collections::HashMap;

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
/// cycles tolerated). Strongly connected components are collapsed (Tarjan) and reachability is
/// propagated as bitsets in reverse topological order: O(edges × issues / 64), so planning a
/// long chain every tick stays cheap.
pub fn downstream_counts(cards: &[PlanCard<'_>]) -> HashMap<String, usize> {
    cards
        .iter()
        .zip(downstream_by_position(cards))
        .map(|(card, count)| (card.id.to_string(), count))
        .collect()
}

/// [`downstream_counts`] by the cards' positions.
fn downstream_by_position(cards: &[PlanCard<'_>]) -> Vec<usize> {
    let n = cards.len();
    let index: HashMap<&str, usize> = cards.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    // edges[x] = issues that name x in depends_on (x's dependents)
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, card) in cards.iter().enumerate() {
        for dep in card.depends_on {
            if let Some(&d) = index.get(dep.as_str()) {
                edges[d].push(i);
            }
        }
    }
    let (component, components) = strongly_connected(&edges);
    let words = n.div_ceil(64);
    let mut members: Vec<Vec<u64>> = vec![vec![0; words]; components];
    let mut cyclic = vec![false; components];
    let mut nodes_of: Vec<Vec<usize>> = vec![Vec::new(); components];
    for (x, &c) in component.iter().enumerate() {
        members[c][x / 64] |= 1 << (x % 64);
        nodes_of[c].push(x);
        if edges[x].contains(&x) {
            cyclic[c] = true;
        }
    }
    // Tarjan numbers components in reverse topological order: every edge goes from a higher
    // component number to a lower or equal one, so lower components are complete first.
    let mut reach: Vec<Vec<u64>> = vec![vec![0; words]; components];
    for c in 0..components {
        let mut acc = vec![0u64; words];
        if nodes_of[c].len() > 1 || cyclic[c] {
            acc.clone_from(&members[c]);
        }
        for &x in &nodes_of[c] {
            for &y in &edges[x] {
                let t = component[y];
                if t != c {
                    for w in 0..words {
                        acc[w] |= members[t][w] | reach[t][w];
                    }
                }
            }
        }
        reach[c] = acc;
    }
    (0..n)
        .map(|x| {
            let set = &reach[component[x]];
            let count: usize = set.iter().map(|w| w.count_ones() as usize).sum();
            count - usize::from(set[x / 64] & (1 << (x % 64)) != 0)
        })
        .collect()
}

/// Tarjan's strongly connected components, iterative: the component of every node and how
/// many there are, numbered in reverse topological order.
fn strongly_connected(edges: &[Vec<usize>]) -> (Vec<usize>, usize) {
    let n = edges.len();
    const UNSEEN: usize = usize::MAX;
    let mut order = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut component = vec![UNSEEN; n];
    let mut components = 0;
    let mut counter = 0;
    for root in 0..n {
        if order[root] != UNSEEN {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        order[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (x, ref mut next)) = work.last_mut() {
            if let Some(&y) = edges[x].get(*next) {
                *next += 1;
                if order[y] == UNSEEN {
                    order[y] = counter;
                    low[y] = counter;
                    counter += 1;
                    stack.push(y);
                    on_stack[y] = true;
                    work.push((y, 0));
                } else if on_stack[y] {
                    low[x] = low[x].min(order[y]);
                }
            } else {
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[x]);
                }
                if low[x] == order[x] {
                    while let Some(y) = stack.pop() {
                        on_stack[y] = false;
                        component[y] = components;
                        if y == x {
                            break;
                        }
                    }
                    components += 1;
                }
            }
        }
    }
    (component, components)
}

/// Critical-path score of every issue: its priority plus its transitive downstream count.
pub fn critical_path_scores(cards: &[PlanCard<'_>]) -> HashMap<String, f64> {
    cards
        .iter()
        .zip(scores_by_position(cards))
        .map(|(card, score)| (card.id.to_string(), score))
        .collect()
}

/// [`critical_path_scores`] by the cards' positions.
fn scores_by_position(cards: &[PlanCard<'_>]) -> Vec<f64> {
    cards
        .iter()
        .zip(downstream_by_position(cards))
        .map(|(card, downstream)| card.priority + downstream as f64)
        .collect()
}

/// The issues to work on next, in order: every `code_review` issue, then every `ready` or
/// `in_progress` issue (work continues on an issue a turn left in progress) whose dependencies
/// are all `done`; each group by critical-path score (highest first), then priority, then id.
/// With a target, only the target (when it is a candidate). Scores are computed only when
/// there are candidates to order: a chain's ticks have one, and stay linear in its length.
pub fn ready_queue(cards: &[PlanCard<'_>], target: Option<&str>) -> Vec<String> {
    let status: HashMap<&str, Status> = cards.iter().map(|c| (c.id, c.status)).collect();
    let deps_done = |c: &PlanCard<'_>| {
        c.depends_on
            .iter()
            .all(|d| status.get(d.as_str()) == Some(&Status::Done))
    };
    let mut reviews: Vec<usize> = Vec::new();
    let mut ready: Vec<usize> = Vec::new();
    for (at, card) in cards.iter().enumerate() {
        if target.is_some_and(|t| t != card.id) {
            continue;
        }
        match card.status {
            Status::CodeReview => reviews.push(at),
            Status::Ready | Status::InProgress if deps_done(card) => ready.push(at),
            _ => {}
        }
    }
    if reviews.len() > 1 || ready.len() > 1 {
        let scores = scores_by_position(cards);
        let order = |&a: &usize, &b: &usize| {
            scores[b]
                .total_cmp(&scores[a])
                .then(cards[b].priority.total_cmp(&cards[a].priority))
                .then(cards[a].id.cmp(cards[b].id))
        };
        reviews.sort_by(order);
        ready.sort_by(order);
    }
    reviews
        .into_iter()
        .chain(ready)
        .map(|at| cards[at].id.to_string())
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

    /// The definition, node by node: a search from every issue over its dependents.
    fn naive_downstream(cards: &[PlanCard<'_>]) -> HashMap<String, usize> {
        use std::collections::HashSet;
        let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
        for card in cards {
            for dep in card.depends_on {
                dependents.entry(dep.as_str()).or_default().push(card.id);
            }
        }
        cards
            .iter()
            .map(|card| {
                let mut seen: HashSet<&str> = HashSet::new();
                let mut stack = vec![card.id];
                while let Some(id) = stack.pop() {
                    for &next in dependents.get(id).map(Vec::as_slice).unwrap_or(&[]) {
                        if next != card.id && seen.insert(next) {
                            stack.push(next);
                        }
                    }
                }
                (card.id.to_string(), seen.len())
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn downstream_counts_match_the_definition(edges in proptest::collection::vec((0usize..70, 0usize..70), 0..200)) {
            let ids: Vec<String> = (0..70).map(|i| format!("I{i}")).collect();
            let mut deps: Vec<Vec<String>> = vec![Vec::new(); 70];
            for (a, b) in edges {
                deps[a].push(ids[b].clone());
            }
            deps[3].push("UNKNOWN".to_string());
            let cards: Vec<PlanCard<'_>> = (0..70)
                .map(|i| PlanCard { id: &ids[i], status: Status::Ready, priority: 2.0, depends_on: &deps[i] })
                .collect();
            proptest::prop_assert_eq!(downstream_counts(&cards), naive_downstream(&cards));
        }
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
