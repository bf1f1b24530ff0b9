//! `orket demo`: the demo organization, written out if missing, and its epic run end to end
//! by the embedded model (fetched on first use).

use crate::commands::run::{demo_model_path, known_demo_model, run_with, ProviderArgs, RunArgs};
use crate::project::Project;
use anyhow::{Context, Result};
use std::path::Path;
use std::process::ExitCode;

/// The demo organization's files, carried in the binary.
const FILES: &[(&str, &str)] = &[
    (
        "config/organization.json",
        include_str!("../../../../demo/config/organization.json"),
    ),
    (
        "model/core/teams/demo_team.json",
        include_str!("../../../../demo/model/core/teams/demo_team.json"),
    ),
    (
        "model/core/roles/coder.json",
        include_str!("../../../../demo/model/core/roles/coder.json"),
    ),
    (
        "model/core/roles/integrity_guard.json",
        include_str!("../../../../demo/model/core/roles/integrity_guard.json"),
    ),
    (
        "model/core/dialects/qwen.json",
        include_str!("../../../../demo/model/core/dialects/qwen.json"),
    ),
    (
        "model/core/dialects/llama3.json",
        include_str!("../../../../demo/model/core/dialects/llama3.json"),
    ),
    (
        "model/core/dialects/deepseek-r1.json",
        include_str!("../../../../demo/model/core/dialects/deepseek-r1.json"),
    ),
    (
        "model/core/dialects/phi.json",
        include_str!("../../../../demo/model/core/dialects/phi.json"),
    ),
    (
        "model/core/dialects/generic.json",
        include_str!("../../../../demo/model/core/dialects/generic.json"),
    ),
    (
        "model/core/environments/local.json",
        include_str!("../../../../demo/model/core/environments/local.json"),
    ),
    (
        "model/core/models/smollm2-135m-instruct.json",
        include_str!("../../../../demo/model/core/models/smollm2-135m-instruct.json"),
    ),
    (
        "model/core/models/gemma3-270m.json",
        include_str!("../../../../demo/model/core/models/gemma3-270m.json"),
    ),
    (
        "model/core/epics/hello_cli.json",
        include_str!("../../../../demo/model/core/epics/hello_cli.json"),
    ),
    (
        "model/core/rocks/demo_launch.json",
        include_str!("../../../../demo/model/core/rocks/demo_launch.json"),
    ),
    (
        "workspace/hello_cli/verification/test_hello.py",
        include_str!("../../../../demo/workspace/hello_cli/verification/test_hello.py"),
    ),
    (
        "workspace/hello_cli/verification/test_readme.py",
        include_str!("../../../../demo/workspace/hello_cli/verification/test_readme.py"),
    ),
    (
        "workspace/hello_cli/verification/test_notes.py",
        include_str!("../../../../demo/workspace/hello_cli/verification/test_notes.py"),
    ),
];

/// Options of `orket demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// The demo model: smollm2 (SmolLM2 135M) or gemma3-270m (Gemma 3 270M); fetched once.
    #[arg(long, value_name = "NAME", default_value = "smollm2")]
    pub model: String,
    /// The run's sampling seed: the same seed gives the same run [default: the demo
    /// environment's, 42].
    #[arg(long, value_name = "N")]
    pub seed: Option<i64>,
}

/// Writes the demo organization under `root` where its files are missing (existing files,
/// perhaps edited by the user, are kept). Returns how many files were written.
pub fn write_demo(root: &Path) -> Result<usize> {
    let mut written = 0;
    for (rel, text) in FILES {
        let path = root.join(rel);
        if path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written += 1;
    }
    Ok(written)
}

/// Runs the demo: organization in `root` (written if missing), model fetched if missing, the
/// epic `hello_cli` from scratch with the embedded provider, then the board.
pub async fn run(project: &Project, demo: DemoArgs) -> Result<ExitCode> {
    let model = known_demo_model(&demo.model)?;
    let written = write_demo(project.root())?;
    if written > 0 {
        println!(
            "Wrote the demo organization ({written} files) to {}",
            project.root().display()
        );
    }
    let args = RunArgs {
        target: "hello_cli".to_string(),
        department: "core".to_string(),
        workspace: None,
        model: Some(model.turn_name.to_string()),
        reset: true,
        concurrency: 1,
        max_iterations: 12,
        build: None,
        token_budget: None,
        time_budget: None,
        seed: demo.seed,
        fleet: false,
        provider: ProviderArgs {
            provider: Some("embedded".to_string()),
            replay: None,
            replay_delay_ms: 0,
            record: None,
            model_path: Some(demo_model_path(model)?),
        },
    };
    // A small model may not finish the work: any defined outcome ends the demo well.
    run_with(project, args).await?;
    println!();
    crate::commands::board::run(project, None, false).await?;
    Ok(ExitCode::SUCCESS)
}
