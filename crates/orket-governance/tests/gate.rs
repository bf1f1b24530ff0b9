//! The gate: one test per refusal code, plus the cases a user would notice.

use orket_core::{Status, ToolCall};
use orket_governance::confine::Confinement;
use orket_governance::gate::{
    check_call, AllowedTools, Decision, GateContext, Refusal, MAX_CONTENT_BYTES,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs;
use tempfile::TempDir;

const OWN: &str = "ISSUE-0001";
const OTHER: &str = "ISSUE-0002";

struct Fx {
    _dir: TempDir,
    _outside: TempDir,
    ws: Confinement,
    statuses: HashMap<String, Status>,
    roles: Vec<String>,
    tools: Vec<String>,
    approval: Vec<String>,
    idesign: bool,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Fx {
    fn new() -> Fx {
        let dir = TempDir::new().unwrap();
        let outside = TempDir::new().unwrap();
        let ws = Confinement::workspace(&dir.path().join("ws"), &[]).unwrap();
        Fx {
            _dir: dir,
            _outside: outside,
            ws,
            statuses: HashMap::from([
                (OWN.to_string(), Status::InProgress),
                (OTHER.to_string(), Status::InProgress),
            ]),
            roles: strings(&["coder"]),
            tools: Vec::new(),
            approval: Vec::new(),
            idesign: false,
        }
    }

    fn with_status(mut self, id: &str, status: Status) -> Fx {
        self.statuses.insert(id.to_string(), status);
        self
    }

    fn with_roles(mut self, roles: &[&str]) -> Fx {
        self.roles = strings(roles);
        self
    }

    fn check(&self, tool: &str, args: Value) -> Result<Decision, Refusal> {
        let lookup = |id: &str| self.statuses.get(id).copied();
        let ctx = GateContext {
            issue_id: OWN,
            roles: &self.roles,
            allowed_tools: &AllowedTools::from_names(&self.tools),
            workspace: &self.ws,
            idesign: self.idesign,
            approval_required: &self.approval,
            status_of: &lookup,
        };
        check_call(&ctx, &ToolCall::new(tool, args)).map(|checked| {
            assert_eq!(
                checked.tool.name(),
                tool,
                "the gate names the tool it checked"
            );
            checked.decision
        })
    }

    fn outside(&self) -> String {
        self._outside.path().join("x.txt").display().to_string()
    }
}

/// Asserts the call is refused with `code` and returns the refusal's message.
#[track_caller]
fn refused(result: Result<Decision, Refusal>, code: &str) -> String {
    match result {
        Ok(d) => panic!("expected {code}, got {d:?}"),
        Err(r) => {
            assert_eq!(r.code, code, "{r}");
            r.message
        }
    }
}

#[track_caller]
fn allowed(result: Result<Decision, Refusal>) {
    match result {
        Ok(Decision::Allow) => {}
        other => panic!("expected Allow, got {other:?}"),
    }
}

#[test]
fn refusal_displays_and_serializes_code_and_message() {
    let r = Refusal::new(
        orket_governance::RefusalCode::PathEscape,
        "path '../x' is refused",
    );
    assert_eq!(r.to_string(), "PATH_ESCAPE: path '../x' is refused");
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"code": "PATH_ESCAPE", "message": "path '../x' is refused"})
    );
}

#[test]
fn unknown_tool_is_refused() {
    let fx = Fx::new();
    let msg = refused(fx.check("run_shell", json!({"cmd": "ls"})), "UNKNOWN_TOOL");
    assert!(msg.contains("run_shell"), "{msg}");
    assert!(msg.contains("write_file"), "lists the known tools: {msg}");
}

#[test]
fn tool_outside_the_roles_tools_is_refused() {
    let mut fx = Fx::new().with_roles(&["coder", "reviewer"]);
    fx.tools = strings(&["read_file", "write_file"]);
    let msg = refused(
        fx.check("delete_file", json!({"path": "a.txt", "confirm": true})),
        "ROLE_TOOL",
    );
    assert!(msg.contains("delete_file"), "{msg}");
    assert!(msg.contains("coder, reviewer"), "{msg}");
    allowed(fx.check("read_file", json!({"path": "a.txt"})));
    // The role check comes before argument checks.
    refused(fx.check("create_issue", json!({})), "ROLE_TOOL");
    // An empty list means no role restriction.
    fx.tools.clear();
    allowed(fx.check("delete_file", json!({"path": "a.txt", "confirm": true})));
}

