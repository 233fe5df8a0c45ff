//! A tower layer for HTTP services (axum, tonic, hyper): each request runs
//! in a scope holding its method, route, query (secrets out), selected
//! headers and peer; 5xx responses and panics become events with that
//! context; each request leaves a breadcrumb.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::redact_http::{redact_path, redact_query, route_of_path};
use crate::capture::scope::{swap, ScopeData};
use crate::capture::CallSite;
use crate::event::context::{IP_HEADERS, SECRET_HEADERS};
use crate::event::{ChainLink, EventKind, Request};
use crate::level::Level;
use crate::logger::{payload_text, EventLogger, PushOptions, Scope, ScopeGuard};

/// Headers kept by default (lower-case).
const DEFAULT_HEADERS: &[&str] = &[
    "user-agent",
    "x-request-id",
    "request-id",
    "x-correlation-id",
    "traceparent",
    "content-type",
    "content-length",
];

/// Longest header value or query kept (characters).
const MAX_VALUE: usize = 1024;

#[derive(Debug)]
struct Config {
    logger: EventLogger,
    headers: Vec<String>,
    server_errors: bool,
    breadcrumbs: bool,
}

/// A [`tower_layer::Layer`] that records what goes wrong while serving
/// HTTP requests, with the request in every event (feature `tower`).
///
/// For each request it opens a [scope](crate::EventLogger::scope) with
/// the method, the route template (axum's `MatchedPath` when the layer is
/// added with `Router::layer`, else the path), the query string with
/// secret values replaced (`token`, `key`, `password`, `secret`, `auth`,
/// `session`, ... by name, then the redaction rules), selected headers
/// (never cookies or credentials), and the peer address (axum's
/// `ConnectInfo<SocketAddr>` or a `SocketAddr` extension; stored only with
/// `ERRSNAP_STORE_USER_IP=true`). A W3C `traceparent` header links the
/// request's events to its trace (tags `trace_id`, `span_id`).
///
/// - Every event, panic and breadcrumb raised while the request is handled
///   carries that scope, also across `.await`s.
/// - A 5xx response is recorded as an error event (the status, method and
///   route; the error's chain when the response carries a
///   [`ResponseError`]).
/// - A panic in a handler is recorded as a panic event with the request
///   (by the panic hook when installed, else by the layer), then goes on
///   unwinding as it would without the layer: add tower-http's
///   `CatchPanicLayer` outside this one to answer 500 instead.
/// - Each request leaves an `http` breadcrumb (`GET /users/{id} 200
///   (3 ms)`), for the events raised after it outside any request.
///
/// The duration is measured to the response head (a streamed body goes
/// on after it). Request and response bodies are never read.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
/// use axum::{routing::get, Router};
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "ann" }))
///     .layer(errsnap::tower::HttpLayer::new(logger.clone()));
/// # drop(app);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpLayer {
    config: Arc<Config>,
}

