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
    /// The facts of the tree now. A team, epic or rock that does not load is left out (the
    /// model cannot name it) and logged.
    pub fn facts(&self) -> Facts {
        let scan = self.epics();
        for problem in &scan.unreadable {
            tracing::warn!("the driver's prompt leaves out {problem}");
        }
        Facts {
            departments: self.tree.departments(),
            teams: self.loaded(Category::Teams, |name| {
                self.tree
                    .load_team(name, self.department)
                    .map(|team| (name.to_string(), team))
            }),
            environments: self.tree.list(Category::Environments, self.department),
            epics: scan.epics,
            rocks: self.loaded(Category::Rocks, |name| {
                self.tree.load_rock(name, self.department)
            }),
        }
    }

    /// Every asset of `category` in the driver's department that `load` loads.
    fn loaded<T, E: std::fmt::Display>(
        &self,
        category: Category,
        load: impl Fn(&str) -> Result<T, E>,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for name in self.tree.list(category, self.department) {
            match load(&name) {
                Ok(asset) => out.push(asset),
                Err(e) => tracing::warn!(
                    "the driver's prompt leaves out {} \"{name}\" (does not load: {e})",
                    category.noun()
                ),
            }
        }
        out
    }
}
