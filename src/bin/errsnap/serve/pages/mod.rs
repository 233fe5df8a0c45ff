//! The pages. Each handler parses its query (a bad value is a 400 that
//! names the parameter), then renders on a blocking thread with a
//! database connection (`App::page`).

pub(crate) mod action;
pub(crate) mod detail;
pub(crate) mod events;
pub(crate) mod group;
pub(crate) mod groups;
pub(crate) mod layout;
pub(crate) mod monitors;
pub(crate) mod runs;
pub(crate) mod search;
pub(crate) mod stats;
pub(crate) mod triage;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use crate::term;

/// Stored text, its control characters shown as escapes (the template
/// escapes it for HTML).
pub(crate) fn clean(s: &str) -> String {
    term::safe(s).into_owned()
}

/// Stored text on one line, at most `max` characters.
pub(crate) fn clean_line(s: &str, max: usize) -> String {
    crate::output::one_line(s, max)
}

/// A query component, percent-encoded (`application/x-www-form-urlencoded`).
pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `YYYY-MM-DD HH:MM:SS` UTC.
pub(crate) fn time(ms: i64) -> String {
    crate::output::time(ms)
}

/// "3 min ago", "2 h ago", "5 d ago".
pub(crate) fn ago(ms: i64, now: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// A time shown relative, with the exact time as its tooltip.
pub(crate) fn when(ms: i64, now: i64) -> Markup {
    html! { time datetime=(time(ms)) title={(time(ms)) " UTC"} { (ago(ms, now)) } }
}

/// An error page (the message is escaped like any text).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = layout::bare(
        "errsnap: error",
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p.problem { (clean(message)) }
            p { a href="/" { "Groups" } }
        },
    );
    (status, body).into_response()
}

/// A 400 naming the parameter and its value.
pub(crate) fn bad_request(param: &str, value: &str, why: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        &format!("{param}={}: {why}", clean_line(value, 80)),
    )
}

/// `/static/app.css`.
pub(crate) async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("app.css"),
    )
        .into_response()
}

/// `/static/app.js`.
pub(crate) async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("app.js"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parts_are_encoded() {
        assert_eq!(enc("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(0, 30_000), "30 s ago");
        assert_eq!(ago(0, 120_000), "2 min ago");
        assert_eq!(ago(0, 7_200_000), "2 h ago");
        assert_eq!(ago(0, 3 * 86_400_000), "3 d ago");
        assert_eq!(ago(10, 0), "0 s ago");
    }

    #[test]
    fn stored_text_is_inert() {
        let m = html! { p { (clean("<script>alert(1)</script>\x1b]0;x\x07")) } }.into_string();
        assert_eq!(
            m,
            "<p>&lt;script&gt;alert(1)&lt;/script&gt;\\x1b]0;x\\x07</p>"
        );
    }
}
