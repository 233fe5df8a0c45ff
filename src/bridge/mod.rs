//! Bridges from the `tracing` and `log` ecosystems.
//!
//! Both turn records at or above a capture level (default error) into
//! errsnap events and keep lower ones (default info and up) as breadcrumbs.
//! Neither recurses: records made on errsnap's own threads (`errsnap-*`,
//! where its HTTP, SMTP and SQLite dependencies run) are ignored, and so are
//! the targets of those dependencies, which may log secrets such as the
//! webhook URL at debug level.

#[cfg(feature = "log")]
pub(crate) mod log;
#[cfg(feature = "tower")]
mod redact_http;
#[cfg(feature = "tower")]
pub(crate) mod tower;
#[cfg(feature = "tracing")]
pub(crate) mod tracing;

/// Targets never recorded (errsnap's own and its network dependencies').
const IGNORED_TARGETS: &[&str] = &[
    "errsnap",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tokio_rustls",
    "lettre",
    "rusqlite",
];

/// Whether a record from `target` on the current thread must be ignored.
#[cfg_attr(not(any(feature = "log", feature = "tracing")), allow(dead_code))]
pub(crate) fn ignored(target: &str) -> bool {
    let root = target.split("::").next().unwrap_or(target);
    if IGNORED_TARGETS.contains(&root) {
        return true;
    }
    crate::capture::ThreadInfo::current()
        .name
        .is_some_and(|n| n.starts_with("errsnap-"))
}