impl HttpLayer {
    /// A layer recording into `logger`, with the default headers
    /// (`user-agent`, `x-request-id`, `request-id`, `x-correlation-id`,
    /// `traceparent`, `content-type`, `content-length`).
    pub fn new(logger: EventLogger) -> HttpLayer {
        HttpLayer {
            config: Arc::new(Config {
                logger,
                headers: DEFAULT_HEADERS.iter().map(|h| (*h).to_owned()).collect(),
                server_errors: true,
                breadcrumbs: true,
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Config)) -> HttpLayer {
        let mut c = Config {
            logger: self.config.logger.clone(),
            headers: self.config.headers.clone(),
            server_errors: self.config.server_errors,
            breadcrumbs: self.config.breadcrumbs,
        };
        f(&mut c);
        self.config = Arc::new(c);
        self
    }

    /// Also keeps this request header. Cookies, credentials and
    /// forwarding headers (`Cookie`, `Authorization`, `X-Api-Key`,
    /// `X-Forwarded-For`, ...) are never kept: naming one does nothing.
    #[must_use]
    pub fn header(self, name: &str) -> HttpLayer {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty()
            || SECRET_HEADERS.contains(&name.as_str())
            || IP_HEADERS.contains(&name.as_str())
        {
            return self;
        }
        self.with(|c| {
            if !c.headers.contains(&name) {
                c.headers.push(name);
            }
        })
    }

    /// Whether 5xx responses become error events (default `true`).
    #[must_use]
    pub fn record_server_errors(self, on: bool) -> HttpLayer {
        self.with(|c| c.server_errors = on)
    }

    /// Whether each request leaves a breadcrumb (default `true`).
    #[must_use]
    pub fn breadcrumbs(self, on: bool) -> HttpLayer {
        self.with(|c| c.breadcrumbs = on)
    }
}

impl<S> tower_layer::Layer<S> for HttpLayer {
    type Service = HttpService<S>;

    fn layer(&self, inner: S) -> HttpService<S> {
        HttpService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`HttpLayer`] wraps around yours.
#[derive(Debug, Clone)]
pub struct HttpService<S> {
    inner: S,
    config: Arc<Config>,
}

/// An error carried in a response's extensions, so that the layer records
/// its chain (and where it was turned into a response) when the response
/// is a 5xx. Insert it where your error type becomes a response:
///
/// ```
/// use axum::response::{IntoResponse, Response};
///
/// #[derive(Debug)]
/// struct AppError(std::io::Error);
///
/// impl IntoResponse for AppError {
///     fn into_response(self) -> Response {
///         let mut res = (http::StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
///         res.extensions_mut().insert(errsnap::tower::ResponseError::new(&self.0));
///         res
///     }
/// }
/// # let _ = AppError(std::io::Error::other("x")).into_response();
/// ```
#[derive(Debug, Clone)]
pub struct ResponseError {
    chain: Vec<ChainLink>,
    site: &'static std::panic::Location<'static>,
}

impl ResponseError {
    /// Captures `err`'s `Display` and `source()` chain (and its type).
    #[track_caller]
    pub fn new<E: std::error::Error + ?Sized + 'static>(err: &E) -> ResponseError {
        ResponseError {
            chain: crate::logger::chain_of(err),
            site: std::panic::Location::caller(),
        }
    }
}

impl<S, ReqB, ResB> tower_service::Service<http::Request<ReqB>> for HttpService<S>
where
    S: tower_service::Service<http::Request<ReqB>, Response = http::Response<ResB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> ResponseFuture<S::Future> {
        let start = Instant::now();
        let (request, trace) = describe(&req, &self.config.headers);
        let transaction = format!(
            "{} {}",
            request.method,
            request.route.as_deref().unwrap_or(&request.path)
        );
        let scope = crate::logger::scope::enter_data(|s: &mut Scope| {
            s.set_transaction(transaction.clone())
                .set_tag("http.method", request.method.clone())
                .set_tag(
                    "http.route",
                    request
                        .route
                        .clone()
                        .unwrap_or_else(|| request.path.clone()),
                );
            if let Some((t, sp)) = &trace {
                s.set_trace(t, sp);
            }
            s.set_request(request);
        });
        // The synchronous part of the inner call runs in the scope too.
        let restore = Restore(Some(swap(scope.clone())));
        crate::util::unwind::take_recorded();
        let called = catch_unwind(AssertUnwindSafe(|| self.inner.call(req)));
        let future = match called {
            Ok(f) => f,
            Err(payload) => {
                on_panic(&self.config, payload.as_ref());
                drop(restore);
                self.config.breadcrumb(&transaction, "panicked", start);
                // Recorded: a catcher further out must not record it again.
                crate::util::unwind::mark_recorded();
                resume_unwind(payload)
            }
        };
        drop(restore);
        ResponseFuture {
            inner: Some(future),
            state: Some(Box::new(State {
                scope,
                config: self.config.clone(),
                transaction,
                start,
            })),
        }
    }
}

/// What a response future keeps about its request.
#[derive(Debug)]
struct State {
    scope: Option<Arc<ScopeData>>,
    config: Arc<Config>,
    transaction: String,
    start: Instant,
}

pin_project_lite::pin_project! {
    /// The response future of [`HttpService`]: the inner one, polled (and,
    /// when the request is cancelled, dropped) in the request's scope.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        // `None` only while it is dropped.
        #[pin]
        inner: Option<F>,
        // `None` once the response (or a panic) came out.
        state: Option<Box<State>>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            match this.state.take() {
                Some(state) => {
                    // Cancelled (the client went away): its destructors run
                    // in the request's scope, and it leaves a breadcrumb.
                    let restore = Restore(Some(swap(state.scope.clone())));
                    this.inner.set(None);
                    drop(restore);
                    state
                        .config
                        .breadcrumb(&state.transaction, "cancelled", state.start);
                }
                None => this.inner.set(None),
            }
        }
    }
}

