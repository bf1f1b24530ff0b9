//! `orket show <run-id>`: one run's timeline — its turns with their tool calls and results,
//! interleaved with the run's events.

use super::runs::{display_timestamp, one_line, run_duration, truncate_chars};
use crate::project::Project;
use anyhow::{bail, Result};
use orket_core::tools::ToolResult;
use orket_core::turn::{Candidate, TurnStep};
use orket_core::{Event, ToolCall};
use orket_store::{EventRecord, RunRecord, Store, TurnRecord};
use serde_json::{json, Value};
use std::process::ExitCode;

/// Events read per query.
const EVENT_PAGE: i64 = 1000;
/// How many characters of a tool call's arguments the timeline shows.
const ARGS_WIDTH: usize = 100;
/// How many characters of an event's data the timeline shows.
const DATA_WIDTH: usize = 160;
/// How many characters of a failed turn's error or of a reply without tool calls are shown.
const TEXT_WIDTH: usize = 160;
/// Events that only mark a turn's start and end: the turn line already says it.
fn is_turn_marker(event: &Event) -> bool {
    matches!(event, Event::TurnStart { .. } | Event::TurnComplete { .. })
}

/// Prints the run's timeline (or `{run, turns, events}` as JSON); never creates the store.
pub async fn run(project: &Project, run_id: &str, json: bool) -> Result<ExitCode> {
    let Some(store) = project.existing_store().await? else {
        let path = project.store_name();
        bail!("run {run_id} not found (no store at {path})");
    };
    let Some(run) = store.get_run(run_id).await? else {
        bail!("run {run_id} not found");
    };
    let turns = store.list_turns(run_id).await?;
    let events = all_events(&*store, run_id).await?;
    if json {
        let doc = json!({"run": run, "turns": turns, "events": events});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render(&run, &turns, &events));
    }
    Ok(ExitCode::SUCCESS)
}

/// Every event of the run, in order.
pub(crate) async fn all_events(store: &dyn Store, run_id: &str) -> Result<Vec<EventRecord>> {
    let mut events: Vec<EventRecord> = Vec::new();
    loop {
        let after = events.last().map_or(0, |e| e.id);
        let page = store.list_events(Some(run_id), after, EVENT_PAGE).await?;
        let full = page.len() as i64 == EVENT_PAGE;
        events.extend(page);
        if !full {
            return Ok(events);
        }
    }
}

/// The run's header, then its turns (by seq) and events (in order), interleaved by time: an
/// event goes before the first turn that started after it.
pub fn render(run: &RunRecord, turns: &[TurnRecord], events: &[EventRecord]) -> String {
    let mut out = render_header(run, turns);
    out.push('\n');
    let mut events = events
        .iter()
        .filter(|e| !is_turn_marker(&e.event))
        .peekable();
    if turns.is_empty() && events.peek().is_none() {
        out.push_str("No turns or events recorded.\n");
        return out;
    }
    for turn in turns {
        while let Some(event) = events.next_if(|e| e.timestamp < turn.turn.started_at) {
            out.push_str(&render_event(event));
        }
        out.push_str(&render_turn(turn));
    }
    for event in events {
        out.push_str(&render_event(event));
    }
    out
}

/// Who, what and how the run went: id, target, build, workspace, status, reason, times,
/// tokens and the number of turns.
pub fn render_header(run: &RunRecord, turns: &[TurnRecord]) -> String {
    let tokens_in: i64 = turns.iter().map(|t| t.turn.tokens_in).sum();
    let tokens_out: i64 = turns.iter().map(|t| t.turn.tokens_out).sum();
    let ended = match &run.ended_at {
        Some(ended) => format!("{} ({})", display_timestamp(ended), run_duration(run)),
        None => run_duration(run),
    };
    let mut out = format!(
        "Run {} — {} {} [{}]\n",
        run.id, run.kind, run.target, run.status
    );
    if let Some(reason) = &run.reason {
        out.push_str(&format!("  reason:    {}\n", one_line(reason)));
    }
    out.push_str(&format!(
        "  build:     {} ({})\n",
        run.build_id, run.department
    ));
    out.push_str(&format!("  workspace: {}\n", run.workspace));
    out.push_str(&format!(
        "  started:   {}\n",
        display_timestamp(&run.started_at)
    ));
    out.push_str(&format!("  ended:     {ended}\n"));
    out.push_str(&format!(
        "  turns:     {}, tokens {tokens_in} in / {tokens_out} out\n",
        turns.len()
    ));
    out
}

