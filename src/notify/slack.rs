//! The Slack incoming-webhook notifier.

use std::cell::RefCell;
use std::fmt;
use std::io::Read;
use std::time::Duration;

use super::format::slack_payload;
use super::{Alert, Notifier, NotifyError};
use crate::error::{Error, Result};

/// Bodies Slack returns for a payload it cannot accept: only that alert fails.
const PAYLOAD_ERRORS: &[&str] = &[
    "invalid_payload",
    "invalid_blocks",
    "invalid_blocks_format",
    "too_many_attachments",
    "no_text",
    "msg_too_long",
];

/// Posts alerts to a Slack incoming webhook.
///
/// The URL is a secret: it is never shown by `Debug`, in errors, or in the
/// outbox. `https` is required, except for loopback addresses (tests).
///
/// ```
/// let hook = errsnap::SlackWebhook::new("https://hooks.slack.com/services/T000/B000/XXXX").unwrap();
/// assert!(!format!("{hook:?}").contains("XXXX"));
/// assert!(errsnap::SlackWebhook::new("http://hooks.slack.com/x").is_err());
/// ```
pub struct SlackWebhook {
    url: reqwest::Url,
    timeout: Duration,
    roots: crate::tls::ExtraRoots,
}

impl fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackWebhook")
            .field("url", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

const KEY: &str = "ERRSNAP_SLACK_WEBHOOK_URL";

impl SlackWebhook {
    /// A notifier for the webhook `url`, with a 10 s timeout.
    ///
    /// # Errors
    /// The URL does not parse, is not `https` (or `http` to a loopback
    /// address), or has no host. The message never repeats the URL.
    pub fn new(url: &str) -> Result<SlackWebhook> {
        let url = reqwest::Url::parse(url.trim())
            .map_err(|e| Error::config(KEY, format!("not a URL ({e}; value not shown)")))?;
        let host = url.host_str().unwrap_or("");
        if host.is_empty() {
            return Err(Error::config(KEY, "the URL has no host (value not shown)"));
        }
        match url.scheme() {
            "https" => {}
            "http" if super::is_loopback(host) => {}
            _ => {
                return Err(Error::config(
                    KEY,
                    "the URL must use https (http only to a loopback address; value not shown)",
                ))
            }
        }
        Ok(SlackWebhook {
            url,
            timeout: Duration::from_secs(10),
            roots: crate::tls::ExtraRoots::default(),
        })
    }

    /// Also trusts the certificates of a PEM bundle (a company CA), besides
    /// the built-in roots. `ERRSNAP_TLS_CA_FILE` does this from settings.
    ///
    /// # Errors
    /// The bundle holds no certificate, or one that cannot be a root.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self> {
        self.roots = crate::tls::ExtraRoots::from_pem(pem)
            .map_err(|why| Error::config(crate::tls::CA_FILE_KEY, why))?;
        Ok(self)
    }

    pub(crate) fn with_roots(mut self, roots: crate::tls::ExtraRoots) -> Self {
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

/// What a cached client was built for: its timeout and its extra roots.
type ClientKey = (Duration, Option<usize>);

thread_local! {
    /// One blocking client per notify thread: created and dropped on that
    /// thread, never inside an async runtime.
    static CLIENT: RefCell<Option<(ClientKey, reqwest::blocking::Client)>> = const { RefCell::new(None) };
}

fn with_client<T>(
    timeout: Duration,
    roots: &crate::tls::ExtraRoots,
    f: impl FnOnce(&reqwest::blocking::Client) -> T,
) -> std::result::Result<T, NotifyError> {
    let key: ClientKey = (timeout, roots.pem().map(|p| p.as_ptr() as usize));
    CLIENT
        .try_with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|(k, _)| *k != key) {
                let broken = |e: reqwest::Error| {
                    NotifyError::transient(
                        format!("building the HTTP client: {}", e.without_url()),
                        None,
                    )
                };
                let mut b = reqwest::blocking::Client::builder()
                    .connect_timeout(timeout)
                    .timeout(timeout)
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(pem) = roots.pem() {
                    for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(broken)? {
                        b = b.add_root_certificate(cert);
                    }
                }
                *slot = Some((key, b.build().map_err(broken)?));
            }
            match slot.as_ref() {
                Some((_, c)) => Ok(f(c)),
                None => Err(NotifyError::transient("no HTTP client", None)),
            }
        })
        .map_err(|_| NotifyError::transient("the notify thread is shutting down", None))?
}

impl Notifier for SlackWebhook {
    fn name(&self) -> &str {
        "slack"
    }

    fn notify(&self, alert: &Alert) -> std::result::Result<(), NotifyError> {
        let body = slack_payload(alert).to_string();
        let response = with_client(self.timeout, &self.roots, |c| {
            c.post(self.url.clone())
                .header("content-type", "application/json; charset=utf-8")
                .body(body)
                .send()
        })?;
        let response = response.map_err(|e| {
            // reqwest errors carry the URL, which is the secret.
            let e = e.without_url();
            if crate::tls::is_certificate_error(&e) {
                return NotifyError::channel_broken(format!(
                    "slack: the server's certificate was refused: {}; trust its CA with \
                     ERRSNAP_TLS_CA_FILE",
                    crate::util::internal_log::chain(&e)
                ));
            }
            let what = if e.is_timeout() {
                format!(
                    "timed out after {}",
                    crate::util::time::seconds(self.timeout)
                )
            } else if e.is_connect() {
                "could not connect".to_owned()
            } else {
                "request failed".to_owned()
            };
            NotifyError::transient(format!("slack: {what}: {e}"), None)
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut text = String::new();
        let _ = response.take(4096).read_to_string(&mut text);
        let text = text.trim().to_owned();
        let shown: String = text.chars().take(200).collect();
        match status {
            200..=299 => Ok(()),
            429 => Err(NotifyError::transient(
                format!("slack: rate limited (429 {shown})"),
                retry_after,
            )),
            400 if PAYLOAD_ERRORS.contains(&text.as_str()) => Err(NotifyError::rejected(format!(
                "slack: rejected this message ({status} {shown})"
            ))),
            400 | 403 | 404 | 410 => Err(NotifyError::channel_broken(format!(
                "slack: the webhook is not usable ({status} {shown})"
            ))),
            _ => Err(NotifyError::transient(
                format!("slack: server error ({status} {shown})"),
                retry_after,
            )),
        }
    }
}
