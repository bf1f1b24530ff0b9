//! Asset loading: layered lookup, listing, aliases, organization merge, precise errors.

use orket_core::assets::{AssetError, AssetTree, Category, FileContent, ModelProfile, SeedPolicy};
use orket_core::{Status, WaitReason};
use std::fs;
use std::path::Path;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn team_json(name: &str) -> String {
    format!(r#"{{"name": "{name}", "seats": {{"dev": {{"name": "Dev", "roles": ["coder"]}}}}}}"#)
}

#[test]
fn layered_lookup_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "config/teams/crew.json", &team_json("from-config"));
    write(root, "model/eng/teams/crew.json", &team_json("from-eng"));
    write(root, "model/core/teams/crew.json", &team_json("from-core"));
    let tree = AssetTree::new(root);

    assert_eq!(tree.load_team("crew", "eng").unwrap().name, "from-config");
    fs::remove_file(root.join("config/teams/crew.json")).unwrap();
    assert_eq!(tree.load_team("crew", "eng").unwrap().name, "from-eng");
    // Another department falls back to core, never to a sibling department.
    assert_eq!(tree.load_team("crew", "sales").unwrap().name, "from-core");
    assert_eq!(tree.load_team("crew", "core").unwrap().name, "from-core");
    fs::remove_file(root.join("model/core/teams/crew.json")).unwrap();
    match tree.load_team("crew", "sales").unwrap_err() {
        AssetError::NotFound { searched, .. } => assert_eq!(
            searched,
            [
                "config/teams/crew.json",
                "model/sales/teams/crew.json",
                "model/core/teams/crew.json"
            ]
        ),
        other => panic!("{other}"),
    }
    assert_eq!(
        tree.load_team("crew", "sales").unwrap_err().to_string(),
        "team \"crew\" not found (looked in config/teams/crew.json, model/sales/teams/crew.json, model/core/teams/crew.json)"
    );
}

#[test]
fn listing_is_the_sorted_union_of_the_layers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "config/teams/zeta.json", &team_json("z"));
    write(root, "model/eng/teams/alpha.json", &team_json("a"));
    write(root, "model/eng/teams/zeta.json", &team_json("z2"));
    write(root, "model/core/teams/mid.json", &team_json("m"));
    write(root, "model/sales/teams/hidden.json", &team_json("h"));
    write(root, "model/core/teams/notes.txt", "not an asset");
    let tree = AssetTree::new(root);
    assert_eq!(tree.list(Category::Teams, "eng"), ["alpha", "mid", "zeta"]);
    assert_eq!(tree.list(Category::Teams, "core"), ["mid", "zeta"]);
    assert_eq!(tree.departments(), ["core", "eng", "sales"]);
}

#[test]
fn names_that_are_not_plain_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model/core/teams/crew.json", &team_json("crew"));
    let tree = AssetTree::new(dir.path());
    for bad in ["../core/teams/crew", "a/b", ".hidden", "", "/etc/passwd"] {
        assert!(
            matches!(
                tree.load_team(bad, "core"),
                Err(AssetError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        tree.load_team("crew", "../model"),
        Err(AssetError::InvalidName { .. })
    ));
}

#[test]
fn aliases_summary_and_stories_cards() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "model/core/epics/a.json",
        r#"{"team": "t", "environment": "e", "stories": [{"id": "S-1", "summary": "From summary", "seat": "Dev Seat"}]}"#,
    );
    write(
        root,
        "model/core/epics/b.json",
        r#"{"team": "t", "environment": "e", "cards": [{"id": "C-1", "name": "From name", "summary": "ignored", "seat": "dev"}]}"#,
    );
    let tree = AssetTree::new(root);
    let a = tree.load_epic("a", "core").unwrap();
    assert_eq!(a.issues_key, "stories");
    assert_eq!(a.issues[0].card.name, "From summary");
    assert_eq!(a.issues[0].card.status, Status::Ready);
    assert_eq!(a.issues[0].card.priority, 2.0);
    assert_eq!(a.issues[0].max_retries, 3);
    let b = tree.load_epic("b", "core").unwrap();
    assert_eq!(b.issues_key, "cards");
    assert_eq!(b.issues[0].card.name, "From name");
}

