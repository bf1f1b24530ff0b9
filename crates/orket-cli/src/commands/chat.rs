//! `orket chat`: talk to the operations-lead model (the driver); each answer is one
//! action on the asset tree, or a plain reply.

use crate::commands::run::{provider, ProviderArgs};
use crate::project::Project;
use anyhow::{Context, Result};
use orket_driver::{Driver, DriverError, DriverOptions, DriverOutcome};
use orket_llm::ChatMessage;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

/// Options of `orket chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// One message, answered once; without it, messages are read line by line from stdin
    /// (`exit` or end of input ends the session).
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// The model the driver asks [default: the organization's process_rules.default_llm].
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// The department new epics and rocks go to, and names are looked up in first.
    #[arg(long, value_name = "D", default_value = "core")]
    pub department: String,
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// Runs `orket chat`: exit 0 when every action applied (or was a reply), 1 when the one-shot
/// message's action was refused or the reply was not an action (the reason on stderr).
pub async fn run(project: &Project, args: ChatArgs) -> Result<ExitCode> {
    let tree = project.tree()?;
    let options = DriverOptions {
        model: args.model.clone(),
        department: args.department.clone(),
        ..DriverOptions::default()
    };
    let mut driver = Driver::new(tree, provider(&args.provider)?, options);
    // Events and directives reach the store only when the project already has one: chatting
    // never creates it.
    if let Some(store) = project.existing_store().await? {
        driver = driver.with_store(store);
    }
    match &args.message {
        Some(message) => Ok(match one(&driver, &[], message).await? {
            Ok(_) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        }),
        None => repl(&driver).await,
    }
}

/// Answers one message: prints the outcome, or the refusal on stderr (`Err(message)`). A failed
/// model call is an error of the command.
async fn one(
    driver: &Driver,
    history: &[ChatMessage],
    message: &str,
) -> Result<Result<DriverOutcome, String>> {
    match driver.handle(history, message).await {
        Ok(outcome) => {
            print_outcome(&outcome);
            Ok(Ok(outcome))
        }
        Err(DriverError::Model(err)) => Err(anyhow::anyhow!("the model call failed: {err}")),
        Err(DriverError::Io(err)) => Err(anyhow::anyhow!(err)),
        Err(err @ DriverError::Refused { .. }) => {
            eprintln!("refused: {err}");
            Ok(Err(err.to_string()))
        }
        Err(err @ DriverError::BadReply { .. }) => {
            eprintln!("error: {err}");
            Ok(Err(err.to_string()))
        }
    }
}

fn print_outcome(outcome: &DriverOutcome) {
    if outcome.action == "reply" {
        println!("{}", outcome.reply);
        return;
    }
    println!("{}: {}", outcome.action, outcome.reply);
    for file in &outcome.changed_files {
        println!("  wrote {file}");
    }
}

/// Reads messages from stdin until `exit` or the end of input, keeping the conversation.
async fn repl(driver: &Driver) -> Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal();
    let mut history: Vec<ChatMessage> = Vec::new();
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if interactive {
            print!("> ");
            std::io::stdout().flush().ok();
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin")?;
        let message = line.trim();
        if message.is_empty() {
            continue;
        }
        if message == "exit" || message == "quit" {
            break;
        }
        let answer = match one(driver, &history, message).await? {
            Ok(outcome) => outcome.model_reply,
            Err(refusal) => format!("(refused) {refusal}"),
        };
        history.push(ChatMessage::user(message));
        history.push(ChatMessage::assistant(answer));
    }
    Ok(ExitCode::SUCCESS)
}
