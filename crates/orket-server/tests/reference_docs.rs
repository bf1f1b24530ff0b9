//! `docs/http-api.md` is what the route table and the OpenAPI document say (run with
//! `ORKET_WRITE_DOCS=1` to rewrite it).

use std::path::PathBuf;

#[test]
fn the_http_reference_matches_the_route_table() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/http-api.md");
    let text = orket_server::reference::reference_md();
    if std::env::var_os("ORKET_WRITE_DOCS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (ORKET_WRITE_DOCS=1 writes it)", path.display()));
    assert!(
        on_disk == text,
        "docs/http-api.md is not what the code renders: run `ORKET_WRITE_DOCS=1 cargo test -p orket-server --test reference_docs`"
    );
    for route in orket_server::routes::table() {
        assert!(
            text.contains(&format!("## `{} {}`", route.method, route.path)),
            "{} {}",
            route.method,
            route.path
        );
    }
}
