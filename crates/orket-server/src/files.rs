//! The project files the board may browse and edit: `GET /v1/system/explorer`,
//! `GET /v1/system/read`, `POST /v1/system/save`. Paths are relative to the project root and
//! confined to `model/`, `config/` and `workspace/`: `..`, absolute paths, dotfiles (any
//! component starting with `.`, so `.env` and `.git` too) and symlinks leading out are refused.
//! Inside a top folder, resolution is the engine's [`Workspace`] (links followed, the real
//! location must stay inside).

use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use orket_engine::workspace::Workspace;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};
use utoipa::{IntoParams, ToSchema};

/// The folders of the project the file routes may touch.
pub const TOP_FOLDERS: [&str; 3] = ["model", "config", "workspace"];
/// The largest file `read` returns.
const MAX_READ_BYTES: u64 = 1024 * 1024;
/// The most entries one listing returns.
const MAX_ENTRIES: usize = 1000;

/// `?path=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PathQuery {
    /// A path relative to the project root (`model/core/epics`); empty lists the top folders.
    #[serde(default)]
    pub path: String,
}

/// One entry of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// Its path relative to the project root.
    pub path: String,
    /// True for folders.
    pub is_dir: bool,
    /// Its size in bytes (files).
    pub size: u64,
}

/// A folder's listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listing {
    /// The folder, relative to the project root (empty for the root).
    pub path: String,
    /// Folders first, then files, by name; dotfiles are never listed.
    pub items: Vec<Entry>,
}

/// A file's text.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileText {
    /// The file, relative to the project root.
    pub path: String,
    /// Its content (invalid UTF-8 replaced).
    pub content: String,
}

/// `POST /v1/system/save` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SaveRequest {
    /// The file, relative to the project root.
    pub path: String,
    /// Its new content.
    pub content: String,
}

/// A saved file.
#[derive(Debug, Serialize, ToSchema)]
pub struct Saved {
    /// Always true.
    pub ok: bool,
    /// The file, relative to the project root.
    pub path: String,
}

/// A path checked for its syntax: its top folder and the rest (`.` when none).
struct Checked {
    top: &'static str,
    rest: String,
    display: String,
}

/// Refuses absolute paths, `..`, dotfiles and anything outside the top folders.
fn check(path: &str) -> ApiResult<Checked> {
    let refuse = |why: &str| ApiError::forbidden(format!("path '{path}' is refused: {why}"));
    if path.contains('\0') || path.contains('\\') {
        return Err(refuse("it contains a NUL byte or a backslash"));
    }
    let p = Path::new(path);
    if p.is_absolute() || path.starts_with('/') {
        return Err(refuse(
            "absolute paths are not allowed; give a path relative to the project root",
        ));
    }
    let mut parts = Vec::new();
    for component in p.components() {
        match component {
            Component::Normal(part) => {
                let part = part.to_string_lossy();
                if part.starts_with('.') {
                    return Err(refuse(
                        "dotfiles and dot folders (.env, .git, ...) are never served",
                    ));
                }
                parts.push(part.into_owned());
            }
            Component::ParentDir => return Err(refuse("'..' may leave the project")),
            Component::CurDir => return Err(refuse("'.' components are not allowed")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse("absolute paths are not allowed"))
            }
        }
    }
    let Some(first) = parts.first() else {
        return Err(ApiError::bad_request("path: empty"));
    };
    let Some(top) = TOP_FOLDERS.iter().find(|t| **t == first.as_str()) else {
        return Err(refuse(&format!(
            "only {} are served",
            TOP_FOLDERS.map(|t| format!("{t}/")).join(", ")
        )));
    };
    let rest = if parts.len() > 1 {
        parts[1..].join("/")
    } else {
        ".".to_string()
    };
    Ok(Checked {
        top,
        rest,
        display: parts.join("/"),
    })
}

