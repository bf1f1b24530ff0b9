//! A stand-in for Gitea's REST API on loopback, for tests: it serves the operations the
//! [`crate::client`] uses on one repository ([`OWNER`]/[`REPO`]), answers as Gitea does, and
//! records every request with whether it matched Gitea's API description, so a test fails on
//! a wrong path, method, field name or type rather than on a real Gitea later.
//!
//! The checks come from a table of the operations, written from
//! `templates/swagger/v1_json.tmpl` (their operation ids below) and, where the description is
//! loose, from the Go code behind it: a `Required` binding refuses an empty string, and
//! `state` is `open` or `closed`. The stand-in is stricter than Gitea in one way on purpose:
//! Gitea's JSON binding ignores fields it does not know, which is how a GitHub-shaped body goes
//! unnoticed, so here an unknown field is a `422`.
//!
//! It can also be told to refuse the next merge (`405`, `409`, `422`), to fail the next calls
//! with `500`, to do the next calls but lose their answer (`500` after the fact), or to leave
//! the next calls unanswered, for the client's retries and timeouts.

pub mod payload;

pub use payload::{
    delivery, header, issue_comment_payload, issue_comment_payload_on_issue, pull_request_payload,
    review_payload, PullSpec,
};

use axum::body::{Body, Bytes};
use axum::http::{header as http_header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The owner of the stand-in's only repository.
pub const OWNER: &str = "team";
/// The name of the stand-in's only repository.
pub const REPO: &str = "demo";
/// The token [`Standin::start`] accepts.
pub const TOKEN: &str = "standin-token";

/// The JSON type of a body field, as the API description names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    String,
    Integer,
    Boolean,
    Strings,
    Integers,
}

/// A body field of an operation.
#[derive(Debug)]
struct Field {
    name: &'static str,
    /// Another name Gitea reads it under (Gitea 1.25+ `MergePullRequestForm.UnmarshalJSON`
    /// reads `do` as well as `Do`, and so on).
    alias: Option<&'static str>,
    ty: Ty,
    required: bool,
    /// Allowed values of a string (`enum`), empty for any.
    one_of: &'static [&'static str],
}

const fn field(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        alias: None,
        ty,
        required: false,
        one_of: &[],
    }
}

/// An operation of Gitea's API, the path relative to `/api/v1`.
#[derive(Debug)]
struct Operation {
    id: &'static str,
    method: &'static str,
    path: &'static str,
    /// The body's definition name and fields; `None` for operations without a body.
    body: Option<(&'static str, &'static [Field])>,
}

/// `CreateIssueCommentOption`: `required: [body]`.
const CREATE_ISSUE_COMMENT_OPTION: &[Field] = &[Field {
    required: true,
    ..field("body", Ty::String)
}];

/// `MergePullRequestOption` (`services/forms/repo_form.go`, `MergePullRequestForm`):
/// `required: [Do]`, `Do` one of the merge styles (`fast-forward-only` since 1.21).
const MERGE_PULL_REQUEST_OPTION: &[Field] = &[
    Field {
        alias: Some("do"),
        required: true,
        one_of: &[
            "merge",
            "rebase",
            "rebase-merge",
            "squash",
            "fast-forward-only",
            "manually-merged",
        ],
        ..field("Do", Ty::String)
    },
    Field {
        alias: Some("merge_title_field"),
        ..field("MergeTitleField", Ty::String)
    },
    Field {
        alias: Some("merge_message_field"),
        ..field("MergeMessageField", Ty::String)
    },
    Field {
        alias: Some("merge_commit_id"),
        ..field("MergeCommitID", Ty::String)
    },
    field("head_commit_id", Ty::String),
    field("force_merge", Ty::Boolean),
    field("merge_when_checks_succeed", Ty::Boolean),
    field("delete_branch_after_merge", Ty::Boolean),
];

/// `EditPullRequestOption`: nothing required; `state` is a `StateType` (`open`, `closed`).
const EDIT_PULL_REQUEST_OPTION: &[Field] = &[
    field("title", Ty::String),
    field("body", Ty::String),
    field("base", Ty::String),
    field("assignee", Ty::String),
    field("assignees", Ty::Strings),
    field("milestone", Ty::Integer),
    field("labels", Ty::Integers),
    Field {
        one_of: &["open", "closed"],
        ..field("state", Ty::String)
    },
    field("due_date", Ty::String),
    field("unset_due_date", Ty::Boolean),
    field("allow_maintainer_edit", Ty::Boolean),
];

