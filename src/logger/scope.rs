//! Scopes: context (tags, extra, a user, a transaction, a request) that
//! applies to every event, panic and breadcrumb raised inside it, on one
//! thread or across the `.await`s of one future.
//!
//! The current scope is a thread-local `Option<Arc<ScopeData>>`. Entering
//! a scope that sets nothing pushes nothing (no allocation); a non-empty
//! one is merged with its parent once, at entry. A [`Scoped`] future puts
//! its scope in the thread-local around each poll (and takes it out after,
//! even when the poll panics), so any executor works and tasks interleaved
//! on one thread keep their own context. Capturing an event reads the
//! thread-local (one `Arc` clone); the writer merges it.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub(crate) use crate::capture::scope::ScopeData;
use crate::capture::scope::{current, swap};
use crate::event::{Request, User};

/// What a scope sets, filled by the closure given to
/// [`EventLogger::scope`](crate::EventLogger::scope) and friends. Values
/// set here override the enclosing scope's; an event's own tags and extra
/// override the scope's.
#[derive(Debug, Default)]
pub struct Scope {
    tags: BTreeMap<String, String>,
    extra: serde_json::Map<String, serde_json::Value>,
    user: Option<User>,
    transaction: Option<String>,
    request: Option<Request>,
    trace: Option<(String, String)>,
}

impl Scope {
    /// Sets a tag on every event raised in the scope.
    pub fn set_tag(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Scope {
        self.tags.insert(key.into(), value.into());
        self
    }
    /// Sets an extra value on every event raised in the scope.
    pub fn set_extra(
        &mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> &mut Scope {
        self.extra.insert(key.into(), value.into());
        self
    }
    /// Sets the user (see [`User`] for what is stored).
    pub fn set_user(&mut self, user: User) -> &mut Scope {
        self.user = Some(user);
        self
    }
    /// Names the transaction (a route, a job).
    pub fn set_transaction(&mut self, name: impl Into<String>) -> &mut Scope {
        self.transaction = Some(name.into());
        self
    }
    /// Sets the HTTP request (the [`tower`](crate::tower) layer does).
    pub fn set_request(&mut self, request: Request) -> &mut Scope {
        self.request = Some(request);
        self
    }
    /// Links events raised in the scope to a distributed trace: the W3C
    /// trace id (32 hex digits) and span id (16 hex digits), stored as the
    /// tags `trace_id` and `span_id`. Ignored unless both are valid.
    pub fn set_trace(&mut self, trace_id: &str, span_id: &str) -> &mut Scope {
        if is_hex_id(trace_id, 32) && is_hex_id(span_id, 16) {
            self.trace = Some((trace_id.to_ascii_lowercase(), span_id.to_ascii_lowercase()));
        }
        self
    }

    fn is_empty(&self) -> bool {
        self.tags.is_empty()
            && self.extra.is_empty()
            && self.user.is_none()
            && self.transaction.is_none()
            && self.request.is_none()
            && self.trace.is_none()
    }

    /// The scope's data merged over `parent` (`None`: nothing set).
    fn merge(self, parent: Option<&Arc<ScopeData>>) -> Option<Arc<ScopeData>> {
        if self.is_empty() {
            return None;
        }
        let base = parent.map(|p| p.effective()).unwrap_or_default();
        let mut tags = base.tags;
        tags.extend(self.tags);
        if let Some((t, s)) = self.trace {
            tags.insert("trace_id".into(), t);
            tags.insert("span_id".into(), s);
        }
        let mut extra = base.extra;
        extra.extend(self.extra);
        let mut context = base.context;
        if self.user.is_some() {
            context.user = self.user;
        }
        if self.transaction.is_some() {
            context.transaction = self.transaction;
        }
        if self.request.is_some() {
            context.request = self.request;
        }
        Some(Arc::new(ScopeData::new(
            tags,
            extra,
            context,
            parent.cloned(),
        )))
    }
}

fn is_hex_id(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
}

/// Builds a scope from `configure` over the current one.
pub(crate) fn enter_data(configure: impl FnOnce(&mut Scope)) -> Option<Arc<ScopeData>> {
    let mut scope = Scope::default();
    configure(&mut scope);
    let parent = current();
    match scope.merge(parent.as_ref()) {
        Some(data) => Some(data),
        None => parent,
    }
}

/// While alive, a scope is current on this thread; dropping it restores the
/// scope that was current before (see
/// [`EventLogger::push_scope`](crate::EventLogger::push_scope)).
///
/// It cannot be sent to another thread. Do not hold it across an `.await`:
/// while the task waits, other tasks polled on the thread would run in its
/// scope; use [`EventLogger::scoped`](crate::EventLogger::scoped) for
/// futures (clippy's `await_holding_invalid_type` can forbid it:
/// `await-holding-invalid-types = ["errsnap::ScopeGuard"]`). Guards
/// dropped out of order never revive an ended scope, and nothing panics.
#[must_use = "the scope ends when the guard is dropped"]
#[derive(Debug)]
pub struct ScopeGuard {
    /// What it pushed and what was current before.
    pushed: Option<(Arc<ScopeData>, Option<Arc<ScopeData>>)>,
    _not_send: PhantomData<*const ()>,
}

impl ScopeGuard {
    pub(crate) fn push(configure: impl FnOnce(&mut Scope)) -> ScopeGuard {
        let mut scope = Scope::default();
        configure(&mut scope);
        if scope.is_empty() {
            // Nothing pushed: not even the current scope is looked at.
            return ScopeGuard {
                pushed: None,
                _not_send: PhantomData,
            };
        }
        let parent = current();
        let pushed = scope.merge(parent.as_ref()).map(|data| {
            let previous = swap(Some(data.clone()));
            (data, previous)
        });
        ScopeGuard {
            pushed,
            _not_send: PhantomData,
        }
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let Some((data, previous)) = self.pushed.take() else {
            return;
        };
        data.close();
        // Dropped out of order (a scope pushed after it is still current):
        // that one goes on, and skips this one when it ends.
        if current().is_some_and(|c| Arc::ptr_eq(&c, &data)) {
            swap(ScopeData::live(previous));
        }
    }
}

pin_project_lite::pin_project! {
    /// A future that runs inside a scope: the scope is current while the
    /// future is polled, and while it is dropped (a cancelled task's
    /// destructors log in it too), on whichever thread does it. Made by
    /// [`EventLogger::scoped`](crate::EventLogger::scoped) or
    /// [`bind_scope`](crate::bind_scope).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        scope: Option<Arc<ScopeData>>,
        // `None` only while it is dropped.
        #[pin]
        future: Option<F>,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let _restore = Restore(Some(swap(this.scope.clone())));
            this.future.set(None);
        }
    }
}

