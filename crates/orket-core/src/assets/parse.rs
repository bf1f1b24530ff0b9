//! From JSON values to typed assets, reporting every problem with its JSON path.

use super::diag::{at, idx};
use super::reader::{as_object, Reader};
use super::types::*;
use crate::bugfix::Severity;
use crate::ids::derived_issue_id;
use crate::lifecycle::valid_statuses;
use crate::priority::{json_kind, parse_priority};
use crate::status::{normalize_name, CardKind, Status, WaitReason};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::RangeInclusive;

const CARD_KEYS: &[&str] = &[
    "id",
    "name",
    "summary",
    "type",
    "status",
    "description",
    "priority",
    "wait_reason",
    "note",
    "parent_id",
    "owner_department",
    "labels",
    "params",
    "references",
];
const ISSUE_KEYS: &[&str] = &[
    "seat",
    "severity",
    "assignee",
    "sprint",
    "requirements",
    "files",
    "depends_on",
    "retry_count",
    "max_retries",
    "verification",
    "metrics",
];
const EPIC_KEYS: &[&str] = &[
    "team",
    "environment",
    "issues",
    "stories",
    "cards",
    "architecture_governance",
    "requirements",
    "example_task",
];
const ROCK_KEYS: &[&str] = &["task", "epics"];
const ORG_KEYS: &[&str] = &[
    "schema_version",
    "name",
    "vision",
    "ethos",
    "branding",
    "architecture",
    "contact",
    "departments",
    "process_rules",
    "bottleneck_thresholds",
];
const ROLE_KEYS: &[&str] = &[
    "id",
    "name",
    "type",
    "description",
    "intent",
    "responsibilities",
    "constraints",
    "prompt",
    "tools",
    "capabilities",
    "policy",
];
const DIALECT_KEYS: &[&str] = &[
    "model_family",
    "dsl_format",
    "constraints",
    "hallucination_guard",
];
const ENVIRONMENT_KEYS: &[&str] = &[
    "name",
    "description",
    "model",
    "temperature",
    "seed",
    "timeout",
    "params",
    "model_client",
    "seat_model_clients",
];
const MODEL_PROFILE_KEYS: &[&str] = &[
    "name",
    "temperature",
    "top_p",
    "repeat_penalty",
    "seed_policy",
    "max_tokens",
    "context_window",
    "steps",
    "corrections",
    "candidates",
    "file_content",
];
const TEAM_KEYS: &[&str] = &["name", "description", "seats", "roles"];
const SEAT_KEYS: &[&str] = &["name", "roles", "model_client"];
const MODEL_CLIENT_KEYS: &[&str] = &["provider", "model", "base_url", "api_key_env"];

/// The fields each kind of asset file may hold (others are warned about and ignored): the
/// loader reads exactly these, and the reference (`docs/assets.md`) documents each (a test
/// holds the two together).
pub const KNOWN_FIELDS: [(&str, &[&str]); 12] = [
    ("card", CARD_KEYS),
    ("issue", ISSUE_KEYS),
    ("epic", EPIC_KEYS),
    ("rock", ROCK_KEYS),
    ("organization", ORG_KEYS),
    ("role", ROLE_KEYS),
    ("dialect", DIALECT_KEYS),
    ("environment", ENVIRONMENT_KEYS),
    ("model profile", MODEL_PROFILE_KEYS),
    ("team", TEAM_KEYS),
    ("seat", SEAT_KEYS),
    ("model client", MODEL_CLIENT_KEYS),
];

/// The issue types a card may have besides the three levels.
pub const ISSUE_TYPES: [&str; 6] = ["issue", "story", "bug", "task", "utility", "app"];

