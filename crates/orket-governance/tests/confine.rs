//! Path confinement: what `Confinement::resolve_read` / `resolve_write` let through.

use orket_governance::confine::{
    Access, Confinement, FolderError, ProjectFolders, Resolved, Rules,
};
use orket_governance::gate::Refusal;
use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

struct Fx {
    _dirs: Vec<TempDir>,
    ws: Confinement,
    /// A folder outside the workspace (and outside the references).
    outside: PathBuf,
    /// The epic's reference folder (canonical).
    reference: PathBuf,
}

fn fixture() -> Fx {
    let base = TempDir::new().unwrap();
    let outside_dir = TempDir::new().unwrap();
    let reference_dir = TempDir::new().unwrap();
    let root = base.path().join("workspace");
    fs::write(outside_dir.path().join("secret_plans.txt"), "outside").unwrap();
    fs::write(reference_dir.path().join("spec.md"), "reference text").unwrap();
    let ws = Confinement::workspace(&root, &[reference_dir.path().to_path_buf()]).unwrap();
    Fx {
        outside: fs::canonicalize(outside_dir.path()).unwrap(),
        reference: fs::canonicalize(reference_dir.path()).unwrap(),
        _dirs: vec![base, outside_dir, reference_dir],
        ws,
    }
}

fn code(result: Result<PathBuf, Refusal>) -> &'static str {
    match result {
        Ok(p) => panic!("expected a refusal, got {}", p.display()),
        Err(r) => r.code.as_str(),
    }
}

fn refusal(result: Result<PathBuf, Refusal>, expected: &str) -> String {
    match result {
        Ok(p) => panic!("expected {expected}, got Ok({})", p.display()),
        Err(r) => {
            assert_eq!(r.code, expected, "{r}");
            r.message
        }
    }
}

#[test]
fn new_creates_the_root_and_relative_paths_resolve_inside_it() {
    let fx = fixture();
    assert!(fx.ws.root().is_dir());
    assert!(fx.ws.root().is_absolute());
    let p = fx.ws.resolve_write("src/app.py").unwrap();
    assert_eq!(p, fx.ws.root().join("src/app.py"));
    let p = fx.ws.resolve_read("./notes.md").unwrap();
    assert_eq!(p, fx.ws.root().join("notes.md"));
    assert_eq!(fx.ws.resolve_read(".").unwrap(), fx.ws.root());
    assert_eq!(fx.ws.references(), std::slice::from_ref(&fx.reference));
}

#[test]
fn empty_path_is_bad_args() {
    let fx = fixture();
    assert_eq!(code(fx.ws.resolve_read("")), "BAD_ARGS");
    assert_eq!(code(fx.ws.resolve_write("   ")), "BAD_ARGS");
}

#[test]
fn parent_components_are_refused_for_reads_and_writes() {
    let fx = fixture();
    let msg = refusal(fx.ws.resolve_write("../escape.txt"), "PATH_ESCAPE");
    assert!(msg.contains("../escape.txt"), "{msg}");
    assert!(msg.contains(".."), "{msg}");
    assert_eq!(code(fx.ws.resolve_read("src/../../x")), "PATH_ESCAPE");
    // Even a `..` that stays inside is refused: the rule is simple and predictable.
    assert_eq!(code(fx.ws.resolve_write("src/../app.py")), "PATH_ESCAPE");
    assert!(!fx.ws.root().parent().unwrap().join("escape.txt").exists());
}

#[test]
fn absolute_path_outside_is_refused_and_inside_is_allowed() {
    let fx = fixture();
    let outside = fx.outside.join("secret_plans.txt");
    let msg = refusal(fx.ws.resolve_read(outside.to_str().unwrap()), "PATH_ESCAPE");
    assert!(msg.contains(outside.to_str().unwrap()), "{msg}");
    assert_eq!(code(fx.ws.resolve_write("/etc/passwd")), "PATH_ESCAPE");

    let inside = fx.ws.root().join("docs/readme.md");
    assert_eq!(
        fx.ws.resolve_write(inside.to_str().unwrap()).unwrap(),
        inside
    );
    assert_eq!(
        fx.ws.resolve_read(inside.to_str().unwrap()).unwrap(),
        inside
    );
}

