//! Editing an asset file's JSON in place (other fields kept): an epic's issue list and a
//! top-level field.

use crate::outcome::{refuse, Fail};
use serde_json::{Map, Value};

/// The issue list under `key` of an epic file (created when absent or `null`).
fn issues_mut<'a>(value: &'a mut Value, key: &str) -> Result<&'a mut Vec<Value>, Fail> {
    let Value::Object(map) = value else {
        return refuse("the epic file is not a JSON object");
    };
    let list = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    match list {
        Value::Array(items) => Ok(items),
        _ => refuse(format!("{key}: the epic's issues are not a list")),
    }
}

/// Appends `issue` to the issue list.
pub(super) fn push_issue(value: &mut Value, key: &str, issue: Value) -> Result<(), Fail> {
    issues_mut(value, key)?.push(issue);
    Ok(())
}

/// The issue object at `index` of the issue list.
pub(super) fn issue_at<'a>(
    value: &'a mut Value,
    key: &str,
    index: usize,
) -> Result<&'a mut Map<String, Value>, Fail> {
    match issues_mut(value, key)?.get_mut(index) {
        Some(Value::Object(object)) => Ok(object),
        _ => refuse(format!("{key}[{index}]: not an issue object")),
    }
}

/// Removes the issue at `index` of the issue list.
pub(super) fn remove_issue(value: &mut Value, key: &str, index: usize) -> Result<(), Fail> {
    let items = issues_mut(value, key)?;
    if index < items.len() {
        items.remove(index);
        Ok(())
    } else {
        refuse(format!("{key}[{index}]: no such issue"))
    }
}

/// Sets the top-level field `key` of a file's object.
pub(super) fn set_field(value: &mut Value, key: &str, new: Value) -> Result<(), Fail> {
    match value {
        Value::Object(map) => {
            map.insert(key.to_string(), new);
            Ok(())
        }
        _ => refuse("the file is not a JSON object"),
    }
}
