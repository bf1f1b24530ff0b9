//! Finding what an action names in the asset tree, from the driver's department: teams,
//! epics and the epic holding an issue.

use crate::names::{list_or_none, plain};
use crate::outcome::{refuse, Fail};
use orket_core::assets::{AssetError, AssetTree, Category, Epic, Team};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The asset tree as the driver reads it: names are looked up in its department first.
#[derive(Clone, Copy)]
pub(crate) struct Lookup<'a> {
    /// The tree.
    pub tree: &'a AssetTree,
    /// The driver's department.
    pub department: &'a str,
}

/// Every epic of the tree that loads, and what could not be read (a folder that cannot be
/// listed, an epic file that does not load), each with its error.
pub(crate) struct EpicScan {
    /// The epics, each file once.
    pub epics: Vec<Epic>,
    /// `<folder or epic> (<error>)` for each thing skipped.
    pub unreadable: Vec<String>,
}

impl EpicScan {
    /// `; not read: ...` naming what was skipped, or nothing (for messages that say a thing
    /// was not found).
    pub fn skipped(&self) -> String {
        if self.unreadable.is_empty() {
            String::new()
        } else {
            format!("; not read: {}", self.unreadable.join("; "))
        }
    }
}

impl Lookup<'_> {
    /// The team `name` of department `dept`.
    pub fn team(&self, name: &str, dept: &str) -> Result<Team, Fail> {
        plain("team", name)?;
        match self.tree.load_team(name, dept) {
            Ok(team) => Ok(team),
            Err(AssetError::NotFound { .. }) => refuse(format!(
                "team: unknown team \"{name}\" (teams: {})",
                list_or_none(&self.tree.list(Category::Teams, dept))
            )),
            Err(e) => refuse(format!("team: team \"{name}\" does not load: {e}")),
        }
    }

    /// An existing epic: its file and its loaded form, from the driver's department, else
    /// the first department that has it. `field` names the argument.
    pub fn epic(&self, name: &str, field: &str) -> Result<(PathBuf, Epic), Fail> {
        plain(field, name)?;
        let mut depts = vec![self.department.to_string()];
        depts.extend(self.tree.departments());
        for dept in &depts {
            let path = match self.tree.find(Category::Epics, name, dept) {
                Ok(path) => path,
                Err(AssetError::NotFound { .. }) => continue,
                Err(e) => return refuse(format!("{field}: {e}")),
            };
            return match self.tree.load_epic(name, dept) {
                Ok(epic) => Ok((path, epic)),
                Err(e) => refuse(format!(
                    "{field}: epic \"{name}\" ({}) does not load: {e}",
                    self.tree.relative(&path)
                )),
            };
        }
        let scan = self.epics();
        let stems: Vec<&str> = scan.epics.iter().map(|e| e.stem.as_str()).collect();
        refuse(format!(
            "{field}: unknown epic \"{name}\" (epics: {}){}",
            list_or_none(&stems),
            scan.skipped()
        ))
    }

    /// Every epic of the tree (`config/` and every department), each file once.
    pub fn epics(&self) -> EpicScan {
        let root = self.tree.root();
        let mut dirs = vec![(
            root.join("config").join("epics"),
            self.department.to_string(),
        )];
        for dept in self.tree.departments() {
            dirs.push((root.join("model").join(&dept).join("epics"), dept));
        }
        let mut scan = EpicScan {
            epics: Vec::new(),
            unreadable: Vec::new(),
        };
        let mut seen = BTreeSet::new();
        for (dir, dept) in dirs {
            let stems = match json_stems(&dir) {
                Ok(stems) => stems,
                Err(e) => {
                    scan.unreadable
                        .push(format!("{} (cannot list: {e})", self.tree.relative(&dir)));
                    continue;
                }
            };
            for stem in stems {
                match self.tree.load_epic(&stem, &dept) {
                    Ok(epic) if seen.insert(epic.file.clone()) => scan.epics.push(epic),
                    Ok(_) => {}
                    Err(e) => {
                        let problem = format!("epic \"{stem}\" (does not load: {e})");
                        if !scan.unreadable.contains(&problem) {
                            scan.unreadable.push(problem);
                        }
                    }
                }
            }
        }
        scan
    }

    /// The ids of every issue of every epic that loads.
    pub fn all_issue_ids(&self) -> BTreeSet<String> {
        self.epics()
            .epics
            .iter()
            .flat_map(|e| e.issues.iter().map(|i| i.card.id.clone()))
            .collect()
    }

    /// The epic holding issue `id` (in `epic` when given): its file, the epic and the issue's
    /// index in it. `field` and `epic_field` name the arguments.
    pub fn issue_home(
        &self,
        id: &str,
        epic: Option<&str>,
        field: &str,
        epic_field: &str,
    ) -> Result<(PathBuf, Epic, usize), Fail> {
        if id.trim().is_empty() {
            return refuse(format!("{field}: required (an issue id)"));
        }
        match epic.filter(|e| !e.trim().is_empty()) {
            Some(name) => self.issue_in(id, name, field, epic_field),
            None => self.issue_anywhere(id, field, epic_field),
        }
    }

    /// Issue `id` in the epic `name`.
    fn issue_in(
        &self,
        id: &str,
        name: &str,
        field: &str,
        epic_field: &str,
    ) -> Result<(PathBuf, Epic, usize), Fail> {
        let (path, epic) = self.epic(name, epic_field)?;
        match epic.issues.iter().position(|i| i.card.id == id) {
            Some(index) => Ok((path, epic, index)),
            None => {
                let ids: Vec<&str> = epic.issues.iter().map(|i| i.card.id.as_str()).collect();
                refuse(format!(
                    "{field}: \"{id}\" is not an issue of epic \"{}\" (issues: {})",
                    epic.stem,
                    list_or_none(&ids)
                ))
            }
        }
    }

    /// Issue `id` in the one epic that has it.
    fn issue_anywhere(
        &self,
        id: &str,
        field: &str,
        epic_field: &str,
    ) -> Result<(PathBuf, Epic, usize), Fail> {
        let scan = self.epics();
        let skipped = scan.skipped();
        let mut holders: Vec<(Epic, usize)> = scan
            .epics
            .into_iter()
            .filter_map(|epic| {
                let index = epic.issues.iter().position(|i| i.card.id == id)?;
                Some((epic, index))
            })
            .collect();
        if holders.len() > 1 {
            let names: Vec<&str> = holders.iter().map(|(e, _)| e.stem.as_str()).collect();
            return refuse(format!(
                "{field}: issue \"{id}\" is in several epics ({}); name the epic with {epic_field}",
                names.join(", ")
            ));
        }
        let Some((epic, index)) = holders.pop() else {
            return refuse(format!(
                "{field}: unknown issue \"{id}\" (no epic has it){skipped}"
            ));
        };
        let path = self.tree.root().join(&epic.file);
        Ok((path, epic, index))
    }
}

/// The stems of the `*.json` files directly in `dir`, sorted; none when `dir` does not exist.
fn json_stems(dir: &Path) -> std::io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut stems = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "json") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                stems.push(stem.to_string());
            }
        }
    }
    stems.sort();
    Ok(stems)
}
