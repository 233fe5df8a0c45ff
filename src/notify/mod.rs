//! Alerts: the [`Notifier`] trait, the [`Alert`] it receives, and the
//! built-in Slack and SMTP notifiers.
//!
//! Notifiers run only on errsnap's `errsnap-notify` thread, never on the
//! caller's thread or in the panic hook. Each alert is first written to the
//! `outbox` table in the same transaction as its event; the notify thread
//! works from the outbox, so an alert pending when the process exits is sent
//! at the next start.

#[cfg(feature = "email")]
pub(crate) mod email;
// The formatting is pure and shared by the built-in notifiers; without
// their features parts of it go unused.
#[cfg_attr(not(all(feature = "slack", feature = "email")), allow(dead_code))]
pub(crate) mod format;
pub(crate) mod outbox;
pub(crate) mod setup;
#[cfg(feature = "slack")]
mod slack;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::event::EventKind;
use crate::level::Level;

#[cfg(feature = "email")]
#[cfg_attr(docsrs, doc(cfg(feature = "email")))]
pub use email::{SmtpMailer, SmtpTls};
#[cfg(feature = "slack")]
#[cfg_attr(docsrs, doc(cfg(feature = "slack")))]
pub use slack::SlackWebhook;

/// Sends a test alert through every channel `config` sets up (Slack,
/// e-mail), without a database, and returns what each answered.
///
/// # Errors
/// The configuration is invalid (the error names the key).
///
/// ```
/// let results = errsnap::send_test_alert(&errsnap::Config::empty()).unwrap();
/// assert!(results.is_empty()); // nothing configured
/// ```
pub fn send_test_alert(
    config: &crate::Config,
) -> crate::Result<Vec<(String, Result<(), NotifyError>)>> {
    let alerting = setup::alerting(config, setup::AlertOverrides::default())?;
    let alert = Alert::test(
        "errsnap",
        config.string("ERRSNAP_APP_NAME"),
        config.string("ERRSNAP_ENVIRONMENT"),
    );
    Ok(alerting.send_test(alert))
}

/// Whether `host` names this machine (127.0.0.0/8, ::1, localhost).
#[cfg_attr(not(any(feature = "slack", feature = "email")), allow(dead_code))]
pub(crate) fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// Why an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlertKind {
    /// The first occurrence of a group, or the first after its cooldown
    /// ([`Alert::suppressed`] then says how many were held back meanwhile).
    New,
    /// A group marked resolved happened again.
    Regression,
    /// The cooldown ended with occurrences held back and none since
    /// ([`Alert::suppressed`] says how many).
    Digest,
    /// A test alert (`EventLogger::send_test_alert`).
    Test,
}

impl AlertKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AlertKind::New => "new",
            AlertKind::Regression => "regression",
            AlertKind::Digest => "digest",
            AlertKind::Test => "test",
        }
    }

    pub(crate) fn from_name(s: &str) -> AlertKind {
        match s {
            "regression" => AlertKind::Regression,
            "digest" => AlertKind::Digest,
            "test" => AlertKind::Test,
            _ => AlertKind::New,
        }
    }
}

/// `s` without control characters (NUL, ESC, BEL, ...), line feeds and
/// tabs aside: alert text goes to people, through media that would show
/// them as `\u0000` or act on them.
fn strip_controls(s: &mut String) {
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        s.retain(|c| !c.is_control() || c == '\n' || c == '\t');
    }
}

impl Alert {
    /// Strips control characters from every text of the alert (done before
    /// any notifier sees it).
    pub(crate) fn strip_controls(&mut self) {
        for s in [&mut self.message, &mut self.logger, &mut self.group_title]
            .into_iter()
            .chain(self.chain.iter_mut())
            .chain(
                [
                    &mut self.app_name,
                    &mut self.environment,
                    &mut self.location,
                    &mut self.host,
                ]
                .into_iter()
                .flatten(),
            )
        {
            strip_controls(s);
        }
        for f in &mut self.frames {
            strip_controls(&mut f.function);
            if let Some(l) = &mut f.location {
                strip_controls(l);
            }
        }
    }

