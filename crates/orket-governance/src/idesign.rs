//! iDesign architecture rules, checked on every write of a source file when the
//! epic has `architecture_governance.idesign` on.
//!
//! Folder and naming rules apply to `.py .ts .js .rs` files; the class-suffix, import and
//! syntax rules read Python through tree-sitter-python's parse tree (no regexes).

use crate::refusal::{Refusal, RefusalCode};
use tree_sitter::{Node, Parser, Tree};

/// The extensions of the source files iDesign checks.
pub const SOURCE_EXTENSIONS: [&str; 4] = ["py", "ts", "js", "rs"];

/// The folders a source file's first folder (after an optional `src/` or `product/`) may be.
pub const ALLOWED_FOLDERS: [&str; 12] = [
    "managers",
    "engines",
    "accessors",
    "utils",
    "controllers",
    "tests",
    "schemas",
    "models",
    "infrastructure",
    "services",
    "agent_output",
    "verification",
];

/// Leading folders skipped before the first iDesign folder.
const ROOT_PREFIXES: [&str; 2] = ["src", "product"];

/// The three layers whose files carry their layer's word and class suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Manager,
    Engine,
    Accessor,
}

impl Layer {
    fn of_folder(folder: &str) -> Option<Layer> {
        match folder {
            "managers" => Some(Layer::Manager),
            "engines" => Some(Layer::Engine),
            "accessors" => Some(Layer::Accessor),
            _ => None,
        }
    }

    fn folder(self) -> &'static str {
        match self {
            Layer::Manager => "managers",
            Layer::Engine => "engines",
            Layer::Accessor => "accessors",
        }
    }

    /// The word a file name must contain (`manager`).
    fn word(self) -> &'static str {
        match self {
            Layer::Manager => "manager",
            Layer::Engine => "engine",
            Layer::Accessor => "accessor",
        }
    }

    /// The suffix a class must carry (`Manager`).
    fn suffix(self) -> &'static str {
        match self {
            Layer::Manager => "Manager",
            Layer::Engine => "Engine",
            Layer::Accessor => "Accessor",
        }
    }

    /// The layers this layer may not import.
    fn forbidden_imports(self) -> &'static [&'static str] {
        match self {
            Layer::Manager => &[],
            Layer::Engine => &["managers"],
            Layer::Accessor => &["managers", "engines"],
        }
    }
}

/// Checks a write of `content` to the workspace-relative `path` against the iDesign rules,
/// in this order: root file, folder, naming, then (Python) syntax, class suffix, imports.
pub fn check_idesign(path: &str, content: &str) -> Result<(), Refusal> {
    let normalized = path.replace('\\', "/");
    let parts: Vec<&str> = normalized
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let Some((file_name, folders)) = parts.split_last() else {
        return Ok(());
    };
    let Some(ext) = extension(file_name) else {
        return Ok(());
    };
    let shown = parts.join("/");
    if folders.is_empty() {
        return Err(Refusal::new(
            RefusalCode::IdesignRootFile,
            format!(
                "'{shown}' is a source file at the workspace root; iDesign puts source files in \
                 a component folder ({})",
                ALLOWED_FOLDERS.join(", ")
            ),
        ));
    }
    let skip = usize::from(ROOT_PREFIXES.contains(&folders[0].to_lowercase().as_str()));
    let Some(first) = folders.get(skip).map(|f| f.to_lowercase()) else {
        return Err(Refusal::new(
            RefusalCode::IdesignFolder,
            format!(
                "'{shown}' sits directly in {}/; iDesign source files go in one of its folders ({})",
                folders[0],
                ALLOWED_FOLDERS.join(", ")
            ),
        ));
    };
    if !ALLOWED_FOLDERS.contains(&first.as_str()) {
        return Err(Refusal::new(
            RefusalCode::IdesignFolder,
            format!(
                "'{shown}' is in folder '{}', which is not an iDesign folder (allowed: {})",
                folders[skip],
                ALLOWED_FOLDERS.join(", ")
            ),
        ));
    }
    let layer = Layer::of_folder(&first);
    if let Some(layer) = layer {
        if !file_name.to_lowercase().contains(layer.word()) {
            let stem = &file_name[..file_name.len() - ext.len() - 1];
            return Err(Refusal::new(
                RefusalCode::IdesignNaming,
                format!(
                    "'{shown}': a file under {}/ must have '{}' in its name (e.g. {stem}_{}.{ext})",
                    layer.folder(),
                    layer.word(),
                    layer.word()
                ),
            ));
        }
    }
    if ext == "py" {
        check_python(&shown, content, layer)?;
    }
    Ok(())
}

/// The lower-cased extension of `file_name` when it is a checked source extension.
fn extension(file_name: &str) -> Option<String> {
    let (stem, ext) = file_name.rsplit_once('.')?;
    let ext = ext.to_lowercase();
    (!stem.is_empty() && SOURCE_EXTENSIONS.contains(&ext.as_str())).then_some(ext)
}

/// Parses Python source with tree-sitter-python; `None` only if the parser cannot run.
fn parse_python(content: &str) -> Option<Tree> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .ok()?;
    parser.parse(content, None)
}

