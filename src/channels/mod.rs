//! Alerts: the [`Channel`] trait, the [`Alert`] a channel sends, and the
//! built-in channels (Slack, e-mail, a generic JSON webhook), registered
//! in one place (`setup`).
//!
//! Channels run only on errsnap's `errsnap-notify` thread (`outbox`), never
//! on the caller's thread or in the panic hook. Each alert is first written
//! to the `outbox` table in the same transaction as its event, keyed by the
//! channel's name; the notify thread works from the outbox, so an alert
//! pending when the process exits is sent at the next start.

pub(crate) mod delivery;
#[cfg(feature = "email")]
pub(crate) mod email;
pub(crate) mod forward;
#[cfg(any(
    feature = "slack",
    feature = "webhook",
    feature = "sentry",
    feature = "otlp"
))]
mod http;
// The formatting is pure and shared by the built-in channels; without
// their features parts of it go unused.
#[cfg_attr(not(all(feature = "slack", feature = "email")), allow(dead_code))]
pub(crate) mod format;
pub(crate) mod outbox;
mod pace;
pub(crate) mod setup;
mod suspect;
#[cfg(any(
    feature = "slack",
    feature = "email",
    feature = "webhook",
    feature = "sentry",
    feature = "otlp"
))]
pub(crate) mod tls;
#[cfg(feature = "webhook")]
mod webhook;

pub use crate::event::alert::{Alert, AlertFrame, AlertKind};
pub(crate) use crate::event::AlertPolicy;
pub use delivery::ChannelDelivery;
#[cfg(feature = "slack")]
mod slack;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::event::EventKind;
use crate::level::Level;

#[cfg(feature = "email")]
#[cfg_attr(docsrs, doc(cfg(feature = "email")))]
pub use email::{EmailChannel, EmailChannelBuilder, SmtpTls};
#[cfg(feature = "slack")]
#[cfg_attr(docsrs, doc(cfg(feature = "slack")))]
pub use slack::SlackChannel;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub use webhook::WebhookChannel;

/// The built-in channels' names (stored in the outbox, used for routing).
pub(crate) const SLACK: &str = "slack";
/// See [`SLACK`].
pub(crate) const EMAIL: &str = "email";
/// See [`SLACK`].
#[cfg_attr(not(feature = "webhook"), allow(dead_code))]
pub(crate) const WEBHOOK: &str = "webhook";
/// See [`SLACK`]: forwarding to a Sentry-compatible server.
#[cfg_attr(not(feature = "sentry"), allow(dead_code))]
pub(crate) const SENTRY: &str = "sentry";
/// See [`SLACK`]: forwarding to an OpenTelemetry collector.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub(crate) const OTLP: &str = "otlp";

impl crate::settings::Config {
    /// Sends a test alert through every channel these settings set up
    /// (Slack, e-mail, the webhook), without a database, and returns what
    /// each answered (the `errsnap test-alert` command).
    ///
    /// # Errors
    /// The settings are invalid (the error names the key).
    ///
    /// ```
    /// let results = errsnap::Config::empty().send_test_alert().unwrap();
    /// assert!(results.is_empty()); // nothing configured
    /// ```
    pub fn send_test_alert(&self) -> crate::error::Result<Vec<(String, Result<(), ChannelError>)>> {
        let settings = crate::settings::Settings::from_config(self)?;
        let alerting = setup::alerting(self, &settings, &setup::AlertOverrides::default())?;
        let alert = Alert::test(
            "errsnap",
            settings.app_name.clone(),
            settings.environment.clone(),
        );
        Ok(alerting.send_test(alert))
    }
}

/// Whether `host` names this machine (127.0.0.0/8, ::1, localhost).
#[cfg_attr(
    not(any(
        feature = "slack",
        feature = "email",
        feature = "webhook",
        feature = "sentry",
        feature = "otlp"
    )),
    allow(dead_code)
)]
pub(crate) fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

impl Alert {
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
            release: None,
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
            hosts_seen: None,
            occurrences: 1,
            suspect: None,
            trend: Vec::new(),
            suppressed: 0,
        }
    }
}

