//! Reading a model reply into a [`DriverAction`]: the first JSON object of the reply, its
//! `action` looked up in [`ACTIONS`], its fields read through `orket-core`'s path-aware
//! [`Reader`], so every problem is named at once (`create_epic: args.issues[1].seat: ...`).

use crate::action::{
    action_names, ActionKind, ActionSpec, DriverAction, Field, Layout, NewIssue, DEPARTMENT,
    DEPENDS_ON, DESCRIPTION, DIRECTIVE, ENVIRONMENT, EPIC, EPICS, FROM_EPIC, ISSUE, ISSUES,
    ISSUE_EPIC, MESSAGE, NEW_EPIC, NEW_ISSUE, NEW_ROCK, PRIORITY, SEAT, SIBLING_DEPENDS_ON,
    SUMMARY, TEAM, TO_EPIC,
};
use crate::outcome::DriverError;
use orket_core::assets::diag::{at, idx};
use orket_core::assets::reader::{as_object, Reader};
use serde_json::{Map, Value};

/// Where an action's fields are in the reply (of [`Layout::Args`]).
const ARGS: &str = "args";

/// Parses a model reply into one action: the whole reply as JSON, else the JSON object inside
/// a fence or between the first `{` and the last `}`. Arguments are checked for shape; an
/// error names the action and the field.
pub fn parse_action(text: &str) -> Result<DriverAction, DriverError> {
    action_of(text).map_err(|message| DriverError::BadReply {
        message,
        model_reply: text.to_string(),
    })
}

fn action_of(text: &str) -> Result<DriverAction, String> {
    let object = first_object(text)?;
    let spec = spec_of(&object)?;
    let empty = Map::new();
    let args = match object.get(ARGS) {
        Some(Value::Object(args)) => args,
        None | Some(Value::Null) => &empty,
        Some(other) => {
            return Err(format!(
                "{}: {ARGS}: expected an object, found {other}",
                spec.name
            ))
        }
    };
    let mut r = Reader::new(spec.name);
    let action = read_action(&mut r, spec, &object, args);
    match r.errors() {
        Some(errors) => Err(errors),
        None => Ok(action),
    }
}

/// The first JSON object of the reply.
fn first_object(text: &str) -> Result<Map<String, Value>, String> {
    orket_llm::parse::json_values(text)
        .into_iter()
        .find_map(|value| match value {
            Value::Object(object) => Some(object),
            _ => None,
        })
        .ok_or_else(|| {
            format!(
                "no JSON object found in {:?}; expected {{\"action\": one of {}, ...}}",
                shorten(text),
                action_names()
            )
        })
}

/// The spec of the action the object names.
fn spec_of(object: &Map<String, Value>) -> Result<&'static ActionSpec, String> {
    match object.get("action") {
        Some(Value::String(name)) => ActionKind::from_name(name)
            .map(ActionKind::spec)
            .ok_or_else(|| {
                format!(
                    "action: unknown action \"{name}\" (known: {})",
                    action_names()
                )
            }),
        Some(other) => Err(format!("action: expected a string, found {other}")),
        None => Err(format!("action: missing (one of {})", action_names())),
    }
}

/// The action of `spec` with its fields read from `args` (or, for [`Layout::Inline`], from
/// `object`); problems go to `r`.
fn read_action(
    r: &mut Reader,
    spec: &ActionSpec,
    object: &Map<String, Value>,
    args: &Map<String, Value>,
) -> DriverAction {
    let mut a = Fields {
        r,
        map: args,
        path: ARGS.to_string(),
    };
    match spec.layout {
        Layout::Args => a.only(spec.fields),
        // A reply's other keys are ignored.
        Layout::Inline => {}
    }
    match spec.kind {
        ActionKind::Reply => read_reply(&mut a, object),
        ActionKind::CreateEpic => {
            let issues = a.new_issues(&ISSUES);
            DriverAction::CreateEpic {
                department: a.optional(&DEPARTMENT),
                name: a.required(&NEW_EPIC),
                team: a.required(&TEAM),
                environment: a.optional(&ENVIRONMENT),
                description: a.optional(&DESCRIPTION),
                issues,
            }
        }
        ActionKind::CreateIssue => DriverAction::CreateIssue {
            epic: a.required(&EPIC),
            issue: a.new_issue(&DEPENDS_ON),
        },
        ActionKind::CreateRock => DriverAction::CreateRock {
            department: a.optional(&DEPARTMENT),
            name: a.required(&NEW_ROCK),
            epics: a.names(&EPICS),
            description: a.optional(&DESCRIPTION),
        },
        ActionKind::AssignTeam => DriverAction::AssignTeam {
            epic: a.required(&EPIC),
            team: a.required(&TEAM),
        },
        ActionKind::TurnDirective => DriverAction::TurnDirective {
            issue: a.required(&ISSUE),
            directive: a.required(&DIRECTIVE),
            epic: a.optional(&ISSUE_EPIC),
        },
        ActionKind::AdoptIssue => DriverAction::AdoptIssue {
            issue: a.required(&ISSUE),
            from_epic: a.optional(&FROM_EPIC),
            to_epic: a.required(&TO_EPIC),
        },
    }
}

