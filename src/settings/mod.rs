//! Settings: every key defined once (`keys`), read from the environment,
//! `.env` and the settings file into a [`Config`] (`config`, `dotenv`),
//! then typed once into [`Settings`]. The builder's calls win over all of
//! them.

pub(crate) mod config;
pub(crate) mod dotenv;
pub(crate) mod grouping;
pub(crate) mod keys;
mod kind;
pub(crate) mod resource_warnings;
mod size;
mod toml_file;
mod trust;

use std::path::PathBuf;
use std::time::Duration;

pub use config::Config;
pub(crate) use config::{edit_distance, Flag};

/// The setting naming a PEM bundle of CAs every TLS client trusts (SMTP,
/// webhooks, forwarding: besides the built-in roots; PostgreSQL: instead of
/// them, see `store::postgres::tls`).
pub(crate) const TLS_CA_FILE_KEY: &str = "ERRSNAP_TLS_CA_FILE";

/// The database file used when no path is configured: `LOGS.db` in the
/// working directory, as in the original design.
pub(crate) const DEFAULT_DB_PATH: &str = "LOGS.db";

use crate::error::{Error, Result};
use crate::event::AlertPolicy;

/// How hard the database tries to keep a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// WAL with `synchronous = NORMAL`: a commit survives a crash or kill of
    /// the process (the default).
    #[default]
    Normal,
    /// WAL with `synchronous = FULL`: a commit also survives power loss, at
    /// the cost of an fsync per batch.
    Full,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "normal" | "default" => Ok(Durability::Normal),
            "full" | "durable" => Ok(Durability::Full),
            _ => Err("expected normal or full".to_owned()),
        }
    }
}

/// Automatic retention limits (all optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_age_ms: Option<i64>,
    pub(crate) max_events: Option<u64>,
    pub(crate) max_bytes: Option<u64>,
    /// The attachments' bytes kept at most (the oldest dropped first).
    pub(crate) attachments_max_bytes: Option<u64>,
}

impl Limits {
    pub(crate) fn any(&self) -> bool {
        self.max_age_ms.is_some()
            || self.max_events.is_some()
            || self.max_bytes.is_some()
            || self.attachments_max_bytes.is_some()
    }
}

/// Every setting that is not a channel's or a logger's, typed once from a
/// [`Config`], with its default.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) disabled: bool,
    pub(crate) db_path: PathBuf,
    /// A PostgreSQL database instead of the file (`ERRSNAP_DATABASE_URL`),
    /// its password when the URL has none, and the CA file for its TLS.
    pub(crate) database_url: Option<String>,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) database_password: Option<String>,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) tls_ca_file: Option<PathBuf>,
    pub(crate) app_name: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) durability: Durability,
    pub(crate) queue_capacity: usize,
    pub(crate) exit_budget: Duration,
    /// Drain on SIGTERM and SIGINT, then end by the signal (Linux).
    pub(crate) drain_on_termination: bool,
    pub(crate) panic_timeout: Duration,
    /// How long the writer keeps its symbol tables without a new stack to
    /// resolve (`None`: for good).
    pub(crate) symbol_cache_idle: Option<Duration>,
    /// The memory the writer's symbol tables may hold (bytes).
    pub(crate) symbol_cache_bytes: u64,
    /// How often an idle writer notes the run's last sign of life.
    pub(crate) heartbeat: Option<Duration>,
    /// The crash-loop rule: this many crashed or abnormal runs within this
    /// window raise one alert (`None`: never).
    pub(crate) crash_loop: Option<(u64, Duration)>,
    pub(crate) breadcrumbs: usize,
    pub(crate) keep_one_in: u64,
    pub(crate) redact_emails: bool,
    /// Whether a scope user's e-mail address is stored.
    pub(crate) store_user_email: bool,
    /// Whether IP addresses (a user's, a request's peer) are stored.
    pub(crate) store_user_ip: bool,
    /// Whether a native crash's minidump is kept as its attachment.
    pub(crate) crash_minidump: bool,
    /// Extra redaction rules, and the key they came from (for errors).
    pub(crate) redact_patterns: Vec<String>,
    pub(crate) retention: Limits,
    /// How long the flight recorder's readings are kept.
    pub(crate) run_samples_keep: Duration,
    /// The bytes of attachments one event may carry.
    pub(crate) attachment_event_cap: u64,
    /// Connect and total timeout of one delivery.
    #[cfg_attr(
        not(any(feature = "slack", feature = "email", feature = "webhook")),
        allow(dead_code)
    )]
    pub(crate) alert_timeout: Duration,
    pub(crate) policy: AlertPolicy,
    /// How events are grouped (`[[grouping]]` of the settings file).
    pub(crate) grouping: grouping::GroupingConfig,
    /// Warnings before death (`[[resource_warning]]` of the settings file).
    pub(crate) resource_warnings: Vec<resource_warnings::ResourceWarning>,
    /// The git repository of the recorded code (suspect commits).
    pub(crate) repo: Option<crate::suspect::Repository>,
}

