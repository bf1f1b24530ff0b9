//! The client against the stand-in: every call's path, method and body must match Gitea's API
//! description, and every answer Gitea can give must come back as the right [`Outcome`].

use orket_gitea::standin::{Request, Standin, OWNER, REPO};
use orket_gitea::{GiteaClient, Outcome, RetryPolicy};
use serde_json::json;
use std::time::Duration;

const SHA: &str = "5f2c1a9e0b7d4c3a2e1f0d9c8b7a6f5e4d3c2b1a";

/// A client for `standin` with quick retries (the waits are the client's own backoff).
fn client(standin: &Standin) -> GiteaClient {
    GiteaClient::new(standin.base_url(), &standin.token())
        .unwrap()
        .with_policy(RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(5),
            timeout: Duration::from_secs(5),
        })
}

fn last(standin: &Standin) -> Request {
    standin.requests().pop().expect("a request came")
}

fn assert_matched(request: &Request, operation: &str) {
    assert!(request.authorized, "{request:?}");
    assert!(request.matched, "{request:?}");
    assert_eq!(request.operation, Some(operation), "{request:?}");
}

#[tokio::test]
async fn comment_matches_issue_create_comment() {
    let standin = Standin::start().await;
    standin.add_pull(3, "ISSUE-1: x", SHA);
    let call = client(&standin)
        .comment(OWNER, REPO, 3, "checks passed")
        .await;
    assert_eq!(call.outcome, Outcome::Ok, "{}", call.describe());
    assert_eq!(call.status, Some(201));
    assert_eq!(call.attempts, 1);
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/api/v1/repos/team/demo/issues/3/comments");
    let request = last(&standin);
    assert_matched(&request, "issueCreateComment");
    assert_eq!(request.body, Some(json!({"body": "checks passed"})));
}

#[tokio::test]
async fn merge_succeeds_on_an_empty_200() {
    let standin = Standin::start().await;
    standin.add_pull(3, "ISSUE-1: x", SHA);
    let gitea = client(&standin);
    let call = gitea.merge(OWNER, REPO, 3, None).await;
    assert_eq!(call.outcome, Outcome::Ok, "{}", call.describe());
    assert_eq!(call.status, Some(200));
    assert_eq!(call.path, "/api/v1/repos/team/demo/pulls/3/merge");
    let request = last(&standin);
    assert_matched(&request, "repoMergePullRequest");
    assert_eq!(
        request.body,
        Some(json!({"Do": "merge", "delete_branch_after_merge": true}))
    );
    let (_, pr) = gitea.get_pull(OWNER, REPO, 3).await;
    assert!(pr.unwrap().merged);
    // Merging it again is what Gitea refuses with an empty 405.
    let again = gitea.merge(OWNER, REPO, 3, None).await;
    assert_eq!(again.status, Some(405));
    assert_eq!(
        again.outcome,
        Outcome::Refused("no message (HTTP 405 Method Not Allowed)".into())
    );
}

#[tokio::test]
async fn merge_refusals_are_never_success() {
    for (status, message) in [
        (405, "Please try again later"),
        (409, "CONFLICT (content): Merge conflict in README.md"),
        (422, "[Do]: Required"),
    ] {
        let standin = Standin::start().await;
        standin.add_pull(3, "ISSUE-1: x", SHA);
        standin.refuse_next_merge(status, message);
        let gitea = client(&standin);
        let call = gitea.merge(OWNER, REPO, 3, None).await;
        assert_eq!(call.status, Some(status));
        assert_eq!(call.attempts, 1, "a refusal is not retried");
        match &call.outcome {
            Outcome::Refused(got) => assert!(got.contains(message), "{status}: {got}"),
            other => panic!("{status}: expected a refusal, got {other:?}"),
        }
        assert!(!call.is_ok());
        let (_, pr) = gitea.get_pull(OWNER, REPO, 3).await;
        assert!(!pr.unwrap().merged, "{status}: nothing was merged");
    }
}

#[tokio::test]
async fn a_server_error_is_retried() {
    let standin = Standin::start().await;
    standin.add_pull(3, "ISSUE-1: x", SHA);
    standin.fail_next(1);
    let call = client(&standin).comment(OWNER, REPO, 3, "hello").await;
    assert_eq!(call.outcome, Outcome::Ok, "{}", call.describe());
    assert_eq!(call.attempts, 2);
    assert_eq!(call.status, Some(201));
    let statuses: Vec<_> = standin.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(201)]);
}