/// `CreateIssueOption`: `required: [title]`; `labels` are label ids.
const CREATE_ISSUE_OPTION: &[Field] = &[
    Field {
        required: true,
        ..field("title", Ty::String)
    },
    field("body", Ty::String),
    field("ref", Ty::String),
    field("assignee", Ty::String),
    field("assignees", Ty::Strings),
    field("due_date", Ty::String),
    field("milestone", Ty::Integer),
    field("labels", Ty::Integers),
    field("closed", Ty::Boolean),
];

/// The operations served.
const OPERATIONS: &[Operation] = &[
    Operation {
        id: "issueCreateComment",
        method: "POST",
        path: "/repos/{owner}/{repo}/issues/{index}/comments",
        body: Some(("CreateIssueCommentOption", CREATE_ISSUE_COMMENT_OPTION)),
    },
    Operation {
        id: "repoMergePullRequest",
        method: "POST",
        path: "/repos/{owner}/{repo}/pulls/{index}/merge",
        body: Some(("MergePullRequestOption", MERGE_PULL_REQUEST_OPTION)),
    },
    Operation {
        id: "repoEditPullRequest",
        method: "PATCH",
        path: "/repos/{owner}/{repo}/pulls/{index}",
        body: Some(("EditPullRequestOption", EDIT_PULL_REQUEST_OPTION)),
    },
    Operation {
        id: "repoGetPullRequest",
        method: "GET",
        path: "/repos/{owner}/{repo}/pulls/{index}",
        body: None,
    },
    Operation {
        id: "issueCreateIssue",
        method: "POST",
        path: "/repos/{owner}/{repo}/issues",
        body: Some(("CreateIssueOption", CREATE_ISSUE_OPTION)),
    },
];

/// A request the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    /// Its method.
    pub method: String,
    /// Its path (as sent, percent-encoding kept).
    pub path: String,
    /// Its body, when it was JSON.
    pub body: Option<Value>,
    /// Whether it carried `Authorization: token <the stand-in's token>`.
    pub authorized: bool,
    /// The operation it was taken for (`repoMergePullRequest`, …).
    pub operation: Option<&'static str>,
    /// Whether it matched the API description: a known operation with a valid body.
    pub matched: bool,
    /// What did not match.
    pub problems: Vec<String>,
    /// The status answered; `None` while unanswered (or when left unanswered).
    pub status: Option<u16>,
}

/// A pull request the stand-in knows.
#[derive(Debug, Clone)]
struct Pull {
    spec: PullSpec,
}

/// What the stand-in has been told to do to the next requests.
#[derive(Debug, Default)]
struct Faults {
    refuse_merge: Option<(u16, String)>,
    fail: u32,
    lose: u32,
    stall: u32,
}

#[derive(Debug)]
struct State {
    token: String,
    pulls: BTreeMap<i64, Pull>,
    issues: BTreeMap<i64, String>,
    next_comment_id: i64,
    faults: Faults,
    requests: Vec<Request>,
}

#[derive(Debug)]
struct Shared {
    base_url: String,
    state: Mutex<State>,
    /// The count of requests recorded, for waiters.
    seen: watch::Sender<usize>,
    /// Set when the stand-in stops, releasing requests left unanswered.
    stopped: watch::Sender<bool>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide its own failure.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The stand-in, serving until dropped.
#[derive(Debug)]
pub struct Standin {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.shared.stopped.send_replace(true);
        self.server.abort();
    }
}

impl Standin {
    /// Starts a stand-in on `127.0.0.1` (a free port) accepting [`TOKEN`].
    pub async fn start() -> Standin {
        Standin::start_with_token(TOKEN).await
    }