#[cfg(unix)]
#[test]
fn symlinked_file_pointing_outside_is_refused_for_read_and_write() {
    use std::os::unix::fs::symlink;
    let fx = fixture();
    let target = fx.outside.join("secret_plans.txt");
    symlink(&target, fx.ws.root().join("notes.txt")).unwrap();
    let msg = refusal(fx.ws.resolve_read("notes.txt"), "PATH_ESCAPE");
    assert!(msg.contains("notes.txt"), "{msg}");
    assert!(
        !msg.contains(target.to_str().unwrap()) && msg.contains("leads through a link to outside"),
        "the message says the link leads out, never where: {msg}"
    );
    refusal(fx.ws.resolve_write("notes.txt"), "PATH_ESCAPE");
    assert_eq!(fs::read_to_string(&target).unwrap(), "outside");
}

#[cfg(unix)]
#[test]
fn symlinked_folder_escaping_is_refused_for_existing_and_new_files() {
    use std::os::unix::fs::symlink;
    let fx = fixture();
    symlink(&fx.outside, fx.ws.root().join("shared")).unwrap();
    refusal(fx.ws.resolve_read("shared/secret_plans.txt"), "PATH_ESCAPE");
    refusal(fx.ws.resolve_read("shared"), "PATH_ESCAPE");
    let msg = refusal(fx.ws.resolve_write("shared/new/file.txt"), "PATH_ESCAPE");
    assert!(msg.contains("leads through a link to outside"), "{msg}");
    assert!(
        !msg.contains(fx.outside.to_str().unwrap()),
        "never where: {msg}"
    );
}

#[cfg(unix)]
#[test]
fn dangling_symlink_pointing_outside_is_refused() {
    use std::os::unix::fs::symlink;
    let fx = fixture();
    let target = fx.outside.join("not_yet.txt");
    symlink(&target, fx.ws.root().join("out.txt")).unwrap();
    let msg = refusal(fx.ws.resolve_write("out.txt"), "PATH_ESCAPE");
    assert!(msg.contains("leads through a link to outside"), "{msg}");
    assert!(
        !msg.contains(target.to_str().unwrap()),
        "never where: {msg}"
    );
    // A dangling link through a relative target that climbs out is refused too.
    symlink("../../elsewhere/x", fx.ws.root().join("climb")).unwrap();
    refusal(fx.ws.resolve_write("climb"), "PATH_ESCAPE");
}

#[cfg(unix)]
#[test]
fn symlinks_that_stay_inside_are_followed() {
    use std::os::unix::fs::symlink;
    let fx = fixture();
    fs::create_dir_all(fx.ws.root().join("real")).unwrap();
    fs::write(fx.ws.root().join("real/a.txt"), "a").unwrap();
    symlink(fx.ws.root().join("real"), fx.ws.root().join("alias")).unwrap();
    assert_eq!(
        fx.ws.resolve_read("alias/a.txt").unwrap(),
        fx.ws.root().join("real/a.txt")
    );
    assert_eq!(
        fx.ws.resolve_write("alias/b.txt").unwrap(),
        fx.ws.root().join("real/b.txt")
    );
}

#[cfg(unix)]
#[test]
fn symlink_to_a_protected_place_is_protected() {
    use std::os::unix::fs::symlink;
    let fx = fixture();
    fs::create_dir_all(fx.ws.root().join(".git")).unwrap();
    symlink(fx.ws.root().join(".git"), fx.ws.root().join("gitdir")).unwrap();
    refusal(fx.ws.resolve_write("gitdir/config"), "PATH_PROTECTED");
}

#[test]
fn references_are_readable_but_not_writable() {
    let fx = fixture();
    let spec = fx.reference.join("spec.md");
    assert_eq!(fx.ws.resolve_read(spec.to_str().unwrap()).unwrap(), spec);
    let msg = refusal(fx.ws.resolve_write(spec.to_str().unwrap()), "PATH_ESCAPE");
    assert!(msg.contains("spec.md"), "{msg}");
    // Relative paths never reach a reference: they resolve against the root.
    assert_eq!(
        fx.ws.resolve_read("spec.md").unwrap(),
        fx.ws.root().join("spec.md")
    );
}

