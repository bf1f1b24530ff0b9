//! `orket runs`: the most recent runs, newest first.

use crate::project::Project;
use anyhow::Result;
use orket_store::RunRecord;
use serde::Serialize;
use std::process::ExitCode;

/// How many characters of a run's reason the table shows.
const REASON_WIDTH: usize = 60;

/// A run with the number of turns it has taken (one row of `orket runs`).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run as stored.
    #[serde(flatten)]
    pub run: RunRecord,
    /// How many turns the store holds for it.
    pub turns: usize,
}

/// Prints the `limit` most recent runs as a table (or as JSON); never creates the store.
pub async fn run(project: &Project, limit: i64, json: bool) -> Result<ExitCode> {
    let Some(store) = project.existing_store().await? else {
        if json {
            println!("[]");
        } else {
            println!("No runs yet (no store at {}).", project.store_name());
        }
        return Ok(ExitCode::SUCCESS);
    };
    let mut summaries = Vec::new();
    for run in store.list_runs(limit).await? {
        let turns = store.list_turns(&run.id).await?.len();
        summaries.push(RunSummary { run, turns });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
    } else {
        print!("{}", render(&summaries));
    }
    Ok(ExitCode::SUCCESS)
}

/// The runs as an aligned table, one line per run, in the order given.
pub fn render(runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        return "No runs yet.\n".to_string();
    }
    let header = [
        "ID", "KIND", "TARGET", "STATUS", "STARTED", "DURATION", "TURNS", "REASON",
    ]
    .map(str::to_string)
    .to_vec();
    let rows = runs.iter().map(|s| {
        let run = &s.run;
        vec![
            run.id.clone(),
            run.kind.to_string(),
            run.target.clone(),
            run.status.to_string(),
            display_timestamp(&run.started_at),
            run_duration(run),
            s.turns.to_string(),
            run.reason
                .as_deref()
                .map(|r| truncate_chars(&one_line(r), REASON_WIDTH))
                .unwrap_or_default(),
        ]
    });
    // TURNS is a number: right-aligned.
    aligned(std::iter::once(header).chain(rows).collect(), &[6])
}