#[test]
fn every_issue_field_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "model/core/epics/full.json",
        r#"{
          "name": "Full", "team": "t", "environment": "e",
          "architecture_governance": {"idesign": true, "pattern": "iDesign"},
          "params": {"model_overrides": {"coder": "qwen2.5-coder:7b"}},
          "references": ["docs"],
          "issues": [
            {"id": "F-0", "summary": "First", "seat": "dev"},
            {"id": "F-1", "name": "Second", "type": "bug", "status": "In Progress",
             "description": "desc", "priority": "Low", "wait_reason": "input",
             "note": "a note", "parent_id": "P", "owner_department": "eng",
             "labels": ["x"], "params": {"k": 1}, "references": ["ref"],
             "seat": "dev", "assignee": "Dev", "sprint": "Q1 S6",
             "requirements": ["one", "two"], "depends_on": "F-0",
             "retry_count": 1, "max_retries": 5,
             "verification": {"fixture_path": "verification/test_f1.py",
               "scenarios": [{"id": "s1", "description": "adds", "input_data": [1, 2], "expected_output": 3}]},
             "metrics": {"lines": 10}}
          ]}"#,
    );
    let epic = AssetTree::new(root).load_epic("full", "core").unwrap();
    assert!(epic.idesign);
    assert_eq!(epic.pattern.as_deref(), Some("iDesign"));
    assert_eq!(epic.model_override("coder"), Some("qwen2.5-coder:7b"));
    assert_eq!(epic.card.references, ["docs"]);
    let i = &epic.issues[1];
    assert_eq!(i.card.card_type, "bug");
    assert_eq!(i.card.status, Status::InProgress);
    assert_eq!(i.card.priority, 1.0);
    assert_eq!(i.card.wait_reason, Some(WaitReason::Input));
    assert_eq!(i.card.note.as_deref(), Some("a note"));
    assert_eq!(i.card.parent_id.as_deref(), Some("P"));
    assert_eq!(i.card.owner_department, "eng");
    assert_eq!(i.card.labels, ["x"]);
    assert_eq!(i.card.params["k"], 1);
    assert_eq!(i.card.references, ["ref"]);
    assert_eq!(i.assignee.as_deref(), Some("Dev"));
    assert_eq!(i.sprint.as_deref(), Some("Q1 S6"));
    assert_eq!(i.requirements.as_deref(), Some("one\ntwo"));
    assert_eq!(i.depends_on, ["F-0"]);
    assert_eq!((i.retry_count, i.max_retries), (1, 5));
    let v = i.verification.as_ref().unwrap();
    assert_eq!(v.fixture_path.as_deref(), Some("verification/test_f1.py"));
    assert_eq!(v.scenarios[0].expected_output, 3);
    assert_eq!(i.metrics["lines"], 10);
}

#[test]
fn issues_without_ids_get_stable_derived_ids() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "model/core/epics/e.json",
        r#"{"team": "t", "environment": "e", "issues": [
            {"summary": "Same", "seat": "dev"}, {"summary": "Same", "seat": "dev"}, {"summary": "Other", "seat": "dev"}]}"#,
    );
    let tree = AssetTree::new(dir.path());
    let first: Vec<String> = tree
        .load_epic("e", "core")
        .unwrap()
        .issues
        .iter()
        .map(|i| i.card.id.clone())
        .collect();
    let again: Vec<String> = tree
        .load_epic("e", "core")
        .unwrap()
        .issues
        .iter()
        .map(|i| i.card.id.clone())
        .collect();
    assert_eq!(first, again);
    assert_eq!(first.len(), 3);
    assert!(first[0] != first[1] && first[1] != first[2]);
}

