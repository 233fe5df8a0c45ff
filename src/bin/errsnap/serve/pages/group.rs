//! One group (`/groups/{id}`): its history by hour and by day, releases,
//! environments and hosts, CPU and memory across its occurrences, its
//! latest event in full, and the status actions (`POST
//! /groups/{id}/status`, the same store call as `errsnap resolve`).

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::{Form, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use errsnap::db::{GroupRow, GroupStatus, GroupValue, Sample};
use maud::{html, Markup};

use super::groups::status_badge;
use super::layout::{self, Nav};
use super::{clean_line, error_page, time, when};
use crate::output::bytes;
use crate::serve::charts::{self, DAY, HOUR};
use crate::serve::{App, Shared};

/// `GET /groups/{id}`.
pub(crate) async fn page(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return super::bad_request("group", &id, "expected a group number");
    };
    let now = crate::output::now_ms();
    app.page(move |db, app| {
        let Some(g) = db.group(id)? else {
            return Ok(error_page(StatusCode::NOT_FOUND, &format!("no group {id}")));
        };
        let end = charts::hour_end(now);
        let pairs: Vec<(i64, u64)> = db
            .hourly(Some(&[id]), end - 30 * DAY, end)?
            .iter()
            .map(|h| (h.hour_ms, h.count))
            .collect();
        let values = db.group_values(id)?;
        let samples = db.samples(id, 200)?;
        let latest = db.event(&g.last_event)?;
        let trend = match &latest {
            Some(e) => db.event_trend(&e.row.id)?,
            None => None,
        };
        let body = html! {
            (header(app, &g, now))
            section.charts {
                figure { figcaption { "Occurrences per hour, last 48 hours" }
                    (charts::bars(&charts::bucket(&pairs, end, HOUR, 48), &charts::labels(end, HOUR, 48, 16), 480, 96, "per hour")) }
                figure { figcaption { "Occurrences per day, last 30 days" }
                    (charts::bars(&charts::bucket(&pairs, end, DAY, 30), &charts::labels(end, DAY, 30, 10), 480, 96, "per day")) }
            }
            (super::triage::section(db, app, &g)?)
            (value_tables(&values, now))
            (resources(&samples))
            @match &latest {
                Some(e) => (super::detail::event(app, e, trend.as_ref(), now)),
                None => p.muted { "The latest event was purged." },
            }
        };
        let title = clean_line(&g.title, 80);
        Ok(Html(layout::page(app, &title, Nav::Groups, "", body).into_string()).into_response())
    })
    .await
}

fn header(app: &App, g: &GroupRow, now: i64) -> Markup {
    html! {
        p.crumbs { a href="/" { "Groups" } " › group " (g.id) }
        h1.group-title { (clean_line(&g.title, 300)) }
        p.group-status { (status_badge(g.status)) " "
            span class={"level " (g.level.as_str())} { (g.level.as_str()) } " "
            @if let Some(r) = &g.regressed_in { span.badge.regressed { "regressed in " (clean_line(r, 40)) } " " }
            @if now - g.first_seen < DAY { span.badge.new { "new" } " " }
            @if let Some(c) = &g.culprit { code.culprit { (clean_line(c, 200)) } }
        }
        dl.facts.summary {
            dt { "Occurrences" } dd #count { (g.count) }
            dt { "First seen" } dd { (when(g.first_seen, now)) " · " (time(g.first_seen)) }
            dt { "Last seen" } dd { (when(g.last_seen, now)) " · " (time(g.last_seen)) }
            @if let Some(r) = &g.first_release { dt { "New in" } dd { (clean_line(r, 60)) } }
            dt { "Logger" } dd { (clean_line(&g.logger, 60)) }
            dt { "Fingerprint" } dd { code { (clean_line(&g.fingerprint, 64)) } }
        }
        p { a href={"/events?group=" (g.id)} { "All " (g.count) " events of this group →" } }
        @if !app.read_only { (actions(app, g)) }
    }
}

/// The status buttons: one form each, with the CSRF token.
fn actions(app: &App, g: &GroupRow) -> Markup {
    let buttons: &[(GroupStatus, &str)] = match g.status {
        GroupStatus::Open => &[
            (GroupStatus::Resolved, "Resolve"),
            (
                GroupStatus::ResolvedInNextRelease,
                "Resolve in next release",
            ),
            (GroupStatus::Muted, "Mute"),
        ],
        GroupStatus::Muted => &[
            (GroupStatus::Open, "Unmute"),
            (GroupStatus::Resolved, "Resolve"),
        ],
        _ => &[(GroupStatus::Open, "Reopen"), (GroupStatus::Muted, "Mute")],
    };
    html! {
        div.actions {
            @for (status, label) in buttons {
                form method="post" action={"/groups/" (g.id) "/status"} {
                    input type="hidden" name="csrf" value=(app.csrf);
                    input type="hidden" name="status" value=(status.as_str());
                    button type="submit" name="action" value=(status.as_str()) { (label) }
                }
            }
        }
    }
}

fn value_tables(values: &[GroupValue], now: i64) -> Markup {
    html! {
        section.values {
            @for (key, title) in [("release", "Releases"), ("environment", "Environments"), ("host", "Hosts")] {
                @let rows: Vec<&GroupValue> = values.iter().filter(|v| v.key == key).collect();
                div {
                    h3 { (title) }
                    @if rows.is_empty() { p.muted { "none recorded" } }
                    @else {
                        table.kv { tbody { @for v in rows.iter().take(20) {
                            tr { th { (clean_line(&v.value, 60)) } td.num { (v.count) } td { (when(v.last_seen, now)) } }
                        } } }
                    }
                }
            }
        }
    }
}

fn resources(samples: &[Sample]) -> Markup {
    let rss: Vec<(i64, f64)> = samples.iter().map(|s| (s.ts, s.rss_bytes as f64)).collect();
    let cpu: Vec<(i64, f64)> = samples
        .iter()
        .filter_map(|s| s.cpu_percent.map(|c| (s.ts, c)))
        .collect();
    html! {
        @if !samples.is_empty() {
            section.charts {
                figure { figcaption { "Resident memory across the last " (samples.len()) " occurrences" }
                    (charts::line(&rss, 480, 96, "RSS", |v| bytes(v as u64))) }
                figure { figcaption { "Process CPU across the same occurrences" }
                    (charts::line(&cpu, 480, 96, "CPU", |v| format!("{v:.1} %"))) }
            }
        }
    }
}

/// `POST /groups/{id}/status` (form fields `status` and `csrf`).
pub(crate) async fn set_status(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let id = match super::action::checks(&app, &id, &form) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let given = form.get("status").map(String::as_str).unwrap_or("");
    let status = match GroupStatus::from_str(given) {
        Ok(s) => s,
        Err(e) => return super::bad_request("status", given, &e),
    };
    app.page(move |db, _| {
        if !db.set_group_status(id, status)? {
            return Ok(error_page(StatusCode::NOT_FOUND, &format!("no group {id}")));
        }
        Ok((
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/groups/{id}"))],
        )
            .into_response())
    })
    .await
}
