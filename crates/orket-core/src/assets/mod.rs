//! The asset tree: typed assets, the layered lookup, loading with precise errors, validation
//! (`orket check`) and the board built from files.

pub mod board;
pub mod check;
pub mod diag;
mod parse;
pub mod reader;
pub mod tree;
pub mod types;

pub use board::{Board, BoardEpic, BoardIssue, BoardRock};
pub use check::{check_tree, CheckReport};
pub use diag::{Diagnostic, Severity};
pub use parse::{ISSUE_TYPES, KNOWN_FIELDS};
pub use tree::{is_plain_name, AssetError, AssetTree, Category, MAX_NAME_BYTES};
pub use types::*;