impl<F> Scoped<F> {
    pub(crate) fn new(scope: Option<Arc<ScopeData>>, future: F) -> Scoped<F> {
        Scoped {
            scope,
            future: Some(future),
        }
    }
}

/// Restores the previous scope when a poll ends, panics included.
struct Restore(Option<Option<Arc<ScopeData>>>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            swap(previous);
        }
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _restore = Restore(Some(swap(this.scope.clone())));
        match this.future.as_pin_mut() {
            Some(future) => future.poll(cx),
            None => unreachable!("a Scoped future is emptied only when it is dropped"),
        }
    }
}

/// Changes the scope current on this thread in place: what `configure`
/// sets (tags, extra, the user, the transaction) applies to every event
/// raised in that scope from now on, also those the scope's owner records
/// after the code that set it returned. An auth middleware or a handler
/// sets the request's user this way, and the [tower](crate::tower)
/// layer's 5xx event carries it. A request or trace set here is ignored
/// (enter a scope for those). Returns `false` when no scope is current
/// (nothing is changed).
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
/// logger.scope(|s| { s.set_transaction("GET /cart"); }, || {
///     // deep in the handler, once the session is known:
///     errsnap::configure_scope(|s| { s.set_user(errsnap::User::new().id("42")); });
/// });
/// # Ok(()) }
/// ```
pub fn configure_scope(configure: impl FnOnce(&mut Scope)) -> bool {
    let Some(current) = current() else {
        return false;
    };
    let mut scope = Scope::default();
    configure(&mut scope);
    current.configure_late(|late| {
        late.tags.extend(scope.tags);
        late.extra.extend(scope.extra);
        if scope.user.is_some() {
            late.user = scope.user;
        }
        if scope.transaction.is_some() {
            late.transaction = scope.transaction;
        }
    });
    true
}