#[test]
fn load_errors_name_file_path_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "model/core/epics/login.json",
        r#"{"team": "t", "environment": "e", "issues": [
            {"id": "L-1", "summary": "a", "seat": "dev"},
            {"id": "L-2", "summary": "b", "seat": "dev"},
            {"id": "L-3", "summary": "c", "seat": "dev", "depends_on": ["L-9"], "max_retries": -1}]}"#,
    );
    let err = AssetTree::new(dir.path())
        .load_epic("login", "core")
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "model/core/epics/login.json: issues[2].depends_on[0]: unknown issue id \"L-9\""
        ),
        "{text}"
    );
    assert!(
        text.contains("model/core/epics/login.json: issues[2].max_retries: expected a non-negative whole number, found a number"),
        "{text}"
    );
}

#[test]
fn organization_merge_and_env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "config/org_info.json",
        r#"{"name": "Info Org", "vision": "V1", "ethos": "E"}"#,
    );
    write(
        root,
        "config/architecture.json",
        r#"{"architecture": {"idesign_threshold": 4}, "departments": ["core", "eng"], "process_rules": {"planner_node": "default"}}"#,
    );
    write(
        root,
        "config/organization.json",
        r#"{"name": "Ignored while the pair exists"}"#,
    );
    let tree = AssetTree::new(root);
    let (mut org, diags) = tree.organization_with_diagnostics();
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(org.name, "Info Org");
    assert_eq!(org.ethos, "E");
    assert_eq!(org.idesign_threshold, 4);
    assert_eq!(org.departments, ["core", "eng"]);
    assert_eq!(org.rule_str("planner_node"), Some("default"));
    assert_eq!(
        org.sources,
        ["config/org_info.json", "config/architecture.json"]
    );
    org.apply_env_overrides(|k| match k {
        "ORKET_ORG_NAME" => Some("Env Org".to_string()),
        "ORKET_ORG_VISION" => Some("Env vision".to_string()),
        _ => None,
    });
    assert_eq!(
        (org.name.as_str(), org.vision.as_str()),
        ("Env Org", "Env vision")
    );

    // Without the pair: config/organization.json, then model/organization.json.
    fs::remove_file(root.join("config/architecture.json")).unwrap();
    assert_eq!(
        tree.organization_with_diagnostics().0.name,
        "Ignored while the pair exists"
    );
    fs::remove_file(root.join("config/organization.json")).unwrap();
    write(root, "model/organization.json", r#"{"name": "Model Org"}"#);
    let org = tree.organization_with_diagnostics().0;
    assert_eq!(org.name, "Model Org");
    assert_eq!(org.idesign_threshold, 7);
}

#[test]
fn roles_come_from_files_then_team_inline_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "model/core/teams/t.json",
        r#"{"seats": {"Lead Dev": {"name": "Lead", "roles": ["coder", "scribe"]}},
            "roles": {"scribe": {"description": "writes notes", "tools": ["write_file"]},
                      "coder": {"description": "inline coder"}}}"#,
    );
    write(
        root,
        "model/core/roles/coder.json",
        r#"{"name": "coder", "description": "file coder"}"#,
    );
    let tree = AssetTree::new(root);
    let team = tree.load_team("t", "core").unwrap();
    assert_eq!(team.seat("lead dev").unwrap().name, "Lead");
    assert_eq!(team.seat("LEAD_DEV").unwrap().roles, ["coder", "scribe"]);
    assert_eq!(
        tree.load_role("coder", "core", Some(&team))
            .unwrap()
            .description,
        "file coder"
    );
    let scribe = tree.load_role("scribe", "core", Some(&team)).unwrap();
    assert_eq!(scribe.tools, ["write_file"]);
    assert_eq!(scribe.issue_types, ["issue", "story", "bug", "task"]);
    let err = tree
        .load_role("ghost", "core", Some(&team))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("the roles of team \"t\" (model/core/teams/t.json))"),
        "{err}"
    );
}

