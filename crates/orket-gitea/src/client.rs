//! The REST calls Orket makes to Gitea, each returning a [`Call`] record the caller stores as
//! an event, whatever happened.
//!
//! The paths, methods and bodies are those of Gitea's API description
//! (`templates/swagger/v1_json.tmpl`, operation ids in the method docs). What Gitea answers
//! is read as Gitea writes it (`routers/api/v1/repo/pull.go`): a merge that went through is
//! `200` with an empty body (there is nothing to parse, and nothing must be required of it);
//! a merge Gitea will not do is `405` (not allowed, already merged — with an empty message —,
//! work in progress, not mergeable yet), `409` (conflicts, head out of date, push rejected;
//! the body is then Gitea's error struct, not `{"message"}`), `422` (a body it cannot bind) or
//! `423` (archived repository); closing by `PATCH` answers `201`, and `412` when the pull
//! request was already merged. Those refusals come back as [`Outcome::Refused`] with Gitea's
//! words, never as success: the Python predecessor reported a failed merge as done.
//!
//! Server errors (`5xx`), timeouts and failed connections are retried with a backoff that
//! doubles ([`RetryPolicy`]); a `4xx` is an answer and is never retried. A retried `POST`
//! whose first answer was lost may have been applied: a merge retried into `405` is therefore
//! checked against the pull request itself ([`GiteaClient::merge`]); a comment may, rarely,
//! appear twice.

use crate::hook::PullRequest;
use orket_llm::http::{build_client, error_chain, truncate_chars};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

/// The longest piece of Gitea's answer quoted in an outcome, in characters.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// How patiently a call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; doubled before each further one.
    pub backoff: Duration,
    /// How long one attempt may take, answer body included.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 200 ms then 400 ms apart, 10 s each.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(10),
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum Outcome {
    /// Gitea did it.
    Ok,
    /// Gitea answered and would not do it (`405`, `409`, `412`, `422`, `423`): its message.
    Refused(String),
    /// It could not be done: another `4xx` (a missing token, a wrong path), a server error
    /// after the last retry, a timeout, no connection, or an answer that does not read.
    Failed(String),
}

/// One call as it happened, for the caller to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    /// The HTTP method.
    pub method: String,
    /// The URL path (`/api/v1/repos/…`), the base URL's own path included.
    pub path: String,
    /// The status of the last answer; `None` when no answer came.
    pub status: Option<u16>,
    /// Attempts made.
    pub attempts: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// What else the caller should know (why a `405` counts as done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Call {
    /// Whether Gitea did it.
    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    /// One line for logs: `POST /api/v1/… → 405 after 1 attempt: refused: …`.
    pub fn describe(&self) -> String {
        let status = self
            .status
            .map_or_else(|| "no answer".to_string(), |s| s.to_string());
        let plural = if self.attempts == 1 { "" } else { "s" };
        let outcome = match &self.outcome {
            Outcome::Ok => "ok".to_string(),
            Outcome::Refused(m) => format!("refused: {m}"),
            Outcome::Failed(m) => format!("failed: {m}"),
        };
        format!(
            "{} {} → {status} after {} attempt{plural}: {outcome}",
            self.method, self.path, self.attempts
        )
    }
}

/// A client that could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an `http(s)://` address a path can be added to.
    #[error("the Gitea address {url:?} is not usable: {reason}")]
    BaseUrl {
        /// The address given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
}

/// Gitea's REST API at one address, with one token.
#[derive(Clone)]
pub struct GiteaClient {
    http: reqwest::Client,
    base: Url,
    token: String,
    policy: RetryPolicy,
}

impl std::fmt::Debug for GiteaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GiteaClient")
            .field("base", &self.base.as_str())
            .field("token", &"<redacted>")
            .field("policy", &self.policy)
            .finish()
    }
}

