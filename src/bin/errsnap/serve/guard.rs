//! Who may see the dashboard: the Host header must name the listener (DNS
//! rebinding), the token (once, in the URL or the login form) gives a
//! session of its own (an HttpOnly, SameSite=Strict cookie, `Secure`
//! behind TLS, valid 12 hours, ended by "Log out"), every POST carries the
//! CSRF token and, when the browser says where it comes from, an allowed
//! origin. Wrong tokens are limited per client address (10 a minute).
//! Every answer carries the security headers. Tokens are compared in
//! constant time.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Form, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{pages, App, Shared};

/// How long a session lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the oldest ends first).
const MAX_SESSIONS: usize = 64;
/// Wrong tokens a client address may send per minute.
const WRONG_TOKENS_PER_MINUTE: usize = 10;

/// The open sessions: random values and when each ends.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<VecDeque<(String, Instant)>>);

impl Sessions {
    /// A new session's value.
    fn open(&self) -> Option<String> {
        let value = super::random_hex().ok()?;
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        s.retain(|(_, until)| *until > now);
        while s.len() >= MAX_SESSIONS {
            s.pop_front();
        }
        s.push_back((value.clone(), now + SESSION_TTL));
        Some(value)
    }

    /// Whether `value` is an open, unexpired session.
    fn valid(&self, value: &str) -> bool {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        s.iter().fold(false, |found, (v, until)| {
            found | (same(value, v) && *until > now)
        })
    }

    /// Ends session `value`.
    fn close(&self, value: &str) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.retain(|(v, _)| !same(value, v));
    }
}

/// Wrong tokens per client address within the last minute.
#[derive(Default)]
pub(crate) struct WrongTokens(Mutex<HashMap<IpAddr, VecDeque<Instant>>>);

impl WrongTokens {
    /// Whether `peer` may try a token now (it has not sent too many wrong
    /// ones within the minute).
    fn may_try(&self, peer: Option<IpAddr>, now: Instant) -> bool {
        let Some(ip) = peer else { return true };
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(q) = m.get_mut(&ip) else { return true };
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            q.pop_front();
        }
        if q.is_empty() {
            m.remove(&ip);
            return true;
        }
        q.len() < WRONG_TOKENS_PER_MINUTE
    }

    fn note(&self, peer: Option<IpAddr>, now: Instant) {
        let Some(ip) = peer else { return };
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 4096 {
            // Bounded: many addresses at once forget the oldest news.
            m.clear();
        }
        m.entry(ip).or_default().push_back(now);
    }
}

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

/// Whether the browser reached the dashboard over TLS (a proxy in front):
/// `--behind-tls`, or the proxy's `X-Forwarded-Proto: https`.
fn over_tls(app: &App, headers: &HeaderMap) -> bool {
    app.behind_tls
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The Set-Cookie header of session `value` (`None`: one that ends it).
fn session_cookie(app: &App, value: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = match value {
        Some(v) => format!(
            "{}={v}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            app.cookie,
            SESSION_TTL.as_secs()
        ),
        None => format!(
            "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}",
            app.cookie
        ),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn see_other(to: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let to = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    resp.headers_mut().insert(header::LOCATION, to);
    resp
}

/// A redirect that opens a session.
fn logged_in(app: &App, headers: &HeaderMap, to: &str) -> Response {
    let Some(value) = app.sessions.open() else {
        return super::text(StatusCode::INTERNAL_SERVER_ERROR, "no random numbers");
    };
    let mut resp = see_other(to);
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(app, Some(&value), over_tls(app, headers)),
    );
    resp
}

/// The client's address (set by the listener on each request).
fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<super::conns::Peer>().map(|p| p.0)
}

/// A wrong token: counted against the client; `429` once it sent too
/// many within the minute.
fn wrong_token(app: &App, peer: Option<IpAddr>) -> Response {
    app.wrong_tokens.note(peer, Instant::now());
    login_page(app, StatusCode::UNAUTHORIZED, Some("wrong token"))
}

fn too_many() -> Response {
    super::text(
        StatusCode::TOO_MANY_REQUESTS,
        "too many wrong tokens from this address: wait a minute",
    )
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
        let peer = peer(&req);
        if !app.wrong_tokens.may_try(peer, Instant::now()) {
            return too_many();
        }
        if same(t, &app.token) {
            // The token leaves the address bar (and the history) at once.
            return logged_in(app, req.headers(), &without_token(&req));
        }
        return wrong_token(app, peer);
    }
    match cookie(req.headers(), &app.cookie) {
        Some(c) if app.sessions.valid(c) => next.run(req).await,
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
    peer: Option<axum::Extension<super::conns::Peer>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let peer = peer.map(|p| p.0 .0);
    if !app.wrong_tokens.may_try(peer, Instant::now()) {
        return too_many();
    }
    match form.get("token") {
        Some(t) if same(t.trim(), &app.token) => logged_in(&app, &headers, "/"),
        _ => wrong_token(&app, peer),
    }
}

/// `POST /logout` (form field `csrf`): ends the session, clears the
/// cookie.
pub(crate) async fn logout(
    State(app): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !form.get("csrf").is_some_and(|t| same(t, &app.csrf)) {
        return pages::error_page(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the page and try again",
        );
    }
    if let Some(c) = cookie(&headers, &app.cookie) {
        app.sessions.close(c);
    }
    let mut resp = see_other("/login");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&app, None, over_tls(&app, &headers)),
    );
    resp
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
    fn sessions_are_random_bounded_and_end() {
        let s = Sessions::default();
        let a = s.open().unwrap();
        let b = s.open().unwrap();
        assert_ne!(a, b);
        assert!(s.valid(&a) && s.valid(&b));
        assert!(!s.valid("nope") && !s.valid(""));
        s.close(&a);
        assert!(!s.valid(&a) && s.valid(&b));
        for _ in 0..MAX_SESSIONS {
            s.open().unwrap();
        }
        assert!(!s.valid(&b), "the oldest session ends first");
        // An expired one is not valid.
        let e = Sessions::default();
        e.0.lock()
            .unwrap()
            .push_back(("old".into(), Instant::now() - Duration::from_secs(1)));
        assert!(!e.valid("old"));
    }

    #[test]
    fn wrong_tokens_are_limited_per_address_for_a_minute() {
        let w = WrongTokens::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..WRONG_TOKENS_PER_MINUTE {
            assert!(w.may_try(Some(ip), t0));
            w.note(Some(ip), t0);
        }
        assert!(!w.may_try(Some(ip), t0 + Duration::from_secs(59)));
        assert!(w.may_try(Some(other), t0), "per address");
        assert!(
            w.may_try(Some(ip), t0 + Duration::from_secs(60)),
            "a minute later"
        );
        assert!(w.may_try(None, t0));
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
