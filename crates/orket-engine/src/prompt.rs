//! The prompt compiler: the system message of a seat's turn (its sections in a fixed order)
//! and the user message describing the issue.

use orket_core::assets::{Dialect, Epic, FileShape, Organization, Role};
use orket_core::lifecycle::allowed_targets;
use orket_core::tools::Tool;
use orket_core::turn::ChatMessage;
use orket_core::CardKind;
use orket_store::{Comment, IssueRecord, MemoryRecord};
use std::fmt::Write;

/// The section headings of the system message, in order. `iDESIGN CONSTRAINTS` appears only
/// when the epic has iDesign on; `SYNTAX DIALECT` only for a model not held to the step's
/// schema; `PROJECT CONTEXT (PAST DECISIONS)` only with memories.
pub const SECTIONS: [&str; 9] = [
    "IDENTITY",
    "RESPONSIBILITIES",
    "iDESIGN CONSTRAINTS",
    "CARD SYSTEM PROTOCOL",
    "TOOLS",
    "SYNTAX DIALECT",
    "CONSTRAINTS",
    "GUARDRAIL",
    "PROJECT CONTEXT (PAST DECISIONS)",
];

/// Everything one turn's prompt is made of.
#[derive(Debug, Clone, Copy)]
pub struct PromptInput<'a> {
    /// The organization (name, ethos).
    pub org: &'a Organization,
    /// The acting roles, the primary one first.
    pub roles: &'a [Role],
    /// The seat's display name.
    pub seat: &'a str,
    /// The dialect of the model family.
    pub dialect: &'a Dialect,
    /// The epic the issue belongs to.
    pub epic: &'a Epic,
    /// The issue as stored.
    pub issue: &'a IssueRecord,
    /// Its most recent comments, oldest first.
    pub comments: &'a [Comment],
    /// Remembered decisions relevant to the issue.
    pub memory: &'a [MemoryRecord],
    /// The tools the turn may call.
    pub tools: &'a [Tool],
    /// True for a review turn.
    pub review: bool,
    /// The verification result shown to the reviewer, if any.
    pub verification: Option<&'a str>,
    /// What the developer wrote, shown to the reviewer, if known.
    pub work: Option<&'a str>,
    /// The files the issue names (`files`).
    pub files: &'a [String],
    /// The model is held to each step's schema (constrained decoding): the reply's shape and
    /// the arguments' schemas need not be spelled out, and no example is shown.
    pub constrained: bool,
}

/// The two messages a turn starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledPrompt {
    /// The system message.
    pub system: String,
    /// The user message (the issue).
    pub user: String,
    /// The issue's own words, for a call that asks for a file's content apart (see
    /// [`content_messages`]).
    pub brief: String,
}

/// The system message of a call that asks for a file's content apart: no tools, no JSON,
/// only the file (see the model profile's `file_content: "block"`).
const CONTENT_SYSTEM: &str = "You are a software engineer. You write one file of a small project. Reply with the file's complete content in one ``` block, nothing else.";
/// The system message of a call that asks for a list file's items apart.
const LIST_SYSTEM: &str = "You are a software engineer. You write one file of a small project.";

/// The messages of a call that asks for the content of the file at `path`: the issue's own
/// words (`brief`) and the ask, in a conversation of their own (a small model asked in the
/// turn's conversation answers with another tool call). A list file is asked for as its items
/// (the call's reply is held to `orket_llm::list_schema`); any other file as one fenced block.
pub fn content_messages(brief: &str, path: &str, shape: Option<FileShape>) -> Vec<ChatMessage> {
    match shape {
        Some(FileShape::List { items }) => vec![
            ChatMessage::system(LIST_SYSTEM),
            ChatMessage::user(format!(
                "{brief}Reply with {{\"items\": [...]}}: the {items} items of {path}'s list."
            )),
        ],
        None => {
            let language = orket_llm::block_language(path);
            vec![
                ChatMessage::system(CONTENT_SYSTEM),
                ChatMessage::user(format!(
                    "{brief}Reply with the complete content of {path} in one ```{language} block."
                )),
            ]
        }
    }
}

fn section(out: &mut String, title: &str) {
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "### {title}");
}

fn bullets(out: &mut String, items: impl IntoIterator<Item = impl AsRef<str>>) {
    for item in items {
        let _ = writeln!(out, "- {}", item.as_ref());
    }
}

/// Compiles the system and user messages of a turn.
pub fn compile(input: &PromptInput<'_>) -> CompiledPrompt {
    CompiledPrompt {
        system: system_message(input),
        user: user_message(input),
        brief: brief(input),
    }
}

