//! The rock that collects a phase's open bugs (`<rock>-phase2`, then `-phase3`, ...), written as
//! asset files, as a person or the driver would write them: one epic per epic the bugs came
//! from (its team, environment and references; at most the organization's iDesign threshold of
//! bugs each, so `orket run` takes it, unless the epic has iDesign on), each bug an issue of
//! type `bug` with its id, summary, seat, severity, priority, description and its dependencies
//! on bugs of the same epic; and the rock listing those epics. Every file carries
//! `params.bug_fix_phase.of_rock`, so a phase that ends again (after a crash between the files
//! and the store's batch) writes them again, and a file a person wrote is never overwritten.
//! Files are confined to the project's `model/`, written atomically, and loaded again with the
//! asset loader; when one does not load, every file is put back as it was.

use crate::error::EngineError;
use orket_core::assets::{is_plain_name, AssetTree, Category, Epic, Rock};
use orket_core::bugfix::{next_phase_rock, BUG_TYPE};
use orket_core::ids::epic_build_id;
use orket_governance::confine::{Access, ProjectFolders, Rules};
use orket_governance::file_tools::write_atomically;
use orket_store::{BugFixPhaseRecord, IssueRecord};
use serde_json::{json, Map, Value};
use std::collections::btree_map::{BTreeMap, Entry};
use std::path::{Path, PathBuf};

/// Where the next rock's files may be written: the project's `model/`, by plain relative
/// names, never through a link.
const MODEL: [&str; 1] = ["model"];
const RULES: Rules = Rules {
    no_linked_files: true,
    ..Rules::PROJECT
};

/// The next phase's rock, written.
pub(super) struct NextRock {
    /// Its name.
    pub rock: String,
    /// Each open bug with the epic of the next rock that holds it.
    pub placed: Vec<(IssueRecord, String)>,
}

/// One file to write: where, and its JSON.
struct File {
    path: PathBuf,
    value: Value,
    /// What it is, to load it again.
    asset: (Category, String, String),
}

/// Writes the next rock of `phase` (of `rock`) holding `open`.
pub(super) async fn write(
    tree: &AssetTree,
    rock: &Rock,
    phase: &BugFixPhaseRecord,
    open: &[&IssueRecord],
) -> Result<NextRock, EngineError> {
    let fail = |message: String| EngineError::BugFixPhase {
        rock: rock.stem.clone(),
        message,
    };
    let name = next_phase_rock(&rock.stem);
    if !is_plain_name(&name) {
        return Err(fail(format!("\"{name}\" cannot be a rock's file name")));
    }
    let threshold = tree.organization()?.idesign_threshold.max(1);
    let mut files = Vec::new();
    let mut placed = Vec::new();
    let mut entries = Vec::new();
    for (epic, bugs) in by_epic(tree, rock, open)? {
        let size = if epic.idesign { bugs.len() } else { threshold };
        for (n, chunk) in bugs.chunks(size.max(1)).enumerate() {
            let epic_name = next_epic_name(&name, &epic, n);
            if !is_plain_name(&epic_name) {
                return Err(fail(format!(
                    "\"{epic_name}\" cannot be an epic's file name"
                )));
            }
            placed.extend(chunk.iter().map(|b| ((*b).clone(), epic_name.clone())));
            entries.push(json!({"epic": epic_name, "department": epic.department}));
            files.push(File {
                path: asset_path(tree, Category::Epics, &epic.department, &epic_name),
                value: epic_value(&epic, chunk, phase, tree.root()),
                asset: (Category::Epics, epic_name, epic.department.clone()),
            });
        }
    }
    files.push(File {
        path: asset_path(tree, Category::Rocks, &rock.department, &name),
        value: rock_value(rock, phase, entries),
        asset: (Category::Rocks, name.clone(), rock.department.clone()),
    });
    commit(tree, &phase.rock, files).await.map_err(fail)?;
    Ok(NextRock { rock: name, placed })
}

/// The open bugs grouped by the rock's epic whose build holds them, in the rock's order.
fn by_epic<'a>(
    tree: &AssetTree,
    rock: &Rock,
    open: &[&'a IssueRecord],
) -> Result<Vec<(Epic, Vec<&'a IssueRecord>)>, EngineError> {
    let mut groups: BTreeMap<usize, (Epic, Vec<&IssueRecord>)> = BTreeMap::new();
    for bug in open {
        let Some(at) = rock
            .epics
            .iter()
            .position(|e| epic_build_id(&e.epic) == bug.build_id)
        else {
            continue;
        };
        let group = match groups.entry(at) {
            Entry::Occupied(group) => group.into_mut(),
            Entry::Vacant(place) => {
                let entry = &rock.epics[at];
                place.insert((tree.load_epic(&entry.epic, &entry.department)?, Vec::new()))
            }
        };
        group.1.push(bug);
    }
    Ok(groups.into_values().collect())
}

