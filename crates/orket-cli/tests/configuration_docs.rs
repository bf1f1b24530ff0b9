//! Every environment variable Orket reads is in `docs/configuration.md`: the variables are found
//! in the crates' sources (every `"ORKET_…"` literal), so a new one without documentation fails.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `ORKET_…` names quoted in `text`.
fn variables(text: &str) -> Vec<String> {
    text.match_indices("\"ORKET_")
        .map(|(at, _)| {
            text[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn every_environment_variable_read_is_documented() {
    let root = workspace();
    let docs = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let src = krate.path().join("src");
        if src.is_dir() {
            sources(&src, &mut files);
        }
    }
    let mut found = Vec::new();
    for file in &files {
        for name in variables(&std::fs::read_to_string(file).unwrap()) {
            // The policy families (`format!("ORKET_{}_NODE", …)`) are documented as one pattern.
            let family = name == "ORKET_" || name.ends_with("_NODE");
            // A prefix (`ORKET_KEY_`) is documented as `ORKET_KEY_<NAME>`.
            let prefix = name.ends_with('_') && docs.contains(&format!("`{name}<NAME>`"));
            let documented = docs.contains(&format!("{name}`"))
                || prefix
                || (family && docs.contains("`ORKET_<FAMILY>_NODE`"));
            assert!(
                documented,
                "{} reads {name}, which docs/configuration.md does not document",
                file.display()
            );
            found.push(name);
        }
    }
    assert!(
        found.len() >= 10,
        "expected Orket's variables, found {found:?}"
    );
}