#[cfg(unix)]
#[test]
fn a_link_into_a_reference_reads_but_does_not_write() {
    use std::os::unix::fs::symlink;
    let fx = fixture();
    symlink(&fx.reference, fx.ws.root().join("ref")).unwrap();
    assert_eq!(
        fx.ws.resolve_read("ref/spec.md").unwrap(),
        fx.reference.join("spec.md")
    );
    refusal(fx.ws.resolve_write("ref/spec.md"), "PATH_ESCAPE");
}

#[test]
fn protected_writes_are_refused_and_reads_are_not() {
    let fx = fixture();
    for path in [
        ".git/config",
        "lib/.git/HEAD",
        ".env",
        "config/.env.production",
        "db_password.txt",
        "AWS_Credentials.json",
        "keys/secret.key",
        "verification/test_x.py",
    ] {
        let msg = refusal(fx.ws.resolve_write(path), "PATH_PROTECTED");
        assert!(msg.contains(path), "{msg}");
    }
    let abs = fx.ws.root().join(".git/config");
    refusal(fx.ws.resolve_write(abs.to_str().unwrap()), "PATH_PROTECTED");
    for path in [".env", "verification/test_x.py", "db_password.txt"] {
        assert!(fx.ws.resolve_read(path).is_ok(), "{path}");
    }
    for path in [
        "src/environment.py",
        "docs/verification.md",
        "gitignore.txt",
    ] {
        assert!(fx.ws.resolve_write(path).is_ok(), "{path}");
    }
}

#[test]
fn display_path_is_relative_inside_and_absolute_outside() {
    let fx = fixture();
    assert_eq!(fx.ws.display_path(&fx.ws.root().join("a/b.txt")), "a/b.txt");
    assert_eq!(fx.ws.display_path(fx.ws.root()), ".");
    let spec = fx.reference.join("spec.md");
    assert_eq!(fx.ws.display_path(&spec), spec.display().to_string());
}

#[cfg(unix)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Path components an agent might combine, including links that leave the workspace.
    fn component() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a",
            "b",
            ".",
            "..",
            "out",
            "inner",
            "dangling",
            ".git",
            "verification",
            "x.txt",
        ])
    }

    /// Where `path` really lands, computed independently: the longest existing prefix
    /// canonicalized plus the rest; `None` when a prefix is a dangling link (in this fixture
    /// the only dangling link points outside).
    fn true_location(path: &Path) -> Option<PathBuf> {
        for prefix in path.ancestors() {
            if fs::symlink_metadata(prefix).is_ok() {
                let rest = path.strip_prefix(prefix).unwrap();
                return fs::canonicalize(prefix).ok().map(|real| real.join(rest));
            }
        }
        None
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever an agent writes, a path the workspace lets through lies inside the root
        /// (reads: or the reference), and a path with `..` is never let through.
        #[test]
        fn resolved_paths_never_leave_the_allowed_roots(parts in prop::collection::vec(component(), 1..6)) {
            use std::os::unix::fs::symlink;
            let fx = fixture();
            let root = fx.ws.root().to_path_buf();
            fs::create_dir_all(root.join("a/b")).unwrap();
            let _ = symlink(&fx.outside, root.join("out"));
            let _ = symlink(root.join("a"), root.join("inner"));
            let _ = symlink(fx.outside.join("nothing/here"), root.join("a/dangling"));
            let path = parts.join("/");
            let has_parent = parts.contains(&"..");
            if let Ok(resolved) = fx.ws.resolve_write(&path) {
                prop_assert!(!has_parent, "{path}");
                let real = true_location(&resolved).unwrap_or_default();
                prop_assert!(real.starts_with(&root), "{path} -> {}", real.display());
                let rel = real.strip_prefix(&root).unwrap();
                prop_assert!(!rel.components().any(|c| c.as_os_str() == ".git"), "{path}");
                prop_assert!(!rel.starts_with("verification"), "{path}");
            }
            if let Ok(resolved) = fx.ws.resolve_read(&path) {
                prop_assert!(!has_parent, "{path}");
                let real = true_location(&resolved).unwrap_or_default();
                prop_assert!(
                    real.starts_with(&root) || real.starts_with(&fx.reference),
                    "{path} -> {}",
                    real.display()
                );
            }
        }
    }
}

