//! Applying an action to the asset tree: validated against the tree, then written as one
//! transaction of files (`files.rs`) and loaded again; a refused action writes nothing.
//! `create.rs` makes new epics, issues and rocks, `edit.rs` changes existing epics, `issue.rs`
//! builds a new issue's JSON and id, `epic_json.rs` edits an epic file's issue list.

mod create;
mod edit;
mod epic_json;
mod files;
mod issue;

use crate::action::DriverAction;
use crate::lookup::Lookup;
use crate::outcome::{Done, DriverError, DriverOutcome};
use orket_store::Store;

/// What applying an action needs: the tree (through its lookups), the departments the
/// organization names and, when there is one, the store (`turn_directive` reaches the build).
pub(crate) struct Editor<'a> {
    look: Lookup<'a>,
    org_departments: &'a [String],
    store: Option<&'a dyn Store>,
}

impl<'a> Editor<'a> {
    /// An editor of the tree of `look`.
    pub fn new(
        look: Lookup<'a>,
        org_departments: &'a [String],
        store: Option<&'a dyn Store>,
    ) -> Self {
        Editor {
            look,
            org_departments,
            store,
        }
    }

    /// Validates `action` against the tree and applies it. A refusal writes nothing; the
    /// error's message starts with the action's name.
    pub async fn apply(&self, action: &DriverAction) -> Result<DriverOutcome, DriverError> {
        let done = match action {
            DriverAction::Reply { message } => Ok(Done {
                reply: message.clone(),
                changed_files: Vec::new(),
            }),
            DriverAction::CreateEpic {
                department,
                name,
                team,
                environment,
                description,
                issues,
            } => {
                self.create_epic(
                    department.as_deref(),
                    name,
                    team,
                    environment.as_deref(),
                    description.as_deref(),
                    issues,
                )
                .await
            }
            DriverAction::CreateIssue { epic, issue } => self.create_issue(epic, issue).await,
            DriverAction::CreateRock {
                department,
                name,
                epics,
                description,
            } => {
                self.create_rock(department.as_deref(), name, epics, description.as_deref())
                    .await
            }
            DriverAction::AssignTeam { epic, team } => self.assign_team(epic, team).await,
            DriverAction::TurnDirective {
                issue,
                directive,
                epic,
            } => self.turn_directive(issue, directive, epic.as_deref()).await,
            DriverAction::AdoptIssue {
                issue,
                from_epic,
                to_epic,
            } => self.adopt_issue(issue, from_epic.as_deref(), to_epic).await,
        };
        done.map(|done| done.outcome(action.name()))
            .map_err(|fail| fail.for_action(action.name()))
    }
}
