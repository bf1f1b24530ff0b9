//! The file tools: results a user sees, atomic per-path writes, confinement without the gate.

use orket_core::tools::Tool;
use orket_core::ToolCall;
use orket_governance::confine::Confinement;
use orket_governance::file_tools::FileTools;
use serde_json::{json, Value};
use std::fs;
use std::sync::Arc;
use tempfile::TempDir;

/// The file tools of a fresh workspace, their results in wire form.
struct Tools(FileTools);

impl Tools {
    fn workspace(&self) -> &Confinement {
        self.0.workspace()
    }
    async fn read_file(&self, path: &str) -> Value {
        self.0.read_file(path).await.to_value()
    }
    async fn write_file(&self, path: &str, content: &str) -> Value {
        self.0.write_file(path, content).await.to_value()
    }
    async fn list_directory(&self, path: &str) -> Value {
        self.0.list_directory(path).await.to_value()
    }
    async fn delete_file(&self, path: &str) -> Value {
        self.0.delete_file(path).await.to_value()
    }
    /// A call by name, as the executor dispatches it.
    async fn run(&self, call: &ToolCall) -> Option<Value> {
        let tool = Tool::from_name(&call.name)?;
        Some(self.0.run(tool, call).await?.to_value())
    }
}

fn tools() -> (TempDir, Tools) {
    let dir = TempDir::new().unwrap();
    let ws = Confinement::workspace(&dir.path().join("ws"), &[]).unwrap();
    (dir, Tools(FileTools::new(Arc::new(ws))))
}

#[track_caller]
fn error_of(result: &Value) -> String {
    assert_eq!(result["ok"], json!(false), "expected a failure: {result}");
    result["error"].as_str().expect("an error text").to_string()
}