/// The shortest and longest pause a rate limit imposes on a channel.
const MIN_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(24 * 3600);

/// Why a channel could not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelError {
    message: String,
    retry: Retry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Later(Option<Duration>),
    /// The server limits the whole channel: nothing is sent on it for this
    /// long (this alert included).
    Paused(Duration),
    NeverThisAlert,
    NeverThisChannel,
}

impl ChannelError {
    /// A passing failure (timeout, 5xx, connection refused): retried with
    /// backoff, or after `retry_after` when the server said so.
    pub fn transient(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        ChannelError {
            message: message.into(),
            retry: Retry::Later(retry_after),
        }
    }

    /// The server rate-limits the channel (`429`, `Retry-After`,
    /// `X-Sentry-Rate-Limits`): this alert is retried, and nothing else is
    /// sent on the channel, after `pause`.
    ///
    /// The pause is kept within 1 s and 24 h, whatever the server said.
    pub fn rate_limited(message: impl Into<String>, pause: Duration) -> Self {
        ChannelError {
            message: message.into(),
            retry: Retry::Paused(pause.clamp(MIN_PAUSE, MAX_PAUSE)),
        }
    }

    /// This alert can never be delivered (the server rejected its content);
    /// other alerts still can.
    pub fn rejected(message: impl Into<String>) -> Self {
        ChannelError {
            message: message.into(),
            retry: Retry::NeverThisAlert,
        }
    }

    /// The channel itself is broken (bad credentials, removed webhook): no
    /// alert is attempted on it again until the next start; pending alerts
    /// stay in the outbox.
    pub fn channel_broken(message: impl Into<String>) -> Self {
        ChannelError {
            message: message.into(),
            retry: Retry::NeverThisChannel,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.retry, Retry::Later(_) | Retry::Paused(_))
    }

    /// How long the whole channel must wait, when the server said so.
    pub fn pause(&self) -> Option<Duration> {
        match self.retry {
            Retry::Paused(d) => Some(d),
            _ => None,
        }
    }

    /// Whether the whole channel should stop.
    pub fn breaks_channel(&self) -> bool {
        self.retry == Retry::NeverThisChannel
    }

    /// The delay the server asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.retry {
            Retry::Later(d) => d,
            Retry::Paused(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ChannelError {}

/// A destination for alerts.
///
/// Called only on errsnap's `errsnap-notify` thread, one alert at a time, so
/// an implementation may block (with a timeout of its own: a channel that
/// never returns stalls every channel). Return [`ChannelError::transient`]
/// for failures worth retrying, [`ChannelError::rejected`] for an alert that
/// can never be delivered, and [`ChannelError::channel_broken`] when nothing
/// will get through until the configuration changes. A channel must never
/// put a secret (a webhook URL, a password) into its error messages: they
/// are stored in the `outbox` table.
///
/// Only [`name`](Self::name) and [`send`](Self::send) are required. The
/// limits are defaults: settings and each logger may change them.
///
/// ```
/// use errsnap::{Level, channels::{Alert, Channel, ChannelError}};
///
/// struct Stdout;
/// impl Channel for Stdout {
///     fn name(&self) -> &str { "stdout" }
///     fn send(&self, alert: &Alert) -> Result<(), ChannelError> {
///         println!("{}", self.render(alert));
///         Ok(())
///     }
///     fn min_level(&self) -> Level { Level::Warn }
/// }
/// ```
pub trait Channel: Send + Sync + 'static {
    /// The channel's name: stored in the outbox, used for routing
    /// (`slack`, `email` and `webhook` for the built-in ones). Must be
    /// stable and distinct.
    fn name(&self) -> &str;

    /// Delivers one alert.
    fn send(&self, alert: &Alert) -> Result<(), ChannelError>;

    /// The lowest level alerted, unless settings or the logger say
    /// otherwise (default: error).
    fn min_level(&self) -> Level {
        Level::Error
    }

    /// At most this many alerts per minute, one at a time (default 60).
    fn per_minute(&self) -> u32 {
        60
    }

    /// The alert as this channel sends it (its payload), for previews and
    /// tests; the default is the plain-text form of the e-mail body.
    fn render(&self, alert: &Alert) -> String {
        format::email_text(alert)
    }
}

impl<C: Channel + ?Sized> Channel for Box<C> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn send(&self, alert: &Alert) -> Result<(), ChannelError> {
        (**self).send(alert)
    }
    fn min_level(&self) -> Level {
        (**self).min_level()
    }
    fn per_minute(&self) -> u32 {
        (**self).per_minute()
    }
    fn render(&self, alert: &Alert) -> String {
        (**self).render(alert)
    }
}