impl GiteaClient {
    /// A client for the Gitea at `base_url` (`https://git.example`, or with a sub-path where
    /// Gitea is served under one), sending `Authorization: token <token>` and
    /// `Accept: application/json`, with the default [`RetryPolicy`].
    pub fn new(base_url: &str, token: &str) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::BaseUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let mut base = Url::parse(base_url.trim()).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("only http:// and https:// addresses are supported"));
        }
        if base.cannot_be_a_base() || base.host_str().is_none() {
            return Err(bad("it has no host to send requests to"));
        }
        base.set_query(None);
        base.set_fragment(None);
        // A stand-in or a Gitea on this machine is never reached through an HTTP proxy.
        let http = build_client(base.as_str()).map_err(ClientError::Http)?;
        Ok(GiteaClient {
            http,
            base,
            token: token.to_string(),
            policy: RetryPolicy::default(),
        })
    }

    /// The same client with another retry policy.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Its retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// The base URL it sends to.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// Comments on pull request (or issue) `index`: `POST
    /// /repos/{owner}/{repo}/issues/{index}/comments` with `{"body"}` (`issueCreateComment`,
    /// body `CreateIssueCommentOption`; Gitea answers `201` with the comment).
    pub async fn comment(&self, owner: &str, repo: &str, index: i64, body: &str) -> Call {
        let index = index.to_string();
        let segments = ["repos", owner, repo, "issues", &index, "comments"];
        self.send(Method::POST, &segments, Some(&json!({ "body": body })))
            .await
            .0
    }

    /// Merges pull request `index` with a merge commit and deletes its head branch: `POST
    /// /repos/{owner}/{repo}/pulls/{index}/merge` with `{"Do": "merge",
    /// "delete_branch_after_merge": true}` (`repoMergePullRequest`, body
    /// `MergePullRequestOption`; Gitea answers `200` with an empty body).
    ///
    /// When an earlier attempt got no answer and a later one is refused with `405`, the first
    /// may have merged it (Gitea answers `405` with no message to a merge of a merged pull
    /// request): the pull request is then fetched, and if it is merged the call is
    /// [`Outcome::Ok`] with a [`Call::note`] saying so.
    ///
    /// With `head`, Gitea merges only if the pull request's head is still that commit (the one
    /// reviewed) and answers `409` "head out of date" otherwise (`ErrSHADoesNotMatch`).
    pub async fn merge(&self, owner: &str, repo: &str, index: i64, head: Option<&str>) -> Call {
        let index_text = index.to_string();
        let segments = ["repos", owner, repo, "pulls", &index_text, "merge"];
        let mut body = json!({ "Do": "merge", "delete_branch_after_merge": true });
        if let Some(head) = head.filter(|h| !h.is_empty()) {
            body["head_commit_id"] = json!(head);
        }
        let (mut call, _) = self.send(Method::POST, &segments, Some(&body)).await;
        if call.attempts > 1 && call.status == Some(405) {
            let (check, pr) = self.get_pull(owner, repo, index).await;
            match pr {
                Some(pr) if pr.merged => {
                    tracing::info!(
                        "merge of {owner}/{repo}#{index}: an attempt whose answer was lost \
                         merged it; the retry's 405 is that merge"
                    );
                    call.outcome = Outcome::Ok;
                    call.note = Some(
                        "an earlier attempt's answer was lost and the retry was refused (405); \
                         the pull request is merged, so the earlier attempt merged it"
                            .to_string(),
                    );
                }
                _ => {
                    call.note = Some(format!(
                        "an earlier attempt's answer was lost; checking the pull request: {}",
                        check.describe()
                    ));
                }
            }
        }
        call
    }

    /// Closes pull request `index` without merging: `PATCH /repos/{owner}/{repo}/pulls/{index}`
    /// with `{"state": "closed"}` (`repoEditPullRequest`, body `EditPullRequestOption`; Gitea
    /// answers `201` with the pull request, `412` when it was already merged).
    pub async fn close_pull(&self, owner: &str, repo: &str, index: i64) -> Call {
        let index = index.to_string();
        let segments = ["repos", owner, repo, "pulls", &index];
        self.send(
            Method::PATCH,
            &segments,
            Some(&json!({ "state": "closed" })),
        )
        .await
        .0
    }

    /// Opens an issue: `POST /repos/{owner}/{repo}/issues` with `{"title", "body"}`
    /// (`issueCreateIssue`, body `CreateIssueOption`; Gitea answers `201` with the issue).
    /// No labels: Gitea takes label ids, not names. Returns the new issue's index when the
    /// answer says it.
    pub async fn create_issue(
        &self,
        owner: &str,
        repo: &str,
        title: &str,
        body: &str,
    ) -> (Call, Option<i64>) {
        let segments = ["repos", owner, repo, "issues"];
        let request = json!({ "title": title, "body": body });
        let (call, answer) = self.send(Method::POST, &segments, Some(&request)).await;
        let number = answer
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|issue| issue.get("number").and_then(Value::as_i64));
        if call.is_ok() && number.is_none() {
            tracing::warn!("Gitea created the issue but its answer names no number");
        }
        (call, number)
    }

    /// Reads pull request `index`: `GET /repos/{owner}/{repo}/pulls/{index}`
    /// (`repoGetPullRequest`; `200` with the pull request).
    pub async fn get_pull(
        &self,
        owner: &str,
        repo: &str,
        index: i64,
    ) -> (Call, Option<PullRequest>) {
        let index = index.to_string();
        let segments = ["repos", owner, repo, "pulls", &index];
        let (mut call, answer) = self.send(Method::GET, &segments, None).await;
        let Some(bytes) = answer else {
            return (call, None);
        };
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize::<_, PullRequest>(&mut deserializer) {
            Ok(pr) => (call, Some(pr)),
            Err(e) => {
                call.outcome = Outcome::Failed(format!(
                    "the pull request Gitea sent does not read at {}: {}",
                    e.path(),
                    e.inner()
                ));
                (call, None)
            }
        }
    }

    /// `/api/v1/` and `segments` (each percent-encoded) after the base URL's path.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // `new` refused the addresses that cannot take a path.
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        url
    }

    /// Sends one request with retries; the answer's body when it succeeded.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> (Call, Option<Vec<u8>>) {
        let url = self.url(segments);
        let path = url.path().to_string();
        let attempts = self.policy.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, format!("token {}", self.token))
                .header(ACCEPT, "application/json")
                .timeout(self.policy.timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            let answer = self.attempt(request).await;
            if answer.retry && attempt < attempts {
                let wait = self
                    .policy
                    .backoff
                    .saturating_mul(2u32.saturating_pow(attempt - 1));
                tracing::warn!(
                    "{method} {path}: attempt {attempt} of {attempts} failed ({}); retrying in \
                     {wait:?}",
                    answer.why()
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let call = Call {
                method: method.to_string(),
                path,
                status: answer.status,
                attempts: attempt,
                outcome: answer.outcome,
                note: None,
            };
            return (call, answer.body);
        }
    }

    async fn attempt(&self, request: reqwest::RequestBuilder) -> Attempt {
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return Attempt {
                    status: None,
                    retry: e.is_timeout() || e.is_connect(),
                    outcome: Outcome::Failed(self.transport_error(&e)),
                    body: None,
                }
            }
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                return Attempt {
                    status: Some(status.as_u16()),
                    retry: e.is_timeout() || status.is_server_error(),
                    outcome: Outcome::Failed(format!(
                        "Gitea answered {status} but its body did not arrive: {}",
                        self.transport_error(&e)
                    )),
                    body: None,
                }
            }
        };
        let (retry, outcome, body) = if status.is_success() {
            (false, Outcome::Ok, Some(bytes.to_vec()))
        } else if status.is_server_error() {
            let message = gitea_message(status, &bytes);
            (
                true,
                Outcome::Failed(format!("Gitea answered {status}: {message}")),
                None,
            )
        } else if is_refusal(status) {
            (false, Outcome::Refused(gitea_message(status, &bytes)), None)
        } else {
            let message = gitea_message(status, &bytes);
            (
                false,
                Outcome::Failed(format!("Gitea answered {status}: {message}")),
                None,
            )
        };
        Attempt {
            status: Some(status.as_u16()),
            retry,
            outcome,
            body,
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!(
                "no answer within {:?} (the attempt's timeout): {}",
                self.policy.timeout,
                error_chain(e)
            )
        } else if e.is_connect() {
            format!("cannot connect to Gitea: {}", error_chain(e))
        } else {
            error_chain(e)
        }
    }
}

