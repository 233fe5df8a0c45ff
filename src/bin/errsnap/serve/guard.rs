//! Who may see the dashboard: the Host header must name the listener (DNS
//! rebinding), the token (once, in the URL or the login form) gives an
//! HttpOnly, SameSite=Strict session cookie, every POST carries the CSRF
//! token and, when the browser says where it comes from, an allowed
//! origin. Every answer carries the security headers. Tokens are compared
//! in constant time.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Form, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{pages, App, Shared};

/// The Content-Security-Policy: nothing but this server's own files; no
/// inline script; no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; \
                   frame-ancestors 'none'";

/// Whether `given` is `want`, in time that does not depend on where they
/// differ.
pub(crate) fn same(given: &str, want: &str) -> bool {
    given.len() == want.len() && bool::from(given.as_bytes().ct_eq(want.as_bytes()))
}

fn add_security_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request's Host is one the listener answers.
fn host_ok(app: &App, headers: &HeaderMap) -> bool {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim().to_ascii_lowercase())
        .is_some_and(|h| app.hosts.contains(&h))
}

/// Whether a POST's Origin (when the browser sends one) is this server.
fn origin_ok(app: &App, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(o) => {
            let o = o.to_ascii_lowercase();
            let host = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"));
            host.is_some_and(|h| app.hosts.iter().any(|a| a == h))
        }
    }
}

/// The Set-Cookie header of a session.
fn session_cookie(app: &App) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        app.cookie, app.session
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A redirect that opens a session.
fn logged_in(app: &App, to: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let to = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    resp.headers_mut().insert(header::LOCATION, to);
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(app));
    resp
}

/// Where to go after a login by URL: the request's path (one leading
/// `/`, not followed by `/` or `\`, which browsers read as another host) and its query without the `token` parameter,
/// however it was spelled.
fn without_token(req: &Request) -> String {
    let path = req.uri().path();
    let path = if path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\") {
        path
    } else {
        "/"
    };
    let pairs: Vec<(String, String)> = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    let rest: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "token")
        .map(|(k, v)| format!("{}={}", pages::enc(k), pages::enc(v)))
        .collect();
    if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

/// The middleware: Host, session or token, CSRF origin, headers.
pub(crate) async fn check(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let mut resp = decide(&app, req, next).await;
    add_security_headers(&mut resp);
    resp
}

async fn decide(app: &App, req: Request, next: Next) -> Response {
    if !host_ok(app, req.headers()) {
        return super::text(
            StatusCode::MISDIRECTED_REQUEST,
            "this dashboard does not answer for that host name (start it with --host-name NAME)",
        );
    }
    if req.method() == Method::POST && !origin_ok(app, req.headers()) {
        return super::text(StatusCode::FORBIDDEN, "cross-origin request refused");
    }
    let path = req.uri().path();
    if path == "/login" || path.starts_with("/static/") {
        return next.run(req).await;
    }
    let query: HashMap<String, String> = Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    if let Some(t) = query.get("token") {
        if same(t, &app.token) {
            // The token leaves the address bar (and the history) at once.
            return logged_in(app, &without_token(&req));
        }
        return login_page(app, StatusCode::UNAUTHORIZED, Some("wrong token"));
    }
    match cookie(req.headers(), &app.cookie) {
        Some(c) if same(c, &app.session) => next.run(req).await,
        _ if req.method() == Method::GET && path != "/live" => {
            login_page(app, StatusCode::UNAUTHORIZED, None)
        }
        _ => super::text(
            StatusCode::UNAUTHORIZED,
            "log in first (open the URL errsnap serve printed)",
        ),
    }
}

fn login_page(app: &App, status: StatusCode, problem: Option<&str>) -> Response {
    let _ = app;
    let body = pages::layout::bare(
        "errsnap: log in",
        maud::html! {
            h1 { "errsnap" }
            p { "Open the URL " code { "errsnap serve" } " printed, or paste its token:" }
            @if let Some(p) = problem { p.problem { (p) } }
            form method="post" action="/login" {
                input type="password" name="token" autocomplete="current-password" aria-label="token" autofocus;
                " "
                button type="submit" { "Log in" }
            }
        },
    );
    (status, body).into_response()
}

/// `GET /login`.
pub(crate) async fn login_form(State(app): State<Shared>) -> Response {
    login_page(&app, StatusCode::OK, None)
}

/// `POST /login`.
pub(crate) async fn login(
    State(app): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match form.get("token") {
        Some(t) if same(t.trim(), &app.token) => logged_in(&app, "/"),
        _ => login_page(&app, StatusCode::UNAUTHORIZED, Some("wrong token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abd", "abc"));
        assert!(!same("ab", "abc"));
        assert!(!same("", "abc"));
        assert!(!same("abcd", "abc"));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; errsnap_session_80x=2; errsnap_session_80=3"),
        );
        assert_eq!(cookie(&h, "errsnap_session_80"), Some("3"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
