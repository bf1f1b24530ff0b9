//! Sandboxes of completed runs (SPEC §10): when the epic (or its environment) asks for one,
//! a completed run's workspace is deployed through `orket-sandbox`.

use crate::engine::{event, Engine, RunCtx};
use orket_sandbox::{requested_stack, DeployRequest, SandboxError};
use orket_store::events::names;
use orket_store::StoreError;
use serde_json::{json, Value};

/// After a completed epic run: deploys its workspace when the epic (or its environment) asks
/// for a sandbox. A failed deploy is recorded on the sandbox and as an event; the run goes on.
pub(crate) async fn deploy_for_run(engine: &Engine, ctx: &RunCtx) -> Result<(), StoreError> {
    let epic = &ctx.assets.epic;
    let epic_params = Value::Object(epic.card.params.clone());
    let env_params = Value::Object(ctx.assets.env.params.clone());
    let stack = match requested_stack(&epic_params, &env_params) {
        None => return Ok(()),
        Some(Ok(stack)) => stack,
        Some(Err(reason)) => {
            let reason = format!("epic \"{}\": {reason}", epic.stem);
            tracing::warn!("{reason}");
            let event = event(
                ctx,
                names::SANDBOX_DEPLOY_FAILED,
                Some("orket"),
                None,
                json!({"epic": epic.stem, "reason": reason}),
            );
            return engine.commit_events(ctx, vec![event]).await;
        }
    };
    let request = DeployRequest {
        epic: epic.stem.clone(),
        stack,
        workspace: ctx.workspace.root().to_path_buf(),
        run_id: Some(ctx.run_id.clone()),
        build_id: Some(ctx.build_id.clone()),
    };
    let manager = engine.sandboxes().with_sink(ctx.sink.clone());
    match manager.deploy(&request).await {
        Ok(_) => Ok(()),
        Err(SandboxError::Store(e)) => Err(e),
        Err(SandboxError::NoFreePorts) => {
            // No sandbox row to hold the reason: the event does.
            let reason = SandboxError::NoFreePorts.to_string();
            tracing::warn!("sandbox of epic {}: {reason}", epic.stem);
            let event = event(
                ctx,
                names::SANDBOX_DEPLOY_FAILED,
                Some("orket"),
                None,
                json!({"epic": epic.stem, "stack": stack.as_str(), "reason": reason}),
            );
            engine.commit_events(ctx, vec![event]).await
        }
        // Recorded on the sandbox row with its event already.
        Err(other) => {
            tracing::warn!("sandbox of epic {}: {other}", epic.stem);
            Ok(())
        }
    }
}
