//! Verifier-guided candidates: a developer turn on an issue with a verification fixture may
//! draw its steps several times (`candidates` of the model's profile, or
//! `process_rules.candidates`), each in its own copy of the workspace, and keep the first whose
//! work passes the fixture. A small model that gets a task right one time in three then gets
//! it right in one turn instead of three review round trips.
//!
//! Each candidate starts from the same point (the turn's effects so far, the workspace as it
//! is) with its own seeds; after the first, a candidate is sampled at no less than
//! [`CANDIDATE_TEMPERATURE`] so it can differ. A candidate that hands the issue to review has
//! the fixture run on its copy (in `orket-isolate`'s sandbox, as a review would). The first
//! that passes every scenario is chosen; when none does, the one that passed most (a handed
//! over one before one that was not, the earliest on ties). Only the chosen candidate's
//! effects are kept and its file writes are made again in the real workspace; every
//! candidate's outcome is recorded with the turn.

use crate::run::RunCtx;
use crate::turn::effects::TurnEffects;
use crate::turn::steps::{Stepper, Steps};
use orket_core::tools::Tool;
use orket_core::turn::Candidate;
use orket_core::Status;
use orket_governance::file_tools::FileTools;
use orket_isolate::verify::run_verification_async;
use orket_store::{IssueRecord, StoreResult};
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The least temperature of a candidate after the first.
pub(crate) const CANDIDATE_TEMPERATURE: f64 = 0.7;

/// What drawing candidates gave: the chosen candidate's steps (with every candidate's outcome
/// in `Steps::candidates`) and effects.
pub(crate) struct Drawn {
    pub steps: Steps,
    pub effects: TurnEffects,
}

/// One candidate's run, before the choice.
struct Tried {
    steps: Steps,
    effects: TurnEffects,
    outcome: Candidate,
    handed_over: bool,
}

/// The run's folder of candidate copies, `.orket/candidates/<run>`: each turn draws in its
/// own `<turn seq>-<n>` inside it.
fn run_folder(ctx: &RunCtx) -> std::path::PathBuf {
    ctx.root.join(".orket").join("candidates").join(&ctx.run_id)
}

/// Removes the run's folder of candidate copies when the run ends (each copy is removed when
/// its turn is done; a killed process may leave some behind). Turns of a run draw at the same
/// time, so the folder is not removed while the run goes.
pub(crate) fn clear_run_folder(ctx: &RunCtx) {
    let folder = run_folder(ctx);
    if let Err(err) = fs::remove_dir_all(&folder) {
        if err.kind() != io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {err}", folder.display());
        }
    }
}

/// Draws up to `count` candidates of `base`'s steps for `issue`, starting from `effects`;
/// `None` when not even the first candidate's copy of the workspace could be made (the turn
/// then works in the workspace itself).
pub(crate) async fn draw(
    ctx: &RunCtx,
    issue: &IssueRecord,
    base: &Stepper<'_>,
    count: u32,
    seed: &(dyn Fn(u32, u32) -> Option<i64> + Sync),
    effects: &TurnEffects,
) -> StoreResult<Option<Drawn>> {
    let scratch_root = run_folder(ctx);
    let mut tried: Vec<Tried> = Vec::new();
    for n in 1..=count {
        // The turn's own folder: turns of the run draw candidates at the same time.
        let folder = scratch_root.join(format!("{}-{n}", base.seq));
        let prepared = Scratch::copy_of(ctx.workspace.root(), &folder).and_then(|scratch| {
            let confinement = ctx.workspace.moved_to(scratch.path())?;
            Ok((scratch, confinement))
        });
        let (scratch, confinement) = match prepared {
            Ok(prepared) => prepared,
            Err(err) => {
                tracing::warn!("cannot prepare the workspace of candidate {n}: {err}");
                break;
            }
        };
        let files = FileTools::new(Arc::new(confinement.clone()));
        let seed_n = move |step: u32| seed(n, step);
        let mut stepper = base.clone();
        stepper.rules.workspace = &confinement;
        stepper.executor.files = &files;
        stepper.seed = &seed_n;
        stepper.candidate = Some(n);
        if n > 1 {
            stepper.request.temperature = stepper.request.temperature.max(CANDIDATE_TEMPERATURE);
        }
        let mut mine = effects.clone();
        let steps = stepper.run(&mut mine).await?;
        let handed_over = mine.status(&issue.id) == Some(Status::CodeReview);
        let mut outcome = Candidate {
            n,
            seed: seed_n(1),
            steps: steps.steps.len(),
            passed: 0,
            total: 0,
            ok: false,
            chosen: false,
            error: None,
        };
        if handed_over {
            let result = run_verification_async(
                scratch.path().to_path_buf(),
                issue.verification.clone(),
                ctx.options.verify,
            )
            .await;
            outcome.passed = result.passed;
            outcome.total = result.total;
            outcome.ok = result.ok;
            outcome.error = result.error.clone();
        }
        let ok = outcome.ok;
        tried.push(Tried {
            steps,
            effects: mine,
            outcome,
            handed_over,
        });
        if ok {
            break;
        }
    }
    if tried.is_empty() {
        return Ok(None);
    }
    let best = best(&tried);
    let mut candidates: Vec<Candidate> = tried.iter().map(|t| t.outcome.clone()).collect();
    candidates[best].chosen = true;
    let mut chosen = tried.swap_remove(best);
    redo_file_writes(&ctx.files, &chosen.steps).await;
    chosen.steps.candidates = candidates;
    Ok(Some(Drawn {
        steps: chosen.steps,
        effects: chosen.effects,
    }))
}

/// The index of the candidate to keep: every scenario passed first, then handed over with the
/// most scenarios passed, the earliest on ties.
fn best(tried: &[Tried]) -> usize {
    let mut best = 0;
    for (i, t) in tried.iter().enumerate() {
        let key = |t: &Tried| (t.outcome.ok, t.handed_over, t.outcome.passed);
        if key(t) > key(&tried[best]) {
            best = i;
        }
    }
    best
}

/// Makes the chosen candidate's successful file writes and deletions in the real workspace.
async fn redo_file_writes(files: &FileTools, steps: &Steps) {
    for step in &steps.steps {
        let (Some(call), Some(result)) = (&step.call, &step.result) else {
            continue;
        };
        let Some(tool) = Tool::from_name(&call.name) else {
            continue;
        };
        if matches!(tool, Tool::WriteFile | Tool::DeleteFile) && result.error().is_none() {
            if let Some(again) = files.run(tool, call).await {
                if let Some(error) = again.error() {
                    tracing::warn!("candidate's {} could not be made again: {error}", call.name);
                }
            }
        }
    }
}

/// A copy of the workspace a candidate works in, removed when dropped. The run's log is not
/// copied, nor are links (a candidate sees what the workspace holds, not where links lead).
struct Scratch {
    path: std::path::PathBuf,
}

impl Scratch {
    fn copy_of(workspace: &Path, path: &Path) -> io::Result<Scratch> {
        if path.exists() {
            fs::remove_dir_all(path)?;
        }
        fs::create_dir_all(path)?;
        let scratch = Scratch {
            path: path.to_path_buf(),
        };
        copy_tree(workspace, path)?;
        Ok(scratch)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.path) {
            tracing::warn!("cannot remove {}: {err}", self.path.display());
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("orket.log") {
            continue;
        }
        let kind = entry.file_type()?;
        let target = to.join(&name);
        if kind.is_dir() {
            fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