fn keys(lists: &[&[&'static str]]) -> Vec<&'static str> {
    lists.iter().flat_map(|l| l.iter().copied()).collect()
}

/// Reads the fields every card has. `kind` decides which statuses are valid.
fn card_base(
    ctx: &mut Reader,
    obj: &Map<String, Value>,
    path: &str,
    kind: CardKind,
    default_id: &str,
) -> CardBase {
    let id = ctx
        .opt_str(obj, path, "id")
        .unwrap_or_else(|| default_id.to_string());
    let name = match (obj.contains_key("name"), obj.contains_key("summary")) {
        (true, _) => ctx.opt_str(obj, path, "name"),
        (false, true) => ctx.opt_str(obj, path, "summary"),
        _ => None,
    }
    .unwrap_or_default();
    let default_type = match kind {
        CardKind::Rock => "rock",
        CardKind::Epic => "epic",
        _ => "issue",
    };
    let card_type = ctx
        .opt_str(obj, path, "type")
        .unwrap_or_else(|| default_type.to_string());
    let status = match obj.get("status") {
        None | Some(Value::Null) => Status::Ready,
        Some(Value::String(raw)) => match raw.parse::<Status>() {
            Ok(s) if valid_statuses(kind).contains(&s) => s,
            Ok(s) => {
                ctx.error(
                    &at(path, "status"),
                    format!(
                        "status \"{s}\" is not valid for {}s (expected one of: {})",
                        kind.as_str(),
                        Status::names(valid_statuses(kind))
                    ),
                );
                Status::Ready
            }
            Err(_) => {
                ctx.error(
                    &at(path, "status"),
                    format!(
                        "unknown status \"{raw}\" (expected one of: {})",
                        Status::names(valid_statuses(kind))
                    ),
                );
                Status::Ready
            }
        },
        Some(other) => {
            ctx.wrong_type(&at(path, "status"), "a status name", other);
            Status::Ready
        }
    };
    let priority = match parse_priority(obj.get("priority")) {
        Ok(p) => p,
        Err(message) => {
            ctx.error(&at(path, "priority"), message);
            crate::priority::DEFAULT_PRIORITY
        }
    };
    let wait_reason =
        ctx.opt_str(obj, path, "wait_reason")
            .and_then(|raw| match raw.parse::<WaitReason>() {
                Ok(w) => Some(w),
                Err(e) => {
                    ctx.error(&at(path, "wait_reason"), e.to_string());
                    None
                }
            });
    if status.needs_wait_reason() && wait_reason.is_none() && !obj.contains_key("wait_reason") {
        ctx.warn(
            &at(path, "status"),
            format!("status \"{status}\" without a wait_reason (one of: resource, dependency, review, input, system)"),
        );
    }
    CardBase {
        id,
        name,
        card_type,
        status,
        description: ctx.opt_text(obj, path, "description").unwrap_or_default(),
        priority,
        wait_reason,
        note: ctx.opt_text(obj, path, "note"),
        parent_id: ctx.opt_str(obj, path, "parent_id"),
        owner_department: ctx
            .opt_str(obj, path, "owner_department")
            .unwrap_or_else(|| "core".to_string()),
        labels: ctx.str_list(obj, path, "labels", true),
        params: ctx.opt_object(obj, path, "params"),
        references: ctx.str_list(obj, path, "references", true),
    }
}

/// Reads the organization from its (possibly merged) JSON.
pub(crate) fn organization(ctx: &mut Reader, value: &Value, sources: Vec<String>) -> Organization {
    let mut org = Organization {
        sources,
        ..Organization::default()
    };
    let Some(obj) = as_object(ctx, value, "") else {
        return org;
    };
    ctx.unknown_keys(obj, "", ORG_KEYS);
    if let Some(name) = ctx.opt_str(obj, "", "name") {
        org.name = name;
    }
    org.vision = ctx.opt_str(obj, "", "vision").unwrap_or_default();
    org.ethos = ctx.opt_str(obj, "", "ethos").unwrap_or_default();
    org.branding = obj
        .get("branding")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    org.contact = obj
        .get("contact")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    org.architecture = ctx.opt_object(obj, "", "architecture");
    if let Some(t) = ctx.opt_u64(
        &org.architecture.clone(),
        "architecture",
        "idesign_threshold",
    ) {
        org.idesign_threshold = t as usize;
    }
    let departments = ctx.str_list(obj, "", "departments", false);
    if !departments.is_empty() {
        org.departments = departments;
    }
    org.process_rules = ctx.opt_object(obj, "", "process_rules");
    let rules = org.process_rules.clone();
    whole_in(ctx, &rules, "process_rules", "max_steps", STEPS);
    whole_in(ctx, &rules, "process_rules", "max_corrections", CORRECTIONS);
    whole_in(ctx, &rules, "process_rules", "candidates", CANDIDATES);
    bug_fix_phase(ctx, &rules);
    org
}

/// `process_rules.bug_fix_phase`: whole days from 1 to 365 (the initial duration at most the
/// maximum), a rate of 0 or more, a whole number of critical bugs.
fn bug_fix_phase(ctx: &mut Reader, rules: &Map<String, Value>) {
    let path = at("process_rules", BUG_FIX_PHASE);
    let set = ctx.opt_object(rules, "process_rules", BUG_FIX_PHASE);
    ctx.unknown_keys(&set, &path, &BUG_FIX_PHASE_KEYS);
    let initial = whole_in(ctx, &set, &path, "initial_duration_days", PHASE_DAYS);
    let max = whole_in(ctx, &set, &path, "max_duration_days", PHASE_DAYS);
    let defaults = crate::bugfix::BugFixRules::default();
    let (initial_days, max_days) = (
        initial.unwrap_or(u64::from(defaults.initial_duration_days)),
        max.unwrap_or(u64::from(defaults.max_duration_days)),
    );
    if (initial.is_some() || max.is_some()) && initial_days > max_days {
        ctx.error(
            &at(&path, "initial_duration_days"),
            format!("{initial_days} days is longer than max_duration_days ({max_days})"),
        );
    }
    if let Some(rate) = ctx.opt_f64(&set, &path, "bug_discovery_high_rate") {
        if !(rate.is_finite() && rate >= 0.0) {
            ctx.error(
                &at(&path, "bug_discovery_high_rate"),
                format!("expected bugs per day, 0 or more, found {rate}"),
            );
        }
    }
    whole_in(
        ctx,
        &set,
        &path,
        "bug_critical_threshold",
        0..=u64::from(u32::MAX),
    );
}

/// An optional whole number within `range`; reports one outside it.
fn whole_in(
    ctx: &mut Reader,
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    range: RangeInclusive<u64>,
) -> Option<u64> {
    let n = ctx.opt_u64(obj, path, key)?;
    if range.contains(&n) {
        return Some(n);
    }
    let expected = if *range.end() == u64::from(u32::MAX) {
        format!("a whole number of at least {}", range.start())
    } else {
        format!("a whole number from {} to {}", range.start(), range.end())
    };
    ctx.error(&at(path, key), format!("expected {expected}, found {n}"));
    None
}

/// An optional whole number of at least `min` that fits a `u32`.
fn whole_u32(ctx: &mut Reader, obj: &Map<String, Value>, key: &str, min: u64) -> Option<u32> {
    whole_in(ctx, obj, "", key, min..=u64::from(u32::MAX)).and_then(|n| u32::try_from(n).ok())
}

/// An optional count within `range`.
fn count_in(
    ctx: &mut Reader,
    obj: &Map<String, Value>,
    key: &str,
    range: RangeInclusive<u64>,
) -> Option<usize> {
    whole_in(ctx, obj, "", key, range).and_then(|n| usize::try_from(n).ok())
}

/// Reads a model profile (`models/<model>.json`); every field is optional, the name defaults
/// to the file stem.
pub(crate) fn model_profile(ctx: &mut Reader, value: &Value, stem: &str) -> Option<ModelProfile> {
    let obj = as_object(ctx, value, "")?;
    ctx.unknown_keys(obj, "", MODEL_PROFILE_KEYS);
    let temperature = ctx.opt_f64(obj, "", "temperature").filter(|t| {
        let ok = (0.0..=2.0).contains(t);
        if !ok {
            ctx.error(
                "temperature",
                format!("expected a number from 0.0 to 2.0, found {t}"),
            );
        }
        ok
    });
    let top_p = ctx.opt_f64(obj, "", "top_p").filter(|p| {
        let ok = *p > 0.0 && *p <= 1.0;
        if !ok {
            ctx.error(
                "top_p",
                format!("expected a number greater than 0 and at most 1, found {p}"),
            );
        }
        ok
    });
    let repeat_penalty = ctx.opt_f64(obj, "", "repeat_penalty").filter(|r| {
        let ok = (1.0..=2.0).contains(r);
        if !ok {
            ctx.error(
                "repeat_penalty",
                format!("expected a number from 1.0 to 2.0, found {r}"),
            );
        }
        ok
    });
    let seed_policy = ctx.opt_choice(
        obj,
        "",
        "seed_policy",
        "seed policy",
        &["fixed", "per_call"],
    );
    let file_content = ctx.opt_choice(
        obj,
        "",
        "file_content",
        "file content form",
        &["json", "block"],
    );
    Some(ModelProfile {
        name: ctx
            .opt_str(obj, "", "name")
            .unwrap_or_else(|| stem.to_string()),
        temperature,
        top_p,
        repeat_penalty,
        seed_policy,
        max_tokens: whole_u32(ctx, obj, "max_tokens", 1),
        context_window: whole_u32(ctx, obj, "context_window", MIN_CONTEXT_WINDOW),
        steps: count_in(ctx, obj, "steps", STEPS),
        corrections: count_in(ctx, obj, "corrections", CORRECTIONS),
        candidates: count_in(ctx, obj, "candidates", CANDIDATES),
        file_content,
        file: ctx.file.clone(),
    })
}

/// Reads a role (from its own file, or inline in a team under `path`).
pub(crate) fn role(
    ctx: &mut Reader,
    value: &Value,
    path: &str,
    default_name: &str,
) -> Option<Role> {
    let obj = as_object(ctx, value, path)?;
    ctx.unknown_keys(obj, path, ROLE_KEYS);
    let capabilities = ctx.opt_object(obj, path, "capabilities");
    let mut issue_types = ctx.str_list(
        &capabilities,
        &at(path, "capabilities"),
        "issue_types",
        false,
    );
    if issue_types.is_empty() {
        issue_types = DEFAULT_ISSUE_TYPES.iter().map(|s| s.to_string()).collect();
    }
    let tools = ctx.str_list(obj, path, "tools", false);
    for (i, tool) in tools.iter().enumerate() {
        if !crate::tools::is_known_tool(tool) {
            ctx.warn(
                &idx(&at(path, "tools"), i),
                format!("unknown tool \"{tool}\"; the gate will refuse calls to it"),
            );
        }
    }
    Some(Role {
        name: ctx
            .opt_str(obj, path, "name")
            .unwrap_or_else(|| default_name.to_string()),
        description: ctx.opt_text(obj, path, "description").unwrap_or_default(),
        intent: ctx.opt_text(obj, path, "intent").unwrap_or_default(),
        responsibilities: ctx.str_list(obj, path, "responsibilities", true),
        constraints: ctx.str_list(obj, path, "constraints", true),
        prompt: ctx.opt_text(obj, path, "prompt"),
        tools,
        issue_types,
        file: ctx.file.clone(),
    })
}

/// Reads a team and its inline roles.
pub(crate) fn team(ctx: &mut Reader, value: &Value, stem: &str) -> Option<Team> {
    let obj = as_object(ctx, value, "")?;
    ctx.unknown_keys(obj, "", TEAM_KEYS);
    let mut seats = Vec::new();
    match obj.get("seats") {
        Some(Value::Object(map)) => {
            if map.is_empty() {
                ctx.error("seats", "a team needs at least one seat");
            }
            let mut seen = HashSet::new();
            for (key, seat) in map {
                let path = at("seats", key);
                let Some(seat_obj) = as_object(ctx, seat, &path) else {
                    continue;
                };
                ctx.unknown_keys(seat_obj, &path, SEAT_KEYS);
                let normalized = normalize_name(key);
                if !seen.insert(normalized.clone()) {
                    ctx.error(&path, format!("seat \"{key}\" appears twice (seat keys are compared lower-cased with `_` for spaces)"));
                }
                let roles = ctx.str_list(seat_obj, &path, "roles", true);
                if roles.is_empty() {
                    ctx.error(&at(&path, "roles"), "a seat needs at least one role");
                }
                seats.push(Seat {
                    key: normalized,
                    name: ctx
                        .opt_str(seat_obj, &path, "name")
                        .unwrap_or_else(|| key.clone()),
                    roles,
                    model_client: seat_obj
                        .get("model_client")
                        .and_then(|v| model_client(ctx, v, &at(&path, "model_client"))),
                });
            }
        }
        None | Some(Value::Null) => ctx.error(
            "seats",
            "required field is missing (expected an object of seats)",
        ),
        Some(other) => ctx.wrong_type("seats", "an object of seats", other),
    }
    let mut roles = Vec::new();
    if let Some(value) = obj.get("roles") {
        match value {
            Value::Object(map) => {
                for (key, def) in map {
                    if let Some(r) = role(ctx, def, &at("roles", key), key) {
                        roles.push(r);
                    }
                }
            }
            other => ctx.wrong_type("roles", "an object of role definitions", other),
        }
    }
    Some(Team {
        name: ctx
            .opt_str(obj, "", "name")
            .unwrap_or_else(|| stem.to_string()),
        description: ctx.opt_text(obj, "", "description").unwrap_or_default(),
        seats,
        roles,
        file: ctx.file.clone(),
    })
}

/// Reads a dialect; all four fields are required.
pub(crate) fn dialect(ctx: &mut Reader, value: &Value) -> Option<Dialect> {
    let obj = as_object(ctx, value, "")?;
    ctx.unknown_keys(obj, "", DIALECT_KEYS);
    let model_family = ctx.req_str(obj, "", "model_family");
    let dsl_format = ctx.req_str(obj, "", "dsl_format");
    let constraints = if obj.contains_key("constraints") {
        ctx.str_list(obj, "", "constraints", true)
    } else {
        ctx.error(
            "constraints",
            "required field is missing (expected a list of strings)",
        );
        Vec::new()
    };
    let hallucination_guard = ctx.req_str(obj, "", "hallucination_guard");
    Some(Dialect {
        model_family: model_family?,
        dsl_format: dsl_format?,
        constraints,
        hallucination_guard: hallucination_guard?,
        file: ctx.file.clone(),
    })
}

/// Reads an environment; `model` is required.
pub(crate) fn environment(ctx: &mut Reader, value: &Value, stem: &str) -> Option<Environment> {
    let obj = as_object(ctx, value, "")?;
    ctx.unknown_keys(obj, "", ENVIRONMENT_KEYS);
    let model = ctx.req_str(obj, "", "model");
    let timeout = ctx
        .opt_u64(obj, "", "timeout")
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    if timeout == 0 {
        ctx.error("timeout", "must be at least 1 second");
    }
    let temperature = ctx.opt_f64(obj, "", "temperature").unwrap_or(0.0);
    if !(0.0..=2.0).contains(&temperature) {
        ctx.error(
            "temperature",
            format!("expected a number from 0.0 to 2.0, found {temperature}"),
        );
    }
    Some(Environment {
        name: ctx
            .opt_str(obj, "", "name")
            .unwrap_or_else(|| stem.to_string()),
        description: ctx.opt_text(obj, "", "description").unwrap_or_default(),
        model: model?,
        temperature,
        seed: ctx.opt_i64(obj, "", "seed"),
        timeout,
        params: ctx.opt_object(obj, "", "params"),
        model_client: obj
            .get("model_client")
            .and_then(|v| model_client(ctx, v, "model_client")),
        seat_model_clients: seat_model_clients(ctx, obj),
        file: ctx.file.clone(),
    })
}

/// An environment's `seat_model_clients`: `{seat key: model client}`, keys normalized as seat
/// keys are.
fn seat_model_clients(
    ctx: &mut Reader,
    obj: &Map<String, Value>,
) -> BTreeMap<String, ModelClientSpec> {
    let mut clients = BTreeMap::new();
    match obj.get("seat_model_clients") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                if let Some(spec) = model_client(ctx, value, &at("seat_model_clients", key)) {
                    clients.insert(normalize_name(key), spec);
                }
            }
        }
        Some(other) => ctx.wrong_type("seat_model_clients", "an object of seat keys", other),
    }
    clients
}

