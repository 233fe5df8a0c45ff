//! Every setting errsnap reads, defined once: its name, where it may stand
//! in the settings file, its type, its default and what it does. The
//! reading (`config`), the typed [`Settings`](super::Settings), the error
//! messages, and the test that holds `.env.example` and
//! `config/errsnap.example.toml` against this table all come from here.

pub(crate) use super::kind::Kind;

/// One setting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    /// The `.env` / environment name.
    pub(crate) name: &'static str,
    /// `section.field` in the settings file; `None`: not allowed there
    /// (secrets, and settings that pick the file itself).
    pub(crate) toml: Option<&'static str>,
    pub(crate) kind: Kind,
    /// The default, as `.env.example` shows it (empty: none); held against
    /// `.env.example` by the tests, as `doc` is.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) default: &'static str,
    /// A secret: never shown in `Debug`, errors, or the settings file.
    pub(crate) secret: bool,
    /// What it does (one line).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) doc: &'static str,
}

const fn key(
    name: &'static str,
    toml: Option<&'static str>,
    kind: Kind,
    default: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        name,
        toml,
        kind,
        default,
        secret: false,
        doc,
    }
}

const fn secret(name: &'static str, kind: Kind, doc: &'static str) -> Key {
    Key {
        name,
        toml: None,
        kind,
        default: "",
        secret: true,
        doc,
    }
}

const MINUTE_MAX: Kind = Kind::Count { min: 1, max: 6000 };
/// A forwarding channel's requests per minute: up to 10,000 a second.
const FORWARD_MAX: Kind = Kind::Count {
    min: 1,
    max: 600_000,
};

