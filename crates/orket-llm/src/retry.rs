//! Retries as a provider wrapper: [`Retrying`] calls the provider it wraps up to
//! [`RetryPolicy::attempts`] times, retrying timeouts and connection errors (the only
//! retryable [`ProviderError`]s) after a backoff that doubles each time. Every retry is first
//! told to the `on_retry` hook, so the caller can record it (a turn puts a
//! `model_timeout_retry` / `model_connection_retry` event into its batch).

use crate::provider::{ModelReply, ModelRequest, Provider, ProviderError};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// How often and how patiently a model call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; doubled before each further one.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 500 ms then 1 s apart.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// A failed attempt that is retried.
#[derive(Debug)]
pub struct RetryNotice<'a> {
    /// The request.
    pub request: &'a ModelRequest,
    /// The failed attempt's number (1 for the first).
    pub attempt: u32,
    /// Why it failed.
    pub error: &'a ProviderError,
}

type RetryHook = Box<dyn Fn(&RetryNotice<'_>) + Send + Sync>;

/// A provider that retries the provider it wraps.
pub struct Retrying {
    inner: Arc<dyn Provider>,
    policy: RetryPolicy,
    on_retry: Option<RetryHook>,
}

impl Retrying {
    /// `inner`, retried by `policy`.
    pub fn new(inner: Arc<dyn Provider>, policy: RetryPolicy) -> Self {
        Retrying {
            inner,
            policy,
            on_retry: None,
        }
    }

    /// The same wrapper, telling `hook` about every retry before it waits.
    pub fn on_retry(mut self, hook: impl Fn(&RetryNotice<'_>) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Box::new(hook));
        self
    }
}

#[async_trait]
impl Provider for Retrying {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        let attempts = self.policy.attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.inner.complete(request).await {
                Ok(reply) => return Ok(reply),
                Err(error) if error.is_retryable() && attempt < attempts => {
                    if let Some(hook) = &self.on_retry {
                        hook(&RetryNotice {
                            request,
                            attempt,
                            error: &error,
                        });
                    }
                    tokio::time::sleep(self.policy.backoff * 2u32.pow(attempt - 1)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn constrains_replies(&self) -> bool {
        self.inner.constrains_replies()
    }

    fn resume_after(&self, issue_id: &str, role: &str, replies: usize) {
        self.inner.resume_after(issue_id, role, replies);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// Fails with `error` for the first `failures` calls, then answers.
    struct Flaky {
        calls: AtomicU32,
        failures: u32,
        error: fn() -> ProviderError,
    }

    #[async_trait]
    impl Provider for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        async fn complete(&self, _: &ModelRequest) -> Result<ModelReply, ProviderError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n <= self.failures {
                return Err((self.error)());
            }
            Ok(ModelReply {
                content: format!("answer {n}"),
                tokens_in: 1,
                tokens_out: 1,
                model: "m".to_string(),
            })
        }
    }

    fn request() -> ModelRequest {
        ModelRequest {
            model: "m".into(),
            messages: Vec::new(),
            temperature: 0.0,
            seed: None,
            timeout: Duration::from_secs(1),
            max_tokens: None,
            top_p: None,
            context_window: None,
            repeat_penalty: None,
            tool_schema: None,
            issue_id: "I-1".into(),
            role: "coder".into(),
        }
    }

    fn timeout() -> ProviderError {
        ProviderError::Timeout {
            provider: "flaky".into(),
            after_secs: 1,
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn retryable_failures_are_retried_and_told() {
        let inner = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            failures: 2,
            error: timeout,
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let provider = Retrying::new(inner, fast()).on_retry(move |n| {
            log.lock()
                .unwrap()
                .push((n.attempt, n.request.issue_id.clone(), n.error.to_string()));
        });
        let reply = provider.complete(&request()).await.unwrap();
        assert_eq!(reply.content, "answer 3");
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![1, 2],
            "{seen:?}"
        );
        assert!(seen.iter().all(|s| s.1 == "I-1"));
    }

    #[tokio::test]
    async fn the_last_failure_is_returned_after_the_attempts() {
        let inner = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            failures: 10,
            error: timeout,
        });
        let provider = Retrying::new(Arc::clone(&inner) as Arc<dyn Provider>, fast());
        let err = provider.complete(&request()).await.unwrap_err();
        assert!(matches!(err, ProviderError::Timeout { .. }), "{err}");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn other_failures_are_not_retried() {
        let inner = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            failures: 10,
            error: || ProviderError::Other("bad request".into()),
        });
        let provider = Retrying::new(Arc::clone(&inner) as Arc<dyn Provider>, fast());
        assert!(provider.complete(&request()).await.is_err());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    }
}
