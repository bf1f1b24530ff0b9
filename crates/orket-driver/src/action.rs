//! The driver's actions, defined once.
//!
//! [`ActionKind`] names the actions; [`ACTIONS`] is the one table of their specs
//! ([`ActionSpec`]: name, description, where the fields are, the fields). Everything else is
//! derived from it: [`DriverAction::name`], the prompt's ACTIONS section (each field's
//! example), the reply's JSON schema (`crate::schema`) and the parser's dispatch and field
//! check (`crate::parse`, an exhaustive `match` on [`ActionKind`]). [`DriverAction`] is one
//! action with its arguments read.

use serde_json::Value;

/// Every action the driver's model may answer with, in the table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// `create_epic`.
    CreateEpic,
    /// `create_issue`.
    CreateIssue,
    /// `create_rock`.
    CreateRock,
    /// `assign_team`.
    AssignTeam,
    /// `turn_directive`.
    TurnDirective,
    /// `adopt_issue`.
    AdoptIssue,
    /// `reply`.
    Reply,
}

/// Where an action's fields are in the model's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `{"action": "<name>", "args": {<fields>}}`.
    Args,
    /// `{"action": "<name>", <fields>}` (a reply's `message`).
    Inline,
}

/// The names a text may be in the schema: any text, or one of the tree's names of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// Free text (new names are checked when the action is applied).
    Any,
    /// A department.
    Departments,
    /// A team of the driver's department.
    Teams,
    /// An environment of the driver's department.
    Environments,
    /// A seat of one of those teams.
    Seats,
    /// An epic.
    Epics,
    /// The id of an issue of an epic.
    IssueIds,
}

/// The JSON a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A string.
    Text(Names),
    /// `High`, `Medium` or `Low` (the parser also takes a number).
    Priority,
    /// A list of strings, at least `min_items` (the parser also takes a lone string).
    List {
        /// What each string is.
        of: Names,
        /// The fewest items the schema admits.
        min_items: usize,
    },
    /// A list of objects with these fields.
    Objects(&'static [Field]),
}

/// One field of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Its name (`name`, `team`).
    pub name: &'static str,
    /// The JSON it holds.
    pub shape: Shape,
    /// An action without it is refused.
    pub required: bool,
    /// The JSON the prompt's example of the action shows for it; `None`: not shown.
    pub example: Option<&'static str>,
}

/// An action, as the model is told about it and as the driver reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSpec {
    /// The action.
    pub kind: ActionKind,
    /// Its name on the wire (`create_epic`).
    pub name: &'static str,
    /// What it does, in one line.
    pub description: &'static str,
    /// Where its fields are.
    pub layout: Layout,
    /// Its fields, in the order the schema and the example list them.
    pub fields: &'static [Field],
}

const fn required(name: &'static str, shape: Shape, example: &'static str) -> Field {
    Field {
        name,
        shape,
        required: true,
        example: Some(example),
    }
}

const fn optional(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: false,
        example: None,
    }
}

const fn shown(field: Field, example: &'static str) -> Field {
    Field {
        example: Some(example),
        ..field
    }
}

const ANY: Shape = Shape::Text(Names::Any);
const EPIC_NAMES: Shape = Shape::Text(Names::Epics);

