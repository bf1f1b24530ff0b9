//! A new issue as written into an epic file: its JSON after checking summary, seat and
//! priority, and a fresh id in the epic's style.

use crate::action::NewIssue;
use crate::names::seat_list;
use crate::outcome::{refuse, Fail};
use orket_core::assets::Team;
use orket_core::priority::parse_priority;
use orket_core::tools::MIN_SUMMARY_CHARS;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// The JSON object of a new issue with id `id` for `team`, after checking its summary, seat
/// and priority. `field` is where the issue is in the action (`issues[1]`; empty: the
/// action's own fields).
pub(super) fn issue_object(
    id: &str,
    issue: &NewIssue,
    team: &Team,
    depends_on: &[String],
    field: &str,
) -> Result<Value, Fail> {
    let at = |name: &str| {
        if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        }
    };
    let summary = issue.summary.trim();
    if summary.chars().count() < MIN_SUMMARY_CHARS {
        return refuse(format!(
            "{}: \"{summary}\" is too short (at least {MIN_SUMMARY_CHARS} characters)",
            at("summary")
        ));
    }
    let Some(seat) = team.seat(&issue.seat) else {
        return refuse(format!(
            "{}: \"{}\" is not a seat of team \"{}\" (seats: {})",
            at("seat"),
            issue.seat,
            team.name,
            seat_list(team)
        ));
    };
    let mut object = Map::new();
    object.insert("id".into(), json!(id));
    object.insert("summary".into(), json!(summary));
    object.insert("seat".into(), json!(seat.key));
    if let Some(priority) = &issue.priority {
        parse_priority(Some(priority))
            .map_err(|e| Fail::Refused(format!("{}: {e}", at("priority"))))?;
        object.insert("priority".into(), priority.clone());
    }
    if !depends_on.is_empty() {
        object.insert("depends_on".into(), json!(depends_on));
    }
    if let Some(d) = issue
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        object.insert("description".into(), json!(d));
    }
    Ok(Value::Object(object))
}

/// A fresh issue id in the project's style: when the epic's ids are `PREFIX-<n>` with one
/// prefix (other than `ISSUE`), the next number (`DEMO-4`); otherwise `ISSUE-XXXX` (as agents'
/// issues). Never an id of `taken` or of the epic.
pub(super) fn next_issue_id(epic_ids: &[String], taken: &BTreeSet<String>) -> String {
    let numbered: Vec<(&str, u64)> = epic_ids
        .iter()
        .filter_map(|id| {
            let (prefix, n) = id.rsplit_once('-')?;
            let n = n.parse::<u64>().ok()?;
            let ok = !prefix.is_empty()
                && prefix != "ISSUE"
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            ok.then_some((prefix, n))
        })
        .collect();
    let prefixes: BTreeSet<&str> = numbered.iter().map(|(p, _)| *p).collect();
    if prefixes.len() == 1 {
        if let Some(prefix) = prefixes.first() {
            let mut n = numbered.iter().map(|(_, n)| *n).max().unwrap_or(0) + 1;
            loop {
                let id = format!("{prefix}-{n}");
                if !taken.contains(&id) && !epic_ids.contains(&id) {
                    return id;
                }
                n += 1;
            }
        }
    }
    loop {
        let id = orket_core::ids::new_issue_id();
        if !taken.contains(&id) && !epic_ids.contains(&id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_epic_style() {
        let taken = BTreeSet::from(["DEMO-4".to_string()]);
        let ids = vec!["DEMO-1".to_string(), "DEMO-3".to_string()];
        assert_eq!(next_issue_id(&ids, &taken), "DEMO-5");
        let fresh = next_issue_id(&[], &BTreeSet::new());
        assert!(fresh.starts_with("ISSUE-") && fresh.len() == 10, "{fresh}");
        let mixed = vec!["A-1".to_string(), "B-2".to_string()];
        assert!(next_issue_id(&mixed, &BTreeSet::new()).starts_with("ISSUE-"));
    }
}
