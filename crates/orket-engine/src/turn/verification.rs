//! A review's verification: the issue's fixture runs first, off the executor's
//! threads, in `orket-isolate`'s sandbox. What it found joins the turn's effects: the result as
//! `verification.last_run`, a comment for the reviewer, and the events
//! (`verification_started`, `verification_completed`, `security_violation` for a fixture
//! outside `verification/`). Nothing is committed here: the turn commits it with the rest.

use crate::turn::act::ORKET;
use crate::turn::effects::TurnEffects;
use orket_core::Event;
use orket_isolate::verify::{self, VerificationResult, VerifyLimits};
use orket_store::{IssueRecord, IssueUpdate};
use serde_json::Value;
use std::path::Path;

/// Runs the fixture of `issue` in `workspace` and records what it found in `effects`.
pub(crate) async fn verify(
    workspace: &Path,
    issue: &IssueRecord,
    role: &str,
    limits: VerifyLimits,
    effects: &mut TurnEffects,
) -> VerificationResult {
    let fixture_path = issue.verification["fixture_path"]
        .as_str()
        .map(str::to_string);
    effects.event(
        role,
        &issue.id,
        Event::VerificationStarted {
            fixture_path: fixture_path.clone(),
            limits: serde_json::to_value(limits).unwrap_or(Value::Null),
        },
    );
    let result =
        verify::run_verification_async(workspace.to_path_buf(), issue.verification.clone(), limits)
            .await;
    let mut block = match &issue.verification {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    block.insert(
        "last_run".to_string(),
        serde_json::to_value(&result).unwrap_or(Value::Null),
    );
    effects.update(
        &issue.id,
        IssueUpdate::by(ORKET).verification(Value::Object(block)),
    );
    // The result is a comment for the reviewer, not progress of the issue.
    let progress = effects.progress;
    effects.comment(&issue.id, ORKET, &result.summary());
    effects.progress = progress;
    if result.security_violation {
        effects.event(
            role,
            &issue.id,
            Event::SecurityViolation {
                fixture_path: fixture_path.clone(),
                error: result.error.clone(),
            },
        );
    }
    effects.event(
        role,
        &issue.id,
        Event::VerificationCompleted {
            fixture_path,
            ok: result.ok,
            passed: result.passed,
            failed: result.failed,
            total: result.total,
            error: result.error.clone(),
            isolation_weaker: result.isolation.as_ref().is_some_and(|i| i.weaker),
            duration_ms: result.duration_ms,
        },
    );
    result
}