// The fields, each named once; the parser reads them through these constants.
pub(crate) const DEPARTMENT: Field = optional("department", Shape::Text(Names::Departments));
pub(crate) const DESCRIPTION: Field = shown(optional("description", ANY), r#""...""#);
pub(crate) const NEW_EPIC: Field = required("name", ANY, r#""docs_site""#);
pub(crate) const TEAM: Field = required("team", Shape::Text(Names::Teams), r#""<team>""#);
pub(crate) const ENVIRONMENT: Field = shown(
    optional("environment", Shape::Text(Names::Environments)),
    r#""<environment>""#,
);
pub(crate) const SUMMARY: Field = required("summary", ANY, r#""...""#);
pub(crate) const SEAT: Field = required(
    "seat",
    Shape::Text(Names::Seats),
    r#""<seat of the epic's team>""#,
);
pub(crate) const PRIORITY: Field = shown(optional("priority", Shape::Priority), r#""Medium""#);
/// `depends_on` of an issue of a new epic: ids or summaries of the epic's other issues.
pub(crate) const SIBLING_DEPENDS_ON: Field = optional(
    "depends_on",
    Shape::List {
        of: Names::Any,
        min_items: 0,
    },
);
/// `depends_on` of a new issue of an existing epic: ids of that epic's issues.
pub(crate) const DEPENDS_ON: Field = shown(
    optional(
        "depends_on",
        Shape::List {
            of: Names::IssueIds,
            min_items: 0,
        },
    ),
    r#"["<issue id of that epic>"]"#,
);
/// The fields of one issue of `create_epic`'s `issues`.
pub(crate) const NEW_ISSUE: [Field; 5] = [SUMMARY, SEAT, PRIORITY, SIBLING_DEPENDS_ON, DESCRIPTION];
pub(crate) const ISSUES: Field = shown(
    optional("issues", Shape::Objects(&NEW_ISSUE)),
    r#"[{"summary": "...", "seat": "<seat>", "priority": "High"}]"#,
);
pub(crate) const EPIC: Field = required("epic", EPIC_NAMES, r#""<epic>""#);
pub(crate) const NEW_ROCK: Field = required("name", ANY, r#""q3_launch""#);
pub(crate) const EPICS: Field = required(
    "epics",
    Shape::List {
        of: Names::Epics,
        min_items: 1,
    },
    r#"["<epic>"]"#,
);
pub(crate) const ISSUE: Field = required("issue", Shape::Text(Names::IssueIds), r#""<issue id>""#);
pub(crate) const DIRECTIVE: Field = required("directive", ANY, r#""what the next turn must do""#);
/// The epic of `turn_directive`'s issue, when its id is not unique.
pub(crate) const ISSUE_EPIC: Field = optional("epic", EPIC_NAMES);
pub(crate) const FROM_EPIC: Field = optional("from_epic", EPIC_NAMES);
pub(crate) const TO_EPIC: Field = required("to_epic", EPIC_NAMES, r#""<epic>""#);
pub(crate) const MESSAGE: Field = required("message", ANY, r#""your answer""#);

const fn spec(
    kind: ActionKind,
    name: &'static str,
    layout: Layout,
    fields: &'static [Field],
    description: &'static str,
) -> ActionSpec {
    ActionSpec {
        kind,
        name,
        description,
        layout,
        fields,
    }
}

/// The one table of actions, in the order the prompt and the schema list them.
pub const ACTIONS: [ActionSpec; 7] = {
    use ActionKind::*;
    use Layout::Args;
    [
        spec(
            CreateEpic,
            "create_epic",
            Args,
            &[NEW_EPIC, TEAM, ENVIRONMENT, DEPARTMENT, DESCRIPTION, ISSUES],
            "Create an epic file for a team, with its first issues.",
        ),
        spec(
            CreateIssue,
            "create_issue",
            Args,
            &[EPIC, SUMMARY, SEAT, PRIORITY, DEPENDS_ON, DESCRIPTION],
            "Append an issue to an epic, for a seat of the epic's team.",
        ),
        spec(
            CreateRock,
            "create_rock",
            Args,
            &[NEW_ROCK, EPICS, DEPARTMENT, DESCRIPTION],
            "Create a rock file grouping epics.",
        ),
        spec(
            AssignTeam,
            "assign_team",
            Args,
            &[EPIC, TEAM],
            "Give an epic to another team that has the seats its issues use.",
        ),
        spec(
            TurnDirective,
            "turn_directive",
            Args,
            &[ISSUE, DIRECTIVE, ISSUE_EPIC],
            "Tell the next turn of an issue what to do (appended to its note).",
        ),
        spec(
            AdoptIssue,
            "adopt_issue",
            Args,
            &[ISSUE, FROM_EPIC, TO_EPIC],
            "Move an issue without dependencies to another epic.",
        ),
        spec(
            Reply,
            "reply",
            Layout::Inline,
            &[MESSAGE],
            "Answer the person without changing anything.",
        ),
    ]
};

impl ActionKind {
    /// Every action, in the table's order.
    pub const ALL: [ActionKind; 7] = {
        let mut all = [ActionKind::Reply; 7];
        let mut i = 0;
        while i < ACTIONS.len() {
            all[i] = ACTIONS[i].kind;
            i += 1;
        }
        all
    };

    /// The action called `name`, if the driver knows one.
    pub fn from_name(name: &str) -> Option<ActionKind> {
        ACTIONS.iter().find(|s| s.name == name).map(|s| s.kind)
    }

    /// Its spec in [`ACTIONS`].
    pub fn spec(self) -> &'static ActionSpec {
        // The table lists every action in declaration order (a test holds it so).
        &ACTIONS[self as usize]
    }

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

/// The names of every action, comma-separated (for messages).
pub fn action_names() -> String {
    ACTIONS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

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
    /// Which action it is.
    pub fn kind(&self) -> ActionKind {
        match self {
            DriverAction::Reply { .. } => ActionKind::Reply,
            DriverAction::CreateEpic { .. } => ActionKind::CreateEpic,
            DriverAction::CreateIssue { .. } => ActionKind::CreateIssue,
            DriverAction::CreateRock { .. } => ActionKind::CreateRock,
            DriverAction::AssignTeam { .. } => ActionKind::AssignTeam,
            DriverAction::TurnDirective { .. } => ActionKind::TurnDirective,
            DriverAction::AdoptIssue { .. } => ActionKind::AdoptIssue,
        }
    }

    /// The action's name (`create_epic`).
    pub fn name(&self) -> &'static str {
        self.kind().name()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_action_once_in_declaration_order() {
        for (i, spec) in ACTIONS.iter().enumerate() {
            assert_eq!(spec.kind as usize, i, "{}", spec.name);
            assert_eq!(ActionKind::from_name(spec.name), Some(spec.kind));
            assert_eq!(spec.kind.name(), spec.name);
            assert!(!spec.description.is_empty() && !spec.description.contains('\n'));
            let mut names: Vec<&str> = spec.fields.iter().map(|f| f.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(
                names.len(),
                spec.fields.len(),
                "{}: a field twice",
                spec.name
            );
        }
        assert_eq!(ActionKind::ALL.len(), ACTIONS.len());
        assert_eq!(ActionKind::from_name("delete_everything"), None);
    }

    #[test]
    fn every_required_field_has_an_example() {
        for spec in &ACTIONS {
            for field in spec.fields.iter().filter(|f| f.required) {
                assert!(field.example.is_some(), "{}.{}", spec.name, field.name);
            }
        }
    }
}
