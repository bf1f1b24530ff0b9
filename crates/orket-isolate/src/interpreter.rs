//! The Python interpreter fixtures run with, and what of its installation a fixture may read.
//!
//! The read set comes from what the interpreter reports of itself (`sys.prefix`,
//! `sys.base_prefix`, the exec prefixes, `sysconfig`'s stdlib and site-packages folders,
//! `site.getsitepackages()`), each followed to its real path — never from where its path
//! happens to sit: `/bin/python3` on a merged-/usr system is `/usr/bin/python3`, and "the
//! folder above its folder" is `/`. A folder that holds system secrets, other processes'
//! state, a home folder or the workspace's project is never granted: a prefix that wide is
//! left out (the library folders carry what the interpreter needs), and a library folder that
//! wide refuses the run.

use crate::process::{self, tail};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The `PATH` fixtures (and the probe of their interpreter) run with.
pub(crate) const FIXTURE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Places no fixture may read as a whole (nor any folder holding them): system secrets,
/// other processes' state, home folders, temporary and runtime files.
const SECRET_PLACES: [&str; 10] = [
    "/etc", "/root", "/home", "/proc", "/sys", "/run", "/var", "/tmp", "/dev", "/boot",
];

/// How long the interpreter may take to describe itself.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Asks the interpreter where it lives; run with `-I`, as fixtures are.
const PROBE: &str = r#"import json, site, sys, sysconfig
paths = sysconfig.get_paths()
libraries = [paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
try:
    libraries += site.getsitepackages()
except Exception:
    pass
print(json.dumps({
    "executable": sys.executable,
    "prefixes": [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix],
    "libraries": [p for p in libraries if p],
}))
"#;

/// The interpreter fixtures run with: `ORKET_VERIFY_PYTHON` (read at each run), else the real
/// executable behind `python3` on PATH (asked once, so wrappers like pyenv shims are not
/// needed in the fixture's empty environment).
pub(crate) fn python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ORKET_VERIFY_PYTHON").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .map_err(|e| format!("python3 is needed to run fixtures and was not found: {e}"))?;
            let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !out.status.success() || exe.is_empty() {
                return Err(format!(
                    "python3 did not report its executable: {}",
                    tail(&String::from_utf8_lossy(&out.stderr), 300)
                ));
            }
            Ok(PathBuf::from(exe))
        })
        .clone()
}

/// What an interpreter reported of itself, every path followed to its real place (paths
/// that do not exist are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Installation {
    /// The interpreter's executable file.
    pub executable: Option<PathBuf>,
    /// `sys.prefix`, `sys.base_prefix` and the exec prefixes.
    pub prefixes: Vec<PathBuf>,
    /// The stdlib and site-packages folders.
    pub libraries: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct Reported {
    executable: String,
    prefixes: Vec<String>,
    libraries: Vec<String>,
}

impl Installation {
    /// Asks `python` (once per interpreter and process).
    pub fn of(python: &Path) -> Result<Installation, String> {
        static KNOWN: OnceLock<Mutex<HashMap<PathBuf, Installation>>> = OnceLock::new();
        let known = KNOWN.get_or_init(Default::default);
        if let Some(found) = known.lock().ok().and_then(|k| k.get(python).cloned()) {
            return Ok(found);
        }
        let found = Self::ask(python)?;
        if let Ok(mut known) = known.lock() {
            known.insert(python.to_path_buf(), found.clone());
        }
        Ok(found)
    }

