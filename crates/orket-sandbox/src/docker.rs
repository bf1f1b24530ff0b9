//! The `docker compose` CLI (the v2 plugin), or the standalone `docker-compose` when the plugin
//! is missing. Commands run on blocking threads with a time limit.

use orket_isolate::process::{self, tail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Which compose program is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeCli {
    /// `docker compose` (the v2 plugin).
    Plugin(PathBuf),
    /// `docker-compose` (standalone).
    Standalone(PathBuf),
}

/// What a compose command gave.
#[derive(Debug, Clone)]
pub struct ComposeOutput {
    /// It exited 0 in time.
    pub ok: bool,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// How it ended ("exit code 1", "timed out after ...").
    pub ended: String,
}

impl ComposeOutput {
    /// A command that did not run to its end, for `why`.
    fn not_run(why: String) -> Self {
        ComposeOutput {
            ok: false,
            stdout: String::new(),
            stderr: why,
            ended: "not run to its end".to_string(),
        }
    }

    /// Why it failed, in one line: the last lines of stderr (else stdout), how it ended, and
    /// a plain explanation when the docker engine cannot be reached.
    pub fn failure(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let said = tail(&lines[lines.len().saturating_sub(2)..].join(" | "), 400);
        let unreachable = [
            "Cannot connect to the Docker daemon",
            "Error while fetching server API version",
            "Is the docker daemon running",
        ]
        .iter()
        .any(|m| text.contains(m));
        let prefix = if unreachable {
            "the docker engine is not reachable: "
        } else {
            ""
        };
        format!("{prefix}{said} ({})", self.ended)
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn works(mut command: Command) -> bool {
    command.arg("version");
    process::run(command, b"", Duration::from_secs(20)).is_ok_and(|f| f.success())
}

impl ComposeCli {
    /// The compose program of this machine: the docker plugin if `docker compose version`
    /// works, else `docker-compose`; an error says neither was found.
    pub fn detect() -> Result<ComposeCli, String> {
        if let Some(docker) = on_path("docker") {
            let mut probe = Command::new(&docker);
            probe.arg("compose");
            if works(probe) {
                return Ok(ComposeCli::Plugin(docker));
            }
        }
        if let Some(standalone) = on_path("docker-compose") {
            if works(Command::new(&standalone)) {
                return Ok(ComposeCli::Standalone(standalone));
            }
        }
        Err("neither `docker compose` nor `docker-compose` is installed (install the docker compose plugin or docker-compose)".to_string())
    }

    /// The command line for `args`, without the project and file options.
    fn base(&self) -> Command {
        match self {
            ComposeCli::Plugin(docker) => {
                let mut c = Command::new(docker);
                c.arg("compose");
                c
            }
            ComposeCli::Standalone(bin) => Command::new(bin),
        }
    }

    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            ComposeCli::Plugin(_) => "docker compose",
            ComposeCli::Standalone(_) => "docker-compose",
        }
    }

    /// Runs `<compose> -p project -f file <args>` in the compose file's folder (blocking).
    pub fn run_blocking(
        &self,
        project: &str,
        file: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> ComposeOutput {
        let mut command = self.base();
        command
            .arg("-p")
            .arg(project)
            .arg("-f")
            .arg(file)
            .args(args);
        if let Some(dir) = file.parent() {
            command.current_dir(dir);
        }
        match process::run(command, b"", timeout) {
            Ok(f) => ComposeOutput {
                ok: f.success(),
                stdout: String::from_utf8_lossy(&f.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&f.stderr).into_owned(),
                ended: f.describe(),
            },
            Err(e) => ComposeOutput::not_run(format!("cannot start {}: {e}", self.name())),
        }
    }

    /// [`ComposeCli::run_blocking`] on a blocking thread.
    pub async fn run(
        &self,
        project: &str,
        file: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> ComposeOutput {
        let (cli, project, file) = (self.clone(), project.to_string(), file.to_path_buf());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli.run_blocking(&project, &file, &args, timeout)
        })
        .await
        .unwrap_or_else(|e| ComposeOutput::not_run(format!("the compose task failed: {e}")))
    }
}
