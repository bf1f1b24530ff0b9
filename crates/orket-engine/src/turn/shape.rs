//! What each step of a turn may do, derived from where the turn is: the issue's status, the
//! seat's roles and tools, what the turn has done so far and how many steps are left. The same
//! rule gives the step's JSON schema (for models held to it) and judges the calls of models
//! that are not, so every provider is steered the same way.
//!
//! The moves a step may make are the transitions out of the turn's working status that can
//! make progress for its seat and that the gate allows its roles:
//! - a review decides: `done`, or back to `in_progress` with a comment saying why (while the
//!   issue's verification fails, `done` sends the work back with the failures: a move too);
//! - a developer hands over to `code_review` once the turn has written something; saying it
//!   cannot go on is narrowed as below.
//!
//! Statuses no seat works on (`ready_for_testing`) and the move to the status the issue already
//! has are never offered. The last step admits only the moves that end the turn, when there are
//! any.
//!
//! The room narrows as the turn goes, because a small model fills whatever room it is left:
//! - looking (the read-only tools, and commenting) is offered for a few steps only ([`LOOKS_REVIEW`],
//!   [`LOOKS_DEVELOPER`]), and not at all once a step was corrected: then the seat must act;
//! - a tool whose call failed or was repeated is withdrawn for the rest of the turn;
//! - when the issue names its `files`, `write_file` may write only those;
//! - a developer may give up (`blocked`, `waiting_for_developer`, with a wait reason) only on
//!   the last step, when an earlier turn of the issue failed and this one went wrong too (a
//!   small model offered `blocked` takes it, and a blocked issue waits for a person).

use orket_core::lifecycle::{allowed_targets, check_transition, TransitionRequest};
use orket_core::tools::Tool;
use orket_core::{CardKind, Status, ToolCall, WaitReason};
use orket_llm::{step_schema, StepChoices};
use serde_json::Value;

/// How many looking steps a review gets (the work is in its prompt already).
pub(crate) const LOOKS_REVIEW: u32 = 2;
/// How many looking steps a developer gets before it must write.
pub(crate) const LOOKS_DEVELOPER: u32 = 3;

/// Whether calling `tool` is looking (or talking) rather than acting: the read-only tools and
/// comments. Such steps are offered only for a while (see the module's notes).
pub(crate) fn is_look(tool: Tool) -> bool {
    tool.spec().read_only || tool == Tool::AddIssueComment
}

/// The fixed part of a turn's steps: who acts, from where, with which tools.
#[derive(Clone)]
pub(crate) struct Shape<'a> {
    /// The turn's issue.
    pub issue_id: &'a str,
    /// A review turn.
    pub review: bool,
    /// The acting role names (the gate's transition rules depend on them).
    pub roles: &'a [String],
    /// The tools the seat may call.
    pub offered: Vec<Tool>,
    /// The status the issue has while the turn works on it.
    pub from: Status,
    /// Earlier turns of the issue failed (its retry count).
    pub retried: bool,
    /// The files the issue names (`files`); empty: any path.
    pub files: &'a [String],
    /// The most characters of a text argument in one reply (see [`TEXT_CHARS_PER_TOKEN`]).
    pub max_text: Option<u32>,
    /// `write_file` names its path only; its content is asked for apart, as a fenced block
    /// (the model profile's `file_content: "block"`).
    pub content_apart: bool,
}

/// Characters of a file's content or a comment per token of a reply's budget: a text that
/// long still leaves the reply room to close its JSON (English runs 3–4 characters a token).
pub(crate) const TEXT_CHARS_PER_TOKEN: u32 = 2;

/// Where a turn is when a step begins.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepState {
    /// The step's number, from 1.
    pub n: u32,
    /// It is the turn's last step.
    pub last: bool,
    /// The turn has written or deleted a file.
    pub wrote: bool,
    /// A step of this turn was corrected.
    pub troubled: bool,
    /// Read-only calls this turn ran.
    pub looked: u32,
    /// Tools withdrawn for the rest of the turn (a call of theirs failed or was repeated).
    pub withdrawn: Vec<Tool>,
}