/// The real location of `path`, for reading or writing, inside its top folder.
fn resolve(root: &Path, path: &str, write: bool) -> ApiResult<(PathBuf, String)> {
    let checked = check(path)?;
    let top_dir = root.join(checked.top);
    if !top_dir.is_dir() {
        return Err(ApiError::not_found(format!(
            "{}/ does not exist in the project {}",
            checked.top,
            root.display()
        )));
    }
    let real_root = root
        .canonicalize()
        .map_err(|e| ApiError::internal(format!("{}: {e}", root.display())))?;
    let real_top = top_dir
        .canonicalize()
        .map_err(|e| ApiError::internal(format!("{}: {e}", top_dir.display())))?;
    if !real_top.starts_with(&real_root) {
        return Err(ApiError::forbidden(format!(
            "path '{path}' is refused: {}/ is a link out of the project",
            checked.top
        )));
    }
    let workspace = Workspace::new(&real_top, &[])
        .map_err(|e| ApiError::internal(format!("{}: {e}", top_dir.display())))?;
    let real = if write {
        workspace.resolve_write(&checked.rest)
    } else {
        workspace.resolve_read(&checked.rest)
    }
    .map_err(|refusal| {
        ApiError::forbidden(format!("path '{path}' is refused: {}", refusal.message))
    })?;
    // A link inside the folder may still lead to a dotfile.
    let inside = real.strip_prefix(&real_top).unwrap_or(&real);
    if inside
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
    {
        return Err(ApiError::forbidden(format!(
            "path '{path}' is refused: it leads to a dotfile"
        )));
    }
    Ok((real, checked.display))
}

/// Lists a folder of the project (`path` empty: the top folders that exist).
#[utoipa::path(get, path = "/v1/system/explorer", params(PathQuery),
    responses((status = 200, body = Listing), (status = 403), (status = 404)))]
pub async fn explorer(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> ApiResult<Json<Listing>> {
    let root = state.root();
    if query.path.trim().is_empty() {
        let items = TOP_FOLDERS
            .iter()
            .filter(|t| root.join(t).is_dir())
            .map(|t| Entry {
                name: t.to_string(),
                path: t.to_string(),
                is_dir: true,
                size: 0,
            })
            .collect();
        return Ok(Json(Listing {
            path: String::new(),
            items,
        }));
    }
    let (real, display) = resolve(root, query.path.trim(), false)?;
    if !real.is_dir() {
        return Err(ApiError::not_found(format!("{display} is not a folder")));
    }
    let reader = std::fs::read_dir(&real)
        .map_err(|e| ApiError::internal(format!("listing {display}: {e}")))?;
    let mut items: Vec<Entry> = reader
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let meta = std::fs::metadata(entry.path()).ok()?;
            Some(Entry {
                path: format!("{display}/{name}"),
                name,
                is_dir: meta.is_dir(),
                size: if meta.is_dir() { 0 } else { meta.len() },
            })
        })
        .collect();
    items.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    items.truncate(MAX_ENTRIES);
    Ok(Json(Listing {
        path: display,
        items,
    }))
}

/// Reads a text file of the project.
#[utoipa::path(get, path = "/v1/system/read", params(PathQuery),
    responses((status = 200, body = FileText), (status = 403), (status = 404)))]
pub async fn read(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> ApiResult<Json<FileText>> {
    let (real, display) = resolve(state.root(), query.path.trim(), false)?;
    let meta = std::fs::metadata(&real)
        .map_err(|_| ApiError::not_found(format!("{display} does not exist")))?;
    if !meta.is_file() {
        return Err(ApiError::not_found(format!("{display} is not a file")));
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{display} has {} bytes, more than the {MAX_READ_BYTES} served",
                meta.len()
            ),
        ));
    }
    let bytes =
        std::fs::read(&real).map_err(|e| ApiError::internal(format!("reading {display}: {e}")))?;
    Ok(Json(FileText {
        path: display,
        content: String::from_utf8_lossy(&bytes).into_owned(),
    }))
}

/// Writes a file of the project (parents created, replaced atomically).
#[utoipa::path(post, path = "/v1/system/save", request_body = SaveRequest,
    responses((status = 200, body = Saved), (status = 400), (status = 403), (status = 413)))]
pub async fn save(
    State(state): State<AppState>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<Saved>> {
    let request: SaveRequest = crate::parse_body(body)?;
    let (real, display) = resolve(state.root(), request.path.trim(), true)?;
    if real.is_dir() {
        return Err(ApiError::bad_request(format!(
            "path: {display} is a folder"
        )));
    }
    let parent = real
        .parent()
        .ok_or_else(|| ApiError::bad_request(format!("path: {display} has no folder")))?;
    std::fs::create_dir_all(parent)
        .map_err(|e| ApiError::internal(format!("creating the folder of {display}: {e}")))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let temp = parent.join(format!(".orket-save-{}-{nanos}", std::process::id()));
    std::fs::write(&temp, request.content.as_bytes())
        .and_then(|_| std::fs::rename(&temp, &real))
        .map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            ApiError::internal(format!("writing {display}: {e}"))
        })?;
    Ok(Json(Saved {
        ok: true,
        path: display,
    }))
}