/// `<next rock>-<epic>` (the epic's own name before phases: an epic of an earlier phase's
/// rock is named by its origin), `-2`, `-3` for the further parts of a large one.
fn next_epic_name(next_rock: &str, epic: &Epic, part: usize) -> String {
    let origin = epic
        .card
        .params
        .get("bug_fix_phase")
        .and_then(|p| p.get("epic"))
        .and_then(Value::as_str)
        .unwrap_or(&epic.stem);
    match part {
        0 => format!("{next_rock}-{origin}"),
        n => format!("{next_rock}-{origin}-{}", n + 1),
    }
}

fn asset_path(tree: &AssetTree, category: Category, dept: &str, name: &str) -> PathBuf {
    tree.root()
        .join("model")
        .join(dept)
        .join(category.dir())
        .join(format!("{name}.json"))
}

/// The marker of files this phase writes.
fn marker(phase: &BugFixPhaseRecord, epic: Option<&str>) -> Value {
    let mut mark = json!({"of_rock": phase.rock});
    if let Some(epic) = epic {
        mark["epic"] = json!(epic);
    }
    json!({ "bug_fix_phase": mark })
}

/// An epic of the next rock: the source epic's team, environment, references and governance,
/// and `bugs` as its issues (dependencies kept among them only).
fn epic_value(
    source: &Epic,
    bugs: &[&IssueRecord],
    phase: &BugFixPhaseRecord,
    root: &Path,
) -> Value {
    let origin = source
        .card
        .params
        .get("bug_fix_phase")
        .and_then(|p| p.get("epic"))
        .and_then(Value::as_str)
        .unwrap_or(&source.stem)
        .to_string();
    let ids: Vec<&str> = bugs.iter().map(|b| b.id.as_str()).collect();
    let issues: Vec<Value> = bugs.iter().map(|b| issue_value(b, &ids, phase)).collect();
    let mut epic = Map::new();
    epic.insert("name".into(), json!(format!("Open bugs of {origin}")));
    epic.insert(
        "description".into(),
        json!(format!(
            "The bugs of epic {} still open when the bug-fix phase of rock {} ended ({}).",
            source.stem,
            phase.rock,
            phase.ended_at.as_deref().unwrap_or("")
        )),
    );
    epic.insert("team".into(), json!(source.team));
    epic.insert("environment".into(), json!(source.environment));
    let mut references = source.card.references.clone();
    for folder in work_folders(root, &phase.rock, &source.stem) {
        if !references.contains(&folder) {
            references.push(folder);
        }
    }
    if !references.is_empty() {
        epic.insert("references".into(), json!(references));
    }
    if source.idesign || source.pattern.is_some() {
        let mut governance = json!({"idesign": source.idesign});
        if let Some(pattern) = &source.pattern {
            governance["pattern"] = json!(pattern);
        }
        epic.insert("architecture_governance".into(), governance);
    }
    epic.insert("params".into(), marker(phase, Some(&origin)));
    epic.insert("issues".into(), Value::Array(issues));
    Value::Object(epic)
}

/// The folders the source epic's work is in (a rock run's `workspace/<rock>/<epic>`, an epic
/// or issue run's `workspace/<epic>`), relative to the project root: the next rock's epic
/// references them, so its agents read the code its bugs are about (its own workspace starts
/// empty).
fn work_folders(root: &Path, rock: &str, epic: &str) -> Vec<String> {
    [
        format!("workspace/{rock}/{epic}"),
        format!("workspace/{epic}"),
    ]
    .into_iter()
    .filter(|folder| root.join(folder).is_dir())
    .collect()
}

