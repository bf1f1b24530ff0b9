//! `check_tree` on the demo, on a tree with planted mistakes, and on the original project's
//! asset corpus.

use orket_core::assets::{check_tree, AssetTree, CheckReport, FileShape, Severity};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo")
}

fn errors(report: &CheckReport) -> Vec<String> {
    report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn demo_tree_is_clean() {
    let report = check_tree(&AssetTree::new(demo()), None);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    assert_eq!(report.files_checked, 13);
}

/// Each planted mistake: (file, JSON path, part of the message).
const PLANTED: [(&str, &str, &str); 14] = [
    ("model/core/epics/broken_json.json", "", "invalid JSON at line 7, column 3"),
    ("model/core/epics/ghost_team.json", "team", "team \"ghosts\" not found (looked in config/teams/ghosts.json, model/core/teams/ghosts.json)"),
    ("model/core/epics/main.json", "issues[0].depends_on", "dependency cycle: M-1 -> M-3 -> M-2 -> M-1"),
    ("model/core/epics/main.json", "issues[3].depends_on[0]", "unknown issue id \"NOPE-9\""),
    ("model/core/epics/main.json", "issues[4].status", "unknown status \"finished\""),
    ("model/core/epics/main.json", "issues[5].seat", "seat \"designer\" is not a seat of team \"crew\" (seats: developer, tester, integrity_guard)"),
    ("model/core/epics/main.json", "issues[6].priority", "expected High, Medium, Low or a number, found \"Urgent\""),
    ("model/core/epics/main.json", "environment", "environment \"mars\" not found"),
    ("model/core/teams/crew.json", "seats.tester.roles[0]", "role \"tester\" has no file"),
    ("model/core/dialects/phi.json", "", "no dialect for model family \"phi\""),
    ("model/core/dialects/llama3.json", "hallucination_guard", "required field is missing"),
    ("model/core/epics/too_big.json", "issues", "8 issues exceed the iDesign threshold of 7"),
    ("model/core/epics/no_environment.json", "environment", "required field is missing"),
    ("model/core/rocks/launch.json", "epics[1].epic", "epic \"vanished_epic\" not found in department \"core\""),
];

#[test]
fn broken_tree_reports_every_planted_mistake_and_nothing_else() {
    let report = check_tree(&AssetTree::new(fixture("broken_tree")), None);
    let errs: Vec<_> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
    for (file, path, message) in PLANTED {
        assert!(
            errs.iter()
                .any(|d| d.file == file && d.path == path && d.message.contains(message)),
            "missing: {file}: {path}: {message}\nfound:\n{}",
            errors(&report).join("\n")
        );
    }
    assert_eq!(
        errs.len(),
        PLANTED.len(),
        "unexpected extra errors:\n{}",
        errors(&report).join("\n")
    );
    assert!(!report.is_ok());
}

/// The genuine problems of the original project's assets, found precisely, nothing invented.
#[test]
fn original_corpus_problems() {
    let report = check_tree(&AssetTree::new(fixture("original_assets")), None);
    let expected = [
        "model/core/dialects/generic.json: invalid JSON at line 4, column 0: control character (\\u0000-\\u001F) found while parsing a string",
        "model/core/dialects/llama3.json: invalid JSON at line 4, column 0: control character (\\u0000-\\u001F) found while parsing a string",
        "model/core/dialects/phi.json: invalid JSON at line 4, column 0: control character (\\u0000-\\u001F) found while parsing a string",
        "model/core/epics/branding.json: cards[0].seat: seat \"creative_director\" is not a seat of team \"standard\" (seats: lead_architect, senior_developer, quality_assurance, reforge_specialist)",
        "model/core/epics/branding.json: cards[1].seat: seat \"frontend_artisan\" is not a seat of team \"standard\" (seats: lead_architect, senior_developer, quality_assurance, reforge_specialist)",
        "model/core/epics/price_arbitrage_system.json: issues: 9 issues exceed the iDesign threshold of 7 (architecture.idesign_threshold); set architecture_governance.idesign to true or split the epic",
        "model/core/epics/qa_completion_test.json: status: status \"ready_for_testing\" is not valid for epics (expected one of: ready, in_progress, code_review, done, canceled)",
        "model/core/epics/requirements_refinement.json: team: team \"product_owners\" not found (looked in config/teams/product_owners.json, model/core/teams/product_owners.json)",
        "model/core/epics/ui_update.json: cards[1].seat: seat \"ux_artisan\" is not a seat of team \"standard\" (seats: lead_architect, senior_developer, quality_assurance, reforge_specialist)",
        "model/core/epics/web_dev.json: cards[0].seat: seat \"creative_director\" is not a seat of team \"standard\" (seats: lead_architect, senior_developer, quality_assurance, reforge_specialist)",
        "model/core/epics/web_dev.json: cards[1].seat: seat \"frontend_artisan\" is not a seat of team \"standard\" (seats: lead_architect, senior_developer, quality_assurance, reforge_specialist)",
        "model/core/rocks/q1_2026_maturation.json: epics[1].epic: epic \"sneaky_price_watch_refinement\" not found in department \"core\" (looked in config/epics/sneaky_price_watch_refinement.json, model/core/epics/sneaky_price_watch_refinement.json)",
        "model/core/rocks/run_the_business.json: status: unknown status \"active\" (expected one of: ready, in_progress, done, canceled)",
        "model/core/teams/enterprise.json: seats.governance_ethics.roles[0]: role \"governance_ethics\" has no file (looked in config/roles/governance_ethics.json, model/core/roles/governance_ethics.json) and is not defined in the team's \"roles\"",
        "model/core/teams/enterprise.json: seats.data_scientist.roles[0]: role \"data_scientist\" has no file (looked in config/roles/data_scientist.json, model/core/roles/data_scientist.json) and is not defined in the team's \"roles\"",
        "model/core/teams/enterprise.json: seats.network_engineer.roles[0]: role \"network_engineer\" has no file (looked in config/roles/network_engineer.json, model/core/roles/network_engineer.json) and is not defined in the team's \"roles\"",
        "model/core/teams/enterprise.json: seats.protocol_enforcer.roles[0]: role \"protocol_enforcer\" has no file (looked in config/roles/protocol_enforcer.json, model/core/roles/protocol_enforcer.json) and is not defined in the team's \"roles\"",
    ];
    assert_eq!(errors(&report), expected);
    assert_eq!(report.files_checked, 65);
    // Warnings name what is ignored or suspicious, e.g. the old "tracs" key and issues without
    // a name.
    let warnings: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.to_string())
        .collect();
    assert!(warnings.contains(
        &"model/creative/epics/void_lore.json: tracs: unknown field, ignored".to_string()
    ));
    assert!(warnings.iter().any(
        |w| w.starts_with("model/core/epics/ui_vision.json: stories[0]: the issue has no name")
    ));
}