#[test]
fn missing_or_ill_typed_arguments_are_bad_args() {
    let fx = Fx::new();
    let msg = refused(fx.check("write_file", json!({"path": "a.txt"})), "BAD_ARGS");
    assert!(
        msg.contains("write_file") && msg.contains("'content'"),
        "{msg}"
    );
    let msg = refused(fx.check("read_file", json!({"path": 7})), "BAD_ARGS");
    assert!(msg.contains("'path'") && msg.contains("a number"), "{msg}");
    let msg = refused(fx.check("update_issue_status", json!({})), "BAD_ARGS");
    assert!(msg.contains("'status'"), "{msg}");
    let msg = refused(fx.check("read_file", json!({"path": ""})), "BAD_ARGS");
    assert!(msg.contains("empty"), "{msg}");
    let msg = refused(
        fx.check("report_credits", json!({"amount": -3})),
        "BAD_ARGS",
    );
    assert!(msg.contains("'amount'"), "{msg}");
    refused(
        fx.check(
            "create_issue",
            json!({"seat": "dev", "summary": "Add login", "depends_on": 5}),
        ),
        "BAD_ARGS",
    );
    let msg = refused(
        fx.check("create_issue", json!({"summary": "Add login"})),
        "BAD_ARGS",
    );
    assert!(msg.contains("'seat'"), "{msg}");
    allowed(fx.check("report_credits", json!({"amount": "2.5"})));
    allowed(fx.check("list_directory", json!({})));
}

#[test]
fn write_with_parent_components_is_a_path_escape() {
    let fx = Fx::new();
    let msg = refused(
        fx.check("write_file", json!({"path": "../evil.py", "content": "x"})),
        "PATH_ESCAPE",
    );
    assert!(
        msg.contains("write_file") && msg.contains("../evil.py"),
        "{msg}"
    );
    refused(
        fx.check("read_file", json!({"path": "src/../../etc/passwd"})),
        "PATH_ESCAPE",
    );
}

#[test]
fn absolute_paths_outside_are_refused_and_inside_allowed() {
    let fx = Fx::new();
    let outside = fx.outside();
    let msg = refused(
        fx.check("write_file", json!({"path": outside, "content": "x"})),
        "PATH_ESCAPE",
    );
    assert!(msg.contains(&outside), "{msg}");
    refused(
        fx.check("read_file", json!({"path": "/etc/passwd"})),
        "PATH_ESCAPE",
    );
    let inside = fx.ws.root().join("src/utils/a.py").display().to_string();
    allowed(fx.check("write_file", json!({"path": inside, "content": "x"})));
    allowed(fx.check("list_directory", json!({"path": fx.ws.root()})));
}