impl Settings {
    /// Types every setting of `config`.
    ///
    /// # Errors
    /// A value of the wrong type or out of range (the error names the key
    /// as written, the value unless it is a secret, and where it came from).
    // Long by design: one field per setting, each read with its key's
    // type and default, in the order of the key table.
    pub(crate) fn from_config(config: &Config) -> Result<Settings> {
        let d = AlertPolicy::default();
        let patterns = match config.string("ERRSNAP_REDACT_PATTERNS") {
            None => Vec::new(),
            Some(raw) if raw.starts_with('[') => serde_json::from_str(&raw).map_err(|e| {
                Error::config(
                    "ERRSNAP_REDACT_PATTERNS",
                    format!("expected a JSON array of strings or one pattern ({e})"),
                )
            })?,
            Some(raw) => vec![raw],
        };
        Ok(Settings {
            disabled: config
                .value::<Flag>("ERRSNAP_DISABLED")?
                .is_some_and(|f| f.0),
            db_path: config
                .string("ERRSNAP_DB_PATH")
                .map_or_else(|| PathBuf::from(DEFAULT_DB_PATH), PathBuf::from),
            database_url: config.string("ERRSNAP_DATABASE_URL"),
            database_password: config.get("ERRSNAP_DATABASE_PASSWORD").map(str::to_owned),
            tls_ca_file: config.string(TLS_CA_FILE_KEY).map(PathBuf::from),
            app_name: config.string("ERRSNAP_APP_NAME"),
            release: config.string("ERRSNAP_RELEASE"),
            environment: config.string("ERRSNAP_ENVIRONMENT"),
            durability: config.value("ERRSNAP_DURABILITY")?.unwrap_or_default(),
            queue_capacity: count(config, "ERRSNAP_QUEUE_CAPACITY")?.unwrap_or(10_000),
            exit_budget: config
                .duration("ERRSNAP_EXIT_BUDGET_MS")?
                .unwrap_or(Duration::from_secs(3)),
            drain_on_termination: config
                .value::<Flag>("ERRSNAP_DRAIN_ON_TERMINATION")?
                .is_some_and(|f| f.0),
            panic_timeout: config
                .duration("ERRSNAP_PANIC_TIMEOUT_MS")?
                .unwrap_or(Duration::from_secs(2)),
            symbol_cache_idle: match config.duration("ERRSNAP_SYMBOL_CACHE_IDLE_SECS")? {
                Some(d) if d.is_zero() => None,
                Some(d) => Some(d),
                None => Some(Duration::from_secs(300)),
            },
            symbol_cache_bytes: config.bytes("ERRSNAP_SYMBOL_CACHE_MB")?.unwrap_or(32 << 20),
            heartbeat: match config.duration("ERRSNAP_HEARTBEAT_SECS")? {
                Some(d) if d.is_zero() => None,
                Some(d) => Some(d),
                None => Some(Duration::from_secs(10)),
            },
            crash_loop: match config.count("ERRSNAP_CRASH_LOOP_RUNS")?.unwrap_or(3) {
                0 => None,
                n => Some((
                    n,
                    config
                        .duration("ERRSNAP_CRASH_LOOP_WINDOW_SECS")?
                        .unwrap_or(Duration::from_secs(300)),
                )),
            },
            breadcrumbs: count(config, "ERRSNAP_BREADCRUMBS")?.unwrap_or(50),
            keep_one_in: config.count("ERRSNAP_SAMPLE_KEEP_ONE_IN")?.unwrap_or(1),
            redact_emails: config
                .value::<Flag>("ERRSNAP_REDACT_EMAILS")?
                .is_some_and(|f| f.0),
            store_user_email: config
                .value::<Flag>("ERRSNAP_STORE_USER_EMAIL")?
                .is_some_and(|f| f.0),
            store_user_ip: config
                .value::<Flag>("ERRSNAP_STORE_USER_IP")?
                .is_some_and(|f| f.0),
            crash_minidump: config
                .value::<Flag>("ERRSNAP_CRASH_MINIDUMP")?
                .is_none_or(|f| f.0),
            redact_patterns: patterns,
            run_samples_keep: config
                .duration("ERRSNAP_RETENTION_RUN_SAMPLES_DAYS")?
                .unwrap_or(Duration::from_secs(7 * 86_400)),
            retention: Limits {
                max_age_ms: config
                    .duration("ERRSNAP_RETENTION_MAX_AGE_DAYS")?
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                max_events: config.count("ERRSNAP_RETENTION_MAX_EVENTS")?,
                max_bytes: config.bytes("ERRSNAP_RETENTION_MAX_MB")?,
                attachments_max_bytes: Some(
                    config
                        .bytes("ERRSNAP_ATTACHMENTS_MAX_MB")?
                        .unwrap_or(100 << 20),
                ),
            },
            attachment_event_cap: config
                .bytes("ERRSNAP_ATTACHMENTS_MAX_KB_PER_EVENT")?
                .unwrap_or(1 << 20),
            alert_timeout: config
                .duration("ERRSNAP_ALERT_TIMEOUT_SECS")?
                .unwrap_or(Duration::from_secs(10)),
            policy: AlertPolicy {
                cooldown: config
                    .duration("ERRSNAP_ALERT_COOLDOWN_SECS")?
                    .unwrap_or(d.cooldown),
                threshold: config
                    .count("ERRSNAP_ALERT_THRESHOLD")?
                    .map_or(d.threshold, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                window: config
                    .duration("ERRSNAP_ALERT_THRESHOLD_WINDOW_SECS")?
                    .unwrap_or(d.window),
                panic_wait: config
                    .duration("ERRSNAP_PANIC_ALERT_WAIT_MS")?
                    .unwrap_or(d.panic_wait),
                ..d
            },
            resource_warnings: config.resource_warnings.clone(),
            grouping: grouping::GroupingConfig {
                algorithm: grouping::ALGORITHM,
                rules: config.grouping.clone(),
            },
            repo: repository(config)?,
        })
    }
}

/// The repository of `ERRSNAP_REPO_PATH`, with `ERRSNAP_REPO_PATH_MAP`.
fn repository(config: &Config) -> Result<Option<crate::suspect::Repository>> {
    let Some(root) = config.string("ERRSNAP_REPO_PATH").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let map = config.string("ERRSNAP_REPO_PATH_MAP").unwrap_or_default();
    crate::suspect::Repository::new(root)
        .map_paths(&map)
        .map(Some)
}

fn count(config: &Config, key: &str) -> Result<Option<usize>> {
    Ok(config
        .count(key)?
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.env.example` and `config/errsnap.example.toml` say what the table
    /// says: every key, its default, nothing unknown.
    #[test]
    fn the_examples_match_the_key_table() {
        let example = include_str!("../../.env.example");
        let entries = dotenv::parse(example, &|_| None).unwrap();
        for k in keys::KEYS {
            let e = entries
                .iter()
                .find(|e| e.key == k.name)
                .unwrap_or_else(|| panic!("{} is missing from .env.example", k.name));
            // A key with a default shows it (or nothing); one without shows
            // an example.
            if !k.secret && !k.default.is_empty() && !e.value.is_empty() {
                assert_eq!(e.value, k.default, "{}'s default in .env.example", k.name);
            }
        }
        for e in &entries {
            assert!(
                keys::find(&e.key).is_some(),
                "{} in .env.example is no key",
                e.key
            );
        }
        let file: toml::Table =
            toml::from_str(include_str!("../../config/errsnap.example.toml")).unwrap();
        for (section, body) in file {
            if section == "grouping" {
                // The rules: parsed as the settings file's are.
                let rules = grouping::parse_rules(&body).unwrap();
                assert!(rules.len() >= 3, "{rules:?}");
                continue;
            }
            if section == "resource_warning" {
                let rules = resource_warnings::parse_rules(&body).unwrap();
                assert!(rules.len() >= 2, "{rules:?}");
                continue;
            }
            let toml::Value::Table(body) = body else {
                panic!("{section}")
            };
            for (field, _) in body {
                let dotted = format!("{section}.{field}");
                let ok = keys::find_toml(&dotted).is_some()
                    || section == "loggers"
                    || (section == "levels"
                        && (["database", "console"].contains(&field.as_str())
                            || keys::CHANNEL_PREFIXES.iter().any(|(n, _)| *n == field)));
                assert!(ok, "{dotted} in config/errsnap.example.toml is no key");
            }
        }
        for k in keys::KEYS.iter().filter(|k| k.toml.is_some()) {
            let t = k.toml.unwrap_or_default();
            let (section, field) = t.split_once('.').unwrap_or_default();
            let example = include_str!("../../config/errsnap.example.toml");
            assert!(
                example.contains(&format!("[{section}]"))
                    && (example.contains(&format!("\n{field} ="))
                        || example.contains(&format!("\n# {field} ="))),
                "{t} is missing from config/errsnap.example.toml"
            );
        }
        assert!(keys::KEYS.iter().all(|k| !k.doc.is_empty()));
    }

    #[test]
    fn defaults_and_typed_values() {
        let s = Settings::from_config(&Config::empty()).unwrap();
        assert_eq!(s.queue_capacity, 10_000);
        assert_eq!(s.exit_budget, Duration::from_secs(3));
        assert_eq!(s.policy.cooldown, Duration::from_secs(600));
        assert!(!s.disabled);
        let mut c = Config::empty();
        c.set("ERRSNAP_EXIT_BUDGET_MS", "1500").unwrap();
        c.set("ERRSNAP_ALERT_COOLDOWN_SECS", "2m").unwrap();
        c.set("ERRSNAP_PANIC_TIMEOUT_MS", "1s 500ms").unwrap();
        c.set("ERRSNAP_REDACT_PATTERNS", "[\"a+\", \"b\"]").unwrap();
        c.set("ERRSNAP_DISABLED", "yes").unwrap();
        let s = Settings::from_config(&c).unwrap();
        assert_eq!(s.exit_budget, Duration::from_millis(1500));
        assert_eq!(s.policy.cooldown, Duration::from_secs(120));
        assert_eq!(s.panic_timeout, Duration::from_millis(1500));
        assert_eq!(s.redact_patterns, ["a+", "b"]);
        assert!(s.disabled);
        for (key, bad, expected) in [
            ("ERRSNAP_QUEUE_CAPACITY", "0", "from 1 to 10000000"),
            ("ERRSNAP_ALERT_TIMEOUT_SECS", "0", "1 s to 5m"),
            ("ERRSNAP_EXIT_BUDGET_MS", "soon", "such as 3s"),
            ("ERRSNAP_DURABILITY", "sometimes", "normal or full"),
        ] {
            let mut c = Config::empty();
            c.set(key, bad).unwrap();
            let err = Settings::from_config(&c).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(bad) && err.contains(expected),
                "{err}"
            );
        }
    }
}
