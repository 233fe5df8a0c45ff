//! The builder's setters of errsnap's settings: each writes its key of the
//! settings table (`settings::keys`) into the builder's layer, the top one
//! (builder > environment > `.env` > settings file). The value is typed and
//! checked where every other source's is (`Settings::from_config`), and an
//! error names the key and the setter.
//!
//! One name per setting: a setter is called as its key, without `ERRSNAP_`
//! and the unit (`_MS`, `_SECS`, `_DAYS`; `_KB`, `_MB` become `_bytes`,
//! since the setter takes bytes); a setter of two keys is the name both
//! begin with. The tests hold every key to it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::EventLoggerBuilder;
use crate::level::LevelFilter;
use crate::settings::Durability;

/// Writes the setters, and the table of which setter writes which keys.
macro_rules! settings {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) { $($key:literal => $value:expr),+ $(,)? }
    )*) => {
        impl EventLoggerBuilder {
            $(
                $(#[$doc])*
                pub fn $name(mut self, $($arg: $ty),*) -> Self {
                    $( self.layer.insert($key, ($value, stringify!($name))); )+
                    self
                }
            )*
        }

        /// Every setter of a key, with the keys it writes.
        #[cfg(test)]
        pub(crate) const SETTERS: &[(&str, &[&str])] = &[$((stringify!($name), &[$($key),+])),*];
    };
}

/// A layer value: `None` when it cannot be written as text (a path that is
/// not UTF-8), which `build` reports naming the key and the setter.
type Value = Option<String>;

/// The builder's settings by key, with the setter that gave each; `Debug`
/// never shows a secret's value.
#[derive(Clone, Default)]
pub(crate) struct Layer(BTreeMap<&'static str, (Value, &'static str)>);

impl Layer {
    pub(super) fn insert(&mut self, key: &'static str, entry: (Value, &'static str)) {
        self.0.insert(key, entry);
    }
    fn get(&self, key: &str) -> Option<&(Value, &'static str)> {
        self.0.get(key)
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&&'static str, &(Value, &'static str))> {
        self.0.iter()
    }
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (key, (value, _)) in &self.0 {
            if crate::settings::keys::find(key).is_some_and(|k| k.secret) {
                m.entry(key, &"<redacted>");
            } else {
                m.entry(key, value);
            }
        }
        m.finish()
    }
}

fn text(v: impl Into<String>) -> Value {
    Some(v.into())
}

fn num(n: impl ToString) -> Value {
    Some(n.to_string())
}

fn flag(on: bool) -> Value {
    Some(if on { "true" } else { "false" }.to_owned())
}

/// Exactly, to the nanosecond (`humantime` reads it back).
fn duration(d: Duration) -> Value {
    Some(humantime::format_duration(d).to_string())
}

fn bytes(n: u64) -> Value {
    Some(format!("{n}B"))
}

fn path(p: &Path) -> Value {
    p.to_str().map(str::to_owned)
}

fn level(l: LevelFilter) -> Value {
    Some(l.to_string())
}

fn durability(d: Durability) -> Value {
    Some(
        match d {
            Durability::Normal => "normal",
            Durability::Full => "full",
        }
        .to_owned(),
    )
}

