//! The writer while the store cannot be written: events kept in the spool
//! beside it (or per user), imported once the store is back.

use super::{Target, Writer};
use crate::event::Event;
use crate::store::spool;
use crate::util::internal_log;

impl Writer {
    /// Notes whether events wait in the spool; with a server as the store,
    /// `flush` waits for them to be forwarded.
    pub(super) fn set_spooled(&mut self, spooled: bool) {
        self.spooled = spooled;
        if !self.shared.cfg.backend.is_file() {
            let mut st = self.shared.lock();
            if st.unforwarded != spooled {
                st.unforwarded = spooled;
                self.shared.progress.notify_all();
            }
        }
    }

    pub(super) fn spool(&mut self, events: &[Event]) {
        match spool::append(&self.shared.path, events) {
            Ok(()) => self.set_spooled(true),
            Err(io) => {
                internal_log::report(
                    "events lost",
                    &format_args!("{} events could not be spooled: {io}", events.len()),
                );
                self.shared.count_dropped(events.len() as u64);
                for e in events {
                    let unwritable = super::super::Lost::Unwritable;
                    self.shared
                        .count_lost_upstream(&e.alert_channels, unwritable);
                }
            }
        }
    }

    pub(super) fn import_spool(&mut self) {
        if !matches!(self.shared.cfg.target, Target::File) {
            return;
        }
        let Some(store) = self.store() else {
            self.set_spooled(true);
            return;
        };
        match spool::import(store) {
            Ok(imported) => {
                self.note_outbox(imported.outcome);
                if imported.outcome.alerts > 0 {
                    self.kick_delivery();
                }
                let pending = spool::has_pending(&self.shared.path);
                self.set_spooled(pending);
            }
            Err(e) => {
                self.set_spooled(true);
                internal_log::report("spool import", &internal_log::chain(&e));
                self.on_store_error(&e);
            }
        }
    }
}
