//! The JSON schema of the driver model's reply, derived from [`ACTIONS`]: `oneOf` one object
//! per action, each field's schema from its [`Shape`], known names limited to the tree's.

use crate::action::{ActionSpec, Field, Layout, Names, Shape, ACTIONS};
use crate::facts::Facts;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// The schema of the driver model's reply: `oneOf` one object per action, `{"action":
/// "<name>", "args": {...}}` (`{"action": "reply", "message": "..."}` for a reply). Teams,
/// environments, seats, epics and issue ids are limited to those of the tree (when there are
/// any), so constrained decoding cannot invent them; new names are free text, checked when the
/// action is applied.
pub fn driver_schema(facts: &Facts) -> Value {
    let vocabulary = Vocabulary::of(facts);
    let variants: Vec<Value> = ACTIONS
        .iter()
        .map(|spec| action_schema(spec, &vocabulary))
        .collect();
    json!({"oneOf": variants})
}

/// The schema of each kind of [`Names`] for one tree.
struct Vocabulary {
    departments: Value,
    teams: Value,
    environments: Value,
    seats: Value,
    epics: Value,
    issue_ids: Value,
}

impl Vocabulary {
    fn of(facts: &Facts) -> Vocabulary {
        let seats: BTreeSet<String> = facts
            .teams
            .iter()
            .flat_map(|(_, t)| t.seats.iter().map(|s| s.key.clone()))
            .collect();
        let issue_ids: BTreeSet<String> = facts
            .epics
            .iter()
            .flat_map(|e| e.issues.iter().map(|i| i.card.id.clone()))
            .collect();
        Vocabulary {
            departments: string_enum(facts.departments.clone()),
            teams: string_enum(facts.teams.iter().map(|(n, _)| n.clone()).collect()),
            environments: string_enum(facts.environments.clone()),
            seats: string_enum(seats.into_iter().collect()),
            epics: string_enum(facts.epics.iter().map(|e| e.stem.clone()).collect()),
            issue_ids: string_enum(issue_ids.into_iter().collect()),
        }
    }

    fn names(&self, names: Names) -> Value {
        match names {
            Names::Any => json!({"type": "string"}),
            Names::Departments => self.departments.clone(),
            Names::Teams => self.teams.clone(),
            Names::Environments => self.environments.clone(),
            Names::Seats => self.seats.clone(),
            Names::Epics => self.epics.clone(),
            Names::IssueIds => self.issue_ids.clone(),
        }
    }
}

/// A string among `names`, or any string when there are none.
fn string_enum(names: Vec<String>) -> Value {
    if names.is_empty() {
        json!({"type": "string"})
    } else {
        json!({"type": "string", "enum": names})
    }
}

/// One action's object: `action` is its name, its fields in `args` or beside `action`.
fn action_schema(spec: &ActionSpec, vocabulary: &Vocabulary) -> Value {
    let mut properties = Map::new();
    properties.insert("action".into(), json!({"const": spec.name}));
    let mut required = vec!["action"];
    match spec.layout {
        Layout::Args => {
            properties.insert("args".into(), object(spec.fields, vocabulary));
            required.push("args");
        }
        Layout::Inline => {
            for field in spec.fields {
                properties.insert(field.name.into(), shape(field.shape, vocabulary));
            }
            required.extend(spec.fields.iter().filter(|f| f.required).map(|f| f.name));
        }
    }
    closed_object(properties, &required)
}

/// An object of exactly `fields`.
fn object(fields: &[Field], vocabulary: &Vocabulary) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| (f.name.to_string(), shape(f.shape, vocabulary)))
        .collect();
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    closed_object(properties, &required)
}

fn closed_object(properties: Map<String, Value>, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required,
           "additionalProperties": false})
}

/// The schema of a field's value.
fn shape(shape: Shape, vocabulary: &Vocabulary) -> Value {
    match shape {
        Shape::Text(names) => vocabulary.names(names),
        Shape::Priority => json!({"type": "string", "enum": ["High", "Medium", "Low"]}),
        Shape::List { of, min_items: 0 } => json!({"type": "array", "items": vocabulary.names(of)}),
        Shape::List { of, min_items } => {
            json!({"type": "array", "items": vocabulary.names(of), "minItems": min_items})
        }
        Shape::Objects(fields) => json!({"type": "array", "items": object(fields, vocabulary)}),
    }
}
