//! Webhook deliveries as Gitea sends them, read into a [`Hook`] Orket can act on.
//!
//! Gitea names an event twice (`services/webhook/deliver.go`): `X-Gitea-Event-Type` is the
//! precise hook event (`modules/webhook/type.go`: `pull_request_sync`,
//! `pull_request_review_approved`, …) and `X-Gitea-Event` the coarser name its `Event()` maps
//! it to (`pull_request`, `pull_request_approved`, …). [`parse`] dispatches on the type when
//! it came and on the event otherwise. The two vocabularies overlap on one word with two
//! meanings: the *type* `pull_request_comment` is a plain comment on a pull request (its event
//! is `issue_comment`), while the *event* `pull_request_comment` is a review that only comments
//! (type `pull_request_review_comment`). Dispatching on the wrong header there turns review
//! comments into chat or the reverse, so the table below keeps them apart.
//!
//! A review arrives as a [`PullRequestPayload`] with action `reviewed` and
//! `review: {type, content}`, where `type` is the hook type itself
//! (`services/webhook/notifier.go`, `PullRequestReview`); there is no GitHub-style
//! `review.state`. The verdict is read from the header and checked against `review.type`,
//! which, unlike the headers, is covered by the signature. A merge arrives as action `closed`
//! with `pull_request.merged: true` (`MergePullRequest` in the same file). A push to a pull
//! request's branch is type `pull_request_sync`, event `pull_request`, action `synchronized`.
//!
//! Only the fields Orket reads are declared; serde skips the many others, so newer Gitea
//! versions that add fields still parse. Fields an older version may lack default.

use serde::{Deserialize, Serialize};

/// The header naming the coarse event (`pull_request`, `issue_comment`, …).
pub const EVENT_HEADER: &str = "X-Gitea-Event";
/// The header naming the precise hook event type (`pull_request_sync`, …).
pub const EVENT_TYPE_HEADER: &str = "X-Gitea-Event-Type";
/// The header carrying the delivery's id (a UUID), the same on a redelivery.
pub const DELIVERY_HEADER: &str = "X-Gitea-Delivery";

/// A user as webhook payloads carry it (`modules/structs/user.go`, `User`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user name (`login`; Gitea also sends it as `username`).
    pub login: String,
}

/// A repository (`modules/structs/repo.go`, `Repository`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// Its owner, a user or an organization.
    pub owner: User,
    /// Its name.
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    /// Its page.
    #[serde(default)]
    pub html_url: String,
}

/// One side of a pull request (`modules/structs/pull.go`, `PRBranchInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    /// The branch name (`ref`).
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// Its head commit.
    #[serde(default)]
    pub sha: String,
    /// Gitea's display name for it (`label`).
    #[serde(default)]
    pub label: String,
}

/// A pull request (`modules/structs/pull.go`, `PullRequest`): the payload's `pull_request`,
/// and the answer to `GET /repos/{owner}/{repo}/pulls/{index}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// Its index in the repository (`number`), shared with issues.
    pub number: i64,
    /// Its title.
    pub title: String,
    /// `open` or `closed` (a merged one is `closed` with `merged`).
    pub state: String,
    /// Whether it has been merged.
    #[serde(default)]
    pub merged: bool,
    /// When it was merged (RFC 3339), if it was.
    #[serde(default)]
    pub merged_at: Option<String>,
    /// The branch it comes from.
    pub head: Branch,
    /// The branch it goes into.
    pub base: Branch,
    /// Its page.
    #[serde(default)]
    pub html_url: String,
    /// Its author.
    pub user: User,
}

/// A review's verdict and text as the payload carries it (`modules/structs/hook.go`,
/// `ReviewPayload`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The hook type of the review (`pull_request_review_approved`, `…_rejected`,
    /// `…_comment`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its text.
    #[serde(default)]
    pub content: String,
}

