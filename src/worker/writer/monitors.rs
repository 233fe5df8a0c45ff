//! The writer's part in monitors: it records the check-ins callers handed
//! over, judges every monitor on the heartbeat (runs missed, past their
//! maximum, or whose process died), and raises an event per finding.

use std::sync::atomic::Ordering;

use super::Writer;
use crate::event::{Event, StoredAttachment};
use crate::monitors::check_in::MonitorSpec;
use crate::monitors::judge::Finding;
use crate::store::claims::Claimant;
use crate::util::internal_log;

impl Writer {
    /// Records the check-ins waiting, and raises the events of what they
    /// found (a failure, a recovery). Without a store they wait (up to
    /// their cap) for the next time it can be written.
    pub(super) fn record_check_ins(&mut self) {
        let shared = self.shared.clone();
        let notes: Vec<_> = {
            let mut st = shared.lock();
            let notes: Vec<_> = st.check_ins.drain(..).collect();
            st.check_ins_in_hand = notes.len();
            notes
        };
        if notes.is_empty() {
            return;
        }
        let dropped = shared.check_ins_dropped.swap(0, Ordering::Relaxed);
        let run = Claimant::this_process();
        let mut found: Vec<(MonitorSpec, Finding, Vec<StoredAttachment>)> = Vec::new();
        let mut unrecorded = Vec::new();
        match self.store() {
            Some(store) => {
                if dropped > 0 {
                    let _ = store.add_counter("check_ins_dropped", dropped);
                }
                for note in notes {
                    match store.record_check_in(&note, &run) {
                        Ok(f) => {
                            // The note's attachments go with its failure.
                            let mut kept = if f.iter().any(|f| f.status.failed() && !f.recovered) {
                                crate::pipeline::attach::read(
                                    note.attachments.clone(),
                                    note.attachment_cap,
                                )
                            } else {
                                Vec::new()
                            };
                            found.extend(f.into_iter().map(|f| {
                                let a = if f.recovered {
                                    Vec::new()
                                } else {
                                    std::mem::take(&mut kept)
                                };
                                (note.spec.clone(), f, a)
                            }));
                        }
                        Err(e) => {
                            internal_log::report("check-in", &internal_log::chain(&e));
                            if e.is_busy() {
                                unrecorded.push(note);
                            }
                        }
                    }
                }
            }
            None => unrecorded = notes,
        }
        {
            let mut st = shared.lock();
            // Kept for the next try, oldest first, within the cap.
            for note in unrecorded.into_iter().rev() {
                if st.check_ins.len() < super::super::MAX_CHECK_INS {
                    st.check_ins.push_front(note);
                }
            }
        }
        // The events first: a flush waits until the check-ins in hand are
        // recorded *and* what they raised is written.
        self.raise(found);
        self.note_queued_items();
        shared.lock().check_ins_in_hand = 0;
        shared.progress.notify_all();
    }

    /// Judges every monitor (on the heartbeat).
    pub(super) fn judge_monitors(&mut self) {
        let Some(store) = self.store() else {
            return;
        };
        match store.judge_monitors(crate::util::time::now_ms()) {
            Ok(found) => {
                let found: Vec<_> = found.into_iter().map(|(s, f)| (s, f, Vec::new())).collect();
                if !found.is_empty() {
                    self.note_queued_items();
                }
                self.raise(found);
            }
            Err(e) => internal_log::report("monitors", &internal_log::chain(&e)),
        }
    }

    fn raise(&mut self, found: Vec<(MonitorSpec, Finding, Vec<StoredAttachment>)>) {
        if found.is_empty() {
            return;
        }
        let channels = self.shared.cfg.rules().channels;
        let events: Vec<Event> = found
            .into_iter()
            .map(|(spec, f, attachments)| {
                let mut ev = crate::pipeline::monitors::event(&spec, &f, channels.clone());
                ev.attachments = attachments;
                ev
            })
            .collect();
        self.write(&events);
        self.kick_delivery();
    }
}
