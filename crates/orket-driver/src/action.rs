//! The driver's actions: [`DriverAction`] is one action with its arguments read, [`NewIssue`]
//! an issue to create.

use serde_json::Value;

/// The actions the driver's model may answer with.
pub(crate) const ACTIONS: [&str; 7] = [
    "create_issue",
    "create_epic",
    "create_rock",
    "assign_team",
    "turn_directive",
    "adopt_issue",
    "reply",
];

/// One action of the driver's model, with its arguments checked for shape (not yet against
/// the tree).
#[derive(Debug, Clone, PartialEq)]
pub enum DriverAction {
    /// A plain answer; no edit.
    Reply {
        /// The message for the person.
        message: String,
    },
    /// A new epic file.
    CreateEpic {
        /// Its department (default: the driver's).
        department: Option<String>,
        /// Its name (the file stem).
        name: String,
        /// The team working on it.
        team: String,
        /// Its environment (default: the first one of the department).
        environment: Option<String>,
        /// What it delivers.
        description: Option<String>,
        /// Its first issues.
        issues: Vec<NewIssue>,
    },
    /// A new issue appended to an epic.
    CreateIssue {
        /// The epic's name.
        epic: String,
        /// The issue.
        issue: NewIssue,
    },
    /// A new rock file.
    CreateRock {
        /// Its department (default: the driver's).
        department: Option<String>,
        /// Its name (the file stem).
        name: String,
        /// Its epics, in order.
        epics: Vec<String>,
        /// What it is to achieve.
        description: Option<String>,
    },
    /// An epic's team changes.
    AssignTeam {
        /// The epic.
        epic: String,
        /// The new team.
        team: String,
    },
    /// A directive the next turn of an issue sees (in its `note`).
    TurnDirective {
        /// The issue's id.
        issue: String,
        /// The directive.
        directive: String,
        /// The issue's epic, when the id is not unique.
        epic: Option<String>,
    },
    /// An issue moves from one epic to another.
    AdoptIssue {
        /// The issue's id.
        issue: String,
        /// The epic it is in (default: the one epic holding it).
        from_epic: Option<String>,
        /// The epic it moves to.
        to_epic: String,
    },
}

impl DriverAction {
    /// The action's name (`create_epic`).
    pub fn name(&self) -> &'static str {
        match self {
            DriverAction::Reply { .. } => "reply",
            DriverAction::CreateEpic { .. } => "create_epic",
            DriverAction::CreateIssue { .. } => "create_issue",
            DriverAction::CreateRock { .. } => "create_rock",
            DriverAction::AssignTeam { .. } => "assign_team",
            DriverAction::TurnDirective { .. } => "turn_directive",
            DriverAction::AdoptIssue { .. } => "adopt_issue",
        }
    }
}

/// An issue to create (`create_issue`, or one of `create_epic`'s `issues`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssue {
    /// Its name.
    pub summary: String,
    /// The seat working on it.
    pub seat: String,
    /// Its priority as given (`High`, `Medium`, `Low` or a number).
    pub priority: Option<Value>,
    /// Ids of issues of the same epic it waits for (in `create_epic`: also summaries of
    /// issues of the same list).
    pub depends_on: Vec<String>,
    /// What it is about.
    pub description: Option<String>,
}
