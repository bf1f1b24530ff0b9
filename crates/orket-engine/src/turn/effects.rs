//! What a turn did, collected before anything is written: the changes to the store, the
//! events, the tool results, and the statuses as the turn left them. The turn commits them as
//! one batch at its end ([`TurnEffects::into_changes`]).

use orket_core::tools::ToolResult;
use orket_core::{Event, Status, WaitReason};
use orket_store::{Change, IssueUpdate, NewEvent};
use std::collections::HashMap;
use std::sync::Arc;

/// The effects of one turn (or of one approval decision).
#[derive(Clone)]
pub(crate) struct TurnEffects {
    run_id: String,
    build_id: String,
    /// The build's statuses when the tick began.
    snapshot: Arc<HashMap<String, Status>>,
    /// The statuses this turn changed (and the issues it created).
    changed: HashMap<String, Status>,
    /// The store changes, in order.
    pub changes: Vec<Change>,
    /// The events, in order (committed after the changes, in the same batch).
    pub events: Vec<NewEvent>,
    /// Each executed (or refused) call's result, in order.
    pub results: Vec<ToolResult>,
    /// A file was written or deleted.
    pub wrote_files: bool,
    /// Anything changed: a status, a file, a comment, a new issue.
    pub progress: bool,
}

impl TurnEffects {
    /// No effects yet, for run `run_id` on `build_id` whose statuses were `snapshot`.
    pub fn new(run_id: &str, build_id: &str, snapshot: Arc<HashMap<String, Status>>) -> Self {
        TurnEffects {
            run_id: run_id.to_string(),
            build_id: build_id.to_string(),
            snapshot,
            changed: HashMap::new(),
            changes: Vec::new(),
            events: Vec::new(),
            results: Vec::new(),
            wrote_files: false,
            progress: false,
        }
    }

    /// The build the effects belong to.
    pub fn build_id(&self) -> &str {
        &self.build_id
    }

    /// The run the effects belong to.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The status of an issue: as this turn left it, else as it was when the tick began.
    pub fn status(&self, id: &str) -> Option<Status> {
        self.changed
            .get(id)
            .copied()
            .or_else(|| self.snapshot.get(id).copied())
    }

    /// Records that `id` now has `status` (without a store change: the caller makes it).
    pub fn set_status(&mut self, id: &str, status: Status) {
        self.changed.insert(id.to_string(), status);
    }

    /// An event of the run acted by `role` about issue `id`.
    pub fn event(&mut self, role: &str, id: &str, event: Event) {
        self.events.push(
            NewEvent::new(Some(&self.run_id), event)
                .role(role)
                .issue(id),
        );
    }

    /// Moves issue `id` to `to` (with `wait_reason`), audited as `actor`, with its
    /// `status_change` event.
    pub fn move_issue(
        &mut self,
        id: &str,
        to: Status,
        wait_reason: Option<WaitReason>,
        actor: &str,
    ) {
        let from = self.status(id);
        self.event(
            actor,
            id,
            Event::StatusChange {
                from,
                to,
                wait_reason,
            },
        );
        let mut update = IssueUpdate::by(actor).status(to);
        if let Some(w) = wait_reason {
            update = update.wait_reason(w);
        }
        self.update(id, update);
        self.set_status(id, to);
        self.progress = true;
    }

    /// Patches issue `id`.
    pub fn update(&mut self, id: &str, update: IssueUpdate) {
        self.changes.push(Change::UpdateIssue {
            build_id: self.build_id.clone(),
            id: id.to_string(),
            update,
        });
    }

    /// Comments on issue `id` as `author`.
    pub fn comment(&mut self, id: &str, author: &str, content: &str) {
        self.changes.push(Change::AddComment {
            build_id: self.build_id.clone(),
            issue_id: id.to_string(),
            author: author.to_string(),
            content: content.to_string(),
        });
        self.progress = true;
    }

    /// Where the effects stand, to [`rewind`](Self::rewind) to.
    pub fn mark(&self) -> Mark {
        Mark {
            changes: self.changes.len(),
            events: self.events.len(),
            results: self.results.len(),
            changed: self.changed.clone(),
            wrote_files: self.wrote_files,
            progress: self.progress,
        }
    }

    /// Drops everything recorded since `mark`.
    pub fn rewind(&mut self, mark: Mark) {
        self.changes.truncate(mark.changes);
        self.events.truncate(mark.events);
        self.results.truncate(mark.results);
        self.changed = mark.changed;
        self.wrote_files = mark.wrote_files;
        self.progress = mark.progress;
    }

    /// The batch to commit: the changes, then the events.
    pub fn into_changes(self) -> Vec<Change> {
        let mut changes = self.changes;
        changes.extend(self.events.into_iter().map(Change::AppendEvent));
        changes
    }
}

/// A point of a turn's effects (see [`TurnEffects::mark`]).
pub(crate) struct Mark {
    changes: usize,
    events: usize,
    results: usize,
    changed: HashMap<String, Status>,
    wrote_files: bool,
    progress: bool,
}
