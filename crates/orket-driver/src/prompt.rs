//! The driver's system prompt: who the model is, the organization as [`Facts`], one example
//! of every action of [`ACTIONS`] and the rules.

use crate::action::{ActionSpec, Layout, ACTIONS};
use crate::facts::Facts;
use crate::names::list_or_none;
use orket_core::assets::{Epic, Organization};

/// The rules closing the prompt.
const RULES: [&str; 4] = [
    "- Names of new epics and rocks are lower-case words joined by _.",
    "- Use only the teams, seats, environments, epics and issue ids listed above.",
    "- Optional args may be left out.",
    "- When the person asks a question or nothing should change, use reply.",
];

/// The system prompt of the organization `org` with the tree's `facts`.
pub(crate) fn system_prompt(org: &Organization, facts: &Facts) -> String {
    let mut lines = vec![
        format!("You are the operations lead of {}. {}", org.name, org.vision.trim()),
        "A person tells you what work the organization needs. Answer with exactly one JSON object: one action that edits the plan, or a reply.".to_string(),
        String::new(),
        "ORGANIZATION".to_string(),
    ];
    lines.extend(organization(facts));
    lines.push(String::new());
    lines.push("ACTIONS (answer with one of these JSON objects)".to_string());
    lines.extend(ACTIONS.iter().map(example));
    lines.push(String::new());
    lines.push("RULES".to_string());
    lines.extend(RULES.iter().map(|rule| rule.to_string()));
    lines.join("\n") + "\n"
}

/// The ORGANIZATION section: departments, teams with their seats, environments, epics with
/// their issues, rocks.
fn organization(facts: &Facts) -> Vec<String> {
    let mut lines = vec![
        format!("Departments: {}", facts.departments.join(", ")),
        "Teams:".to_string(),
    ];
    for (name, team) in &facts.teams {
        let seats: Vec<String> = team
            .seats
            .iter()
            .map(|s| format!("{} ({})", s.key, s.roles.join(", ")))
            .collect();
        lines.push(format!("- {name}: seats {}", seats.join("; ")));
    }
    lines.push(format!(
        "Environments: {}",
        list_or_none(&facts.environments)
    ));
    lines.push("Epics:".to_string());
    if facts.epics.is_empty() {
        lines.push("- none".to_string());
    }
    lines.extend(facts.epics.iter().flat_map(epic));
    lines.push("Rocks:".to_string());
    if facts.rocks.is_empty() {
        lines.push("- none".to_string());
    }
    for rock in &facts.rocks {
        let epics: Vec<&str> = rock.epics.iter().map(|e| e.epic.as_str()).collect();
        lines.push(format!("- {}: epics {}", rock.stem, epics.join(", ")));
    }
    lines
}

/// An epic's line and a line per issue.
fn epic(epic: &Epic) -> Vec<String> {
    let mut lines = vec![format!(
        "- {} (department {}, team {}, environment {}): {}",
        epic.stem, epic.department, epic.team, epic.environment, epic.card.name
    )];
    for issue in &epic.issues {
        let deps = if issue.depends_on.is_empty() {
            String::new()
        } else {
            format!(" (after {})", issue.depends_on.join(", "))
        };
        lines.push(format!(
            "  - {} [seat {}, {}] {}{deps}",
            issue.card.id, issue.seat, issue.card.status, issue.card.name
        ));
    }
    lines
}

/// The example of an action: its name and every field that has an example, in order.
fn example(spec: &ActionSpec) -> String {
    let fields: Vec<String> = spec
        .fields
        .iter()
        .filter_map(|f| {
            f.example
                .map(|example| format!("\"{}\": {example}", f.name))
        })
        .collect();
    let fields = fields.join(", ");
    match spec.layout {
        Layout::Args => format!(r#"{{"action": "{}", "args": {{{fields}}}}}"#, spec.name),
        Layout::Inline => format!(r#"{{"action": "{}", {fields}}}"#, spec.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_action;

    #[test]
    fn every_example_is_an_action_the_parser_reads() {
        for spec in &ACTIONS {
            let line = example(spec);
            let action = parse_action(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(action.kind(), spec.kind, "{line}");
        }
    }
}