/// A `model_client`: `provider` one of [`MODEL_CLIENT_PROVIDERS`]; `base_url` an `http(s)://`
/// URL, and none for the in-process model; `api_key_env` the name of an environment variable,
/// never a key.
fn model_client(ctx: &mut Reader, value: &Value, path: &str) -> Option<ModelClientSpec> {
    let obj = as_object(ctx, value, path)?;
    ctx.unknown_keys(obj, path, MODEL_CLIENT_KEYS);
    let provider = ctx.req_str(obj, path, "provider");
    if let Some(p) = &provider {
        if !MODEL_CLIENT_PROVIDERS.contains(&p.as_str()) {
            ctx.error(
                &at(path, "provider"),
                format!(
                    "unknown provider \"{p}\" (expected {})",
                    MODEL_CLIENT_PROVIDERS.join(", ")
                ),
            );
        }
    }
    let base_url = ctx.opt_str(obj, path, "base_url");
    if let Some(url) = &base_url {
        if provider.as_deref() == Some("embedded") {
            ctx.error(
                &at(path, "base_url"),
                "the embedded model runs in-process: it has no base_url",
            );
        } else if !(url.starts_with("http://") || url.starts_with("https://")) {
            ctx.error(
                &at(path, "base_url"),
                format!("expected an http:// or https:// URL, found \"{url}\""),
            );
        } else if url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|authority| authority.contains('@'))
        {
            // Shown with every turn: a password in it would be shown too.
            ctx.error(
                &at(path, "base_url"),
                "a URL with a user or password in it: give the key through api_key_env",
            );
        }
    }
    let api_key_env = ctx.opt_str(obj, path, "api_key_env");
    if let Some(name) = &api_key_env {
        let variable = name.len() > MODEL_KEY_PREFIX.len()
            && name.starts_with(MODEL_KEY_PREFIX)
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !variable {
            // Anyone who can edit assets must not be able to send any of the process's
            // variables (the store's URL, a Gitea token) to a server they name.
            ctx.error(
                &at(path, "api_key_env"),
                format!("expected the NAME of an environment variable starting with {MODEL_KEY_PREFIX} that holds the key (like {MODEL_KEY_PREFIX}GUARD), never the key itself"),
            );
        }
    }
    let model = ctx.opt_str(obj, path, "model");
    Some(ModelClientSpec {
        provider: provider?,
        model,
        base_url,
        api_key_env,
    })
}

