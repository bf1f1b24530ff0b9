//! `POST /v1/system/chat-driver`: the driver over HTTP with recorded replies.

mod common;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use common::{Project, KEY};
use orket_llm::{ModelReply, ModelRequest, Provider, ProviderError};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// Writes `replay/driver.jsonl` into the project with the driver's `replies`.
fn replay(p: &Project, replies: &[Value]) {
    let text: String = replies
        .iter()
        .map(|r| {
            json!({"issue_id": "driver", "role": "operations_lead", "content": r.to_string()})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(p.root.join("replay/driver.jsonl"), text).unwrap();
}

async fn events(p: &Project) -> Vec<String> {
    p.store
        .list_events(None, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.name().to_string())
        .collect()
}

#[tokio::test]
async fn an_applied_action_answers_200_with_the_files_written() {
    let p = Project::new().await;
    replay(
        &p,
        &[json!({"action": "create_epic", "args": {"name": "docs_site", "team": "demo_team"}})],
    );
    let mut bus = p.state.bus().subscribe();
    let (status, body) = p
        .post(
            "/v1/system/chat-driver",
            json!({"message": "Create an epic named docs_site for team demo_team",
                   "history": [{"role": "user", "content": "hi"},
                               {"role": "assistant", "content": "{\"action\": \"reply\", \"message\": \"hello\"}"}],
                   "replay": "replay/driver.jsonl"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["action"], "create_epic");
    assert_eq!(
        body["changed_files"],
        json!(["model/core/epics/docs_site.json"])
    );
    assert!(body["reply"].as_str().unwrap().contains("docs_site"));
    let epic: Value = serde_json::from_str(
        &std::fs::read_to_string(p.root.join("model/core/epics/docs_site.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(epic["team"], "demo_team");
    assert_eq!(events(&p).await, vec!["driver_action"]);
    let published = bus.try_recv().unwrap();
    assert_eq!(published.event, "driver_action");
}

#[tokio::test]
async fn a_refused_action_answers_422_and_writes_nothing() {
    let p = Project::new().await;
    replay(
        &p,
        &[json!({"action": "create_epic", "args": {"name": "docs_site", "team": "ghost_team"}})],
    );
    let (status, body) = p
        .post(
            "/v1/system/chat-driver",
            json!({"message": "x", "provider": "replay", "replay": "replay/driver.jsonl"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["error"],
        "create_epic: team: unknown team \"ghost_team\" (teams: demo_team)"
    );
    assert!(!p.root.join("model/core/epics/docs_site.json").exists());
    assert_eq!(events(&p).await, vec!["driver_action_refused"]);
}

#[tokio::test]
async fn bad_bodies_answer_400_naming_the_field() {
    let p = Project::new().await;
    replay(&p, &[]);
    let cases = [
        (json!([1]), "body: expected a JSON object"),
        (
            json!({"replay": "replay/driver.jsonl"}),
            "message: required",
        ),
        (json!({"message": 3}), "message: expected a string"),
        (
            json!({"message": "x", "replay": "replay/driver.jsonl", "history": [{"role": "system", "content": "x"}]}),
            "history[0].role: expected \"user\" or \"assistant\"",
        ),
        (
            json!({"message": "x", "replay": "replay/driver.jsonl", "history": "no"}),
            "history: expected a list",
        ),
        (
            json!({"message": "x", "provider": "gpt"}),
            "provider: unknown \"gpt\"",
        ),
        (
            json!({"message": "x", "replay": "../outside.jsonl"}),
            "replay: path '../outside.jsonl' is refused: '..' may lead out of the project",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = p.post("/v1/system/chat-driver", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(expected),
            "{body} → {answer}, expected {expected}"
        );
    }
}

#[tokio::test]
async fn the_key_is_required_when_set() {
    let p = Project::new().await;
    replay(
        &p,
        &[json!({"action": "create_epic", "args": {"name": "docs_site", "team": "demo_team"}})],
    );
    let body = json!({"message": "x", "replay": "replay/driver.jsonl"});
    let (status, _) = p
        .send(
            Method::POST,
            "/v1/system/chat-driver",
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = p
        .send(
            Method::POST,
            "/v1/system/chat-driver",
            Some(body),
            Some("wrong"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!p.root.join("model/core/epics/docs_site.json").exists());
    let (status, _) = p
        .send(
            Method::POST,
            "/v1/system/chat-driver",
            Some(json!({"message": "x", "replay": "replay/driver.jsonl"})),
            Some(KEY),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(p.root.join("model/core/epics/docs_site.json").is_file());
}

#[tokio::test]
async fn a_failed_model_call_or_a_reply_that_is_no_action_answers_502() {
    let p = Project::new().await;
    std::fs::write(
        p.root.join("replay/driver.jsonl"),
        json!({"issue_id": "driver", "role": "operations_lead", "content": "I am not sure."})
            .to_string()
            + "\n",
    )
    .unwrap();
    let body = json!({"message": "x", "replay": "replay/driver.jsonl"});
    let (status, answer) = p.post("/v1/system/chat-driver", body.clone()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .starts_with("the model's reply is not an action"));
    // A replay file without a driver reply: the provider fails the call.
    std::fs::write(p.root.join("replay/driver.jsonl"), "").unwrap();
    let (status, answer) = p.post("/v1/system/chat-driver", body).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .starts_with("the model call failed: replay file"));
}

/// A provider that keeps every request and answers with a reply action.
struct Capturing(Arc<Mutex<Vec<ModelRequest>>>);

#[async_trait]
impl Provider for Capturing {
    fn name(&self) -> &str {
        "capturing"
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        self.0.lock().unwrap().push(request.clone());
        Ok(ModelReply {
            content: json!({"action": "reply", "message": "noted"}).to_string(),
            tokens_in: 0,
            tokens_out: 0,
            model: request.model.clone(),
        })
    }
}

#[tokio::test]
async fn the_project_s_secrets_never_reach_the_model_or_the_answer() {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let p = Project::with(move |c| {
        c.providers =
            Arc::new(move |_| Ok(Arc::new(Capturing(Arc::clone(&seen))) as Arc<dyn Provider>));
    })
    .await;
    let secret = "sk-driver-secret-4242";
    std::fs::write(p.root.join(".env"), format!("OPENAI_API_KEY={secret}\n")).unwrap();
    std::fs::write(
        p.root.join("workspace/credentials.txt"),
        format!("password={secret}\n"),
    )
    .unwrap();
    let (status, body) = p
        .post(
            "/v1/system/chat-driver",
            json!({"message": "What is in the project?", "provider": "ollama"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reply"], "noted");
    assert!(!body.to_string().contains(secret));
    let requests = requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    let sent = format!(
        "{:?} {}",
        requests[0].messages,
        requests[0].tool_schema.clone().unwrap_or_default()
    );
    assert!(
        sent.contains("hello_cli") && sent.contains("What is in the project?"),
        "the request holds the organization and the message: {sent}"
    );
    assert!(!sent.contains(secret), "a secret reached the model: {sent}");
}