/// Every key errsnap reads. Unknown `ERRSNAP_*` keys are errors, so a typo
/// does not silently leave a setting at its default.
pub(crate) const KEYS: &[Key] = &[
    key(
        "ERRSNAP_DISABLED",
        None,
        Kind::Flag,
        "false",
        "switch errsnap off: nothing recorded, no thread, no file",
    ),
    key(
        "ERRSNAP_DB_PATH",
        Some("storage.path"),
        Kind::Path,
        "LOGS.db",
        "the database file",
    ),
    secret(
        "ERRSNAP_DATABASE_URL",
        Kind::Text,
        "a PostgreSQL database for a fleet (postgres://user@host:port/db?sslmode=verify-full), instead of the file (feature postgres)",
    ),
    secret(
        "ERRSNAP_DATABASE_PASSWORD",
        Kind::Text,
        "the PostgreSQL password, when the URL has none",
    ),
    secret(
        "ERRSNAP_DASHBOARD_TOKEN",
        Kind::Text,
        "the access token of `errsnap serve` (default: a random one, printed at start)",
    ),
    key(
        "ERRSNAP_APP_NAME",
        Some("app.name"),
        Kind::Text,
        "",
        "stored with every event, shown in alerts",
    ),
    key(
        "ERRSNAP_RELEASE",
        Some("app.release"),
        Kind::Text,
        "",
        "stored with every event",
    ),
    key(
        "ERRSNAP_ENVIRONMENT",
        Some("app.environment"),
        Kind::Text,
        "",
        "stored with every event",
    ),
    key(
        "ERRSNAP_DURABILITY",
        Some("storage.durability"),
        Kind::Durability,
        "normal",
        "normal: survives a crash; full: also power loss",
    ),
    key(
        "ERRSNAP_QUEUE_CAPACITY",
        Some("storage.queue_capacity"),
        Kind::Count {
            min: 1,
            max: 10_000_000,
        },
        "10000",
        "events that may wait for the writer",
    ),
    key(
        "ERRSNAP_EXIT_BUDGET_MS",
        Some("storage.exit_budget_ms"),
        Kind::Millis { max_ms: 600_000 },
        "3000",
        "one budget for everything done on the way out",
    ),
    key(
        "ERRSNAP_DRAIN_ON_TERMINATION",
        Some("storage.drain_on_termination"),
        Kind::Flag,
        "0",
        "on SIGTERM or SIGINT (without a handler of the application's), drain within the exit budget, then end by the signal",
    ),
    key(
        "ERRSNAP_PANIC_TIMEOUT_MS",
        Some("storage.panic_timeout_ms"),
        Kind::Millis { max_ms: 600_000 },
        "2000",
        "how long a panic waits for its commit",
    ),
    key(
        "ERRSNAP_SYMBOL_CACHE_IDLE_SECS",
        Some("storage.symbol_cache_idle_secs"),
        Kind::Secs {
            min_s: 0,
            max_s: 7 * 86_400,
        },
        "300",
        "the writer drops its symbol tables after this long without a new stack (0: never)",
    ),
    key(
        "ERRSNAP_SYMBOL_CACHE_MB",
        Some("storage.symbol_cache_mb"),
        Kind::Size {
            unit: 1 << 20,
            min: 1,
            max: 1 << 20,
        },
        "32",
        "the memory the writer's symbol tables may hold before it drops them",
    ),
    key(
        "ERRSNAP_HEARTBEAT_SECS",
        Some("storage.heartbeat_secs"),
        Kind::Secs {
            min_s: 0,
            max_s: 86_400,
        },
        "10",
        "how often the writer notes the run's last sign of life and a flight-recorder reading (0: never)",
    ),
    key(
        "ERRSNAP_BREADCRUMBS",
        Some("storage.breadcrumbs"),
        Kind::Count {
            min: 0,
            max: 10_000,
        },
        "50",
        "lower-level records kept for the next event",
    ),
    key(
        "ERRSNAP_CONFIG_FILE",
        None,
        Kind::Path,
        "",
        "a settings file, which must exist",
    ),
    key(
        "ERRSNAP_DB_LEVEL",
        Some("levels.database"),
        Kind::Level,
        "warn",
        "the lowest level stored",
    ),
    key(
        "ERRSNAP_CONSOLE_LEVEL",
        Some("levels.console"),
        Kind::Level,
        "off",
        "the lowest level printed on stderr",
    ),
    key(
        "ERRSNAP_SAMPLE_KEEP_ONE_IN",
        Some("sampling.keep_one_in"),
        Kind::Count {
            min: 1,
            max: 1_000_000_000,
        },
        "1",
        "keep 1 in N events below error",
    ),
    key(
        "ERRSNAP_REDACT_EMAILS",
        Some("redaction.emails"),
        Kind::Flag,
        "false",
        "also replace e-mail addresses",
    ),
    key(
        "ERRSNAP_STORE_USER_EMAIL",
        Some("privacy.store_user_email"),
        Kind::Flag,
        "false",
        "store a scope user's e-mail address",
    ),
    key(
        "ERRSNAP_CRASH_MINIDUMP",
        Some("privacy.crash_minidump"),
        Kind::Flag,
        "true",
        "keep a native crash's minidump (registers, 64 KiB of raw stack memory, maps) as its attachment",
    ),
    key(
        "ERRSNAP_STORE_USER_IP",
        Some("privacy.store_user_ip"),
        Kind::Flag,
        "false",
        "store IP addresses (a scope user's, a request's peer)",
    ),
    key(
        "ERRSNAP_REDACT_PATTERNS",
        Some("redaction.patterns"),
        Kind::Patterns,
        "",
        "extra redaction rules",
    ),
    key(
        "ERRSNAP_RETENTION_MAX_AGE_DAYS",
        Some("retention.max_age_days"),
        Kind::Days { max_d: 100_000 },
        "",
        "delete events older than this",
    ),
    key(
        "ERRSNAP_RETENTION_RUN_SAMPLES_DAYS",
        Some("retention.run_samples_days"),
        Kind::Days { max_d: 100_000 },
        "7",
        "how long the flight recorder's readings of each run are kept",
    ),
    key(
        "ERRSNAP_RETENTION_MAX_EVENTS",
        Some("retention.max_events"),
        Kind::Count {
            min: 1,
            max: u64::MAX,
        },
        "",
        "keep at most this many events",
    ),
    key(
        "ERRSNAP_RETENTION_MAX_MB",
        Some("retention.max_mb"),
        Kind::Size {
            unit: 1 << 20,
            min: 1,
            max: 1 << 40,
        },
        "",
        "keep the file under this size",
    ),
    key(
        "ERRSNAP_ATTACHMENTS_MAX_KB_PER_EVENT",
        Some("attachments.max_kb_per_event"),
        // Under the writer queue's byte budget (64 MiB), so an event with
        // attachments always fits in it.
        Kind::Size {
            unit: 1024,
            min: 0,
            max: 16 * 1024,
        },
        "1024",
        "attachments one event may carry (0: none)",
    ),
    key(
        "ERRSNAP_ATTACHMENTS_MAX_MB",
        Some("attachments.max_mb"),
        Kind::Size {
            unit: 1 << 20,
            min: 0,
            max: 1 << 20,
        },
        "100",
        "attachment bytes kept in the database (oldest dropped first)",
    ),
    key(
        "ERRSNAP_TLS_CA_FILE",
        Some("tls.ca_file"),
        Kind::Path,
        "",
        "a PEM bundle of CAs trusted besides the built-in roots (PostgreSQL: instead of them)",
    ),
    secret(
        "ERRSNAP_SLACK_WEBHOOK_URL",
        Kind::Url,
        "the Slack incoming webhook",
    ),
    key(
        "ERRSNAP_SLACK_APP_NAME",
        Some("alerts.slack_app_name"),
        Kind::Text,
        "",
        "the name shown in Slack alerts",
    ),
    key(
        "ERRSNAP_SLACK_MIN_LEVEL",
        Some("levels.slack"),
        Kind::Level,
        "error",
        "the lowest level alerted on Slack",
    ),
    key(
        "ERRSNAP_SLACK_MAX_PER_MINUTE",
        Some("alerts.slack_max_per_minute"),
        MINUTE_MAX,
        "60",
        "Slack messages per minute",
    ),
    key("ERRSNAP_SMTP_HOST", None, Kind::Text, "", "the SMTP server"),
    key(
        "ERRSNAP_SMTP_PORT",
        None,
        Kind::Port,
        "587",
        "the SMTP port",
    ),
    key(
        "ERRSNAP_SMTP_TLS",
        None,
        Kind::SmtpTls,
        "",
        "implicit, starttls or none (default from the port)",
    ),
    key(
        "ERRSNAP_SMTP_USERNAME",
        None,
        Kind::Text,
        "",
        "the SMTP login",
    ),
    secret("ERRSNAP_SMTP_PASSWORD", Kind::Text, "the SMTP password"),
    key(
        "ERRSNAP_EMAIL_APP_NAME",
        Some("alerts.email_app_name"),
        Kind::Text,
        "",
        "the name in the subject",
    ),
    key("ERRSNAP_EMAIL_FROM", None, Kind::Text, "", "the sender"),
    key(
        "ERRSNAP_EMAIL_TO",
        None,
        Kind::Text,
        "",
        "the recipients, comma-separated",
    ),
    key(
        "ERRSNAP_EMAIL_MIN_LEVEL",
        Some("levels.email"),
        Kind::Level,
        "fatal",
        "the lowest level alerted by e-mail",
    ),
    key(
        "ERRSNAP_EMAIL_MAX_PER_MINUTE",
        Some("alerts.email_max_per_minute"),
        Kind::Count { min: 1, max: 600 },
        "10",
        "e-mails per minute",
    ),
    secret("ERRSNAP_WEBHOOK_URL", Kind::Url, "a generic JSON webhook"),
    secret(
        "ERRSNAP_WEBHOOK_HEADER",
        Kind::Header,
        "a header sent with it (Authorization: Bearer ...)",
    ),
    key(
        "ERRSNAP_WEBHOOK_APP_NAME",
        Some("alerts.webhook_app_name"),
        Kind::Text,
        "",
        "the name in its alerts",
    ),
    key(
        "ERRSNAP_WEBHOOK_MIN_LEVEL",
        Some("levels.webhook"),
        Kind::Level,
        "error",
        "the lowest level sent to it",
    ),
    key(
        "ERRSNAP_WEBHOOK_MAX_PER_MINUTE",
        Some("alerts.webhook_max_per_minute"),
        MINUTE_MAX,
        "60",
        "its requests per minute",
    ),
    secret(
        "ERRSNAP_SENTRY_DSN",
        Kind::Url,
        "forward events to a Sentry-compatible server (feature sentry)",
    ),
    key(
        "ERRSNAP_SENTRY_MIN_LEVEL",
        Some("levels.sentry"),
        Kind::Level,
        "error",
        "the lowest level forwarded to it",
    ),
    key(
        "ERRSNAP_SENTRY_MINIDUMP",
        Some("alerts.sentry_minidump"),
        Kind::Flag,
        "false",
        "send a crash's minidump with it (the server then shows the dump's own stack)",
    ),
    key(
        "ERRSNAP_SENTRY_MAX_PER_MINUTE",
        Some("alerts.sentry_max_per_minute"),
        FORWARD_MAX,
        "60000",
        "events sent to it per minute",
    ),
    secret(
        "ERRSNAP_OTLP_ENDPOINT",
        Kind::Url,
        "forward events to an OpenTelemetry collector, OTLP/HTTP (feature otlp)",
    ),
    secret(
        "ERRSNAP_OTLP_HEADERS",
        Kind::Text,
        "headers sent to it: name=value,name=value",
    ),
    key(
        "ERRSNAP_OTLP_MIN_LEVEL",
        Some("levels.otlp"),
        Kind::Level,
        "error",
        "the lowest level forwarded to it",
    ),
    key(
        "ERRSNAP_OTLP_MAX_PER_MINUTE",
        Some("alerts.otlp_max_per_minute"),
        FORWARD_MAX,
        "60000",
        "records sent to it per minute",
    ),
    key(
        "ERRSNAP_ALERT_COOLDOWN_SECS",
        Some("alerts.cooldown_secs"),
        Kind::Secs {
            min_s: 0,
            max_s: 7 * 86_400,
        },
        "600",
        "a group alerts again at most once per cooldown",
    ),
    key(
        "ERRSNAP_CRASH_LOOP_RUNS",
        Some("alerts.crash_loop_runs"),
        Kind::Count { min: 0, max: 1000 },
        "3",
        "crashed or abnormal runs within the crash-loop window that raise one crash loop alert (0: never)",
    ),
    key(
        "ERRSNAP_CRASH_LOOP_WINDOW_SECS",
        Some("alerts.crash_loop_window_secs"),
        Kind::Secs {
            min_s: 1,
            max_s: 7 * 86_400,
        },
        "300",
        "the crash-loop rule's window",
    ),
    key(
        "ERRSNAP_ALERT_THRESHOLD",
        Some("alerts.threshold"),
        Kind::Count {
            min: 1,
            max: 1_000_000,
        },
        "1",
        "alert once a group happened this many times ...",
    ),
    key(
        "ERRSNAP_ALERT_THRESHOLD_WINDOW_SECS",
        Some("alerts.threshold_window_secs"),
        Kind::Secs {
            min_s: 1,
            max_s: 30 * 86_400,
        },
        "3600",
        "... within this window",
    ),
    key(
        "ERRSNAP_ALERT_TIMEOUT_SECS",
        Some("alerts.timeout_secs"),
        Kind::Secs {
            min_s: 1,
            max_s: 300,
        },
        "10",
        "connect and total timeout of one delivery",
    ),
    key(
        "ERRSNAP_PANIC_ALERT_WAIT_MS",
        Some("alerts.panic_wait_ms"),
        Kind::Millis { max_ms: 60_000 },
        "2000",
        "how long a panic waits for its alert",
    ),
    key(
        "ERRSNAP_REPO_PATH",
        Some("triage.repo_path"),
        Kind::Path,
        "",
        "the git repository of the recorded code: a new group's alert names its suspect commit",
    ),
    key(
        "ERRSNAP_REPO_PATH_MAP",
        Some("triage.repo_path_map"),
        Kind::Text,
        "",
        "recorded path prefixes and the repository's, `build=repo`, comma-separated",
    ),
];

