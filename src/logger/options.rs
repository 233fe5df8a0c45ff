//! [`PushOptions`]: the per-call choices of a capture.

use std::collections::BTreeMap;

use crate::event::Attachment;
use crate::level::Level;

/// The seed's three switches for [`EventLogger::push_to_table`], the level,
/// and per-call tags, extra data and grouping.
///
/// Every capture path takes them: [`push_to_table`], [`capture_error_with`],
/// `result.report_with_options(..)`, and the event builder's setters.
///
/// ```
/// use errsnap::PushOptions;
/// let opts = PushOptions::new()
///     .slack(true)
///     .email(false)
///     .hw_monitor(true)
///     .tag("tenant", "acme")
///     .extra("order", 1234)
///     .fingerprint(["payment-provider-down"]);
/// assert!(opts.hw_monitor_enabled());
/// ```
///
/// [`EventLogger::push_to_table`]: crate::EventLogger::push_to_table
/// [`push_to_table`]: crate::EventLogger::push_to_table
/// [`capture_error_with`]: crate::EventLogger::capture_error_with
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushOptions {
    /// Whether to take the snapshot (`None`: yes).
    pub(crate) snapshot: Option<bool>,
    /// Explicit per-event choices: `(channel, on)`, one per channel.
    pub(crate) channels: Vec<(&'static str, bool)>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    /// Custom grouping parts (see [`PushOptions::fingerprint`]).
    pub(crate) fingerprint: Option<Vec<String>>,
    /// The error's own backtrace, as text (`anyhow`, `eyre`): where it was
    /// made, rather than where it was reported.
    pub(crate) origin: Option<String>,
    pub(crate) level: Level,
    pub(crate) attachments: Vec<Attachment>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            snapshot: None,
            channels: Vec::new(),
            tags: BTreeMap::new(),
            extra: serde_json::Map::new(),
            fingerprint: None,
            origin: None,
            level: Level::Error,
            attachments: Vec::new(),
        }
    }
}

impl PushOptions {
    /// Level error, with a hardware snapshot, alerts routed by level.
    pub fn new() -> Self {
        Self::default()
    }
    /// `true` asks for a Slack alert whatever the level; `false` prevents
    /// one. Unset, the level decides (Slack gets error and above).
    #[must_use]
    pub fn slack(self, on: bool) -> Self {
        self.channel(crate::channels::SLACK, on)
    }
    /// `true` asks for an e-mail alert whatever the level; `false` prevents
    /// one. Unset, the level decides (e-mail gets fatal).
    #[must_use]
    pub fn email(self, on: bool) -> Self {
        self.channel(crate::channels::EMAIL, on)
    }
    /// The one choice per channel: a later call replaces an earlier one.
    fn channel(mut self, name: &'static str, on: bool) -> Self {
        self.channels.retain(|(c, _)| *c != name);
        self.channels.push((name, on));
        self
    }
    /// Record the CPU/memory snapshot (the seed's `hw_logs`) with the event.
    #[must_use]
    pub fn hw_monitor(mut self, on: bool) -> Self {
        self.snapshot = Some(on);
        self
    }
    /// The event's level (default: error). Errors captured with
    /// [`capture_error_with`](crate::EventLogger::capture_error_with) use it too.
    #[must_use]
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }
    /// Adds a tag (indexed text) to this event, on top of the logger's.
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
    /// Adds structured extra data. Values nested deeper than 64 levels are
    /// cut there (the deeper part becomes a marker string).
    #[must_use]
    pub fn extra(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        let mut value = value.into();
        crate::event::bound_json_depth(&mut value);
        if let Some(old) = self.extra.insert(key.into(), value) {
            crate::event::drop_json(old);
        }
        self
    }
    /// Groups the event by these parts instead of errsnap's own
    /// fingerprint, as Sentry's fingerprint rules do: events with the same
    /// parts share a group whatever their message or stack. A part equal to
    /// [`DEFAULT_FINGERPRINT`](crate::event::DEFAULT_FINGERPRINT) (`"{{ default }}"`) stands for errsnap's own
    /// fingerprint, to split a group further rather than merge groups.
    ///
    /// ```
    /// use errsnap::PushOptions;
    /// // Every timeout of the payment provider is one group:
    /// let merge = PushOptions::new().fingerprint(["payments", "timeout"]);
    /// // The usual groups, split by tenant:
    /// let split = PushOptions::new().fingerprint(["{{ default }}", "tenant-42"]);
    /// # let _ = (merge, split);
    /// ```
    #[must_use]
    pub fn fingerprint<I, S>(mut self, parts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fingerprint = Some(parts.into_iter().map(Into::into).collect());
        self
    }
    /// Keeps a blob or file with the event (see [`Attachment`] for the
    /// caps; a file is read on the writer thread).
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
    /// use errsnap::{Attachment, Level, PushOptions};
    /// let options = PushOptions::new()
    ///     .level(Level::Warn)
    ///     .attach(Attachment::text("row.csv", "7,ann,,"));
    /// logger.push_to_table("import failed", options);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn attach(mut self, attachment: Attachment) -> Self {
        self.attachments.push(attachment);
        self
    }
    /// Whether a snapshot is recorded.
    pub fn hw_monitor_enabled(&self) -> bool {
        self.snapshot.unwrap_or(true)
    }
}

/// When the panic hook and the crash handler print a one-line message for
/// the person running the program instead of Rust's panic message and
/// backtrace (see [`EventLoggerBuilder::end_user_message`](crate::EventLoggerBuilder::end_user_message)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EndUserMessage {
    /// Never: Rust's own message (the default).
    #[default]
    Off,
    /// In release builds (`debug_assertions` off), as `human-panic` does:
    /// developers keep their backtraces.
    ReleaseBuilds,
    /// Always.
    Always,
}

impl EndUserMessage {
    /// Whether the message is printed in this build.
    pub(crate) fn applies(self) -> bool {
        match self {
            EndUserMessage::Off => false,
            EndUserMessage::ReleaseBuilds => !cfg!(debug_assertions),
            EndUserMessage::Always => true,
        }
    }
}