/// `#seq issue seat/role model [via CLIENT] [review] status tokens [on worker W]` (the client
/// when the seat has a model client of its), then the candidates it drew, one line
/// per step (its call and result, or its correction), and the error of a failed turn (or the reply of a turn that called no tool).
pub fn render_turn(record: &TurnRecord) -> String {
    let turn = &record.turn;
    let review = if turn.review { " review" } else { "" };
    let worker = record
        .worker
        .as_deref()
        .map(|w| format!(" on worker {w}"))
        .unwrap_or_default();
    let client = turn
        .settings
        .as_ref()
        .and_then(|s| s["client"].as_str())
        .map(|c| format!(" via {c}"))
        .unwrap_or_default();
    let mut out = format!(
        "#{} {} {}/{} {}{client}{review} {} {} in / {} out{worker}\n",
        turn.seq,
        turn.issue_id,
        turn.seat,
        turn.role,
        turn.model,
        turn.status,
        turn.tokens_in,
        turn.tokens_out
    );
    if turn.candidates.len() > 1 {
        out.push_str(&render_candidates(&turn.candidates));
    }
    if turn.steps.is_empty() {
        render_calls(&mut out, turn);
    } else {
        for step in &turn.steps {
            out.push_str(&render_step(step));
        }
    }
    if let Some(error) = &turn.error {
        out.push_str(&format!(
            "    error: {}\n",
            truncate_chars(&one_line(error), TEXT_WIDTH)
        ));
    } else if turn.tool_calls.is_empty() && turn.steps.is_empty() {
        let reply = one_line(&turn.content);
        if reply.is_empty() {
            out.push_str("    no tool calls, empty reply\n");
        } else {
            out.push_str(&format!(
                "    no tool calls; reply: {}\n",
                truncate_chars(&reply, TEXT_WIDTH)
            ));
        }
    }
    out
}

/// A row stored before turns had steps: its calls, each with the result at its place.
fn render_calls(out: &mut String, turn: &orket_store::NewTurn) {
    for (i, call) in turn.tool_calls.iter().enumerate() {
        let args = render_args(call);
        let result = turn
            .tool_results
            .get(i)
            .map_or_else(|| "(no result)".to_string(), render_result);
        out.push_str(&format!("    {}{args} → {result}\n", call.name));
    }
    for extra in turn.tool_results.iter().skip(turn.tool_calls.len()) {
        out.push_str(&format!(
            "    (result without a call) {}\n",
            render_result(extra)
        ));
    }
}

/// `    step n: <call> <args> → <result>`, or what the step was corrected for; a content asked
/// for apart adds `(content asked for apart)`.
fn render_step(step: &TurnStep) -> String {
    let call = match &step.call {
        Some(call) => format!("{}{}", call.name, render_args(call)),
        None => "no tool call".to_string(),
    };
    let outcome = match (&step.result, &step.correction) {
        (_, Some(correction)) => format!(
            "corrected: {}",
            truncate_chars(&one_line(correction), TEXT_WIDTH)
        ),
        (Some(result), None) => render_result(result),
        (None, None) => "(no result)".to_string(),
    };
    let apart = if step.content_reply.is_some() {
        " (content asked for apart)"
    } else {
        ""
    };
    format!("    step {}: {call}{apart} → {outcome}\n", step.n)
}

/// `    candidates: 1 0/1, 2 1/1 chosen` — how each drawn candidate did against the fixture.
fn render_candidates(candidates: &[Candidate]) -> String {
    let each: Vec<String> = candidates
        .iter()
        .map(|c| {
            let chosen = if c.chosen { " chosen" } else { "" };
            format!("#{} {}/{} passed{chosen}", c.n, c.passed, c.total)
        })
        .collect();
    format!("    candidates: {}\n", each.join(", "))
}

/// A call's arguments as one short line (nothing when it has none).
fn render_args(call: &ToolCall) -> String {
    if call.args.is_empty() {
        String::new()
    } else {
        format!(
            " {}",
            truncate_chars(&Value::Object(call.args.clone()).to_string(), ARGS_WIDTH)
        )
    }
}

/// `  event <name> <issue or -> <compact data>`.
pub fn render_event(event: &EventRecord) -> String {
    let issue = event.issue_id.as_deref().unwrap_or("-");
    let data = match event.event.data() {
        Value::Null => String::new(),
        Value::Object(map) if map.is_empty() => String::new(),
        data => format!(" {}", truncate_chars(&compact(&data), DATA_WIDTH)),
    };
    format!("  event {} {issue}{data}\n", event.event.name())
}

/// A tool result: `ok`, or `error: <text>` (a refusal's text starts with its code).
pub fn render_result(result: &ToolResult) -> String {
    match result.error() {
        None => "ok".to_string(),
        Some(text) => format!("error: {}", one_line(text)),
    }
}

