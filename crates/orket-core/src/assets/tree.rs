//! The asset tree on disk: layered lookup (`config/` → `model/<dept>/` → `model/core/`),
//! listing, the organization merge, and typed loading.

use super::diag::Diagnostic;
use super::parse;
use super::reader::Reader;
use super::types::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// A kind of asset file, with the folder it lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// `epics/`
    Epics,
    /// `rocks/`
    Rocks,
    /// `teams/`
    Teams,
    /// `roles/`
    Roles,
    /// `dialects/`
    Dialects,
    /// `environments/`
    Environments,
    /// `models/`: model profiles, one per model name.
    Models,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 7] = [
        Category::Epics,
        Category::Rocks,
        Category::Teams,
        Category::Roles,
        Category::Dialects,
        Category::Environments,
        Category::Models,
    ];

    /// The folder name (`epics`).
    pub fn dir(self) -> &'static str {
        match self {
            Category::Epics => "epics",
            Category::Rocks => "rocks",
            Category::Teams => "teams",
            Category::Roles => "roles",
            Category::Dialects => "dialects",
            Category::Environments => "environments",
            Category::Models => "models",
        }
    }

    /// The singular noun (`epic`), for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Category::Epics => "epic",
            Category::Rocks => "rock",
            Category::Teams => "team",
            Category::Roles => "role",
            Category::Dialects => "dialect",
            Category::Environments => "environment",
            Category::Models => "model profile",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

/// Why an asset could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssetError {
    /// No file of that name in any layer.
    #[error("{category} \"{name}\" not found (looked in {})", searched.join(", "))]
    NotFound {
        /// The category looked in.
        category: Category,
        /// The name asked for.
        name: String,
        /// The files tried, relative to the root.
        searched: Vec<String>,
    },
    /// A name that is not a plain file stem (`../x`, `a/b`, empty).
    #[error(
        "invalid {what} name \"{name}\": expected a plain name without `/`, `\\` or a leading `.`"
    )]
    InvalidName {
        /// What was named (`epic`, `department`).
        what: String,
        /// The name as given.
        name: String,
    },
    /// The file exists but has errors.
    #[error("{}", render(diagnostics))]
    Invalid {
        /// The errors (and warnings) found in it.
        diagnostics: Vec<Diagnostic>,
    },
}

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Characters that some file systems refuse in file names: a model name holding one
/// (`qwen2.5-coder:7b`) has no profile file.
const NOT_IN_FILE_NAMES: [char; 7] = [':', '*', '?', '"', '<', '>', '|'];

/// The longest name of a card or department, in bytes: its file (`<name>.json`) and its
/// workspace and build (`build-<name>`) must stay under the 255 bytes file systems allow.
pub const MAX_NAME_BYTES: usize = 200;

/// True for a name usable as one path component (at most [`MAX_NAME_BYTES`] long).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).components().count() == 1
}

/// A project's asset tree, rooted at the project directory.
#[derive(Debug, Clone)]
pub struct AssetTree {
    root: PathBuf,
}

impl AssetTree {
    /// The tree under `root` (the folder holding `config/` and `model/`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        AssetTree { root: root.into() }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` relative to the root, with `/` separators (as shown in messages).
    pub fn relative(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The files tried for `(category, name, dept)`, in lookup order.
    pub fn candidates(
        &self,
        category: Category,
        name: &str,
        dept: &str,
    ) -> Result<Vec<PathBuf>, AssetError> {
        if !is_plain_name(name) {
            return Err(AssetError::InvalidName {
                what: category.noun().to_string(),
                name: name.to_string(),
            });
        }
        if !is_plain_name(dept) {
            return Err(AssetError::InvalidName {
                what: "department".to_string(),
                name: dept.to_string(),
            });
        }
        let file = format!("{name}.json");
        let mut out = vec![self.root.join("config").join(category.dir()).join(&file)];
        if dept != "core" {
            out.push(
                self.root
                    .join("model")
                    .join(dept)
                    .join(category.dir())
                    .join(&file),
            );
        }
        out.push(
            self.root
                .join("model")
                .join("core")
                .join(category.dir())
                .join(&file),
        );
        Ok(out)
    }

    /// The first existing file for `(category, name, dept)`.
    pub fn find(&self, category: Category, name: &str, dept: &str) -> Result<PathBuf, AssetError> {
        let candidates = self.candidates(category, name, dept)?;
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| AssetError::NotFound {
                category,
                name: name.to_string(),
                searched: candidates.iter().map(|p| self.relative(p)).collect(),
            })
    }