fn system_message(input: &PromptInput<'_>) -> String {
    let mut out = String::new();
    let primary = input.roles.first();
    let role_names: Vec<&str> = input.roles.iter().map(|r| r.name.as_str()).collect();

    section(&mut out, "IDENTITY");
    let _ = writeln!(
        out,
        "You are the {} seat of {} acting as {}.",
        input.seat,
        input.org.name,
        role_names.join(" + ")
    );
    if let Some(role) = primary {
        if !role.description.is_empty() {
            let _ = writeln!(out, "{}", role.description);
        }
        if !role.intent.is_empty() {
            let _ = writeln!(out, "INTENT: {}", role.intent);
        }
    }
    if !input.org.ethos.is_empty() {
        let _ = writeln!(out, "ETHOS: {}", input.org.ethos);
    }

    section(&mut out, "RESPONSIBILITIES");
    bullets(
        &mut out,
        input.roles.iter().flat_map(|r| r.responsibilities.iter()),
    );

    if input.epic.idesign {
        section(&mut out, "iDESIGN CONSTRAINTS");
        bullets(
            &mut out,
            [
                "Source files never sit at the workspace root.",
                "The first folder (after an optional src/ or product/) is one of: managers, engines, accessors, utils, controllers, tests, schemas, models, infrastructure, services, agent_output, verification.",
                "Files under managers/, engines/, accessors/ carry that word in their name; their classes end in Manager, Engine, Accessor.",
                "Accessors never import managers or engines; engines never import managers.",
            ],
        );
    }

    section(&mut out, "CARD SYSTEM PROTOCOL");
    let status = input.issue.status;
    let reachable = allowed_targets(CardKind::Issue, status);
    let _ = writeln!(
        out,
        "You work on issue {} (status {status}). From {status} it may move to: {}.",
        input.issue.id,
        if reachable.is_empty() {
            "nothing (final)".to_string()
        } else {
            orket_core::Status::names(reachable)
        }
    );
    bullets(
        &mut out,
        [
            "A turn is a few steps. Each reply is one step: exactly one tool call.",
            "What a call returns comes back to you in the next message; the turn ends when you move the issue.",
        ],
    );
    if input.review {
        bullets(
            &mut out,
            [
                "This is a review turn: check the work shown to you, then decide.",
                "Accept with update_issue_status status \"done\"; send it back with status \"in_progress\" and a comment saying what is missing.",
            ],
        );
    } else {
        bullets(
            &mut out,
            [
                "Do the work with the tools: write the files the issue names with write_file.",
                "When the work is written, move the issue to code_review with update_issue_status.",
                "If you cannot go on, move it to blocked or waiting_for_developer with a wait_reason (resource, dependency, review, input, system).",
                "Only the integrity_guard may move an issue to done.",
            ],
        );
    }

    section(&mut out, "TOOLS");
    if input.constrained {
        let _ = writeln!(out, "Available (one call per reply):");
        for tool in input.tools {
            let spec = tool.spec();
            let _ = writeln!(
                out,
                "- {}({}): {}",
                spec.name,
                spec.arg_names().join(", "),
                spec.description
            );
        }
    } else {
        let _ = writeln!(
            out,
            "Reply with exactly one JSON object {{\"tool\": NAME, \"args\": {{...}}}} per step. Available:"
        );
        for tool in input.tools {
            let spec = tool.spec();
            let _ = writeln!(
                out,
                "- {}: {} args schema: {}",
                spec.name,
                spec.description,
                spec.args_schema()
            );
        }
        section(&mut out, "SYNTAX DIALECT");
        let _ = writeln!(
            out,
            "Model family {}. The shape of a reply (not an answer):\n{}",
            input.dialect.model_family, input.dialect.dsl_format
        );
    }

    section(&mut out, "CONSTRAINTS");
    bullets(
        &mut out,
        input
            .roles
            .iter()
            .flat_map(|r| r.constraints.iter())
            .chain(input.dialect.constraints.iter()),
    );

    section(&mut out, "GUARDRAIL");
    let _ = writeln!(out, "{}", input.dialect.hallucination_guard);

    if !input.memory.is_empty() {
        section(&mut out, "PROJECT CONTEXT (PAST DECISIONS)");
        bullets(&mut out, input.memory.iter().map(|m| m.content.as_str()));
    }
    out
}

fn priority_word(p: f64) -> &'static str {
    if p >= 3.0 {
        "High"
    } else if p >= 2.0 {
        "Medium"
    } else {
        "Low"
    }
}

