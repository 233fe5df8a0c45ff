//! Events (`/events`, newest first, filtered by group, level, logger and
//! text, paged by row), one event (`/events/{id}`) and its attachments
//! (`/events/{id}/attachments/{n}`, downloaded).

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use errsnap::{
    db::{EventFilter, EventRow},
    Level,
};
use maud::html;

use super::enc;
use super::layout::{self, Nav};
use super::{bad_request, clean_line, error_page, when};
use crate::serve::Shared;

const PAGE: usize = 50;

/// `GET /events`.
pub(crate) async fn list(
    State(app): State<Shared>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| {
        p.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut f = EventFilter::default();
    let mut given: Vec<(&str, String)> = Vec::new();
    if let Some(v) = get("group") {
        match v.parse::<i64>() {
            Ok(g) => f.group = Some(g),
            Err(_) => return bad_request("group", &v, "expected a group number"),
        }
        given.push(("group", v));
    }
    if let Some(v) = get("level") {
        match Level::from_str(&v) {
            Ok(l) => f.min_level = Some(l),
            Err(e) => return bad_request("level", &v, &e.to_string()),
        }
        given.push(("level", v));
    }
    if let Some(v) = get("logger") {
        f.logger = Some(v.clone());
        given.push(("logger", v));
    }
    if let Some(v) = get("text") {
        f.grep = Some(v.clone());
        given.push(("text", v));
    }
    if let Some(v) = get("before") {
        match v.parse::<i64>() {
            Ok(r) => f.before_row = Some(r),
            Err(_) => return bad_request("before", &v, "expected a row number"),
        }
    }
    f.newest_first = true;
    f.limit = PAGE;
    let now = crate::output::now_ms();
    app.page(move |db, app| {
        let rows: Vec<EventRow> = db.events(&f)?;
        let next = (rows.len() == PAGE).then(|| rows.last().map(|r| r.row)).flatten();
        let value = |k: &str| given.iter().find(|(g, _)| *g == k).map_or(String::new(), |(_, v)| v.clone());
        let more: Vec<String> = given.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
        let body = html! {
            h1 { "Events" @if let Some(g) = f.group { " of " a href={"/groups/" (g)} { "group " (g) } } }
            form.filters method="get" action="/events" {
                @if let Some(g) = f.group { input type="hidden" name="group" value=(g); }
                label { "Level " input type="text" name="level" value=(value("level")) size="6" placeholder="warn"; }
                label { "Logger " input type="text" name="logger" value=(value("logger")) size="12"; }
                label { "Text " input type="text" name="text" value=(value("text")) size="24" placeholder="in the message (ids too)"; }
                button type="submit" { "Apply" }
            }
            table.events {
                thead { tr { th { "Time" } th { "Level" } th { "Message" } th { "Logger" } th { "Where" } } }
                tbody { @for r in &rows {
                    tr {
                        td { (when(r.ts, now)) }
                        td { span class={"level " (r.level.as_str())} { (r.level.as_str()) } }
                        td { a href={"/events/" (r.id)} { (clean_line(&r.message, 160)) } }
                        td { (clean_line(&r.logger, 40)) }
                        td { @if let Some(file) = &r.file { code { (clean_line(file, 80)) @if let Some(l) = r.line { ":" (l) } } } }
                    }
                } }
            }
            @if rows.is_empty() { p.muted.empty { "No event matches." } }
            @if let Some(n) = next {
                nav.pager { a rel="next" href={"/events?" (more.join("&")) @if !more.is_empty() { "&" } "before=" (n)} { "Older →" } }
            }
        };
        Ok(Html(layout::page(app, "Events", Nav::Events, "", body).into_string()).into_response())
    })
    .await
}

/// `GET /events/{id}`.
pub(crate) async fn one(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    if id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return bad_request("event", &id, "expected an event id");
    }
    let now = crate::output::now_ms();
    app.page(move |db, app| {
        let Some(e) = db.event(&id)? else {
            return Ok(error_page(StatusCode::NOT_FOUND, &format!("no event {id}")));
        };
        let trend = db.event_trend(&e.row.id)?;
        let body = html! {
            p.crumbs { a href="/" { "Groups" } " › " a href={"/groups/" (e.row.group)} { (clean_line(&e.group_title, 80)) } }
            (super::detail::event(app, &e, trend.as_ref(), now))
        };
        Ok(Html(layout::page(app, "Event", Nav::Events, "", body).into_string()).into_response())
    })
    .await
}

/// `/events/{id}/attachments/{n}`: the event's attachment `n` (from 0, as
/// the event's page lists them), as a download: never shown by the
/// browser (`application/octet-stream`, `attachment`; the guard adds
/// `nosniff` and the CSP), under a name of safe characters only.
pub(crate) async fn attachment(
    State(app): State<Shared>,
    Path((id, n)): Path<(String, usize)>,
) -> Response {
    if id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return bad_request("event", &id, "expected an event id");
    }
    app.page(move |db, _| {
        let Some(a) = db.attachments(&id)?.into_iter().nth(n) else {
            return Ok(error_page(
                StatusCode::NOT_FOUND,
                &format!("event {id} has no attachment {n}"),
            ));
        };
        let Some(data) = a.data() else {
            return Ok(error_page(
                StatusCode::NOT_FOUND,
                &format!("attachment {n} of event {id} was not kept"),
            ));
        };
        let disposition = format!("attachment; filename=\"{}\"", download_name(a.name()));
        Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            data.to_vec(),
        )
            .into_response())
    })
    .await
}

/// A file name for a download: letters, digits, `.`, `-` and `_` kept,
/// anything else `_`, at most 100 characters, never starting with a dot.
fn download_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() {
        "attachment".to_owned()
    } else {
        safe.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::download_name;

    #[test]
    fn download_names_keep_only_safe_characters() {
        assert_eq!(download_name("minidump.dmp"), "minidump.dmp");
        assert_eq!(download_name("a\"b\r\nSet-Cookie: x"), "a_b__Set-Cookie__x");
        assert_eq!(download_name("../etc/passwd"), "_etc_passwd");
        assert_eq!(download_name("..."), "attachment");
        assert_eq!(download_name("é.txt"), "_.txt");
        assert_eq!(download_name(&"x".repeat(300)).len(), 100);
    }
}
