//! The JSON schema of the driver model's reply: `oneOf` one object per action, known names
//! limited to the tree's.

use crate::facts::Facts;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn string_enum(names: Vec<String>) -> Value {
    if names.is_empty() {
        json!({"type": "string"})
    } else {
        json!({"type": "string", "enum": names})
    }
}

/// The schema of the driver model's reply: `oneOf` one object per action, `{"action":
/// "<name>", "args": {...}}` (`{"action": "reply", "message": "..."}` for a reply). Teams,
/// environments, seats, epics and issue ids are limited to those of the tree (when there are
/// any), so constrained decoding cannot invent them; new names are free text, checked when the
/// action is applied.
pub fn driver_schema(facts: &Facts) -> Value {
    let teams = string_enum(facts.teams.iter().map(|(n, _)| n.clone()).collect());
    let environments = string_enum(facts.environments.clone());
    let seats: BTreeSet<String> = facts
        .teams
        .iter()
        .flat_map(|(_, t)| t.seats.iter().map(|s| s.key.clone()))
        .collect();
    let seats = string_enum(seats.into_iter().collect());
    let epics = string_enum(facts.epics.iter().map(|e| e.stem.clone()).collect());
    let issue_ids: BTreeSet<String> = facts
        .epics
        .iter()
        .flat_map(|e| e.issues.iter().map(|i| i.card.id.clone()))
        .collect();
    let issue_ids = string_enum(issue_ids.into_iter().collect());
    let departments = string_enum(facts.departments.clone());
    let text = json!({"type": "string"});
    let priority = json!({"type": "string", "enum": ["High", "Medium", "Low"]});
    let object = |properties: Value, required: &[&str]| json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false});
    let new_issue = object(
        json!({"summary": text, "seat": seats, "priority": priority, "description": text}),
        &["summary", "seat"],
    );
    let action = |name: &str, args: Value| {
        object(
            json!({"action": {"const": name}, "args": args}),
            &["action", "args"],
        )
    };
    let variants = vec![
        action(
            "create_epic",
            object(
                json!({"name": text, "team": teams, "environment": environments,
                       "department": departments, "description": text,
                       "issues": {"type": "array", "items": new_issue}}),
                &["name", "team"],
            ),
        ),
        action(
            "create_issue",
            object(
                json!({"epic": epics, "summary": text, "seat": seats, "priority": priority,
                       "depends_on": {"type": "array", "items": issue_ids}, "description": text}),
                &["epic", "summary", "seat"],
            ),
        ),
        action(
            "create_rock",
            object(
                json!({"name": text, "epics": {"type": "array", "items": epics, "minItems": 1},
                       "department": departments, "description": text}),
                &["name", "epics"],
            ),
        ),
        action(
            "assign_team",
            object(json!({"epic": epics, "team": teams}), &["epic", "team"]),
        ),
        action(
            "turn_directive",
            object(
                json!({"issue": issue_ids, "directive": text}),
                &["issue", "directive"],
            ),
        ),
        action(
            "adopt_issue",
            object(
                json!({"issue": issue_ids, "from_epic": epics, "to_epic": epics}),
                &["issue", "to_epic"],
            ),
        ),
        object(
            json!({"action": {"const": "reply"}, "message": text}),
            &["action", "message"],
        ),
    ];
    json!({"oneOf": variants})
}