settings! {
    /// Switches errsnap off for this logger: it records nothing, creates no
    /// file, starts no thread and sends nothing; every call returns at
    /// once. `ERRSNAP_DISABLED=1` does the same from the environment or
    /// `.env` (for a test run of your application, say).
    fn disabled(off: bool) { "ERRSNAP_DISABLED" => flag(off) }
    /// The database file (default `./LOGS.db`; `ERRSNAP_DB_PATH`).
    fn db_path(p: impl AsRef<Path>) { "ERRSNAP_DB_PATH" => path(p.as_ref()) }
    /// Store events in a PostgreSQL database shared by a fleet
    /// (`postgres://user@host:port/db?sslmode=verify-full`; feature
    /// `postgres`) instead of the file; the file's place then keeps only
    /// the spool (events waiting while the server cannot be reached) and
    /// the crash files. Also `ERRSNAP_DATABASE_URL`.
    fn database_url(url: impl Into<String>) { "ERRSNAP_DATABASE_URL" => text(url) }
    /// The database's password when its URL has none (a secret: never
    /// shown; `ERRSNAP_DATABASE_PASSWORD`).
    fn database_password(secret: impl Into<String>) {
        "ERRSNAP_DATABASE_PASSWORD" => text(secret)
    }
    /// A PEM bundle of CAs trusted besides the built-in roots by SMTP,
    /// webhooks and forwarding; instead of them by PostgreSQL
    /// (`ERRSNAP_TLS_CA_FILE`).
    fn tls_ca_file(p: impl AsRef<Path>) { "ERRSNAP_TLS_CA_FILE" => path(p.as_ref()) }
    /// The application's name, stored with each event.
    fn app_name(v: impl Into<String>) { "ERRSNAP_APP_NAME" => text(v) }
    /// The release (version), stored with each event.
    fn release(v: impl Into<String>) { "ERRSNAP_RELEASE" => text(v) }
    /// The environment (`production`, `staging`, ...).
    fn environment(v: impl Into<String>) { "ERRSNAP_ENVIRONMENT" => text(v) }
    /// The git repository of the recorded code: when the release names a
    /// commit (`1.4.2+3f2c9e1`), the first alert of a new group names its
    /// suspect commit (`git blame` at that commit of the lines of the top
    /// in-app frames; run on the alerting thread, never the caller's).
    fn repo_path(p: impl AsRef<Path>) { "ERRSNAP_REPO_PATH" => path(p.as_ref()) }
    /// How recorded paths map into the repository: `build=repo` pairs,
    /// comma-separated (`/home/ci/build/shop=`).
    fn repo_path_map(v: impl Into<String>) { "ERRSNAP_REPO_PATH_MAP" => text(v) }
    /// Durability of commits (see [`Durability`]).
    fn durability(d: Durability) { "ERRSNAP_DURABILITY" => durability(d) }
    /// How many events may wait for the writer (default 10,000; at
    /// least 1).
    fn queue_capacity(n: usize) { "ERRSNAP_QUEUE_CAPACITY" => num(n.max(1)) }
    /// The one budget for everything done on the way out (default 3 s, at
    /// most 10 min): the panic hook's waits for the commit and for the
    /// fatal alert, then the guard's or the last logger's drain of the
    /// queue and the outbox. A failed delivery is retried within it when
    /// its backoff fits; what does not fit waits in the outbox for the
    /// next start.
    fn exit_budget(d: Duration) { "ERRSNAP_EXIT_BUDGET_MS" => duration(d) }
    /// On SIGTERM or SIGINT (`docker stop`, systemd, Kubernetes, Ctrl-C),
    /// drain the queue and deliver the alerts within the exit budget, then
    /// end by the same signal (same exit status). Taken only for a signal
    /// the application installed no handler for; Linux. Default off: the
    /// signal ends the process at once and what is queued is lost.
    fn drain_on_termination(on: bool) { "ERRSNAP_DRAIN_ON_TERMINATION" => flag(on) }
    /// How long the panic hook waits for the panic's record to be
    /// committed before writing it itself (default 2 s, within the exit
    /// budget).
    fn panic_timeout(d: Duration) { "ERRSNAP_PANIC_TIMEOUT_MS" => duration(d) }
    /// How long the writer keeps its symbol tables (the parsed debug
    /// information, tens of MiB for a binary with debug info) without a
    /// new stack to resolve; then it drops them and the next new stack
    /// loads them again. `Duration::ZERO` keeps them for good. Default
    /// 5 min.
    fn symbol_cache_idle(d: Duration) { "ERRSNAP_SYMBOL_CACHE_IDLE_SECS" => duration(d) }
    /// The memory the writer's symbol tables (errsnap's own, parsed one
    /// DWARF unit at a time) may hold, in bytes: estimated from the heap
    /// allocated while each unit is parsed and searched. Past it, the
    /// writer finishes the stack at hand and drops its cached names and
    /// parsed units, least recently used first; a later stack parses again
    /// what it needs. Default 32 MiB; from 1 MiB to 1 TiB (a value outside
    /// is taken as the nearest).
    fn symbol_cache_bytes(n: u64) {
        "ERRSNAP_SYMBOL_CACHE_MB" => bytes(n.clamp(1 << 20, 1 << 40))
    }
    /// How often an idle writer notes the run's last sign of life with the
    /// process's RSS and CPU (what `errsnap runs` shows for a run that was
    /// killed). Default 10 s; `Duration::ZERO` never.
    fn heartbeat(every: Duration) { "ERRSNAP_HEARTBEAT_SECS" => duration(every) }
    /// How many breadcrumbs the ring keeps (default 50, at most 10,000; 0
    /// disables).
    fn breadcrumbs(n: usize) { "ERRSNAP_BREADCRUMBS" => num(n.min(10_000)) }
    /// This logger's lowest level stored in the database (default warn).
    /// Panics, and events routed to an alert channel, are always stored.
    fn db_level(l: impl Into<LevelFilter>) { "ERRSNAP_DB_LEVEL" => level(l.into()) }
    /// This logger's lowest level printed on stderr (default off).
    fn console_level(l: impl Into<LevelFilter>) { "ERRSNAP_CONSOLE_LEVEL" => level(l.into()) }
    /// Keep one in `n` events below error (default 1: all). What sampling
    /// leaves out is counted in the `counters` table as `sampled_out`.
    fn sample_keep_one_in(n: u64) { "ERRSNAP_SAMPLE_KEEP_ONE_IN" => num(n.max(1)) }
    /// Also redact e-mail addresses (default off).
    fn redact_emails(on: bool) { "ERRSNAP_REDACT_EMAILS" => flag(on) }
    /// Stores a scope user's e-mail address (default off). Redaction still
    /// runs over it.
    fn store_user_email(on: bool) { "ERRSNAP_STORE_USER_EMAIL" => flag(on) }
    /// Stores IP addresses: a scope user's, a request's peer and its
    /// forwarding headers (default off).
    fn store_user_ip(on: bool) { "ERRSNAP_STORE_USER_IP" => flag(on) }
    /// Keeps a native crash's minidump as its attachment (default on). It
    /// holds the crashing thread's registers and 64 KiB of its raw stack
    /// memory, which redaction cannot reach.
    fn crash_minidump(on: bool) { "ERRSNAP_CRASH_MINIDUMP" => flag(on) }
    /// Redaction rules: every match of each regular expression is replaced
    /// by `[REDACTED]` (checked by [`build`](Self::build)). They replace
    /// `ERRSNAP_REDACT_PATTERNS`.
    fn redact_patterns(patterns: impl IntoIterator<Item = impl Into<String>>) {
        "ERRSNAP_REDACT_PATTERNS" => Some(patterns_json(patterns.into_iter().map(Into::into).collect()))
    }
    /// Automatic retention: the writer deletes events older than this (a
    /// group's first event, and events with a pending alert, are kept).
    fn retention_max_age(age: Duration) { "ERRSNAP_RETENTION_MAX_AGE_DAYS" => duration(age) }
    /// Automatic retention: keep at most this many events (the newest).
    fn retention_max_events(n: u64) { "ERRSNAP_RETENTION_MAX_EVENTS" => num(n.max(1)) }
    /// Automatic retention: keep the database's used size under this many
    /// bytes (at least 1 MiB), deleting the oldest events first.
    fn retention_max_bytes(n: u64) { "ERRSNAP_RETENTION_MAX_MB" => bytes(n.max(1 << 20)) }
    /// How long the flight recorder's readings of each run are kept
    /// (default 7 days; see `ERRSNAP_HEARTBEAT_SECS` for how often one is
    /// taken).
    fn retention_run_samples(age: Duration) {
        "ERRSNAP_RETENTION_RUN_SAMPLES_DAYS" => duration(age)
    }
    /// The attachments' bytes one event may carry (default 1 MiB, at most
    /// 16 MiB; 0: none).
    fn attachments_max_bytes_per_event(n: u64) {
        "ERRSNAP_ATTACHMENTS_MAX_KB_PER_EVENT" => bytes(n)
    }
    /// The attachments' bytes kept in the database, the oldest dropped
    /// first (default 100 MiB).
    fn attachments_max_bytes(n: u64) { "ERRSNAP_ATTACHMENTS_MAX_MB" => bytes(n) }
    /// After alerting, a group alerts again at most once per `cooldown`
    /// (default 10 min), with a digest of what it held back.
    fn alert_cooldown(cooldown: Duration) { "ERRSNAP_ALERT_COOLDOWN_SECS" => duration(cooldown) }
    /// Alert only once a group happened `count` times within `window`
    /// (default: on first sight).
    fn alert_threshold(count: u32, window: Duration) {
        "ERRSNAP_ALERT_THRESHOLD" => num(count.max(1)),
        "ERRSNAP_ALERT_THRESHOLD_WINDOW_SECS" => duration(window),
    }
    /// The connect and total timeout of one delivery (default 10 s).
    fn alert_timeout(d: Duration) { "ERRSNAP_ALERT_TIMEOUT_SECS" => duration(d) }
    /// How long the panic hook waits for a fatal alert to go out (default
    /// 2 s, within the exit budget; zero disables).
    fn panic_alert_wait(wait: Duration) { "ERRSNAP_PANIC_ALERT_WAIT_MS" => duration(wait) }
    /// The crash-loop rule: `runs` crashed or abnormal runs within
    /// `window` raise one "crash loop" alert, then digests while it lasts
    /// (default 3 in 5 minutes; 0 runs: never).
    fn crash_loop(runs: u32, window: Duration) {
        "ERRSNAP_CRASH_LOOP_RUNS" => num(runs),
        "ERRSNAP_CRASH_LOOP_WINDOW_SECS" => duration(window),
    }
    /// This logger's lowest level alerted on Slack (default error;
    /// `LevelFilter::Off` for none).
    fn slack_min_level(l: impl Into<LevelFilter>) { "ERRSNAP_SLACK_MIN_LEVEL" => level(l.into()) }
    /// This logger's lowest level alerted by e-mail (default fatal).
    fn email_min_level(l: impl Into<LevelFilter>) { "ERRSNAP_EMAIL_MIN_LEVEL" => level(l.into()) }
    /// Forwards every stored event at or above `ERRSNAP_SENTRY_MIN_LEVEL`
    /// (default error) to a Sentry-compatible server (Sentry, GlitchTip,
    /// Bugsink) through the outbox; feature `sentry`. The DSN is a secret:
    /// never shown.
    fn sentry_dsn(dsn: impl Into<String>) { "ERRSNAP_SENTRY_DSN" => text(dsn) }
    /// Sends a native crash's minidump with its event to the Sentry server
    /// (default off): the envelope's `event.minidump` attachment. Sentry
    /// then shows the dump's own threads and stack in place of errsnap's
    /// frames, unsymbolicated unless it has the binaries' debug files.
    fn sentry_minidump(on: bool) { "ERRSNAP_SENTRY_MINIDUMP" => flag(on) }
    /// Forwards every stored event at or above `ERRSNAP_OTLP_MIN_LEVEL`
    /// (default error) to an OpenTelemetry collector as an OTLP/HTTP log
    /// record (`http://127.0.0.1:4318`: `/v1/logs` is added) through the
    /// outbox; feature `otlp`.
    fn otlp_endpoint(url: impl Into<String>) { "ERRSNAP_OTLP_ENDPOINT" => text(url) }
}

