//! The Gitea review loop end to end: deliveries shaped and signed as Gitea sends them (the
//! `orket-gitea` stand-in's builders, from Gitea's own structs) posted to a running server,
//! which answers through a loopback stand-in of Gitea's API that checks every request against
//! Gitea's API description and answers as Gitea does. Gitea itself cannot run here: the
//! stand-in is built from its swagger and structs.

mod common;

use common::Project;
use orket_gitea::hook::Verdict;
use orket_gitea::standin::{self, Request, Standin};
use orket_server::gitea::GiteaSettings;
use orket_server::ProviderChoice;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

const SECRET: &[u8] = b"hook-secret-0123456789";

/// A running server with the Gitea side configured, and the stand-in it calls.
struct Hooked {
    project: Project,
    gitea: Standin,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Hooked {
    async fn start(rate_limit: Option<u32>, secret: Option<&[u8]>) -> Hooked {
        let gitea = Standin::start().await;
        let (url, token) = (gitea.base_url().to_string(), gitea.token());
        let secret = secret.map(|s| String::from_utf8(s.to_vec()).unwrap());
        let project = Project::with(move |c| {
            c.gitea = GiteaSettings {
                url: Some(url),
                token: Some(token),
                secret,
                rate_limit: rate_limit.and_then(NonZeroU32::new),
            };
            c.review_provider = Some(ProviderChoice {
                name: "replay".into(),
                replay: Some(c.root.join("replay/hello_cli.jsonl")),
                replay_delay: Duration::ZERO,
            });
        })
        .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(orket_server::serve(
            project.state.clone(),
            listener,
            std::future::pending(),
        ));
        Hooked {
            project,
            gitea,
            addr,
            http: reqwest::Client::new(),
        }
    }

    /// Posts `body` with `headers` to the webhook; status, `Retry-After`, JSON answer.
    async fn post(
        &self,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> (u16, Option<String>, Value) {
        let mut request = self
            .http
            .post(format!("http://{}/webhook/gitea", self.addr));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.unwrap();
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, retry, value)
    }

    /// Delivers `payload` as Gitea sends `event`/`event_type`, signed.
    async fn deliver(&self, event: &str, event_type: &str, payload: &Value) -> (u16, Value) {
        let (headers, body) = standin::delivery(event, event_type, payload, SECRET);
        let (status, _, answer) = self.post(&headers, body).await;
        (status, answer)
    }

    async fn review(
        &self,
        verdict: Verdict,
        content: &str,
        number: i64,
        title: &str,
    ) -> (u16, Value) {
        let payload = standin::review_payload(verdict, content, number, title);
        self.deliver(verdict.event(), verdict.event_type(), &payload)
            .await
    }

    async fn get(&self, uri: &str) -> Value {
        let (status, body) = self.project.get(uri).await;
        assert_eq!(status.as_u16(), 200, "{uri}: {body}");
        body
    }

    /// The stand-in's requests of `method` on paths ending with `suffix`.
    fn calls(&self, method: &str, suffix: &str) -> Vec<Request> {
        self.gitea
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .collect()
    }
}

/// The head commit the stand-in's review payloads of pull request `number` carry.
fn reviewed_head(number: i64) -> String {
    standin::payload::sha1_hex(format!("head {number}").as_bytes())
}

fn outcome(answer: &Value) -> &str {
    answer["outcome"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_deliveries_record_nothing_and_act_on_nothing() {
    let h = Hooked::start(None, Some(SECRET)).await;
    let payload = standin::pull_request_payload("opened", 5, "[DEMO-1] hello", false, "abc");
    let (headers, body) = standin::delivery("pull_request", "pull_request", &payload, SECRET);
    let without = |names: &[&str]| -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|(n, _)| !names.iter().any(|m| n.eq_ignore_ascii_case(m)))
            .cloned()
            .collect()
    };
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        let mut h = without(&[name]);
        h.push((name.to_string(), value.to_string()));
        h
    };
    // No signature at all; the signature Gitea sends for a hook without a secret (empty); a
    // wrong one; a malformed one; the right signature over a changed body.
    let unsigned = without(&["X-Gitea-Signature", "X-Hub-Signature-256"]);
    let empty = standin::delivery("pull_request", "pull_request", &payload, b"").0;
    let wrong_sig = orket_gitea::signature::sign(b"another secret", &body);
    for (case, hdrs, sent, needle) in [
        ("unsigned", unsigned, body.clone(), "not signed"),
        ("empty", empty, body.clone(), "no secret"),
        (
            "wrong",
            with("X-Gitea-Signature", &wrong_sig)
                .into_iter()
                .filter(|(n, _)| n != "X-Hub-Signature-256")
                .collect(),
            body.clone(),
            "does not match",
        ),
        (
            "malformed",
            with("X-Hub-Signature-256", "md5=abc"),
            body.clone(),
            "malformed",
        ),
        (
            "changed",
            headers.clone(),
            [body.clone(), b" ".to_vec()].concat(),
            "does not match",
        ),
    ] {
        let (status, _, answer) = h.post(&hdrs, sent).await;
        assert_eq!(status, 401, "{case}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{case}: {answer}"
        );
    }
    // A valid signature over something that is not the payload: 400 naming what is wrong.
    let garbage = br#"{"action": "opened", "number": "five"}"#.to_vec();
    let mut signed = with(
        "X-Gitea-Signature",
        &orket_gitea::signature::sign(SECRET, &garbage),
    );
    signed.retain(|(n, _)| n != "X-Hub-Signature-256");
    let (status, _, answer) = h.post(&signed, garbage).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("payload does not read"),
        "{answer}"
    );
    // Over 1 MiB: 413 before anything is read.
    let big = vec![b' '; 1024 * 1024 + 1];
    let (status, _, answer) = h.post(&headers, big).await;
    assert_eq!(status, 413, "{answer}");

    // Nothing was recorded, nothing asked of Gitea.
    assert_eq!(h.get("/v1/webhooks").await, json!([]));
    assert_eq!(h.get("/v1/prs").await, json!([]));
    assert!(h.gitea.requests().is_empty(), "{:?}", h.gitea.requests());

    // Without a secret the route is unavailable and says what to set.
    let bare = Hooked::start(None, None).await;
    let (status, _, answer) = bare.post(&headers, body).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("GITEA_WEBHOOK_SECRET"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_counts_once_and_the_rate_limit_answers_429() {
    let h = Hooked::start(Some(3), Some(SECRET)).await;
    let payload = standin::issue_comment_payload(5, "looks fine");
    let (headers, body) = standin::delivery("issue_comment", "issue_comment", &payload, SECRET);
    let (status, _, first) = h.post(&headers, body.clone()).await;
    assert_eq!((status, outcome(&first)), (200, "recorded"), "{first}");
    // The same delivery again, then Gitea's "redeliver": the same bytes under a new id.
    let (status, _, again) = h.post(&headers, body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(again["duplicate"], true, "{again}");
    let mut redelivered = headers.clone();
    for (name, value) in redelivered.iter_mut() {
        if name == "X-Gitea-Delivery" {
            *value = "5f1e0c5e-0000-4000-8000-000000000001".into();
        }
    }
    let (status, _, redelivery) = h.post(&redelivered, body).await;
    assert_eq!(status, 200);
    assert_eq!(redelivery["duplicate"], true, "{redelivery}");
    assert!(
        redelivery["detail"]
            .as_str()
            .unwrap()
            .contains("the same body"),
        "{redelivery}"
    );
    let deliveries = h.get("/v1/webhooks").await;
    assert_eq!(deliveries.as_array().unwrap().len(), 1, "{deliveries}");
    assert_eq!(deliveries[0]["event"], "issue_comment");

    // The limit is 3 per 60 s: the 4th delivery is 429 with Retry-After, and not recorded.
    let (headers, body) = standin::delivery(
        "issue_comment",
        "issue_comment",
        &standin::issue_comment_payload(5, "more"),
        SECRET,
    );
    let (status, retry, answer) = h.post(&headers, body).await;
    assert_eq!(status, 429, "{answer}");
    let seconds: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
    assert_eq!(h.get("/v1/webhooks").await.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opened_pull_request_naming_a_card_starts_its_review_and_others_are_ignored() {
    let h = Hooked::start(None, Some(SECRET)).await;
    let opened =
        standin::pull_request_payload("opened", 5, "[DEMO-1] write hello.py", false, "c0ffee");
    let (status, answer) = h.deliver("pull_request", "pull_request", &opened).await;
    assert_eq!(
        (status, outcome(&answer)),
        (200, "review_started"),
        "{answer}"
    );
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("DEMO-1 moved to code_review; review run "),
        "{detail}"
    );
    let run_id = detail
        .rsplit("review run ")
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let session = h.project.wait_end(run_id).await;
    assert_eq!(session["run"]["target"], "DEMO-1", "{session}");
    let transitions = h
        .project
        .store
        .list_card_transactions("build-hello_cli", "DEMO-1")
        .await
        .unwrap();
    assert!(
        transitions
            .iter()
            .any(|t| t.role == "gitea" && t.to_status == Some(orket_core::Status::CodeReview)),
        "{transitions:?}"
    );
    let prs = h.get("/v1/prs").await;
    assert_eq!(prs[0]["card_id"], "DEMO-1", "{prs}");
    assert_eq!(prs[0]["state"], "open");

    // A push to it (`pull_request_sync`) starts another review; a title with no card is
    // recorded and ignored — never a 500 —, as is a title naming an unknown card.
    let synced = standin::pull_request_payload(
        "synchronized",
        5,
        "[DEMO-1] write hello.py",
        false,
        "beef01",
    );
    let (status, answer) = h
        .deliver("pull_request", "pull_request_sync", &synced)
        .await;
    assert_eq!(
        (status, outcome(&answer)),
        (200, "review_started"),
        "{answer}"
    );
    for title in [
        "Bump dependencies",
        "[NOPE-9] unknown card",
        "ISSUE-0042 elsewhere",
    ] {
        let other = standin::pull_request_payload("opened", 6, title, false, "aaa");
        let (status, answer) = h.deliver("pull_request", "pull_request", &other).await;
        assert_eq!(
            (status, outcome(&answer)),
            (200, "ignored"),
            "{title}: {answer}"
        );
        assert!(answer["detail"]
            .as_str()
            .unwrap()
            .contains("names no card of the project"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_requested_four_times_escalate_then_close_and_open_a_requirements_review() {
    let h = Hooked::start(None, Some(SECRET)).await;
    let title = "[DEMO-2] document hello.py";
    h.gitea.add_pull(7, title, &reviewed_head(7));
    let reasons = [
        "too short",
        "no usage line",
        "wrong file name",
        "still no usage",
    ];
    let mut outcomes = Vec::new();
    for reason in reasons {
        let (status, answer) = h.review(Verdict::Rejected, reason, 7, title).await;
        assert_eq!(status, 200, "{answer}");
        outcomes.push(outcome(&answer).to_string());
    }
    assert_eq!(
        outcomes,
        ["cycle_recorded", "cycle_recorded", "escalated", "rejected"]
    );

    // The 3rd cycle: a comment escalating to the architect; the 4th: a comment saying why,
    // the pull request closed (PATCH state closed, Gitea answers 201), a requirements review
    // issue with every cycle's reason. Every request matched Gitea's API description.
    let comments = h.calls("POST", "/issues/7/comments");
    assert_eq!(comments.len(), 2, "{comments:?}");
    let escalation = comments[0].body.as_ref().unwrap()["body"].as_str().unwrap();
    assert!(
        escalation.contains("Escalating to the architect"),
        "{escalation}"
    );
    let closes = h.calls("PATCH", "/pulls/7");
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].body, Some(json!({"state": "closed"})));
    assert_eq!(closes[0].status, Some(201));
    let issues = h.calls("POST", "/issues");
    assert_eq!(issues.len(), 1);
    let issue = issues[0].body.as_ref().unwrap();
    assert_eq!(issue["title"], format!("Requirements Review: {title}"));
    for (n, reason) in reasons.iter().enumerate() {
        assert!(
            issue["body"]
                .as_str()
                .unwrap()
                .contains(&format!("{}. {reason}", n + 1)),
            "{issue}"
        );
    }
    assert!(
        issue.get("labels").is_none(),
        "labels are ids in Gitea: none sent"
    );
    for request in h.gitea.requests() {
        assert!(request.matched && request.authorized, "{request:?}");
    }
    let prs = h.get("/v1/prs").await;
    assert_eq!(prs[0]["cycles"], 4, "{prs}");
    assert_eq!(prs[0]["history"][3]["reason"], "still no usage");
    assert_eq!(
        prs[0]["history"][0]["head_sha"].as_str().map(str::len),
        Some(40)
    );

    // Every Gitea call is an event.
    let events = h.project.store.list_events(None, 0, 1000).await.unwrap();
    let calls = events.iter().filter(|e| e.event == "gitea_call").count();
    assert_eq!(calls, 4, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_merges_a_refused_merge_is_commented_and_a_merge_is_answered() {
    let h = Hooked::start(None, Some(SECRET)).await;
    let title = "[DEMO-3] notes";
    h.gitea.add_pull(9, title, &reviewed_head(9));
    // An approval that names no card merges nothing.
    let (_, answer) = h
        .review(Verdict::Approved, "LGTM", 12, "Bump dependencies")
        .await;
    assert_eq!(outcome(&answer), "ignored", "{answer}");
    assert!(h.calls("POST", "/pulls/12/merge").is_empty());
    // Gitea refuses the first merge (not mergeable): an event and a comment, never success.
    h.gitea.refuse_next_merge(405, "Please try again later");
    let (status, answer) = h.review(Verdict::Approved, "LGTM", 9, title).await;
    assert_eq!(
        (status, outcome(&answer)),
        (200, "merge_refused"),
        "{answer}"
    );
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("Please try again later"),
        "{answer}"
    );
    let comments = h.calls("POST", "/issues/9/comments");
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.as_ref().unwrap()["body"]
        .as_str()
        .unwrap()
        .contains("could not merge"));

    // Approved again: merged through the API (Do: merge, the branch deleted).
    let (status, answer) = h.review(Verdict::Approved, "LGTM now", 9, title).await;
    assert_eq!((status, outcome(&answer)), (200, "merged"), "{answer}");
    let merges = h.calls("POST", "/pulls/9/merge");
    assert_eq!(merges.len(), 2);
    assert_eq!(
        merges[1].body,
        Some(json!({"Do": "merge", "delete_branch_after_merge": true,
            "head_commit_id": reviewed_head(9)}))
    );
    assert_eq!(merges[1].status, Some(200));

    // Gitea then sends the merge: the epic asks for no sandbox, said in a comment.
    let merged = standin::pull_request_payload("closed", 9, title, true, "abc999");
    let (status, answer) = h.deliver("pull_request", "pull_request", &merged).await;
    assert_eq!((status, outcome(&answer)), (200, "merged"), "{answer}");
    let comments = h.calls("POST", "/issues/9/comments");
    assert_eq!(comments.len(), 2);
    assert!(comments[1].body.as_ref().unwrap()["body"]
        .as_str()
        .unwrap()
        .contains("asks for no sandbox"));
    let prs = h.get("/v1/prs").await;
    assert_eq!(prs[0]["state"], "merged", "{prs}");
    assert_eq!(prs[0]["epoch"], 2, "a merge starts a new count of cycles");

    // Review comments and closing without a merge: recorded, nothing asked of Gitea.
    let before = h.gitea.requests().len();
    let (_, answer) = h.review(Verdict::Comment, "nit", 9, title).await;
    assert_eq!(outcome(&answer), "recorded");
    let closed = standin::pull_request_payload("closed", 10, "[DEMO-3] other", false, "fff");
    let (_, answer) = h.deliver("pull_request", "pull_request", &closed).await;
    assert_eq!(outcome(&answer), "recorded");
    assert_eq!(h.gitea.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopen_starts_a_new_count_and_a_failed_deploy_is_commented_with_its_reason() {
    let h = Hooked::start(None, Some(SECRET)).await;
    let title = "[DEMO-2] document hello.py";
    h.gitea.add_pull(11, title, &reviewed_head(11));
    for reason in ["one", "two"] {
        let (_, answer) = h.review(Verdict::Rejected, reason, 11, title).await;
        assert_eq!(outcome(&answer), "cycle_recorded", "{answer}");
    }
    // Reopened: the next change request is cycle 1 of a new count (no escalation yet).
    let reopened = standin::pull_request_payload("reopened", 11, title, false, "abc111");
    let (status, _) = h.deliver("pull_request", "pull_request", &reopened).await;
    assert_eq!(status, 200);
    let (_, answer) = h.review(Verdict::Rejected, "three", 11, title).await;
    assert_eq!(outcome(&answer), "cycle_recorded", "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().ends_with("cycle 1"),
        "{answer}"
    );
    let prs = h.get("/v1/prs").await;
    assert_eq!(
        (prs[0]["epoch"].as_i64(), prs[0]["cycles"].as_i64()),
        (Some(2), Some(1)),
        "{prs}"
    );
    assert!(
        h.calls("POST", "/issues/11/comments").is_empty(),
        "no escalation"
    );

    // The epic asks for a sandbox but names no stack: the merge's deploy fails, and the pull
    // request is told why.
    let epic = h.project.root.join("model/core/epics/hello_cli.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&epic).unwrap()).unwrap();
    doc["params"] = json!({"sandbox": true});
    std::fs::write(&epic, doc.to_string()).unwrap();
    let merged = standin::pull_request_payload("closed", 11, title, true, "abc111");
    let (status, answer) = h.deliver("pull_request", "pull_request", &merged).await;
    assert_eq!(
        (status, outcome(&answer)),
        (200, "deploy_failed"),
        "{answer}"
    );
    let comments = h.calls("POST", "/issues/11/comments");
    assert_eq!(comments.len(), 1);
    let text = comments[0].body.as_ref().unwrap()["body"].as_str().unwrap();
    assert!(
        text.starts_with("Merged, but the sandbox deploy failed: ")
            && text.contains("no params.stack"),
        "{text}"
    );
}
