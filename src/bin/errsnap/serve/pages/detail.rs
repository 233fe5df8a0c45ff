//! One event in full, as the group page and the event page show it:
//! message, chain, stack (in-app frames emphasised, with source lines
//! from under the source roots), breadcrumbs, tags, extra, the snapshot,
//! the host and the alerts.

use errsnap::db::{EventDetail, EventTrend};
use errsnap::event::Frame;
use maud::{html, Markup};

use super::{clean, clean_line, time, when};
use crate::output::bytes;
use crate::serve::{charts, source, App};

/// In-app frames whose source is looked up (bounds the files read per
/// page).
const SOURCE_FRAMES: usize = 6;

// Long by design: one template, each page section in the order the page
// shows it; the sections with logic of their own (context, stack) are their
// own functions.
pub(crate) fn event(app: &App, e: &EventDetail, trend: Option<&EventTrend>, now: i64) -> Markup {
    let r = &e.row;
    html! {
        section.event {
            h2 { "Event " a href={"/events/" (r.id)} { code { (r.id) } } }
            dl.facts {
                dt { "When" } dd { (time(r.ts)) " UTC (" (when(r.ts, now)) ")" }
                dt { "Level" } dd { span class={"level " (r.level.as_str())} { (r.level.as_str()) } " " (r.kind.as_str()) }
                dt { "Logger" } dd { (clean_line(&r.logger, 80)) }
                @if let (Some(f), Some(l)) = (&r.file, r.line) {
                    dt { "Where" } dd { code { (clean_line(f, 200)) ":" (l) @if let Some(c) = e.column { ":" (c) } } }
                }
                dt { "Process" } dd { "pid " (r.pid) ", thread " (clean_line(r.thread.as_deref().unwrap_or("?"), 60)) " (" (e.thread_id) ")" }
                @if let Some(a) = &e.app_name { dt { "App" } dd { (clean_line(a, 80)) } }
                @if let Some(v) = &e.release { dt { "Release" } dd { (clean_line(v, 80)) } }
                @if let Some(v) = &e.environment { dt { "Environment" } dd { (clean_line(v, 80)) } }
                @if e.redactions > 0 { dt { "Redacted" } dd { (e.redactions) " secret(s) replaced before storing" } }
            }
            h3 { "Message" }
            pre.message { (clean(&r.message)) }
            @if !e.chain.is_empty() {
                h3 { "Error chain" }
                ol.chain {
                    @for link in &e.chain {
                        li {
                            @if let Some(t) = &link.type_name { code.type { (clean_line(t, 200)) } ": " }
                            (clean(&link.message))
                        }
                    }
                }
            }
            (context(e))
            @if !e.frames.is_empty() {
                h3 { "Stack" @if !e.symbols_resolved { " " span.muted { "(some frames unresolved)" } } }
                (stack(app, &e.frames))
            }
            @if !e.breadcrumbs.is_empty() {
                h3 { "Breadcrumbs" }
                table.crumbs {
                    thead { tr { th { "Time" } th { "Level" } th { "Category" } th { "Message" } } }
                    tbody {
                        @for b in &e.breadcrumbs {
                            tr { td { (time(b.timestamp_ms)) } td { (b.level.as_str()) }
                                 td { (clean_line(&b.category, 80)) } td { (clean(&b.message)) } }
                        }
                    }
                }
            }
            @if !e.tags.is_empty() {
                h3 { "Tags" }
                table.kv { tbody { @for (k, v) in &e.tags { tr { th { (clean_line(k, 80)) } td { (clean(v)) } } } } }
            }
            @if e.extra.as_object().is_some_and(|o| !o.is_empty()) {
                h3 { "Extra" }
                pre.extra { (clean(&serde_json::to_string_pretty(&e.extra).unwrap_or_default())) }
            }
            @if let Some(t) = trend.filter(|t| !t.readings.is_empty()) {
                (before(t))
            }
            @if let Some(s) = &e.snapshot {
                h3 { "Snapshot" }
                dl.facts {
                    dt { "CPU" } dd { (s.process.cpu_percent.map_or("?".to_owned(), |c| format!("{c:.1} %"))) }
                    dt { "RSS" } dd { (bytes(s.process.rss_bytes)) " (" (format!("{:.1}", s.process.memory_percent)) " % of memory)" }
                    dt { "Virtual" } dd { (bytes(s.process.virtual_bytes)) }
                    @if let Some(t) = s.process.threads { dt { "Threads" } dd { (t) } }
                    @if let Some(f) = s.process.open_fds { dt { "Open files" } dd { (f) } }
                    dt { "Host memory" } dd { (bytes(s.host.used_memory)) " used of " (bytes(s.host.total_memory)) }
                    dt { "Load" } dd { (format!("{:.2} {:.2} {:.2}", s.host.load_1, s.host.load_5, s.host.load_15)) }
                    @if let Some(c) = &s.cgroup {
                        dt { "cgroup" } dd { (clean_line(&c.path, 120))
                            @if let (Some(cur), Some(max)) = (c.memory_current_bytes, c.memory_max_bytes) { ", " (bytes(cur)) " of " (bytes(max)) }
                            @if let Some(k) = c.oom_kills { ", " (k) " OOM kill(s)" } }
                    }
                }
            }
            @if let Some(h) = &e.host {
                h3 { "Host" }
                p { (clean_line(h.hostname.as_deref().unwrap_or("?"), 80)) " · "
                    (clean_line(h.os_name.as_deref().unwrap_or(""), 40)) " " (clean_line(h.os_version.as_deref().unwrap_or(""), 40))
                    " · " (clean_line(&h.arch, 20)) " · " (h.cpu_count) " CPUs · " (bytes(h.total_memory)) }
            }
            @if !e.alerts.is_empty() {
                h3 { "Alerts" }
                table.alerts {
                    thead { tr { th { "Channel" } th { "Why" } th { "Delivery" } th { "Attempts" } th { "Last error" } } }
                    tbody { @for a in &e.alerts {
                        tr { td { (clean_line(&a.channel, 40)) } td { (a.kind.as_str()) }
                             td { span class={"delivery " (a.status.as_str())} { (a.status.as_str()) }
                                  @if let Some(t) = a.sent_at { " " (when(t, now)) } }
                             td.num { (a.attempts) }
                             td { (clean_line(a.last_error.as_deref().unwrap_or(""), 200)) } }
                    } }
                }
            }
        }
    }
}

