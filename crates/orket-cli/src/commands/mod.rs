//! One module per subcommand.

pub mod board;
pub mod check;
