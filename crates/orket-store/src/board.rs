//! The board (`orket_core::assets::Board`, from the files) with the statuses the store holds.

use crate::error::StoreResult;
use crate::store::Store;
use orket_core::assets::{Board, BoardIssue};
use orket_core::Status;
use std::collections::HashMap;

/// Overlays the status and issues of every build of the board that the store holds (epics
/// without a build keep their file statuses).
pub async fn overlay_builds(store: &dyn Store, board: &mut Board) -> StoreResult<()> {
    let mut builds: HashMap<String, (Status, Vec<BoardIssue>)> = HashMap::new();
    let epics = board
        .rocks
        .iter()
        .flat_map(|r| r.epics.iter())
        .chain(board.epics.iter());
    for epic in epics {
        if builds.contains_key(&epic.build_id) {
            continue;
        }
        let Some(build) = store.get_build(&epic.build_id).await? else {
            continue;
        };
        let issues = store
            .list_issues(&epic.build_id)
            .await?
            .into_iter()
            .map(|i| BoardIssue {
                id: i.id,
                name: i.name,
                status: i.status,
                seat: i.seat,
                assignee: i.assignee,
                priority: i.priority,
                depends_on: i.depends_on,
            })
            .collect();
        builds.insert(epic.build_id.clone(), (build.status, issues));
    }
    board.overlay(|id| builds.get(id).cloned());
    Ok(())
}