/// Polls the inner future (present until the response future is dropped).
fn poll_inner<F: Future>(inner: Pin<&mut Option<F>>, cx: &mut Context<'_>) -> Poll<F::Output> {
    match inner.as_pin_mut() {
        Some(f) => f.poll(cx),
        None => unreachable!("the inner future is taken only when dropped"),
    }
}

/// Puts back the scope that was current when dropped (panics included).
struct Restore(Option<Option<Arc<ScopeData>>>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            swap(previous);
        }
    }
}

impl<F, ResB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResB>, E>>,
{
    type Output = Result<http::Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut inner = this.inner;
        let Some(state) = this.state.as_ref() else {
            // Polled after completion: the inner future decides.
            return poll_inner(inner.as_mut(), cx);
        };
        let restore = Restore(Some(swap(state.scope.clone())));
        crate::util::unwind::take_recorded();
        let polled = catch_unwind(AssertUnwindSafe(|| poll_inner(inner.as_mut(), cx)));
        let out = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(out)) => out,
            Err(payload) => {
                on_panic(&state.config, payload.as_ref());
                drop(restore);
                state
                    .config
                    .breadcrumb(&state.transaction, "panicked", state.start);
                *this.state = None;
                // Recorded: a catcher further out must not record it again.
                crate::util::unwind::mark_recorded();
                resume_unwind(payload)
            }
        };
        let status = match &out {
            Ok(res) => {
                let status = res.status().as_u16();
                if status >= 500 && state.config.server_errors {
                    let error = res.extensions().get::<ResponseError>();
                    state.config.server_error(state, status, error);
                }
                Some(status)
            }
            Err(_) => None,
        };
        drop(restore);
        let outcome = status.map_or_else(|| "failed".to_owned(), |s| s.to_string());
        state
            .config
            .breadcrumb(&state.transaction, &outcome, state.start);
        *this.state = None;
        Poll::Ready(out)
    }
}

impl Config {
    /// Records a 5xx response (in the request's scope, with its status and
    /// duration).
    fn server_error(&self, state: &State, status: u16, error: Option<&ResponseError>) {
        let elapsed = elapsed_ms(state.start);
        let _done = ScopeGuard::push(|s| {
            s.set_tag("http.status", status.to_string());
            if let Some(req) = state.scope.as_ref().and_then(|d| d.context.request.clone()) {
                let mut req = req;
                req.status = Some(status);
                req.duration_ms = Some(elapsed);
                s.set_request(req);
            }
        });
        let mut options = PushOptions::default();
        options
            .tags
            .insert("http.status".into(), status.to_string());
        match error {
            Some(e) => {
                let message = e
                    .chain
                    .first()
                    .map_or_else(String::new, |c| c.message.clone());
                self.logger.record(
                    Level::Error,
                    EventKind::Error,
                    message,
                    e.chain.clone(),
                    Some(CallSite::Static(e.site)),
                    options,
                );
            }
            None => {
                let message = format!("HTTP {status} {}", state.transaction);
                self.logger.record(
                    Level::Error,
                    EventKind::Message,
                    message,
                    Vec::new(),
                    None,
                    options,
                );
            }
        }
    }

    /// The request's breadcrumb, left in the enclosing scope (or the
    /// logger's ring).
    fn breadcrumb(&self, transaction: &str, outcome: &str, start: Instant) {
        if !self.breadcrumbs {
            return;
        }
        let level = match outcome.parse::<u16>() {
            Ok(s) if s < 400 => Level::Info,
            Ok(s) if s < 500 => Level::Warn,
            _ => Level::Error,
        };
        self.logger.add_breadcrumb(
            level,
            "http",
            format!("{transaction} {outcome} ({} ms)", elapsed_ms(start)),
        );
    }
}

