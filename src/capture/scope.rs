//! The scope current on the caller's thread: a thread-local
//! `Option<Arc<ScopeData>>`, read when an event is captured (also by the
//! panic hook: it never panics, and blocks on nothing but the scope's own
//! breadcrumb ring). Scopes are built and entered in `logger::scope`.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::event::{Breadcrumb, EventContext};

thread_local! {
    static CURRENT: RefCell<Option<Arc<ScopeData>>> = const { RefCell::new(None) };
}

/// One entered scope, merged with its parents (shared, immutable but for
/// its breadcrumbs).
#[derive(Debug)]
pub(crate) struct ScopeData {
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    pub(crate) context: EventContext,
    /// Breadcrumbs raised in this scope (not in a nested one).
    crumbs: Mutex<VecDeque<Breadcrumb>>,
    parent: Option<Arc<ScopeData>>,
    /// Its guard was dropped: restoring it would revive an ended scope.
    closed: AtomicBool,
    /// What `configure_scope` set on it after it was entered (an auth
    /// middleware's user, say): over the rest, under the event's own.
    late: Mutex<Late>,
}

/// Values set on a scope after it was entered.
#[derive(Debug, Default)]
pub(crate) struct Late {
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    pub(crate) user: Option<crate::event::User>,
    pub(crate) transaction: Option<String>,
}

/// A scope's values, the late ones applied.
#[derive(Debug, Default)]
pub(crate) struct Effective {
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    pub(crate) context: EventContext,
}

impl ScopeData {
    pub(crate) fn new(
        tags: BTreeMap<String, String>,
        extra: serde_json::Map<String, serde_json::Value>,
        context: EventContext,
        parent: Option<Arc<ScopeData>>,
    ) -> ScopeData {
        ScopeData {
            tags,
            extra,
            context,
            crumbs: Mutex::new(VecDeque::new()),
            parent,
            closed: AtomicBool::new(false),
            late: Mutex::new(Late::default()),
        }
    }

    /// Applies `f` to the values set late (see `configure_scope`).
    pub(crate) fn configure_late(&self, f: impl FnOnce(&mut Late)) {
        f(&mut self.late.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Its values with the late ones applied (copies).
    pub(crate) fn effective(&self) -> Effective {
        let mut out = Effective {
            tags: self.tags.clone(),
            extra: self.extra.clone(),
            context: self.context.clone(),
        };
        let late = self.late.lock().unwrap_or_else(|p| p.into_inner());
        out.tags
            .extend(late.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.extra
            .extend(late.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        if late.user.is_some() {
            out.context.user = late.user.clone();
        }
        if late.transaction.is_some() {
            out.context.transaction = late.transaction.clone();
        }
        out
    }

    /// Marks the scope ended (its guard was dropped).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// `scope`, or its nearest parent whose guard is still alive.
    pub(crate) fn live(mut scope: Option<Arc<ScopeData>>) -> Option<Arc<ScopeData>> {
        while let Some(s) = &scope {
            if !s.closed.load(Ordering::Relaxed) {
                break;
            }
            scope = s.parent.clone();
        }
        scope
    }

    /// Rough heap size, for the queue's byte budget.
    pub(crate) fn approx_bytes(&self) -> usize {
        let request = self.context.request.as_ref().map_or(0, |r| {
            r.path.len()
                + r.query.as_ref().map_or(0, String::len)
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 48)
                    .sum::<usize>()
                + 128
        });
        self.tags
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum::<usize>()
            + self.extra.len() * 64
            + request
            + 128
    }

    /// Keeps a breadcrumb in this scope's ring (the oldest goes beyond
    /// `cap`).
    pub(crate) fn add_breadcrumb(&self, crumb: Breadcrumb, cap: usize) {
        let mut ring = self.crumbs.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() >= cap {
            ring.pop_front();
        }
        ring.push_back(crumb);
    }

    /// Takes the breadcrumbs of this scope and its parents (oldest first,
    /// at most `cap`).
    pub(crate) fn take_breadcrumbs(&self, cap: usize) -> Vec<Breadcrumb> {
        let mut all = Vec::new();
        let mut at = Some(self);
        while let Some(s) = at {
            let mut ring = s.crumbs.lock().unwrap_or_else(|p| p.into_inner());
            all.extend(ring.drain(..));
            drop(ring);
            at = s.parent.as_deref();
        }
        if all.is_empty() {
            return all;
        }
        all.sort_by_key(|c| c.timestamp_ms);
        let skip = all.len().saturating_sub(cap);
        all.drain(..skip);
        all
    }
}

/// The scope current on this thread (never panics, also during thread
/// teardown or inside the panic hook).
pub(crate) fn current() -> Option<Arc<ScopeData>> {
    CURRENT
        .try_with(|c| c.try_borrow().ok().and_then(|s| s.clone()))
        .ok()
        .flatten()
}

/// Puts `scope` in the thread-local; returns what was there.
pub(crate) fn swap(scope: Option<Arc<ScopeData>>) -> Option<Arc<ScopeData>> {
    CURRENT
        .try_with(|c| match c.try_borrow_mut() {
            Ok(mut cur) => std::mem::replace(&mut *cur, scope),
            Err(_) => None,
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breadcrumbs_come_from_the_scope_and_its_parents_oldest_first() {
        let crumb = |t, m: &str| Breadcrumb {
            timestamp_ms: t,
            level: crate::level::Level::Info,
            category: "c".into(),
            message: m.into(),
        };
        let outer = Arc::new(ScopeData::new(
            BTreeMap::new(),
            Default::default(),
            EventContext::default(),
            None,
        ));
        let inner = ScopeData::new(
            BTreeMap::new(),
            Default::default(),
            EventContext::default(),
            Some(outer.clone()),
        );
        outer.add_breadcrumb(crumb(1, "a"), 10);
        inner.add_breadcrumb(crumb(2, "b"), 10);
        inner.add_breadcrumb(crumb(3, "c"), 10);
        inner.add_breadcrumb(crumb(4, "d"), 2);
        let got = inner.take_breadcrumbs(2);
        let texts: Vec<_> = got.iter().map(|c| c.message.as_str()).collect();
        assert_eq!(texts, ["c", "d"]);
        assert!(inner.take_breadcrumbs(10).is_empty());
        assert!(outer.take_breadcrumbs(10).is_empty());
    }
}