/// Binds the scope current on this thread to `future`, so that it applies
/// there too: a spawned task does not inherit its spawner's scope.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
/// let _g = logger.push_scope(|s| {
///     s.set_tag("job", "nightly");
/// });
/// let child = errsnap::bind_scope(async { /* events here carry job=nightly */ });
/// # drop(child);
/// # Ok(()) }
/// ```
pub fn bind_scope<F: Future>(future: F) -> Scoped<F> {
    Scoped::new(current(), future)
}

impl super::EventLogger {
    /// Runs `f` inside a scope that `configure` fills: every event, panic
    /// and breadcrumb raised in `f` on this thread carries its tags, extra,
    /// user, transaction and request. Scopes nest; the inner one overrides.
    /// The scope is process-wide (any logger's events see it), like the
    /// thread it lives on.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
    /// logger.scope(
    ///     |s| {
    ///         s.set_tag("job", "import").set_user(errsnap::User::new().id("42"));
    ///     },
    ///     || logger.error("row 7 unreadable"), // stored with job=import, user 42
    /// );
    /// # Ok(()) }
    /// ```
    pub fn scope<R>(&self, configure: impl FnOnce(&mut Scope), f: impl FnOnce() -> R) -> R {
        let _guard = ScopeGuard::push(configure);
        f()
    }

    /// Enters a scope until the returned guard is dropped (on this thread).
    /// A `configure` that sets nothing pushes nothing and allocates nothing.
    pub fn push_scope(&self, configure: impl FnOnce(&mut Scope)) -> ScopeGuard {
        ScopeGuard::push(configure)
    }

    /// Wraps `future` so that it runs inside a scope (built now, over the
    /// scope current here): the scope is current while the future is polled,
    /// on any executor, so tasks interleaved on one thread keep their own.
    /// With the panic hook installed, a panic raised while it is polled is
    /// recorded with its scope.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
    /// let task = logger.scoped(|s| { s.set_transaction("sync-orders"); }, async {
    ///     // ... .await ...; events raised here carry the transaction
    /// });
    /// # drop(task);
    /// # Ok(()) }
    /// ```
    pub fn scoped<F: Future>(&self, configure: impl FnOnce(&mut Scope), future: F) -> Scoped<F> {
        Scoped::new(enter_data(configure), future)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_scope_pushes_nothing_and_nested_scopes_override() {
        assert!(current().is_none());
        {
            let _empty = ScopeGuard::push(|_| {});
            assert!(current().is_none());
            let _a = ScopeGuard::push(|s| {
                s.set_tag("a", "1").set_tag("b", "1");
            });
            {
                let _b = ScopeGuard::push(|s| {
                    s.set_tag("b", "2").set_user(User::new().id("7"));
                });
                let cur = current().expect("scope");
                assert_eq!(cur.tags["a"], "1");
                assert_eq!(cur.tags["b"], "2");
                assert_eq!(
                    cur.context.user.as_ref().and_then(|u| u.id.as_deref()),
                    Some("7")
                );
            }
            assert_eq!(current().expect("outer").tags["b"], "1");
        }
        assert!(current().is_none());
    }

    #[test]
    fn guards_dropped_out_of_order_never_revive_an_ended_scope() {
        let outer = ScopeGuard::push(|s| {
            s.set_tag("outer", "1");
        });
        let a = ScopeGuard::push(|s| {
            s.set_tag("a", "1");
        });
        let b = ScopeGuard::push(|s| {
            s.set_tag("b", "1");
        });
        drop(a);
        // b goes on (with what it inherited).
        assert!(current().is_some_and(|s| s.tags.contains_key("b")));
        drop(b);
        // Not a's scope: the one before it.
        let now = current().expect("outer");
        assert!(now.tags.contains_key("outer") && !now.tags.contains_key("a"));
        drop(outer);
        assert!(current().is_none());
    }

    #[test]
    fn trace_ids_must_be_valid() {
        let mut s = Scope::default();
        s.set_trace("0".repeat(32).as_str(), "00f067aa0ba902b7");
        assert!(s.trace.is_none());
        s.set_trace("4bf92f3577b34da6a3ce929d0e0e4736", "xyz");
        assert!(s.trace.is_none());
        s.set_trace("4BF92F3577B34DA6A3CE929D0E0E4736", "00f067aa0ba902b7");
        assert_eq!(
            s.trace,
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into()
            ))
        );
    }
}
