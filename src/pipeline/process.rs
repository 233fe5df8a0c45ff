//! The writer's whole treatment of one captured event: resolve its stack
//! (or read its own backtrace), fill in the context, group it, run the
//! logger's `before_save` hook, redact it, print it on the console.

use std::sync::Arc;
use std::time::Duration;

use crate::capture::CallSite;
use crate::event::{Event, Frame, Snapshot};
use crate::pipeline::fingerprint;
use crate::pipeline::grouping::Grouping;
use crate::pipeline::symbolize::Symbolizer;
use crate::pipeline::PendingEvent;
use crate::util::internal_log;

impl PendingEvent {
    /// The writer's whole treatment of one event: resolve, the logger's
    /// `before_save` hook, redaction, console output. Returns the event to
    /// store, or `None` (console only, or dropped by the hook).
    pub(crate) fn process(
        self,
        symbolizer: &mut Symbolizer,
        budget: Duration,
        snapshot: Option<&Snapshot>,
        grouping: &mut Grouping,
    ) -> Option<Event> {
        let context = self.context.clone();
        let (store, console) = (self.store, self.console);
        let parts = self.fingerprint.clone();
        // The fingerprint of the fields as captured: for a `before_save`
        // hook, and for a store whose events were grouped that way (a
        // transition); else not computed (it is computed once, below).
        let captured = context.before_save.is_some() || grouping.needs_captured();
        let mut ev = self.resolve(symbolizer, budget, snapshot, captured);
        let frame_redactions = ev.redactions;
        if let Some(hook) = &context.before_save {
            let keep = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&mut ev)));
            match keep {
                Ok(true) => {}
                Ok(false) => return None,
                Err(_) => {
                    // A panicking hook must not cost the event.
                    ev.tags
                        .insert("errsnap.before_save".into(), "panicked".into());
                }
            }
        }
        // The hook may have added data: bound it like data from the caller.
        crate::event::bound_map_depth(&mut ev.extra);
        ev.redactions = frame_redactions + context.redactor.event(&mut ev);
        // Grouped as stored: `errsnap regroup` recomputes from these fields.
        let captured = std::mem::take(&mut ev.fingerprint);
        if store && !grouping.apply(&mut ev, parts.as_deref(), captured) {
            return None;
        }
        if console {
            print_console(&ev);
        }
        store.then_some(ev)
    }

    /// Turns the captured event into a stored one (writer side).
    // Long by design: the captured event is moved field by field into the
    // stored one; what must be worked out first (the stack, its fingerprint,
    // the merged tags and context) comes before.
    pub(crate) fn resolve(
        self,
        symbolizer: &mut Symbolizer,
        budget: Duration,
        snapshot: Option<&Snapshot>,
        captured: bool,
    ) -> Event {
        let trace = match (&self.origin, &self.backtrace) {
            (Some(text), _) => Some(crate::pipeline::origin::trace(text, &self.context.redactor)),
            (None, Some(raw)) => Some(symbolizer.trace(raw, budget, &self.context.redactor)),
            (None, None) => None,
        };
        let (frames, symbols_resolved, backtrace_hash, redactions): (Arc<[Frame]>, bool, _, u32) =
            match &trace {
                Some(t) if !t.frames.is_empty() => (
                    t.frames.clone(),
                    t.complete,
                    Some(t.hash.clone()),
                    t.redactions,
                ),
                Some(t) => (t.frames.clone(), t.complete, None, 0),
                None => (Arc::from(Vec::new()), true, None, 0),
            };
        let location = self.call_site.as_ref().map(CallSite::to_location);
        let logger = self.context.logger.clone();
        let mut fingerprint = String::new();
        if captured {
            fingerprint = fingerprint::fingerprint(
                &logger,
                self.kind,
                &self.message,
                &self.chain,
                &frames,
                location.as_ref(),
            );
            if let Some(parts) = &self.fingerprint {
                fingerprint = fingerprint::custom_fingerprint(parts, &fingerprint);
            }
        }
        // The logger's tags, then the scope's, then the event's own.
        let mut tags = self.context.tags.clone();
        let mut extra = self.extra;
        let mut context = crate::event::EventContext::default();
        if let Some(scope) = &self.scope {
            let scope = scope.effective();
            tags.extend(scope.tags);
            for (k, v) in scope.extra {
                if !extra.contains_key(&k) {
                    extra.insert(k, v);
                }
            }
            context = scope.context;
            context.keep_personal(self.context.store_user_email, self.context.store_user_ip);
        }
        tags.extend(self.tags);
        Event {
            id: self.id,
            timestamp_ms: self.timestamp_ms,
            logger,
            level: self.level,
            kind: self.kind,
            message: self.message,
            chain: self.chain,
            location,
            thread_name: self.thread.name.map(|n| n.to_string()),
            thread_id: self.thread.id,
            pid: std::process::id(),
            app_name: self.context.app_name.clone(),
            release: self.context.release.clone(),
            environment: self.context.environment.clone(),
            tags,
            extra,
            frames,
            backtrace_hash,
            symbols_resolved,
            fingerprint,
            custom_fingerprint: self.fingerprint.is_some(),
            earlier_fingerprints: Vec::new(),
            snapshot: if self.snapshot {
                snapshot.cloned()
            } else {
                None
            },
            alert_channels: self.alert_channels,
            breadcrumbs: self.breadcrumbs,
            redactions,
            origin: self.origin.is_some(),
            context,
            attachments: if self.attachments.is_empty() {
                Vec::new()
            } else {
                crate::pipeline::attach::read(self.attachments, self.context.attachment_cap)
            },
        }
    }
}

/// One line on stderr for the console destination.
fn print_console(ev: &Event) {
    let at = ev
        .location
        .as_ref()
        .map(|l| format!(" ({}:{})", l.file, l.line))
        .unwrap_or_default();
    let first = ev.message.lines().next().unwrap_or("");
    let line = format!(
        "[{}] {:<5} {}: {first}{at}",
        crate::util::time::format_utc(ev.timestamp_ms),
        ev.level.as_str().to_ascii_uppercase(),
        ev.logger
    );
    let _ = internal_log::stderr_line(&line);
}