#[test]
fn corpus_valid_files_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/original_assets");
    let tree = AssetTree::new(&root);
    let org = tree.organization().unwrap();
    assert_eq!(org.name, "Orket Organizational Unit");
    assert_eq!(org.idesign_threshold, 7);
    let epic = tree.load_epic("auth_manager", "core").unwrap();
    assert_eq!(epic.issues.len(), 3);
    assert_eq!(epic.issues[0].card.priority, 3.0);
    let sanity = tree.load_epic("sanity_test", "core").unwrap();
    assert_eq!(sanity.issues[0].card.priority, 3.0);
    let rock = tree.load_rock("project_void", "creative").unwrap();
    assert_eq!(rock.epics[2].department, "engineering");
    assert_eq!(
        tree.load_environment("specialized", "core")
            .unwrap()
            .timeout,
        600
    );
    assert_eq!(
        tree.load_environment("standard", "core").unwrap().seed,
        Some(42)
    );
    assert!(tree.load_dialect("qwen", "core").is_ok());
    assert!(tree.load_team("creative_guild", "creative").is_ok());
}

#[test]
fn model_profiles_are_looked_up_by_model_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "model/core/models/smollm2-135m-instruct.json",
        r#"{"temperature": 0.0, "top_p": 0.95, "repeat_penalty": 1.3, "seed_policy": "per_call", "max_tokens": 384,
            "context_window": 4096, "steps": 6, "corrections": 2, "candidates": 3, "file_content": "block"}"#,
    );
    write(
        root,
        "model/eng/models/smollm2-135m-instruct.json",
        r#"{"name": "eng-small", "seed_policy": "fixed"}"#,
    );
    let tree = AssetTree::new(root);
    let profile = tree
        .load_model_profile("smollm2-135m-instruct", "core")
        .unwrap()
        .unwrap();
    assert_eq!(
        profile,
        ModelProfile {
            name: "smollm2-135m-instruct".into(),
            temperature: Some(0.0),
            top_p: Some(0.95),
            repeat_penalty: Some(1.3),
            seed_policy: Some(SeedPolicy::PerCall),
            max_tokens: Some(384),
            context_window: Some(4096),
            steps: Some(6),
            corrections: Some(2),
            candidates: Some(3),
            file_content: Some(FileContent::Block),
            file: "model/core/models/smollm2-135m-instruct.json".into(),
        }
    );
    // Recorded as JSON with each turn: the seed policy by its wire name, and back.
    let json = serde_json::to_value(&profile).unwrap();
    assert_eq!(json["seed_policy"], "per_call");
    assert_eq!(json["file_content"], "block");
    assert_eq!(
        serde_json::from_value::<ModelProfile>(json).unwrap(),
        profile
    );

    // The department's layer comes first; unset fields stay unset.
    let eng = tree
        .load_model_profile("smollm2-135m-instruct", "eng")
        .unwrap()
        .unwrap();
    assert_eq!(eng.name, "eng-small");
    assert_eq!(eng.seed_policy, Some(SeedPolicy::Fixed));
    assert_eq!(
        (eng.temperature, eng.max_tokens, eng.steps),
        (None, None, None)
    );

    // No file, or a name that cannot be a file name: no profile.
    assert_eq!(tree.load_model_profile("gemma3-270m", "core"), Ok(None));
    write(root, "model/core/models/qwen2.5-coder:7b.json", "{}");
    assert_eq!(
        tree.load_model_profile("qwen2.5-coder:7b", "core"),
        Ok(None)
    );
    assert_eq!(tree.load_model_profile("../models/x", "core"), Ok(None));
    assert_eq!(tree.load_model_profile("", "core"), Ok(None));
    assert!(matches!(
        tree.load_model_profile("gemma3-270m", "../x"),
        Err(AssetError::InvalidName { .. })
    ));
    assert_eq!(
        tree.list(Category::Models, "eng"),
        ["qwen2.5-coder:7b", "smollm2-135m-instruct"]
    );
}

