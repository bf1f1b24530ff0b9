//! Webhook deliveries and API objects shaped as Gitea writes them, so parsers are tested
//! against what a real Gitea sends rather than against the few fields they read.
//!
//! The objects follow `modules/structs` of Gitea 1.21–1.25 (`user.go` `User`, `repo.go`
//! `Repository`, `pull.go` `PullRequest` and `PRBranchInfo`, `issue.go` `Issue` and
//! `PullRequestMeta`, `issue_comment.go` `Comment`), every field Gitea serializes included;
//! the payloads follow `modules/structs/hook.go` and what `services/webhook/notifier.go` fills
//! in for each event. A delivery's body is indented by two spaces and HTML-escaped, as Go's
//! `json.MarshalIndent(p, "", "  ")` writes it, and its headers are those of
//! `services/webhook/deliver.go` (`addDefaultHeaders`).

use super::{OWNER, REPO};
use crate::hook::Verdict;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

/// The Gitea address payloads point at (`ROOT_URL`).
pub const ROOT_URL: &str = "http://localhost:3000/";
/// When every object in these payloads was created.
const CREATED: &str = "2025-06-02T09:30:00Z";
/// When every object in these payloads last changed.
const UPDATED: &str = "2025-06-02T10:15:42Z";
/// Go's zero time, which Gitea sends for times never set.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// The unix epoch, which Gitea sends for `archived_at` of a repository never archived.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// A user (`modules/structs/user.go`), with the `username` Gitea adds for compatibility.
pub fn user_json(root: &str, id: i64, login: &str) -> Value {
    json!({
        "id": id,
        "login": login,
        "login_name": "",
        "source_id": 0,
        "full_name": "",
        "email": format!("{login}@noreply.localhost"),
        "avatar_url": format!("{root}avatars/{}", hex_of(login.as_bytes(), 32)),
        "html_url": format!("{root}{login}"),
        "language": "",
        "is_admin": false,
        "last_login": ZERO_TIME,
        "created": CREATED,
        "restricted": false,
        "active": false,
        "prohibit_login": false,
        "location": "",
        "website": "",
        "description": "",
        "visibility": "public",
        "followers_count": 0,
        "following_count": 0,
        "starred_repos_count": 0,
        "username": login
    })
}

/// The stand-in's repository (`modules/structs/repo.go`, `Repository`).
pub fn repository_json(root: &str) -> Value {
    json!({
        "id": 1,
        "owner": user_json(root, 1, OWNER),
        "name": REPO,
        "full_name": format!("{OWNER}/{REPO}"),
        "description": "",
        "empty": false,
        "private": false,
        "fork": false,
        "template": false,
        "parent": null,
        "mirror": false,
        "size": 42,
        "language": "",
        "languages_url": format!("{root}api/v1/repos/{OWNER}/{REPO}/languages"),
        "html_url": format!("{root}{OWNER}/{REPO}"),
        "url": format!("{root}api/v1/repos/{OWNER}/{REPO}"),
        "link": "",
        "ssh_url": format!("git@localhost:{OWNER}/{REPO}.git"),
        "clone_url": format!("{root}{OWNER}/{REPO}.git"),
        "original_url": "",
        "website": "",
        "stars_count": 0,
        "forks_count": 0,
        "watchers_count": 1,
        "open_issues_count": 0,
        "open_pr_counter": 1,
        "release_counter": 0,
        "default_branch": "main",
        "archived": false,
        "created_at": CREATED,
        "updated_at": UPDATED,
        "archived_at": EPOCH,
        "permissions": {"admin": true, "push": true, "pull": true},
        "has_issues": true,
        "internal_tracker": {
            "enable_time_tracker": true,
            "allow_only_contributors_to_track_time": true,
            "enable_issue_dependencies": true
        },
        "has_wiki": true,
        "has_pull_requests": true,
        "has_projects": true,
        "projects_mode": "all",
        "has_releases": true,
        "has_packages": true,
        "has_actions": false,
        "ignore_whitespace_conflicts": false,
        "allow_merge_commits": true,
        "allow_rebase": true,
        "allow_rebase_explicit": true,
        "allow_squash_merge": true,
        "allow_fast_forward_only_merge": true,
        "allow_rebase_update": true,
        "default_delete_branch_after_merge": false,
        "default_merge_style": "merge",
        "default_allow_maintainer_edit": false,
        "avatar_url": "",
        "internal": false,
        "mirror_interval": "",
        "object_format_name": "sha1",
        "mirror_updated": ZERO_TIME,
        "repo_transfer": null,
        "topics": [],
        "licenses": []
    })
}

