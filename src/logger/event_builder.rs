//! [`EventBuilder`] (`logger.event(level, msg)...emit()`): an event's
//! message and error, with the same [`PushOptions`] every capture path takes.

use super::options::PushOptions;
use super::{chain_of, EventLogger};
use crate::capture::CallSite;
use crate::event::{ChainLink, EventId, EventKind};

/// An event being put together; see [`EventLogger::event`]. Nothing is
/// recorded until [`emit`](Self::emit).
#[derive(Debug)]
#[must_use = "the event is recorded only when `emit` is called"]
pub struct EventBuilder<'a> {
    pub(super) logger: &'a EventLogger,
    pub(super) kind: EventKind,
    pub(super) message: String,
    pub(super) chain: Vec<ChainLink>,
    pub(super) call_site: CallSite,
    pub(super) options: PushOptions,
}

/// The setters [`PushOptions`] has, on the builder (one set of rules:
/// each delegates to the options' own).
macro_rules! delegate {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(where $($w:tt)*)?;)*) => {$(
        $(#[$doc])*
        #[doc = concat!("The same as [`PushOptions::", stringify!($name), "`].")]
        pub fn $name(mut self, $($arg: $ty),*) -> Self $(where $($w)*)? {
            self.options = self.options.$name($($arg),*);
            self
        }
    )*};
}

impl EventBuilder<'_> {
    delegate! {
        /// Adds a tag (indexed text).
        fn tag(key: impl Into<String>, value: impl Into<String>);
        /// Adds structured extra data.
        fn extra(key: impl Into<String>, value: impl Into<serde_json::Value>);
        /// Groups the event by these parts instead of errsnap's own
        /// fingerprint.
        fn fingerprint(parts: impl IntoIterator<Item = impl Into<String>>);
        /// Keeps a blob or file with the event.
        fn attach(attachment: crate::event::Attachment);
        /// Whether to take the CPU/memory snapshot (default: yes).
        fn hw_monitor(on: bool);
        /// `true` asks for a Slack alert whatever the level; `false`
        /// prevents one.
        fn slack(on: bool);
        /// `true` asks for an e-mail alert whatever the level; `false`
        /// prevents one.
        fn email(on: bool);
    }
    /// All the per-event choices at once (the level stays the one given to
    /// [`EventLogger::event`]).
    pub fn options(mut self, options: PushOptions) -> Self {
        self.options = PushOptions {
            level: self.options.level,
            ..options
        };
        self
    }
    /// Attaches an error and its `source()` chain.
    pub fn error<E: std::error::Error + ?Sized + 'static>(mut self, err: &E) -> Self {
        self.chain = chain_of(err);
        self.kind = EventKind::Error;
        self
    }
    /// Records the event; returns its id.
    pub fn emit(self) -> EventId {
        self.logger.submit(
            self.options.level,
            self.kind,
            self.message,
            self.chain,
            Some(self.call_site),
            self.options,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::event::Attachment;
    use crate::{EventLogger, Level, PushOptions};

    /// The builder's setters and the options' give the same event: one
    /// set of rules for both.
    #[test]
    fn the_event_builder_and_push_options_record_the_same_event() {
        let (logger, captured) = EventLogger::for_tests();
        let options = PushOptions::new()
            .level(Level::Warn)
            .tag("tenant", "acme")
            .extra("order", 1234)
            .fingerprint(["payments", "timeout"])
            .attach(Attachment::text("row.csv", "7,ann"))
            .hw_monitor(false)
            .slack(false)
            .slack(true);
        logger.push_to_table("import failed", options.clone());
        logger
            .event(Level::Warn, "import failed")
            .tag("tenant", "acme")
            .extra("order", 1234)
            .fingerprint(["payments", "timeout"])
            .attach(Attachment::text("row.csv", "7,ann"))
            .hw_monitor(false)
            .slack(false)
            .slack(true)
            .emit();
        logger
            .event(Level::Warn, "import failed")
            .options(options.level(Level::Fatal))
            .emit();
        let events = captured.events();
        assert_eq!(events.len(), 3);
        for e in &events {
            assert_eq!(e.level(), Level::Warn, "the event's own level stays");
            assert_eq!(e.tags().get("tenant").map(String::as_str), Some("acme"));
            assert_eq!(e.extra().get("order"), Some(&serde_json::json!(1234)));
            assert_eq!(e.fingerprint(), events[0].fingerprint());
            assert!(e.snapshot().is_none());
            assert_eq!(e.attachments().len(), 1);
            assert_eq!(e.attachments()[0].name, "row.csv");
        }
        // Another custom fingerprint groups apart: the parts were used.
        logger
            .event(Level::Warn, "import failed")
            .fingerprint(["payments", "other"])
            .emit();
        assert_ne!(captured.events()[3].fingerprint(), events[0].fingerprint());
    }

    #[test]
    fn a_later_channel_choice_replaces_an_earlier_one() {
        let o = PushOptions::new().slack(true).email(true).slack(false);
        assert_eq!(o.channels, vec![("email", true), ("slack", false)]);
        assert!(PushOptions::new().hw_monitor_enabled());
        assert!(!PushOptions::new().hw_monitor(false).hw_monitor_enabled());
    }
}
