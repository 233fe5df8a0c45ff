//! errsnap's own failures: written to stderr, never through errsnap itself,
//! at most once a minute per kind of failure.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static LAST: Mutex<Option<HashMap<&'static str, Instant>>> = Mutex::new(None);
const QUIET_FOR: Duration = Duration::from_secs(60);

/// Reports an internal problem of kind `what` (a static category, e.g.
/// `"write"`), unless the same kind was reported within the last minute.
pub(crate) fn report(what: &'static str, detail: &dyn std::fmt::Display) {
    let now = Instant::now();
    let mut guard = match LAST.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let map = guard.get_or_insert_with(HashMap::new);
    if map
        .get(what)
        .is_some_and(|t| now.duration_since(*t) < QUIET_FOR)
    {
        return;
    }
    map.insert(what, now);
    drop(guard);
    #[allow(clippy::print_stderr)]
    {
        eprintln!("errsnap: {what}: {detail}");
    }
}

/// Formats an error with its whole `source()` chain on one line.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}

/// Writes one line to stderr (the console destination), ignoring a closed
/// stderr.
pub(crate) fn stderr_line(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    err.write_all(line.as_bytes())?;
    err.write_all(b"\n")
}