/// Keys renamed so that a key, its place in the settings file and the
/// builder's setter say one name: `(former, now)` for the environment and
/// `.env`, and for the settings file. The former names are still read,
/// with a warning.
pub(crate) const RENAMED: &[(&str, &str)] = &[
    ("ERRSNAP_DRAIN_ON_SIGTERM", "ERRSNAP_DRAIN_ON_TERMINATION"),
    (
        "ERRSNAP_ALERT_WINDOW_SECS",
        "ERRSNAP_ALERT_THRESHOLD_WINDOW_SECS",
    ),
    ("storage.drain_on_sigterm", "storage.drain_on_termination"),
    ("alerts.window_secs", "alerts.threshold_window_secs"),
];

/// The name a renamed key has now, if `name` is a former one.
pub(crate) fn renamed(name: &str) -> Option<&'static str> {
    RENAMED
        .iter()
        .find(|(old, _)| *old == name)
        .map(|(_, new)| *new)
}

/// The key named `name`.
pub(crate) fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The key standing at `section.field` of the settings file.
pub(crate) fn find_toml(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.toml == Some(path))
}

/// The built-in alert channels and the prefix of their keys
/// (`ERRSNAP_<PREFIX>_MIN_LEVEL`, `_MAX_PER_MINUTE`, `_APP_NAME`).
pub(crate) const CHANNEL_PREFIXES: &[(&str, &str)] = &[
    ("slack", "ERRSNAP_SLACK"),
    ("email", "ERRSNAP_EMAIL"),
    ("webhook", "ERRSNAP_WEBHOOK"),
    ("sentry", "ERRSNAP_SENTRY"),
    ("otlp", "ERRSNAP_OTLP"),
];

