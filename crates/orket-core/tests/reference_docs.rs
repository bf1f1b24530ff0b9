//! The reference in `docs/` matches the code: the generated pages are exactly what the code
//! renders (run with `ORKET_WRITE_DOCS=1` to rewrite them), and the hand-written asset page
//! documents every field the loader reads.

use orket_core::assets::KNOWN_FIELDS;
use orket_core::reference;
use std::path::PathBuf;

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn generated_pages_match_the_code() {
    let pages = [
        ("lifecycle.md", reference::lifecycle_md()),
        ("events.md", reference::events_md()),
        ("refusals.md", reference::refusals_md()),
        ("tools.md", reference::tools_md()),
    ];
    for (file, text) in pages {
        let path = docs().join(file);
        if std::env::var_os("ORKET_WRITE_DOCS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (ORKET_WRITE_DOCS=1 writes it)", path.display()));
        assert!(
            on_disk == text,
            "docs/{file} is not what the code renders: run `ORKET_WRITE_DOCS=1 cargo test -p orket-core --test reference_docs`"
        );
    }
}

#[test]
fn the_asset_page_documents_every_field_the_loader_reads() {
    let page = std::fs::read_to_string(docs().join("assets.md")).unwrap();
    for (kind, fields) in KNOWN_FIELDS {
        let heading = page
            .lines()
            .position(|l| {
                l.starts_with("## ") && l.to_lowercase().contains(&format!("{kind} fields"))
            })
            .unwrap_or_else(|| panic!("docs/assets.md has no \"{kind} fields\" section"));
        let section: Vec<&str> = page
            .lines()
            .skip(heading + 1)
            .take_while(|l| !l.starts_with("## "))
            .collect();
        for field in fields {
            assert!(
                section
                    .iter()
                    .any(|l| l.starts_with(&format!("| `{field}` |"))),
                "docs/assets.md: the {kind} fields do not document `{field}`"
            );
        }
        let documented = section.iter().filter(|l| l.starts_with("| `")).count();
        assert_eq!(
            documented,
            fields.len(),
            "docs/assets.md: the {kind} fields document fields the loader does not read"
        );
    }
}