fn verification(ctx: &mut Reader, value: &Value, path: &str) -> Option<Verification> {
    let obj = as_object(ctx, value, path)?;
    ctx.unknown_keys(obj, path, &["fixture_path", "scenarios", "last_run"]);
    let mut scenarios = Vec::new();
    match obj.get("scenarios") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let base = at(path, "scenarios");
            for (i, item) in items.iter().enumerate() {
                let p = idx(&base, i);
                let Some(s) = as_object(ctx, item, &p) else {
                    continue;
                };
                ctx.unknown_keys(
                    s,
                    &p,
                    &["id", "description", "input_data", "expected_output"],
                );
                let Some(id) = ctx.req_str(s, &p, "id") else {
                    continue;
                };
                scenarios.push(Scenario {
                    id,
                    description: ctx.opt_str(s, &p, "description").unwrap_or_default(),
                    input_data: s.get("input_data").cloned().unwrap_or(Value::Null),
                    expected_output: s.get("expected_output").cloned().unwrap_or(Value::Null),
                });
            }
        }
        Some(other) => ctx.wrong_type(&at(path, "scenarios"), "a list of scenarios", other),
    }
    let fixture_path = ctx.opt_str(obj, path, "fixture_path");
    if let Some(fp) = &fixture_path {
        let normalized = fp.trim_start_matches("./");
        if !normalized.starts_with("verification/") || normalized.split('/').any(|c| c == "..") {
            ctx.error(
                &at(path, "fixture_path"),
                format!("fixture \"{fp}\" must be inside verification/ (e.g. verification/test_login.py)"),
            );
        }
    }
    Some(Verification {
        fixture_path,
        scenarios,
        last_run: obj.get("last_run").cloned().filter(|v| !v.is_null()),
    })
}

