//! The Slack incoming-webhook channel.

use std::fmt;
use std::time::Duration;

use super::format::slack_payload;
use super::tls::ExtraRoots;
use super::{http, Alert, Channel, ChannelError};
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

/// The key of the webhook URL.
const KEY: &str = "ERRSNAP_SLACK_WEBHOOK_URL";

/// Posts alerts to a Slack incoming webhook (Block Kit with a text
/// fallback; every piece of text escaped, Slack's limits kept).
///
/// The URL is a secret: it is never shown by `Debug`, in errors, or in the
/// outbox. `https` is required, except for loopback addresses (tests).
///
/// ```
/// let hook = errsnap::channels::SlackChannel::new("https://hooks.slack.com/services/T000/B000/XXXX").unwrap();
/// assert!(!format!("{hook:?}").contains("XXXX"));
/// assert!(errsnap::channels::SlackChannel::new("http://hooks.slack.com/x").is_err());
/// ```
pub struct SlackChannel {
    url: reqwest::Url,
    timeout: Duration,
    roots: ExtraRoots,
}

impl fmt::Debug for SlackChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackChannel")
            .field("url", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SlackChannel {
    /// A channel for the webhook `url`, with a 10 s timeout.
    ///
    /// # Errors
    /// The URL does not parse, is not `https` (or `http` to a loopback
    /// address), or has no host. The message never repeats the URL.
    pub fn new(url: &str) -> Result<SlackChannel> {
        Ok(SlackChannel {
            url: http::webhook_url(KEY, url)?,
            timeout: Duration::from_secs(10),
            roots: ExtraRoots::default(),
        })
    }

    /// Also trusts the certificates of a PEM bundle (a company CA), besides
    /// the built-in roots. `ERRSNAP_TLS_CA_FILE` does this from settings.
    ///
    /// # Errors
    /// The bundle holds no certificate, or one that cannot be a root.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self> {
        self.roots = ExtraRoots::from_pem(pem)
            .map_err(|why| Error::config(crate::settings::TLS_CA_FILE_KEY, why))?;
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

impl Channel for SlackChannel {
    fn name(&self) -> &str {
        super::SLACK
    }

    fn render(&self, alert: &Alert) -> String {
        slack_payload(alert).to_string()
    }

    fn send(&self, alert: &Alert) -> std::result::Result<(), ChannelError> {
        let answer = http::post_json(
            "slack",
            &self.url,
            self.render(alert),
            None,
            self.timeout,
            &self.roots,
        )?;
        if answer.status == 400 && PAYLOAD_ERRORS.contains(&answer.text.as_str()) {
            return Err(ChannelError::rejected(format!(
                "slack: rejected this message (400 {})",
                answer.shown()
            )));
        }
        answer.outcome("slack")
    }
}
