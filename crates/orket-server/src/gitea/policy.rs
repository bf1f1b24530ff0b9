//! The review policy: what Orket does for each Gitea delivery, persisted per pull request.
//!
//! - opened / reopened / synchronized, with a card of the project in the title → the issue to
//!   `code_review` and a review run started by the server (`orket serve --provider/--model`);
//!   a title naming no card is recorded and ignored. A reopen starts a new count of cycles.
//! - changes requested (`rejected`) → one cycle with the review's text and the head commit; the
//!   3rd escalates to the seat holding `lead_architect` in a comment; the 4th closes the pull
//!   request, says why, and opens a "Requirements Review" issue listing every cycle's reason.
//! - approved → merged through the API (`Do: merge`, the branch deleted); a merge Gitea
//!   refuses is an event and a comment, never a success.
//! - merged → the card's epic deployed to a sandbox when it asks for one, and a comment with
//!   its URLs (or why it failed); a new count of cycles starts.
//! - closed without merge, review comments, issue comments, anything else → recorded.
//!
//! Every Gitea call is recorded as a `gitea_call` event.

use crate::AppState;
use orket_core::assets::{Category, Epic};
use orket_core::ids::epic_build_id;
use orket_core::{Event, Status};
use orket_engine::{MergeDeploy, RunOptions};
use orket_gitea::client::{Call, GiteaClient, Outcome};
use orket_gitea::hook::{Hook, PrAction, PullRequest, Repository, Verdict};
use orket_store::{Change, IssueUpdate, NewEvent, PullRequestChange};

/// The cycle that escalates to the architect.
pub const ESCALATE_AT: i64 = 3;
/// The cycle that closes the pull request.
pub const REJECT_AT: i64 = 4;

/// The actor of the changes the review loop makes.
const ACTOR: &str = "gitea";

/// What a delivery did: its outcome and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// `review_started`, `cycle_recorded`, ...
    pub outcome: String,
    /// Why, in words.
    pub detail: String,
}

fn done(outcome: &str, detail: impl Into<String>) -> Done {
    Done {
        outcome: outcome.to_string(),
        detail: detail.into(),
    }
}

/// The repository a delivery concerns.
pub fn repository(hook: &Hook) -> Option<&Repository> {
    match hook {
        Hook::PullRequest { repo, .. }
        | Hook::Review { repo, .. }
        | Hook::IssueComment { repo, .. } => Some(repo),
        Hook::Other { .. } => None,
    }
}

/// The pull request a delivery concerns.
pub fn pr_number(hook: &Hook) -> Option<i64> {
    match hook {
        Hook::PullRequest { pr, .. } | Hook::Review { pr, .. } => Some(pr.number),
        Hook::IssueComment { pr_number, .. } => *pr_number,
        Hook::Other { .. } => None,
    }
}

/// Acts on a verified, recorded delivery. Never fails: what went wrong is the outcome.
pub async fn act(state: &AppState, hook: &Hook) -> Done {
    let result = match hook {
        Hook::PullRequest { action, pr, repo } => pull_request(state, action, pr, repo).await,
        Hook::Review {
            verdict,
            content,
            reviewer,
            pr,
            repo,
        } => review(state, *verdict, content, reviewer, pr, repo).await,
        Hook::IssueComment { number, .. } => Ok(done(
            "recorded",
            format!("a comment on #{number}: no action"),
        )),
        Hook::Other { event } => Ok(done("recorded", format!("event {event}: no action"))),
    };
    result.unwrap_or_else(|e| done("failed", e))
}

/// A card of the project: its id, its epic, its department.
struct Card {
    id: String,
    epic: Epic,
}

/// The card a title names: the first id that is an issue of one of the project's epics.
fn card_in_title(state: &AppState, title: &str) -> Option<Card> {
    let tree = state.tree();
    let mut epics = Vec::new();
    for dept in tree.departments() {
        for name in tree.list(Category::Epics, &dept) {
            if let Ok(epic) = tree.load_epic(&name, &dept) {
                epics.push(epic);
            }
        }
    }
    let known: Vec<&str> = epics
        .iter()
        .flat_map(|e| e.issues.iter().map(|i| i.card.id.as_str()))
        .collect();
    orket_gitea::hook::card_ids(title, &known)
        .into_iter()
        .find_map(|id| {
            let epic = epics.iter().find(|e| e.issue(&id).is_some())?.clone();
            Some(Card { id, epic })
        })
}

