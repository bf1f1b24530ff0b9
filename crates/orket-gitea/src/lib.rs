//! Orket's side of the team's Gitea: checking a webhook delivery's signature
//! ([`signature`]), reading the delivery as Gitea writes it ([`hook`]), and the REST calls
//! Orket answers with ([`client`]), each returning a [`client::Call`] record to store as an
//! event. The feature `standin` adds [`standin`], a loopback stand-in for Gitea's API and
//! builders of deliveries as Gitea sends them, for tests.
//!
//! Everything follows Gitea's own source (1.21 to 1.25), not GitHub's API that Gitea
//! resembles: the module docs name the Gitea files each behaviour was read from.

#![forbid(unsafe_code)]
// `serde_json::json!` of a whole Gitea repository object nests deeper than the default allows.
#![recursion_limit = "256"]

pub mod client;
pub mod hook;
pub mod signature;
#[cfg(feature = "standin")]
pub mod standin;

pub use client::{Call, ClientError, GiteaClient, Outcome, RetryPolicy};
pub use hook::{card_ids, parse, CommentAction, Hook, HookError, PrAction, Verdict};
pub use signature::{sign, verify, SignatureError};