impl<C: Channel + ?Sized> Channel for Arc<C> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn send(&self, alert: &Alert) -> Result<(), ChannelError> {
        (**self).send(alert)
    }
    fn min_level(&self) -> Level {
        (**self).min_level()
    }
    fn per_minute(&self) -> u32 {
        (**self).per_minute()
    }
    fn render(&self, alert: &Alert) -> String {
        (**self).render(alert)
    }
}

/// A channel as one database file uses it: its limits (data, from the
/// channel's defaults, then settings) and the name its alerts show.
#[derive(Clone)]
pub(crate) struct ChannelEntry {
    pub(crate) channel: Arc<dyn Channel>,
    /// For a forwarding channel (Sentry, OTLP): what sends each stored
    /// event in full; every routed event is queued, with no alert policy.
    pub(crate) forward: Option<Arc<dyn forward::Forward>>,
    pub(crate) name: Arc<str>,
    /// The channel's default filter; each logger may set its own.
    pub(crate) min_level: crate::level::LevelFilter,
    /// Token bucket: at most this many alerts per minute.
    pub(crate) per_minute: u32,
    /// The name shown in this channel's alerts, instead of the event's.
    pub(crate) app_name: Option<String>,
}

impl ChannelEntry {
    /// An entry with the channel's own limits.
    pub(crate) fn new(channel: Arc<dyn Channel>) -> ChannelEntry {
        ChannelEntry {
            name: Arc::from(channel.name()),
            min_level: channel.min_level().into(),
            per_minute: channel.per_minute().max(1),
            app_name: None,
            forward: None,
            channel,
        }
    }
}

impl fmt::Debug for ChannelEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelEntry")
            .field("name", &self.name)
            .field("min_level", &self.min_level)
            .field("per_minute", &self.per_minute)
            .field("forwards", &self.forward.is_some())
            .finish()
    }
}

/// The alert channels of one database file, and the policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Alerting {
    pub(crate) channels: Vec<ChannelEntry>,
    pub(crate) policy: AlertPolicy,
    /// Where a new group's suspect commit is blamed (`ERRSNAP_REPO_PATH`).
    pub(crate) repo: Option<crate::suspect::Repository>,
}

impl Alerting {
    /// What the store needs to decide: the channels, which of them
    /// forward every event, and the policy.
    pub(crate) fn rules(&self) -> crate::store::AlertRules {
        crate::store::AlertRules {
            channels: self.channels.iter().map(|c| c.name.to_string()).collect(),
            forward: self
                .channels
                .iter()
                .filter(|c| c.forward.is_some())
                .map(|c| c.name.to_string())
                .collect(),
            takes: self
                .channels
                .iter()
                .filter_map(|c| Some((c, c.forward.as_ref()?)))
                .flat_map(|(c, f)| f.takes().iter().map(|k| (c.name.to_string(), *k)))
                .collect(),
            policy: self.policy.clone(),
        }
    }

    /// Sends a test alert through every channel, on a short-lived thread of
    /// its own (so it works from async code too), and returns each answer.
    pub(crate) fn send_test(&self, alert: Alert) -> Vec<(String, Result<(), ChannelError>)> {
        let channels = self.channels.clone();
        let run = move || {
            channels
                .iter()
                .map(|c| {
                    let mut a = alert.clone();
                    if let Some(app) = &c.app_name {
                        a.app_name = Some(app.clone());
                    }
                    (c.name.to_string(), c.channel.send(&a))
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
