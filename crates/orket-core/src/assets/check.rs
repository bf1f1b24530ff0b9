//! `orket check`: validates a whole asset tree and lists every problem, not just the first.

use super::diag::{at, idx, Diagnostic};
use super::parse;
use super::tree::{file_stem, is_plain_name, json_files, AssetError, AssetTree, Category};
use super::types::*;
use serde::Serialize;
use std::path::PathBuf;

/// What `orket check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Every problem, grouped by file.
    pub diagnostics: Vec<Diagnostic>,
    /// How many asset files were read.
    pub files_checked: usize,
}

impl CheckReport {
    /// The number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// The number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// True when there is no error.
    pub fn is_ok(&self) -> bool {
        self.error_count() == 0
    }
}

/// An asset file in the scope of a check: its path and the department it is read for.
pub(crate) struct ScopedFile {
    pub path: PathBuf,
    pub dept: String,
}

/// The asset files of `category` that a check or a board of `department` covers: `config/`,
/// then `model/<dept>/` for every department in scope.
pub(crate) fn scoped_files(
    tree: &AssetTree,
    category: Category,
    depts: &[String],
    config_dept: &str,
) -> Vec<ScopedFile> {
    let mut out: Vec<ScopedFile> = json_files(&tree.root().join("config").join(category.dir()))
        .into_iter()
        .map(|path| ScopedFile {
            path,
            dept: config_dept.to_string(),
        })
        .collect();
    for dept in depts {
        for path in json_files(&tree.root().join("model").join(dept).join(category.dir())) {
            out.push(ScopedFile {
                path,
                dept: dept.clone(),
            });
        }
    }
    out
}

fn looked_in(err: &AssetError) -> String {
    match err {
        AssetError::NotFound { searched, .. } => format!("looked in {}", searched.join(", ")),
        other => other.to_string(),
    }
}

/// Validates the tree under `tree` for one department (plus `core` and `config/`) or, without
/// one, for every department under `model/`.
pub fn check_tree(tree: &AssetTree, department: Option<&str>) -> CheckReport {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let (org, org_diags) = tree.organization_with_diagnostics();
    diags.extend(org_diags);
    if org.sources.is_empty() {
        diags.push(Diagnostic::warning(
            "config/organization.json",
            "",
            "no organization file (config/organization.json, model/organization.json, or \
             config/org_info.json with config/architecture.json); defaults apply",
        ));
    }

    let depts: Vec<String> = match department {
        Some(d) if !is_plain_name(d) => {
            diags.push(Diagnostic::error(
                format!("model/{d}"),
                "",
                format!("invalid department name \"{d}\""),
            ));
            vec!["core".to_string()]
        }
        Some(d) if d != "core" && !tree.root().join("model").join(d).is_dir() => {
            diags.push(Diagnostic::error(
                format!("model/{d}"),
                "",
                format!("department \"{d}\" not found: model/{d}/ does not exist"),
            ));
            vec!["core".to_string()]
        }
        Some("core") => vec!["core".to_string()],
        Some(d) => vec!["core".to_string(), d.to_string()],
        None => tree.departments(),
    };
    if let Some(source) = org.sources.first() {
        for dept in &depts {
            if !org.departments.contains(dept) && tree.root().join("model").join(dept).is_dir() {
                diags.push(Diagnostic::warning(
                    source,
                    "departments",
                    format!("department \"{dept}\" has a folder (model/{dept}/) but is not listed"),
                ));
            }
        }
    }
    let config_dept = department.filter(|d| is_plain_name(d)).unwrap_or("core");
    let mut files_checked = 0;

    for category in Category::ALL {
        for file in scoped_files(tree, category, &depts, config_dept) {
            files_checked += 1;
            let name = file_stem(&file.path);
            let dept = file.dept.as_str();
            let found = match category {
                Category::Teams => {
                    let (team, mut d) =
                        tree.parse_file_partial(&file.path, |ctx, v| parse::team(ctx, v, &name));
                    if let Some(team) = &team {
                        check_team_roles(tree, team, dept, &mut d);
                    }
                    d
                }
                Category::Roles => {
                    tree.parse_file_partial(&file.path, |ctx, v| parse::role(ctx, v, "", &name))
                        .1
                }
                Category::Dialects => {
                    let (dialect, mut d) = tree.parse_file_partial(&file.path, parse::dialect);
                    if let Some(dialect) = dialect.filter(|x| x.model_family != name) {
                        d.push(Diagnostic::warning(
                            &dialect.file,
                            "model_family",
                            format!(
                                "\"{}\" differs from the file name; the dialect is looked up as \"{name}\"",
                                dialect.model_family
                            ),
                        ));
                    }
                    d
                }
                Category::Environments => {
                    tree.parse_file_partial(&file.path, |ctx, v| parse::environment(ctx, v, &name))
                        .1
                }
                Category::Models => {
                    tree.parse_file_partial(&file.path, |ctx, v| {
                        parse::model_profile(ctx, v, &name)
                    })
                    .1
                }
                Category::Epics => {
                    let (epic, mut d) = tree
                        .parse_file_partial(&file.path, |ctx, v| parse::epic(ctx, v, &name, dept));
                    if let Some(epic) = &epic {
                        check_epic_refs(tree, epic, org.idesign_threshold, &mut d);
                    }
                    d
                }
                Category::Rocks => {
                    let (rock, mut d) = tree
                        .parse_file_partial(&file.path, |ctx, v| parse::rock(ctx, v, &name, dept));
                    if let Some(rock) = &rock {
                        check_rock_refs(tree, rock, &mut d);
                    }
                    d
                }
            };
            diags.extend(found);
        }
    }

    for dept in &depts {
        for family in MODEL_FAMILIES {
            if let Err(e) = tree.find(Category::Dialects, family, dept) {
                let d = Diagnostic::error(
                    format!("model/core/dialects/{family}.json"),
                    "",
                    format!(
                        "no dialect for model family \"{family}\" ({})",
                        looked_in(&e)
                    ),
                );
                if !diags.contains(&d) {
                    diags.push(d);
                }
            }
        }
    }

    diags.sort_by(|a, b| a.file.cmp(&b.file));
    CheckReport {
        diagnostics: diags,
        files_checked,
    }
}

