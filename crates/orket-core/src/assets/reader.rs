//! A path-aware reader over `serde_json` values that collects every problem it meets instead
//! of stopping at the first. The asset loader reads every file through it; the driver reads a
//! model's action arguments through it too (the action's name in place of the file).

use super::diag::{at, idx, Diagnostic};
use crate::priority::json_kind;
use serde_json::{Map, Value};

/// Collects diagnostics for one file while its JSON is read.
pub struct Reader {
    /// The file being read, relative to the project root.
    pub file: String,
    /// Everything found so far.
    pub diags: Vec<Diagnostic>,
}

impl Reader {
    /// A reader of `file` (a path relative to the project root, or what the values come from).
    pub fn new(file: impl Into<String>) -> Self {
        Reader {
            file: file.into(),
            diags: Vec::new(),
        }
    }

    /// Records an error at `path`.
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(&self.file, path, message));
    }

    /// Records a warning at `path`.
    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::warning(&self.file, path, message));
    }

    /// Reports a value of the wrong type.
    pub fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        self.error(
            path,
            format!("expected {expected}, found {}", json_kind(found)),
        );
    }

    /// An optional string field (`null` counts as absent).
    pub fn opt_str(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.wrong_type(&at(path, key), "a string", other);
                None
            }
        }
    }

    /// An optional string field naming one of `choices`, the wire names of `T` (an enum that
    /// deserializes from them); another name is an error naming them all.
    pub fn opt_choice<T: serde::de::DeserializeOwned>(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
        noun: &str,
        choices: &[&str],
    ) -> Option<T> {
        let raw = self.opt_str(obj, path, key)?;
        match serde_json::from_value(Value::String(raw.clone())) {
            Ok(value) if choices.contains(&raw.as_str()) => Some(value),
            _ => {
                let expected: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
                self.error(
                    &at(path, key),
                    format!(
                        "unknown {noun} \"{raw}\" (expected {})",
                        expected.join(" or ")
                    ),
                );
                None
            }
        }
    }

    /// A required, non-empty string field; reports it when missing.
    pub fn req_str(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        let present = obj.get(key).is_some_and(|v| !v.is_null());
        match self.opt_str(obj, path, key) {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                self.error(&at(path, key), "must not be empty");
                None
            }
            None => {
                if !present {
                    self.error(
                        &at(path, key),
                        "required field is missing (expected a string)",
                    );
                }
                None
            }
        }
    }

    /// A text field that may be a string or a list of strings (joined one per line).
    pub fn opt_text(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        match obj.get(key) {
            Some(Value::Array(_)) => {
                let lines = self.str_list(obj, path, key, false);
                Some(lines.join("\n"))
            }
            _ => self.opt_str(obj, path, key),
        }
    }

    /// A list of strings (absent = empty); with `single_ok`, a lone string is a list of one.
    pub fn str_list(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
        single_ok: bool,
    ) -> Vec<String> {
        let p = at(path, key);
        match obj.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) if single_ok => vec![s.clone()],
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => self.wrong_type(&idx(&p, i), "a string", other),
                    }
                }
                out
            }
            Some(other) => {
                self.wrong_type(&p, "a list of strings", other);
                Vec::new()
            }
        }
    }

    /// An optional number.
    pub fn opt_f64(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<f64> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(other) => {
                self.wrong_type(&at(path, key), "a number", other);
                None
            }
        }
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<u64> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(other) => {
                self.wrong_type(&at(path, key), "a non-negative whole number", other);
                None
            }
        }
    }

    /// An optional integer (may be negative).
    pub fn opt_i64(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<i64> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(other) => {
                self.wrong_type(&at(path, key), "a whole number", other);
                None
            }
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<bool> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.wrong_type(&at(path, key), "true or false", other);
                None
            }
        }
    }

    /// An optional object (absent = empty).
    pub fn opt_object(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Map<String, Value> {
        match obj.get(key) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                self.wrong_type(&at(path, key), "an object", other);
                Map::new()
            }
        }
    }

    /// An error for every key of `obj` that is not in `known` (where extra keys are refused,
    /// not ignored).
    pub fn only_keys(&mut self, obj: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                self.error(
                    &at(path, key),
                    format!("unknown field (known: {})", known.join(", ")),
                );
            }
        }
    }

    /// The errors found so far, one per line as `file: path: message`; `None` when there is
    /// none.
    pub fn errors(&self) -> Option<String> {
        let errors: Vec<String> = self
            .diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }

    /// Warns about every key of `obj` that is not in `known`.
    pub fn unknown_keys(&mut self, obj: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in obj.keys() {
            if !known.contains(&key.as_str()) && !key.starts_with('_') {
                self.warn(&at(path, key), "unknown field, ignored");
            }
        }
    }
}

/// The object at the top of a file (or at `path`), or an error.
pub fn as_object<'v>(
    ctx: &mut Reader,
    value: &'v Value,
    path: &str,
) -> Option<&'v Map<String, Value>> {
    match value {
        Value::Object(m) => Some(m),
        other => {
            ctx.wrong_type(path, "an object", other);
            None
        }
    }
}
