//! Report once: an error passed up with `?` through several layers, each
//! calling `.report()`, is one failure, not one event per layer.
//!
//! The rule (applied on the writer, to resolved events of kind error):
//! a later error event B is the same failure as an earlier one A when
//!
//! 1. both were raised on the same thread, B at most 1 s after A;
//! 2. B's chain ends with A's chain (B may have added context above it,
//!    as `anyhow::Context` does);
//! 3. B was reported somewhere else (another location) or with more
//!    context: the same error reported again at the same place is a new
//!    failure (a retry loop), never merged;
//! 4. their stacks say B is further up the same call chain: B's stack is
//!    shorter, A's minus A's deeper frames, and B reports in the frame that
//!    called toward A, on that line or up to 3 lines after it
//!    (`f().report(l)?`, `f()` / `.context(..)` / `.report(l)?`); or both
//!    carry the same backtrace of the error's own making (`anyhow`/`eyre`
//!    errors that captured one). Two reports from one function (two files
//!    missing, say) are two failures.
//!
//! One event is kept, with the outermost context: when both are in one
//! batch (the usual case: `?` takes microseconds, and the writer gathers a
//! batch for 10 ms), A is dropped and B stored. When A was already written,
//! B is dropped. Either way the drop is counted (`deduplicated` in
//! `counters`). Sentry's Dedupe integration drops repeats the same way; it
//! keeps the first.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::event::{Event, EventKind, Frame, Location};

/// How far apart two reports of one failure may be.
pub(crate) const WINDOW_MS: i64 = 1_000;
/// How many recent error events are remembered across batches.
const REMEMBERED: usize = 64;

/// What is remembered of a stored error event.
#[derive(Debug, Clone)]
struct Seen {
    thread: u64,
    at: i64,
    chain: Vec<String>,
    frames: Arc<[Frame]>,
    location: Option<Location>,
    origin: bool,
}

impl Seen {
    fn of(e: &Event) -> Seen {
        Seen {
            thread: e.thread_id,
            at: e.timestamp_ms,
            chain: chain_texts(e),
            frames: e.frames.clone(),
            location: e.location.clone(),
            origin: e.origin,
        }
    }
}

fn chain_texts(e: &Event) -> Vec<String> {
    if e.chain.is_empty() {
        vec![e.message.clone()]
    } else {
        e.chain.iter().map(|c| c.message.clone()).collect()
    }
}

/// The writer's memory of recent error events.
#[derive(Debug, Default)]
pub(crate) struct Dedupe {
    recent: VecDeque<Seen>,
}

impl Dedupe {
    /// Removes the events that repeat a failure already in `events` or
    /// recently stored; returns the rest and those removed.
    pub(crate) fn apply(&mut self, events: Vec<Event>) -> (Vec<Event>, Vec<Event>) {
        let mut slots: Vec<Option<Event>> = events.into_iter().map(Some).collect();
        let mut dropped = Vec::new();
        for i in 0..slots.len() {
            let Some(b) = slots[i].as_ref().filter(|e| e.kind == EventKind::Error) else {
                continue;
            };
            let b_seen = Seen::of(b);
            let inner = (0..i).rev().find(|&j| {
                slots[j].as_ref().is_some_and(|a| {
                    a.kind == EventKind::Error && same_failure(&Seen::of(a), &b_seen)
                })
            });
            if let Some(j) = inner {
                // Both in this batch: keep the outer report.
                dropped.extend(slots[j].take());
            } else if self.recent.iter().any(|a| same_failure(a, &b_seen)) {
                // The inner report is written already: keep it alone.
                dropped.extend(slots[i].take());
            }
        }
        let kept: Vec<Event> = slots.into_iter().flatten().collect();
        let newest = kept.iter().map(|e| e.timestamp_ms).max().unwrap_or(0);
        for e in kept.iter().filter(|e| e.kind == EventKind::Error) {
            self.recent.push_back(Seen::of(e));
        }
        while self.recent.len() > REMEMBERED
            || self
                .recent
                .front()
                .is_some_and(|s| newest - s.at > WINDOW_MS)
        {
            self.recent.pop_front();
        }
        (kept, dropped)
    }
}

/// Whether `b` is `a` reported again further up its call chain.
fn same_failure(a: &Seen, b: &Seen) -> bool {
    let gap = b.at - a.at;
    a.thread == b.thread
        && (0..=WINDOW_MS).contains(&gap)
        && b.chain.len() >= a.chain.len()
        && b.chain.ends_with(&a.chain)
        && (b.chain.len() > a.chain.len() || a.location != b.location)
        && related_stacks(a, b)
}

fn related_stacks(a: &Seen, b: &Seen) -> bool {
    match (a.origin, b.origin) {
        // The same error's own backtrace: where it was made.
        (true, true) => !a.frames.is_empty() && frames_equal(&a.frames, &b.frames),
        (false, false) => is_ancestor(&a.frames, &b.frames),
        _ => false,
    }
}

fn frame_eq(x: &Frame, y: &Frame) -> bool {
    x.function == y.function
        && x.file == y.file
        && x.line == y.line
        && (x.function.is_some() || x.address == y.address)
}

fn frames_equal(a: &[Frame], b: &[Frame]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| frame_eq(x, y))
}

/// How many lines after its call toward the inner report the outer report
/// may be (`f()` / `.context(..)` / `.report(l)?` over a few lines).
const CALL_TO_REPORT_LINES: u32 = 3;

