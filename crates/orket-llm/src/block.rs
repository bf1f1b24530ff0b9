//! A file's content from a reply to a call that asked for it apart: a free-text reply's fenced
//! block (what a model writes when asked for a file "in one fenced block": small models write
//! code this way far more reliably than as a JSON string, where the first unescaped quote ends
//! the content), or a list file's items, asked for as JSON held to their number.

use serde_json::{json, Value};

/// The content of the first fenced block of `reply` (the text between a line opening with
/// three backticks, which may name a language, and the next line closing it, or the reply's
/// end when the block is never closed); the whole reply, trimmed, when it has no fence. The
/// content ends with a newline unless it is empty.
pub fn fenced_block(reply: &str) -> String {
    let body = match reply.find("```") {
        Some(open) => {
            let after = &reply[open + 3..];
            // The rest of the opening line is the block's language (or nothing).
            let start = after.find('\n').map_or(after.len(), |i| i + 1);
            let inner = &after[start..];
            let end = closing_fence(inner).unwrap_or(inner.len());
            &inner[..end]
        }
        None => reply.trim(),
    };
    let body = body.trim_end_matches([' ', '\t', '\r', '\n']);
    let body = body.trim_start_matches(['\r', '\n']);
    if body.is_empty() {
        String::new()
    } else {
        format!("{body}\n")
    }
}

/// Where the line that closes a block starts in `inner` (three backticks at a line's start).
fn closing_fence(inner: &str) -> Option<usize> {
    if inner.starts_with("```") {
        return Some(0);
    }
    inner.find("\n```").map(|i| i + 1)
}

/// The language a fenced block of the file at `path` is opened with (`python` for `.py`),
/// so the model is asked for the file in its own kind; empty when the kind is not known.
pub fn block_language(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "py" => "python",
        "md" | "markdown" => "markdown",
        "rs" => "rust",
        "js" | "mjs" => "javascript",
        "ts" => "typescript",
        "json" => "json",
        "toml" => "toml",
        "yaml" | "yml" => "yaml",
        "sh" => "bash",
        "html" => "html",
        "css" => "css",
        "go" => "go",
        "c" | "h" => "c",
        "txt" => "text",
        _ => "",
    }
}

/// The schema of a reply that gives a list file's `items` items: `{"items": [...]}` with
/// exactly that many strings of a few words to a line (a line break written into one is made a
/// space by [`list_content`]).
pub fn list_schema(items: u32) -> Value {
    json!({
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "string", "minLength": 3, "maxLength": 160},
                "minItems": items,
                "maxItems": items,
            }
        },
        "required": ["items"],
        "additionalProperties": false,
    })
}

/// A list file's content from a reply under [`list_schema`]: one `- ` line per item (a list
/// marker the model wrote itself is not doubled, a line break in an item becomes a space,
/// empty items are left out); `None` when the reply holds no `{"items": [...]}` of strings.
pub fn list_content(reply: &str) -> Option<String> {
    let items = crate::parse::json_values(reply)
        .into_iter()
        .find_map(|value| {
            let items = value.get("items")?.as_array()?.clone();
            items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
        })?;
    let lines: Vec<String> = items
        .iter()
        .map(|item| {
            let one_line = item.split_whitespace().collect::<Vec<_>>().join(" ");
            one_line
                .trim_start_matches(['-', '*', '+', ' '])
                .to_string()
        })
        .filter(|item| !item.is_empty())
        .map(|item| format!("- {item}\n"))
        .collect();
    (!lines.is_empty()).then(|| lines.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_block_is_taken_and_the_text_around_it_left() {
        let reply = "Here it is:\n```python\n# hi\nprint(\"Hello, Orket!\")\n```\n\nThis prints a greeting.\n```\nmore\n```";
        assert_eq!(fenced_block(reply), "# hi\nprint(\"Hello, Orket!\")\n");
    }

    #[test]
    fn an_unclosed_block_runs_to_the_end_of_the_reply() {
        assert_eq!(fenced_block("```\n- a\n- b\n\n"), "- a\n- b\n");
    }

    #[test]
    fn a_reply_without_a_fence_is_the_content_itself() {
        assert_eq!(fenced_block("  print('x')  \n"), "print('x')\n");
        assert_eq!(fenced_block("```python\n```"), "");
        assert_eq!(fenced_block(""), "");
    }

    #[test]
    fn a_fence_inside_a_line_does_not_close_the_block() {
        assert_eq!(
            fenced_block("```markdown\nRun `python3 hello.py` or ```x```\n```"),
            "Run `python3 hello.py` or ```x```\n"
        );
    }

    #[test]
    fn a_list_reply_becomes_one_dash_line_per_item() {
        let reply =
            r#"{ "items": [ "Greet by name", "- Add a --shout flag", "Say\ngoodbye", " " ] }"#;
        assert_eq!(
            list_content(reply).as_deref(),
            Some("- Greet by name\n- Add a --shout flag\n- Say goodbye\n")
        );
        assert_eq!(list_content("three ideas: a, b, c"), None);
        assert_eq!(list_content(r#"{"items": [1, 2]}"#), None);
    }

    #[test]
    fn the_list_schema_holds_the_count() {
        let schema = list_schema(3);
        assert_eq!(schema["properties"]["items"]["minItems"], 3);
        assert_eq!(schema["properties"]["items"]["maxItems"], 3);
    }

    #[test]
    fn languages_follow_the_extension() {
        assert_eq!(block_language("src/hello.py"), "python");
        assert_eq!(block_language("NOTES.MD"), "markdown");
        assert_eq!(block_language("Makefile"), "");
    }
}
