//! Forwarding to an OpenTelemetry collector: each event as one OTLP
//! `LogRecord`, `POST <endpoint>/v1/logs` as `application/x-protobuf`
//! (OTLP/HTTP).
//!
//! The record carries the severity, the message as its body, the
//! semantic-convention attributes `exception.type`, `exception.message`
//! and `exception.stacktrace` (for errors, panics and crashes; a plain
//! message's stack is `code.stacktrace`), `code.*`, `thread.*`, the
//! event's tags, the snapshot's figures as `errsnap.*`, and the trace and
//! span ids when the event's tags hold them. The resource says
//! `service.name`, `service.version`, `deployment.environment.name`,
//! `host.name` and `process.pid`.
//!
//! A monitor's check-in is a record of its own (`otlp_check_in.rs`).
//!
//! Answers are read as the OTLP specification says: 429, 502, 503 and 504
//! are retried (after `Retry-After` when given), 400 and 413 reject this
//! event, 401, 403 and 404 mean the endpoint cannot work; a
//! `partial_success` that rejected the record is not retried.

use std::fmt;
use std::time::Duration;

use super::super::tls::ExtraRoots;
use super::super::{http, ChannelError};
use super::proto::{self, Msg};
use super::{cut, trace_ids, Forward};
use crate::error::{Error, Result};
use crate::event::{EventKind, Frame};
use crate::level::Level;
use crate::store::upstream::{Item, ItemKind};
use crate::store::EventDetail;

#[path = "otlp_check_in.rs"]
mod check_in;

/// The key of the endpoint.
pub(crate) const KEY: &str = "ERRSNAP_OTLP_ENDPOINT";
/// The key of the extra headers.
pub(crate) const HEADERS_KEY: &str = "ERRSNAP_OTLP_HEADERS";
/// The longest text attribute (and body) sent, in characters; longer ones
/// are cut and named in `errsnap.truncated`.
const MAX_TEXT: usize = 32 * 1024;

/// Forwards events to an OTLP/HTTP collector.
pub(crate) struct OtlpForwarder {
    url: reqwest::Url,
    headers: Vec<(String, String)>,
    timeout: Duration,
    roots: ExtraRoots,
}

impl fmt::Debug for OtlpForwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpForwarder")
            .field("server", &self.who())
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl OtlpForwarder {
    /// A forwarder to `endpoint` (the collector's base URL, to which
    /// `/v1/logs` is added, or the full `…/v1/logs`), with `headers` as
    /// `name=value,name=value` (the OpenTelemetry form).
    pub(crate) fn new(
        endpoint: &str,
        headers: Option<&str>,
        timeout: Duration,
        roots: ExtraRoots,
    ) -> Result<OtlpForwarder> {
        let mut url = http::webhook_url(KEY, endpoint)?;
        if url.username() != "" || url.password().is_some() {
            return Err(Error::config(
                KEY,
                "put credentials in ERRSNAP_OTLP_HEADERS, not in the URL (value not shown)",
            ));
        }
        if !url.path().ends_with("/v1/logs") {
            let path = format!("{}/v1/logs", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        Ok(OtlpForwarder {
            url,
            headers: parse_headers(headers.unwrap_or(""))?,
            timeout,
            roots,
        })
    }

    fn who(&self) -> String {
        format!(
            "otlp ({}{})",
            self.url.host_str().unwrap_or(""),
            self.url.port().map(|p| format!(":{p}")).unwrap_or_default()
        )
    }
}

/// `name=value,name=value`; errors name the key, never a value.
fn parse_headers(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(Error::config(
                HEADERS_KEY,
                "expected name=value pairs separated by commas (value not shown)",
            ));
        };
        let name = name.trim();
        let value = value.trim();
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            // Not shown: a mistyped pair may hold the secret.
            return Err(Error::config(
                HEADERS_KEY,
                "a name is not a header name (name=value,name=value; not shown)",
            ));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err(Error::config(
                HEADERS_KEY,
                format!("the value of {name} is not a valid header value (not shown)"),
            ));
        }
        out.push((name.to_owned(), value.to_owned()));
    }
    Ok(out)
}