#[test]
fn department_scope_and_unknown_department() {
    let tree = AssetTree::new(fixture("original_assets"));
    let report = check_tree(&tree, Some("engineering"));
    assert!(report
        .diagnostics
        .iter()
        .all(|d| !d.file.starts_with("model/marketing/")));
    assert!(report
        .diagnostics
        .iter()
        .any(|d| d.file.starts_with("model/engineering/")));
    // core is the fallback of every department, so its problems are part of the check.
    assert!(report
        .diagnostics
        .iter()
        .any(|d| d.file == "model/core/teams/enterprise.json"));

    let report = check_tree(&tree, Some("nowhere"));
    assert!(errors(&report).contains(
        &"model/nowhere: department \"nowhere\" not found: model/nowhere/ does not exist"
            .to_string()
    ));
    let report = check_tree(&tree, Some("../etc"));
    assert!(errors(&report)
        .iter()
        .any(|e| e.contains("invalid department name \"../etc\"")));
}

#[test]
fn model_profiles_of_every_layer_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "config/models/a.json",
        r#"{"temperature": -0.1, "top_p": 1.5}"#,
    );
    write(
        "model/core/models/b.json",
        r#"{"seed_policy": "sometimes", "max_tokens": 0, "context_window": 255}"#,
    );
    write(
        "model/eng/models/c.json",
        r#"{"steps": 0, "corrections": 11, "candidates": 11, "color": "red"}"#,
    );
    write(
        "model/eng/models/ok.json",
        r#"{"steps": 20, "corrections": 0, "candidates": 10, "top_p": 1}"#,
    );
    write("model/core/models/broken.json", "{\"steps\": 3,}");
    let report = check_tree(&AssetTree::new(root), None);
    let found: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.file.contains("/models/"))
        .map(|d| {
            let severity = if d.is_error() { "error" } else { "warning" };
            format!("{severity}: {}: {}", d.file, d.path)
        })
        .collect();
    assert_eq!(
        found,
        [
            "error: config/models/a.json: temperature",
            "error: config/models/a.json: top_p",
            "error: model/core/models/b.json: seed_policy",
            "error: model/core/models/b.json: max_tokens",
            "error: model/core/models/b.json: context_window",
            "error: model/core/models/broken.json: ",
            "warning: model/eng/models/c.json: color",
            "error: model/eng/models/c.json: steps",
            "error: model/eng/models/c.json: corrections",
            "error: model/eng/models/c.json: candidates",
        ]
    );
}