#[tokio::test]
async fn server_errors_past_the_last_attempt_fail() {
    let standin = Standin::start().await;
    standin.add_pull(3, "ISSUE-1: x", SHA);
    standin.fail_next(5);
    let call = client(&standin).merge(OWNER, REPO, 3, None).await;
    assert_eq!(call.attempts, 3);
    assert_eq!(call.status, Some(500));
    assert!(
        matches!(&call.outcome, Outcome::Failed(m) if m.contains("500")),
        "{call:?}"
    );
}

#[tokio::test]
async fn a_404_is_not_retried() {
    let standin = Standin::start().await;
    let call = client(&standin).merge(OWNER, REPO, 99, None).await;
    assert_eq!(call.status, Some(404));
    assert_eq!(call.attempts, 1);
    assert!(
        matches!(&call.outcome, Outcome::Failed(m) if m.contains("404") && m.contains("does not exist")),
        "{call:?}"
    );
    assert_eq!(standin.requests().len(), 1);
    // A repository the token cannot see is a 404 too.
    let call = client(&standin).comment("someone", "else", 1, "x").await;
    assert_eq!(call.status, Some(404));
    assert_eq!(call.attempts, 1);
}

#[tokio::test]
async fn close_answers_201() {
    let standin = Standin::start().await;
    standin.add_pull(4, "ISSUE-2: y", SHA);
    let gitea = client(&standin);
    let call = gitea.close_pull(OWNER, REPO, 4).await;
    assert_eq!(call.outcome, Outcome::Ok, "{}", call.describe());
    assert_eq!(call.status, Some(201));
    assert_eq!(call.method, "PATCH");
    assert_eq!(call.path, "/api/v1/repos/team/demo/pulls/4");
    let request = last(&standin);
    assert_matched(&request, "repoEditPullRequest");
    assert_eq!(request.body, Some(json!({"state": "closed"})));
    let (_, pr) = gitea.get_pull(OWNER, REPO, 4).await;
    let pr = pr.unwrap();
    assert_eq!(pr.state, "closed");
    assert!(!pr.merged);
    // A closed pull request cannot be merged: Gitea answers 404.
    let call = gitea.merge(OWNER, REPO, 4, None).await;
    assert_eq!(call.status, Some(404));
}

#[tokio::test]
async fn closing_a_merged_pull_request_is_refused() {
    let standin = Standin::start().await;
    standin.add_pull(4, "ISSUE-2: y", SHA);
    let gitea = client(&standin);
    assert!(gitea.merge(OWNER, REPO, 4, None).await.is_ok());
    let call = gitea.close_pull(OWNER, REPO, 4).await;
    assert_eq!(call.status, Some(412));
    assert_eq!(
        call.outcome,
        Outcome::Refused("cannot change state of this pull request, it was already merged".into())
    );
}

#[tokio::test]
async fn create_issue_sends_title_and_body_only() {
    let standin = Standin::start().await;
    standin.add_pull(3, "ISSUE-1: x", SHA);
    let (call, number) = client(&standin)
        .create_issue(OWNER, REPO, "Flaky test", "seen twice")
        .await;
    assert_eq!(call.outcome, Outcome::Ok, "{}", call.describe());
    assert_eq!(call.status, Some(201));
    assert_eq!(call.path, "/api/v1/repos/team/demo/issues");
    assert_eq!(number, Some(4), "issues and pull requests share the index");
    let request = last(&standin);
    assert_matched(&request, "issueCreateIssue");
    assert_eq!(
        request.body,
        Some(json!({"title": "Flaky test", "body": "seen twice"}))
    );
    // A comment on the new issue works too.
    let call = client(&standin).comment(OWNER, REPO, 4, "tracking").await;
    assert!(call.is_ok(), "{}", call.describe());
}

#[tokio::test]
async fn get_pull_reads_the_pull_request() {
    let standin = Standin::start().await;
    standin.add_pull(5, "[DEMO-2] readme", SHA);
    let (call, pr) = client(&standin).get_pull(OWNER, REPO, 5).await;
    assert!(call.is_ok(), "{}", call.describe());
    assert_eq!(call.method, "GET");
    assert_matched(&last(&standin), "repoGetPullRequest");
    let pr = pr.unwrap();
    assert_eq!(pr.number, 5);
    assert_eq!(pr.title, "[DEMO-2] readme");
    assert_eq!(pr.head.sha, SHA);
    assert_eq!(pr.head.ref_name, "issue-5");
    assert_eq!(pr.base.ref_name, "main");
    assert_eq!(pr.state, "open");
    let (call, pr) = client(&standin).get_pull(OWNER, REPO, 6).await;
    assert_eq!(call.status, Some(404));
    assert!(pr.is_none());
}