/// A reply: its `message` beside `action` (as the schema has it), else in `args`.
fn read_reply(a: &mut Fields, object: &Map<String, Value>) -> DriverAction {
    let message = object
        .get(MESSAGE.name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| a.optional(&MESSAGE));
    if message.is_none() {
        a.r.error(MESSAGE.name, "required (the answer for the person)");
    }
    DriverAction::Reply {
        // Without a message the reader holds the error, and the reply is not used.
        message: message.unwrap_or_default(),
    }
}

/// The fields of one object of the reply (`map` at `path`), read into `r`.
struct Fields<'r, 'm> {
    r: &'r mut Reader,
    map: &'m Map<String, Value>,
    path: String,
}

impl Fields<'_, '_> {
    /// An error for every key that is not one of `fields`.
    fn only(&mut self, fields: &[Field]) {
        let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
        self.r.only_keys(self.map, &self.path, &known);
    }

    /// A required text field, trimmed. Missing or empty: the reader has the error, and the
    /// empty string returned is never used (the action is not read).
    fn required(&mut self, field: &Field) -> String {
        self.r
            .req_str(self.map, &self.path, field.name)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// An optional text field, trimmed; empty counts as absent.
    fn optional(&mut self, field: &Field) -> Option<String> {
        self.r
            .opt_str(self.map, &self.path, field.name)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// A list of names (a lone string is a list of one), each trimmed.
    fn names(&mut self, field: &Field) -> Vec<String> {
        self.r
            .str_list(self.map, &self.path, field.name, true)
            .into_iter()
            .map(|s| s.trim().to_string())
            .collect()
    }

    /// A priority as given: a string or a number.
    fn priority(&mut self, field: &Field) -> Option<Value> {
        match self.map.get(field.name) {
            None | Some(Value::Null) => None,
            Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
            Some(other) => {
                self.r.wrong_type(
                    &at(&self.path, field.name),
                    "High, Medium, Low or a number",
                    other,
                );
                None
            }
        }
    }

    /// An issue to create, its `depends_on` read as `depends_on`.
    fn new_issue(&mut self, depends_on: &Field) -> NewIssue {
        let priority = self.priority(&PRIORITY);
        NewIssue {
            summary: self.required(&SUMMARY),
            seat: self.required(&SEAT),
            priority,
            depends_on: self.names(depends_on),
            description: self.optional(&DESCRIPTION),
        }
    }

    /// The issues of a new epic: a list of objects of [`NEW_ISSUE`]'s fields.
    fn new_issues(&mut self, field: &Field) -> Vec<NewIssue> {
        let path = at(&self.path, field.name);
        let items = match self.map.get(field.name) {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.r.wrong_type(&path, "a list", other);
                return Vec::new();
            }
        };
        let mut issues = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = idx(&path, i);
            if let Some(map) = as_object(self.r, item, &item_path) {
                let mut item = Fields {
                    r: self.r,
                    map,
                    path: item_path,
                };
                item.only(&NEW_ISSUE);
                issues.push(item.new_issue(&SIBLING_DEPENDS_ON));
            }
        }
        issues
    }
}

/// The reply's first 80 characters (for messages).
fn shorten(text: &str) -> String {
    let t: String = text.trim().chars().take(80).collect();
    if text.trim().chars().count() > 80 {
        format!("{t}...")
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_from_prose_and_name_bad_fields() {
        let action = parse_action(
            "Sure!\n```json\n{\"action\": \"assign_team\", \"args\": {\"epic\": \"e\", \"team\": \"t\"}}\n```",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            action,
            DriverAction::AssignTeam {
                epic: "e".into(),
                team: "t".into()
            }
        );
        let err = parse_action(
            "{\"action\": \"create_issue\", \"args\": {\"epic\": \"e\", \"seat\": \"x\"}}",
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("the model's reply is not an action: create_issue: args.summary: required field is missing (expected a string)")
        );
        // Every problem at once, each with its field.
        let err = parse_action(
            "{\"action\": \"create_epic\", \"args\": {\"name\": 7, \"team\": \"t\", \"colour\": \"red\", \"issues\": [{\"seat\": \"x\"}]}}",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        for part in [
            "create_epic: args.colour: unknown field",
            "create_epic: args.issues[0].summary: required field is missing",
            "create_epic: args.name: expected a string, found a number",
        ] {
            assert!(err.contains(part), "{part} in {err}");
        }
        let err = parse_action("{\"action\": \"delete_everything\"}")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("unknown action \"delete_everything\""),
            "{err}"
        );
        let err = parse_action("no json here")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no JSON object found"), "{err}");
    }
}