#[test]
fn an_issue_names_a_list_file_with_its_count_and_bad_entries_are_named() {
    let demo = AssetTree::new(demo())
        .load_epic("hello_cli", "core")
        .unwrap();
    let notes = demo.issue("DEMO-3").unwrap();
    assert_eq!(notes.files, ["NOTES.md"]);
    assert_eq!(
        notes.file_shapes.get("NOTES.md"),
        Some(&FileShape::List { items: 3 })
    );

    let dir = tempfile::tempdir().unwrap();
    let epics = dir.path().join("model/core/epics");
    std::fs::create_dir_all(&epics).unwrap();
    std::fs::write(
        epics.join("e.json"),
        serde_json::json!({
            "team": "t", "environment": "e",
            "issues": [{"id": "E-1", "summary": "s", "seat": "developer", "files": [
                "a.py",
                {"path": "b.md", "list": 0},
                {"list": 3},
                7,
                {"path": "c.md", "list": 2, "colour": "red"},
                {"path": "verification/d.md", "list": 2}
            ]}]
        })
        .to_string(),
    )
    .unwrap();
    let report = check_tree(&AssetTree::new(dir.path()), None);
    let found: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.path.starts_with("issues[0].files"))
        .map(|d| d.to_string())
        .collect();
    assert_eq!(found.len(), 5, "{found:#?}");
    let expect = [
        "issues[0].files[1].list",
        "issues[0].files[2].path",
        "issues[0].files[3]",
        "issues[0].files[4].colour",
        "issues[0].files[5]",
    ];
    for (found, path) in found.iter().zip(expect) {
        assert!(
            found.contains(&format!("{path}:")),
            "{found} (expected {path})"
        );
    }
    assert!(
        found[0].contains("0 items: a list file has 1 to 50 items"),
        "{}",
        found[0]
    );
    assert!(found[4].contains("inside verification/"), "{}", found[4]);
}

#[test]
fn a_model_client_for_a_seat_the_team_lacks_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy(&demo(), root);
    let env_file = root.join("model/core/environments/local.json");
    let mut env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&env_file).unwrap()).unwrap();
    env["seat_model_clients"] = serde_json::json!({
        "integrity_guard": {"provider": "openai", "base_url": "http://127.0.0.1:8081/v1"},
        "reviewer": {"provider": "ollama"}
    });
    std::fs::write(&env_file, env.to_string()).unwrap();
    let report = check_tree(&AssetTree::new(root), None);
    assert!(report.is_ok(), "{:#?}", report.diagnostics);
    let warnings: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        warnings,
        ["model/core/environments/local.json: seat_model_clients.reviewer: seat \"reviewer\" is not a seat of team \"demo_team\" of epic \"hello_cli\" (seats: developer, integrity_guard): no turn of that epic uses this client"],
    );
}

fn copy(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "workspace" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