/// A panic out of the inner service: recorded here unless the panic hook
/// did (it ran on this thread, in the request's scope).
fn on_panic(config: &Config, payload: &(dyn std::any::Any + Send)) {
    if crate::util::unwind::take_recorded() {
        return;
    }
    config.logger.record(
        Level::Fatal,
        EventKind::Panic,
        payload_text(payload),
        Vec::new(),
        None,
        PushOptions::default(),
    );
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The request as stored, and the trace it continues (from `traceparent`).
fn describe<B>(req: &http::Request<B>, headers: &[String]) -> (Request, Option<(String, String)>) {
    let uri = original_uri(req).unwrap_or_else(|| req.uri());
    // Token-like path segments never stored (`/reset/<token>`); without a
    // route template (a layer outside the router, plain hyper, tonic, a
    // fallback 404), one is made from the path: ids and tokens become
    // `{id}` and `{token}`, so the message, the group and the alert do
    // not vary with them (or carry them).
    let path = uri.path();
    let mut out = Request::new(cut(req.method().as_str()), cut(&redact_path(path)));
    out.route = matched_path(req).or_else(|| Some(cut(&route_of_path(path))));
    out.query = uri
        .query()
        .filter(|q| !q.is_empty())
        .map(|q| cut(&redact_query(q)));
    out.host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(cut)
        .or_else(|| uri.authority().map(|a| cut(a.as_str())));
    for name in headers {
        if let Some(v) = req.headers().get(name.as_str()) {
            if v.is_sensitive() {
                continue;
            }
            if let Ok(text) = v.to_str() {
                out.headers.insert(name.clone(), cut(text));
            }
        }
    }
    out.peer = peer(req).map(|a| a.ip().to_string());
    let trace = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(traceparent);
    (out, trace)
}

/// The ids of a W3C `traceparent` header (`00-{trace}-{span}-{flags}`).
fn traceparent(v: &str) -> Option<(String, String)> {
    let mut parts = v.trim().split('-');
    let (version, trace, span, _flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (version.len() == 2 && version != "ff" && trace.len() == 32 && span.len() == 16)
        .then(|| (trace.to_owned(), span.to_owned()))
}

fn original_uri<B>(req: &http::Request<B>) -> Option<&http::Uri> {
    req.extensions()
        .get::<axum::extract::OriginalUri>()
        .map(|u| &u.0)
}

fn matched_path<B>(req: &http::Request<B>) -> Option<String> {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| cut(m.as_str()))
}

fn peer<B>(req: &http::Request<B>) -> Option<SocketAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| req.extensions().get::<SocketAddr>().copied())
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_VALUE) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_kept_only_when_selected_and_never_credentials() {
        let req = http::Request::builder()
            .method("POST")
            .uri("http://svc.local/users/7?token=t0k&x=1")
            .header("user-agent", "curl/8")
            .header("cookie", "sid=secret")
            .header("authorization", "Bearer secret")
            .header("x-tenant", "acme")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(())
            .expect("request");
        let layer = HttpLayer::new(crate::EventLogger::for_tests().0)
            .header("X-Tenant")
            .header("Cookie")
            .header("authorization");
        let (r, trace) = describe(&req, &layer.config.headers);
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/users/7");
        assert_eq!(r.query.as_deref(), Some("token=[REDACTED]&x=1"));
        assert_eq!(r.host.as_deref(), Some("svc.local"));
        assert_eq!(r.headers["user-agent"], "curl/8");
        assert_eq!(r.headers["x-tenant"], "acme");
        assert!(!r.headers.contains_key("cookie"));
        assert!(!r.headers.contains_key("authorization"));
        assert!(!format!("{r:?}").contains("secret"));
        assert_eq!(
            trace,
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into()
            ))
        );
    }

    #[test]
    fn traceparent_needs_its_four_parts() {
        assert!(traceparent("00-abc-def-01").is_none());
        assert!(traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
        assert!(traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7").is_none());
    }
}
