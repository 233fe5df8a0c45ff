//! Search (`/search?q=`): groups whose message, chain or frames hold the
//! words, best first.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::html;

use super::enc;
use super::groups::status_badge;
use super::layout::{self, Nav};
use super::{clean_line, when};
use crate::serve::Shared;

/// `GET /search`.
pub(crate) async fn page(
    State(app): State<Shared>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let q: String = p
        .get("q")
        .map(|s| s.trim().chars().take(200).collect())
        .unwrap_or_default();
    let now = crate::output::now_ms();
    app.page(move |db, app| {
        let hits = if q.is_empty() { Vec::new() } else { db.search(&q, 50)? };
        let body = html! {
            h1 { "Search" }
            @if q.is_empty() {
                p.muted { "Type words from a message, an error or a function name in the box above." }
            } @else {
                p { (hits.len()) " group(s) for " q { (clean_line(&q, 200)) } ". "
                    a href={"/events?text=" (enc(&q))} { "Events whose message contains it →" } }
                ol.hits { @for h in &hits {
                    li {
                        (status_badge(h.group.status)) " "
                        a href={"/groups/" (h.group.id)} { (clean_line(&h.group.title, 140)) }
                        " " span.muted { (h.group.count) " · " (when(h.group.last_seen, now)) }
                        div.excerpt { code { (clean_line(&h.text, 200)) } }
                    }
                } }
            }
        };
        Ok(Html(layout::page(app, "Search", Nav::Search, &q, body).into_string()).into_response())
    })
    .await
}
