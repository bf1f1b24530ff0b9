//! Sandboxes of runs: when the epic (or its environment) asks for one, the run's workspace is
//! deployed through `orket-sandbox` at the moments the `sandbox_policy` chooses (by default
//! when an issue first reaches code_review in the run). A failed
//! deploy is recorded on the sandbox and as an event; the run goes on.

use crate::policy::DeployMoment;
use crate::run::RunCtx;
use orket_core::Event;
use orket_sandbox::{requested_stack, DeployRequest, SandboxError, SandboxManager};
use orket_store::StoreError;
use serde_json::Value;
use std::sync::Arc;

/// The sandboxes of a project: their files are kept in `<root>/.orket/sandboxes`.
pub(crate) fn sandboxes(
    store: &Arc<dyn orket_store::Store>,
    root: &std::path::Path,
) -> SandboxManager {
    SandboxManager::for_project(Arc::clone(store), root)
}

/// At `moment` of a run: deploys its workspace when the epic (or its environment) asks for a
/// sandbox and the `sandbox_policy` deploys at that moment.
pub(crate) async fn deploy_for_run(ctx: &RunCtx, moment: DeployMoment) -> Result<(), StoreError> {
    let epic = &ctx.assets.epic;
    if !ctx.assets.policies.sandbox_policy.deploys(moment, epic) {
        return Ok(());
    }
    let epic_params = Value::Object(epic.card.params.clone());
    let env_params = Value::Object(ctx.assets.env.params.clone());
    let failed = |stack: Option<&str>, reason: String| {
        ctx.event(Event::SandboxDeployFailed {
            sandbox_id: None,
            epic: Some(epic.stem.clone()),
            stack: stack.map(str::to_string),
            reason,
        })
        .role(orket_core::ENGINE_ACTOR)
    };
    let stack = match requested_stack(&epic_params, &env_params) {
        None => return Ok(()),
        Some(Ok(stack)) => stack,
        Some(Err(reason)) => {
            let reason = format!("epic \"{}\": {reason}", epic.stem);
            tracing::warn!("{reason}");
            return ctx.record(vec![failed(None, reason)]).await;
        }
    };
    let request = DeployRequest {
        epic: epic.stem.clone(),
        stack,
        workspace: ctx.workspace.root().to_path_buf(),
        run_id: Some(ctx.run_id.clone()),
        build_id: Some(ctx.build_id.clone()),
    };
    let manager = sandboxes(ctx.recorder.store(), &ctx.root).with_sink(ctx.recorder.sink().clone());
    match manager.deploy(&request).await {
        Ok(_) => Ok(()),
        Err(SandboxError::Store(e)) => Err(e),
        Err(SandboxError::NoFreePorts) => {
            // No sandbox row to hold the reason: the event does.
            let reason = SandboxError::NoFreePorts.to_string();
            tracing::warn!("sandbox of epic {}: {reason}", epic.stem);
            ctx.record(vec![failed(Some(stack.as_str()), reason)]).await
        }
        // Recorded on the sandbox row with its event already.
        Err(other) => {
            tracing::warn!("sandbox of epic {}: {other}", epic.stem);
            Ok(())
        }
    }
}