#[cfg(unix)]
#[test]
fn symlinks_escaping_the_workspace_are_refused() {
    let fx = Fx::new();
    let outside_dir = fx._outside.path();
    fs::write(outside_dir.join("x.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(outside_dir.join("x.txt"), fx.ws.root().join("link.txt")).unwrap();
    std::os::unix::fs::symlink(outside_dir, fx.ws.root().join("linkdir")).unwrap();
    let msg = refused(
        fx.check("read_file", json!({"path": "link.txt"})),
        "PATH_ESCAPE",
    );
    assert!(msg.contains("leads through a link to outside"), "{msg}");
    let outside = outside_dir.display().to_string();
    assert!(
        !msg.contains(&outside),
        "where the link leads is not told: {msg}"
    );
    refused(
        fx.check(
            "write_file",
            json!({"path": "link.txt", "content": "pwned"}),
        ),
        "PATH_ESCAPE",
    );
    refused(
        fx.check(
            "write_file",
            json!({"path": "linkdir/new.txt", "content": "x"}),
        ),
        "PATH_ESCAPE",
    );
    refused(
        fx.check("list_directory", json!({"path": "linkdir"})),
        "PATH_ESCAPE",
    );
    assert_eq!(
        fs::read_to_string(outside_dir.join("x.txt")).unwrap(),
        "outside"
    );
}

#[test]
fn reads_may_use_references_writes_may_not() {
    let dir = TempDir::new().unwrap();
    let reference = TempDir::new().unwrap();
    fs::write(reference.path().join("guide.md"), "guide").unwrap();
    let mut fx = Fx::new();
    fx.ws =
        Confinement::workspace(&dir.path().join("ws"), &[reference.path().to_path_buf()]).unwrap();
    let guide = reference.path().join("guide.md").display().to_string();
    allowed(fx.check("read_file", json!({"path": guide})));
    let msg = refused(
        fx.check("write_file", json!({"path": guide, "content": "x"})),
        "PATH_ESCAPE",
    );
    assert!(msg.contains("guide.md"), "{msg}");
    refused(
        fx.check("delete_file", json!({"path": guide, "confirm": true})),
        "PATH_ESCAPE",
    );
}

#[test]
fn protected_paths_are_refused_for_writes() {
    let fx = Fx::new();
    for path in [
        ".git/config",
        ".env",
        "db_password.txt",
        "verification/test_x.py",
    ] {
        let msg = refused(
            fx.check("write_file", json!({"path": path, "content": "x"})),
            "PATH_PROTECTED",
        );
        assert!(msg.contains("write_file") && msg.contains(path), "{msg}");
        refused(
            fx.check("delete_file", json!({"path": path, "confirm": true})),
            "PATH_PROTECTED",
        );
    }
    allowed(fx.check("read_file", json!({"path": "verification/test_x.py"})));
}

#[test]
fn content_over_one_megabyte_is_refused() {
    let fx = Fx::new();
    let big = "a".repeat(MAX_CONTENT_BYTES + 1);
    let msg = refused(
        fx.check("write_file", json!({"path": "big.txt", "content": big})),
        "CONTENT_TOO_LARGE",
    );
    assert!(msg.contains("1048577"), "{msg}");
    assert!(msg.contains("big.txt"), "{msg}");
    let exact = "a".repeat(MAX_CONTENT_BYTES);
    allowed(fx.check("write_file", json!({"path": "big.txt", "content": exact})));
}

#[test]
fn destructive_tools_need_confirm_true() {
    let fx = Fx::new();
    let msg = refused(
        fx.check("delete_file", json!({"path": "old.txt"})),
        "CONFIRM_REQUIRED",
    );
    assert!(
        msg.contains("delete_file") && msg.contains("old.txt"),
        "{msg}"
    );
    assert!(msg.contains("confirm: true"), "{msg}");
    refused(
        fx.check("delete_file", json!({"path": "old.txt", "confirm": false})),
        "CONFIRM_REQUIRED",
    );
    refused(
        fx.check("delete_file", json!({"path": "old.txt", "confirm": "yes"})),
        "CONFIRM_REQUIRED",
    );
    allowed(fx.check("delete_file", json!({"path": "old.txt", "confirm": true})));
    let msg = refused(fx.check("reset_issue", json!({})), "CONFIRM_REQUIRED");
    assert!(msg.contains("reset_issue") && msg.contains(OWN), "{msg}");
    allowed(fx.check("reset_issue", json!({"confirm": true})));
}

#[test]
fn ready_to_done_is_an_illegal_transition() {
    let fx = Fx::new()
        .with_status(OWN, Status::Ready)
        .with_roles(&["integrity_guard"]);
    let msg = refused(
        fx.check("update_issue_status", json!({"status": "done"})),
        "ILLEGAL_TRANSITION",
    );
    assert!(msg.contains("update_issue_status"), "{msg}");
    assert!(
        msg.contains("ISSUE-0001: cannot move an issue from ready to done"),
        "{msg}"
    );
    assert!(msg.contains("in_progress, canceled"), "{msg}");
}

#[test]
fn only_integrity_guard_may_move_to_done() {
    let fx = Fx::new().with_status(OWN, Status::CodeReview);
    let msg = refused(
        fx.check("update_issue_status", json!({"status": "done"})),
        "DONE_REQUIRES_INTEGRITY_GUARD",
    );
    assert!(
        msg.contains("integrity_guard") && msg.contains("coder"),
        "{msg}"
    );
    let fx = fx.with_roles(&["integrity_guard", "reviewer"]);
    allowed(fx.check("update_issue_status", json!({"status": "done"})));
}

#[test]
fn blocked_without_wait_reason_is_refused() {
    let fx = Fx::new();
    let msg = refused(
        fx.check("update_issue_status", json!({"status": "blocked"})),
        "WAIT_REASON_REQUIRED",
    );
    assert!(msg.contains(OWN) && msg.contains("blocked"), "{msg}");
    allowed(fx.check(
        "update_issue_status",
        json!({"status": "blocked", "wait_reason": "dependency"}),
    ));
    let msg = refused(
        fx.check(
            "update_issue_status",
            json!({"status": "blocked", "wait_reason": "later"}),
        ),
        "BAD_ARGS",
    );
    assert!(
        msg.contains("wait_reason") && msg.contains("later"),
        "{msg}"
    );
}

#[test]
fn unknown_status_lists_the_valid_ones() {
    let fx = Fx::new();
    let msg = refused(
        fx.check("update_issue_status", json!({"status": "finished"})),
        "UNKNOWN_STATUS",
    );
    assert!(msg.contains("finished"), "{msg}");
    assert!(msg.contains("ready, in_progress, blocked"), "{msg}");
    allowed(fx.check("update_issue_status", json!({"status": "Code Review"})));
}

#[test]
fn foreign_issue_needs_a_lead_role() {
    let fx = Fx::new();
    let msg = refused(
        fx.check(
            "update_issue_status",
            json!({"issue_id": OTHER, "status": "code_review"}),
        ),
        "FOREIGN_ISSUE",
    );
    assert!(msg.contains(OTHER) && msg.contains(OWN), "{msg}");
    assert!(msg.contains("lead_architect"), "{msg}");
    let fx = fx.with_roles(&["lead_architect"]);
    allowed(fx.check(
        "update_issue_status",
        json!({"issue_id": OTHER, "status": "code_review"}),
    ));
    let fx = fx.with_roles(&["operations_lead"]);
    allowed(fx.check(
        "update_issue_status",
        json!({"issue_id": OTHER, "status": "canceled"}),
    ));
    // The lead is still bound by the table.
    refused(
        fx.check(
            "update_issue_status",
            json!({"issue_id": OTHER, "status": "ready"}),
        ),
        "ILLEGAL_TRANSITION",
    );
}

#[test]
fn unknown_issue_is_refused() {
    let fx = Fx::new().with_roles(&["lead_architect"]);
    let msg = refused(
        fx.check(
            "update_issue_status",
            json!({"issue_id": "ISSUE-9999", "status": "in_progress"}),
        ),
        "UNKNOWN_ISSUE",
    );
    assert!(msg.contains("ISSUE-9999"), "{msg}");
    let fx = Fx::new();
    allowed(fx.check("get_issue_context", json!({"issue_id": OTHER})));
    allowed(fx.check("get_issue_context", json!({})));
    refused(
        fx.check("get_issue_context", json!({"issue_id": "ISSUE-9999"})),
        "UNKNOWN_ISSUE",
    );
    refused(
        fx.check(
            "create_issue",
            json!({"seat": "dev", "summary": "Add the login page", "depends_on": ["ISSUE-9999"]}),
        ),
        "UNKNOWN_ISSUE",
    );
}

#[test]
fn request_excuse_follows_the_table() {
    let fx = Fx::new();
    allowed(fx.check("request_excuse", json!({"reason": "need the API key"})));
    let fx = fx.with_status(OWN, Status::CodeReview);
    refused(
        fx.check("request_excuse", json!({"reason": "need the API key"})),
        "ILLEGAL_TRANSITION",
    );
}

#[test]
fn short_summary_is_refused() {
    let fx = Fx::new();
    let msg = refused(
        fx.check("create_issue", json!({"summary": "fix", "seat": "dev"})),
        "SUMMARY_TOO_SHORT",
    );
    assert!(
        msg.contains("create_issue") && msg.contains("\"fix\""),
        "{msg}"
    );
    let msg = refused(
        fx.check(
            "create_issue",
            json!({"seat": "dev", "summary": "Add login", "priority": "Urgent"}),
        ),
        "BAD_ARGS",
    );
    assert!(msg.contains("priority") && msg.contains("Urgent"), "{msg}");
    allowed(fx.check(
        "create_issue",
        json!({"summary": "Add login", "seat": "dev", "priority": "High", "depends_on": [OTHER]}),
    ));
}

#[test]
fn approval_required_tools_need_approval() {
    let mut fx = Fx::new();
    fx.approval = strings(&["write_file", "delete_file"]);
    assert_eq!(
        fx.check("write_file", json!({"path": "a.txt", "content": "x"})),
        Ok(Decision::NeedsApproval)
    );
    allowed(fx.check("read_file", json!({"path": "a.txt"})));
    // A call that breaks a rule is refused, not sent for approval.
    refused(
        fx.check("delete_file", json!({"path": "a.txt"})),
        "CONFIRM_REQUIRED",
    );
}

#[test]
fn idesign_rules_apply_to_writes_only_when_the_epic_asks() {
    let mut fx = Fx::new();
    let bad = json!({"path": "managers/auth.py", "content": "class Auth:\n    pass\n"});
    allowed(fx.check("write_file", bad.clone()));
    fx.idesign = true;
    let msg = refused(fx.check("write_file", bad), "IDESIGN_NAMING");
    assert!(
        msg.contains("write_file") && msg.contains("managers/auth.py"),
        "{msg}"
    );
    allowed(fx.check(
        "write_file",
        json!({
            "path": "src/managers/auth_manager.py",
            "content": "from accessors.user_accessor import UserAccessor\n\nclass AuthManager:\n    pass\n"
        }),
    ));
    let abs = fx.ws.root().join("app.py").display().to_string();
    refused(
        fx.check("write_file", json!({"path": abs, "content": "x = 1\n"})),
        "IDESIGN_ROOT_FILE",
    );
    let msg = refused(
        fx.check(
            "write_file",
            json!({"path": "utils/a.py", "content": "x = 1\ndef f(:\n"}),
        ),
        "IDESIGN_SYNTAX",
    );
    assert!(msg.contains("line 2"), "{msg}");
    // Reads are never checked by iDesign.
    allowed(fx.check("read_file", json!({"path": "app.py"})));
}

#[cfg(unix)]
#[test]
fn deleting_a_link_that_points_outside_passes_the_gate() {
    let fx = Fx::new();
    let root = fx.ws.root().to_path_buf();
    fs::write(fx.outside(), "outside").unwrap();
    std::os::unix::fs::symlink(fx.outside(), root.join("out-link")).unwrap();
    // Deleting removes the link only, so the gate lets it through...
    allowed(fx.check("delete_file", json!({"path": "out-link", "confirm": true})));
    // ...while writing through it is still an escape.
    refused(
        fx.check("write_file", json!({"path": "out-link", "content": "x"})),
        "PATH_ESCAPE",
    );
}

#[test]
fn a_failed_verification_refuses_done_however_it_is_spelled() {
    use orket_governance::gate::check_verified_done;
    for spelled in ["done", "Done", " DONE "] {
        let call = ToolCall::new("update_issue_status", json!({"status": spelled}));
        let refusal =
            check_verified_done(&call, OWN, Some("1/2 scenarios failed")).expect_err(spelled);
        assert_eq!(refusal.code.as_str(), "VERIFICATION_FAILED", "{spelled}");
    }
    let back = ToolCall::new("update_issue_status", json!({"status": "in_progress"}));
    assert!(check_verified_done(&back, OWN, Some("failed")).is_ok());
}