/// A bug as an issue of the next rock's epic.
fn issue_value(bug: &IssueRecord, ids: &[&str], phase: &BugFixPhaseRecord) -> Value {
    let mut issue = Map::new();
    issue.insert("id".into(), json!(bug.id));
    issue.insert("summary".into(), json!(bug.name));
    issue.insert("type".into(), json!(BUG_TYPE));
    if let Some(severity) = bug.severity {
        issue.insert("severity".into(), json!(severity));
    }
    issue.insert("seat".into(), json!(bug.seat));
    issue.insert("priority".into(), json!(bug.priority));
    if !bug.description.trim().is_empty() {
        issue.insert("description".into(), json!(bug.description));
    }
    if let Some(requirements) = bug.requirements.as_ref().filter(|r| !r.trim().is_empty()) {
        issue.insert("requirements".into(), json!(requirements));
    }
    let depends_on: Vec<&String> = bug
        .depends_on
        .iter()
        .filter(|d| ids.contains(&d.as_str()) && **d != bug.id)
        .collect();
    if !depends_on.is_empty() {
        issue.insert("depends_on".into(), json!(depends_on));
    }
    if !bug.references.is_empty() {
        issue.insert("references".into(), json!(bug.references));
    }
    issue.insert(
        "note".into(),
        json!(format!(
            "Moved from {}/{} when the bug-fix phase of rock {} ended.",
            bug.build_id, bug.id, phase.rock
        )),
    );
    Value::Object(issue)
}

/// The next rock: the same department, its epics in order.
fn rock_value(rock: &Rock, phase: &BugFixPhaseRecord, epics: Vec<Value>) -> Value {
    let title = match rock.card.name.trim() {
        "" => rock.stem.as_str(),
        named => named,
    };
    json!({
        "name": format!("{title}: bugs left open"),
        "description": format!(
            "The bugs still open when the bug-fix phase of rock {} ended ({}).",
            rock.stem,
            phase.ended_at.as_deref().unwrap_or("")
        ),
        "owner_department": rock.department,
        "task": format!("Fix the bugs rock {} left open.", rock.stem),
        "params": marker(phase, None),
        "epics": epics,
    })
}

/// A file as it was before the commit.
struct Previous {
    path: PathBuf,
    bytes: Option<Vec<u8>>,
}

/// Writes every file (refusing to replace one this phase did not write), then loads each asset
/// again; on a failure, every file written is put back as it was.
async fn commit(tree: &AssetTree, of_rock: &str, files: Vec<File>) -> Result<(), String> {
    let folders = ProjectFolders::new(tree.root(), &MODEL, RULES).map_err(|e| format!("{e}"))?;
    let mut previous = Vec::new();
    for file in &files {
        let rel = tree.relative(&file.path);
        let bytes = match std::fs::read(&file.path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{rel}: cannot read: {e}")),
        };
        if let Some(bytes) = &bytes {
            if !written_for(bytes, of_rock) {
                return Err(format!(
                    "{rel} exists and was not written by this bug-fix phase; move it away and \
                     look at the phase again"
                ));
            }
        }
        previous.push(Previous {
            path: file.path.clone(),
            bytes,
        });
    }
    let mut written = Vec::new();
    for (file, before) in files.iter().zip(previous) {
        if let Err(message) = write_one(tree, &folders, file).await {
            put_back(&written).await;
            return Err(message);
        }
        written.push(before);
    }
    for file in &files {
        let (category, name, dept) = &file.asset;
        let loaded = match category {
            Category::Rocks => tree.load_rock(name, dept).map(drop),
            _ => tree.load_epic(name, dept).map(drop),
        };
        if let Err(e) = loaded {
            put_back(&written).await;
            return Err(format!(
                "the written {} does not load: {e}",
                category.noun()
            ));
        }
    }
    Ok(())
}

/// Whether an existing file is one this phase wrote (its `params.bug_fix_phase.of_rock`).
fn written_for(bytes: &[u8], of_rock: &str) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok_and(|v| {
        v.pointer("/params/bug_fix_phase/of_rock")
            .and_then(Value::as_str)
            == Some(of_rock)
    })
}

async fn write_one(tree: &AssetTree, folders: &ProjectFolders, file: &File) -> Result<(), String> {
    let rel = tree.relative(&file.path);
    let confined = || {
        folders
            .resolve(&rel, Access::Write)
            .map_err(|e| e.to_string())
    };
    confined()?;
    if let Some(folder) = file.path.parent() {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("{rel}: cannot create its folder: {e}"))?;
    }
    // The folder may have been created through a link: check again.
    confined()?;
    let mut text = serde_json::to_string_pretty(&file.value)
        .map_err(|e| format!("{rel}: cannot serialize: {e}"))?;
    text.push('\n');
    write_atomically(&file.path, text.as_bytes())
        .await
        .map_err(|e| format!("{rel}: cannot write: {e}"))
}

/// Puts the files back (the last first); what cannot be is logged.
async fn put_back(written: &[Previous]) {
    for file in written.iter().rev() {
        let result = match &file.bytes {
            Some(bytes) => write_atomically(&file.path, bytes).await,
            None => std::fs::remove_file(&file.path),
        };
        if let Err(e) = result {
            tracing::error!("cannot put back {}: {e}", file.path.display());
        }
    }
}