impl Forward for OtlpForwarder {
    fn forward(&self, event: &EventDetail) -> std::result::Result<(), ChannelError> {
        self.post(request(event, crate::util::time::now_ms()))
    }

    fn takes(&self) -> &'static [ItemKind] {
        &[ItemKind::CheckIn]
    }

    /// A check-in as a log record of its own (see `check_in`).
    fn send_item(&self, item: &Item) -> std::result::Result<(), ChannelError> {
        match item {
            Item::CheckIn(c) => self.post(check_in::request(c, crate::util::time::now_ms())),
            other => Err(ChannelError::rejected(format!(
                "{}: takes no {} items",
                self.who(),
                other.kind().as_str()
            ))),
        }
    }

    /// The record's severity, then the chain and stack as
    /// `exception.stacktrace` holds them (the request itself is binary).
    fn preview(&self, event: &EventDetail) -> String {
        let (_, text) = severity(event.row.level);
        format!("{text} {}", stacktrace(event, None))
    }
}

impl OtlpForwarder {
    /// Posts one `ExportLogsServiceRequest` and reads the collector's
    /// answer.
    fn post(&self, body: Vec<u8>) -> std::result::Result<(), ChannelError> {
        let who = self.who();
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let answer = http::post(
            &who,
            &self.url,
            "application/x-protobuf",
            &headers,
            body,
            self.timeout,
            &self.roots,
        )?;
        let shown = || {
            if answer.text.is_empty() || !answer.text.is_ascii() {
                String::new()
            } else {
                format!(" {}", answer.shown())
            }
        };
        match answer.status {
            200..=299 => match proto::rejected(&answer.bytes) {
                Some((n, why)) => Err(ChannelError::rejected(format!(
                    "{who}: the collector rejected {n} record(s): {}",
                    cut(&why, 200).0
                ))),
                None => Ok(()),
            },
            429 => match answer.retry_after {
                Some(d) => Err(ChannelError::rate_limited(
                    format!("{who}: rate limited (429{})", shown()),
                    d,
                )),
                None => Err(ChannelError::transient(
                    format!("{who}: rate limited (429{})", shown()),
                    None,
                )),
            },
            400 | 413 => Err(ChannelError::rejected(format!(
                "{who}: the collector refused the record ({}{})",
                answer.status,
                shown()
            ))),
            401 | 403 | 404 => Err(ChannelError::channel_broken(format!(
                "{who}: the endpoint is not usable ({}{}); check ERRSNAP_OTLP_ENDPOINT and \
                 ERRSNAP_OTLP_HEADERS",
                answer.status,
                shown()
            ))),
            s => Err(ChannelError::transient(
                format!("{who}: server error ({s}{})", shown()),
                answer.retry_after,
            )),
        }
    }
}

/// OTLP's severity number and text of a level.
pub(crate) fn severity(l: Level) -> (i64, &'static str) {
    match l {
        Level::Trace => (1, "TRACE"),
        Level::Debug => (5, "DEBUG"),
        Level::Info => (9, "INFO"),
        Level::Warn => (13, "WARN"),
        Level::Error => (17, "ERROR"),
        Level::Fatal => (21, "FATAL"),
    }
}

/// An attribute's value (`AnyValue`).
enum Any<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
    Strs(Vec<String>),
}

fn any(v: &Any<'_>) -> Msg {
    let mut m = Msg::default();
    match v {
        Any::Str(s) => m.string(1, s),
        Any::Int(i) => m.int(3, *i),
        Any::Double(d) => m.double(4, *d),
        Any::Strs(items) => {
            let mut arr = Msg::default();
            for s in items {
                let mut item = Msg::default();
                item.string(1, s);
                arr.message(1, &item);
            }
            m.message(5, &arr)
        }
    };
    m
}

/// Attributes being gathered, texts cut to [`MAX_TEXT`].
#[derive(Default)]
struct Attrs {
    list: Vec<Msg>,
    cut: Vec<String>,
}

impl Attrs {
    fn put(&mut self, key: &str, v: Any<'_>) {
        let mut kv = Msg::default();
        kv.string(1, key).message(2, &any(&v));
        self.list.push(kv);
    }

