//! The actions that create: `create_epic` and `create_rock` write a new file (never over an
//! existing asset), `create_issue` appends an issue to an epic.

use super::epic_json::push_issue;
use super::issue::{issue_object, next_issue_id};
use super::Editor;
use crate::action::NewIssue;
use crate::names::{list_or_none, plain};
use crate::outcome::{refuse, Done, Fail};
use orket_core::assets::{AssetError, Category, Team};
use serde_json::{json, Map, Value};

impl Editor<'_> {
    /// `create_epic`: a new epic file for `team_name` with `issues`.
    pub(super) async fn create_epic(
        &self,
        department: Option<&str>,
        name: &str,
        team_name: &str,
        environment: Option<&str>,
        description: Option<&str>,
        issues: &[NewIssue],
    ) -> Result<Done, Fail> {
        let dept = self.new_asset(Category::Epics, name, department)?;
        let team = self.look.team(team_name, &dept)?;
        let environment = self.environment(environment, &dept)?;
        let ids = self.fresh_issue_ids(issues.len());
        let written = sibling_issues(issues, &ids, &team)?;
        let mut epic = Map::new();
        epic.insert("name".into(), json!(name));
        if let Some(d) = description.filter(|d| !d.trim().is_empty()) {
            epic.insert("description".into(), json!(d));
        }
        epic.insert("team".into(), json!(team.name));
        epic.insert("environment".into(), json!(environment));
        epic.insert("issues".into(), Value::Array(written));
        let changed = self
            .write_new(Category::Epics, name, &dept, Value::Object(epic))
            .await?;
        Ok(Done {
            reply: format!(
                "created epic {name} for team {} with {} issue(s) in {}",
                team.name,
                issues.len(),
                changed.join(", ")
            ),
            changed_files: changed,
        })
    }

    /// `create_issue`: `issue` appended to the epic `epic_name` with the epic's next id.
    pub(super) async fn create_issue(
        &self,
        epic_name: &str,
        issue: &NewIssue,
    ) -> Result<Done, Fail> {
        let (path, epic) = self.look.epic(epic_name, "epic")?;
        let team = self.look.team(&epic.team, &epic.department)?;
        let known: Vec<&str> = epic.issues.iter().map(|i| i.card.id.as_str()).collect();
        for (i, dep) in issue.depends_on.iter().enumerate() {
            if !known.contains(&dep.as_str()) {
                return refuse(format!(
                    "depends_on[{i}]: \"{dep}\" is not an issue of epic \"{}\" (issues: {})",
                    epic.stem,
                    list_or_none(&known)
                ));
            }
        }
        let epic_ids: Vec<String> = known.iter().map(|s| s.to_string()).collect();
        let id = next_issue_id(&epic_ids, &self.look.all_issue_ids());
        let object = issue_object(&id, issue, &team, &issue.depends_on, "")?;
        let mut value = self.read_value(&path)?;
        push_issue(&mut value, &epic.issues_key, object)?;
        let changed = self.commit_epic(path, value, &epic).await?;
        Ok(Done {
            reply: format!(
                "created issue {id} \"{}\" for seat {} in epic {} ({})",
                issue.summary.trim(),
                issue.seat,
                epic.stem,
                changed.join(", ")
            ),
            changed_files: changed,
        })
    }

    /// `create_rock`: a new rock file grouping `epics`.
    pub(super) async fn create_rock(
        &self,
        department: Option<&str>,
        name: &str,
        epics: &[String],
        description: Option<&str>,
    ) -> Result<Done, Fail> {
        let dept = self.new_asset(Category::Rocks, name, department)?;
        if epics.is_empty() {
            return refuse("epics: a rock needs at least one epic");
        }
        let entries = self.rock_epics(epics, &dept)?;
        let mut rock = Map::new();
        rock.insert("name".into(), json!(name));
        if let Some(d) = description.filter(|d| !d.trim().is_empty()) {
            rock.insert("description".into(), json!(d));
        }
        rock.insert("owner_department".into(), json!(dept));
        rock.insert("epics".into(), Value::Array(entries));
        let changed = self
            .write_new(Category::Rocks, name, &dept, Value::Object(rock))
            .await?;
        Ok(Done {
            reply: format!(
                "created rock {name} with epics {} in {}",
                epics.join(", "),
                changed.join(", ")
            ),
            changed_files: changed,
        })
    }

    /// The department of a new epic or rock `name`, which must be a plain name no layer of
    /// the tree has yet (assets are never overwritten).
    fn new_asset(
        &self,
        category: Category,
        name: &str,
        department: Option<&str>,
    ) -> Result<String, Fail> {
        plain("name", name)?;
        let dept = self.department(department)?;
        match self.look.tree.find(category, name, &dept) {
            Ok(existing) => refuse(format!(
                "name: {category} \"{name}\" already exists ({}); {category}s are never overwritten",
                self.look.tree.relative(&existing)
            )),
            Err(AssetError::NotFound { .. }) => Ok(dept),
            Err(e) => refuse(format!("name: {e}")),
        }
    }

    /// The department of a new asset: given (plain, a folder of the tree or named by the
    /// organization) or the driver's.
    fn department(&self, given: Option<&str>) -> Result<String, Fail> {
        let dept = given
            .filter(|d| !d.trim().is_empty())
            .unwrap_or(self.look.department)
            .to_string();
        plain("department", &dept)?;
        let known = self.look.tree.departments();
        if known.contains(&dept) || self.org_departments.contains(&dept) {
            Ok(dept)
        } else {
            refuse(format!(
                "department: unknown department \"{dept}\" (departments: {})",
                known.join(", ")
            ))
        }
    }

    /// The environment of a new epic: given (it must exist) or the department's first.
    fn environment(&self, given: Option<&str>, dept: &str) -> Result<String, Fail> {
        let known = || self.look.tree.list(Category::Environments, dept);
        let Some(env) = given else {
            return match known().first() {
                Some(env) => Ok(env.clone()),
                None => refuse("environment: required (the project has no environment)"),
            };
        };
        plain("environment", env)?;
        match self.look.tree.load_environment(env, dept) {
            Ok(_) => Ok(env.to_string()),
            Err(AssetError::NotFound { .. }) => refuse(format!(
                "environment: unknown environment \"{env}\" (environments: {})",
                list_or_none(&known())
            )),
            Err(e) => refuse(format!("environment: {e}")),
        }
    }

    /// `count` new issue ids no epic uses, each different.
    fn fresh_issue_ids(&self, count: usize) -> Vec<String> {
        let mut taken = self.look.all_issue_ids();
        let mut ids: Vec<String> = Vec::new();
        for _ in 0..count {
            let id = next_issue_id(&ids, &taken);
            taken.insert(id.clone());
            ids.push(id);
        }
        ids
    }

    /// A rock's `epics` entries: each epic with the department it was found in.
    fn rock_epics(&self, epics: &[String], dept: &str) -> Result<Vec<Value>, Fail> {
        let mut entries = Vec::new();
        for (i, epic) in epics.iter().enumerate() {
            plain(&format!("epics[{i}]"), epic)?;
            let path = match self.look.tree.find(Category::Epics, epic, dept) {
                Ok(path) => path,
                Err(AssetError::NotFound { .. }) => {
                    return refuse(format!(
                        "epics[{i}]: unknown epic \"{epic}\" (epics: {})",
                        list_or_none(&self.look.tree.list(Category::Epics, dept))
                    ))
                }
                Err(e) => return refuse(format!("epics[{i}]: {e}")),
            };
            let rel = self.look.tree.relative(&path);
            let epic_dept = match rel.split('/').collect::<Vec<_>>().as_slice() {
                ["model", d, "epics", _] => (*d).to_string(),
                _ => dept.to_string(),
            };
            entries.push(json!({"epic": epic, "department": epic_dept}));
        }
        Ok(entries)
    }
}

/// The issues of a new epic with their `ids`; a `depends_on` names another issue of the list
/// by id or summary.
fn sibling_issues(issues: &[NewIssue], ids: &[String], team: &Team) -> Result<Vec<Value>, Fail> {
    let mut written = Vec::new();
    for (i, (issue, id)) in issues.iter().zip(ids).enumerate() {
        let field = format!("issues[{i}]");
        let depends_on = issue
            .depends_on
            .iter()
            .map(|dep| {
                ids.iter()
                    .zip(issues)
                    .find(|(id, other)| *id == dep || other.summary == *dep)
                    .map(|(id, _)| id.clone())
                    .ok_or_else(|| {
                        Fail::Refused(format!(
                            "{field}.depends_on: \"{dep}\" is neither the id nor the summary of another issue of the new epic"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        written.push(issue_object(id, issue, team, &depends_on, &field)?);
    }
    Ok(written)
}
