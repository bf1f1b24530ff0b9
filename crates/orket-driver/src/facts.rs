//! What the driver tells its model about the tree: the prompt's ORGANIZATION section and the
//! names the schema admits are both read from [`Facts`].

use crate::lookup::Lookup;
use orket_core::assets::{Category, Epic, Rock, Team};

/// What the driver tells its model about the tree.
pub struct Facts {
    pub(crate) departments: Vec<String>,
    pub(crate) teams: Vec<(String, Team)>,
    pub(crate) environments: Vec<String>,
    pub(crate) epics: Vec<Epic>,
    pub(crate) rocks: Vec<Rock>,
}

impl Lookup<'_> {
    /// The facts of the tree now.
    pub fn facts(&self) -> Facts {
        let dept = self.department;
        let mut teams = Vec::new();
        for name in self.tree.list(Category::Teams, dept) {
            if let Ok(team) = self.tree.load_team(&name, dept) {
                teams.push((name, team));
            }
        }
        Facts {
            departments: self.tree.departments(),
            teams,
            environments: self.tree.list(Category::Environments, dept),
            epics: self.epics(),
            rocks: self
                .tree
                .list(Category::Rocks, dept)
                .into_iter()
                .filter_map(|r| self.tree.load_rock(&r, dept).ok())
                .collect(),
        }
    }
}