/// A channel's key: `ERRSNAP_SLACK_MIN_LEVEL` for `("slack", "MIN_LEVEL")`;
/// custom channels have none.
pub(crate) fn channel_key(channel: &str, what: &str) -> Option<&'static str> {
    let prefix = CHANNEL_PREFIXES
        .iter()
        .find(|(n, _)| *n == channel)
        .map(|(_, p)| *p)?;
    KEYS.iter()
        .find(|k| {
            k.name
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('_'))
                == Some(what)
        })
        .map(|k| k.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_files_name_no_secret() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(k.name.starts_with("ERRSNAP_"), "{}", k.name);
            assert!(KEYS[i + 1..].iter().all(|o| o.name != k.name), "{}", k.name);
            if let Some(t) = k.toml {
                assert!(KEYS[i + 1..].iter().all(|o| o.toml != Some(t)), "{t}");
                assert!(!k.secret, "{} in the settings file", k.name);
            }
            assert!(!k.doc.is_empty());
        }
        assert_eq!(
            channel_key("slack", "MIN_LEVEL"),
            Some("ERRSNAP_SLACK_MIN_LEVEL")
        );
        assert_eq!(
            channel_key("email", "MAX_PER_MINUTE"),
            Some("ERRSNAP_EMAIL_MAX_PER_MINUTE")
        );
        assert_eq!(
            channel_key("webhook", "APP_NAME"),
            Some("ERRSNAP_WEBHOOK_APP_NAME")
        );
        assert_eq!(channel_key("pager", "MIN_LEVEL"), None);
        assert_eq!(
            find_toml("storage.path").map(|k| k.name),
            Some("ERRSNAP_DB_PATH")
        );
    }
}