/// The payload of `pull_request*` events, reviews included (`modules/structs/hook.go`,
/// `PullRequestPayload`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestPayload {
    /// What happened (`HookIssueAction`: `opened`, `closed`, `synchronized`, `reviewed`, …).
    pub action: String,
    /// The pull request's index.
    #[serde(default)]
    pub number: i64,
    /// The pull request after the event.
    pub pull_request: PullRequest,
    /// Where it lives.
    pub repository: Repository,
    /// Who did it (for a review: the reviewer).
    #[serde(default)]
    pub sender: Option<User>,
    /// The review, for review events.
    #[serde(default)]
    pub review: Option<Review>,
}

/// What `issue.pull_request` holds when the issue is a pull request
/// (`modules/structs/issue.go`, `PullRequestMeta`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestMeta {
    /// Whether it has been merged.
    #[serde(default)]
    pub merged: bool,
}

/// An issue or pull request as comment payloads carry it (`modules/structs/issue.go`, `Issue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Its index.
    pub number: i64,
    /// Its title.
    pub title: String,
    /// Set when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<PullRequestMeta>,
}

/// A comment (`modules/structs/issue_comment.go`, `Comment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Its text.
    pub body: String,
    /// Its author.
    pub user: User,
}

/// The payload of `issue_comment` events (`modules/structs/hook.go`, `IssueCommentPayload`):
/// comments on issues and on pull requests alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueCommentPayload {
    /// `created`, `edited` or `deleted`.
    pub action: String,
    /// The issue or pull request commented on.
    pub issue: Issue,
    /// The comment.
    pub comment: Comment,
    /// Where it lives.
    pub repository: Repository,
    /// Whether the issue is a pull request (read from `issue.pull_request` when absent).
    #[serde(default)]
    pub is_pull: Option<bool>,
}

/// What happened to a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrAction {
    /// Opened.
    Opened,
    /// Reopened.
    Reopened,
    /// Closed: merged, or closed without merging.
    Closed {
        /// Whether the close was the merge.
        merged: bool,
    },
    /// New commits were pushed to its head branch.
    Synchronized,
    /// Its title, description or base branch changed.
    Edited,
    /// Anything else (`assigned`, `label_updated`, `review_requested`, …), by Gitea's name.
    Other(String),
}

/// A review's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Approved.
    Approved,
    /// Changes requested (Gitea calls it rejected).
    Rejected,
    /// A review that only comments.
    Comment,
}

impl Verdict {
    /// Gitea's hook type for it (also the payload's `review.type`).
    pub fn event_type(self) -> &'static str {
        match self {
            Verdict::Approved => "pull_request_review_approved",
            Verdict::Rejected => "pull_request_review_rejected",
            Verdict::Comment => "pull_request_review_comment",
        }
    }

    /// Gitea's coarse event for it (`X-Gitea-Event`).
    pub fn event(self) -> &'static str {
        match self {
            Verdict::Approved => "pull_request_approved",
            Verdict::Rejected => "pull_request_rejected",
            Verdict::Comment => "pull_request_comment",
        }
    }

    fn from_event_type(event_type: &str) -> Option<Verdict> {
        [Verdict::Approved, Verdict::Rejected, Verdict::Comment]
            .into_iter()
            .find(|v| v.event_type() == event_type)
    }
}

/// What happened to a comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentAction {
    /// Written.
    Created,
    /// Changed.
    Edited,
    /// Removed: its body is what it said before.
    Deleted,
    /// A name this crate does not know.
    Other(String),
}