fn user_message(input: &PromptInput<'_>) -> String {
    let issue = input.issue;
    let mut out = String::new();
    // The issue's own words come first and last: a small model acts on what it reads last.
    let _ = writeln!(out, "TASK {}: {}", issue.id, issue.name);
    let field = |out: &mut String, label: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            let _ = writeln!(out, "{label}:\n{}", v.trim_end());
        }
    };
    field(&mut out, "DESCRIPTION", Some(issue.description.as_str()));
    field(&mut out, "REQUIREMENTS", issue.requirements.as_deref());
    let files = input.files.join(", ");
    field(&mut out, "FILES", Some(files.as_str()));
    field(&mut out, "NOTE", issue.note.as_deref());
    let _ = writeln!(
        out,
        "TYPE: {}  PRIORITY: {} ({})  STATUS: {}",
        issue.issue_type,
        priority_word(issue.priority),
        issue.priority,
        issue.status
    );
    field(&mut out, "EPIC", Some(input.epic.card.description.as_str()));
    field(
        &mut out,
        "EPIC REQUIREMENTS",
        input.epic.requirements.as_deref(),
    );
    field(&mut out, "WORK TO REVIEW", input.work);
    field(&mut out, "VERIFICATION", input.verification);
    if !input.comments.is_empty() {
        let _ = writeln!(out, "RECENT COMMENTS:");
        for c in input.comments {
            let _ = writeln!(out, "- [{}] {}", c.author, c.content.trim_end());
        }
    }
    let ask = if input.review {
        "Decide whether the work does what the task asks.".to_string()
    } else if input.files.is_empty() {
        "Do what the task asks.".to_string()
    } else {
        format!("Do what the task asks: write {files}.")
    };
    let _ = write!(
        out,
        "YOUR TASK ({}): {} — {}\n{ask} Reply with one tool call.",
        issue.id,
        issue.name,
        first_sentence(&issue.description)
    );
    out
}

/// The issue's own words for a file's content: what it asks and requires, its note, the
/// epic, and its recent comments (a review's reasons for sending the work back).
fn brief(input: &PromptInput<'_>) -> String {
    let issue = input.issue;
    let mut out = String::new();
    let line = |out: &mut String, label: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            let _ = writeln!(out, "{label}: {}", v.trim());
        }
    };
    line(&mut out, "TASK", Some(issue.description.as_str()));
    line(&mut out, "REQUIREMENTS", issue.requirements.as_deref());
    line(&mut out, "NOTE", issue.note.as_deref());
    line(&mut out, "EPIC", Some(input.epic.card.description.as_str()));
    for c in input.comments {
        line(&mut out, "COMMENT", Some(c.content.as_str()));
    }
    out
}