/// The transaction, user, request and attachments of the event's scope.
fn context(e: &EventDetail) -> Markup {
    html! {
        @if e.transaction.is_some() || e.user.is_some() || e.request.is_some() {
            h3 { "Request" }
            dl.facts {
                @if let Some(t) = &e.transaction { dt { "Transaction" } dd { code { (clean_line(t, 200)) } } }
                @if let Some(u) = &e.user {
                    dt { "User" } dd {
                        @for (k, v) in [("id", &u.id), ("username", &u.username), ("email", &u.email), ("ip", &u.ip_address)] {
                            @if let Some(v) = v { span.kv { (k) " " code { (clean_line(v, 120)) } } " " }
                        }
                    }
                }
                @if let Some(r) = &e.request {
                    dt { "Request" } dd { code { (clean_line(&r.method, 16)) " " (clean_line(&r.path, 300))
                        @if let Some(q) = &r.query { "?" (clean_line(q, 300)) } } }
                    @if let Some(route) = &r.route { dt { "Route" } dd { code { (clean_line(route, 200)) } } }
                    @if let Some(s) = r.status { dt { "Status" } dd { (s) @if let Some(ms) = r.duration_ms { " after " (ms) " ms" } } }
                    @if let Some(h) = &r.host { dt { "Host" } dd { (clean_line(h, 120)) } }
                    @if let Some(p) = &r.peer { dt { "Peer" } dd { (clean_line(p, 60)) } }
                    @for (k, v) in &r.headers { dt { (clean_line(k, 60)) } dd { (clean_line(v, 300)) } }
                }
            }
        }
        @if !e.attachments.is_empty() {
            h3 { "Attachments" }
            table.kv { tbody { @for (i, a) in e.attachments.iter().enumerate() {
                tr { th { @if a.dropped().is_none() {
                        a href={"/events/" (e.row.id) "/attachments/" (i)} download { (clean_line(a.name(), 120)) }
                    } @else { (clean_line(a.name(), 120)) } }
                    td { (bytes(a.size()))
                    @if a.is_minidump() { " · minidump (only the crashing thread)" }
                    @if let Some(why) = a.dropped() { " · not kept: " (clean_line(why, 120)) }
                    @else if let Some(c) = a.content_type() { " · " (clean_line(c, 80)) } } }
            } } }
            p.muted { "Download one, or: errsnap show " (e.row.id) " --save-attachments DIR." }
        }
    }
}

/// The frames, innermost first; in-app frames emphasised, the first few
/// with their source lines.
fn stack(app: &App, frames: &[Frame]) -> Markup {
    // The source lines of the first in-app frames that have them.
    let mut shown = 0;
    let sources: Vec<Option<Vec<(u32, String)>>> = frames
        .iter()
        .map(|f| {
            if !f.in_app || shown == SOURCE_FRAMES {
                return None;
            }
            let lines = f
                .file
                .as_deref()
                .zip(f.line)
                .and_then(|(file, line)| source::context(&app.roots, file, line));
            shown += usize::from(lines.is_some());
            lines
        })
        .collect();
    html! {
        ol.stack {
            @for (f, lines) in frames.iter().zip(sources) {
                li class=(if f.in_app { "frame in-app" } else { "frame" }) {
                    code.fn { (clean_line(f.function.as_deref().unwrap_or("?"), 300)) }
                    @if let Some(file) = &f.file {
                        " " span.loc { (clean_line(file, 200)) @if let Some(l) = f.line { ":" (l) } }
                    } @else {
                        " " span.loc.muted { (format!("{:#x}", f.address))
                            @if let Some(m) = &f.module { " in " (clean_line(m, 120)) } }
                    }
                    @if let Some(lines) = lines {
                        pre.source { @for (n, text) in &lines {
                            span class=(if Some(*n) == f.line { "line current" } else { "line" }) {
                                span.ln { (n) } " " (clean(text)) "\n" }
                        } }
                    }
                }
            }
        }
    }
}

/// The run's minutes before the event: the trend in words and the flight
/// recorder's RSS and CPU, charted.
fn before(t: &EventTrend) -> Markup {
    let rss: Vec<(i64, f64)> = t
        .readings
        .iter()
        .filter_map(|s| Some((s.at_ms, s.rss_bytes? as f64)))
        .collect();
    let cpu: Vec<(i64, f64)> = t
        .readings
        .iter()
        .filter_map(|s| Some((s.at_ms, s.cpu_percent?)))
        .collect();
    html! {
        h3 { "Before it" }
        @if !t.words.is_empty() {
            ul.trend { @for w in &t.words { li { (clean_line(w, 200)) } } }
        }
        section.charts {
            figure { figcaption { "RSS of run " a href="/runs" { (t.run) } ", " (t.readings.len()) " readings" }
                (charts::line(&rss, 480, 96, "RSS", |v| bytes(v as u64))) }
            figure { figcaption { "CPU" }
                (charts::line(&cpu, 480, 96, "CPU", |v| format!("{v:.1} %"))) }
        }
    }
}