/// A delivery, read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hook {
    /// Something happened to a pull request (opened, pushed to, closed, merged, …).
    PullRequest {
        /// What happened.
        action: PrAction,
        /// The pull request after it.
        pr: PullRequest,
        /// Where.
        repo: Repository,
    },
    /// A review was submitted.
    Review {
        /// Its verdict.
        verdict: Verdict,
        /// Its text.
        content: String,
        /// Who reviewed (the payload's `sender`; empty if Gitea sent none).
        reviewer: String,
        /// The pull request reviewed.
        pr: PullRequest,
        /// Where.
        repo: Repository,
    },
    /// A comment on an issue or a pull request (not part of a review).
    IssueComment {
        /// What happened to the comment: only a created one is a new message.
        action: CommentAction,
        /// The pull request's index when the comment is on one; `None` on a plain issue.
        pr_number: Option<i64>,
        /// The issue's or pull request's index.
        number: i64,
        /// The comment's text.
        body: String,
        /// Its author.
        author: String,
        /// Where.
        repo: Repository,
    },
    /// An event Orket does not act on, by the name it came under; recorded, nothing more.
    Other {
        /// The event type (or the event, when no type came).
        event: String,
    },
}

/// Why a delivery could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// Neither event header came (or both came empty).
    #[error(
        "the delivery names no event: neither {EVENT_TYPE_HEADER} nor {EVENT_HEADER} came \
         (is this a Gitea webhook?)"
    )]
    MissingEvent,
    /// The body is not the payload the event calls for.
    #[error("the {event} payload does not read{}: {message}", at_path(.path))]
    Payload {
        /// The event (type) it was read as.
        event: String,
        /// Where in the JSON it went wrong (`pull_request.head.sha`; empty at the top).
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The header's verdict and the signed payload's `review.type` disagree.
    #[error(
        "the review's verdict is unclear: the headers say {header} but the payload's review.type \
         is {payload:?}"
    )]
    VerdictMismatch {
        /// The event type the headers named.
        header: String,
        /// The payload's `review.type` (empty when the payload has no review).
        payload: String,
    },
}

fn at_path(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!(" at {path}")
    }
}

/// The kinds of payload Orket reads, by event type or event.
enum Kind {
    PullRequest,
    Review(Verdict),
    IssueComment,
    Other,
}

/// The kind of an `X-Gitea-Event-Type` (`modules/webhook/type.go`).
fn kind_of_event_type(event_type: &str) -> Kind {
    match event_type {
        "pull_request"
        | "pull_request_sync"
        | "pull_request_assign"
        | "pull_request_label"
        | "pull_request_milestone"
        | "pull_request_review_request" => Kind::PullRequest,
        // A plain comment on a pull request: `Event()` maps it to `issue_comment`.
        "issue_comment" | "pull_request_comment" => Kind::IssueComment,
        other => Verdict::from_event_type(other).map_or(Kind::Other, Kind::Review),
    }
}

/// The kind of an `X-Gitea-Event` (the values of `HookEventType.Event()`).
fn kind_of_event(event: &str) -> Kind {
    match event {
        "pull_request" => Kind::PullRequest,
        "issue_comment" => Kind::IssueComment,
        "pull_request_approved" => Kind::Review(Verdict::Approved),
        "pull_request_rejected" => Kind::Review(Verdict::Rejected),
        // A review that only comments: its type is `pull_request_review_comment`.
        "pull_request_comment" => Kind::Review(Verdict::Comment),
        _ => Kind::Other,
    }
}

