//! Stats (`/stats`): events per hour, per level and logger, the top
//! groups, alert deliveries per channel (pending, failed, the last error),
//! losses, and the database's size.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use maud::html;

use super::groups::status_badge;
use super::layout::{self, Nav};
use super::{clean_line, when};
use crate::output::bytes;
use crate::serve::charts::{self, HOUR};
use crate::serve::Shared;

/// `GET /stats`.
pub(crate) async fn page(State(app): State<Shared>) -> Response {
    let now = crate::output::now_ms();
    app.page(move |db, app| {
        let end = charts::hour_end(now);
        let hourly: Vec<(i64, u64)> = db
            .hourly(None, end - 48 * HOUR, end)?
            .iter()
            .map(|h| (h.hour_ms, h.count))
            .collect();
        let per_hour = charts::bucket(&hourly, end, HOUR, 48);
        let labels = charts::labels(end, HOUR, 48, 16);
        let s = db.stats(10)?;
        let deliveries = db.deliveries()?;
        let body = html! {
            h1 { "Stats" }
            dl.facts.summary {
                dt { "Events" } dd #events { (s.events) }
                dt { "Groups" } dd { (s.groups) }
                dt { "Database" } dd { (bytes(s.file_bytes)) " on disk, " (bytes(s.used_bytes)) " in use" }
            }
            figure { figcaption { "Events per hour, last 48 hours" }
                (charts::bars(&per_hour, &labels, 720, 110, "events per hour")) }
            section.values {
                div { h3 { "By level" } table.kv { tbody { @for (k, v) in &s.by_level { tr { th { (k) } td.num { (v) } } } } } }
                div { h3 { "By logger" } table.kv { tbody { @for (k, v) in s.by_logger.iter().take(20) { tr { th { (clean_line(k, 60)) } td.num { (v) } } } } } }
                div { h3 { "Losses and counters" }
                    @if s.counters.is_empty() { p.muted { "nothing lost" } }
                    table.kv { tbody { @for (k, v) in &s.counters { tr { th { (clean_line(k, 60)) } td.num { (v) } } } } } }
            }
            h2 { "Alert deliveries" }
            @if deliveries.is_empty() { p.muted { "No alert was made." } }
            @else {
                table.deliveries #deliveries {
                    thead { tr { th { "Channel" } th.num { "Pending" } th.num { "Failed" } th.num { "Sent" } th { "Last error" } } }
                    tbody { @for d in &deliveries {
                        tr { td { (clean_line(&d.channel, 40)) } td.num { (d.pending) } td.num.failed[d.failed > 0] { (d.failed) } td.num { (d.sent) }
                             td { @if let Some(e) = &d.last_error { (clean_line(e, 300))
                                  @if let Some(t) = d.last_error_at { " " span.muted { "(" (when(t, now)) ")" } } } } }
                    } }
                }
            }
            h2 { "Top groups" }
            table.groups { tbody { @for g in &s.top_groups {
                tr { td { (status_badge(g.status)) } td { a href={"/groups/" (g.id)} { (clean_line(&g.title, 120)) } } td.num { (g.count) } td { (when(g.last_seen, now)) } }
            } } }
        };
        Ok(Html(layout::page(app, "Stats", Nav::Stats, "", body).into_string()).into_response())
    })
    .await
}