/// The patterns as `ERRSNAP_REDACT_PATTERNS` holds a list: a JSON array.
pub(super) fn patterns_json(patterns: Vec<String>) -> String {
    serde_json::Value::from(patterns).to_string()
}

/// The names of errsnap 0.1's setters.
impl EventLoggerBuilder {
    /// The same as [`db_path`](Self::db_path).
    #[deprecated(since = "0.2.0", note = "renamed `db_path`")]
    pub fn path(self, p: impl AsRef<Path>) -> Self {
        self.db_path(p)
    }
    /// The same as [`exit_budget`](Self::exit_budget).
    #[deprecated(since = "0.2.0", note = "renamed `exit_budget`")]
    pub fn shutdown_timeout(self, d: Duration) -> Self {
        self.exit_budget(d)
    }
    /// The same as [`sample_keep_one_in`](Self::sample_keep_one_in).
    #[deprecated(since = "0.2.0", note = "renamed `sample_keep_one_in`")]
    pub fn sample_below_error(self, n: u64) -> Self {
        self.sample_keep_one_in(n)
    }
    /// The same as [`symbol_cache_bytes`](Self::symbol_cache_bytes).
    #[deprecated(since = "0.2.0", note = "renamed `symbol_cache_bytes`")]
    pub fn symbol_cache_budget(self, n: u64) -> Self {
        self.symbol_cache_bytes(n)
    }
    /// The same as [`retention_max_age`](Self::retention_max_age).
    #[deprecated(since = "0.2.0", note = "renamed `retention_max_age`")]
    pub fn retain_for(self, age: Duration) -> Self {
        self.retention_max_age(age)
    }
    /// The same as [`retention_max_events`](Self::retention_max_events).
    #[deprecated(since = "0.2.0", note = "renamed `retention_max_events`")]
    pub fn retain_events(self, n: u64) -> Self {
        self.retention_max_events(n)
    }
    /// The same as [`retention_max_bytes`](Self::retention_max_bytes).
    #[deprecated(since = "0.2.0", note = "renamed `retention_max_bytes`")]
    pub fn retain_bytes(self, n: u64) -> Self {
        self.retention_max_bytes(n)
    }
    /// Adds one redaction rule to those of
    /// [`redact_patterns`](Self::redact_patterns).
    #[deprecated(since = "0.2.0", note = "use `redact_patterns`")]
    pub fn redact(mut self, pattern: impl Into<String>) -> Self {
        const KEY: &str = "ERRSNAP_REDACT_PATTERNS";
        let mut list: Vec<String> = self
            .layer
            .get(KEY)
            .and_then(|(v, _)| v.as_deref())
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        list.push(pattern.into());
        self.layer
            .insert(KEY, (Some(patterns_json(list)), "redact"));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::keys::{self, KEYS};

    /// What a setter is called for a key: its name without `ERRSNAP_` and
    /// the unit, which the setter's type carries.
    fn setter_name(key: &str) -> String {
        let mut parts: Vec<String> = Vec::new();
        for p in key.trim_start_matches("ERRSNAP_").split('_') {
            match p {
                "MS" | "SECS" | "DAYS" => {}
                "KB" | "MB" => parts.push("bytes".into()),
                p => parts.push(p.to_ascii_lowercase()),
            }
        }
        parts.join("_")
    }

    /// Keys that have no setter, and why.
    fn without_setter(key: &str) -> Option<&'static str> {
        if key == "ERRSNAP_DASHBOARD_TOKEN" {
            return Some("the dashboard's (`errsnap serve`), not a logger's");
        }
        let channel = keys::CHANNEL_PREFIXES
            .iter()
            .any(|(_, prefix)| key.starts_with(&format!("{prefix}_")))
            || key.starts_with("ERRSNAP_SMTP_");
        channel.then_some("a channel's own: its type (`channels::SlackChannel`, ...) takes it")
    }