/// Reads a delivery: `event` and `event_type` are the `X-Gitea-Event` and
/// `X-Gitea-Event-Type` headers (`None` when not sent), `body` the raw body (check its
/// signature first, [`crate::signature::verify`]).
pub fn parse(
    event: Option<&str>,
    event_type: Option<&str>,
    body: &[u8],
) -> Result<Hook, HookError> {
    let event = event.map(str::trim).filter(|e| !e.is_empty());
    let event_type = event_type.map(str::trim).filter(|e| !e.is_empty());
    let (name, kind) = match (event_type, event) {
        (Some(event_type), _) => (event_type, kind_of_event_type(event_type)),
        (None, Some(event)) => (event, kind_of_event(event)),
        (None, None) => return Err(HookError::MissingEvent),
    };
    match kind {
        Kind::Other => Ok(Hook::Other {
            event: name.to_string(),
        }),
        Kind::PullRequest => {
            let payload: PullRequestPayload = read(name, body)?;
            let action = match payload.action.as_str() {
                "opened" => PrAction::Opened,
                "reopened" => PrAction::Reopened,
                "closed" => PrAction::Closed {
                    merged: payload.pull_request.merged,
                },
                "synchronized" => PrAction::Synchronized,
                "edited" => PrAction::Edited,
                other => PrAction::Other(other.to_string()),
            };
            Ok(Hook::PullRequest {
                action,
                pr: payload.pull_request,
                repo: payload.repository,
            })
        }
        Kind::Review(verdict) => {
            let payload: PullRequestPayload = read(name, body)?;
            let review = payload.review.unwrap_or(Review {
                kind: String::new(),
                content: String::new(),
            });
            if review.kind != verdict.event_type() {
                return Err(HookError::VerdictMismatch {
                    header: verdict.event_type().to_string(),
                    payload: review.kind,
                });
            }
            Ok(Hook::Review {
                verdict,
                content: review.content,
                reviewer: payload.sender.map(|u| u.login).unwrap_or_default(),
                pr: payload.pull_request,
                repo: payload.repository,
            })
        }
        Kind::IssueComment => {
            let payload: IssueCommentPayload = read(name, body)?;
            let is_pull = payload
                .is_pull
                .unwrap_or(payload.issue.pull_request.is_some());
            let action = match payload.action.as_str() {
                "created" => CommentAction::Created,
                "edited" => CommentAction::Edited,
                "deleted" => CommentAction::Deleted,
                other => CommentAction::Other(other.to_string()),
            };
            Ok(Hook::IssueComment {
                action,
                pr_number: is_pull.then_some(payload.issue.number),
                number: payload.issue.number,
                body: payload.comment.body,
                author: payload.comment.user.login,
                repo: payload.repository,
            })
        }
    }
}

/// Deserializes `body`, naming the JSON path of the first problem.
fn read<T: serde::de::DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, HookError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| HookError::Payload {
            event: event.to_string(),
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    deserializer.end().map_err(|e| HookError::Payload {
        event: event.to_string(),
        path: String::new(),
        message: e.to_string(),
    })?;
    Ok(value)
}

/// The card ids a pull request's title names, in order of first mention, each once: words
/// shaped like `ISSUE-1234` (upper-case ASCII letters, a dash, ASCII digits, standing alone
/// between characters other than letters, digits, `-` and `_`), and any of the `known` ids written in
/// brackets (`[DEMO-2]`, compared ignoring ASCII case and answered in the `known` spelling).
/// A shaped word is only a candidate (`UTF-8` has the shape): the caller checks it against its
/// cards. Any text is accepted; nothing panics.
pub fn card_ids(title: &str, known: &[&str]) -> Vec<String> {
    fn push(id: &str, found: &mut Vec<String>) {
        if !found.iter().any(|f| f == id) {
            found.push(id.to_string());
        }
    }
    let mut found: Vec<String> = Vec::new();
    // Walk the title once, recording each word and each bracketed span where it starts, so
    // the ids come out in the order they are written.
    let mut word_start: Option<usize> = None;
    let mut bracket_start: Option<usize> = None;
    // Any letter or digit continues a word, so `ĲSSUE-3` is one word (and not an id).
    let is_word_char = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    for (i, c) in title
        .char_indices()
        .chain(std::iter::once((title.len(), ' ')))
    {
        if c == ']' {
            if let Some(start) = bracket_start.take() {
                let inner = title[start..i].trim();
                // `[]` names nothing, whatever `known` holds.
                let hit = known
                    .iter()
                    .find(|k| !inner.is_empty() && k.eq_ignore_ascii_case(inner));
                if let Some(id) = hit {
                    push(id, &mut found);
                }
            }
        }
        if is_word_char(c) && i < title.len() {
            word_start.get_or_insert(i);
        } else if let Some(start) = word_start.take() {
            let word = &title[start..i];
            if is_card_shaped(word) {
                push(word, &mut found);
            }
        }
        if c == '[' {
            bracket_start = Some(i + c.len_utf8());
        }
    }
    found
}

