//! One module per subcommand.

pub mod board;
pub mod check;
pub mod run;
pub mod runs;
pub mod show;
