//! The driver's system prompt: who the model is, the organization as [`Facts`], an example of
//! every action and the rules.

use crate::facts::Facts;
use crate::names::list_or_none;
use orket_core::assets::Organization;
use std::fmt::Write as _;

/// The system prompt of the organization `org` with the tree's `facts`.
pub(crate) fn system_prompt(org: &Organization, facts: &Facts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "You are the operations lead of {}. {}",
        org.name,
        org.vision.trim()
    );
    let _ = writeln!(
        out,
        "A person tells you what work the organization needs. Answer with exactly one JSON object: one action that edits the plan, or a reply."
    );
    let _ = writeln!(out, "\nORGANIZATION");
    let _ = writeln!(out, "Departments: {}", facts.departments.join(", "));
    let _ = writeln!(out, "Teams:");
    for (name, team) in &facts.teams {
        let seats: Vec<String> = team
            .seats
            .iter()
            .map(|s| format!("{} ({})", s.key, s.roles.join(", ")))
            .collect();
        let _ = writeln!(out, "- {name}: seats {}", seats.join("; "));
    }
    let _ = writeln!(out, "Environments: {}", list_or_none(&facts.environments));
    let _ = writeln!(out, "Epics:");
    if facts.epics.is_empty() {
        let _ = writeln!(out, "- none");
    }
    for epic in &facts.epics {
        let _ = writeln!(
            out,
            "- {} (department {}, team {}, environment {}): {}",
            epic.stem, epic.department, epic.team, epic.environment, epic.card.name
        );
        for issue in &epic.issues {
            let deps = if issue.depends_on.is_empty() {
                String::new()
            } else {
                format!(" (after {})", issue.depends_on.join(", "))
            };
            let _ = writeln!(
                out,
                "  - {} [seat {}, {}] {}{deps}",
                issue.card.id, issue.seat, issue.card.status, issue.card.name
            );
        }
    }
    let _ = writeln!(out, "Rocks:");
    if facts.rocks.is_empty() {
        let _ = writeln!(out, "- none");
    }
    for rock in &facts.rocks {
        let epics: Vec<&str> = rock.epics.iter().map(|e| e.epic.as_str()).collect();
        let _ = writeln!(out, "- {}: epics {}", rock.stem, epics.join(", "));
    }
    let _ = writeln!(out, "\nACTIONS (answer with one of these JSON objects)");
    for line in [
        r#"{"action": "create_epic", "args": {"name": "docs_site", "team": "<team>", "environment": "<environment>", "description": "...", "issues": [{"summary": "...", "seat": "<seat>", "priority": "High"}]}}"#,
        r#"{"action": "create_issue", "args": {"epic": "<epic>", "summary": "...", "seat": "<seat of the epic's team>", "priority": "Medium", "depends_on": ["<issue id of that epic>"], "description": "..."}}"#,
        r#"{"action": "create_rock", "args": {"name": "q3_launch", "epics": ["<epic>"], "description": "..."}}"#,
        r#"{"action": "assign_team", "args": {"epic": "<epic>", "team": "<team>"}}"#,
        r#"{"action": "turn_directive", "args": {"issue": "<issue id>", "directive": "what the next turn must do"}}"#,
        r#"{"action": "adopt_issue", "args": {"issue": "<issue id>", "to_epic": "<epic>"}}"#,
        r#"{"action": "reply", "message": "your answer"}"#,
    ] {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "\nRULES\n- Names of new epics and rocks are lower-case words joined by _.\n- Use only the teams, seats, environments, epics and issue ids listed above.\n- Optional args may be left out.\n- When the person asks a question or nothing should change, use reply."
    );
    out
}