/// `[A-Z]+-[0-9]+`, the whole word.
fn is_card_shaped(word: &str) -> bool {
    let Some((letters, digits)) = word.split_once('-') else {
        return false;
    };
    !letters.is_empty()
        && !digits.is_empty()
        && letters.bytes().all(|b| b.is_ascii_uppercase())
        && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_ids_reads_shaped_words() {
        assert_eq!(card_ids("ISSUE-0042: fix", &[]), vec!["ISSUE-0042"]);
        assert_eq!(
            card_ids("ISSUE-1 and ISSUE-2, again ISSUE-1", &[]),
            vec!["ISSUE-1", "ISSUE-2"]
        );
        assert_eq!(card_ids("(ISSUE-7)", &[]), vec!["ISSUE-7"]);
    }

    #[test]
    fn card_ids_reads_known_ids_in_brackets() {
        assert_eq!(card_ids("[DEMO-2] readme", &["DEMO-2"]), vec!["DEMO-2"]);
        // The shape alone finds it too; the known spelling wins for other shapes.
        assert_eq!(card_ids("[DEMO-2] readme", &[]), vec!["DEMO-2"]);
        assert_eq!(
            card_ids("[card_7] tidy [ x ]", &["card_7", "x"]),
            vec!["card_7", "x"]
        );
        assert_eq!(card_ids("[Card_7] tidy", &["card_7"]), vec!["card_7"]);
        // Unknown bracketed text is not an id.
        assert!(card_ids("[wip] readme", &["DEMO-2"]).is_empty());
    }

    #[test]
    fn card_ids_finds_nothing_in_plain_titles() {
        assert!(card_ids("fix the readme", &["DEMO-2"]).is_empty());
        assert!(card_ids("", &[]).is_empty());
        assert!(card_ids("issue-42 lower case", &[]).is_empty());
        assert!(card_ids("ISSUE-42-fix branch-like", &[]).is_empty());
        assert!(card_ids("ISSUE- -42 ISSUE42 -", &[]).is_empty());
    }

    #[test]
    fn card_ids_survives_odd_input() {
        let odd = [
            "[",
            "]",
            "[[[]]]",
            "[DEMO-2",
            "DEMO-2]",
            "]DEMO-2[",
            "ÄÖÜ-12 ĲSSUE-3",
            "🦀-1 [🦀] [DEMO-2🦀]",
            "\u{0}\u{feff}ISSUE-1\u{200b}",
            "ISSUE-١٢٣",
            "ISSUE-99999999999999999999999999999",
            "-",
            "--",
            "A-",
            "-1",
            "[ ]",
            "[é]",
            "\r\n\t",
        ];
        let known = ["DEMO-2", "🦀", "é", ""];
        for title in odd {
            let ids = card_ids(title, &known);
            for id in &ids {
                assert!(title.contains(id.as_str()) || known.contains(&id.as_str()));
            }
        }
        assert_eq!(card_ids("[🦀] x", &known), vec!["🦀"]);
        // Invisible characters separate words like any other non-word character.
        assert_eq!(
            card_ids("\u{0}\u{feff}ISSUE-1\u{200b}", &[]),
            vec!["ISSUE-1"]
        );
        assert!(card_ids("ÄÖÜ-12 ĲSSUE-3 ISSUE-١٢٣", &[]).is_empty());
        assert!(card_ids("[] [ ]", &[""]).is_empty());
        assert_eq!(
            card_ids("ISSUE-99999999999999999999999999999", &[]),
            vec!["ISSUE-99999999999999999999999999999"]
        );
        // Every prefix and suffix of a mixed title, cut at every char boundary.
        let mixed = "[DEMO-2] 🦀 ISSUE-0042: fïx [ünknown] ]][[";
        for (i, _) in mixed.char_indices() {
            let _ = card_ids(&mixed[..i], &known);
            let _ = card_ids(&mixed[i..], &known);
        }
    }
}