fn issue(ctx: &mut Reader, value: &Value, path: &str, default_id: &str) -> Option<IssueSpec> {
    let obj = as_object(ctx, value, path)?;
    ctx.unknown_keys(obj, path, &keys(&[CARD_KEYS, ISSUE_KEYS]));
    let card = card_base(ctx, obj, path, CardKind::Issue, default_id);
    if card.name.trim().is_empty() {
        ctx.warn(
            path,
            format!(
                "the issue has no name (or \"summary\"); boards and prompts will show its id \"{}\"",
                card.id
            ),
        );
    }
    if !ISSUE_TYPES.contains(&card.card_type.as_str()) {
        ctx.warn(
            &at(path, "type"),
            format!(
                "unusual issue type \"{}\" (usual: {})",
                card.card_type,
                ISSUE_TYPES.join(", ")
            ),
        );
    }
    let seat = ctx.req_str(obj, path, "seat").unwrap_or_default();
    let severity = ctx.opt_choice(obj, path, "severity", "severity", &Severity::NAMES);
    let max_retries = ctx
        .opt_u64(obj, path, "max_retries")
        .unwrap_or(DEFAULT_MAX_RETRIES as u64);
    let retry_count = ctx.opt_u64(obj, path, "retry_count").unwrap_or(0);
    let verification = match obj.get("verification") {
        None | Some(Value::Null) => None,
        Some(v) => verification(ctx, v, &at(path, "verification")),
    };
    let (files, file_shapes) = output_files(ctx, obj, path);
    Some(IssueSpec {
        card,
        seat,
        severity,
        assignee: ctx.opt_str(obj, path, "assignee"),
        sprint: ctx.opt_str(obj, path, "sprint"),
        requirements: ctx.opt_text(obj, path, "requirements"),
        files,
        file_shapes,
        depends_on: ctx.str_list(obj, path, "depends_on", true),
        retry_count: u32::try_from(retry_count).unwrap_or(u32::MAX),
        max_retries: u32::try_from(max_retries).unwrap_or(u32::MAX),
        verification,
        metrics: ctx.opt_object(obj, path, "metrics"),
    })
}