#[tokio::test]
async fn write_then_read_round_trip_creates_parents() {
    let (_dir, t) = tools();
    let w = t
        .write_file("src/utils/deep/text.py", "print('héllo')\n")
        .await;
    assert_eq!(
        w,
        json!({"ok": true, "path": "src/utils/deep/text.py", "bytes": 16})
    );
    let root = t.workspace().root().to_path_buf();
    assert_eq!(
        fs::read_to_string(root.join("src/utils/deep/text.py")).unwrap(),
        "print('héllo')\n"
    );
    let r = t.read_file("src/utils/deep/text.py").await;
    assert_eq!(
        r,
        json!({"ok": true, "path": "src/utils/deep/text.py", "content": "print('héllo')\n"})
    );
    // Overwrite replaces the whole content.
    t.write_file("src/utils/deep/text.py", "x").await;
    assert_eq!(t.read_file("src/utils/deep/text.py").await["content"], "x");
    // No temporary files are left behind.
    let names: Vec<_> = fs::read_dir(root.join("src/utils/deep"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["text.py"]);
}

#[tokio::test]
async fn list_directory_is_sorted_with_folders_marked() {
    let (_dir, t) = tools();
    for path in [
        "zeta.txt",
        "alpha.txt",
        "beta/one.txt",
        "Main.py",
        "gamma/x/y.txt",
    ] {
        assert_eq!(t.write_file(path, "x").await["ok"], json!(true));
    }
    let l = t.list_directory(".").await;
    assert_eq!(
        l,
        json!({"ok": true, "path": ".", "entries": ["Main.py", "alpha.txt", "beta/", "gamma/", "zeta.txt"]})
    );
    let l = t.list_directory("gamma").await;
    assert_eq!(l["entries"], json!(["x/"]));
    let e = error_of(&t.list_directory("alpha.txt").await);
    assert!(e.contains("alpha.txt"), "{e}");
    let e = error_of(&t.list_directory("missing").await);
    assert!(e.contains("missing"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_to_one_path_leave_one_complete_content() {
    let (_dir, t) = tools();
    let t = Arc::new(t);
    const SIZE: usize = 256 * 1024;
    assert_eq!(
        t.write_file("shared/out.txt", &"-".repeat(SIZE)).await["ok"],
        json!(true)
    );
    let contents: Vec<String> = (0..20u8)
        .map(|i| char::from(b'a' + i).to_string().repeat(SIZE))
        .collect();
    let writers: Vec<_> = contents
        .iter()
        .cloned()
        .map(|content| {
            let t = Arc::clone(&t);
            tokio::spawn(async move { t.write_file("shared/out.txt", &content).await })
        })
        .collect();
    // A reader running alongside never sees a partial or mixed file.
    let reader = {
        let t = Arc::clone(&t);
        tokio::spawn(async move {
            let mut seen = 0;
            for _ in 0..50 {
                let r = t.read_file("shared/out.txt").await;
                let content = r["content"].as_str().expect("readable").to_string();
                assert_eq!(content.len(), SIZE, "partial read");
                let first = content.chars().next().unwrap();
                assert!(content.chars().all(|c| c == first), "mixed content");
                seen += 1;
            }
            seen
        })
    };
    for w in writers {
        let r = w.await.unwrap();
        assert_eq!(r["ok"], json!(true), "{r}");
        assert_eq!(r["bytes"], json!(SIZE));
    }
    assert_eq!(reader.await.unwrap(), 50);
    let root = t.workspace().root().to_path_buf();
    let final_content = fs::read_to_string(root.join("shared/out.txt")).unwrap();
    assert!(
        contents.contains(&final_content),
        "the file holds exactly one writer's content"
    );
    let names: Vec<_> = fs::read_dir(root.join("shared")).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary files left");
}

#[tokio::test]
async fn the_tools_refuse_paths_outside_on_their_own() {
    let (dir, t) = tools();
    let e = error_of(&t.write_file("../escape.txt", "x").await);
    assert!(e.starts_with("PATH_ESCAPE: "), "{e}");
    assert!(!dir.path().join("escape.txt").exists());
    let outside = dir.path().join("outside.txt");
    let e = error_of(&t.write_file(outside.to_str().unwrap(), "x").await);
    assert!(e.starts_with("PATH_ESCAPE: "), "{e}");
    assert!(!outside.exists());
    fs::write(&outside, "keep").unwrap();
    error_of(&t.read_file(outside.to_str().unwrap()).await);
    error_of(&t.delete_file(outside.to_str().unwrap()).await);
    assert!(outside.exists());
    error_of(&t.list_directory("..").await);
    let e = error_of(&t.write_file(".git/config", "x").await);
    assert!(e.starts_with("PATH_PROTECTED: "), "{e}");
    assert!(!t.workspace().root().join(".git").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn writes_through_an_escaping_symlink_are_refused() {
    let (dir, t) = tools();
    let target = dir.path().join("victim.txt");
    fs::write(&target, "original").unwrap();
    std::os::unix::fs::symlink(&target, t.workspace().root().join("link.txt")).unwrap();
    let e = error_of(&t.write_file("link.txt", "pwned").await);
    assert!(e.starts_with("PATH_ESCAPE: "), "{e}");
    assert_eq!(fs::read_to_string(&target).unwrap(), "original");
}

#[tokio::test]
async fn read_refuses_binary_large_and_missing_files() {
    let (_dir, t) = tools();
    let root = t.workspace().root().to_path_buf();
    fs::write(root.join("image.bin"), [0xff, 0xfe, 0x00, 0x81]).unwrap();
    let e = error_of(&t.read_file("image.bin").await);
    assert!(e.contains("UTF-8") && e.contains("image.bin"), "{e}");
    fs::write(root.join("big.txt"), "a".repeat(1_048_577)).unwrap();
    let e = error_of(&t.read_file("big.txt").await);
    assert!(e.contains("1048577"), "{e}");
    error_of(&t.read_file("nope.txt").await);
    fs::create_dir(root.join("folder")).unwrap();
    let e = error_of(&t.read_file("folder").await);
    assert!(e.contains("folder"), "{e}");
    let e = error_of(&t.write_file("folder", "x").await);
    assert!(e.contains("folder"), "{e}");
    error_of(&t.write_file(".", "x").await);
    let e = error_of(&t.write_file("big2.txt", &"a".repeat(1_048_577)).await);
    assert!(e.contains("1048577"), "{e}");
    assert!(!root.join("big2.txt").exists());
}

#[tokio::test]
async fn delete_removes_files_but_not_folders() {
    let (_dir, t) = tools();
    let root = t.workspace().root().to_path_buf();
    t.write_file("docs/a.md", "a").await;
    assert_eq!(
        t.delete_file("docs/a.md").await,
        json!({"ok": true, "path": "docs/a.md"})
    );
    assert!(!root.join("docs/a.md").exists());
    let e = error_of(&t.delete_file("docs").await);
    assert!(e.contains("folder"), "{e}");
    assert!(root.join("docs").is_dir());
    error_of(&t.delete_file("docs/a.md").await);
    fs::create_dir_all(root.join("verification")).unwrap();
    fs::write(root.join("verification/test_x.py"), "fixture").unwrap();
    let e = error_of(&t.delete_file("verification/test_x.py").await);
    assert!(e.starts_with("PATH_PROTECTED: "), "{e}");
    assert!(root.join("verification/test_x.py").exists());
}

#[tokio::test]
async fn run_dispatches_file_tool_calls_only() {
    let (_dir, t) = tools();
    let w = t
        .run(&ToolCall::new(
            "write_file",
            json!({"path": "a.txt", "content": "hi"}),
        ))
        .await
        .unwrap();
    assert_eq!(w["ok"], json!(true));
    let l = t
        .run(&ToolCall::new("list_directory", json!({})))
        .await
        .unwrap();
    assert_eq!(l["entries"], json!(["a.txt"]));
    let e = t
        .run(&ToolCall::new("write_file", json!({"path": "b.txt"})))
        .await
        .unwrap();
    assert!(error_of(&e).contains("content"));
    assert!(t
        .run(&ToolCall::new("add_issue_comment", json!({"comment": "x"})))
        .await
        .is_none());
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_planted_at_a_temporary_name_cannot_redirect_a_write() {
    let (dir, t) = tools();
    let root = t.workspace().root().to_path_buf();
    let victim = dir.path().join("victim.txt");
    fs::write(&victim, "original").unwrap();
    // Links at every name the old scheme (`.<name>.orket-tmp-<pid>-<n>`) could pick.
    for n in 0..2000 {
        let name = format!(".out.txt.orket-tmp-{}-{n}", std::process::id());
        std::os::unix::fs::symlink(&victim, root.join(name)).unwrap();
    }
    let w = t.write_file("out.txt", "new content").await;
    assert_eq!(w, json!({"ok": true, "path": "out.txt", "bytes": 11}));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "original");
    let out = root.join("out.txt");
    assert!(!fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_to_string(&out).unwrap(), "new content");
}

#[cfg(unix)]
#[tokio::test]
async fn overwriting_keeps_the_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, t) = tools();
    let script = t.workspace().root().join("run.sh");
    assert_eq!(
        t.write_file("run.sh", "#!/bin/sh\n").await["ok"],
        json!(true)
    );
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let w = t.write_file("run.sh", "#!/bin/sh\necho hi\n").await;
    assert_eq!(w["ok"], json!(true), "{w}");
    let mode = fs::metadata(&script).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "the script is still executable");
    assert_eq!(fs::read_to_string(&script).unwrap(), "#!/bin/sh\necho hi\n");
}

#[tokio::test]
async fn a_long_file_name_is_written() {
    let (_dir, t) = tools();
    let name = format!("{}.txt", "n".repeat(236));
    assert_eq!(name.len(), 240);
    let w = t.write_file(&name, "long").await;
    assert_eq!(w, json!({"ok": true, "path": name, "bytes": 4}));
    assert_eq!(t.read_file(&name).await["content"], json!("long"));
    let names: Vec<_> = fs::read_dir(t.workspace().root()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary files left");
}

#[cfg(unix)]
#[tokio::test]
async fn deleting_a_symlink_removes_the_link_not_its_target() {
    let (dir, t) = tools();
    let root = t.workspace().root().to_path_buf();
    fs::write(root.join("target.txt"), "keep me").unwrap();
    std::os::unix::fs::symlink(root.join("target.txt"), root.join("link.txt")).unwrap();
    assert_eq!(
        t.delete_file("link.txt").await,
        json!({"ok": true, "path": "link.txt"})
    );
    assert!(fs::symlink_metadata(root.join("link.txt")).is_err());
    assert_eq!(
        fs::read_to_string(root.join("target.txt")).unwrap(),
        "keep me"
    );
    // A link pointing outside is removed too, and what it points to stays.
    let outside = dir.path().join("outside.txt");
    fs::write(&outside, "outside").unwrap();
    fs::create_dir(root.join("sub")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("sub/out-link")).unwrap();
    assert_eq!(
        t.delete_file("sub/out-link").await,
        json!({"ok": true, "path": "sub/out-link"})
    );
    assert!(fs::symlink_metadata(root.join("sub/out-link")).is_err());
    assert_eq!(fs::read_to_string(&outside).unwrap(), "outside");
    // A link inside a linked folder that leads outside is still refused.
    let away = dir.path().join("away");
    fs::create_dir(&away).unwrap();
    std::os::unix::fs::symlink(&outside, away.join("l")).unwrap();
    std::os::unix::fs::symlink(&away, root.join("away")).unwrap();
    let e = error_of(&t.delete_file("away/l").await);
    assert!(e.starts_with("PATH_ESCAPE: "), "{e}");
    assert!(fs::symlink_metadata(away.join("l")).is_ok());
}

#[cfg(unix)]
#[tokio::test]
async fn reading_a_fifo_is_refused_without_hanging() {
    let (_dir, t) = tools();
    let fifo = t.workspace().root().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), t.read_file("pipe")).await;
    let Ok(result) = read else {
        // Unblock the hung reader so the test fails instead of hanging.
        let _ = fs::OpenOptions::new().write(true).open(&fifo);
        panic!("read_file on a FIFO hung");
    };
    let e = error_of(&result);
    assert!(
        e.contains("'pipe'") && e.contains("not a regular file"),
        "{e}"
    );
}

#[tokio::test]
async fn writing_a_path_ending_in_a_slash_is_refused() {
    let (_dir, t) = tools();
    for path in ["notes/", "src/app/"] {
        let e = error_of(&t.write_file(path, "x").await);
        assert!(e.contains(path) && e.contains("folder"), "{e}");
    }
    let names: Vec<_> = fs::read_dir(t.workspace().root()).unwrap().collect();
    assert!(names.is_empty(), "nothing was created");
}

#[tokio::test]
async fn a_long_listing_is_truncated_with_the_total() {
    let (_dir, t) = tools();
    let root = t.workspace().root().to_path_buf();
    fs::create_dir(root.join("many")).unwrap();
    for i in 0..1005 {
        fs::write(root.join(format!("many/f{i:04}.txt")), "").unwrap();
    }
    let l = t.list_directory("many").await;
    assert_eq!(l["ok"], json!(true));
    assert_eq!(l["truncated"], json!(true));
    assert_eq!(l["total"], json!(1005));
    let entries = l["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1000);
    assert_eq!(entries[0], json!("f0000.txt"));
    assert_eq!(entries[999], json!("f0999.txt"));
    // A short listing carries no truncation fields.
    for i in 1000..1005 {
        fs::remove_file(root.join(format!("many/f{i:04}.txt"))).unwrap();
    }
    let l = t.list_directory("many").await;
    assert!(
        l.get("truncated").is_none() && l.get("total").is_none(),
        "{l}"
    );
    assert_eq!(l["entries"].as_array().unwrap().len(), 1000);
}