    #[test]
    fn every_key_has_one_setter_named_as_the_key() {
        let mut seen = std::collections::BTreeMap::new();
        for (setter, written) in SETTERS {
            for key in *written {
                assert!(keys::find(key).is_some(), "{setter} writes {key}, no key");
                assert!(
                    seen.insert(*key, *setter).is_none(),
                    "{key} has two setters: {} and {setter}",
                    seen[key]
                );
                let name = setter_name(key);
                if written.len() == 1 {
                    assert_eq!(*setter, name, "{key}'s setter");
                } else {
                    assert!(name.starts_with(setter), "{setter} writes {key} ({name})");
                }
            }
        }
        // The settings file's one: `config_file`, read before the layer.
        seen.insert("ERRSNAP_CONFIG_FILE", "config_file");
        assert_eq!(setter_name("ERRSNAP_CONFIG_FILE"), "config_file");
        for k in KEYS {
            assert!(
                seen.contains_key(k.name) || without_setter(k.name).is_some(),
                "{} has no setter",
                k.name
            );
        }
        // The channels' keys a setter takes are named as the others.
        assert!(without_setter("ERRSNAP_SENTRY_DSN").is_some());
        assert_eq!(seen["ERRSNAP_SENTRY_DSN"], "sentry_dsn");
    }

