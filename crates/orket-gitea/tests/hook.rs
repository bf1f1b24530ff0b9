//! Reading deliveries built as Gitea sends them (the stand-in's builders): every event kind
//! Orket acts on, through the signature check and the headers, as the webhook route will.

use orket_gitea::hook::{EVENT_HEADER, EVENT_TYPE_HEADER};
use orket_gitea::signature::{GITEA_SIGNATURE_HEADER, HUB_SIGNATURE_256_HEADER};
use orket_gitea::standin::{
    delivery, header, issue_comment_payload, issue_comment_payload_on_issue, pull_request_payload,
    review_payload,
};
use orket_gitea::{
    parse, verify, CommentAction, Hook, HookError, PrAction, SignatureError, Verdict,
};
use serde_json::Value;

const SECRET: &[u8] = b"hook-secret";
const SHA: &str = "5f2c1a9e0b7d4c3a2e1f0d9c8b7a6f5e4d3c2b1a";

/// Delivers `payload` as Gitea would and reads it as the route will: signature, then headers.
fn receive(event: &str, event_type: &str, payload: &Value) -> Result<Hook, HookError> {
    let (headers, body) = delivery(event, event_type, payload, SECRET);
    verify(
        SECRET,
        &body,
        header(&headers, GITEA_SIGNATURE_HEADER),
        header(&headers, HUB_SIGNATURE_256_HEADER),
    )
    .expect("the delivery is signed");
    parse(
        header(&headers, EVENT_HEADER),
        header(&headers, EVENT_TYPE_HEADER),
        &body,
    )
}

fn pr_hook(action: &str, event_type: &str, merged: bool) -> (PrAction, i64, String, String) {
    let payload = pull_request_payload(
        action,
        7,
        "ISSUE-0042: fix the <parser> & tests",
        merged,
        SHA,
    );
    match receive("pull_request", event_type, &payload).unwrap() {
        Hook::PullRequest { action, pr, repo } => {
            assert_eq!(repo.owner.login, "team");
            assert_eq!(repo.name, "demo");
            assert_eq!(repo.full_name, "team/demo");
            assert_eq!(repo.html_url, "http://localhost:3000/team/demo");
            assert_eq!(pr.title, "ISSUE-0042: fix the <parser> & tests");
            assert_eq!(pr.head.ref_name, "issue-7");
            assert_eq!(pr.head.label, "issue-7");
            assert_eq!(pr.base.ref_name, "main");
            assert_eq!(pr.html_url, "http://localhost:3000/team/demo/pulls/7");
            assert_eq!(pr.user.login, "dev");
            assert_eq!(pr.merged, merged);
            assert_eq!(pr.merged_at.is_some(), merged);
            (action, pr.number, pr.state, pr.head.sha)
        }
        other => panic!("expected a pull request hook, got {other:?}"),
    }
}

#[test]
fn opened_and_reopened() {
    assert_eq!(
        pr_hook("opened", "pull_request", false),
        (PrAction::Opened, 7, "open".into(), SHA.into())
    );
    assert_eq!(
        pr_hook("reopened", "pull_request", false).0,
        PrAction::Reopened
    );
}

#[test]
fn a_push_to_the_branch_is_synchronized() {
    assert_eq!(
        pr_hook("synchronized", "pull_request_sync", false).0,
        PrAction::Synchronized
    );
}

#[test]
fn closed_unmerged_and_merged() {
    let (action, _, state, _) = pr_hook("closed", "pull_request", false);
    assert_eq!(action, PrAction::Closed { merged: false });
    assert_eq!(state, "closed");
    let (action, _, state, _) = pr_hook("closed", "pull_request", true);
    assert_eq!(action, PrAction::Closed { merged: true });
    assert_eq!(state, "closed");
}

