//! One module per subcommand.

pub mod approval;
pub mod board;
pub mod chat;
pub mod check;
pub mod conformance;
pub mod demo;
pub mod halt;
pub mod ledger;
pub mod model;
pub mod org_loop;
pub mod preview;
pub mod rock;
pub mod run;
pub mod runs;
pub mod sandbox;
pub mod serve;
pub mod show;
pub mod store;
pub mod success;
pub mod webhooks;
pub mod worker;
