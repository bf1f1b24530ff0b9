//! The tolerant tool-call parser: finds the tool calls in a model's free-text reply.
//!
//! First, JSON: every top-level JSON object or array in the text (fenced or embedded in prose)
//! in one of the shapes `{"tool", "args"}`, `{"name", "arguments"}` (arguments an object or a
//! JSON string holding one; `parameters` is accepted for `arguments`), `{"function": {"name",
//! "arguments"}}` (OpenAI), `{"tool_calls": [...]}` (the constrained-decoding shape), or arrays
//! of them. Only when the text holds no JSON call, the legacy `TOOL: name` / `[name]` blocks.

use orket_core::ToolCall;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Every tool call in `text`, in order of appearance; never panics, garbage gives none.
pub fn parse_tool_calls(text: &str) -> Vec<ToolCall> {
    let calls = json_calls(text);
    if calls.is_empty() {
        legacy_calls(text)
    } else {
        calls
    }
}

/// How deep arrays and `tool_calls` wrappers may nest around a call.
const MAX_WRAPPING: usize = 4;

/// serde_json's nesting limit: a deeper candidate cannot parse, so it is not tried.
const MAX_JSON_DEPTH: usize = 128;

/// The calls of every top-level JSON value in `text`.
fn json_calls(text: &str) -> Vec<ToolCall> {
    let mut calls = Vec::new();
    for value in json_values(text) {
        collect_calls(&value, 0, &mut calls);
    }
    calls
}

/// Every top-level JSON object or array in `text`, in order: fenced, embedded in prose or the
/// whole text. The scan respects JSON strings (a brace inside a string is no bracket) and
/// reads strings holding raw control characters too; a value is taken whole, so the values
/// nested in it are not listed again. The tool-call parser and the driver's action reader use
/// it.
pub fn json_values(text: &str) -> Vec<Value> {
    let bytes = text.as_bytes();
    let mut scanner = Scanner::default();
    let mut values = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(offset) = bytes[pos..].iter().position(|&b| b == b'{' || b == b'[') else {
            break;
        };
        let start = pos + offset;
        pos = start + 1;
        let Some(Balanced { end, depth }) = scanner.matching_close(bytes, start) else {
            continue;
        };
        if depth > MAX_JSON_DEPTH {
            continue;
        }
        // Brackets and quotes are ASCII, so `start` and `end` are char boundaries.
        if let Some(value) = parse_lenient(&text[start..=end]) {
            values.push(value);
            pos = end + 1;
        }
    }
    values
}

/// `candidate` as JSON; when that fails only because strings hold raw control characters (a
/// literal newline in a file's content, which lenient grammars such as llama-cpp-python's
/// `json_object` + schema let a model write), with those characters escaped.
fn parse_lenient(candidate: &str) -> Option<Value> {
    match serde_json::from_str::<Value>(candidate) {
        Ok(value) => Some(value),
        Err(_) => {
            let escaped = escape_raw_controls(candidate)?;
            serde_json::from_str::<Value>(&escaped).ok()
        }
    }
}

