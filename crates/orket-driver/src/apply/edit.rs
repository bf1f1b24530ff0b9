//! The actions that change existing epics: `assign_team` (refused when the team lacks seats
//! the issues use), `turn_directive` (appended to the issue's `note`, in the file and in the
//! epic build's row) and `adopt_issue` (refused when dependencies would cross epics).

use super::epic_json::{issue_at, push_issue, remove_issue, set_field};
use super::Editor;
use crate::driver::DRIVER_ROLE;
use crate::names::seat_list;
use crate::outcome::{refuse, Done, Fail};
use orket_core::assets::{Category, Epic, IssueSpec};
use orket_store::IssueUpdate;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::path::Path;

impl Editor<'_> {
    /// `assign_team`: the epic `epic_name` goes to `team_name`.
    pub(super) async fn assign_team(&self, epic_name: &str, team_name: &str) -> Result<Done, Fail> {
        let (path, epic) = self.look.epic(epic_name, "epic")?;
        let team = self.look.team(team_name, &epic.department)?;
        let missing: BTreeSet<&str> = epic
            .issues
            .iter()
            .filter(|i| team.seat(&i.seat).is_none())
            .map(|i| i.seat.as_str())
            .collect();
        if !missing.is_empty() {
            return refuse(format!(
                "team: team \"{}\" lacks the seat(s) {} that issues of epic \"{}\" use (its seats: {})",
                team.name,
                missing.into_iter().collect::<Vec<_>>().join(", "),
                epic.stem,
                seat_list(&team)
            ));
        }
        if epic.team == team.name {
            return Ok(Done {
                reply: format!(
                    "epic {} already has team {}; nothing changed",
                    epic.stem, team.name
                ),
                changed_files: Vec::new(),
            });
        }
        let mut value = self.read_value(&path)?;
        set_field(&mut value, "team", json!(team.name))?;
        let changed = self.commit_epic(path, value, &epic).await?;
        Ok(Done {
            reply: format!(
                "epic {} now has team {} (was {}) in {}",
                epic.stem,
                team.name,
                epic.team,
                changed.join(", ")
            ),
            changed_files: changed,
        })
    }

    /// `turn_directive`: `directive` appended to the note of `issue`, in its epic's file and
    /// in its row of the epic's build. The file is the action; when the row cannot be
    /// written, the reply says so.
    pub(super) async fn turn_directive(
        &self,
        issue: &str,
        directive: &str,
        epic_name: Option<&str>,
    ) -> Result<Done, Fail> {
        if directive.trim().is_empty() {
            return refuse("directive: must not be empty");
        }
        let (path, epic, index) = self.look.issue_home(issue, epic_name, "issue", "epic")?;
        let mut value = self.read_value(&path)?;
        let object = issue_at(&mut value, &epic.issues_key, index)?;
        let note = with_directive(object, directive);
        object.insert("id".into(), json!(issue));
        object.insert("note".into(), json!(note));
        let changed = self.commit_epic(path, value, &epic).await?;
        let mut reply = format!(
            "the next turn of issue {issue} (epic {}) will see the directive in its note ({})",
            epic.stem,
            changed.join(", ")
        );
        if let Err(problem) = self.note_to_build(issue, &epic.stem, &note).await {
            tracing::warn!("{problem}");
            reply.push_str(&format!("; but {problem}"));
        }
        Ok(Done {
            reply,
            changed_files: changed,
        })
    }

    /// The note also reaches the issue's row in its epic's build (a continued build reads
    /// the note from the store, not from the file). Without a store, or when the build has no
    /// row for the issue yet (it is seeded from the file), there is nothing to do.
    async fn note_to_build(&self, issue: &str, epic: &str, note: &str) -> Result<(), String> {
        let Some(store) = self.store else {
            return Ok(());
        };
        let build = orket_core::ids::epic_build_id(epic);
        let not_reached = |e: &dyn std::fmt::Display| {
            format!("the directive did not reach issue {issue} of build {build}: {e}")
        };
        match store.get_issue(&build, issue).await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(e) => return Err(not_reached(&e)),
        }
        store
            .update_issue(&build, issue, IssueUpdate::by(DRIVER_ROLE).note(note))
            .await
            .map(drop)
            .map_err(|e| not_reached(&e))
    }

    /// `adopt_issue`: `issue` moves from its epic (`from_epic` when given) to `to_epic`.
    pub(super) async fn adopt_issue(
        &self,
        issue: &str,
        from_epic: Option<&str>,
        to_epic: &str,
    ) -> Result<Done, Fail> {
        let (to_path, to) = self.look.epic(to_epic, "to_epic")?;
        let (from_path, from, index) =
            self.look
                .issue_home(issue, from_epic, "issue", "from_epic")?;
        if from_path == to_path {
            return refuse(format!(
                "to_epic: issue {issue} is already in epic \"{}\"",
                to.stem
            ));
        }
        self.check_adoption(issue, &from.issues[index], &from, &to)?;
        let changed = self
            .move_issue(issue, (&from_path, &from, index), (&to_path, &to))
            .await?;
        Ok(Done {
            reply: format!(
                "moved issue {issue} from epic {} to epic {} ({})",
                from.stem,
                to.stem,
                changed.join(", ")
            ),
            changed_files: changed,
        })
    }

    /// Refuses moving `issue` (`spec` in `from`) to `to` when the seat is not one of the new
    /// team's, `to` has the id already, or dependencies would cross epics.
    fn check_adoption(
        &self,
        issue: &str,
        spec: &IssueSpec,
        from: &Epic,
        to: &Epic,
    ) -> Result<(), Fail> {
        let team = self.look.team(&to.team, &to.department)?;
        if team.seat(&spec.seat).is_none() {
            return refuse(format!(
                "to_epic: seat \"{}\" of issue {issue} is not a seat of team \"{}\" of epic \"{}\" (seats: {})",
                spec.seat,
                team.name,
                to.stem,
                seat_list(&team)
            ));
        }
        if to.issue(issue).is_some() {
            return refuse(format!(
                "issue: epic \"{}\" already has an issue with id {issue}",
                to.stem
            ));
        }
        if !spec.depends_on.is_empty() {
            return refuse(format!(
                "issue: {issue} depends on {} of epic \"{}\", which would stay behind; move or drop those dependencies first",
                spec.depends_on.join(", "),
                from.stem
            ));
        }
        let dependents: Vec<&str> = from
            .issues
            .iter()
            .filter(|i| i.depends_on.iter().any(|d| d == issue))
            .map(|i| i.card.id.as_str())
            .collect();
        if !dependents.is_empty() {
            return refuse(format!(
                "issue: {} of epic \"{}\" depend(s) on {issue}; they would be left with a dependency on another epic",
                dependents.join(", "),
                from.stem
            ));
        }
        Ok(())
    }

    /// Removes the issue at `index` of `from` from its file and appends it to `to`'s file,
    /// in one commit.
    async fn move_issue(
        &self,
        issue: &str,
        (from_path, from, index): (&Path, &Epic, usize),
        (to_path, to): (&Path, &Epic),
    ) -> Result<Vec<String>, Fail> {
        let mut from_value = self.read_value(from_path)?;
        let mut moved = issue_at(&mut from_value, &from.issues_key, index)?.clone();
        moved.insert("id".into(), json!(issue));
        remove_issue(&mut from_value, &from.issues_key, index)?;
        let mut to_value = self.read_value(to_path)?;
        push_issue(&mut to_value, &to.issues_key, Value::Object(moved))?;
        self.commit(
            vec![
                (from_path.to_path_buf(), from_value),
                (to_path.to_path_buf(), to_value),
            ],
            &[
                (Category::Epics, &from.stem, &from.department),
                (Category::Epics, &to.stem, &to.department),
            ],
        )
        .await
    }
}

/// The issue's note with `directive` on a line of its own after it.
fn with_directive(issue: &Map<String, Value>, directive: &str) -> String {
    match issue.get("note").and_then(Value::as_str) {
        Some(old) if !old.trim().is_empty() => {
            format!("{}\n{}", old.trim_end(), directive.trim())
        }
        _ => directive.trim().to_string(),
    }
}