    fn ask(python: &Path) -> Result<Installation, String> {
        let mut command = Command::new(python);
        command
            .args(["-I", "-c", PROBE])
            .env_clear()
            .env("PATH", FIXTURE_PATH)
            .env("LANG", "C.UTF-8");
        let finished = process::run(command, &[], PROBE_TIMEOUT)
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        let reported: Reported = serde_json::from_slice(&finished.stdout)
            .ok()
            .filter(|_| finished.status.is_some_and(|s| s.success()))
            .ok_or_else(|| {
                format!(
                    "{} did not say where it is installed: {}",
                    python.display(),
                    tail(&String::from_utf8_lossy(&finished.stderr), 300)
                )
            })?;
        let real = |paths: &[String]| -> Vec<PathBuf> {
            let mut out: Vec<PathBuf> = Vec::new();
            for path in paths
                .iter()
                .filter_map(|p| Path::new(p).canonicalize().ok())
            {
                if !out.contains(&path) {
                    out.push(path);
                }
            }
            out
        };
        Ok(Installation {
            executable: Path::new(&reported.executable).canonicalize().ok(),
            prefixes: real(&reported.prefixes),
            libraries: real(&reported.libraries),
        })
    }

    /// The folders (and the executable) of this installation a fixture working in
    /// `workspace` may read; `Err` names a library folder that would grant a secret.
    pub fn readable(&self, workspace: &Path) -> Result<Vec<PathBuf>, String> {
        let guarded = guarded_places(workspace);
        let holds = |folder: &Path| guarded.iter().find(|place| place.starts_with(folder));
        let mut out = Vec::new();
        for library in &self.libraries {
            if let Some(place) = holds(library) {
                return Err(format!(
                    "the interpreter's library folder {} holds {}; fixtures are not run with it readable (set ORKET_VERIFY_PYTHON to an interpreter installed in a folder of its own)",
                    library.display(),
                    place.display()
                ));
            }
            out.push(library.clone());
        }
        out.extend(
            self.prefixes
                .iter()
                .filter(|prefix| holds(prefix).is_none())
                .cloned(),
        );
        out.extend(self.executable.clone());
        Ok(out)
    }
}

/// The places no read rule may cover for a fixture in `workspace`: [`SECRET_PLACES`], the
/// home folder of this process and the workspace (what holds it holds its project's `.env`
/// and store).
fn guarded_places(workspace: &Path) -> Vec<PathBuf> {
    let mut places: Vec<PathBuf> = SECRET_PLACES.iter().map(PathBuf::from).collect();
    places.extend(std::env::var_os("HOME").map(PathBuf::from));
    places.push(workspace.to_path_buf());
    places.extend(workspace.canonicalize().ok());
    places
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installation(prefixes: &[&str], libraries: &[&str]) -> Installation {
        Installation {
            executable: Some(PathBuf::from("/usr/bin/python3.11")),
            prefixes: prefixes.iter().map(PathBuf::from).collect(),
            libraries: libraries.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn a_prefix_as_wide_as_the_root_is_left_out() {
        let found = installation(&["/", "/usr"], &["/usr/lib/python3.11"])
            .readable(Path::new("/srv/p/workspace/app"))
            .unwrap();
        assert_eq!(
            found,
            [
                PathBuf::from("/usr/lib/python3.11"),
                PathBuf::from("/usr"),
                PathBuf::from("/usr/bin/python3.11")
            ]
        );
    }

    #[test]
    fn a_library_folder_holding_secrets_or_the_project_refuses_the_run() {
        for (library, place) in [
            ("/", "/etc"),
            ("/srv/p", "/srv/p/workspace/app"),
            ("/srv", "/srv/p/workspace/app"),
        ] {
            let why = installation(&["/usr"], &[library])
                .readable(Path::new("/srv/p/workspace/app"))
                .unwrap_err();
            assert!(
                why.contains(&format!("library folder {library} holds {place}")),
                "{why}"
            );
        }
    }

    #[test]
    fn an_installation_in_a_home_folder_is_its_own_folder_only() {
        let found = installation(
            &["/root/.pyenv/versions/3.11.7"],
            &["/root/.pyenv/versions/3.11.7/lib/python3.11"],
        )
        .readable(Path::new("/srv/p/workspace/app"))
        .unwrap();
        assert!(found.contains(&PathBuf::from("/root/.pyenv/versions/3.11.7")));
    }
}