/// An issue's `files`: relative paths inside the workspace, outside `verification/` (which
/// agents may not write), each named once; an entry is a path, or `{"path": …, "list": N}`
/// for a file that is a list of N items (see [`FileShape`]). The paths, and the shapes of
/// those entries that give one.
fn output_files(
    ctx: &mut Reader,
    obj: &Map<String, Value>,
    path: &str,
) -> (Vec<String>, BTreeMap<String, FileShape>) {
    let p = at(path, "files");
    let entries: Vec<(String, String, Option<FileShape>)> = match obj.get("files") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(file)) => vec![(p.clone(), file.clone(), None)],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let at = idx(&p, i);
                file_entry(ctx, item, &at).map(|(file, shape)| (at, file, shape))
            })
            .collect(),
        Some(other) => {
            ctx.wrong_type(&p, "a list of paths", other);
            Vec::new()
        }
    };
    let mut kept: Vec<String> = Vec::new();
    let mut shapes = BTreeMap::new();
    for (at, file, shape) in entries {
        let normalized = file.trim_start_matches("./").to_string();
        let bad =
            if normalized.is_empty() || normalized.starts_with('/') || normalized.contains('\\') {
                Some("must be a relative path inside the workspace")
            } else if normalized
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            {
                Some("must not contain empty, `.` or `..` parts")
            } else if normalized.split('/').next() == Some("verification") {
                Some("is inside verification/, which agents may not write")
            } else if kept.contains(&normalized) {
                Some("is listed twice")
            } else {
                None
            };
        match bad {
            Some(why) => ctx.error(&at, format!("\"{file}\" {why}")),
            None => {
                if let Some(shape) = shape {
                    shapes.insert(normalized.clone(), shape);
                }
                kept.push(normalized);
            }
        }
    }
    (kept, shapes)
}