/// One attempt's result.
struct Attempt {
    status: Option<u16>,
    retry: bool,
    outcome: Outcome,
    body: Option<Vec<u8>>,
}

impl Attempt {
    fn why(&self) -> &str {
        match &self.outcome {
            Outcome::Ok => "ok",
            Outcome::Refused(m) | Outcome::Failed(m) => m,
        }
    }
}

/// The answers that are Gitea declining the request, as opposed to a request that could not
/// reach its target.
fn is_refusal(status: StatusCode) -> bool {
    matches!(status.as_u16(), 405 | 409 | 412 | 422 | 423)
}

/// What Gitea said: its error JSON's `message` (`{"message", "url"}`), else the body itself
/// (the `409` conflict structs, or text), cut to [`MAX_MESSAGE_CHARS`].
fn gitea_message(status: StatusCode, body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => match map.get("message").and_then(Value::as_str) {
            Some(message) if !message.trim().is_empty() => message.trim().to_string(),
            _ if map.contains_key("message") && map.len() <= 2 => String::new(),
            _ => Value::Object(map).to_string(),
        },
        Ok(other) => other.to_string(),
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    };
    if text.is_empty() {
        return format!("no message (HTTP {status})");
    }
    truncate_chars(&text, MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_giteas_error_json() {
        let s = StatusCode::METHOD_NOT_ALLOWED;
        assert_eq!(
            gitea_message(
                s,
                br#"{"message":"Please try again later","url":"http://x/api/swagger"}"#
            ),
            "Please try again later"
        );
        assert_eq!(
            gitea_message(s, br#"{"message":"","url":"http://x/api/swagger"}"#),
            "no message (HTTP 405 Method Not Allowed)"
        );
        assert_eq!(
            gitea_message(s, b""),
            "no message (HTTP 405 Method Not Allowed)"
        );
        let conflict =
            br#"{"Style":"merge","StdOut":"","StdErr":"CONFLICT (content): README.md","Err":{}}"#;
        assert!(gitea_message(StatusCode::CONFLICT, conflict).contains("CONFLICT (content)"));
        assert_eq!(gitea_message(s, b"  plain text \n"), "plain text");
        let long = "x".repeat(MAX_MESSAGE_CHARS * 2);
        assert_eq!(
            gitea_message(s, long.as_bytes()).chars().count(),
            MAX_MESSAGE_CHARS + 1
        );
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(GiteaClient::new("http://127.0.0.1:3000", "t").is_ok());
        assert!(GiteaClient::new("mailto:someone@example.com", "t").is_err());
        assert!(GiteaClient::new("ftp://example.com", "t").is_err());
        assert!(GiteaClient::new("not a url", "t").is_err());
    }

    #[test]
    fn paths_keep_a_sub_path_and_escape_segments() {
        let client = GiteaClient::new("https://example.com/gitea/", "t").unwrap();
        let url = client.url(&["repos", "team", "a/b", "issues", "3", "comments"]);
        assert_eq!(
            url.path(),
            "/gitea/api/v1/repos/team/a%2Fb/issues/3/comments"
        );
        let client = GiteaClient::new("http://127.0.0.1:3000?x=1", "t").unwrap();
        assert_eq!(
            client.url(&["repos"]).as_str(),
            "http://127.0.0.1:3000/api/v1/repos"
        );
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let client = GiteaClient::new("http://127.0.0.1:3000", "very-secret").unwrap();
        assert!(!format!("{client:?}").contains("very-secret"));
    }

    #[test]
    fn calls_serialize_for_the_event_log() {
        let call = Call {
            method: "POST".into(),
            path: "/api/v1/repos/o/r/pulls/1/merge".into(),
            status: Some(405),
            attempts: 1,
            outcome: Outcome::Refused("Please try again later".into()),
            note: None,
        };
        let value = serde_json::to_value(&call).unwrap();
        assert_eq!(
            value,
            json!({
                "method": "POST",
                "path": "/api/v1/repos/o/r/pulls/1/merge",
                "status": 405,
                "attempts": 1,
                "outcome": {"kind": "refused", "message": "Please try again later"}
            })
        );
        assert_eq!(
            serde_json::to_value(Outcome::Ok).unwrap(),
            json!({"kind": "ok"})
        );
        assert!(call.describe().contains("refused: Please try again later"));
    }
}
