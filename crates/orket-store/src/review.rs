//! The rows of the Gitea pull-request review loop: webhook deliveries (each recorded once),
//! the pull requests Orket knows of, and the change requests ("cycles") on each.

use serde::Serialize;

/// A webhook delivery to record (`Change::RecordDelivery`): refused as a duplicate
/// (`StoreError::Duplicate`) when its delivery id, or its exact body, was accepted before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewDelivery {
    /// `X-Gitea-Delivery`.
    pub delivery_id: String,
    /// `X-Gitea-Event`.
    pub event: String,
    /// `X-Gitea-Event-Type`, when sent.
    pub event_type: Option<String>,
    /// `owner/name` of the repository, when the payload names one.
    pub repository: Option<String>,
    /// The pull request's number, when the delivery concerns one.
    pub pr_number: Option<i64>,
    /// The lower-case hex SHA-256 of the raw body.
    pub body_sha256: String,
    /// What was done (`received` until the policy has run).
    pub outcome: String,
}

/// A pull request as a delivery shows it (`Change::UpsertPullRequest`): created, or updated
/// keeping its epoch and last review (and its head commit when this one has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequestChange {
    /// `owner/name`.
    pub repository: String,
    /// Its number.
    pub number: i64,
    /// Its title.
    pub title: String,
    /// The card its title names.
    pub card_id: Option<String>,
    /// The card's build.
    pub build_id: Option<String>,
    /// `open`, `closed` or `merged`.
    pub state: String,
    /// Its head commit.
    pub head_sha: Option<String>,
}

/// A recorded delivery: what was recorded, and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// Row id.
    pub id: i64,
    /// The delivery; its `outcome` is what was done (`ignored`, `review_started`,
    /// `cycle_recorded`, `escalated`, `rejected`, `merged`, `merge_refused`, `deployed`,
    /// `deploy_failed`, `recorded`, `failed`, ...).
    #[serde(flatten)]
    pub delivery: NewDelivery,
    /// Why, in words.
    pub detail: Option<String>,
    /// When it arrived.
    pub received_at: String,
}

/// A pull request as Orket knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequestRecord {
    /// Its repository, number, title, card, state and head.
    #[serde(flatten)]
    pub pr: PullRequestChange,
    /// The epoch of its review cycles (a merge or reopen starts the next).
    pub epoch: i64,
    /// The last review: `approved`, `rejected` or `comment`, with its content.
    pub last_review: Option<String>,
    /// When the row last changed.
    pub updated_at: String,
}

/// A change request on a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewCycle {
    /// Its number in its epoch (1, 2, ...).
    pub cycle: i64,
    /// The epoch it belongs to.
    pub epoch: i64,
    /// The review's content.
    pub reason: String,
    /// The head commit reviewed.
    pub head_sha: Option<String>,
    /// When it was recorded.
    pub created_at: String,
}
