//! The board: rocks → epics → issues with their statuses, built from the files; a store can
//! overlay the statuses of the builds it holds.

use super::check::scoped_files;
use super::parse;
use super::tree::{file_stem, is_plain_name, AssetError, AssetTree, Category};
use super::types::Epic;
use crate::ids::epic_build_id;
use crate::lifecycle::derive_rock_status;
use crate::status::Status;
use serde::Serialize;

/// One issue on the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardIssue {
    /// The issue id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: Status,
    /// The seat that works on it.
    pub seat: String,
    /// Who holds it now.
    pub assignee: Option<String>,
    /// Its priority.
    pub priority: f64,
    /// The issues it waits for.
    pub depends_on: Vec<String>,
}

/// One epic on the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardEpic {
    /// The epic's file stem (what `orket run` takes).
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its department.
    pub department: String,
    /// Its status (derived from the store when a build exists).
    pub status: Status,
    /// Its build id.
    pub build_id: String,
    /// Where the statuses come from: `files` or `store`.
    pub source: String,
    /// Its team.
    pub team: String,
    /// Its issues.
    pub issues: Vec<BoardIssue>,
    /// Why it could not be loaded, if it could not.
    pub error: Option<String>,
}

/// One rock on the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardRock {
    /// The rock's file stem.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its department.
    pub department: String,
    /// Its status (derived from its epics once one has a build).
    pub status: Status,
    /// Its epics, in order (for a broken rock, those that could be read).
    pub epics: Vec<BoardEpic>,
    /// Why it could not be loaded, if it could not.
    pub error: Option<String>,
}

/// Why a board cannot be built for the department asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    /// A department name that is not a plain folder name (`../x`, `a/b`, empty).
    #[error("invalid department name \"{0}\"")]
    InvalidDepartment(String),
    /// A department without a folder under `model/`.
    #[error("department \"{0}\" not found: model/{0}/ does not exist")]
    UnknownDepartment(String),
}

/// The whole board: rocks with their epics, then the epics no rock lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Board {
    /// The rocks.
    pub rocks: Vec<BoardRock>,
    /// Epics that belong to no rock.
    pub epics: Vec<BoardEpic>,
}

impl BoardEpic {
    fn from_epic(epic: &Epic) -> Self {
        BoardEpic {
            id: epic.stem.clone(),
            name: display_name(&epic.card.name, &epic.stem),
            department: epic.department.clone(),
            status: epic.card.status,
            build_id: epic_build_id(&epic.stem),
            source: "files".to_string(),
            team: epic.team.clone(),
            issues: epic
                .issues
                .iter()
                .map(|i| BoardIssue {
                    id: i.card.id.clone(),
                    name: i.card.name.clone(),
                    status: i.card.status,
                    seat: i.seat.clone(),
                    assignee: i.assignee.clone(),
                    priority: i.card.priority,
                    depends_on: i.depends_on.clone(),
                })
                .collect(),
            error: None,
        }
    }

    fn broken(stem: &str, department: &str, error: String) -> Self {
        BoardEpic {
            id: stem.to_string(),
            name: stem.to_string(),
            department: department.to_string(),
            status: Status::Ready,
            build_id: epic_build_id(stem),
            source: "files".to_string(),
            team: String::new(),
            issues: Vec::new(),
            error: Some(error),
        }
    }
}

fn display_name(name: &str, stem: &str) -> String {
    if name.trim().is_empty() {
        stem.to_string()
    } else {
        name.to_string()
    }
}

fn load_board_epic(tree: &AssetTree, stem: &str, dept: &str) -> BoardEpic {
    match tree.load_epic(stem, dept) {
        Ok(epic) => BoardEpic::from_epic(&epic),
        Err(e) => BoardEpic::broken(stem, dept, e.to_string()),
    }
}

/// The departments a board of `department` covers: like `orket check`, one department comes
/// with `core` (every department's fallback); without one, every department.
fn departments_in_scope(
    tree: &AssetTree,
    department: Option<&str>,
) -> Result<Vec<String>, BoardError> {
    Ok(match department {
        Some(d) if !is_plain_name(d) => return Err(BoardError::InvalidDepartment(d.to_string())),
        Some("core") => vec!["core".to_string()],
        Some(d) if !tree.root().join("model").join(d).is_dir() => {
            return Err(BoardError::UnknownDepartment(d.to_string()))
        }
        Some(d) => vec!["core".to_string(), d.to_string()],
        None => tree.departments(),
    })
}

impl Board {
    /// The board as the files describe it, for one department (its own files, `core`'s and
    /// `config/`) or, without one, for every department. A rock or epic with errors is on the
    /// board with its error; an invalid or unknown department is an error.
    pub fn from_files(tree: &AssetTree, department: Option<&str>) -> Result<Board, BoardError> {
        let depts = departments_in_scope(tree, department)?;
        let config_dept = department.unwrap_or("core");
        let mut rocks = Vec::new();
        let mut in_rocks: Vec<(String, String)> = Vec::new();
        for file in scoped_files(tree, Category::Rocks, &depts, config_dept) {
            let stem = file_stem(&file.path);
            let (rock, diagnostics) = tree
                .parse_file_partial(&file.path, |ctx, v| parse::rock(ctx, v, &stem, &file.dept));
            let error = diagnostics
                .iter()
                .any(|d| d.is_error())
                .then(|| AssetError::Invalid { diagnostics }.to_string());
            let Some(rock) = rock else {
                rocks.push(BoardRock {
                    id: stem.clone(),
                    name: stem,
                    department: file.dept.clone(),
                    status: Status::Ready,
                    epics: Vec::new(),
                    error: error.or_else(|| Some("the rock cannot be read".to_string())),
                });
                continue;
            };
            let epics: Vec<BoardEpic> = rock
                .epics
                .iter()
                .map(|e| {
                    in_rocks.push((e.epic.clone(), e.department.clone()));
                    load_board_epic(tree, &e.epic, &e.department)
                })
                .collect();
            rocks.push(BoardRock {
                id: rock.stem.clone(),
                name: display_name(&rock.card.name, &rock.stem),
                department: rock.department.clone(),
                status: rock.card.status,
                epics,
                error,
            });
        }
        let mut epics = Vec::new();
        for file in scoped_files(tree, Category::Epics, &depts, config_dept) {
            let stem = file_stem(&file.path);
            if in_rocks.iter().any(|(e, d)| *e == stem && *d == file.dept) {
                continue;
            }
            epics.push(load_board_epic(tree, &stem, &file.dept));
        }
        Ok(Board { rocks, epics })
    }

    /// Replaces the statuses and issues of every epic whose build `lookup` knows (by build
    /// id), and derives the status of rocks with such epics.
    pub fn overlay(&mut self, lookup: impl Fn(&str) -> Option<(Status, Vec<BoardIssue>)>) {
        let apply = |epic: &mut BoardEpic| -> bool {
            match lookup(&epic.build_id) {
                Some((status, issues)) => {
                    epic.status = status;
                    epic.issues = issues;
                    epic.source = "store".to_string();
                    true
                }
                None => false,
            }
        };
        for rock in &mut self.rocks {
            let mut any = false;
            for epic in &mut rock.epics {
                any |= apply(epic);
            }
            if any {
                let statuses: Vec<Status> = rock.epics.iter().map(|e| e.status).collect();
                rock.status = derive_rock_status(&statuses);
            }
        }
        for epic in &mut self.epics {
            apply(epic);
        }
    }
}