/// A value as one line of JSON (a string as its text).
fn compact(value: &Value) -> String {
    match value {
        Value::String(text) => one_line(text),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orket_core::{RunKind, RunStatus};
    use orket_store::NewTurn;

    fn run() -> RunRecord {
        let mut run = RunRecord::new(
            "abcd1234",
            RunKind::Epic,
            "hello_cli",
            "build-hello_cli",
            "core",
            "/tmp/ws",
        );
        run.started_at = "2026-11-22T04:16:00.000Z".to_string();
        run.ended_at = Some("2026-11-22T04:17:05.000Z".to_string());
        run.status = RunStatus::Completed;
        run.reason = Some("every issue is done".to_string());
        run
    }

    fn turn(seq: i64, started: &str, calls: Value, results: Value) -> TurnRecord {
        TurnRecord {
            id: seq,
            turn: NewTurn {
                run_id: "abcd1234".into(),
                seq,
                build_id: "build-hello_cli".into(),
                issue_id: "DEMO-1".into(),
                seat: "coder".into(),
                role: "developer".into(),
                model: "qwen".into(),
                review: seq == 2,
                messages: json!([]),
                content: "I will write it.".into(),
                tool_calls: serde_json::from_value(calls).unwrap(),
                tool_results: serde_json::from_value(results).unwrap(),
                tokens_in: 100 * seq,
                tokens_out: 10 * seq,
                status: "complete".into(),
                error: None,
                started_at: started.into(),
                ended_at: started.into(),
                steps: Vec::new(),
                candidates: Vec::new(),
                settings: None,
            },
            prev_hash: None,
            hash: None,
            worker: None,
        }
    }

    fn event(id: i64, ts: &str, name: &str, issue: Option<&str>, data: Value) -> EventRecord {
        EventRecord {
            id,
            run_id: Some("abcd1234".into()),
            timestamp: ts.into(),
            role: None,
            issue_id: issue.map(str::to_string),
            event: Event::from_parts(name, data).unwrap(),
        }
    }

    #[test]
    fn a_turn_with_steps_shows_each_step_and_its_candidates() {
        let mut record = turn(1, "2026-11-22T04:16:10.000Z", json!([]), json!([]));
        let step = |n: u32, call: Value, result: Value, correction: Option<&str>| TurnStep {
            call: Some(serde_json::from_value(call).unwrap()),
            result: serde_json::from_value(result).unwrap(),
            correction: correction.map(str::to_string),
            ..TurnStep::new(n, Some(2))
        };
        record.turn.steps = vec![
            TurnStep {
                content_reply: Some("```python\nx\n```".into()),
                ..step(
                    1,
                    json!({"name": "write_file", "args": {"path": "hello.py", "content": "x"}}),
                    json!({"ok": true, "path": "hello.py"}),
                    None,
                )
            },
            step(
                2,
                json!({"name": "write_file", "args": {"path": "hello.py", "content": "x"}}),
                Value::Null,
                Some("Step 2 went wrong: write_file repeats the previous step's call exactly.\nStep 3: reply with one tool call: update_issue_status (status: code_review)."),
            ),
            TurnStep::new(3, Some(2)),
        ];
        let candidate = |n: u32, passed: usize, chosen: bool| Candidate {
            n,
            seed: Some(7),
            steps: 3,
            passed,
            total: 1,
            ok: passed == 1,
            chosen,
            error: None,
        };
        record.turn.candidates = vec![candidate(1, 0, false), candidate(2, 1, true)];
        let text = render_turn(&record);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "    candidates: #1 0/1 passed, #2 1/1 passed chosen",
                "    step 1: write_file {\"path\":\"hello.py\",\"content\":\"x\"} (content asked for apart) → ok",
                "    step 2: write_file {\"path\":\"hello.py\",\"content\":\"x\"} → corrected: Step 2 went wrong: write_file repeats the previous step's call exactly. Step 3: reply with one tool call: update_issue_status (status: code_review).",
                "    step 3: no tool call → (no result)",
            ],
            "{text}"
        );
    }

    #[test]
    fn the_timeline_interleaves_events_with_turns_by_time() {
        let turns = [
            turn(
                1,
                "2026-11-22T04:16:10.000Z",
                json!([{"name": "write_file", "args": {"path": "hello.py"}},
                       {"name": "update_issue_status", "args": {"status": "code_review"}}]),
                json!([{"ok": true, "path": "hello.py"}, {"ok": true}]),
            ),
            turn(
                2,
                "2026-11-22T04:16:30.000Z",
                json!([{"name": "update_issue_status", "args": {"status": "done"}}]),
                json!([{"ok": false, "error": "ILLEGAL_TRANSITION: code_review → done needs\nreview", "code": "ILLEGAL_TRANSITION"}]),
            ),
        ];
        let events = [
            event(
                1,
                "2026-11-22T04:16:00.000Z",
                "session_start",
                None,
                json!({"epic": "hello_cli", "workspace": "/tmp/ws", "provider": "replay"}),
            ),
            event(
                2,
                "2026-11-22T04:16:10.000Z",
                "turn_start",
                Some("DEMO-1"),
                json!({"seq": 1, "seat": "coder"}),
            ),
            event(
                3,
                "2026-11-22T04:16:11.000Z",
                "status_change",
                Some("DEMO-1"),
                json!({"from": "in_progress", "to": "code_review"}),
            ),
            event(
                4,
                "2026-11-22T04:16:11.000Z",
                "turn_complete",
                Some("DEMO-1"),
                json!({"seq": 1, "calls": 2, "tokens_in": 100, "tokens_out": 10}),
            ),
            event(
                5,
                "2026-11-22T04:17:05.000Z",
                "session_end",
                None,
                json!({"status": "completed", "reason": "done", "turns": 2}),
            ),
        ];
        let text = render(&run(), &turns, &events);
        let timeline: Vec<&str> = text.lines().skip_while(|l| !l.is_empty()).skip(1).collect();
        assert_eq!(
            timeline,
            [
                "  event session_start - {\"epic\":\"hello_cli\",\"target\":null,\"workspace\":\"/tmp/ws\",\"provider\":\"replay\"}",
                "#1 DEMO-1 coder/developer qwen complete 100 in / 10 out",
                "    write_file {\"path\":\"hello.py\"} → ok",
                "    update_issue_status {\"status\":\"code_review\"} → ok",
                "  event status_change DEMO-1 {\"from\":\"in_progress\",\"to\":\"code_review\",\"wait_reason\":null}",
                "#2 DEMO-1 coder/developer qwen review complete 200 in / 20 out",
                "    update_issue_status {\"status\":\"done\"} → error: ILLEGAL_TRANSITION: code_review → done needs review",
                "  event session_end - {\"status\":\"completed\",\"reason\":\"done\",\"turns\":2}",
            ],
            "{text}"
        );
        assert!(
            text.starts_with("Run abcd1234 — epic hello_cli [completed]\n"),
            "{text}"
        );
        assert!(
            text.contains("  reason:    every issue is done\n"),
            "{text}"
        );
        assert!(
            text.contains("  ended:     2026-11-22 04:17:05 (1m05s)\n"),
            "{text}"
        );
        assert!(
            text.contains("  turns:     2, tokens 300 in / 30 out\n"),
            "{text}"
        );
    }

    #[test]
    fn a_turn_without_calls_shows_its_reply_or_error() {
        let mut t = turn(3, "2026-11-22T04:16:10.000Z", json!([]), json!([]));
        assert!(render_turn(&t).ends_with("    no tool calls; reply: I will write it.\n"));
        t.turn.status = "failed".into();
        t.turn.error = Some("model timed out".into());
        assert!(render_turn(&t).ends_with("    error: model timed out\n"));
        let t = turn(
            4,
            "2026-11-22T04:16:10.000Z",
            json!([{"name": "read_file", "args": {"path": "a"}}, {"name": "list_files", "args": {}}]),
            json!([{"ok": false, "error": "read_file: cannot read 'a'"}]),
        );
        let text = render_turn(&t);
        assert!(
            text.contains("    read_file {\"path\":\"a\"} → error: read_file: cannot read 'a'\n"),
            "{text}"
        );
        assert!(text.contains("    list_files → (no result)\n"), "{text}");
    }

    #[test]
    fn a_turn_served_by_a_seat_client_names_it() {
        let mut t = turn(2, "2026-11-22T04:16:10.000Z", json!([]), json!([]));
        assert!(render_turn(&t).starts_with("#2 DEMO-1 coder/developer qwen review "));
        t.turn.settings =
            Some(json!({"provider": "openai", "client": "openai http://127.0.0.1:8081/v1"}));
        let text = render_turn(&t);
        assert!(
            text.starts_with(
                "#2 DEMO-1 coder/developer qwen via openai http://127.0.0.1:8081/v1 review "
            ),
            "{text}"
        );
    }

    #[test]
    fn an_empty_run_says_so() {
        let mut r = run();
        r.status = RunStatus::Running;
        r.ended_at = None;
        r.reason = None;
        let text = render(&r, &[], &[]);
        assert!(text.contains("  ended:     running\n"), "{text}");
        assert!(!text.contains("reason"), "{text}");
        assert!(text.ends_with("No turns or events recorded.\n"), "{text}");
    }
}