/// Every epic a rock lists must exist in its department.
fn check_rock_refs(tree: &AssetTree, rock: &Rock, out: &mut Vec<Diagnostic>) {
    for (i, entry) in rock.epics.iter().enumerate() {
        if let Err(e) = tree.find(Category::Epics, &entry.epic, &entry.department) {
            out.push(Diagnostic::error(
                &rock.file,
                at(&idx("epics", i), "epic"),
                format!(
                    "epic \"{}\" not found in department \"{}\" ({})",
                    entry.epic,
                    entry.department,
                    looked_in(&e)
                ),
            ));
        }
    }
}

/// Every role a seat holds must have a file or an inline definition in the team.
fn check_team_roles(tree: &AssetTree, team: &Team, dept: &str, out: &mut Vec<Diagnostic>) {
    for seat in &team.seats {
        for (i, role) in seat.roles.iter().enumerate() {
            if team.inline_role(role).is_some() {
                continue;
            }
            if let Err(e) = tree.find(Category::Roles, role, dept) {
                out.push(Diagnostic::error(
                    &team.file,
                    idx(&at(&at("seats", &seat.key), "roles"), i),
                    format!(
                        "role \"{role}\" has no file ({}) and is not defined in the team's \"roles\"",
                        looked_in(&e)
                    ),
                ));
            }
        }
    }
    if team.first_seat_with_role(crate::INTEGRITY_GUARD).is_none() {
        out.push(Diagnostic::warning(
            &team.file,
            "seats",
            "no seat holds the integrity_guard role: review turns cannot be routed, so no issue of \
             this team can reach done",
        ));
    }
}

/// The epic's team, environment, seats, references and the complexity threshold.
fn check_epic_refs(
    tree: &AssetTree,
    epic: &Epic,
    idesign_threshold: usize,
    out: &mut Vec<Diagnostic>,
) {
    let dept = epic.department.as_str();
    if !epic.team.is_empty() {
        match tree.load_team(&epic.team, dept) {
            Ok(team) => {
                for (i, issue) in epic.issues.iter().enumerate() {
                    if !issue.seat.is_empty() && team.seat(&issue.seat).is_none() {
                        let seats: Vec<&str> = team.seats.iter().map(|s| s.key.as_str()).collect();
                        out.push(Diagnostic::error(
                            &epic.file,
                            at(&idx(&epic.issues_key, i), "seat"),
                            format!(
                                "seat \"{}\" is not a seat of team \"{}\" (seats: {})",
                                issue.seat,
                                epic.team,
                                seats.join(", ")
                            ),
                        ));
                    }
                }
            }
            Err(e @ AssetError::NotFound { .. }) | Err(e @ AssetError::InvalidName { .. }) => out
                .push(Diagnostic::error(
                    &epic.file,
                    "team",
                    format!("team \"{}\" not found ({})", epic.team, looked_in(&e)),
                )),
            // The team file's own problems are reported on that file.
            Err(AssetError::Invalid { .. }) => {}
        }
    }
    if let (Ok(team), Ok(env)) = (
        tree.load_team(&epic.team, dept),
        tree.load_environment(&epic.environment, dept),
    ) {
        check_seat_clients(epic, &team, &env, out);
    }
    if !epic.environment.is_empty() {
        if let Err(e) = tree.find(Category::Environments, &epic.environment, dept) {
            out.push(Diagnostic::error(
                &epic.file,
                "environment",
                format!(
                    "environment \"{}\" not found ({})",
                    epic.environment,
                    looked_in(&e)
                ),
            ));
        }
    }
    if epic.issues.is_empty() {
        out.push(Diagnostic::warning(
            &epic.file,
            epic.issues_key.as_str(),
            "the epic has no issues",
        ));
    }
    if epic.issues.len() > idesign_threshold && !epic.idesign {
        out.push(Diagnostic::error(
            &epic.file,
            epic.issues_key.as_str(),
            format!(
                "{} issues exceed the iDesign threshold of {} (architecture.idesign_threshold); \
                 set architecture_governance.idesign to true or split the epic",
                epic.issues.len(),
                idesign_threshold
            ),
        ));
    }
    for (i, reference) in epic.card.references.iter().enumerate() {
        if !tree.root().join(reference).exists() {
            out.push(Diagnostic::warning(
                &epic.file,
                idx("references", i),
                format!("reference \"{reference}\" does not exist under the project root"),
            ));
        }
    }
}

/// An environment's `seat_model_clients` name seats of the epic's team (a key no seat has
/// would silently serve nobody).
fn check_seat_clients(epic: &Epic, team: &Team, env: &Environment, out: &mut Vec<Diagnostic>) {
    for key in env.seat_model_clients.keys() {
        if team.seat(key).is_none() {
            let seats: Vec<&str> = team.seats.iter().map(|s| s.key.as_str()).collect();
            out.push(Diagnostic::warning(
                &env.file,
                at("seat_model_clients", key),
                format!(
                    "seat \"{key}\" is not a seat of team \"{}\" of epic \"{}\" (seats: {}): no turn of that epic uses this client",
                    epic.team,
                    epic.stem,
                    seats.join(", ")
                ),
            ));
        }
    }
}
