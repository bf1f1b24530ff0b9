//! A file's content from a free-text reply: what a model writes when asked for a file "in one
//! fenced block". Small models write code this way far more reliably than as a JSON string,
//! where the first unescaped quote ends the content.

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
    fn languages_follow_the_extension() {
        assert_eq!(block_language("src/hello.py"), "python");
        assert_eq!(block_language("NOTES.MD"), "markdown");
        assert_eq!(block_language("Makefile"), "");
    }
}