    /// Starts a stand-in accepting `token`. Panics when no loopback port can be bound (a test
    /// set-up failure).
    pub async fn start_with_token(token: &str) -> Standin {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the stand-in binds a loopback port");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            base_url: format!("http://{address}"),
            state: Mutex::new(State {
                token: token.to_string(),
                pulls: BTreeMap::new(),
                issues: BTreeMap::new(),
                next_comment_id: 1,
                faults: Faults::default(),
                requests: Vec::new(),
            }),
            seen: watch::Sender::new(0),
            stopped: watch::Sender::new(false),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("the Gitea stand-in stopped: {e}");
            }
        });
        Standin { shared, server }
    }

    /// Its base URL (`http://127.0.0.1:<port>`), for [`crate::GiteaClient::new`].
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The token it accepts.
    pub fn token(&self) -> String {
        self.shared.state().token.clone()
    }

    /// Adds an open pull request `number` (branch `issue-<number>` into `main`).
    pub fn add_pull(&self, number: i64, title: &str, head_sha: &str) {
        let spec = PullSpec::open(number, title, head_sha);
        self.shared.state().pulls.insert(number, Pull { spec });
    }

    /// Pull request `number` as the API would answer it, if it exists.
    pub fn pull(&self, number: i64) -> Option<Value> {
        let state = self.shared.state();
        state
            .pulls
            .get(&number)
            .map(|p| payload::pull_json(&root_of(&self.shared.base_url), &p.spec))
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.state().requests.clone()
    }

    /// Waits until `done` holds for the requests received, for at most `timeout`; whether it
    /// came to hold. Wakes on every request, never polls.
    pub async fn wait_for(&self, done: impl Fn(&[Request]) -> bool, timeout: Duration) -> bool {
        let mut seen = self.shared.seen.subscribe();
        let wait = async {
            loop {
                if done(&self.shared.state().requests) {
                    return;
                }
                if seen.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok() && done(&self.requests())
    }

    /// Answers the next merge that matches the API description with `status` (405, 409, 422,
    /// …) and `message`, merging nothing. A `409` carries `message` as Gitea's conflict error
    /// does (`StdErr` of `ErrMergeConflicts`), the others in `{"message", "url"}`.
    pub fn refuse_next_merge(&self, status: u16, message: &str) {
        self.shared.state().faults.refuse_merge = Some((status, message.to_string()));
    }

    /// Answers the next `n` requests `500` without doing anything.
    pub fn fail_next(&self, n: u32) {
        self.shared.state().faults.fail = n;
    }

    /// Does the next `n` requests but answers them `500`, as when Gitea's answer is lost.
    pub fn lose_next_answers(&self, n: u32) {
        self.shared.state().faults.lose = n;
    }

    /// Leaves the next `n` requests unanswered until the stand-in stops.
    pub fn stall_next(&self, n: u32) {
        self.shared.state().faults.stall = n;
    }
}

/// `base_url` with a trailing slash, as Gitea writes `ROOT_URL`.
fn root_of(base_url: &str) -> String {
    format!("{}/", base_url.trim_end_matches('/'))
}

/// What a request was matched to.
struct Matched {
    operation: &'static Operation,
    index: Option<i64>,
    owner: String,
    repo: String,
}

/// Finds the operation for `method` and `path` (with its `/api/v1` prefix).
fn match_operation(method: &Method, path: &str) -> Option<Matched> {
    let rest = path.strip_prefix("/api/v1")?;
    let parts: Vec<&str> = rest.split('/').collect();
    OPERATIONS.iter().find_map(|operation| {
        if operation.method != method.as_str() {
            return None;
        }
        let template: Vec<&str> = operation.path.split('/').collect();
        if template.len() != parts.len() {
            return None;
        }
        let mut matched = Matched {
            operation,
            index: None,
            owner: String::new(),
            repo: String::new(),
        };
        for (want, got) in template.iter().zip(&parts) {
            match *want {
                "{owner}" if !got.is_empty() => matched.owner = (*got).to_string(),
                "{repo}" if !got.is_empty() => matched.repo = (*got).to_string(),
                // Gitea reads the index as an int64; anything else finds nothing.
                "{index}" => matched.index = Some(got.parse::<i64>().ok()?),
                literal if literal == *got => {}
                _ => return None,
            }
        }
        Some(matched)
    })
}

/// Checks a body against a definition's fields; the body read, and the problems.
fn check_body(
    definition: &str,
    fields: &[Field],
    content_type: Option<&str>,
    body: &[u8],
) -> (Option<Value>, Vec<String>) {
    let mut problems = Vec::new();
    let json_type = content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        problems.push(format!(
            "Content-Type is {content_type:?}: Gitea binds a {definition} only from \
             application/json"
        ));
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            problems.push(format!("the body is not JSON: {e}"));
            return (None, problems);
        }
    };
    let Some(object) = value.as_object() else {
        problems.push(format!("a {definition} is a JSON object"));
        return (Some(value), problems);
    };
    for (name, v) in object {
        let Some(field) = fields
            .iter()
            .find(|f| f.name == name || f.alias == Some(name.as_str()))
        else {
            problems.push(format!(
                "unknown field {name:?}: {definition} has no such property (Gitea would \
                 silently ignore it)"
            ));
            continue;
        };
        if v.is_null() {
            continue;
        }
        let fits = match field.ty {
            Ty::String => v.is_string(),
            Ty::Integer => v.is_i64(),
            Ty::Boolean => v.is_boolean(),
            Ty::Strings => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Ty::Integers => v.as_array().is_some_and(|a| a.iter().all(Value::is_i64)),
        };
        if !fits {
            problems.push(format!(
                "{definition}.{} must be {}, got {v}",
                field.name,
                match field.ty {
                    Ty::String => "a string",
                    Ty::Integer => "an integer",
                    Ty::Boolean => "a boolean",
                    Ty::Strings => "an array of strings",
                    Ty::Integers => "an array of integers (ids)",
                }
            ));
            continue;
        }
        if let (false, Some(s)) = (field.one_of.is_empty(), v.as_str()) {
            if !field.one_of.contains(&s) {
                problems.push(format!(
                    "{definition}.{} must be one of {:?}, got {s:?}",
                    field.name, field.one_of
                ));
            }
        }
    }
    for field in fields.iter().filter(|f| f.required) {
        let given = object
            .get(field.name)
            .or_else(|| field.alias.and_then(|a| object.get(a)))
            .filter(|v| !v.is_null());
        match given {
            None => problems.push(format!(
                "{definition}.{} is required and missing",
                field.name
            )),
            Some(Value::String(s)) if s.is_empty() => problems.push(format!(
                "{definition}.{} is required and empty (Gitea's Required binding refuses an \
                 empty string)",
                field.name
            )),
            Some(_) => {}
        }
    }
    (Some(value), problems)
}