#[test]
fn an_empty_reference_does_not_open_every_path() {
    let base = TempDir::new().unwrap();
    let ws = Confinement::workspace(&base.path().join("ws"), &[PathBuf::from("")]).unwrap();
    let msg = refusal(ws.resolve_read("/etc/passwd"), "PATH_ESCAPE");
    assert!(msg.contains("/etc/passwd"), "{msg}");
    assert!(ws.references().is_empty(), "{:?}", ws.references());
    let outside = base.path().join("outside.txt");
    fs::write(&outside, "x").unwrap();
    assert_eq!(
        code(ws.resolve_read(outside.to_str().unwrap())),
        "PATH_ESCAPE"
    );
    // The workspace itself stays readable.
    fs::write(ws.root().join("a.txt"), "a").unwrap();
    assert_eq!(ws.resolve_read("a.txt").unwrap(), ws.root().join("a.txt"));
}

#[cfg(unix)]
#[test]
fn resolve_delete_names_the_link_itself() {
    let fx = fixture();
    let root = fx.ws.root().to_path_buf();
    fs::write(root.join("target.txt"), "t").unwrap();
    std::os::unix::fs::symlink(root.join("target.txt"), root.join("link.txt")).unwrap();
    assert_eq!(
        fx.ws.resolve_delete("link.txt").unwrap(),
        root.join("link.txt")
    );
    assert_eq!(
        fx.ws.resolve_write("link.txt").unwrap(),
        root.join("target.txt")
    );
    // A link pointing outside may be deleted: only the link goes.
    std::os::unix::fs::symlink(fx.outside.join("secret_plans.txt"), root.join("out")).unwrap();
    assert_eq!(fx.ws.resolve_delete("out").unwrap(), root.join("out"));
    // Plain files resolve as for writing; protected names stay protected.
    assert_eq!(
        fx.ws.resolve_delete("plain.txt").unwrap(),
        root.join("plain.txt")
    );
    std::os::unix::fs::symlink(root.join("target.txt"), root.join(".env")).unwrap();
    assert_eq!(code(fx.ws.resolve_delete(".env")), "PATH_PROTECTED");
    assert_eq!(code(fx.ws.resolve_delete("../x")), "PATH_ESCAPE");
}

/// A project with `model/`, `config/`, `workspace/`, a `.env` and a store folder.
fn project() -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    for folder in ["model/core/epics", "config", "workspace", ".orket"] {
        fs::create_dir_all(root.join(folder)).unwrap();
    }
    fs::write(root.join(".env"), "API_KEY=secret").unwrap();
    fs::write(root.join(".orket/orket.db"), "db").unwrap();
    fs::write(root.join("model/core/epics/a.json"), "{}").unwrap();
    (dir, root)
}