#[test]
fn other_pull_request_actions_keep_giteas_name() {
    let payload = pull_request_payload("label_updated", 7, "t", false, SHA);
    match receive("pull_request", "pull_request_label", &payload).unwrap() {
        Hook::PullRequest { action, .. } => {
            assert_eq!(action, PrAction::Other("label_updated".into()))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reviews_carry_their_verdict() {
    for verdict in [Verdict::Approved, Verdict::Rejected, Verdict::Comment] {
        let payload = review_payload(verdict, "looks right", 9, "[DEMO-2] readme");
        let hook = receive(verdict.event(), verdict.event_type(), &payload).unwrap();
        match hook {
            Hook::Review {
                verdict: got,
                content,
                reviewer,
                pr,
                repo,
            } => {
                assert_eq!(got, verdict);
                assert_eq!(content, "looks right");
                assert_eq!(reviewer, "reviewer");
                assert_eq!(pr.number, 9);
                assert_eq!(pr.title, "[DEMO-2] readme");
                assert_eq!(repo.full_name, "team/demo");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_review_without_the_type_header_is_read_from_the_event() {
    // `X-Gitea-Event: pull_request_comment` is a review that only comments.
    let payload = review_payload(Verdict::Comment, "nit", 9, "t");
    let (_, body) = delivery("pull_request_comment", "", &payload, SECRET);
    match parse(Some("pull_request_comment"), None, &body).unwrap() {
        Hook::Review { verdict, .. } => assert_eq!(verdict, Verdict::Comment),
        other => panic!("{other:?}"),
    }
    let payload = review_payload(Verdict::Approved, "", 9, "t");
    let (_, body) = delivery("pull_request_approved", "", &payload, SECRET);
    assert!(matches!(
        parse(Some("pull_request_approved"), None, &body),
        Ok(Hook::Review {
            verdict: Verdict::Approved,
            ..
        })
    ));
}

#[test]
fn a_verdict_the_signed_body_does_not_back_is_refused() {
    // Headers are not signed: a rejection relabelled as an approval must not pass.
    let payload = review_payload(Verdict::Rejected, "no", 9, "t");
    let (_, body) = delivery(
        "pull_request_approved",
        "pull_request_review_approved",
        &payload,
        SECRET,
    );
    let err = parse(
        Some("pull_request_approved"),
        Some("pull_request_review_approved"),
        &body,
    )
    .unwrap_err();
    assert_eq!(
        err,
        HookError::VerdictMismatch {
            header: "pull_request_review_approved".into(),
            payload: "pull_request_review_rejected".into(),
        }
    );
}

#[test]
fn comments_on_a_pull_request_and_on_an_issue() {
    let payload = issue_comment_payload(7, "/orket retry <now> & then");
    match receive("issue_comment", "pull_request_comment", &payload).unwrap() {
        Hook::IssueComment {
            action,
            pr_number,
            number,
            body,
            author,
            repo,
        } => {
            assert_eq!(action, CommentAction::Created);
            assert_eq!(pr_number, Some(7));
            assert_eq!(number, 7);
            assert_eq!(body, "/orket retry <now> & then");
            assert_eq!(author, "dev");
            assert_eq!(repo.full_name, "team/demo");
        }
        other => panic!("{other:?}"),
    }
    let payload = issue_comment_payload_on_issue(12, "a bug");
    match receive("issue_comment", "issue_comment", &payload).unwrap() {
        Hook::IssueComment {
            pr_number, number, ..
        } => {
            assert_eq!(pr_number, None);
            assert_eq!(number, 12);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_type_pull_request_comment_is_a_plain_comment_not_a_review() {
    // The same word means a review comment in X-Gitea-Event and a plain comment in
    // X-Gitea-Event-Type; the type wins when both come.
    let payload = issue_comment_payload(7, "hello");
    let (_, body) = delivery("issue_comment", "pull_request_comment", &payload, SECRET);
    assert!(matches!(
        parse(Some("issue_comment"), Some("pull_request_comment"), &body),
        Ok(Hook::IssueComment { .. })
    ));
}

#[test]
fn a_deleted_comment_says_so() {
    let mut payload = issue_comment_payload(7, "gone");
    payload["action"] = "deleted".into();
    match receive("issue_comment", "pull_request_comment", &payload).unwrap() {
        Hook::IssueComment { action, .. } => assert_eq!(action, CommentAction::Deleted),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_events_are_other() {
    let body = br#"{"ref":"refs/heads/main","before":"a","after":"b","commits":[]}"#;
    assert_eq!(
        parse(Some("push"), Some("push"), body).unwrap(),
        Hook::Other {
            event: "push".into()
        }
    );
    assert_eq!(
        parse(Some("release"), None, b"{}").unwrap(),
        Hook::Other {
            event: "release".into()
        }
    );
    // An event type from a newer Gitea.
    assert_eq!(
        parse(Some("workflow_run"), Some("workflow_run"), b"{}").unwrap(),
        Hook::Other {
            event: "workflow_run".into()
        }
    );
}

#[test]
fn a_missing_event_header_is_an_error() {
    let payload = pull_request_payload("opened", 1, "t", false, SHA);
    let (_, body) = delivery("pull_request", "pull_request", &payload, SECRET);
    let err = parse(None, None, &body).unwrap_err();
    assert_eq!(err, HookError::MissingEvent);
    assert!(err.to_string().contains("X-Gitea-Event"), "{err}");
    assert_eq!(
        parse(Some(" "), Some(""), &body).unwrap_err(),
        HookError::MissingEvent
    );
}

#[test]
fn extra_unknown_fields_are_ignored() {
    let mut payload = pull_request_payload("opened", 3, "t", false, SHA);
    payload["from_gitea_2_0"] = serde_json::json!({"anything": [1, 2, 3]});
    payload["pull_request"]["new_field"] = "x".into();
    payload["pull_request"]["head"]["repo"]["yet_another"] = true.into();
    payload["repository"]["owner"]["badges"] = serde_json::json!([]);
    assert!(matches!(
        receive("pull_request", "pull_request", &payload).unwrap(),
        Hook::PullRequest {
            action: PrAction::Opened,
            ..
        }
    ));
}

#[test]
fn an_older_layout_without_newer_fields_reads() {
    let mut payload = pull_request_payload("closed", 3, "t", true, SHA);
    let pr = payload["pull_request"].as_object_mut().unwrap();
    // Fields later releases added, and fields Orket reads with a default.
    for newer in [
        "requested_reviewers_teams",
        "draft",
        "review_comments",
        "additions",
        "deletions",
        "changed_files",
        "pin_order",
        "allow_maintainer_edit",
        "merged_at",
        "html_url",
    ] {
        pr.remove(newer);
    }
    pr["head"].as_object_mut().unwrap().remove("label");
    let repo = payload["repository"].as_object_mut().unwrap();
    for newer in [
        "object_format_name",
        "licenses",
        "projects_mode",
        "archived_at",
        "html_url",
    ] {
        repo.remove(newer);
    }
    payload.as_object_mut().unwrap().remove("review");
    match receive("pull_request", "pull_request", &payload).unwrap() {
        Hook::PullRequest { action, pr, repo } => {
            assert_eq!(action, PrAction::Closed { merged: true });
            assert_eq!(pr.merged_at, None);
            assert_eq!(pr.html_url, "");
            assert_eq!(pr.head.label, "");
            assert_eq!(repo.html_url, "");
        }
        other => panic!("{other:?}"),
    }
    // A comment payload from before `is_pull`: the issue's `pull_request` tells.
    let mut payload = issue_comment_payload(7, "hi");
    payload.as_object_mut().unwrap().remove("is_pull");
    assert!(matches!(
        receive("issue_comment", "pull_request_comment", &payload).unwrap(),
        Hook::IssueComment {
            pr_number: Some(7),
            ..
        }
    ));
}

#[test]
fn a_payload_that_does_not_read_names_the_problem() {
    let err = parse(Some("pull_request"), None, b"{not json").unwrap_err();
    assert!(matches!(err, HookError::Payload { .. }));
    assert!(
        err.to_string()
            .contains("pull_request payload does not read"),
        "{err}"
    );

    let mut payload = pull_request_payload("opened", 3, "t", false, SHA);
    payload["pull_request"]["head"]
        .as_object_mut()
        .unwrap()
        .remove("ref");
    let (_, body) = delivery("pull_request", "pull_request", &payload, SECRET);
    let err = parse(Some("pull_request"), Some("pull_request"), &body).unwrap_err();
    match &err {
        HookError::Payload { path, message, .. } => {
            assert_eq!(path, "pull_request.head");
            assert!(message.contains("missing field `ref`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("at pull_request.head"), "{err}");

    let mut payload = pull_request_payload("opened", 3, "t", false, SHA);
    payload["pull_request"]["number"] = "three".into();
    let (_, body) = delivery("pull_request", "pull_request", &payload, SECRET);
    let err = parse(None, Some("pull_request"), &body).unwrap_err();
    assert!(err.to_string().contains("pull_request.number"), "{err}");

    // A GitHub review payload is not a Gitea one.
    let github = br#"{"action":"submitted","review":{"state":"approved","body":"ok"},"pull_request":{"number":1}}"#;
    assert!(parse(Some("pull_request_approved"), None, github).is_err());
    // Trailing garbage after the object.
    let (_, mut body) = delivery(
        "pull_request",
        "pull_request",
        &pull_request_payload("opened", 3, "t", false, SHA),
        SECRET,
    );
    body.extend_from_slice(b" {}");
    assert!(parse(Some("pull_request"), None, &body).is_err());
}

#[test]
fn deliveries_carry_giteas_headers() {
    let payload = pull_request_payload("opened", 3, "t", false, SHA);
    let (headers, body) = delivery("pull_request", "pull_request", &payload, SECRET);
    let id = header(&headers, "x-gitea-delivery").unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(id.matches('-').count(), 4);
    assert_eq!(header(&headers, "X-Gogs-Delivery"), Some(id));
    assert_eq!(header(&headers, "X-GitHub-Event"), Some("pull_request"));
    let sig = header(&headers, GITEA_SIGNATURE_HEADER).unwrap();
    assert_eq!(
        header(&headers, HUB_SIGNATURE_256_HEADER),
        Some(format!("sha256={sig}").as_str())
    );
    assert!(header(&headers, "X-Hub-Signature")
        .unwrap()
        .starts_with("sha1="));
    // Go's MarshalIndent: two spaces, HTML escaped.
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.starts_with("{\n  \"action\": \"opened\""),
        "{}",
        &text[..40]
    );
    let (_, again) = delivery("pull_request", "pull_request", &payload, SECRET);
    assert_ne!(
        header(
            &delivery("pull_request", "pull_request", &payload, SECRET).0,
            "X-Gitea-Delivery"
        ),
        Some(id),
        "each delivery has its own id"
    );
    assert_eq!(
        again,
        text.into_bytes(),
        "the same payload is the same body"
    );
}

#[test]
fn a_hook_without_a_secret_sends_empty_signatures() {
    let payload = pull_request_payload("opened", 3, "t", false, SHA);
    let (headers, body) = delivery("pull_request", "pull_request", &payload, b"");
    assert_eq!(header(&headers, GITEA_SIGNATURE_HEADER), Some(""));
    assert_eq!(header(&headers, HUB_SIGNATURE_256_HEADER), Some("sha256="));
    let err = verify(
        SECRET,
        &body,
        header(&headers, GITEA_SIGNATURE_HEADER),
        header(&headers, HUB_SIGNATURE_256_HEADER),
    )
    .unwrap_err();
    assert!(matches!(err, SignatureError::Empty { .. }));
    assert!(err.to_string().contains("no secret"), "{err}");
}

#[test]
fn html_escaped_bodies_read_back_and_stay_signed() {
    let payload = issue_comment_payload(7, "a <b> & c \u{2028}");
    let (headers, body) = delivery("issue_comment", "pull_request_comment", &payload, SECRET);
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.contains(r"a \u003cb\u003e \u0026 c \u2028"), "{text}");
    assert!(verify(
        SECRET,
        &body,
        header(&headers, GITEA_SIGNATURE_HEADER),
        None
    )
    .is_ok());
    match parse(Some("issue_comment"), Some("pull_request_comment"), &body).unwrap() {
        Hook::IssueComment { body, .. } => assert_eq!(body, "a <b> & c \u{2028}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hooks_serialize_for_the_event_log() {
    let payload = review_payload(Verdict::Approved, "ok", 9, "t");
    let hook = receive(
        "pull_request_approved",
        "pull_request_review_approved",
        &payload,
    )
    .unwrap();
    let value = serde_json::to_value(&hook).unwrap();
    assert_eq!(value["kind"], "review");
    assert_eq!(value["verdict"], "approved");
    assert_eq!(value["pr"]["number"], 9);
}