    /// The alert `send_test_alert` sends.
    pub(crate) fn test(
        logger: &str,
        app_name: Option<String>,
        environment: Option<String>,
    ) -> Alert {
        let now = crate::util::time::now_ms();
        Alert {
            kind: AlertKind::Test,
            event_id: crate::event::EventId::generate(now).to_string(),
            timestamp_ms: now,
            level: Level::Error,
            event_kind: EventKind::Message,
            logger: logger.to_owned(),
            app_name,
            environment,
            message: format!("errsnap test alert: alerts of logger {logger:?} reach this channel"),
            chain: Vec::new(),
            location: None,
            host: sysinfo::System::host_name(),
            pid: std::process::id(),
            cpu_percent: None,
            rss_bytes: None,
            host_memory_percent: None,
            frames: Vec::new(),
            group_title: "errsnap test alert".to_owned(),
            occurrences: 1,
            suppressed: 0,
        }
    }
}

/// One frame as shown in an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertFrame {
    /// Function name.
    pub function: String,
    /// `file:line`, when known.
    pub location: Option<String>,
    /// Whether it is the application's own code.
    pub in_app: bool,
}

/// Everything a notifier gets to say about an event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Alert {
    /// Why it is sent.
    pub kind: AlertKind,
    /// The event's id (text form).
    pub event_id: String,
    /// When the event happened (ms since the Unix epoch).
    pub timestamp_ms: i64,
    /// Severity.
    pub level: Level,
    /// Message, error or panic.
    pub event_kind: EventKind,
    /// The logger (table).
    pub logger: String,
    /// The application's name (the channel's app name if configured, else
    /// the event's).
    pub app_name: Option<String>,
    /// Environment, if configured.
    pub environment: Option<String>,
    /// The full message (notifiers truncate as their medium requires).
    pub message: String,
    /// The error chain below the message, outermost first.
    pub chain: Vec<String>,
    /// `file:line:column`.
    pub location: Option<String>,
    /// Host name.
    pub host: Option<String>,
    /// Process id.
    pub pid: u32,
    /// Process CPU %, if a snapshot was taken.
    pub cpu_percent: Option<f64>,
    /// Resident memory in bytes, if a snapshot was taken.
    pub rss_bytes: Option<u64>,
    /// Host memory use in percent, if a snapshot was taken.
    pub host_memory_percent: Option<f64>,
    /// The backtrace, innermost first.
    pub frames: Vec<AlertFrame>,
    /// The group's title.
    pub group_title: String,
    /// How often the group has happened in all.
    pub occurrences: u64,
    /// Occurrences since the previous alert of this group on this channel
    /// that were not alerted (the digest's "N more since").
    pub suppressed: u64,
}

/// Why a notifier could not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyError {
    message: String,
    retry: Retry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Later(Option<Duration>),
    NeverThisAlert,
    NeverThisChannel,
}

impl NotifyError {
    /// A passing failure (timeout, 5xx, connection refused): retried with
    /// backoff, or after `retry_after` when the server said so.
    pub fn transient(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        NotifyError {
            message: message.into(),
            retry: Retry::Later(retry_after),
        }
    }

    /// This alert can never be delivered (the server rejected its content);
    /// other alerts still can.
    pub fn rejected(message: impl Into<String>) -> Self {
        NotifyError {
            message: message.into(),
            retry: Retry::NeverThisAlert,
        }
    }

    /// The channel itself is broken (bad credentials, removed webhook): no
    /// alert is attempted on it again until the next start; pending alerts
    /// stay in the outbox.
    pub fn channel_broken(message: impl Into<String>) -> Self {
        NotifyError {
            message: message.into(),
            retry: Retry::NeverThisChannel,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.retry, Retry::Later(_))
    }

    /// Whether the whole channel should stop.
    pub fn breaks_channel(&self) -> bool {
        self.retry == Retry::NeverThisChannel
    }

    /// The delay the server asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.retry {
            Retry::Later(d) => d,
            _ => None,
        }
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NotifyError {}