/// What a pull request is made of, for [`pull_json`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSpec {
    /// Its index.
    pub number: i64,
    /// Its title.
    pub title: String,
    /// Its head branch.
    pub head_ref: String,
    /// Its head commit.
    pub head_sha: String,
    /// Whether it is closed.
    pub closed: bool,
    /// Whether it is merged (and so closed).
    pub merged: bool,
}

impl PullSpec {
    /// An open pull request from branch `issue-<number>` into `main`.
    pub fn open(number: i64, title: &str, head_sha: &str) -> PullSpec {
        PullSpec {
            number,
            title: title.to_string(),
            head_ref: format!("issue-{number}"),
            head_sha: head_sha.to_string(),
            closed: false,
            merged: false,
        }
    }
}

/// One side of a pull request (`modules/structs/pull.go`, `PRBranchInfo`).
fn branch_json(root: &str, name: &str, sha: &str) -> Value {
    json!({
        "label": name,
        "ref": name,
        "sha": sha,
        "repo_id": 1,
        "repo": repository_json(root)
    })
}

/// A pull request (`modules/structs/pull.go`, `PullRequest`), as the API and the payloads
/// write it.
pub fn pull_json(root: &str, pr: &PullSpec) -> Value {
    let number = pr.number;
    let html_url = format!("{root}{OWNER}/{REPO}/pulls/{number}");
    let merged = pr.merged;
    let closed = pr.closed || pr.merged;
    json!({
        "id": 100 + number,
        "url": html_url,
        "number": number,
        "user": user_json(root, 2, "dev"),
        "title": pr.title,
        "body": "",
        "labels": [],
        "milestone": null,
        "assignee": null,
        "assignees": null,
        "requested_reviewers": [],
        "requested_reviewers_teams": [],
        "state": if closed { "closed" } else { "open" },
        "draft": false,
        "is_locked": false,
        "comments": 0,
        "review_comments": 0,
        "additions": 12,
        "deletions": 3,
        "changed_files": 2,
        "html_url": html_url,
        "diff_url": format!("{html_url}.diff"),
        "patch_url": format!("{html_url}.patch"),
        "mergeable": !closed,
        "merged": merged,
        "merged_at": if merged { Value::from(UPDATED) } else { Value::Null },
        "merge_commit_sha": if merged {
            Value::from(sha1_hex(format!("merge {}", pr.head_sha).as_bytes()))
        } else {
            Value::Null
        },
        "merged_by": if merged { user_json(root, 3, "lead") } else { Value::Null },
        "allow_maintainer_edit": false,
        "base": branch_json(root, "main", &sha1_hex(b"main")),
        "head": branch_json(root, &pr.head_ref, &pr.head_sha),
        "merge_base": sha1_hex(b"main"),
        "due_date": null,
        "created_at": CREATED,
        "updated_at": UPDATED,
        "closed_at": if closed { Value::from(UPDATED) } else { Value::Null },
        "pin_order": 0
    })
}