fn error_json(shared: &Shared, status: StatusCode, message: &str) -> Response {
    let body = json!({
        "message": message,
        "url": format!("{}api/swagger", root_of(&shared.base_url)),
    });
    json_answer(status, &body)
}

fn json_answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(http_header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let matched = match_operation(&method, &path);
    let content_type = headers
        .get(http_header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (parsed, problems) = match &matched {
        None => (
            serde_json::from_slice(&body).ok(),
            vec![format!("no operation of Gitea's API is {method} {path}")],
        ),
        Some(m) => match m.operation.body {
            Some((definition, fields)) => check_body(definition, fields, content_type, &body),
            None if body.is_empty() => (None, Vec::new()),
            None => (
                serde_json::from_slice(&body).ok(),
                vec![format!("{} takes no body", m.operation.id)],
            ),
        },
    };
    let authorization = headers
        .get(http_header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();

    let (number, stall, fail, lose) = {
        let mut state = shared.state();
        let authorized = authorization
            .strip_prefix("token ")
            .is_some_and(|t| t == state.token);
        let request = Request {
            method: method.to_string(),
            path: path.clone(),
            body: parsed.clone(),
            authorized,
            operation: matched.as_ref().map(|m| m.operation.id),
            matched: matched.is_some() && problems.is_empty(),
            problems: problems.clone(),
            status: None,
        };
        state.requests.push(request);
        let number = state.requests.len();
        let faults = &mut state.faults;
        let stall = take_one(&mut faults.stall);
        let fail = !stall && take_one(&mut faults.fail);
        (
            number,
            stall,
            fail,
            !stall && !fail && take_one(&mut faults.lose),
        )
    };
    shared.seen.send_replace(number);

    if stall {
        let mut stopped = shared.stopped.subscribe();
        let _ = stopped.wait_for(|s| *s).await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let response = if fail {
        error_json(&shared, StatusCode::INTERNAL_SERVER_ERROR, "")
    } else {
        let mut response = answer(&shared, &authorization, matched, parsed, &problems);
        if lose {
            response = error_json(&shared, StatusCode::INTERNAL_SERVER_ERROR, "");
        }
        response
    };
    if let Some(request) = shared.state().requests.get_mut(number - 1) {
        request.status = Some(response.status().as_u16());
    }
    shared.seen.send_replace(number);
    response
}

fn take_one(count: &mut u32) -> bool {
    if *count > 0 {
        *count -= 1;
        true
    } else {
        false
    }
}

/// The answer to a request that is neither failed nor stalled.
fn answer(
    shared: &Shared,
    authorization: &str,
    matched: Option<Matched>,
    body: Option<Value>,
    problems: &[String],
) -> Response {
    let mut state = shared.state();
    let token_ok = authorization
        .strip_prefix("token ")
        .is_some_and(|t| t == state.token);
    if !token_ok {
        let message = if authorization.is_empty() {
            "token is required".to_string()
        } else {
            "invalid token: Gitea takes `Authorization: token <token>`".to_string()
        };
        return error_json(shared, StatusCode::UNAUTHORIZED, &message);
    }
    let Some(matched) = matched else {
        return error_json(shared, StatusCode::NOT_FOUND, &problems.join("; "));
    };
    if !problems.is_empty() {
        return error_json(
            shared,
            StatusCode::UNPROCESSABLE_ENTITY,
            &problems.join("; "),
        );
    }
    if matched.owner != OWNER || matched.repo != REPO {
        return error_json(
            shared,
            StatusCode::NOT_FOUND,
            &format!(
                "repository {}/{} does not exist (the stand-in serves {OWNER}/{REPO})",
                matched.owner, matched.repo
            ),
        );
    }
    let root = root_of(&shared.base_url);
    let index = matched.index.unwrap_or_default();
    let body = body.unwrap_or(Value::Null);
    match matched.operation.id {
        "issueCreateComment" => {
            let on_pull = state.pulls.contains_key(&index);
            if !on_pull && !state.issues.contains_key(&index) {
                return error_json(shared, StatusCode::NOT_FOUND, "issue does not exist");
            }
            let id = state.next_comment_id;
            state.next_comment_id += 1;
            let text = body.get("body").and_then(Value::as_str).unwrap_or_default();
            let comment = payload::comment_json(&root, id, index, on_pull, "orket", text);
            json_answer(StatusCode::CREATED, &comment)
        }
        "repoMergePullRequest" => {
            if let Some((status, message)) = state.faults.refuse_merge.take() {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::METHOD_NOT_ALLOWED);
                if status == StatusCode::CONFLICT {
                    // `ctx.JSON(http.StatusConflict, conflictError)`: the error struct itself.
                    let conflict = json!({
                        "Style": "merge",
                        "StdOut": "",
                        "StdErr": message,
                        "Err": {}
                    });
                    return json_answer(status, &conflict);
                }
                return error_json(shared, status, &message);
            }
            let Some(pull) = state.pulls.get_mut(&index) else {
                return error_json(shared, StatusCode::NOT_FOUND, "pull request does not exist");
            };
            if pull.spec.merged {
                // `ErrHasMerged`: `ctx.APIError(http.StatusMethodNotAllowed, "")`.
                return error_json(shared, StatusCode::METHOD_NOT_ALLOWED, "");
            }
            if pull.spec.closed {
                // `ErrIsClosed`: `ctx.APIErrorNotFound()`.
                return error_json(
                    shared,
                    StatusCode::NOT_FOUND,
                    "The target couldn't be found.",
                );
            }
            let expected = body.get("head_commit_id").and_then(Value::as_str);
            if expected.is_some_and(|head| !head.is_empty() && head != pull.spec.head_sha) {
                // `ErrSHADoesNotMatch`: `ctx.Error(http.StatusConflict, "Merge", "head out of
                // date")` (routers/api/v1/repo/pull.go).
                return error_json(shared, StatusCode::CONFLICT, "head out of date");
            }
            pull.spec.merged = true;
            pull.spec.closed = true;
            // `ctx.Status(http.StatusOK)`: no body at all.
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::OK.into_response())
        }
        "repoEditPullRequest" => {
            let Some(pull) = state.pulls.get_mut(&index) else {
                return error_json(shared, StatusCode::NOT_FOUND, "pull request does not exist");
            };
            if let Some(new_state) = body.get("state").and_then(Value::as_str) {
                if pull.spec.merged {
                    return error_json(
                        shared,
                        StatusCode::PRECONDITION_FAILED,
                        "cannot change state of this pull request, it was already merged",
                    );
                }
                pull.spec.closed = new_state == "closed";
            }
            if let Some(title) = body.get("title").and_then(Value::as_str) {
                if !title.is_empty() {
                    pull.spec.title = title.to_string();
                }
            }
            // "TODO this should be 200, not 201" — Gitea answers 201.
            json_answer(StatusCode::CREATED, &payload::pull_json(&root, &pull.spec))
        }
        "repoGetPullRequest" => match state.pulls.get(&index) {
            Some(pull) => json_answer(StatusCode::OK, &payload::pull_json(&root, &pull.spec)),
            None => error_json(shared, StatusCode::NOT_FOUND, "pull request does not exist"),
        },
        "issueCreateIssue" => {
            // Issues and pull requests share one index sequence.
            let last = [state.pulls.keys().last(), state.issues.keys().last()]
                .into_iter()
                .flatten()
                .max()
                .copied()
                .unwrap_or(0);
            let number = last + 1;
            let title = body
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let text = body.get("body").and_then(Value::as_str).unwrap_or_default();
            state.issues.insert(number, title.to_string());
            let issue = payload::issue_json(&root, number, title, text, None);
            json_answer(StatusCode::CREATED, &issue)
        }
        other => error_json(
            shared,
            StatusCode::NOT_FOUND,
            &format!("the stand-in has no answer for {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_paths_like_giteas_router() {
        let m = match_operation(&Method::POST, "/api/v1/repos/team/demo/pulls/3/merge").unwrap();
        assert_eq!(m.operation.id, "repoMergePullRequest");
        assert_eq!(m.index, Some(3));
        let m = match_operation(&Method::PATCH, "/api/v1/repos/team/demo/pulls/3").unwrap();
        assert_eq!(m.operation.id, "repoEditPullRequest");
        assert!(match_operation(&Method::PUT, "/api/v1/repos/team/demo/pulls/3/merge").is_none());
        assert!(match_operation(&Method::POST, "/api/v1/repos/team/demo/pulls/x/merge").is_none());
        assert!(match_operation(&Method::POST, "/repos/team/demo/pulls/3/merge").is_none());
        assert!(match_operation(&Method::POST, "/api/v1/repos/team/demo/pulls/3/merge/").is_none());
    }

    #[test]
    fn bodies_are_checked_against_the_definitions() {
        let json = Some("application/json");
        let (_, problems) = check_body(
            "MergePullRequestOption",
            MERGE_PULL_REQUEST_OPTION,
            json,
            br#"{"Do":"merge","delete_branch_after_merge":true}"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        // GitHub's body for the same call.
        let (_, problems) = check_body(
            "MergePullRequestOption",
            MERGE_PULL_REQUEST_OPTION,
            json,
            br#"{"merge_method":"merge"}"#,
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        let (_, problems) = check_body(
            "MergePullRequestOption",
            MERGE_PULL_REQUEST_OPTION,
            json,
            br#"{"Do":"yolo"}"#,
        );
        assert!(problems[0].contains("one of"), "{problems:?}");
        let (_, problems) = check_body(
            "CreateIssueOption",
            CREATE_ISSUE_OPTION,
            json,
            br#"{"title":"t","labels":["bug"]}"#,
        );
        assert!(problems[0].contains("ids"), "{problems:?}");
        let (_, problems) = check_body(
            "CreateIssueCommentOption",
            CREATE_ISSUE_COMMENT_OPTION,
            json,
            br#"{"body":""}"#,
        );
        assert!(problems[0].contains("empty"), "{problems:?}");
        let (_, problems) = check_body(
            "CreateIssueCommentOption",
            CREATE_ISSUE_COMMENT_OPTION,
            Some("text/plain"),
            br#"{"body":"hi"}"#,
        );
        assert!(problems[0].contains("Content-Type"), "{problems:?}");
        let (_, problems) = check_body(
            "EditPullRequestOption",
            EDIT_PULL_REQUEST_OPTION,
            json,
            b"not json",
        );
        assert!(problems[0].contains("not JSON"), "{problems:?}");
    }
}