    /// The sorted union of the file stems of a category in the three layers.
    pub fn list(&self, category: Category, dept: &str) -> Vec<String> {
        let mut dirs = vec![self.root.join("config").join(category.dir())];
        if is_plain_name(dept) && dept != "core" {
            dirs.push(self.root.join("model").join(dept).join(category.dir()));
        }
        dirs.push(self.root.join("model").join("core").join(category.dir()));
        let mut names = BTreeSet::new();
        for dir in dirs {
            for path in json_files(&dir) {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    names.insert(stem.to_string());
                }
            }
        }
        names.into_iter().collect()
    }

    /// The departments: folders under `model/`, `core` first (always listed).
    pub fn departments(&self) -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(self.root.join("model"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| is_plain_name(n) && n != "core")
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found.insert(0, "core".to_string());
        found
    }

    /// Reads and parses a JSON file; the error names the file, line and column.
    pub(crate) fn read_json(&self, path: &Path) -> Result<Value, Diagnostic> {
        let file = self.relative(path);
        let text = std::fs::read_to_string(path)
            .map_err(|e| Diagnostic::error(&file, "", format!("cannot read the file: {e}")))?;
        serde_json::from_str(&text).map_err(|e| {
            Diagnostic::error(
                &file,
                "",
                format!(
                    "invalid JSON at line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    strip_position(&e)
                ),
            )
        })
    }

    /// Reads `path` and parses it with `parse`, returning what could be read (even when the
    /// file has errors) and every problem found.
    pub(crate) fn parse_file_partial<T>(
        &self,
        path: &Path,
        parse: impl FnOnce(&mut Reader, &Value) -> Option<T>,
    ) -> (Option<T>, Vec<Diagnostic>) {
        match self.read_json(path) {
            Err(d) => (None, vec![d]),
            Ok(value) => {
                let mut ctx = Reader::new(self.relative(path));
                let parsed = parse(&mut ctx, &value);
                (parsed, ctx.diags)
            }
        }
    }

    fn load<T>(
        &self,
        category: Category,
        name: &str,
        dept: &str,
        parse: impl FnOnce(&mut Reader, &Value) -> Option<T>,
    ) -> Result<T, AssetError> {
        let path = self.find(category, name, dept)?;
        match self.parse_file_partial(&path, parse) {
            (Some(asset), d) if !d.iter().any(Diagnostic::is_error) => Ok(asset),
            (_, diagnostics) => Err(AssetError::Invalid { diagnostics }),
        }
    }

    /// The organization with its problems: `config/org_info.json` merged with
    /// `config/architecture.json` when both exist, else the first of `config/organization.json`,
    /// `model/organization.json`, else the defaults. Environment overrides are not applied.
    pub fn organization_with_diagnostics(&self) -> (Organization, Vec<Diagnostic>) {
        let config = self.root.join("config");
        let info = config.join("org_info.json");
        let arch = config.join("architecture.json");
        let mut diags = Vec::new();
        let mut sources = Vec::new();
        let mut merged: Option<Value> = None;
        if info.is_file() && arch.is_file() {
            for path in [&info, &arch] {
                sources.push(self.relative(path));
                match self.read_json(path) {
                    Ok(Value::Object(map)) => {
                        let base = merged.get_or_insert_with(|| Value::Object(Default::default()));
                        if let Value::Object(base) = base {
                            base.extend(map);
                        }
                    }
                    Ok(other) => diags.push(Diagnostic::error(
                        self.relative(path),
                        "",
                        format!(
                            "expected an object, found {}",
                            crate::priority::json_kind(&other)
                        ),
                    )),
                    Err(d) => diags.push(d),
                }
            }
        } else if let Some(path) = [
            config.join("organization.json"),
            self.root.join("model").join("organization.json"),
        ]
        .into_iter()
        .find(|p| p.is_file())
        {
            sources.push(self.relative(&path));
            match self.read_json(&path) {
                Ok(v) => merged = Some(v),
                Err(d) => diags.push(d),
            }
        }
        let Some(value) = merged else {
            return (
                Organization {
                    sources,
                    ..Organization::default()
                },
                diags,
            );
        };
        let mut ctx = Reader::new(sources.join(" + "));
        let org = parse::organization(&mut ctx, &value, sources);
        diags.extend(ctx.diags);
        (org, diags)
    }

    /// The organization, with `ORKET_ORG_NAME` / `ORKET_ORG_VISION` applied.
    pub fn organization(&self) -> Result<Organization, AssetError> {
        let (mut org, diagnostics) = self.organization_with_diagnostics();
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(AssetError::Invalid { diagnostics });
        }
        org.apply_env_overrides(|k| std::env::var(k).ok());
        Ok(org)
    }

    /// A team.
    pub fn load_team(&self, name: &str, dept: &str) -> Result<Team, AssetError> {
        self.load(Category::Teams, name, dept, |ctx, v| {
            parse::team(ctx, v, name)
        })
    }

    /// A role: its own file first, else the definition inline in `team`.
    pub fn load_role(
        &self,
        name: &str,
        dept: &str,
        team: Option<&Team>,
    ) -> Result<Role, AssetError> {
        match self.load(Category::Roles, name, dept, |ctx, v| {
            parse::role(ctx, v, "", name)
        }) {
            Err(AssetError::NotFound {
                category,
                name: n,
                mut searched,
            }) => {
                if let Some(role) = team.and_then(|t| t.inline_role(name)) {
                    return Ok(role.clone());
                }
                if let Some(t) = team {
                    searched.push(format!("the roles of team \"{}\" ({})", t.name, t.file));
                }
                Err(AssetError::NotFound {
                    category,
                    name: n,
                    searched,
                })
            }
            other => other,
        }
    }

    /// The dialect of a model family.
    pub fn load_dialect(&self, family: &str, dept: &str) -> Result<Dialect, AssetError> {
        self.load(Category::Dialects, family, dept, parse::dialect)
    }

    /// An environment.
    pub fn load_environment(&self, name: &str, dept: &str) -> Result<Environment, AssetError> {
        self.load(Category::Environments, name, dept, |ctx, v| {
            parse::environment(ctx, v, name)
        })
    }

    /// The profile of a model, by the model's name as a turn uses it
    /// (`smollm2-135m-instruct`): `Ok(None)` when no layer has one, or when the name cannot be
    /// a file name (`qwen2.5-coder:7b`); an error when the file is invalid.
    pub fn load_model_profile(
        &self,
        name: &str,
        dept: &str,
    ) -> Result<Option<ModelProfile>, AssetError> {
        if !is_plain_name(name)
            || name.contains(NOT_IN_FILE_NAMES)
            || name.contains(char::is_control)
        {
            return Ok(None);
        }
        match self.load(Category::Models, name, dept, |ctx, v| {
            parse::model_profile(ctx, v, name)
        }) {
            Ok(profile) => Ok(Some(profile)),
            Err(AssetError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An epic and its issues.
    pub fn load_epic(&self, name: &str, dept: &str) -> Result<Epic, AssetError> {
        self.load(Category::Epics, name, dept, |ctx, v| {
            parse::epic(ctx, v, name, dept)
        })
    }

    /// A rock.
    pub fn load_rock(&self, name: &str, dept: &str) -> Result<Rock, AssetError> {
        self.load(Category::Rocks, name, dept, |ctx, v| {
            parse::rock(ctx, v, name, dept)
        })
    }
}

/// The `*.json` files directly in `dir`, sorted.
pub(crate) fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The stem of a file name (`login` for `epics/login.json`).
pub(crate) fn file_stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string()
}

/// serde_json's message without its trailing " at line X column Y".
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}