/// An issue, or the issue side of a pull request (`modules/structs/issue.go`, `Issue`).
pub fn issue_json(
    root: &str,
    number: i64,
    title: &str,
    body: &str,
    pull: Option<&PullSpec>,
) -> Value {
    let kind = if pull.is_some() { "pulls" } else { "issues" };
    let closed = pull.is_some_and(|p| p.closed || p.merged);
    json!({
        "id": 200 + number,
        "url": format!("{root}api/v1/repos/{OWNER}/{REPO}/issues/{number}"),
        "html_url": format!("{root}{OWNER}/{REPO}/{kind}/{number}"),
        "number": number,
        "user": user_json(root, 2, "dev"),
        "original_author": "",
        "original_author_id": 0,
        "title": title,
        "body": body,
        "ref": "",
        "assets": [],
        "labels": [],
        "milestone": null,
        "assignee": null,
        "assignees": null,
        "state": if closed { "closed" } else { "open" },
        "is_locked": false,
        "comments": 1,
        "created_at": CREATED,
        "updated_at": UPDATED,
        "closed_at": if closed { Value::from(UPDATED) } else { Value::Null },
        "due_date": null,
        "time_estimate": 0,
        "pull_request": pull.map(|p| json!({
            "merged": p.merged,
            "merged_at": if p.merged { Value::from(UPDATED) } else { Value::Null },
            "draft": false,
            "html_url": format!("{root}{OWNER}/{REPO}/pulls/{number}")
        })),
        "repository": {
            "id": 1,
            "name": REPO,
            "owner": OWNER,
            "full_name": format!("{OWNER}/{REPO}")
        },
        "pin_order": 0
    })
}

/// A comment (`modules/structs/issue_comment.go`, `Comment`).
pub fn comment_json(
    root: &str,
    id: i64,
    number: i64,
    on_pull: bool,
    author: &str,
    body: &str,
) -> Value {
    let kind = if on_pull { "pulls" } else { "issues" };
    json!({
        "id": id,
        "html_url": format!("{root}{OWNER}/{REPO}/{kind}/{number}#issuecomment-{id}"),
        "pull_request_url": if on_pull {
            format!("{root}{OWNER}/{REPO}/pulls/{number}")
        } else {
            String::new()
        },
        "issue_url": if on_pull {
            String::new()
        } else {
            format!("{root}{OWNER}/{REPO}/issues/{number}")
        },
        "user": user_json(root, 2, author),
        "original_author": "",
        "original_author_id": 0,
        "body": body,
        "assets": [],
        "created_at": UPDATED,
        "updated_at": UPDATED
    })
}

/// A `pull_request` payload (`PullRequestPayload`) for `action` (`opened`, `reopened`,
/// `closed`, `synchronized`, `edited`, …). `merged` makes a `closed` one the merge (Gitea
/// sends a merge as `closed` with `pull_request.merged`); a `closed` one is closed either way.
/// Send it as event `pull_request`, type `pull_request` (`pull_request_sync` for
/// `synchronized`).
pub fn pull_request_payload(
    action: &str,
    number: i64,
    title: &str,
    merged: bool,
    head_sha: &str,
) -> Value {
    let mut pr = PullSpec::open(number, title, head_sha);
    pr.closed = action == "closed";
    pr.merged = merged;
    let sender = if merged {
        user_json(ROOT_URL, 3, "lead")
    } else {
        user_json(ROOT_URL, 2, "dev")
    };
    json!({
        "action": action,
        "number": number,
        "pull_request": pull_json(ROOT_URL, &pr),
        "requested_reviewer": null,
        "repository": repository_json(ROOT_URL),
        "sender": sender,
        "commit_id": "",
        "review": null
    })
}

/// A review payload (`PullRequestPayload` with action `reviewed`), as `PullRequestReview` in
/// `services/webhook/notifier.go` fills it: the reviewer is both `requested_reviewer` and
/// `sender`, `review.type` is the hook type and `commit_id` is empty. Send it as event
/// `verdict.event()`, type `verdict.event_type()`.
pub fn review_payload(verdict: Verdict, content: &str, number: i64, title: &str) -> Value {
    let pr = PullSpec::open(
        number,
        title,
        &sha1_hex(format!("head {number}").as_bytes()),
    );
    let reviewer = user_json(ROOT_URL, 4, "reviewer");
    json!({
        "action": "reviewed",
        "number": number,
        "pull_request": pull_json(ROOT_URL, &pr),
        "requested_reviewer": reviewer,
        "repository": repository_json(ROOT_URL),
        "sender": reviewer,
        "commit_id": "",
        "review": {
            "type": verdict.event_type(),
            "content": content
        }
    })
}

