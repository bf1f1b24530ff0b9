//! [`Driver`]: one message of a person becomes a model call with the prompt and the schema,
//! the reply becomes an action, the action is applied and recorded.

use crate::action::DriverAction;
use crate::apply::Editor;
use crate::facts::Facts;
use crate::lookup::Lookup;
use crate::outcome::{DriverError, DriverOutcome};
use crate::parse::parse_action;
use crate::prompt::system_prompt;
use crate::schema::driver_schema;
use orket_core::assets::{AssetTree, Organization};
use orket_core::Event;
use orket_llm::{ChatMessage, ModelRequest, Provider, RetryPolicy, Retrying};
use orket_store::events::Recorder;
use orket_store::{NewEvent, Store};
use std::sync::Arc;
use std::time::Duration;

/// The issue id the driver's model calls carry (the replay key of recorded driver replies).
pub const DRIVER_ISSUE_ID: &str = "driver";
/// The role the driver's model calls carry (the replay key of recorded driver replies).
pub const DRIVER_ROLE: &str = "operations_lead";

/// How the driver calls its model.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// The model; `None`: the organization's `process_rules.default_llm`, else `default`.
    pub model: Option<String>,
    /// The department new assets go to and names are looked up in first (`core`).
    pub department: String,
    /// How long one model call may take.
    pub timeout: Duration,
    /// The most tokens a reply may have.
    pub max_tokens: Option<u32>,
    /// How a failed model call is retried.
    pub retry: RetryPolicy,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            model: None,
            department: "core".to_string(),
            timeout: Duration::from_secs(300),
            max_tokens: Some(512),
            retry: RetryPolicy::default(),
        }
    }
}

/// Talks to an operations-lead model and applies its actions to an asset tree.
pub struct Driver {
    tree: AssetTree,
    provider: Arc<dyn Provider>,
    options: DriverOptions,
    /// Records the driver's events (and reaches the store for `turn_directive`), when set.
    recorder: Option<Recorder>,
}

impl Driver {
    /// A driver of the tree `tree` calling `provider`.
    pub fn new(tree: AssetTree, provider: Arc<dyn Provider>, options: DriverOptions) -> Self {
        Driver {
            tree,
            provider,
            options,
            recorder: None,
        }
    }

    /// Records `driver_action` / `driver_action_refused` events (without a run) with
    /// `recorder` (its store, and its bus), and lets `turn_directive` reach the issue's row in
    /// its epic's build.
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// [`Driver::with_recorder`] for a store alone (nobody listens to its events live).
    pub fn with_store(self, store: Arc<dyn Store>) -> Self {
        self.with_recorder(Recorder::for_store(store))
    }

    /// One message of the person, after `history` (earlier user and assistant messages): the
    /// model's action, applied to the tree, and the event recorded. An organization that
    /// does not load is a [`DriverError::Io`] naming its problems; nothing is asked then.
    pub async fn handle(
        &self,
        history: &[ChatMessage],
        message: &str,
    ) -> Result<DriverOutcome, DriverError> {
        let org = self
            .tree
            .organization()
            .map_err(|e| DriverError::Io(format!("the organization does not load: {e}")))?;
        let request = self.request(&org, history, message);
        let reply = Retrying::new(Arc::clone(&self.provider), self.options.retry)
            .complete(&request)
            .await
            .map_err(DriverError::Model)?;
        let action = self.read_reply(&reply.content).await?;
        let mut outcome = self.apply_and_record(&action, &org).await?;
        outcome.model_reply = reply.content;
        Ok(outcome)
    }

    /// What the prompt and the schema tell the model about the tree now (see
    /// [`driver_schema`]).
    pub fn facts(&self) -> Facts {
        self.lookup().facts()
    }

    fn lookup(&self) -> Lookup<'_> {
        Lookup {
            tree: &self.tree,
            department: &self.options.department,
        }
    }

    /// The model call: the system prompt, `history`, the person's `message`, and the schema
    /// of one action.
    fn request(&self, org: &Organization, history: &[ChatMessage], message: &str) -> ModelRequest {
        let model = self
            .options
            .model
            .clone()
            .or_else(|| org.rule_str("default_llm").map(str::to_string))
            .unwrap_or_else(|| "default".to_string());
        let facts = self.facts();
        let mut messages = vec![ChatMessage::system(system_prompt(org, &facts))];
        messages.extend(history.iter().cloned());
        messages.push(ChatMessage::user(message));
        ModelRequest {
            model,
            messages,
            temperature: 0.0,
            seed: Some(42),
            timeout: self.options.timeout,
            max_tokens: self.options.max_tokens,
            top_p: None,
            context_window: None,
            repeat_penalty: None,
            tool_schema: Some(driver_schema(&facts)),
            issue_id: DRIVER_ISSUE_ID.to_string(),
            role: DRIVER_ROLE.to_string(),
        }
    }

    /// The action of the model's reply; a reply that is none is recorded as refused.
    async fn read_reply(&self, reply: &str) -> Result<DriverAction, DriverError> {
        let parsed = parse_action(reply);
        if let Err(err) = &parsed {
            self.record(Event::DriverActionRefused {
                action: None,
                error: err.to_string(),
            })
            .await;
        }
        parsed
    }

    /// Applies `action` and records the `driver_action` or `driver_action_refused` event.
    async fn apply_and_record(
        &self,
        action: &DriverAction,
        org: &Organization,
    ) -> Result<DriverOutcome, DriverError> {
        let store = self.recorder.as_ref().map(|r| r.store().as_ref());
        let editor = Editor::new(self.lookup(), &org.departments, store);
        let applied = editor.apply(action).await;
        let event = match &applied {
            Ok(outcome) => Event::DriverAction {
                action: outcome.action.clone(),
                reply: outcome.reply.clone(),
                changed_files: outcome.changed_files.clone(),
            },
            Err(err) => Event::DriverActionRefused {
                action: Some(action.name().to_string()),
                error: err.to_string(),
            },
        };
        self.record(event).await;
        applied
    }

    /// Records an event without a run (when there is a recorder) and publishes it. The action
    /// is done either way: a recording failure is logged, not returned.
    async fn record(&self, event: Event) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let name = event.name();
        let event = NewEvent::new(None, event).role(DRIVER_ROLE);
        if let Err(e) = recorder.record(vec![event]).await {
            tracing::warn!("cannot record the {name} event: {e}");
        }
    }
}
