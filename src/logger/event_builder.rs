//! [`EventBuilder`] (`logger.event(level, msg)...emit()`) and the per-event
//! additions every capture path carries.

use std::collections::BTreeMap;

use super::options::PushOptions;
use super::{chain_of, EventLogger};
use crate::capture::CallSite;
use crate::event::{ChainLink, EventId, EventKind};
use crate::level::Level;

/// Per-event additions.
#[derive(Debug)]
pub(crate) struct Extras {
    pub(crate) snapshot: Option<bool>,
    /// Explicit per-event choices: `(channel, on)`.
    pub(crate) channels: Vec<(&'static str, bool)>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    /// Custom grouping parts (see [`PushOptions::fingerprint`]).
    pub(crate) fingerprint: Option<Vec<String>>,
    /// The error's own backtrace, as text (`anyhow`, `eyre`): where it was
    /// made, rather than where it was reported.
    pub(crate) origin: Option<String>,
    /// The level asked for with the options.
    pub(crate) level: Level,
    pub(crate) attachments: Vec<crate::event::Attachment>,
}

impl Default for Extras {
    fn default() -> Extras {
        Extras {
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

impl From<PushOptions> for Extras {
    fn from(o: PushOptions) -> Extras {
        Extras {
            snapshot: Some(o.hw_monitor),
            channels: [("slack", o.slack), ("email", o.email)]
                .into_iter()
                .filter_map(|(c, on)| on.map(|on| (c, on)))
                .collect(),
            tags: o.tags,
            extra: o.extra,
            fingerprint: o.fingerprint,
            origin: None,
            level: o.level,
            attachments: Vec::new(),
        }
    }
}

/// An event being put together; see [`EventLogger::event`]. Nothing is
/// recorded until [`emit`](Self::emit).
#[derive(Debug)]
#[must_use = "the event is recorded only when `emit` is called"]
pub struct EventBuilder<'a> {
    pub(super) logger: &'a EventLogger,
    pub(super) level: Level,
    pub(super) kind: EventKind,
    pub(super) message: String,
    pub(super) chain: Vec<ChainLink>,
    pub(super) call_site: CallSite,
    pub(super) extras: Extras,
}

impl EventBuilder<'_> {
    /// Adds a tag (indexed text).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extras.tags.insert(key.into(), value.into());
        self
    }
    /// Adds structured extra data. Values nested deeper than 64 levels
    /// are cut there (the deeper part becomes a marker string).
    pub fn extra(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        let mut value = value.into();
        crate::event::bound_json_depth(&mut value);
        if let Some(old) = self.extras.extra.insert(key.into(), value) {
            crate::event::drop_json(old);
        }
        self
    }
    /// Attaches an error and its `source()` chain.
    pub fn error<E: std::error::Error + ?Sized + 'static>(mut self, err: &E) -> Self {
        self.chain = chain_of(err);
        self.kind = EventKind::Error;
        self
    }
    /// Groups the event by these parts instead of errsnap's own
    /// fingerprint; see [`PushOptions::fingerprint`].
    pub fn fingerprint<I, S>(mut self, parts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extras.fingerprint = Some(parts.into_iter().map(Into::into).collect());
        self
    }
    /// Keeps a blob or file with the event (see [`Attachment`] for the
    /// caps; a file is read on the writer thread).
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
    /// use errsnap::{Attachment, Level};
    /// logger
    ///     .event(Level::Error, "import failed")
    ///     .attach(Attachment::text("row.csv", "7,ann,,"))
    ///     .attach(Attachment::file_tail("/var/log/app.log", 64 * 1024))
    ///     .emit();
    /// # Ok(()) }
    /// ```
    ///
    /// [`Attachment`]: crate::Attachment
    pub fn attach(mut self, attachment: crate::event::Attachment) -> Self {
        self.extras.attachments.push(attachment);
        self
    }
    /// Whether to take the CPU/memory snapshot (default: yes).
    pub fn hw_monitor(mut self, on: bool) -> Self {
        self.extras.snapshot = Some(on);
        self
    }
    /// `true` asks for a Slack alert whatever the level; `false` prevents one.
    pub fn slack(mut self, on: bool) -> Self {
        self.extras.channels.push(("slack", on));
        self
    }
    /// `true` asks for an e-mail alert whatever the level; `false` prevents one.
    pub fn email(mut self, on: bool) -> Self {
        self.extras.channels.push(("email", on));
        self
    }
    /// Records the event; returns its id.
    pub fn emit(self) -> EventId {
        self.logger.submit(
            self.level,
            self.kind,
            self.message,
            self.chain,
            Some(self.call_site),
            self.extras,
        )
    }
}