/// A comment written on pull request `number` (`IssueCommentPayload`, action `created`). Send
/// it as event `issue_comment`, type `pull_request_comment`.
pub fn issue_comment_payload(number: i64, body: &str) -> Value {
    comment_payload(number, body, true)
}

/// A comment written on plain issue `number`. Send it as event and type `issue_comment`.
pub fn issue_comment_payload_on_issue(number: i64, body: &str) -> Value {
    comment_payload(number, body, false)
}

fn comment_payload(number: i64, body: &str, on_pull: bool) -> Value {
    let pr = PullSpec::open(number, &format!("ISSUE-{number}: work"), &sha1_hex(b"head"));
    let title = if on_pull {
        pr.title.clone()
    } else {
        format!("Bug {number}")
    };
    json!({
        "action": "created",
        "issue": issue_json(ROOT_URL, number, &title, "", on_pull.then_some(&pr)),
        "comment": comment_json(ROOT_URL, 300 + number, number, on_pull, "dev", body),
        "repository": repository_json(ROOT_URL),
        "sender": user_json(ROOT_URL, 2, "dev"),
        "is_pull": on_pull
    })
}

/// A delivery as Gitea sends it: the headers of `addDefaultHeaders` in its order, with a fresh
/// `X-Gitea-Delivery` UUID, and `payload` written as Go writes it. With an empty `secret` the
/// signature headers are sent empty, as Gitea does for a hook without a secret.
pub fn delivery(
    event: &str,
    event_type: &str,
    payload: &Value,
    secret: &[u8],
) -> (Vec<(String, String)>, Vec<u8>) {
    let body = go_json(payload);
    let (sha1, sha256) = if secret.is_empty() {
        (String::new(), String::new())
    } else {
        let mut sig1 =
            <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        sig1.update(&body);
        (
            hex::encode(sig1.finalize().into_bytes()),
            crate::signature::sign(secret, &body),
        )
    };
    let id = uuid_v4();
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("User-Agent", "Go-http-client/1.1".to_string()),
        ("X-Gitea-Delivery", id.clone()),
        ("X-Gitea-Event", event.to_string()),
        ("X-Gitea-Event-Type", event_type.to_string()),
        ("X-Gitea-Signature", sha256.clone()),
        ("X-Gogs-Delivery", id.clone()),
        ("X-Gogs-Event", event.to_string()),
        ("X-Gogs-Event-Type", event_type.to_string()),
        ("X-Gogs-Signature", sha256.clone()),
        ("X-Hub-Signature", format!("sha1={sha1}")),
        ("X-Hub-Signature-256", format!("sha256={sha256}")),
        ("X-GitHub-Delivery", id),
        ("X-GitHub-Event", event.to_string()),
        ("X-GitHub-Event-Type", event_type.to_string()),
    ];
    let headers = headers
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    (headers, body)
}

/// The value of header `name` (any case) among `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `value` as Go's `json.MarshalIndent(v, "", "  ")` writes it: two-space indentation and
/// `<`, `>`, `&`, U+2028 and U+2029 escaped (those characters only occur inside strings, so
/// replacing them in the text is exact).
pub fn go_json(value: &Value) -> Vec<u8> {
    let text = serde_json::to_string_pretty(value).expect("a JSON value always serializes");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

/// A random (version 4) UUID, as Gitea gives each delivery.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A stable 40-digit hex id (a commit sha) for `seed`.
pub fn sha1_hex(seed: &[u8]) -> String {
    hex::encode(Sha1::digest(seed))
}

fn hex_of(seed: &[u8], len: usize) -> String {
    let mut h = sha1_hex(seed);
    h.truncate(len);
    h
}