/// A destination for alerts.
///
/// Called only on errsnap's `errsnap-notify` thread, one alert at a time, so
/// an implementation may block (with a timeout of its own: a notifier that
/// never returns stalls every channel). Return [`NotifyError::transient`] for
/// failures worth retrying, [`NotifyError::rejected`] for an alert that can
/// never be delivered, and [`NotifyError::channel_broken`] when nothing will
/// get through until the configuration changes. A notifier must never put a
/// secret (a webhook URL, a password) into its error messages: they are
/// stored in the `outbox` table.
///
/// ```
/// use errsnap::{Alert, Notifier, NotifyError};
///
/// struct Stdout;
/// impl Notifier for Stdout {
///     fn name(&self) -> &str { "stdout" }
///     fn notify(&self, alert: &Alert) -> Result<(), NotifyError> {
///         println!("{}: {}", alert.level, alert.message);
///         Ok(())
///     }
/// }
/// ```
pub trait Notifier: Send + Sync + 'static {
    /// The channel's name: stored in the outbox, used for routing
    /// (`slack` and `email` for the built-in ones). Must be stable.
    fn name(&self) -> &str;

    /// Delivers one alert.
    fn notify(&self, alert: &Alert) -> Result<(), NotifyError>;
}

impl<N: Notifier + ?Sized> Notifier for Box<N> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn notify(&self, alert: &Alert) -> Result<(), NotifyError> {
        (**self).notify(alert)
    }
}

impl<N: Notifier + ?Sized> Notifier for Arc<N> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn notify(&self, alert: &Alert) -> Result<(), NotifyError> {
        (**self).notify(alert)
    }
}

/// A channel with its routing and rate limit.
#[derive(Clone)]
pub(crate) struct Channel {
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) name: Arc<str>,
    /// The channel's default filter; each logger may set its own.
    pub(crate) min_level: crate::level::LevelFilter,
    /// Token bucket: at most this many alerts per minute.
    pub(crate) per_minute: u32,
    /// The name shown in this channel's alerts, instead of the event's.
    pub(crate) app_name: Option<String>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("min_level", &self.min_level)
            .field("per_minute", &self.per_minute)
            .finish()
    }
}

/// Throttling and delivery settings shared by all channels of a file.
#[derive(Debug, Clone)]
pub(crate) struct AlertPolicy {
    /// After an alert, a group alerts again at most once per cooldown, with
    /// a digest of what it suppressed.
    pub(crate) cooldown: Duration,
    /// Alert only once a group has happened this many times within `window`.
    pub(crate) threshold: u32,
    pub(crate) window: Duration,
    /// First retry delay (doubles each attempt, with jitter, up to 5 min).
    pub(crate) retry_base: Duration,
    /// Give up (status `failed`) after trying this long.
    pub(crate) give_up_after: Duration,
    /// How long the panic hook waits for a fatal alert to go out.
    pub(crate) panic_wait: Duration,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            cooldown: Duration::from_secs(600),
            threshold: 1,
            window: Duration::from_secs(3600),
            retry_base: Duration::from_secs(2),
            give_up_after: Duration::from_secs(24 * 3600),
            panic_wait: Duration::from_secs(2),
        }
    }
}

/// The alert channels of one database file, and the policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Alerting {
    pub(crate) channels: Vec<Channel>,
    pub(crate) policy: AlertPolicy,
}

impl Alerting {
    /// Sends a test alert through every channel, on a short-lived thread of
    /// its own (so it works from async code too), and returns each answer.
    pub(crate) fn send_test(&self, alert: Alert) -> Vec<(String, Result<(), NotifyError>)> {
        let channels = self.channels.clone();
        let run = move || {
            channels
                .iter()
                .map(|c| {
                    let mut a = alert.clone();
                    if let Some(app) = &c.app_name {
                        a.app_name = Some(app.clone());
                    }
                    (c.name.to_string(), c.notifier.notify(&a))
                })
                .collect::<Vec<_>>()
        };
        std::thread::Builder::new()
            .name("errsnap-test-alert".into())
            .spawn(run)
            .ok()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}
