//! What the CLI's `errsnap runs` and `errsnap releases` show, as pages:
//! each process's run and how it ended (`/runs`: exited, crashed,
//! abnormal with its reason, e.g. oom-kill; still running), and each
//! release's crash-free runs and the groups new or regressed in it
//! (`/releases`, each count a link to those groups).

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use errsnap::db::{RunRow, RunStatus};
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::{clean_line, enc, time, when};
use crate::output::bytes;
use crate::serve::Shared;

/// Runs shown, newest first.
const RUNS_SHOWN: usize = 200;

/// A run's end, as a badge: how it ended, and why when known.
fn ending(r: &RunRow) -> Markup {
    let (class, label) = match r.status {
        RunStatus::Exited => ("exited", "exited"),
        RunStatus::Crashed => ("crashed", "crashed"),
        RunStatus::Abnormal => ("abnormal", "ended abnormally"),
        RunStatus::Running => ("running", "running"),
        _ => ("unknown", "unknown"),
    };
    html! {
        span class={"badge run " (class)} { (label) }
        @if let Some(why) = &r.end_reason { " " code.reason { (clean_line(why, 60)) } }
    }
}

/// `GET /runs`.
pub(crate) async fn runs(State(app): State<Shared>) -> Response {
    let now = crate::output::now_ms();
    app.page(move |db, app| {
        let runs = db.runs(RUNS_SHOWN)?;
        let body = html! {
            h1 { "Runs" }
            p.muted { "One per process that opened the database, newest first (at most " (RUNS_SHOWN) ")." }
            @if runs.is_empty() { p.muted { "No run was recorded." } }
            @else {
                table.runs #runs {
                    thead { tr { th.num { "Run" } th { "Ended" } th { "Started" } th { "Lasted" } th { "Host" } th.num { "Pid" }
                        th { "Release" } th.num { "Last RSS" } th.num { "Last CPU" } th.num { "Memory limit" } } }
                    tbody { @for r in &runs {
                        tr {
                            td.num { (r.id) }
                            td { (ending(r)) }
                            td { (when(r.started_at, now)) }
                            td { (lasted(r, now)) }
                            td { (clean_line(r.hostname.as_deref().unwrap_or("-"), 40)) }
                            td.num { (r.pid) }
                            td { @match &r.release {
                                Some(rel) => a href={"/?release=" (enc(rel))} { (clean_line(rel, 40)) },
                                None => "-",
                            } }
                            td.num { (r.last_rss_bytes.map_or("-".into(), bytes)) }
                            td.num { (r.last_cpu_percent.map_or("-".into(), |c| format!("{c:.1} %"))) }
                            td.num { (r.memory_max_bytes.map_or("-".into(), bytes)) }
                        }
                    } }
                }
            }
        };
        Ok(Html(layout::page(app, "Runs", Nav::Runs, "", body).into_string()).into_response())
    })
    .await
}

/// How long a run lasted (or has lasted, still running).
fn lasted(r: &RunRow, now: i64) -> String {
    let end = r.ended_at.unwrap_or(now);
    let s = (end - r.started_at).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// `GET /releases`.
pub(crate) async fn releases(State(app): State<Shared>) -> Response {
    let now = crate::output::now_ms();
    app.page(move |db, app| {
        let releases = db.releases()?;
        let body = html! {
            h1 { "Releases" }
            p.muted { "Crash-free runs per release (exited, of those that ended), and the groups first seen or come back in each." }
            @if releases.is_empty() { p.muted { "No release was recorded: set ERRSNAP_RELEASE (or .release(..))." } }
            @else {
                table.releases #releases {
                    thead { tr { th { "Release" } th.num { "Runs" } th.num { "Crash-free" } th.num { "Crashed" } th.num { "Abnormal" }
                        th.num { "Running" } th.num { "New groups" } th.num { "Regressed" } th { "Seen" } } }
                    tbody { @for r in &releases {
                        tr {
                            td { (clean_line(&r.release, 60)) }
                            td.num { (r.runs) }
                            td.num { (r.crash_free_percent.map_or("-".into(), |p| format!("{p:.1} %"))) }
                            td.num.failed[r.crashed > 0] { (r.crashed) }
                            td.num { (r.abnormal) }
                            td.num { (r.running) }
                            td.num { @if r.new_groups > 0 { a href={"/?new_in=" (enc(&r.release))} { (r.new_groups) } } @else { "0" } }
                            td.num { (r.regressed_groups) }
                            td { @if let Some(t) = r.last_seen { (when(t, now)) } @else { "-" }
                                 @if let Some(t) = r.first_seen { " " span.muted { "since " (time(t)) } } }
                        }
                    } }
                }
            }
        };
        Ok(Html(layout::page(app, "Releases", Nav::Releases, "", body).into_string()).into_response())
    })
    .await
}
