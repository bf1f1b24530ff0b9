//! The project files the board may browse and edit: `GET /v1/system/explorer`,
//! `GET /v1/system/read`, `POST /v1/system/save`. Paths are relative to the project root and
//! confined to `model/`, `config/` and `workspace/`: `..`, absolute paths, dotfiles (any
//! component starting with `.`, so `.env` and `.git` too, also where a link leads) and
//! symlinks leading out of their folder are refused (the reason never names where a link
//! leads) and not listed. The rules are `orket-governance`'s
//! [`ProjectFolders`], which the driver's writes use too.

use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use orket_governance::confine::{Access, FolderError, ProjectFolders, Rules};
use orket_governance::file_tools::write_atomically;
use orket_governance::RefusalCode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use utoipa::{IntoParams, ToSchema};

/// The folders of the project the file routes may touch.
pub const TOP_FOLDERS: [&str; 3] = ["model", "config", "workspace"];
/// The largest file `read` returns.
const MAX_READ_BYTES: u64 = 1024 * 1024;
/// The most entries one listing returns.
const MAX_ENTRIES: usize = 1000;

/// `?path=` of a folder.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FolderQuery {
    /// A folder relative to the project root (`model/core/epics`); empty lists the top folders.
    #[serde(default)]
    pub path: String,
}

/// `?path=` of a file.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// A file relative to the project root (`model/core/epics/hello_cli.json`).
    // An `Option` only so that a missing one gets this API's own 400 naming it.
    #[param(required = true, min_length = 1, pattern = r"\S")]
    pub path: Option<String>,
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
    #[schema(min_length = 1, pattern = r"\S")]
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

/// The real location of `path` (relative to the project root), for reading or writing,
/// inside its top folder: `orket-governance`'s [`ProjectFolders`] with the project rules
/// (relative paths, no `..`, no dotfiles as written or where links lead). A bad path is 400,
/// a refused one 403, a missing top folder 404.
fn resolve(root: &Path, path: &str, access: Access) -> ApiResult<(PathBuf, String)> {
    let folders = ProjectFolders::new(root, &TOP_FOLDERS, Rules::PROJECT)
        .map_err(|e| ApiError::internal(format!("{}: {e}", root.display())))?;
    match folders.resolve(path, access) {
        Ok(resolved) => Ok((resolved.real, resolved.display)),
        Err(FolderError::NotFound(message)) => Err(ApiError::not_found(message)),
        Err(FolderError::Refused(refusal)) if refusal.code == RefusalCode::BadArgs => {
            Err(ApiError::bad_request(format!("path: {}", refusal.message)))
        }
        Err(FolderError::Refused(refusal)) => Err(ApiError::forbidden(refusal.message)),
    }
}

/// Lists a folder of the project (`path` empty: the top folders that exist).
#[utoipa::path(get, path = "/v1/system/explorer", params(FolderQuery),
    responses((status = 200, body = Listing), (status = 403), (status = 404)))]
pub async fn explorer(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<FolderQuery>,
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
    let (real, display) = resolve(root, query.path.trim(), Access::Read)?;
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
            let path = format!("{display}/{name}");
            // A link is described by where it leads, and only when that may be read: a link
            // out of its folder (or to a dotfile) is not listed, so nothing of what lies
            // outside — not even its kind or size — is told.
            let meta = if entry.file_type().ok()?.is_symlink() {
                let (target, _) = resolve(root, &path, Access::Read).ok()?;
                std::fs::metadata(target).ok()?
            } else {
                entry.metadata().ok()?
            };
            Some(Entry {
                path,
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
#[utoipa::path(get, path = "/v1/system/read", params(FileQuery),
    responses((status = 200, body = FileText), (status = 403), (status = 404)))]
pub async fn read(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<FileQuery>,
) -> ApiResult<Json<FileText>> {
    let path = query.path.as_deref().unwrap_or_default().trim();
    let (real, display) = resolve(state.root(), path, Access::Read)?;
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

/// A failed write: the path's own fault (a parent that is a file, a name the file system
/// refuses) is the request's (400); anything else is the server's.
fn write_error(display: &str, err: &std::io::Error) -> ApiError {
    use std::io::ErrorKind::{AlreadyExists, InvalidFilename, InvalidInput, NotADirectory};
    match err.kind() {
        NotADirectory | AlreadyExists | InvalidInput | InvalidFilename => {
            ApiError::bad_request(format!("path: cannot write {display}: {err}"))
        }
        _ => ApiError::internal(format!("writing {display}: {err}")),
    }
}

/// Writes a file of the project (parents created, replaced atomically).
#[utoipa::path(post, path = "/v1/system/save", request_body = SaveRequest,
    responses((status = 200, body = Saved), (status = 400), (status = 403), (status = 413)))]
pub async fn save(
    State(state): State<AppState>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<Saved>> {
    let request: SaveRequest = crate::parse_body(body)?;
    let (real, display) = resolve(state.root(), request.path.trim(), Access::Write)?;
    if real.is_dir() {
        return Err(ApiError::bad_request(format!(
            "path: {display} is a folder"
        )));
    }
    write_atomically(&real, request.content.as_bytes())
        .await
        .map_err(|e| write_error(&display, &e))?;
    Ok(Json(Saved {
        ok: true,
        path: display,
    }))
}