/// Records the pull request's row (state, card, head).
/// The pull request's row as this delivery shows it.
fn row(pr: &PullRequest, repo: &Repository, card: Option<&Card>, pr_state: &str) -> Change {
    Change::UpsertPullRequest(PullRequestChange {
        repository: repo.full_name.clone(),
        number: pr.number,
        title: pr.title.clone(),
        card_id: card.map(|c| c.id.clone()),
        build_id: card.map(|c| epic_build_id(&c.epic.stem)),
        state: pr_state.to_string(),
        head_sha: Some(pr.head.sha.clone()).filter(|s| !s.is_empty()),
    })
}

/// Applies `changes` as one batch.
async fn commit(state: &AppState, changes: Vec<Change>) -> Result<(), String> {
    state
        .store()
        .apply(changes)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

async fn pull_request(
    state: &AppState,
    action: &PrAction,
    pr: &PullRequest,
    repo: &Repository,
) -> Result<Done, String> {
    let card = card_in_title(state, &pr.title);
    let pr_state = match action {
        PrAction::Closed { merged: true } => "merged",
        PrAction::Closed { merged: false } => "closed",
        _ => "open",
    };
    // The row and, after a reopen or a merge, the next epoch of cycles: one batch.
    let mut changes = vec![row(pr, repo, card.as_ref(), pr_state)];
    if matches!(
        action,
        PrAction::Reopened | PrAction::Closed { merged: true }
    ) {
        changes.push(Change::NewReviewEpoch {
            repository: repo.full_name.clone(),
            number: pr.number,
        });
    }
    commit(state, changes).await?;
    match action {
        PrAction::Opened | PrAction::Reopened | PrAction::Synchronized => {
            let Some(card) = card else {
                return Ok(done(
                    "ignored",
                    format!(
                        "#{}: the title \"{}\" names no card of the project",
                        pr.number, pr.title
                    ),
                ));
            };
            start_review(state, &card, pr).await
        }
        PrAction::Closed { merged: true } => Ok(deploy(state, card.as_ref(), pr, repo).await),
        PrAction::Closed { merged: false } => Ok(done(
            "recorded",
            format!("#{} closed without merging", pr.number),
        )),
        PrAction::Edited | PrAction::Other(_) => {
            Ok(done("recorded", format!("#{}: no action", pr.number)))
        }
    }
}

/// Moves the card's issue to `code_review` and starts a review run of it.
async fn start_review(state: &AppState, card: &Card, pr: &PullRequest) -> Result<Done, String> {
    let Some(choice) = state.config().review_provider.clone() else {
        return Ok(done(
            "review_not_started",
            format!(
                "{}: orket serve has no provider for review runs (--provider, or ORKET_PROVIDER)",
                card.id
            ),
        ));
    };
    let build = epic_build_id(&card.epic.stem);
    let store = state.store();
    // Another process runs the build: its status is not ours to change.
    let held = orket_engine::lease::held_elsewhere(store.as_ref(), std::slice::from_ref(&build))
        .await
        .map_err(|e| e.to_string())?;
    if let Some(lease) = held {
        return Ok(done(
            "review_not_started",
            format!(
                "#{}: {} not moved: build {build} is being run by {}",
                pr.number,
                card.id,
                lease.describe()
            ),
        ));
    }
    let stored = store
        .get_issue(&build, &card.id)
        .await
        .map_err(|e| e.to_string())?;
    let mut changes = Vec::new();
    if stored.is_none() {
        // The build was never run here: seed the issue from its epic so it can be reviewed.
        let spec = card.epic.issue(&card.id).ok_or("the card left its epic")?;
        changes.push(Change::UpsertBuild(orket_store::BuildRecord::new(
            &build,
            "epic",
            &card.epic.stem,
            &card.epic.department,
        )));
        changes.push(Change::InsertIssue(orket_engine::assets::seed_record(
            &build, spec,
        )));
    }
    changes.push(Change::UpdateIssue {
        build_id: build.clone(),
        id: card.id.clone(),
        update: IssueUpdate::by(ACTOR)
            .status(Status::CodeReview)
            .clear_wait_reason(),
    });
    commit(state, changes).await?;
    let provider = (state.config().providers)(&choice)?;
    let options = RunOptions {
        department: card.epic.department.clone(),
        model: state.config().review_model.clone(),
        ..state.config().run_options(provider)
    };
    match state.engine().start(&card.id, options).await {
        Ok(handle) => Ok(done(
            "review_started",
            format!(
                "#{}: {} moved to code_review; review run {} started",
                pr.number,
                card.id,
                handle.id()
            ),
        )),
        Err(e) => Ok(done(
            "review_not_started",
            format!(
                "#{}: {} moved to code_review; no run: {e}",
                pr.number, card.id
            ),
        )),
    }
}

async fn review(
    state: &AppState,
    verdict: Verdict,
    content: &str,
    reviewer: &str,
    pr: &PullRequest,
    repo: &Repository,
) -> Result<Done, String> {
    let card = card_in_title(state, &pr.title);
    let word = match verdict {
        Verdict::Approved => "approved",
        Verdict::Rejected => "rejected",
        Verdict::Comment => "comment",
    };
    let last = Change::RecordReview {
        repository: repo.full_name.clone(),
        number: pr.number,
        review: format!("{word} by {reviewer}: {content}"),
    };
    commit(state, vec![row(pr, repo, card.as_ref(), "open"), last]).await?;
    match verdict {
        // Only the work of a card is merged, and only the commit that was reviewed.
        Verdict::Approved if card.is_none() => Ok(done(
            "ignored",
            format!(
                "#{}: approved, but the title \"{}\" names no card of the project; not merged",
                pr.number, pr.title
            ),
        )),
        Verdict::Approved => Ok(merge(state, pr, repo).await),
        Verdict::Rejected => changes_requested(state, content, card.as_ref(), pr, repo).await,
        Verdict::Comment => Ok(done(
            "recorded",
            format!("#{}: a review comment, no action", pr.number),
        )),
    }
}

/// The Gitea client, or why there is none.
fn client(state: &AppState) -> Result<GiteaClient, String> {
    let settings = &state.config().gitea;
    let (Some(url), Some(token)) = (settings.url.as_deref(), settings.token.as_deref()) else {
        return Err("GITEA_URL and GITEA_TOKEN must be set for Orket to act on Gitea".to_string());
    };
    GiteaClient::new(url, token).map_err(|e| e.to_string())
}

/// Records `call` as a `gitea_call` event, and returns it.
async fn recorded(state: &AppState, call: Call) -> Call {
    let event = NewEvent::new(
        None,
        Event::GiteaCall {
            method: call.method.clone(),
            path: call.path.clone(),
            status: call.status,
            attempts: call.attempts,
            outcome: call.describe(),
        },
    )
    .role(ACTOR);
    if let Err(e) = state
        .recorder()
        .commit(vec![Change::AppendEvent(event)])
        .await
    {
        tracing::warn!("cannot record a Gitea call: {e}");
    }
    call
}

/// Comments on the pull request; the call is recorded.
async fn comment(
    state: &AppState,
    client: &GiteaClient,
    pr: &PullRequest,
    repo: &Repository,
    text: &str,
) -> Call {
    recorded(
        state,
        client
            .comment(&repo.owner.login, &repo.name, pr.number, text)
            .await,
    )
    .await
}

async fn merge(state: &AppState, pr: &PullRequest, repo: &Repository) -> Done {
    let client = match client(state) {
        Ok(c) => c,
        Err(e) => return done("merge_failed", e),
    };
    let head = Some(pr.head.sha.as_str()).filter(|s| !s.is_empty());
    let call = recorded(
        state,
        client
            .merge(&repo.owner.login, &repo.name, pr.number, head)
            .await,
    )
    .await;
    match &call.outcome {
        Outcome::Ok => done(
            "merged",
            format!("#{} approved and merged; its branch deleted", pr.number),
        ),
        Outcome::Refused(why) => {
            let text =
                format!("Orket could not merge this approved pull request: Gitea refused ({why}).");
            comment(state, &client, pr, repo, &text).await;
            done("merge_refused", format!("#{}: {why}", pr.number))
        }
        Outcome::Failed(why) => done("merge_failed", format!("#{}: {why}", pr.number)),
    }
}

async fn changes_requested(
    state: &AppState,
    content: &str,
    card: Option<&Card>,
    pr: &PullRequest,
    repo: &Repository,
) -> Result<Done, String> {
    let added = state
        .store()
        .apply(vec![Change::AddReviewCycle {
            repository: repo.full_name.clone(),
            number: pr.number,
            reason: content.to_string(),
            head_sha: Some(pr.head.sha.clone()).filter(|s| !s.is_empty()),
        }])
        .await
        .map_err(|e| e.to_string())?;
    let cycle = added.first().and_then(|a| a.id()).unwrap_or_default();
    if !(ESCALATE_AT..=REJECT_AT).contains(&cycle) {
        return Ok(done(
            "cycle_recorded",
            format!("#{}: changes requested, cycle {cycle}", pr.number),
        ));
    }
    let client = client(state)?;
    if cycle == ESCALATE_AT {
        let architect = card.and_then(|c| architect_of(state, &c.epic)).map_or_else(
            || "the architect (no seat of the team holds lead_architect)".to_string(),
            |seat| format!("the architect (seat `{seat}`)"),
        );
        let text = format!(
            "Changes were requested {cycle} times on this pull request. Escalating to {architect}: \
             please look at the requirements before another round. Latest: {content}"
        );
        let call = comment(state, &client, pr, repo, &text).await;
        let outcome = if call.is_ok() {
            "escalated"
        } else {
            "escalation_failed"
        };
        return Ok(done(
            outcome,
            format!(
                "#{}: cycle {cycle}, escalated to {architect} ({})",
                pr.number,
                call.describe()
            ),
        ));
    }
    // The 4th cycle: close it, say why, and open a requirements review with every reason.
    let cycles = state
        .store()
        .review_cycles(&repo.full_name, pr.number)
        .await
        .map_err(|e| e.to_string())?;
    let epoch = cycles.last().map_or(1, |c| c.epoch);
    let reasons: Vec<String> = cycles
        .iter()
        .filter(|c| c.epoch == epoch)
        .map(|c| format!("{}. {}", c.cycle, c.reason))
        .collect();
    let why = format!(
        "Closed by Orket: changes were requested {cycle} times. The requirements need another \
         look before this work goes on; see the Requirements Review issue."
    );
    comment(state, &client, pr, repo, &why).await;
    let close = recorded(
        state,
        client
            .close_pull(&repo.owner.login, &repo.name, pr.number)
            .await,
    )
    .await;
    let title = format!("Requirements Review: {}", pr.title);
    let body = format!(
        "Pull request #{} was rejected after {cycle} rounds of requested changes.\n\nEvery \
         cycle's reason:\n{}",
        pr.number,
        reasons.join("\n")
    );
    let (issue, _) = client
        .create_issue(&repo.owner.login, &repo.name, &title, &body)
        .await;
    let issue = recorded(state, issue).await;
    let outcome = if close.is_ok() && issue.is_ok() {
        "rejected"
    } else {
        "reject_failed"
    };
    Ok(done(
        outcome,
        format!(
            "#{}: cycle {cycle}; closed ({}); requirements review issue ({})",
            pr.number,
            close.describe(),
            issue.describe()
        ),
    ))
}

/// The seat of the epic's team holding `lead_architect`.
fn architect_of(state: &AppState, epic: &Epic) -> Option<String> {
    let team = state.tree().load_team(&epic.team, &epic.department).ok()?;
    team.seats
        .iter()
        .find(|s| s.roles.iter().any(|r| r == "lead_architect"))
        .map(|s| s.key.clone())
}

/// After a merge: the card's epic deployed when it asks for a sandbox; a comment either way.
async fn deploy(
    state: &AppState,
    card: Option<&Card>,
    pr: &PullRequest,
    repo: &Repository,
) -> Done {
    let Some(card) = card else {
        return done(
            "recorded",
            format!(
                "#{} merged; its title names no card, nothing to deploy",
                pr.number
            ),
        );
    };
    let deployed = state.engine().deploy_epic(&card.epic).await;
    let (outcome, text) = match deployed {
        Ok(MergeDeploy::NotAsked) => (
            "merged",
            format!("Merged. Epic `{}` asks for no sandbox.", card.epic.stem),
        ),
        Ok(MergeDeploy::NotOnMerge) => (
            "merged",
            format!(
                "Merged. The sandbox policy deploys epic `{}` at other moments, not on merges.",
                card.epic.stem
            ),
        ),
        Ok(MergeDeploy::Running(urls)) => (
            "deployed",
            format!("Merged and deployed to a sandbox: {}", urls.join(", ")),
        ),
        Err(why) => (
            "deploy_failed",
            format!("Merged, but the sandbox deploy failed: {why}"),
        ),
    };
    let call = match client(state) {
        Ok(client) => comment(state, &client, pr, repo, &text).await.describe(),
        Err(e) => e,
    };
    done(outcome, format!("#{}: {text} (comment: {call})", pr.number))
}