/// One entry of an issue's `files`: its path, and its shape when it gives one.
fn file_entry(ctx: &mut Reader, item: &Value, path: &str) -> Option<(String, Option<FileShape>)> {
    let obj = match item {
        Value::String(file) => return Some((file.clone(), None)),
        Value::Object(obj) => obj,
        other => {
            ctx.wrong_type(path, "a path, or {\"path\": …, \"list\": N}", other);
            return None;
        }
    };
    ctx.unknown_keys(obj, path, &["path", "list"]);
    let file = ctx.req_str(obj, path, "path")?;
    let shape = match ctx.opt_u64(obj, path, "list") {
        None => None,
        Some(n) if (1..=u64::from(MAX_LIST_ITEMS)).contains(&n) => {
            Some(FileShape::List { items: n as u32 })
        }
        Some(n) => {
            ctx.error(
                &at(path, "list"),
                format!("{n} items: a list file has 1 to {MAX_LIST_ITEMS} items"),
            );
            None
        }
    };
    Some((file, shape))
}

/// Reads an epic and its issues; checks ids, dependencies and cycles within the epic.
pub(crate) fn epic(ctx: &mut Reader, value: &Value, stem: &str, department: &str) -> Option<Epic> {
    let obj = as_object(ctx, value, "")?;
    ctx.unknown_keys(obj, "", &keys(&[CARD_KEYS, EPIC_KEYS]));
    let card = card_base(ctx, obj, "", CardKind::Epic, stem);
    let team = ctx.req_str(obj, "", "team").unwrap_or_default();
    let environment = ctx.req_str(obj, "", "environment").unwrap_or_default();

    let present: Vec<&str> = ["issues", "stories", "cards"]
        .into_iter()
        .filter(|k| obj.contains_key(*k))
        .collect();
    if present.len() > 1 {
        ctx.error(
            present[1],
            format!(
                "both \"{}\" and \"{}\" list issues; keep one",
                present[0], present[1]
            ),
        );
    }
    let issues_key = present.first().copied().unwrap_or("issues").to_string();
    let mut issues = Vec::new();
    match obj.get(&issues_key) {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let mut occurrences: HashMap<String, usize> = HashMap::new();
            for (i, item) in items.iter().enumerate() {
                let name = item
                    .get("name")
                    .or_else(|| item.get("summary"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let n = occurrences.entry(name.clone()).or_default();
                let default_id = derived_issue_id(stem, &name, *n);
                *n += 1;
                if let Some(spec) = issue(ctx, item, &idx(&issues_key, i), &default_id) {
                    issues.push((i, spec));
                }
            }
        }
        Some(other) => ctx.wrong_type(&issues_key, "a list of issues", other),
    }
    check_issue_graph(ctx, &issues_key, &issues);

    let governance = ctx.opt_object(obj, "", "architecture_governance");
    let idesign = ctx
        .opt_bool(&governance, "architecture_governance", "idesign")
        .unwrap_or(false);
    let pattern = ctx.opt_str(&governance, "architecture_governance", "pattern");
    let mut model_overrides = Vec::new();
    match card.params.get("model_overrides") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (role, model) in map {
                match model {
                    Value::String(m) => model_overrides.push((role.clone(), m.clone())),
                    other => {
                        ctx.wrong_type(&at("params.model_overrides", role), "a model name", other)
                    }
                }
            }
        }
        Some(other) => ctx.wrong_type("params.model_overrides", "an object of role: model", other),
    }
    Some(Epic {
        stem: stem.to_string(),
        department: department.to_string(),
        file: ctx.file.clone(),
        requirements: ctx.opt_text(obj, "", "requirements"),
        example_task: ctx.opt_text(obj, "", "example_task"),
        card,
        team,
        environment,
        issues: issues.into_iter().map(|(_, s)| s).collect(),
        issues_key,
        idesign,
        pattern,
        model_overrides,
    })
}