    fn text(&mut self, key: &str, v: &str) {
        let (v, was_cut) = cut(v, MAX_TEXT);
        if was_cut {
            self.cut.push(key.to_owned());
        }
        self.put(key, Any::Str(&v));
    }

    fn int(&mut self, key: &str, v: Option<u64>) {
        if let Some(v) = v {
            self.put(key, Any::Int(i64::try_from(v).unwrap_or(i64::MAX)));
        }
    }
}

/// The whole `ExportLogsServiceRequest` for one event.
pub(crate) fn request(d: &EventDetail, now_ms: i64) -> Vec<u8> {
    let mut res = Attrs::default();
    let service = d.app_name.as_deref().unwrap_or(&d.row.logger);
    res.text("service.name", service);
    if let Some(r) = &d.release {
        res.text("service.version", r);
    }
    if let Some(e) = &d.environment {
        res.text("deployment.environment.name", e);
    }
    if let Some(h) = d.host.as_ref().and_then(|h| h.hostname.as_deref()) {
        res.text("host.name", h);
    }
    if let Some(a) = d
        .host
        .as_ref()
        .map(|h| h.arch.as_str())
        .filter(|a| !a.is_empty())
    {
        res.text("host.arch", a);
    }
    res.int("process.pid", Some(u64::from(d.row.pid)));
    export(&res, &record(d, now_ms))
}

/// The `ExportLogsServiceRequest` of one record of a resource, from the
/// `errsnap` scope.
fn export(res: &Attrs, record: &Msg) -> Vec<u8> {
    let mut resource = Msg::default();
    for kv in &res.list {
        resource.message(1, kv);
    }
    let mut scope = Msg::default();
    scope
        .string(1, "errsnap")
        .string(2, env!("CARGO_PKG_VERSION"));
    let mut scope_logs = Msg::default();
    scope_logs.message(1, &scope).message(2, record);
    let mut resource_logs = Msg::default();
    resource_logs.message(1, &resource).message(2, &scope_logs);
    let mut req = Msg::default();
    req.message(1, &resource_logs);
    req.0
}

/// The request and user, as OpenTelemetry's semantic conventions name
/// them (`http.request.method`, `http.route`, `url.path`, `url.query`,
/// `http.response.status_code`, `client.address`, `user.id`, ...).
fn scope_attrs(d: &EventDetail, a: &mut Attrs) {
    if let Some(t) = &d.transaction {
        a.text("errsnap.transaction", t);
    }
    if let Some(r) = &d.request {
        a.text("http.request.method", &r.method);
        a.text("url.path", &r.path);
        if let Some(route) = &r.route {
            a.text("http.route", route);
        }
        if let Some(q) = &r.query {
            a.text("url.query", q);
        }
        if let Some(h) = &r.host {
            a.text("server.address", h);
        }
        a.int("http.response.status_code", r.status.map(u64::from));
        a.int("errsnap.http.duration_ms", r.duration_ms);
        if let Some(p) = &r.peer {
            a.text("client.address", p);
        }
        if let Some(ua) = r.headers.get("user-agent") {
            a.text("user_agent.original", ua);
        }
    }
    if let Some(u) = &d.user {
        for (k, v) in [
            ("user.id", &u.id),
            ("user.name", &u.username),
            ("user.email", &u.email),
        ] {
            if let Some(v) = v {
                a.text(k, v);
            }
        }
    }
}

fn nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

