//! `orket serve` with the Gitea variables, as a team starts it: a signed pull-request delivery
//! starts a review run with `--provider`, an approval merges through the Gitea stand-in, and
//! `orket webhooks` lists what each delivery did.

mod common;

use orket_gitea::hook::Verdict;
use orket_gitea::standin::{self, Standin};
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"cli-hook-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_signed_deliveries_and_orket_webhooks_lists_them() {
    let (_dir, root, replay) = common::demo_with_replay();
    let gitea = Standin::start().await;
    // Pushed to after it was reviewed: the approval's merge is refused, head out of date.
    gitea.add_pull(3, "[DEMO-1] write hello.py", "f00d333");
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("orket"));
    command
        .args(["serve", "--port", "0", "--provider", "replay", "--replay"])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .env_remove("ORKET_API_KEY")
        .env("GITEA_URL", gitea.base_url())
        .env("GITEA_TOKEN", gitea.token())
        .env("GITEA_WEBHOOK_SECRET", std::str::from_utf8(SECRET).unwrap());
    let server = common::Server::start(command);
    let address = server.address.clone();
    let http = reqwest::Client::new();
    let deliver = |event: &str, event_type: &str, payload: serde_json::Value| {
        let (headers, body) = standin::delivery(event, event_type, &payload, SECRET);
        let mut request = http.post(format!("http://{address}/webhook/gitea"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let answer = request.body(body).send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<serde_json::Value>().await.unwrap())
        }
    };

    let opened =
        standin::pull_request_payload("opened", 3, "[DEMO-1] write hello.py", false, "abc333");
    let (status, answer) = deliver("pull_request", "pull_request", opened).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("review_started")),
        "{answer}"
    );
    let review =
        standin::review_payload(Verdict::Approved, "ship it", 3, "[DEMO-1] write hello.py");
    let (status, answer) = deliver(
        Verdict::Approved.event(),
        Verdict::Approved.event_type(),
        review,
    )
    .await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("merge_refused")),
        "{answer}"
    );
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("head out of date"),
        "{answer}"
    );
    let requests = gitea.requests();
    let merge = requests
        .iter()
        .find(|r| r.path.ends_with("/pulls/3/merge"))
        .unwrap();
    assert_eq!(
        (merge.matched, merge.status),
        (true, Some(409)),
        "{merge:?}"
    );

    // The review run the delivery started ends (its build is given back).
    let db = root.join(".orket/orket.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let store = orket_store::SqliteStore::open(&db).await.unwrap();
        let runs = orket_store::Store::list_runs(&store, 5).await.unwrap();
        if runs
            .iter()
            .any(|r| r.target == "DEMO-1" && r.status.is_final())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the review run did not end: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let out = assert_cmd::Command::cargo_bin("orket")
        .unwrap()
        .args(["webhooks", "--root"])
        .arg(&root)
        .env_remove("ORKET_DB")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("OUTCOME"),
        "{table}"
    );
    assert!(
        lines[1].contains("pull_request_review_approved")
            && lines[1].contains("team/demo#3")
            && lines[1].contains("merge_refused"),
        "{table}"
    );
    assert!(
        lines[2].contains("pull_request") && lines[2].contains("review_started"),
        "{table}"
    );
    let json = assert_cmd::Command::cargo_bin("orket")
        .unwrap()
        .args(["webhooks", "--json", "--root"])
        .arg(&root)
        .env_remove("ORKET_DB")
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(listed[1]["outcome"], "review_started");
}