fn folder_refusal(result: Result<Resolved, FolderError>) -> Refusal {
    match result {
        Err(FolderError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn project_folders_keep_each_path_inside_its_own_folder() {
    use std::os::unix::fs::symlink;
    let (_dir, root) = project();
    let folders = ProjectFolders::new(&root, &["model", "config"], Rules::PROJECT).unwrap();
    let ok = folders
        .resolve("./model/core/epics/a.json", Access::Read)
        .unwrap();
    assert_eq!(ok.real, root.join("model/core/epics/a.json"));
    assert_eq!(ok.display, "model/core/epics/a.json");
    assert_eq!(
        folders.resolve("model", Access::Read).unwrap().real,
        root.join("model")
    );
    // New files resolve where they will be.
    assert_eq!(
        folders
            .resolve("model/core/rocks/r.json", Access::Write)
            .unwrap()
            .real,
        root.join("model/core/rocks/r.json")
    );
    // Syntax: absolute, `..`, dotfiles as written, a backslash, an empty path.
    for (path, code) in [
        ("/etc/passwd", "PATH_ESCAPE"),
        ("model/../.env", "PATH_ESCAPE"),
        ("model\\..\\.env", "PATH_ESCAPE"),
        (".env", "PATH_PROTECTED"),
        ("model/.git/config", "PATH_PROTECTED"),
        ("workspace/x.txt", "PATH_ESCAPE"),
        ("", "BAD_ARGS"),
    ] {
        let r = folder_refusal(folders.resolve(path, Access::Read));
        assert_eq!(r.code, code, "{path}: {r}");
        assert!(r.message.contains("refused"), "{path}: {r}");
    }
    // A top folder that does not exist is not found, not refused.
    fs::remove_dir(root.join("config")).unwrap();
    assert!(matches!(
        folders.resolve("config/x.json", Access::Write),
        Err(FolderError::NotFound(_))
    ));
    // Links: to a dotfile of the project, from model/ into workspace/, out of the project.
    symlink(root.join(".env"), root.join("model/env")).unwrap();
    symlink(root.join("workspace"), root.join("model/ws")).unwrap();
    symlink("/etc", root.join("model/etc")).unwrap();
    for (path, code) in [
        ("model/env", "PATH_ESCAPE"),
        ("model/ws/notes.md", "PATH_ESCAPE"),
        ("model/etc/passwd", "PATH_ESCAPE"),
    ] {
        let r = folder_refusal(folders.resolve(path, Access::Read));
        assert_eq!(r.code, code, "{path}: {r}");
        assert!(r.message.contains(&format!("'{path}'")), "{r}");
        assert!(r.message.contains("the project's model/"), "{r}");
    }
}

#[cfg(unix)]
#[test]
fn no_linked_files_refuses_writing_through_a_link_that_stays_inside() {
    let (_dir, root) = project();
    std::os::unix::fs::symlink(
        root.join("model/core/epics/a.json"),
        root.join("model/core/epics/b.json"),
    )
    .unwrap();
    let strict = Rules {
        no_linked_files: true,
        ..Rules::PROJECT
    };
    let folders = ProjectFolders::new(&root, &["model"], strict).unwrap();
    let r = folder_refusal(folders.resolve("model/core/epics/b.json", Access::Write));
    assert_eq!(r.code, "PATH_PROTECTED", "{r}");
    assert!(r.message.contains("is a link"), "{r}");
    // Reading through it is fine, and so is writing without the rule.
    assert!(folders
        .resolve("model/core/epics/b.json", Access::Read)
        .is_ok());
    let lenient = ProjectFolders::new(&root, &["model"], Rules::PROJECT).unwrap();
    assert!(lenient
        .resolve("model/core/epics/b.json", Access::Write)
        .is_ok());
}

#[cfg(unix)]
#[test]
fn a_file_named_in_the_project_never_leads_to_a_dotfile() {
    // The replay-file rule: a link to `.env` or into `.orket/` is refused like the dotfile
    // itself, though it stays inside the project.
    let (_dir, root) = project();
    fs::create_dir_all(root.join("replay")).unwrap();
    fs::write(root.join("replay/ok.jsonl"), "{}").unwrap();
    std::os::unix::fs::symlink(root.join(".env"), root.join("replay/env.jsonl")).unwrap();
    std::os::unix::fs::symlink(root.join(".orket"), root.join("replay/store")).unwrap();
    let project = Confinement::folder(&root, Rules::PROJECT, "the project").unwrap();
    assert_eq!(
        project.resolve_read("replay/ok.jsonl").unwrap(),
        root.join("replay/ok.jsonl")
    );
    for path in [
        "replay/env.jsonl",
        "replay/store/orket.db",
        ".env",
        "./.env",
    ] {
        let r = project.resolve_read(path).unwrap_err();
        assert_eq!(r.code, "PATH_PROTECTED", "{path}: {r}");
        assert!(r.message.contains("dot"), "{path}: {r}");
    }
    assert_eq!(code(project.resolve_read("/etc/passwd")), "PATH_ESCAPE");
}