/// Duplicate ids, unknown dependencies, self-dependencies and cycles among an epic's issues.
fn check_issue_graph(ctx: &mut Reader, key: &str, issues: &[(usize, IssueSpec)]) {
    let mut position: HashMap<&str, usize> = HashMap::new();
    for (i, spec) in issues {
        if let Some(first) = position.insert(spec.card.id.as_str(), *i) {
            ctx.error(
                &at(&idx(key, *i), "id"),
                format!(
                    "duplicate issue id \"{}\" (also {key}[{first}])",
                    spec.card.id
                ),
            );
        }
    }
    for (i, spec) in issues {
        for (d, dep) in spec.depends_on.iter().enumerate() {
            let path = idx(&at(&idx(key, *i), "depends_on"), d);
            if dep == &spec.card.id {
                ctx.error(&path, format!("issue \"{dep}\" depends on itself"));
            } else if !position.contains_key(dep.as_str()) {
                ctx.error(
                    &path,
                    format!("unknown issue id \"{dep}\" (not an issue of this epic)"),
                );
            }
        }
    }
    for cycle in find_cycles(issues.iter().map(|(_, s)| s)) {
        let first = cycle[0].as_str();
        let at_index = position.get(first).copied().unwrap_or(0);
        let mut shown = cycle.clone();
        shown.push(cycle[0].clone());
        ctx.error(
            &at(&idx(key, at_index), "depends_on"),
            format!("dependency cycle: {}", shown.join(" -> ")),
        );
    }
}

/// Every elementary dependency cycle found by a depth-first search, each reported once,
/// starting from its smallest id, following `depends_on` edges.
fn find_cycles<'a>(issues: impl Iterator<Item = &'a IssueSpec>) -> Vec<Vec<String>> {
    let issues: Vec<&IssueSpec> = issues.collect();
    let graph: HashMap<&str, Vec<&str>> = issues
        .iter()
        .map(|s| {
            (
                s.card.id.as_str(),
                s.depends_on
                    .iter()
                    .map(String::as_str)
                    .filter(|d| *d != s.card.id)
                    .collect(),
            )
        })
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Finished,
    }
    let mut marks: HashMap<&str, Mark> = graph.keys().map(|k| (*k, Mark::New)).collect();
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    for start in issues.iter().map(|s| s.card.id.as_str()) {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS: stack of (node, next edge index).
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::Active);
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let edges = &graph[node];
            if *next < edges.len() {
                let target = edges[*next];
                *next += 1;
                match marks.get(target).copied() {
                    Some(Mark::New) => {
                        marks.insert(target, Mark::Active);
                        stack.push((target, 0));
                    }
                    Some(Mark::Active) => {
                        let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[from..].iter().map(|(n, _)| n.to_string()).collect();
                        let min = (0..cycle.len()).min_by_key(|i| &cycle[*i]).unwrap_or(0);
                        cycle.rotate_left(min);
                        if seen.insert(cycle.clone()) {
                            found.push(cycle);
                        }
                    }
                    _ => {}
                }
            } else {
                marks.insert(node, Mark::Finished);
                stack.pop();
            }
        }
    }
    found
}

/// Reads a rock and the list of its epics.
pub(crate) fn rock(ctx: &mut Reader, value: &Value, stem: &str, department: &str) -> Option<Rock> {
    let obj = as_object(ctx, value, "")?;
    ctx.unknown_keys(obj, "", &keys(&[CARD_KEYS, ROCK_KEYS]));
    let card = card_base(ctx, obj, "", CardKind::Rock, stem);
    let mut epics = Vec::new();
    match obj.get("epics") {
        Some(Value::Array(items)) => {
            if items.is_empty() {
                ctx.warn("epics", "the rock lists no epics");
            }
            for (i, item) in items.iter().enumerate() {
                let p = idx("epics", i);
                match item {
                    Value::String(name) => epics.push(RockEpic {
                        epic: name.clone(),
                        department: card.owner_department.clone(),
                    }),
                    Value::Object(e) => {
                        ctx.unknown_keys(e, &p, &["epic", "department"]);
                        if let Some(epic) = ctx.req_str(e, &p, "epic") {
                            epics.push(RockEpic {
                                epic,
                                department: ctx
                                    .opt_str(e, &p, "department")
                                    .unwrap_or_else(|| card.owner_department.clone()),
                            });
                        }
                    }
                    other => ctx.error(
                        &p,
                        format!(
                            "expected {{\"epic\": name, \"department\": dept}}, found {}",
                            json_kind(other)
                        ),
                    ),
                }
            }
        }
        None | Some(Value::Null) => ctx.error(
            "epics",
            "required field is missing (expected a list of {\"epic\", \"department\"})",
        ),
        Some(other) => ctx.wrong_type("epics", "a list of epics", other),
    }
    Some(Rock {
        stem: stem.to_string(),
        department: department.to_string(),
        file: ctx.file.clone(),
        task: ctx.opt_text(obj, "", "task"),
        card,
        epics,
    })
}
