//! What the CLI's `errsnap runs` and `errsnap releases` show, as pages:
//! each process's run and how it ended (`/runs`: exited, crashed,
//! abnormal with its reason, e.g. oom-kill; still running; `/runs/{id}`:
//! its flight recorder charted up to its end), and each
//! release's crash-free runs and the groups new or regressed in it
//! (`/releases`, each count a link to those groups).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use errsnap::db::{describe_trend, RunRow, RunSample, RunStatus};
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::{clean_line, enc, error_page, time, when};
use crate::output::bytes;
use crate::serve::charts;
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
                            td.num { a href={"/runs/" (r.id)} { (r.id) } }
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

/// The readings a run's page charts at most (its last ones, every n-th
/// when there are more).
const POINTS: usize = 600;
/// The span of a run's page: its last hour.
const SPAN_MS: i64 = 3_600_000;

/// `GET /runs/{id}`: one run's flight recorder, charted up to its end.
pub(crate) async fn run(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return super::bad_request("run", &id, "expected a run number");
    };
    let now = crate::output::now_ms();
    app.page(move |db, app| {
        let Some(r) = db.run(id)? else {
            return Ok(error_page(StatusCode::NOT_FOUND, &format!("no run {id}")));
        };
        let end = r.ended_at.unwrap_or(now);
        let all = db.run_samples(id, end - SPAN_MS, end + 1_000)?;
        let step = all.len().div_ceil(POINTS).max(1);
        let shown: Vec<&RunSample> = all.iter().rev().step_by(step).rev().collect();
        let last = all.last().map_or(end, |s| s.at_ms);
        let recent: Vec<RunSample> = all
            .iter()
            .filter(|s| s.at_ms >= last - errsnap::db::TREND_WINDOW_MS)
            .cloned()
            .collect();
        let words = describe_trend(&recent);
        let series = |f: fn(&RunSample) -> Option<f64>| -> Vec<(i64, f64)> {
            shown.iter().filter_map(|s| Some((s.at_ms, f(s)?))).collect()
        };
        let rss = series(|s| s.rss_bytes.map(|v| v as f64));
        let cpu = series(|s| s.cpu_percent);
        let fds = series(|s| s.open_fds.map(|v| v as f64));
        let cg = series(|s| s.cgroup_memory_percent());
        let body = html! {
            p.crumbs { a href="/runs" { "Runs" } " › " "run " (id) }
            h1 { "Run " (id) " " (ending(&r)) }
            dl.facts {
                dt { "Host" } dd { (clean_line(r.hostname.as_deref().unwrap_or("-"), 60)) ", pid " (r.pid) }
                dt { "Release" } dd { (clean_line(r.release.as_deref().unwrap_or("-"), 60)) }
                dt { "Started" } dd { (time(r.started_at)) " UTC (" (when(r.started_at, now)) ")" }
                dt { "Lasted" } dd { (lasted(&r, now)) }
                @if let Some(m) = r.memory_max_bytes { dt { "Memory limit" } dd { (bytes(m)) } }
            }
            @if all.is_empty() {
                p.muted { "No flight-recorder readings (ERRSNAP_HEARTBEAT_SECS; kept ERRSNAP_RETENTION_RUN_SAMPLES_DAYS days)." }
            } @else {
                @if !words.is_empty() {
                    h3 { "Its last minutes" }
                    ul.trend { @for w in &words { li { (clean_line(w, 200)) } } }
                }
                p.muted { (all.len()) " readings of its last hour; each chart's right edge is "
                    @match r.status { RunStatus::Running => "the last reading", _ => "its end: " }
                    @if r.status != RunStatus::Running { (ending(&r)) } "." }
                section.charts {
                    figure { figcaption { "RSS" } (charts::line(&rss, 480, 96, "RSS", |v| bytes(v as u64))) }
                    figure { figcaption { "CPU" } (charts::line(&cpu, 480, 96, "CPU", |v| format!("{v:.1} %"))) }
                    figure { figcaption { "Open files" } (charts::line(&fds, 480, 96, "open files", |v| format!("{v:.0}"))) }
                    @if !cg.is_empty() {
                        figure { figcaption { "cgroup memory, share of its limit" }
                            (charts::line(&cg, 480, 96, "cgroup memory", |v| format!("{v:.0} %"))) }
                    }
                }
            }
        };
        Ok(Html(layout::page(app, &format!("Run {id}"), Nav::Runs, "", body).into_string()).into_response())
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