#[test]
fn an_invalid_model_profile_names_every_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config/models/tiny.json",
        r#"{"temperature": 2.5, "top_p": 0, "repeat_penalty": 0.5, "seed_policy": "random", "max_tokens": 0,
            "context_window": 128, "steps": 21, "corrections": 11, "candidates": 0,
            "file_content": "yaml", "flavour": "mint"}"#,
    );
    let err = AssetTree::new(dir.path())
        .load_model_profile("tiny", "core")
        .unwrap_err();
    let AssetError::Invalid { diagnostics } = &err else {
        panic!("{err}");
    };
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        errors,
        [
            "config/models/tiny.json: temperature: expected a number from 0.0 to 2.0, found 2.5",
            "config/models/tiny.json: top_p: expected a number greater than 0 and at most 1, found 0",
            "config/models/tiny.json: repeat_penalty: expected a number from 1.0 to 2.0, found 0.5",
            "config/models/tiny.json: seed_policy: unknown seed policy \"random\" (expected \"fixed\" or \"per_call\")",
            "config/models/tiny.json: file_content: unknown file content form \"yaml\" (expected \"json\" or \"block\")",
            "config/models/tiny.json: max_tokens: expected a whole number of at least 1, found 0",
            "config/models/tiny.json: context_window: expected a whole number of at least 256, found 128",
            "config/models/tiny.json: steps: expected a whole number from 1 to 20, found 21",
            "config/models/tiny.json: corrections: expected a whole number from 0 to 10, found 11",
            "config/models/tiny.json: candidates: expected a whole number from 1 to 10, found 0",
        ]
    );
    // An unknown field is a warning, as in every asset.
    assert!(diagnostics
        .iter()
        .any(|d| !d.is_error() && d.path == "flavour" && d.message == "unknown field, ignored"));

    // Wrong types and numbers too large for their field.
    write(
        dir.path(),
        "config/models/tiny.json",
        r#"{"name": 7, "temperature": "hot", "max_tokens": 4294967296, "steps": 2.5, "corrections": -1}"#,
    );
    let text = AssetTree::new(dir.path())
        .load_model_profile("tiny", "core")
        .unwrap_err()
        .to_string();
    for expected in [
        "config/models/tiny.json: name: expected a string, found a number",
        "config/models/tiny.json: temperature: expected a number, found a string",
        "config/models/tiny.json: max_tokens: expected a whole number of at least 1, found 4294967296",
        "config/models/tiny.json: steps: expected a non-negative whole number, found a number",
        "config/models/tiny.json: corrections: expected a non-negative whole number, found a number",
    ] {
        assert!(text.contains(expected), "missing {expected}\n{text}");
    }
}

#[test]
fn process_rules_limits_are_checked_and_typed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "config/organization.json",
        r#"{"process_rules": {"max_steps": 6, "max_corrections": 0, "candidates": 3}}"#,
    );
    let tree = AssetTree::new(root);
    let org = tree.organization().unwrap();
    assert_eq!(
        (org.max_steps(), org.max_corrections(), org.candidates()),
        (Some(6), Some(0), Some(3))
    );
    write(root, "config/organization.json", r#"{"process_rules": {}}"#);
    let org = tree.organization().unwrap();
    assert_eq!(
        (org.max_steps(), org.max_corrections(), org.candidates()),
        (None, None, None)
    );

    write(
        root,
        "config/organization.json",
        r#"{"process_rules": {"max_steps": 0, "max_corrections": 11, "candidates": "three"}}"#,
    );
    let (org, diags) = tree.organization_with_diagnostics();
    let errors: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        errors,
        [
            "config/organization.json: process_rules.max_steps: expected a whole number from 1 to 20, found 0",
            "config/organization.json: process_rules.max_corrections: expected a whole number from 0 to 10, found 11",
            "config/organization.json: process_rules.candidates: expected a non-negative whole number, found a string",
        ]
    );
    // Invalid values are never handed out.
    assert_eq!(
        (org.max_steps(), org.max_corrections(), org.candidates()),
        (None, None, None)
    );
    assert!(tree.organization().is_err());
}