#[tokio::test]
async fn a_wrong_token_fails_without_retry() {
    let standin = Standin::start().await;
    standin.add_pull(3, "ISSUE-1: x", SHA);
    let gitea = GiteaClient::new(standin.base_url(), "wrong").unwrap();
    let call = gitea.comment(OWNER, REPO, 3, "x").await;
    assert_eq!(call.status, Some(401));
    assert_eq!(call.attempts, 1);
    assert!(matches!(call.outcome, Outcome::Failed(_)));
    assert!(!last(&standin).authorized);
}

#[tokio::test]
async fn a_merge_whose_answer_was_lost_is_recognized() {
    let standin = Standin::start().await;
    standin.add_pull(3, "ISSUE-1: x", SHA);
    standin.lose_next_answers(1);
    let call = client(&standin).merge(OWNER, REPO, 3, None).await;
    // Attempt 1 merged but answered 500; attempt 2 got Gitea's 405 for a merged one.
    assert_eq!(call.attempts, 2);
    assert_eq!(call.status, Some(405));
    assert_eq!(call.outcome, Outcome::Ok, "{}", call.describe());
    assert!(
        call.note.as_deref().unwrap_or_default().contains("merged"),
        "{call:?}"
    );
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let standin = Standin::start().await;
    standin.add_pull(3, "ISSUE-1: x", SHA);
    standin.stall_next(1);
    let gitea = client(&standin).with_policy(RetryPolicy {
        attempts: 2,
        backoff: Duration::from_millis(5),
        // Long enough for an answered attempt on a loaded machine; the stalled ones wait it out.
        timeout: Duration::from_secs(1),
    });
    let call = gitea.get_pull(OWNER, REPO, 3).await.0;
    assert!(call.is_ok(), "{}", call.describe());
    assert_eq!(call.attempts, 2);
    standin.stall_next(5);
    let call = gitea.get_pull(OWNER, REPO, 3).await.0;
    assert_eq!(call.status, None);
    assert_eq!(call.attempts, 2);
    assert!(
        matches!(&call.outcome, Outcome::Failed(m) if m.contains("no answer within")),
        "{call:?}"
    );
}

#[tokio::test]
async fn no_gitea_at_all_fails_after_retries() {
    // A port nothing listens on: bind one, then free it.
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let gitea = GiteaClient::new(&format!("http://{address}"), "t")
        .unwrap()
        .with_policy(RetryPolicy {
            attempts: 2,
            backoff: Duration::from_millis(5),
            timeout: Duration::from_secs(2),
        });
    let call = gitea.comment(OWNER, REPO, 1, "x").await;
    assert_eq!(call.status, None);
    assert_eq!(call.attempts, 2);
    assert!(
        matches!(&call.outcome, Outcome::Failed(m) if m.contains("cannot connect")),
        "{call:?}"
    );
}

#[tokio::test]
async fn the_stand_in_refuses_what_gitea_would_not_take() {
    let standin = Standin::start().await;
    standin.add_pull(3, "ISSUE-1: x", SHA);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!(
        "{}/api/v1/repos/team/demo/pulls/3/merge",
        standin.base_url()
    );
    // GitHub's merge body: unknown to Gitea, and `Do` missing.
    let answer = http
        .post(&url)
        .header("Authorization", format!("token {}", standin.token()))
        .json(&json!({"merge_method": "squash"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 422);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("merge_method"),
        "{error}"
    );
    assert!(
        error["url"].as_str().unwrap().ends_with("/api/swagger"),
        "{error}"
    );
    let request = last(&standin);
    assert!(!request.matched);
    assert_eq!(request.problems.len(), 2, "{request:?}");
    // GitHub's path for a review.
    let answer = http
        .post(format!(
            "{}/api/v1/repos/team/demo/pulls/3/reviews/1/events",
            standin.base_url()
        ))
        .header("Authorization", format!("token {}", standin.token()))
        .json(&json!({"event": "APPROVE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    assert_eq!(last(&standin).operation, None);
    // Waiting on a condition, not a clock.
    assert!(
        standin
            .wait_for(|requests| requests.len() == 2, Duration::from_secs(5))
            .await
    );
}