/// `json` with the control characters inside its strings escaped (`\n`, `\r`, `\t`,
/// `\u00XX`); `None` when there is none, so there is nothing to retry.
fn escape_raw_controls(json: &str) -> Option<String> {
    let mut out = String::with_capacity(json.len() + 16);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    for c in json.chars() {
        if in_string && !escaped && (c as u32) < 0x20 {
            changed = true;
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                _ => out.push_str(&format!("\\u{:04x}", c as u32)),
            }
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    changed.then_some(out)
}

/// A balanced bracket pair: where it closes and how deeply brackets nest inside (1 = flat).
#[derive(Debug, Clone, Copy)]
struct Balanced {
    /// The position of the closing bracket.
    end: usize,
    /// The nesting depth of the brackets from the opening one to `end`.
    depth: usize,
}

/// A string-aware bracket matcher that remembers every bracket it matched, so rescanning
/// after a failed candidate stays linear (a nested bracket seen outside a string closes at
/// the same place whichever bracket the scan started from).
#[derive(Default)]
struct Scanner {
    /// Opening bracket position → its balanced pair, or `None` when it never closes.
    known: HashMap<usize, Option<Balanced>>,
}

impl Scanner {
    /// The pair the bracket at `start` opens, if it closes.
    fn matching_close(&mut self, bytes: &[u8], start: usize) -> Option<Balanced> {
        if let Some(known) = self.known.get(&start) {
            return *known;
        }
        // Open brackets, each with the deepest nesting seen inside it so far.
        let mut open: Vec<(usize, usize)> = vec![(start, 0)];
        let mut in_string = false;
        let mut escaped = false;
        let mut i = start + 1;
        while i < bytes.len() {
            let b = bytes[i];
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => match self.known.get(&i) {
                        Some(Some(inner)) => {
                            let inner = *inner;
                            if let Some(parent) = open.last_mut() {
                                parent.1 = parent.1.max(inner.depth);
                            }
                            i = inner.end;
                        }
                        Some(None) => break,
                        None => open.push((i, 0)),
                    },
                    b'}' | b']' => {
                        if let Some((opened, inner_depth)) = open.pop() {
                            let pair = Balanced {
                                end: i,
                                depth: inner_depth + 1,
                            };
                            self.known.insert(opened, Some(pair));
                            match open.last_mut() {
                                Some(parent) => parent.1 = parent.1.max(pair.depth),
                                None => return Some(pair),
                            }
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        for (opened, _) in open {
            self.known.insert(opened, None);
        }
        None
    }
}

/// Appends the calls `value` holds: a call, a `tool_calls` wrapper, or an array of them.
fn collect_calls(value: &Value, wrapping: usize, calls: &mut Vec<ToolCall>) {
    match value {
        Value::Array(items) if wrapping < MAX_WRAPPING => {
            for item in items {
                collect_calls(item, wrapping + 1, calls);
            }
        }
        Value::Object(object) => {
            if let Some(Value::Array(items)) = object.get("tool_calls") {
                if wrapping < MAX_WRAPPING {
                    for item in items {
                        collect_calls(item, wrapping + 1, calls);
                    }
                }
            } else if let Some(call) = call_of(object) {
                calls.push(call);
            }
        }
        _ => {}
    }
}

/// The call an object describes, if it has one of the call shapes.
fn call_of(object: &Map<String, Value>) -> Option<ToolCall> {
    if let Some(Value::Object(function)) = object.get("function") {
        let name = function.get("name")?.as_str()?;
        return make_call(name, arguments(function));
    }
    if let Some(Value::String(name)) = object.get("tool") {
        return make_call(name, object.get("args").or_else(|| arguments(object)));
    }
    if let Some(Value::String(name)) = object.get("name") {
        return make_call(name, Some(arguments(object)?));
    }
    None
}

/// The `arguments` of an object (or, Llama 3 style, its `parameters`).
fn arguments(object: &Map<String, Value>) -> Option<&Value> {
    object.get("arguments").or_else(|| object.get("parameters"))
}

/// A call of `name` with `args`: missing, `null` or `""` is no arguments; an object, or a
/// JSON string holding one, is the arguments; anything else is not a call.
fn make_call(name: &str, args: Option<&Value>) -> Option<ToolCall> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let args = match args {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => Map::new(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => map,
            _ => return None,
        },
        Some(_) => return None,
    };
    Some(ToolCall {
        name: name.to_string(),
        args,
    })
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The tool name a legacy block header line names: `TOOL: name`, or exactly `[name]` where
/// `name` is a known tool (so prose like `[Summary]` or a TOML file's `[package]` is not a
/// header).
fn block_header(line: &str) -> Option<&str> {
    let line = line.trim();
    let name = if let Some(rest) = line.strip_prefix("TOOL:") {
        rest.trim()
    } else {
        line.strip_prefix('[')?
            .strip_suffix(']')
            .filter(|n| orket_core::tools::is_known_tool(n))?
    };
    is_identifier(name).then_some(name)
}

/// A `KEY: value` line with an uppercase key (`STATUS`, `ISSUE_ID`).
fn key_value(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    let key = key.trim();
    let upper = key.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    upper.then_some((key, value.trim()))
}

/// True for a line that is only a code fence (```` ``` ````, optionally with a language).
fn is_fence(line: &str) -> bool {
    line.trim().starts_with("```")
}

/// The legacy DSL: `TOOL: name` or `[name]` blocks with `PATH:`, `CONTENT:` and `KEY: value`
/// lines; a `CONTENT:` section runs to the end of the block (up to the next block header).
/// `CONFIRM: true|false` becomes a boolean and a numeric `AMOUNT:` a number.
fn legacy_calls(text: &str) -> Vec<ToolCall> {
    // Lines with their terminators, so content is kept verbatim.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut calls = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(name) = block_header(lines[i]) else {
            i += 1;
            continue;
        };
        let mut args = Map::new();
        i += 1;
        while i < lines.len() && block_header(lines[i]).is_none() {
            let line = lines[i].trim_end_matches(['\n', '\r']);
            if line.trim_start().starts_with("CONTENT:") {
                let mut body: Vec<&str> = Vec::new();
                // `CONTENT: text` keeps the text of its own line; `CONTENT:` alone starts on
                // the next line.
                let full = lines[i];
                let after = full
                    .find("CONTENT:")
                    .map_or("", |at| &full[at + "CONTENT:".len()..]);
                let after = after.strip_prefix(' ').unwrap_or(after);
                if !after.trim().is_empty() {
                    body.push(after);
                }
                i += 1;
                while i < lines.len() && block_header(lines[i]).is_none() {
                    body.push(lines[i]);
                    i += 1;
                }
                args.insert("content".into(), Value::String(content_of(body)));
                break;
            }
            if let Some((key, value)) = key_value(line) {
                let key = key.to_lowercase();
                let value = match (key.as_str(), value) {
                    ("confirm", v) if v.eq_ignore_ascii_case("true") => Value::Bool(true),
                    ("confirm", v) if v.eq_ignore_ascii_case("false") => Value::Bool(false),
                    ("amount", v) => v
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map_or_else(|| Value::String(v.to_string()), Value::Number),
                    (_, v) => Value::String(v.to_string()),
                };
                args.insert(key, value);
            }
            i += 1;
        }
        calls.push(ToolCall {
            name: name.to_string(),
            args,
        });
    }
    calls
}

/// The content of a `CONTENT:` section: its lines verbatim, without a closing fence line
/// (and, when the content itself opens with a fence, without that fence pair).
fn content_of(mut body: Vec<&str>) -> String {
    let drop_trailing_fence = |body: &mut Vec<&str>| {
        while body.last().is_some_and(|l| l.trim().is_empty()) {
            body.pop();
        }
        if body.last().is_some_and(|l| l.trim() == "```") {
            body.pop();
            true
        } else {
            false
        }
    };
    let snapshot = body.clone();
    if drop_trailing_fence(&mut body) {
        if body.first().is_some_and(|l| is_fence(l)) {
            body.remove(0);
            drop_trailing_fence(&mut body);
        }
    } else {
        body = snapshot;
    }
    body.concat()
}