#[test]
fn model_clients_are_read_and_every_bad_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "model/core/environments/mixed.json",
        r#"{"model": "m", "model_client": {"provider": "ollama", "base_url": "http://127.0.0.1:11434"},
            "seat_model_clients": {"Integrity Guard": {"provider": "openai", "model": "big",
               "base_url": "http://127.0.0.1:8081/v1", "api_key_env": "ORKET_KEY_GUARD"}}}"#,
    );
    let tree = AssetTree::new(dir.path());
    let env = tree.load_environment("mixed", "core").unwrap();
    let guard = env.seat_model_clients.get("integrity_guard").unwrap();
    assert_eq!(guard.provider, "openai");
    assert_eq!(guard.model.as_deref(), Some("big"));
    assert_eq!(guard.api_key_env.as_deref(), Some("ORKET_KEY_GUARD"));
    assert_eq!(env.model_client.as_ref().unwrap().provider, "ollama");

    write(
        dir.path(),
        "model/core/environments/bad.json",
        r#"{"model": "m", "model_client": {"provider": "gpt", "base_url": "ftp://x"},
            "seat_model_clients": {"guard": {"provider": "embedded", "base_url": "http://x",
               "api_key_env": "sk-1234"}, "dev": {"model": "x"},
               "ops": {"provider": "openai", "base_url": "http://me:secret@host/v1",
               "api_key_env": "ORKET_DB"}}}"#,
    );
    let text = tree
        .load_environment("bad", "core")
        .unwrap_err()
        .to_string();
    for expected in [
        "model_client.provider: unknown provider \"gpt\" (expected embedded, ollama, openai)",
        "model_client.base_url: expected an http:// or https:// URL, found \"ftp://x\"",
        "seat_model_clients.guard.base_url: the embedded model runs in-process: it has no base_url",
        "seat_model_clients.guard.api_key_env: expected the NAME of an environment variable starting with ORKET_KEY_",
        "seat_model_clients.dev.provider: required field is missing",
        "seat_model_clients.ops.base_url: a URL with a user or password in it: give the key through api_key_env",
        "seat_model_clients.ops.api_key_env: expected the NAME of an environment variable starting with ORKET_KEY_",
    ] {
        assert!(text.contains(expected), "{expected}\n in: {text}");
    }
}

#[test]
fn bug_fix_phase_rules_default_are_read_and_bad_values_named() {
    use orket_core::bugfix::BugFixRules;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "config/organization.json", r#"{"process_rules": {}}"#);
    let tree = AssetTree::new(root);
    assert_eq!(
        tree.organization().unwrap().bug_fix_rules(),
        BugFixRules::default()
    );
    write(
        root,
        "config/organization.json",
        r#"{"process_rules": {"bug_fix_phase": {"initial_duration_days": 3, "max_duration_days": 10,
            "bug_discovery_high_rate": 2.5, "bug_critical_threshold": 0}}}"#,
    );
    assert_eq!(
        tree.organization().unwrap().bug_fix_rules(),
        BugFixRules {
            initial_duration_days: 3,
            max_duration_days: 10,
            bug_discovery_high_rate: 2.5,
            bug_critical_threshold: 0,
        }
    );

    write(
        root,
        "config/organization.json",
        r#"{"process_rules": {"bug_fix_phase": {"initial_duration_days": 30, "max_duration_days": 0,
            "bug_discovery_high_rate": "high", "bug_critical_threshold": -1, "grace": 2}}}"#,
    );
    let (org, diags) = tree.organization_with_diagnostics();
    let shown: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        shown,
        [
            "config/organization.json: process_rules.bug_fix_phase.grace: unknown field, ignored",
            "config/organization.json: process_rules.bug_fix_phase.max_duration_days: expected a whole number from 1 to 365, found 0",
            "config/organization.json: process_rules.bug_fix_phase.initial_duration_days: 30 days is longer than max_duration_days (28)",
            "config/organization.json: process_rules.bug_fix_phase.bug_discovery_high_rate: expected a number, found a string",
            "config/organization.json: process_rules.bug_fix_phase.bug_critical_threshold: expected a non-negative whole number, found a number",
        ]
    );
    // Invalid values are never handed out; the organization does not load.
    assert_eq!(org.bug_fix_rules().max_duration_days, 28);
    assert!(tree.organization().is_err());
    let report = orket_core::assets::check_tree(&tree, None);
    assert!(
        report.diagnostics.iter().any(|d| d
            .to_string()
            .contains("config/organization.json: process_rules.bug_fix_phase.max_duration_days")),
        "{:?}",
        report.diagnostics
    );
}