/// `rows` (the header first) as columns two spaces apart, the columns `right` right-aligned,
/// trailing spaces trimmed: the tables of `orket runs` and `orket webhooks`.
pub fn aligned(rows: Vec<Vec<String>>, right: &[usize]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            if right.contains(&i) {
                line.push_str(&format!("{cell:>width$}"));
            } else {
                line.push_str(&format!("{cell:<width$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How long the run took (`ended_at - started_at`), `running` while it goes, `?` when a
/// timestamp cannot be read.
pub fn run_duration(run: &RunRecord) -> String {
    match &run.ended_at {
        None if run.status.is_final() => "?".to_string(),
        None => "running".to_string(),
        Some(ended) => match (parse_timestamp(&run.started_at), parse_timestamp(ended)) {
            (Some(start), Some(end)) => format_duration(end - start),
            _ => "?".to_string(),
        },
    }
}

/// A duration in milliseconds, short: `850ms`, `42s`, `3m05s`, `1h02m03s`.
pub fn format_duration(millis: i64) -> String {
    if millis < 0 {
        return "?".to_string();
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let secs = millis / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// A stored timestamp for people: `2026-11-22 04:16:22` (UTC); anything else as it is.
pub fn display_timestamp(ts: &str) -> String {
    match ts.get(..19) {
        Some(head) if parse_timestamp(ts).is_some() && ts.ends_with('Z') => {
            head.replacen('T', " ", 1)
        }
        _ => ts.to_string(),
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp
/// (`2026-11-22T04:16:22.123Z`, fraction and offset optional); `None` if it is not one.
pub fn parse_timestamp(ts: &str) -> Option<i64> {
    fn number(s: &str) -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
    let b = ts.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (
        number(ts.get(0..4)?)?,
        number(ts.get(5..7)?)?,
        number(ts.get(8..10)?)?,
    );
    let (hour, minute, second) = (
        number(ts.get(11..13)?)?,
        number(ts.get(14..16)?)?,
        number(ts.get(17..19)?)?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = ts.get(19..)?;
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3: String = fraction[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = number(&first3)?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let (sign, hhmm) = match rest.as_bytes().first()? {
                b'+' => (1, &rest[1..]),
                b'-' => (-1, &rest[1..]),
                _ => return None,
            };
            let (hh, mm) = hhmm.split_once(':')?;
            if hh.len() != 2 || mm.len() != 2 {
                return None;
            }
            sign * (number(hh)? * 60 + number(mm)?)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// At most `max` characters of `text` (cut on a character boundary, ending in `…` when cut).
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` on one line: line breaks and tabs become single spaces.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use orket_core::{RunKind, RunStatus};

    fn run(id: &str, status: RunStatus, ended: Option<&str>, reason: Option<&str>) -> RunRecord {
        let mut run = RunRecord::new(
            id,
            RunKind::Epic,
            "hello_cli",
            "build-hello_cli",
            "core",
            "/w",
        );
        run.started_at = "2026-11-22T04:16:22.123Z".to_string();
        run.status = status;
        run.ended_at = ended.map(str::to_string);
        run.reason = reason.map(str::to_string);
        run
    }

    #[test]
    fn timestamps_parse_to_epoch_millis() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_timestamp("1970-01-02T00:00:01.5Z"), Some(86_401_500));
        assert_eq!(
            parse_timestamp("2000-03-01T00:00:00Z"),
            Some(951_868_800_000)
        );
        assert_eq!(
            parse_timestamp("2026-11-22T06:16:22.123+02:00"),
            parse_timestamp("2026-11-22T04:16:22.123Z")
        );
        for bad in [
            "",
            "yesterday",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-11-22T04:16:22",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(format_duration(850), "850ms");
        assert_eq!(format_duration(42_900), "42s");
        assert_eq!(format_duration(185_000), "3m05s");
        assert_eq!(format_duration(3_723_000), "1h02m03s");
        assert_eq!(format_duration(-5), "?");
        let done = run(
            "a",
            RunStatus::Completed,
            Some("2026-11-22T04:19:27.123Z"),
            None,
        );
        assert_eq!(run_duration(&done), "3m05s");
        assert_eq!(
            run_duration(&run("b", RunStatus::Running, None, None)),
            "running"
        );
        assert_eq!(
            run_duration(&run("c", RunStatus::Failed, Some("later"), None)),
            "?"
        );
    }

    #[test]
    fn truncation_never_splits_a_character() {
        let text = "é".repeat(100);
        let cut = truncate_chars(&text, 60);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate_chars("short", 60), "short");
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }

    #[test]
    fn the_table_aligns_columns_and_shortens_reasons() {
        let long = format!("stalled: {}", "ünïcödé ".repeat(20));
        let rows = [
            RunSummary {
                run: run("0000000b", RunStatus::Running, None, None),
                turns: 12,
            },
            RunSummary {
                run: run(
                    "0000000a",
                    RunStatus::Stalled,
                    Some("2026-11-22T04:16:23.000Z"),
                    Some(&long),
                ),
                turns: 3,
            },
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("ID        KIND  TARGET     STATUS"),
            "{text}"
        );
        assert!(
            lines[1].starts_with(
                "0000000b  epic  hello_cli  running  2026-11-22 04:16:22  running      12"
            ),
            "{text}"
        );
        assert!(
            lines[2].contains("stalled  2026-11-22 04:16:22  877ms"),
            "{text}"
        );
        let reason = lines[2].split("  3  ").nth(1).unwrap();
        assert_eq!(reason.chars().count(), REASON_WIDTH, "{text}");
        assert!(reason.starts_with("stalled: ünïcödé") && reason.ends_with('…'));
        assert_eq!(render(&[]), "No runs yet.\n");
    }
}