/// The first sentence of `text` (up to its first `.`, `!` or `?` followed by a space or the
/// end), or all of it.
fn first_sentence(text: &str) -> &str {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, '.' | '!' | '?')
                && text[i + c.len_utf8()..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map_or(text.len(), |(i, c)| i + c.len_utf8());
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use orket_core::assets::AssetTree;
    use orket_core::Status;
    use std::path::PathBuf;

    fn demo() -> AssetTree {
        AssetTree::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo"))
    }

    fn comment(author: &str, content: &str) -> Comment {
        Comment {
            id: 1,
            build_id: "build-hello_cli".to_string(),
            issue_id: "DEMO-1".to_string(),
            author: author.to_string(),
            content: content.to_string(),
            created_at: "2026-11-22T04:16:22.123Z".to_string(),
        }
    }

    fn memory(content: &str) -> MemoryRecord {
        MemoryRecord {
            id: 1,
            content: content.to_string(),
            role: None,
            issue_id: None,
            run_id: None,
            created_at: "2026-11-22T04:16:22.123Z".to_string(),
            score: 1,
        }
    }

    #[test]
    fn sections_in_order_with_issue_details() {
        let tree = demo();
        let org = tree.organization().unwrap();
        let epic = tree.load_epic("hello_cli", "core").unwrap();
        let coder = tree.load_role("coder", "core", None).unwrap();
        let dialect = tree.load_dialect("generic", "core").unwrap();
        let mut issue =
            IssueRecord::new("build-hello_cli", "DEMO-1", "Write hello.py", "developer");
        issue.status = Status::InProgress;
        issue.description = "Create hello.py".to_string();
        issue.requirements = Some("prints Hello".to_string());
        issue.note = Some("keep it short".to_string());
        let comments = [comment("integrity_guard", "Missing newline")];
        let memories = [memory("We decided to use Python 3 only.")];
        let tools: Vec<Tool> = coder
            .tools
            .iter()
            .filter_map(|t| Tool::from_name(t))
            .collect();
        let roles = [coder];
        let input = PromptInput {
            org: &org,
            roles: &roles,
            seat: "Developer",
            dialect: &dialect,
            epic: &epic,
            issue: &issue,
            comments: &comments,
            memory: &memories,
            tools: &tools,
            review: false,
            verification: None,
            work: None,
            files: &[],
            constrained: false,
        };
        let prompt = compile(&input);
        let positions: Vec<usize> = SECTIONS
            .iter()
            .filter(|s| **s != "iDESIGN CONSTRAINTS")
            .map(|s| {
                prompt
                    .system
                    .find(&format!("### {s}\n"))
                    .unwrap_or_else(|| panic!("{s} missing"))
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        assert!(!prompt.system.contains("iDESIGN CONSTRAINTS"));
        assert!(prompt.system.contains("From in_progress it may move to: blocked, waiting_for_developer, ready_for_testing, code_review, canceled."));
        assert!(prompt.system.contains("- write_file: "));
        assert!(prompt.system.contains("\"content\""));
        assert!(prompt.system.contains("We decided to use Python 3 only."));
        assert!(
            prompt.user.starts_with("TASK DEMO-1: Write hello.py\n"),
            "{}",
            prompt.user
        );
        assert!(
            prompt.user.ends_with(
                "YOUR TASK (DEMO-1): Write hello.py — Create hello.py\nDo what the task asks. Reply with one tool call."
            ),
            "{}",
            prompt.user
        );
        for part in [
            "PRIORITY: Medium (2)",
            "DESCRIPTION:\nCreate hello.py",
            "REQUIREMENTS:\nprints Hello",
            "NOTE:\nkeep it short",
            "RECENT COMMENTS:\n- [integrity_guard] Missing newline",
        ] {
            assert!(
                prompt.user.contains(part),
                "missing {part:?} in\n{}",
                prompt.user
            );
        }

        let idesign_epic = Epic {
            idesign: true,
            ..epic.clone()
        };
        let with_idesign = compile(&PromptInput {
            epic: &idesign_epic,
            memory: &[],
            ..input
        });
        let i = with_idesign.system.find("### iDESIGN CONSTRAINTS").unwrap();
        assert!(with_idesign.system.find("### RESPONSIBILITIES").unwrap() < i);
        assert!(
            i < with_idesign
                .system
                .find("### CARD SYSTEM PROTOCOL")
                .unwrap()
        );
        assert!(!with_idesign.system.contains("PROJECT CONTEXT"));
    }

    #[test]
    fn a_constrained_model_gets_no_reply_shape_and_a_review_gets_the_work() {
        let tree = demo();
        let org = tree.organization().unwrap();
        let epic = tree.load_epic("hello_cli", "core").unwrap();
        let guard = tree.load_role("integrity_guard", "core", None).unwrap();
        let dialect = tree.load_dialect("generic", "core").unwrap();
        let mut issue =
            IssueRecord::new("build-hello_cli", "DEMO-1", "Write hello.py", "developer");
        issue.status = Status::CodeReview;
        issue.description = "Create hello.py that prints Hello, Orket! when run.".to_string();
        let tools = [Tool::ReadFile, Tool::UpdateIssueStatus];
        let roles = [guard];
        let prompt = compile(&PromptInput {
            org: &org,
            roles: &roles,
            seat: "Integrity Guard",
            dialect: &dialect,
            epic: &epic,
            issue: &issue,
            comments: &[],
            memory: &[],
            tools: &tools,
            review: true,
            verification: Some("Verification of verification/test_hello.py: PASSED"),
            work: Some("--- hello.py ---\nprint(\"Hello, Orket!\")"),
            files: &[],
            constrained: true,
        });
        assert!(
            !prompt.system.contains("### SYNTAX DIALECT"),
            "{}",
            prompt.system
        );
        assert!(!prompt.system.contains(&dialect.dsl_format));
        assert!(prompt
            .system
            .contains("- update_issue_status(status, issue_id?, wait_reason?, comment?): "));
        assert!(prompt
            .user
            .contains("WORK TO REVIEW:\n--- hello.py ---\nprint(\"Hello, Orket!\")"));
        assert!(prompt.user.contains("VERIFICATION:\nVerification of"));
        assert!(prompt.user.ends_with(
            "Decide whether the work does what the task asks. Reply with one tool call."
        ));
    }
}
