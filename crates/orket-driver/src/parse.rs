//! Reading a model reply into a [`DriverAction`]: the first JSON object of the reply, its
//! arguments read through `orket-core`'s path-aware [`Reader`], so every problem is named at
//! once (`create_epic: args.issues[1].seat: ...`).

use crate::action::{DriverAction, NewIssue, ACTIONS};
use crate::outcome::DriverError;
use orket_core::assets::diag::{at, idx};
use orket_core::assets::reader::{as_object, Reader};
use serde_json::{Map, Value};

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
    let actions = ACTIONS.join(", ");
    let value = orket_llm::parse::json_values(text)
        .into_iter()
        .find(Value::is_object)
        .ok_or_else(|| {
            format!(
                "no JSON object found in {:?}; expected {{\"action\": one of {actions}, ...}}",
                shorten(text)
            )
        })?;
    let object = value.as_object().ok_or("expected a JSON object")?;
    let name = match object.get("action") {
        Some(Value::String(name)) if ACTIONS.contains(&name.as_str()) => name.as_str(),
        Some(Value::String(name)) => {
            return Err(format!(
                "action: unknown action \"{name}\" (known: {actions})"
            ))
        }
        Some(other) => return Err(format!("action: expected a string, found {other}")),
        None => return Err(format!("action: missing (one of {actions})")),
    };
    let empty = Map::new();
    let args = match object.get("args") {
        Some(Value::Object(args)) => args,
        None | Some(Value::Null) => &empty,
        Some(other) => return Err(format!("{name}: args: expected an object, found {other}")),
    };
    // Every problem of the arguments at once, each naming its field (`create_epic:
    // args.issues[1].seat: ...`).
    let mut r = Reader::new(name);
    let action = read_action(&mut r, name, object, args);
    match r.errors() {
        Some(errors) => Err(errors),
        None => Ok(action),
    }
}

/// The action `name` with its arguments read from `args` (problems go to `r`).
fn read_action(
    r: &mut Reader,
    name: &str,
    object: &Map<String, Value>,
    args: &Map<String, Value>,
) -> DriverAction {
    const ARGS: &str = "args";
    let text = |r: &mut Reader, key: &str| trimmed(r.opt_str(args, ARGS, key));
    match name {
        "reply" => {
            let message = object
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| text(r, "message"));
            if message.is_none() {
                r.error("message", "required (the answer for the person)");
            }
            DriverAction::Reply {
                message: message.unwrap_or_default(),
            }
        }
        "create_epic" => {
            r.only_keys(
                args,
                ARGS,
                &[
                    "department",
                    "name",
                    "team",
                    "environment",
                    "description",
                    "issues",
                ],
            );
            let mut issues = Vec::new();
            match args.get("issues") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let path = idx(&at(ARGS, "issues"), i);
                        if let Some(map) = as_object(r, item, &path) {
                            r.only_keys(
                                map,
                                &path,
                                &["summary", "seat", "priority", "depends_on", "description"],
                            );
                            issues.push(new_issue(r, map, &path));
                        }
                    }
                }
                Some(other) => r.wrong_type(&at(ARGS, "issues"), "a list", other),
            }
            DriverAction::CreateEpic {
                department: text(r, "department"),
                name: required(r, args, ARGS, "name"),
                team: required(r, args, ARGS, "team"),
                environment: text(r, "environment"),
                description: text(r, "description"),
                issues,
            }
        }
        "create_issue" => {
            r.only_keys(
                args,
                ARGS,
                &[
                    "epic",
                    "summary",
                    "seat",
                    "priority",
                    "depends_on",
                    "description",
                ],
            );
            DriverAction::CreateIssue {
                epic: required(r, args, ARGS, "epic"),
                issue: new_issue(r, args, ARGS),
            }
        }
        "create_rock" => {
            r.only_keys(args, ARGS, &["department", "name", "epics", "description"]);
            DriverAction::CreateRock {
                department: text(r, "department"),
                name: required(r, args, ARGS, "name"),
                epics: names(r.str_list(args, ARGS, "epics", true)),
                description: text(r, "description"),
            }
        }
        "assign_team" => {
            r.only_keys(args, ARGS, &["epic", "team"]);
            DriverAction::AssignTeam {
                epic: required(r, args, ARGS, "epic"),
                team: required(r, args, ARGS, "team"),
            }
        }
        "turn_directive" => {
            r.only_keys(args, ARGS, &["issue", "directive", "epic"]);
            DriverAction::TurnDirective {
                issue: required(r, args, ARGS, "issue"),
                directive: required(r, args, ARGS, "directive"),
                epic: text(r, "epic"),
            }
        }
        _ => {
            r.only_keys(args, ARGS, &["issue", "from_epic", "to_epic"]);
            DriverAction::AdoptIssue {
                issue: required(r, args, ARGS, "issue"),
                from_epic: text(r, "from_epic"),
                to_epic: required(r, args, ARGS, "to_epic"),
            }
        }
    }
}

/// An issue to create, read from `map` at `path`.
fn new_issue(r: &mut Reader, map: &Map<String, Value>, path: &str) -> NewIssue {
    let priority = match map.get("priority") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
        Some(other) => {
            r.wrong_type(
                &at(path, "priority"),
                "High, Medium, Low or a number",
                other,
            );
            None
        }
    };
    NewIssue {
        summary: required(r, map, path, "summary"),
        seat: required(r, map, path, "seat"),
        priority,
        depends_on: names(r.str_list(map, path, "depends_on", true)),
        description: trimmed(r.opt_str(map, path, "description")),
    }
}

/// A required text field, trimmed (missing or empty: an error and an empty string).
fn required(r: &mut Reader, map: &Map<String, Value>, path: &str, key: &str) -> String {
    r.req_str(map, path, key)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// An optional text field, trimmed; empty counts as absent.
fn trimmed(text: Option<String>) -> Option<String> {
    text.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A list of names, each trimmed.
fn names(list: Vec<String>) -> Vec<String> {
    list.into_iter().map(|s| s.trim().to_string()).collect()
}

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
