//! A generic JSON webhook channel: one POST per alert with the alert as a
//! JSON document, for receivers other than Slack (Microsoft Teams through a
//! workflow, Discord through a relay, PagerDuty-style incident APIs, your
//! own service).

use std::fmt;
use std::time::Duration;

use serde_json::json;

use super::tls::ExtraRoots;
use super::{http, Alert, Channel, ChannelError};
use crate::error::{Error, Result};

/// The key of the webhook URL.
const KEY: &str = "ERRSNAP_WEBHOOK_URL";
/// The key of the optional header.
const HEADER_KEY: &str = "ERRSNAP_WEBHOOK_HEADER";

/// Posts each alert as a JSON document to a URL, with an optional header
/// (`Authorization: Bearer ...`, say). The URL and the header's value are
/// secrets: never shown by `Debug`, in errors or in the outbox.
///
/// The document (version 1):
///
/// ```json
/// {"source": "errsnap", "version": 1, "kind": "new", "event_id": "01J...",
///  "time": "2026-11-29T18:00:00.000Z", "level": "error", "logger": "payments",
///  "app": "shop", "environment": "production", "message": "...",
///  "chain": ["..."], "location": "src/pay.rs:10:5", "host": "web-1", "pid": 42,
///  "process": {"cpu_percent": 12.5, "rss_bytes": 10485760, "host_memory_percent": 40.0},
///  "frames": [{"function": "shop::pay", "location": "src/pay.rs:10", "in_app": true}],
///  "group": "...", "occurrences": 3, "suppressed": 0,
///  "suspect": "3f2c9e1 by Carol, 2026-12-01: db: read the first row",
///  "trend": ["RSS 0.2 -> 3.9 GiB in 9 min, cgroup limit 4 GiB (97%)"]}
/// ```
///
/// ```
/// let hook = errsnap::channels::WebhookChannel::new("https://alerts.example.com/in")
///     .unwrap()
///     .header("Authorization: Bearer s3cret")
///     .unwrap();
/// assert!(!format!("{hook:?}").contains("s3cret"));
/// ```
pub struct WebhookChannel {
    url: reqwest::Url,
    header: Option<(String, String)>,
    timeout: Duration,
    roots: ExtraRoots,
}

impl fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("url", &"<redacted>")
            .field("header", &self.header.as_ref().map(|(n, _)| n))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookChannel {
    /// A channel for `url`, with a 10 s timeout.
    ///
    /// # Errors
    /// The URL does not parse, is not `https` (or `http` to a loopback
    /// address), or has no host. The message never repeats the URL.
    pub fn new(url: &str) -> Result<WebhookChannel> {
        Ok(WebhookChannel {
            url: http::webhook_url(KEY, url)?,
            header: None,
            timeout: Duration::from_secs(10),
            roots: ExtraRoots::default(),
        })
    }

    /// Sends this header with every request: `Name: value`.
    ///
    /// # Errors
    /// The text is not `Name: value` with a valid header name and value
    /// (the value is never shown).
    pub fn header(mut self, header: &str) -> Result<Self> {
        let (name, value) = header
            .split_once(':')
            .map(|(n, v)| (n.trim(), v.trim()))
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| Error::config(HEADER_KEY, "expected `Name: value` (value not shown)"))?;
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(Error::config(
                HEADER_KEY,
                format!("{name:?} is not a valid header name"),
            ));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err(Error::config(
                HEADER_KEY,
                "the value holds characters a header cannot (value not shown)",
            ));
        }
        self.header = Some((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    pub(crate) fn with_roots(mut self, roots: ExtraRoots) -> Self {
        self.roots = roots;
        self
    }

    /// Sets the connect and total timeout of one delivery (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The alert as the generic webhook sends it.
pub(crate) fn document(alert: &Alert) -> serde_json::Value {
    json!({
        "source": "errsnap",
        "version": 1,
        "kind": alert.kind.as_str(),
        "event_id": alert.event_id,
        "time": crate::util::time::rfc3339(alert.timestamp_ms),
        "level": alert.level.as_str(),
        "logger": alert.logger,
        "app": alert.app_name,
        "environment": alert.environment,
        "message": alert.message,
        "chain": alert.chain,
        "location": alert.location,
        "host": alert.host,
        "pid": alert.pid,
        "process": {
            "cpu_percent": alert.cpu_percent,
            "rss_bytes": alert.rss_bytes,
            "host_memory_percent": alert.host_memory_percent,
        },
        "frames": alert.frames.iter().map(|f| json!({
            "function": f.function,
            "location": f.location,
            "in_app": f.in_app,
        })).collect::<Vec<_>>(),
        "group": alert.group_title,
        "occurrences": alert.occurrences,
        "suppressed": alert.suppressed,
        "suspect": alert.suspect,
        "trend": alert.trend,
    })
}

impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        super::WEBHOOK
    }

    fn render(&self, alert: &Alert) -> String {
        document(alert).to_string()
    }

    fn send(&self, alert: &Alert) -> std::result::Result<(), ChannelError> {
        let header = self.header.as_ref().map(|(n, v)| (n.as_str(), v.as_str()));
        http::post_json(
            "webhook",
            &self.url,
            self.render(alert),
            header,
            self.timeout,
            &self.roots,
        )?
        .outcome("webhook")
    }
}