/// One `LogRecord`.
// Long by design: the record's fields and attributes in the order the
// module's documentation lists them.
fn record(d: &EventDetail, now_ms: i64) -> Msg {
    let mut a = Attrs::default();
    let exception_type = match d.row.kind {
        EventKind::Message => None,
        EventKind::Error => Some(
            d.chain
                .first()
                .and_then(|l| l.type_name.as_deref())
                .unwrap_or("Error"),
        ),
        EventKind::Panic => Some("panic"),
        EventKind::Crash => Some("crash"),
    };
    let trace = stacktrace(d, exception_type);
    match exception_type {
        Some(t) => {
            a.text("exception.type", t);
            a.text("exception.message", &d.row.message);
            a.text("exception.stacktrace", &trace);
        }
        None if !d.frames.is_empty() => a.text("code.stacktrace", &trace),
        None => {}
    }
    if let Some(f) = &d.row.file {
        a.text("code.file.path", f);
    }
    a.int("code.line.number", d.row.line.map(u64::from));
    a.int("code.column.number", d.column.map(u64::from));
    a.int("thread.id", Some(d.thread_id));
    if let Some(t) = &d.row.thread {
        a.text("thread.name", t);
    }
    scope_attrs(d, &mut a);
    a.text("errsnap.event_id", &d.row.id);
    a.text("errsnap.logger", &d.row.logger);
    a.text("errsnap.kind", d.row.kind.as_str());
    a.text("errsnap.group_fingerprint", &d.group_fingerprint);
    if let Some(s) = &d.snapshot {
        let p = &s.process;
        a.int("errsnap.process.rss_bytes", Some(p.rss_bytes));
        a.int("errsnap.process.virtual_bytes", Some(p.virtual_bytes));
        if let Some(c) = p.cpu_percent {
            a.put("errsnap.process.cpu_percent", Any::Double(c));
        }
        a.put(
            "errsnap.process.memory_percent",
            Any::Double(p.memory_percent),
        );
        a.int("errsnap.process.threads", p.threads);
        a.int("errsnap.process.open_fds", p.open_fds);
        a.int("errsnap.host.memory_used_bytes", Some(s.host.used_memory));
        a.int("errsnap.host.memory_total_bytes", Some(s.host.total_memory));
        if let Some(c) = s.host.cpu_percent {
            a.put("errsnap.host.cpu_percent", Any::Double(c));
        }
        if let Some(cg) = &s.cgroup {
            a.int(
                "errsnap.cgroup.memory_current_bytes",
                cg.memory_current_bytes,
            );
            a.int("errsnap.cgroup.memory_max_bytes", cg.memory_max_bytes);
        }
    }
    for (k, v) in &d.tags {
        a.text(k, v);
    }
    if !d.extra.is_null() {
        a.text("errsnap.extra", &d.extra.to_string());
    }
    if !d.breadcrumbs.is_empty() {
        let crumbs = d.breadcrumbs[d.breadcrumbs.len().saturating_sub(20)..]
            .iter()
            .map(|b| {
                let line = format!(
                    "{} {} {}: {}",
                    crate::util::time::rfc3339(b.timestamp_ms),
                    b.level,
                    b.category,
                    b.message
                );
                cut(&line, 1024).0
            })
            .collect();
        a.put("errsnap.breadcrumbs", Any::Strs(crumbs));
    }
    let (body, body_cut) = cut(&d.row.message, MAX_TEXT);
    if body_cut {
        a.cut.insert(0, "body".to_owned());
    }
    if !a.cut.is_empty() {
        let cuts = std::mem::take(&mut a.cut);
        a.put("errsnap.truncated", Any::Strs(cuts));
    }
    let (number, text) = severity(d.row.level);
    let mut r = Msg::default();
    r.fixed64(1, nanos(d.row.ts))
        .int(2, number)
        .string(3, text)
        .message(5, &any(&Any::Str(&body)));
    for kv in &a.list {
        r.message(6, kv);
    }
    if let Some((trace, span)) = trace_ids(d) {
        r.bytes(9, &unhex(&trace));
        if let Some(s) = span {
            r.bytes(10, &unhex(&s));
        }
    }
    r.fixed64(11, nanos(now_ms));
    r
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// The chain and stack as Rust prints them: the error, its causes, then
/// numbered frames with `at file:line:column`.
fn stacktrace(d: &EventDetail, exception_type: Option<&str>) -> String {
    let mut out = match exception_type {
        Some(t) => format!("{t}: {}\n", d.row.message),
        None => format!("{}\n", d.row.message),
    };
    for link in d.chain.iter().skip(1) {
        out.push_str("Caused by: ");
        out.push_str(&link.message);
        out.push('\n');
    }
    for (i, f) in d.frames.iter().enumerate() {
        out.push_str(&frame_line(i, f));
    }
    out
}

fn frame_line(i: usize, f: &Frame) -> String {
    let mut s = match (&f.function, &f.module, f.module_offset) {
        (Some(func), _, _) => format!("{i:>4}: {func}\n"),
        (None, Some(m), Some(off)) => format!("{i:>4}: <unknown> ({m}+{off:#x})\n"),
        (None, _, _) => format!("{i:>4}: <unknown> ({:#x})\n", f.address),
    };
    if let Some(file) = &f.file {
        s.push_str(&format!("             at {file}"));
        if let Some(l) = f.line {
            s.push_str(&format!(":{l}"));
            if let Some(c) = f.column {
                s.push_str(&format!(":{c}"));
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_v1_logs_once_and_refuse_credentials() {
        let roots = ExtraRoots::default();
        let t = Duration::from_secs(1);
        let f = OtlpForwarder::new("http://127.0.0.1:4318", None, t, roots.clone()).unwrap();
        assert_eq!(f.url.as_str(), "http://127.0.0.1:4318/v1/logs");
        let f =
            OtlpForwarder::new("https://otel.example.com/otlp/", None, t, roots.clone()).unwrap();
        assert_eq!(f.url.as_str(), "https://otel.example.com/otlp/v1/logs");
        let f =
            OtlpForwarder::new("https://otel.example.com/v1/logs", None, t, roots.clone()).unwrap();
        assert_eq!(f.url.as_str(), "https://otel.example.com/v1/logs");
        let e = OtlpForwarder::new("https://u:hunter2@otel.example.com", None, t, roots.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains(KEY) && !e.contains("hunter2"), "{e}");
        let e = OtlpForwarder::new("http://otel.example.com", None, t, roots)
            .unwrap_err()
            .to_string();
        assert!(e.contains("https"), "{e}");
    }

    #[test]
    fn headers_are_pairs_and_bad_values_are_not_shown() {
        assert_eq!(
            parse_headers("x-honeycomb-team=abc, api-key = k=v ").unwrap(),
            [
                ("x-honeycomb-team".to_owned(), "abc".to_owned()),
                ("api-key".to_owned(), "k=v".to_owned())
            ]
        );
        assert!(parse_headers("").unwrap().is_empty());
        let e = parse_headers("novalue").unwrap_err().to_string();
        assert!(e.contains(HEADERS_KEY) && !e.contains("novalue"), "{e}");
        let e = parse_headers("Authorization: Bearer hunter2=x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a header name") && !e.contains("hunter2"),
            "{e}"
        );
        let e = parse_headers("a=hunter2\u{1}x").unwrap_err().to_string();
        assert!(e.contains("not shown") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn severities_follow_the_otlp_ranges() {
        assert_eq!(severity(Level::Trace), (1, "TRACE"));
        assert_eq!(severity(Level::Debug), (5, "DEBUG"));
        assert_eq!(severity(Level::Info), (9, "INFO"));
        assert_eq!(severity(Level::Warn), (13, "WARN"));
        assert_eq!(severity(Level::Error), (17, "ERROR"));
        assert_eq!(severity(Level::Fatal), (21, "FATAL"));
    }

    #[test]
    fn the_stacktrace_reads_like_rusts() {
        let mut d = super::super::test_event(&crate::channels::Alert::test("web", None, None));
        d.row.message = "loading config".into();
        d.chain = vec![
            crate::event::ChainLink {
                message: "loading config".into(),
                type_name: None,
            },
            crate::event::ChainLink {
                message: "permission denied".into(),
                type_name: None,
            },
        ];
        d.frames = vec![Frame {
            function: Some("app::load".into()),
            file: Some("src/app.rs".into()),
            line: Some(3),
            column: Some(9),
            address: 0x10,
            module: None,
            module_offset: None,
            build_id: None,
            in_app: true,
        }];
        assert_eq!(
            stacktrace(&d, Some("Error")),
            "Error: loading config\nCaused by: permission denied\n   0: app::load\n             at src/app.rs:3:9\n"
        );
        assert_eq!(unhex("00ff10"), [0, 255, 16]);
    }
}