/// What one step may do.
pub(crate) struct Choices {
    /// The tools it may call.
    pub tools: Vec<Tool>,
    /// The statuses it may move the issue to.
    pub moves: Vec<Status>,
    /// The moves that need a comment saying why.
    pub explained: Vec<Status>,
}

impl Shape<'_> {
    /// What step `state` may do.
    pub fn choices(&self, state: &StepState) -> Choices {
        let moves = self.moves(state);
        let explained = if self.review {
            vec![Status::InProgress]
        } else {
            Vec::new()
        };
        let ending = state.last && !moves.is_empty();
        let looks = if self.review {
            LOOKS_REVIEW
        } else {
            LOOKS_DEVELOPER
        };
        let may_look = !state.troubled && state.looked < looks;
        let allowed = |tool: Tool| {
            if tool == Tool::UpdateIssueStatus {
                !moves.is_empty()
            } else if ending {
                false
            } else if is_look(tool) {
                may_look
            } else {
                true
            }
        };
        let mut tools: Vec<Tool> = self
            .offered
            .iter()
            .copied()
            .filter(|&t| allowed(t))
            .collect();
        let kept: Vec<Tool> = tools
            .iter()
            .copied()
            .filter(|t| !state.withdrawn.contains(t))
            .collect();
        if !kept.is_empty() {
            tools = kept;
        }
        if tools.is_empty() {
            // Nothing narrower is possible: the seat keeps what it was offered.
            tools = self
                .offered
                .iter()
                .copied()
                .filter(|&t| t != Tool::UpdateIssueStatus)
                .collect();
        }
        Choices {
            tools,
            moves,
            explained,
        }
    }

    /// The step's schema: exactly one call of what it may do.
    pub fn schema(&self, state: &StepState) -> Value {
        let choices = self.choices(state);
        step_schema(&StepChoices {
            tools: &choices.tools,
            moves: &choices.moves,
            explained: &choices.explained,
            paths: self.files,
            max_text: self.max_text,
            content_apart: self.content_apart,
        })
    }

    /// Whether step `state` may make `call`; `Err` says why not. Only the turn's own issue is
    /// shaped: a lead moving another issue is left to the gate.
    pub fn admits(&self, state: &StepState, call: &ToolCall) -> Result<(), String> {
        let choices = self.choices(state);
        let Some(tool) = Tool::from_name(&call.name) else {
            // Unknown tools are the gate's to refuse, with its code.
            return Ok(());
        };
        if tool == Tool::UpdateIssueStatus && call.issue_or(self.issue_id) == self.issue_id {
            let Some(to) = call.status_arg() else {
                return Ok(()); // the gate names the bad status
            };
            if !choices.moves.contains(&to) {
                return Err(format!(
                    "moving {} to {to} is not a move that makes progress now",
                    self.issue_id
                ));
            }
            let said_why = call
                .str_arg("comment")
                .is_some_and(|c| !c.trim().is_empty());
            if choices.explained.contains(&to) && !said_why {
                return Err(format!(
                    "moving {} back to {to} needs a `comment` saying what is missing",
                    self.issue_id
                ));
            }
            return Ok(());
        }
        if !choices.tools.contains(&tool) && self.offered.contains(&tool) {
            let offered: Vec<&str> = choices.tools.iter().map(|t| t.name()).collect();
            return Err(format!(
                "{tool} is not offered at this step (offered: {})",
                offered.join(", ")
            ));
        }
        if tool == Tool::WriteFile && !self.files.is_empty() {
            let path = call.str_arg("path").unwrap_or_default();
            let path = path.trim().trim_start_matches("./");
            if !self.files.iter().any(|f| f == path) {
                return Err(format!(
                    "{} writes only {}",
                    self.issue_id,
                    self.files.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The statuses step `state` may move the issue to.
    fn moves(&self, state: &StepState) -> Vec<Status> {
        let wanted: Vec<Status> = if self.review {
            vec![Status::Done, Status::InProgress]
        } else {
            let mut moves = Vec::new();
            if state.wrote {
                moves.push(Status::CodeReview);
            }
            if state.troubled && self.retried && state.last {
                moves.extend([Status::Blocked, Status::WaitingForDeveloper]);
            }
            moves
        };
        wanted
            .into_iter()
            .filter(|&to| self.gate_allows(to))
            .collect()
    }

    /// The gate's transition rule for these roles, from the working status (a move that needs
    /// a wait reason is judged with one: the schema requires it).
    fn gate_allows(&self, to: Status) -> bool {
        allowed_targets(CardKind::Issue, self.from).contains(&to)
            && check_transition(&TransitionRequest {
                kind: CardKind::Issue,
                card_id: self.issue_id,
                from: self.from,
                to,
                wait_reason: to.needs_wait_reason().then_some(WaitReason::Input),
                roles: self.roles,
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn developer(roles: &[String]) -> Shape<'_> {
        Shape {
            issue_id: "DEMO-1",
            review: false,
            roles,
            offered: vec![
                Tool::WriteFile,
                Tool::ReadFile,
                Tool::ListDirectory,
                Tool::UpdateIssueStatus,
            ],
            from: Status::InProgress,
            retried: false,
            files: &[],
            max_text: None,
            content_apart: false,
        }
    }

    fn state(n: u32, last: bool, wrote: bool, troubled: bool) -> StepState {
        StepState {
            n,
            last,
            wrote,
            troubled,
            ..StepState::default()
        }
    }

    fn status(to: &str) -> ToolCall {
        ToolCall::new("update_issue_status", json!({"status": to}))
    }

    #[test]
    fn a_developer_hands_over_only_after_writing() {
        let roles = vec!["coder".to_string()];
        let shape = developer(&roles);
        let fresh = shape.choices(&state(1, false, false, false));
        assert!(fresh.moves.is_empty());
        assert!(!fresh.tools.contains(&Tool::UpdateIssueStatus));
        assert!(shape
            .admits(&state(1, false, false, false), &status("code_review"))
            .is_err());
        let written = shape.choices(&state(2, false, true, false));
        assert_eq!(written.moves, [Status::CodeReview]);
        assert!(shape
            .admits(&state(2, false, true, false), &status("code_review"))
            .is_ok());
        // Never to where it is, nor to a status no seat works on.
        for to in ["in_progress", "ready_for_testing", "done", "canceled"] {
            assert!(
                shape
                    .admits(&state(2, false, true, false), &status(to))
                    .is_err(),
                "{to}"
            );
        }
    }

    #[test]
    fn a_developer_may_give_up_only_at_the_last_step_of_a_retried_turn_gone_wrong() {
        let roles = vec!["coder".to_string()];
        let shape = developer(&roles);
        assert!(shape
            .choices(&state(1, false, false, false))
            .moves
            .is_empty());
        assert!(shape
            .choices(&state(2, false, false, true))
            .moves
            .is_empty());
        let retried = Shape {
            retried: true,
            ..developer(&roles)
        };
        assert!(retried
            .choices(&state(1, false, false, false))
            .moves
            .is_empty());
        assert!(retried
            .choices(&state(2, false, false, true))
            .moves
            .is_empty());
        assert_eq!(
            retried.choices(&state(6, true, false, true)).moves,
            [Status::Blocked, Status::WaitingForDeveloper]
        );
    }

    #[test]
    fn looking_is_offered_for_a_few_steps_and_not_after_a_correction() {
        let roles = vec!["coder".to_string()];
        let shape = developer(&roles);
        let looked = |looked: u32, troubled: bool| StepState {
            looked,
            ..state(3, false, false, troubled)
        };
        assert!(shape
            .choices(&looked(1, false))
            .tools
            .contains(&Tool::ReadFile));
        assert_eq!(
            shape.choices(&looked(LOOKS_DEVELOPER, false)).tools,
            [Tool::WriteFile]
        );
        assert_eq!(shape.choices(&looked(0, true)).tools, [Tool::WriteFile]);
        let read = ToolCall::new("read_file", json!({"path": "hello.py"}));
        let refused = shape.admits(&looked(0, true), &read).unwrap_err();
        assert_eq!(
            refused,
            "read_file is not offered at this step (offered: write_file)"
        );
        // A review looks once, then decides.
        let review_roles = vec!["integrity_guard".to_string()];
        let review = Shape {
            review: true,
            from: Status::CodeReview,
            ..developer(&review_roles)
        };
        let after_look = review.choices(&looked(LOOKS_REVIEW, false));
        assert_eq!(after_look.tools, [Tool::WriteFile, Tool::UpdateIssueStatus]);
    }

    #[test]
    fn a_repeated_or_failed_tool_is_withdrawn_unless_nothing_else_is_left() {
        let roles = vec!["coder".to_string()];
        let shape = developer(&roles);
        let written = StepState {
            withdrawn: vec![Tool::WriteFile],
            ..state(3, false, true, true)
        };
        assert_eq!(shape.choices(&written).tools, [Tool::UpdateIssueStatus]);
        let nothing_else = StepState {
            withdrawn: vec![Tool::WriteFile],
            ..state(3, false, false, true)
        };
        assert_eq!(shape.choices(&nothing_else).tools, [Tool::WriteFile]);
    }

    #[test]
    fn an_issue_that_names_its_files_writes_only_those() {
        let roles = vec!["coder".to_string()];
        let files = vec!["NOTES.md".to_string()];
        let shape = Shape {
            files: &files,
            ..developer(&roles)
        };
        let st = state(1, false, false, false);
        let notes = ToolCall::new("write_file", json!({"path": "NOTES.md", "content": "x"}));
        let other = ToolCall::new("write_file", json!({"path": "hello.py", "content": "x"}));
        assert!(shape.admits(&st, &notes).is_ok());
        assert_eq!(
            shape.admits(&st, &other).unwrap_err(),
            "DEMO-1 writes only NOTES.md"
        );
        let schema = shape.schema(&st);
        let text = schema.to_string();
        assert!(text.contains(r#""enum":["NOTES.md"]"#), "{text}");
    }

    #[test]
    fn the_last_step_only_moves_when_a_move_is_possible() {
        let roles = vec!["coder".to_string()];
        let shape = developer(&roles);
        let last = shape.choices(&state(6, true, true, false));
        assert_eq!(last.tools, [Tool::UpdateIssueStatus]);
        let write = ToolCall::new("write_file", json!({"path": "a", "content": "b"}));
        assert!(shape.admits(&state(6, true, true, false), &write).is_err());
        // Nothing written, nothing wrong: no move exists, so the step keeps its tools.
        let stuck = shape.choices(&state(6, true, false, false));
        assert_eq!(
            stuck.tools,
            [Tool::WriteFile, Tool::ReadFile, Tool::ListDirectory]
        );
    }

    #[test]
    fn a_review_decides_and_explains_a_send_back() {
        let roles = vec!["integrity_guard".to_string()];
        let shape = Shape {
            review: true,
            from: Status::CodeReview,
            ..developer(&roles)
        };
        let first = shape.choices(&state(1, false, false, false));
        assert_eq!(first.moves, [Status::Done, Status::InProgress]);
        assert_eq!(first.explained, [Status::InProgress]);
        let st = state(1, false, false, false);
        assert!(shape.admits(&st, &status("done")).is_ok());
        assert!(shape.admits(&st, &status("code_review")).is_err());
        assert!(shape.admits(&st, &status("in_progress")).is_err());
        let back = ToolCall::new(
            "update_issue_status",
            json!({"status": "in_progress", "comment": "prints nothing"}),
        );
        assert!(shape.admits(&st, &back).is_ok());
    }

    #[test]
    fn a_coder_cannot_be_offered_done() {
        let roles = vec!["coder".to_string()];
        let shape = Shape {
            review: true,
            from: Status::CodeReview,
            ..developer(&roles)
        };
        // A review by a seat without integrity_guard: the gate refuses done, so it is not offered.
        assert_eq!(
            shape.choices(&state(1, false, false, false)).moves,
            [Status::InProgress]
        );
    }
}