    #[test]
    fn the_setter_names_follow_the_keys() {
        assert_eq!(setter_name("ERRSNAP_SYMBOL_CACHE_MB"), "symbol_cache_bytes");
        assert_eq!(setter_name("ERRSNAP_EXIT_BUDGET_MS"), "exit_budget");
        assert_eq!(
            setter_name("ERRSNAP_ATTACHMENTS_MAX_KB_PER_EVENT"),
            "attachments_max_bytes_per_event"
        );
        assert_eq!(
            setter_name("ERRSNAP_RETENTION_MAX_AGE_DAYS"),
            "retention_max_age"
        );
    }

    fn settings_of(b: EventLoggerBuilder) -> crate::error::Result<crate::settings::Settings> {
        crate::settings::Settings::from_config(&b.read_config()?)
    }

    /// The builder wins over the environment, `.env` and the settings
    /// file; what it leaves alone comes from them.
    #[test]
    fn a_setter_wins_over_every_other_source() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        std::fs::write(&env, "ERRSNAP_APP_NAME=from-dotenv\nERRSNAP_RELEASE=1.0\n").unwrap();
        let file = dir.path().join("errsnap.toml");
        std::fs::write(&file, "[storage]\nqueue_capacity = 7\nbreadcrumbs = 9\n").unwrap();
        let b = || {
            EventLoggerBuilder::default()
                .dotenv_path(&env)
                .config_file(&file)
        };
        let read = settings_of(b()).unwrap();
        assert_eq!(read.app_name.as_deref(), Some("from-dotenv"));
        assert_eq!(read.queue_capacity, 7);
        let s = settings_of(b().app_name("from-code").queue_capacity(11)).unwrap();
        assert_eq!(s.app_name.as_deref(), Some("from-code"));
        assert_eq!(s.queue_capacity, 11);
        assert_eq!(s.release.as_deref(), Some("1.0"), "left to `.env`");
        assert_eq!(s.breadcrumbs, 9, "left to the file");
    }

    /// Durations and sizes reach the settings exactly, whatever the unit
    /// of the key.
    #[test]
    fn values_reach_the_settings_exactly() {
        let s = settings_of(
            EventLoggerBuilder::default()
                .config(crate::Config::empty())
                .heartbeat(Duration::from_millis(250))
                .exit_budget(Duration::from_micros(1500))
                .retention_max_age(Duration::from_secs(90))
                .symbol_cache_bytes(1_500_000)
                .attachments_max_bytes_per_event(1000)
                .alert_threshold(0, Duration::from_secs(5))
                .crash_loop(0, Duration::from_secs(60))
                .db_path("elsewhere.db")
                .drain_on_termination(true),
        )
        .unwrap();
        assert_eq!(s.heartbeat, Some(Duration::from_millis(250)));
        assert_eq!(s.exit_budget, Duration::from_micros(1500));
        assert_eq!(s.retention.max_age_ms, Some(90_000));
        assert_eq!(s.symbol_cache_bytes, 1_500_000);
        assert_eq!(s.attachment_event_cap, 1000);
        assert_eq!(s.policy.threshold, 1, "at least one");
        assert_eq!(s.policy.window, Duration::from_secs(5));
        assert_eq!(s.crash_loop, None, "0 runs: never");
        assert_eq!(s.db_path, std::path::PathBuf::from("elsewhere.db"));
        assert!(s.drain_on_termination);
    }

    /// A value out of the key's range is an error naming the key, the
    /// setter and what is valid.
    #[test]
    fn a_bad_value_names_the_key_and_the_setter() {
        let e = settings_of(
            EventLoggerBuilder::default()
                .config(crate::Config::empty())
                .exit_budget(Duration::from_secs(3600)),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ERRSNAP_EXIT_BUDGET_MS"), "{e}");
        assert!(e.contains("`.exit_budget(..)`"), "{e}");
        assert!(e.contains("at most"), "{e}");
        let e = settings_of(
            EventLoggerBuilder::default()
                .config(crate::Config::empty())
                .attachments_max_bytes_per_event(17 << 20),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ERRSNAP_ATTACHMENTS_MAX_KB_PER_EVENT"), "{e}");
        assert!(e.contains("`.attachments_max_bytes_per_event(..)`"), "{e}");
    }

    #[test]
    fn a_path_that_is_not_utf8_is_an_error_naming_the_setter() {
        use std::os::unix::ffi::OsStrExt;
        let bad = std::ffi::OsStr::from_bytes(b"LOGS-\xff.db");
        let e = settings_of(
            EventLoggerBuilder::default()
                .config(crate::Config::empty())
                .db_path(bad),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ERRSNAP_DB_PATH") && e.contains("`.db_path(..)`"),
            "{e}"
        );
    }

    /// A secret given to a setter is never shown, in `Debug` or an error.
    #[test]
    fn a_secret_given_to_a_setter_is_not_shown() {
        let b = EventLoggerBuilder::default()
            .config(crate::Config::empty())
            .database_password("hunter2-secret")
            .database_url("postgres://u:pw-secret@127.0.0.1/db")
            .sentry_dsn("https://key-secret@127.0.0.1/1");
        let c = b.read_config().unwrap();
        let shown = format!("{c:?} {b:?}");
        for secret in ["hunter2", "key-secret", "pw-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    /// The deprecated `redact` adds to the patterns `redact_patterns` set.
    #[test]
    #[allow(deprecated)]
    fn redact_adds_to_the_patterns() {
        let s = settings_of(
            EventLoggerBuilder::default()
                .config(crate::Config::empty())
                .redact_patterns(["a+"])
                .redact("b+"),
        )
        .unwrap();
        assert_eq!(s.redact_patterns, vec!["a+".to_owned(), "b+".to_owned()]);
    }
}
