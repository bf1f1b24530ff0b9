//! The `loader` family: where a project's assets come from. A loader gives the asset tree the
//! engine reads; the default is the project's own folders (`config/`, `model/<department>/`,
//! `model/core/`). Because the choice is itself written in the assets
//! (`process_rules.loader_node`), the project's own organization file is read first to choose.

use orket_core::assets::AssetTree;
use std::path::Path;

/// Gives the asset tree of a project.
pub trait Loader: Send + Sync {
    /// The tree of the project at `root`, or why it cannot be had.
    fn tree(&self, root: &Path) -> Result<AssetTree, String>;
}

/// The project's own folders.
pub struct DefaultLoader;

impl Loader for DefaultLoader {
    fn tree(&self, root: &Path) -> Result<AssetTree, String> {
        Ok(AssetTree::new(root.to_path_buf()))
    }
}