/// Whether `outer` is `inner`'s stack further up: outer's stack is
/// shorter, its frames are inner's outermost ones, and its reporting frame
/// is the frame that called toward the inner report, at that line or just
/// after it (`f().report(l)?`). (Inlined calls count: symbolization expands
/// them into frames of their own.)
fn is_ancestor(inner: &[Frame], outer: &[Frame]) -> bool {
    if outer.is_empty() || inner.len() <= outer.len() {
        return false;
    }
    let suffix = inner
        .iter()
        .rev()
        .zip(outer.iter().rev())
        .take_while(|(x, y)| frame_eq(x, y))
        .count();
    if suffix + 1 < outer.len() {
        return false;
    }
    // The frame of inner's stack that outer's reporting frame stands for.
    let called = &inner[inner.len() - outer.len()];
    let report = &outer[0];
    match (called.line, report.line) {
        (Some(call), Some(at)) => {
            called.function == report.function
                && called.file == report.file
                && (call..=call + CALL_TO_REPORT_LINES).contains(&at)
        }
        _ => frame_eq(called, report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(f: &str, line: u32) -> Frame {
        Frame {
            function: Some(f.to_owned()),
            file: Some("src/main.rs".to_owned()),
            line: Some(line),
            column: None,
            address: 0,
            module: None,
            module_offset: None,
            build_id: None,
            in_app: true,
        }
    }

    fn seen(thread: u64, at: i64, chain: &[&str], frames: Vec<Frame>, line: u32) -> Seen {
        Seen {
            thread,
            at,
            chain: chain.iter().map(|s| (*s).to_owned()).collect(),
            frames: Arc::from(frames),
            location: Some(Location {
                file: "src/main.rs".into(),
                line,
                column: 1,
            }),
            origin: false,
        }
    }

    #[test]
    // Long by design: one inner report against each variant of an outer one
    // (the matches, then each way a report stops being one), each stack
    // written out beside its assertion.
    fn an_outer_report_of_the_same_failure_is_recognised() {
        let main = frame("app::main", 30);
        let rt = frame("std::rt::lang_start", 1);
        // b() reports at line 10, called from c() at line 20; c() reports
        // at line 21, called from main at line 30.
        let inner = seen(
            1,
            0,
            &["disk full"],
            vec![
                frame("app::b", 10),
                frame("app::c", 20),
                main.clone(),
                rt.clone(),
            ],
            10,
        );
        let outer = seen(
            1,
            5,
            &["saving", "disk full"],
            vec![frame("app::c", 21), main.clone(), rt.clone()],
            21,
        );
        assert!(same_failure(&inner, &outer));
        // Reported far below the line that called toward the failure: a
        // failure of its own with the same text.
        let far = seen(
            1,
            5,
            &["saving", "disk full"],
            vec![frame("app::c", 29), main.clone(), rt.clone()],
            29,
        );
        assert!(!same_failure(&inner, &far));
        // Without added context, another location still says "further up".
        let outer_same_chain = seen(
            1,
            5,
            &["disk full"],
            vec![frame("app::c", 21), main.clone(), rt.clone()],
            21,
        );
        assert!(same_failure(&inner, &outer_same_chain));
        // Not: another thread, too late, another chain, the order reversed.
        assert!(!same_failure(
            &inner,
            &Seen {
                thread: 2,
                ..outer.clone()
            }
        ));
        assert!(!same_failure(
            &inner,
            &Seen {
                at: WINDOW_MS + 1,
                ..outer.clone()
            }
        ));
        assert!(!same_failure(
            &inner,
            &seen(1, 5, &["saving", "disk gone"], outer.frames.to_vec(), 21)
        ));
        assert!(!same_failure(&outer, &inner));
        // Not: the same error at the same place again (a retry loop).
        let again = seen(1, 5, &["disk full"], inner.frames.to_vec(), 10);
        assert!(!same_failure(&inner, &again));
        // Not: two reports in one function (the same depth).
        let next_line = seen(
            1,
            5,
            &["disk full"],
            vec![
                frame("app::b", 12),
                frame("app::c", 20),
                main.clone(),
                rt.clone(),
            ],
            12,
        );
        assert!(!same_failure(&inner, &next_line));
        // Not: a sibling call reporting the same text (two frames differ).
        let sibling = seen(
            1,
            5,
            &["saving", "disk full"],
            vec![frame("app::d", 11), frame("app::c", 22), main, rt],
            11,
        );
        assert!(!same_failure(&inner, &sibling));
    }

    #[test]
    fn errors_with_their_own_backtrace_match_on_it() {
        let origin = vec![frame("app::open", 3), frame("app::main", 9)];
        let a = Seen {
            origin: true,
            ..seen(1, 0, &["gone"], origin.clone(), 5)
        };
        let b = Seen {
            origin: true,
            ..seen(1, 1, &["loading", "gone"], origin.clone(), 7)
        };
        assert!(same_failure(&a, &b));
        let other = Seen {
            origin: true,
            ..seen(1, 1, &["loading", "gone"], vec![frame("app::open", 4)], 7)
        };
        assert!(!same_failure(&a, &other));
        let mixed = seen(1, 1, &["loading", "gone"], origin, 7);
        assert!(!same_failure(&a, &mixed));
    }
}