fn check_python(shown: &str, content: &str, layer: Option<Layer>) -> Result<(), Refusal> {
    let Some(tree) = parse_python(content) else {
        return Err(Refusal::new(
            RefusalCode::IdesignSyntax,
            format!("'{shown}': the Python parser could not run on this file"),
        ));
    };
    let root = tree.root_node();
    if let Some(problem) = first_syntax_problem(root) {
        let pos = problem.start_position();
        let what = if problem.is_missing() {
            format!("missing '{}'", problem.kind())
        } else {
            let text = problem.utf8_text(content.as_bytes()).unwrap_or_default();
            let line = text.lines().next().unwrap_or_default().trim();
            let snippet: String = line.chars().take(40).collect();
            if snippet.is_empty() {
                "invalid syntax".to_string()
            } else {
                format!("invalid syntax near `{snippet}`")
            }
        };
        return Err(Refusal::new(
            RefusalCode::IdesignSyntax,
            format!(
                "'{shown}' has a Python syntax error at line {}, column {}: {what}",
                pos.row + 1,
                pos.column + 1
            ),
        ));
    }
    let Some(layer) = layer else {
        return Ok(());
    };
    let source = content.as_bytes();
    let mut cursor = root.walk();
    for child in root.named_children(&mut cursor) {
        let class = match child.kind() {
            "class_definition" => Some(child),
            "decorated_definition" => child
                .child_by_field_name("definition")
                .filter(|d| d.kind() == "class_definition"),
            _ => None,
        };
        let Some(class) = class else { continue };
        let Some(name) = class
            .child_by_field_name("name")
            .and_then(|n| n.utf8_text(source).ok())
        else {
            continue;
        };
        if !name.ends_with(layer.suffix()) {
            return Err(Refusal::new(
                RefusalCode::IdesignClassSuffix,
                format!(
                    "'{shown}' line {}: class '{name}' must end with '{}' (classes in {}/ are {}s)",
                    class.start_position().row + 1,
                    layer.suffix(),
                    layer.folder(),
                    layer.word()
                ),
            ));
        }
    }
    let forbidden = layer.forbidden_imports();
    if forbidden.is_empty() {
        return Ok(());
    }
    let mut imports = Vec::new();
    collect_imports(root, &mut imports);
    for import in imports {
        let mut names = Vec::new();
        collect_dotted_names(import, source, &mut names);
        let hit = names.iter().find_map(|name| {
            name.split('.')
                .map(str::trim)
                .find(|part| forbidden.contains(part))
        });
        if let Some(hit) = hit {
            let text = import.utf8_text(source).unwrap_or_default();
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(Refusal::new(
                RefusalCode::IdesignImport,
                format!(
                    "'{shown}' line {}: {} may not import from {hit} (`{text}`); iDesign calls go \
                     managers → engines → accessors, never back up",
                    import.start_position().row + 1,
                    match layer {
                        Layer::Accessor => "an accessor",
                        Layer::Engine => "an engine",
                        Layer::Manager => "a manager",
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// What a pre-order walk does after visiting a node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Visit the node's children.
    Descend,
    /// Skip the node's children.
    Skip,
    /// End the walk.
    Stop,
}

/// Visits `root` and its descendants in document order, iteratively (a deeply nested file
/// cannot overflow the stack).
fn preorder<'t>(root: Node<'t>, mut visit: impl FnMut(Node<'t>) -> Walk) {
    let mut cursor = root.walk();
    loop {
        match visit(cursor.node()) {
            Walk::Stop => return,
            Walk::Descend if cursor.goto_first_child() => continue,
            _ => {}
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return;
            }
        }
    }
}

/// The first ERROR or MISSING node in document order, if the tree has one.
fn first_syntax_problem(root: Node<'_>) -> Option<Node<'_>> {
    let mut found = None;
    preorder(root, |node| {
        if node.is_error() || node.is_missing() {
            found = Some(node);
            Walk::Stop
        } else if node.has_error() {
            Walk::Descend
        } else {
            Walk::Skip
        }
    });
    found
}

/// Every import statement (`import x`, `from x import y`) anywhere in the tree.
fn collect_imports<'t>(root: Node<'t>, out: &mut Vec<Node<'t>>) {
    preorder(root, |node| {
        if matches!(node.kind(), "import_statement" | "import_from_statement") {
            out.push(node);
            Walk::Skip
        } else {
            Walk::Descend
        }
    });
}

/// The text of every dotted module name under an import: the module, relative module and
/// imported names (aliases are plain identifiers and are not collected).
fn collect_dotted_names(import: Node<'_>, source: &[u8], out: &mut Vec<String>) {
    preorder(import, |node| {
        if node.kind() == "dotted_name" {
            if let Ok(text) = node.utf8_text(source) {
                out.push(text.chars().filter(|c| !c.is_whitespace()).collect());
            }
            Walk::Skip
        } else {
            Walk::Descend
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_source_files_are_not_checked() {
        assert!(check_idesign("README.md", "# hi").is_ok());
        assert!(check_idesign("notes/todo.txt", "x").is_ok());
        assert!(check_idesign("Makefile", "all:").is_ok());
    }

    #[test]
    fn recursion_limits_hold_on_deep_nesting() {
        let deep = format!("x = {}1{}\n", "(".repeat(20_000), ")".repeat(20_000));
        assert!(check_idesign("utils/deep.py", &deep).is_ok());
    }
}
