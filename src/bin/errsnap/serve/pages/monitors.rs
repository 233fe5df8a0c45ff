//! What the CLI's `errsnap monitors` shows, as a page (`/monitors`): each
//! monitor's schedule, whether it is failing, when its next run is due,
//! and its latest runs as a strip (oldest to newest), each run's status,
//! times and reason in its title.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use errsnap::db::{CheckInRow, MonitorRow};
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::{clean_line, time, when};
use crate::serve::Shared;

/// Runs shown per monitor.
const RUNS_SHOWN: usize = 30;

fn schedule(m: &MonitorRow) -> String {
    match (&m.crontab, m.every_ms) {
        (Some(tab), _) => format!("{tab} ({})", m.zone.as_deref().unwrap_or("UTC")),
        (None, Some(ms)) => format!(
            "every {}",
            humantime::format_duration(std::time::Duration::from_millis(ms.max(0) as u64))
        ),
        _ => "-".to_owned(),
    }
}

/// One run as a cell of the strip: its status as a class and a letter,
/// the rest in its title.
fn cell(r: &CheckInRow) -> Markup {
    let (class, mark) = match r.status.as_str() {
        "ok" => ("ok", "✓"),
        "error" => ("error", "✗"),
        "timeout" => ("timeout", "!"),
        "missed" => ("missed", "·"),
        _ => ("running", "…"),
    };
    let at = r.started_at.or(r.expected_at).map(time).unwrap_or_default();
    let mut title = format!("{} {}", r.status, at);
    if let Some(ms) = r.duration_ms {
        title.push_str(&format!(", {:.1} s", ms as f64 / 1000.0));
    }
    if let Some(why) = &r.reason {
        title.push_str(": ");
        title.push_str(&clean_line(why, 200));
    }
    html! { span class={"run " (class)} title=(title) { (mark) } }
}

/// `GET /monitors`.
pub(crate) async fn page(State(app): State<Shared>) -> Response {
    let now = crate::output::now_ms();
    app.page(move |db, app| {
        let monitors = db.monitors(RUNS_SHOWN)?;
        let body = html! {
            h1 { "Monitors" }
            p.muted { "Jobs that should run: a run that does not start within its margin, runs too long, or whose process dies is raised as an event of the logger monitors." }
            @if monitors.is_empty() { p.muted { "No monitor was declared (EventLogger::monitor, or errsnap monitor run)." } }
            @else {
                table.monitors #monitors {
                    thead { tr { th { "Monitor" } th { "Schedule" } th { "State" } th { "Next expected" } th { "Latest runs" } th { "Last failure" } } }
                    tbody { @for m in &monitors {
                        tr {
                            td { code { (clean_line(&m.slug, 64)) } }
                            td { (clean_line(&schedule(m), 80)) }
                            td { @if m.failing { span.badge.run.crashed { "failing" } } @else { span.badge.run.exited { "ok" } } }
                            td { @match m.next_expected_at { Some(t) => (when(t, now)), None => "-" } }
                            td.strip { @for r in m.runs.iter().rev() { (cell(r)) } }
                            td { (clean_line(m.runs.iter().find_map(|r| r.reason.as_deref()).unwrap_or("-"), 120)) }
                        }
                    } }
                }
            }
        };
        Ok(Html(layout::page(app, "Monitors", Nav::Monitors, "", body).into_string()).into_response())
    })
    .await
}
