//! Settings from the process environment, a `.env` file and an optional
//! `config/errsnap.toml`.
//!
//! The `.env` file is read (with python-dotenv's rules, see
//! [`crate::dotenv`]) into errsnap's own map: the process environment is
//! never modified (that is unsound once threads run). Precedence: builder calls, then the process environment, then the
//! `.env` file, then the TOML file (its `[loggers.<name>]` sections before its
//! root `[levels]`), then defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Every key errsnap reads, and whether its value is a secret (never shown
/// in `Debug` or errors). Unknown `ERRSNAP_*` keys are errors, so a typo does
/// not silently leave a setting at its default.
const KEYS: &[(&str, bool)] = &[
    ("ERRSNAP_DISABLED", false),
    ("ERRSNAP_DB_PATH", false),
    ("ERRSNAP_APP_NAME", false),
    ("ERRSNAP_RELEASE", false),
    ("ERRSNAP_ENVIRONMENT", false),
    ("ERRSNAP_DURABILITY", false),
    ("ERRSNAP_QUEUE_CAPACITY", false),
    ("ERRSNAP_PANIC_TIMEOUT_MS", false),
    ("ERRSNAP_EXIT_BUDGET_MS", false),
    ("ERRSNAP_SLACK_WEBHOOK_URL", true),
    ("ERRSNAP_SLACK_APP_NAME", false),
    ("ERRSNAP_SLACK_MIN_LEVEL", false),
    ("ERRSNAP_SLACK_MAX_PER_MINUTE", false),
    ("ERRSNAP_SMTP_HOST", false),
    ("ERRSNAP_SMTP_PORT", false),
    ("ERRSNAP_SMTP_TLS", false),
    ("ERRSNAP_SMTP_USERNAME", false),
    ("ERRSNAP_SMTP_PASSWORD", true),
    ("ERRSNAP_EMAIL_APP_NAME", false),
    ("ERRSNAP_EMAIL_FROM", false),
    ("ERRSNAP_EMAIL_TO", false),
    ("ERRSNAP_EMAIL_MIN_LEVEL", false),
    ("ERRSNAP_EMAIL_MAX_PER_MINUTE", false),
    ("ERRSNAP_TLS_CA_FILE", false),
    ("ERRSNAP_ALERT_COOLDOWN_SECS", false),
    ("ERRSNAP_ALERT_THRESHOLD", false),
    ("ERRSNAP_ALERT_WINDOW_SECS", false),
    ("ERRSNAP_ALERT_TIMEOUT_SECS", false),
    ("ERRSNAP_PANIC_ALERT_WAIT_MS", false),
    ("ERRSNAP_DB_LEVEL", false),
    ("ERRSNAP_CONSOLE_LEVEL", false),
    ("ERRSNAP_SAMPLE_KEEP_ONE_IN", false),
    ("ERRSNAP_REDACT_EMAILS", false),
    ("ERRSNAP_REDACT_PATTERNS", false),
    ("ERRSNAP_BREADCRUMBS", false),
    ("ERRSNAP_CONFIG_FILE", false),
    ("ERRSNAP_RETENTION_MAX_AGE_DAYS", false),
    ("ERRSNAP_RETENTION_MAX_EVENTS", false),
    ("ERRSNAP_RETENTION_MAX_MB", false),
];

/// A yes/no setting: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flag(pub(crate) bool);

impl FromStr for Flag {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Flag, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Flag(true)),
            "0" | "false" | "no" | "off" => Ok(Flag(false)),
            _ => Err(()),
        }
    }
}

/// The default location of the optional settings file.
pub const DEFAULT_CONFIG_FILE: &str = "config/errsnap.toml";

/// Where a value came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A `.env` line; `written` is the key as the file spells it when that
    /// is an original-design name (`mail_server` for `ERRSNAP_SMTP_HOST`).
    File {
        path: PathBuf,
        line: usize,
        written: Option<&'static str>,
    },
    Toml {
        path: PathBuf,
        key: String,
    },
    Env,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File { path, line, .. } => write!(f, "{}:{}", path.display(), line),
            Source::Toml { path, key } => write!(f, "{} {key}", path.display()),
            Source::Env => f.write_str("the environment"),
        }
    }
}

/// errsnap's settings as read from `.env` and the environment.
///
/// `Debug` never shows secret values.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let env = dir.path().join(".env");
/// std::fs::write(&env, "ERRSNAP_APP_NAME=billing\nERRSNAP_DURABILITY=full\n").unwrap();
/// let config = errsnap::Config::from_dotenv_path(&env)?;
/// assert_eq!(config.get("ERRSNAP_APP_NAME"), Some("billing"));
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Config {
    values: BTreeMap<String, (String, Source)>,
    /// Findings that do not stop errsnap (a misspelled original-design key).
    warnings: Vec<String>,
    /// `[loggers.<name>]` sections of the TOML file: destination -> level.
    loggers: BTreeMap<String, BTreeMap<String, (String, Source)>>,
}

/// The TOML file's layout. Only non-secret settings belong there.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    app: Option<AppSection>,
    storage: Option<StorageSection>,
    levels: Option<LevelsSection>,
    loggers: Option<BTreeMap<String, LevelsSection>>,
    sampling: Option<SamplingSection>,
    redaction: Option<RedactionSection>,
    alerts: Option<AlertsSection>,
    retention: Option<RetentionSection>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionSection {
    max_age_days: Option<u64>,
    max_events: Option<u64>,
    max_mb: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AppSection {
    name: Option<String>,
    release: Option<String>,
    environment: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    path: Option<String>,
    durability: Option<String>,
    queue_capacity: Option<u64>,
    panic_timeout_ms: Option<u64>,
    breadcrumbs: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelsSection {
    database: Option<String>,
    console: Option<String>,
    slack: Option<String>,
    email: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SamplingSection {
    keep_one_in: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactionSection {
    emails: Option<bool>,
    patterns: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsSection {
    cooldown_secs: Option<u64>,
    threshold: Option<u64>,
    window_secs: Option<u64>,
    timeout_secs: Option<u64>,
    panic_wait_ms: Option<u64>,
    slack_max_per_minute: Option<u64>,
    email_max_per_minute: Option<u64>,
}

/// A destination of events, for per-logger levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destination {
    Database,
    Console,
    Slack,
    Email,
}

impl Destination {
    fn key(self) -> &'static str {
        match self {
            Destination::Database => "ERRSNAP_DB_LEVEL",
            Destination::Console => "ERRSNAP_CONSOLE_LEVEL",
            Destination::Slack => "ERRSNAP_SLACK_MIN_LEVEL",
            Destination::Email => "ERRSNAP_EMAIL_MIN_LEVEL",
        }
    }

    fn toml_name(self) -> &'static str {
        match self {
            Destination::Database => "database",
            Destination::Console => "console",
            Destination::Slack => "slack",
            Destination::Email => "email",
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, (v, _)) in &self.values {
            if is_secret(k) {
                m.entry(k, &"<redacted>");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

fn is_secret(key: &str) -> bool {
    KEYS.iter().any(|(name, secret)| *name == key && *secret)
}

impl Config {
    /// No settings at all (every default).
    pub fn empty() -> Config {
        Config::default()
    }

    /// Reads `./.env` if it exists, then the process environment on top.
    ///
    /// # Errors
    /// A malformed `.env` line (named by line number, never by content), or
    /// an unknown `ERRSNAP_*` key.
    pub fn from_env() -> Result<Config> {
        let mut c = Config::default();
        let path = Path::new(".env");
        if path.is_file() {
            c.read_dotenv(path)?;
        }
        c.read_process_env()?;
        c.read_default_file()?;
        Ok(c)
    }

    /// Reads the given `.env` file (which must exist), then the process
    /// environment on top.
    ///
    /// # Errors
    /// The file cannot be read or parsed, or holds an unknown `ERRSNAP_*` key.
    pub fn from_dotenv_path(path: impl AsRef<Path>) -> Result<Config> {
        let mut c = Config::default();
        c.read_dotenv(path.as_ref())?;
        c.read_process_env()?;
        c.read_default_file()?;
        Ok(c)
    }

    /// Adds the settings of a TOML file (see `config/errsnap.toml` in the
    /// repository for every key), below everything already set.
    ///
    /// # Errors
    /// The file cannot be read, is not valid TOML, or has an unknown key or a
    /// value of the wrong type (the message names it, with line and column).
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let file = dir.path().join("errsnap.toml");
    /// std::fs::write(&file, "[levels]\ndatabase = \"info\"\n[loggers.payments]\ndatabase = \"debug\"\n").unwrap();
    /// let config = errsnap::Config::empty().with_file(&file)?;
    /// assert_eq!(config.get("ERRSNAP_DB_LEVEL"), Some("info"));
    /// # Ok(()) }
    /// ```
    pub fn with_file(mut self, path: impl AsRef<Path>) -> Result<Config> {
        self.read_toml(path.as_ref())?;
        Ok(self)
    }

    /// `ERRSNAP_CONFIG_FILE` if set (it must exist), else
    /// `config/errsnap.toml` if it exists.
    fn read_default_file(&mut self) -> Result<()> {
        match self.string("ERRSNAP_CONFIG_FILE") {
            Some(p) => self.read_toml(Path::new(&p)),
            None => {
                let p = Path::new(DEFAULT_CONFIG_FILE);
                if p.is_file() {
                    self.read_toml(p)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn read_toml(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_owned();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" at line {line}")
                })
                .unwrap_or_default();
            Error::config(path.display().to_string(), format!("{msg}{at}"))
        })?;
        let mut put = |key: &str, toml_key: &str, value: Option<String>| {
            if let Some(v) = value {
                self.values.entry(key.to_owned()).or_insert((
                    v,
                    Source::Toml {
                        path: path.to_owned(),
                        key: toml_key.to_owned(),
                    },
                ));
            }
        };
        let n = |v: Option<u64>| v.map(|v| v.to_string());
        if let Some(a) = file.app {
            put("ERRSNAP_APP_NAME", "app.name", a.name);
            put("ERRSNAP_RELEASE", "app.release", a.release);
            put("ERRSNAP_ENVIRONMENT", "app.environment", a.environment);
        }
        if let Some(st) = file.storage {
            put("ERRSNAP_DB_PATH", "storage.path", st.path);
            put("ERRSNAP_DURABILITY", "storage.durability", st.durability);
            put(
                "ERRSNAP_QUEUE_CAPACITY",
                "storage.queue_capacity",
                n(st.queue_capacity),
            );
            put(
                "ERRSNAP_PANIC_TIMEOUT_MS",
                "storage.panic_timeout_ms",
                n(st.panic_timeout_ms),
            );
            put(
                "ERRSNAP_BREADCRUMBS",
                "storage.breadcrumbs",
                n(st.breadcrumbs),
            );
        }
        if let Some(l) = file.levels {
            put("ERRSNAP_DB_LEVEL", "levels.database", l.database);
            put("ERRSNAP_CONSOLE_LEVEL", "levels.console", l.console);
            put("ERRSNAP_SLACK_MIN_LEVEL", "levels.slack", l.slack);
            put("ERRSNAP_EMAIL_MIN_LEVEL", "levels.email", l.email);
        }
        if let Some(sm) = file.sampling {
            put(
                "ERRSNAP_SAMPLE_KEEP_ONE_IN",
                "sampling.keep_one_in",
                n(sm.keep_one_in),
            );
        }
        if let Some(r) = file.redaction {
            put(
                "ERRSNAP_REDACT_EMAILS",
                "redaction.emails",
                r.emails.map(|b| b.to_string()),
            );
            put(
                "ERRSNAP_REDACT_PATTERNS",
                "redaction.patterns",
                r.patterns
                    .map(|p| serde_json::to_string(&p).unwrap_or_default()),
            );
        }
        if let Some(a) = file.alerts {
            put(
                "ERRSNAP_ALERT_COOLDOWN_SECS",
                "alerts.cooldown_secs",
                n(a.cooldown_secs),
            );
            put(
                "ERRSNAP_ALERT_THRESHOLD",
                "alerts.threshold",
                n(a.threshold),
            );
            put(
                "ERRSNAP_ALERT_WINDOW_SECS",
                "alerts.window_secs",
                n(a.window_secs),
            );
            put(
                "ERRSNAP_ALERT_TIMEOUT_SECS",
                "alerts.timeout_secs",
                n(a.timeout_secs),
            );
            put(
                "ERRSNAP_PANIC_ALERT_WAIT_MS",
                "alerts.panic_wait_ms",
                n(a.panic_wait_ms),
            );
            put(
                "ERRSNAP_SLACK_MAX_PER_MINUTE",
                "alerts.slack_max_per_minute",
                n(a.slack_max_per_minute),
            );
            put(
                "ERRSNAP_EMAIL_MAX_PER_MINUTE",
                "alerts.email_max_per_minute",
                n(a.email_max_per_minute),
            );
        }
        if let Some(r) = file.retention {
            put(
                "ERRSNAP_RETENTION_MAX_AGE_DAYS",
                "retention.max_age_days",
                n(r.max_age_days),
            );
            put(
                "ERRSNAP_RETENTION_MAX_EVENTS",
                "retention.max_events",
                n(r.max_events),
            );
            put("ERRSNAP_RETENTION_MAX_MB", "retention.max_mb", n(r.max_mb));
        }
        for (name, l) in file.loggers.unwrap_or_default() {
            let section = self.loggers.entry(name.clone()).or_default();
            for (dest, v) in [
                (Destination::Database, l.database),
                (Destination::Console, l.console),
                (Destination::Slack, l.slack),
                (Destination::Email, l.email),
            ] {
                if let Some(v) = v {
                    section.entry(dest.toml_name().to_owned()).or_insert((
                        v,
                        Source::Toml {
                            path: path.to_owned(),
                            key: format!("loggers.{name}.{}", dest.toml_name()),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    /// The level of `dest` for the logger `name`: the environment and `.env`
    /// first, then the file's `[loggers.<name>]`, then its `[levels]`.
    pub(crate) fn level_for(
        &self,
        name: &str,
        dest: Destination,
    ) -> Result<Option<crate::level::LevelFilter>> {
        let key = dest.key();
        let expected = "one of trace, debug, info, warn, error, fatal, off";
        let root = self.values.get(key);
        let from_file = matches!(root, Some((_, Source::Toml { .. })));
        if root.is_some() && !from_file {
            return self.parse(key, expected);
        }
        if let Some((v, source)) = self.loggers.get(name).and_then(|l| l.get(dest.toml_name())) {
            return v.trim().parse().map(Some).map_err(|_| {
                Error::config(
                    key,
                    format!("{:?} (from {source}): expected {expected}", truncate100(v)),
                )
            });
        }
        self.parse(key, expected)
    }

    /// Every key errsnap reads (`ERRSNAP_*`), and whether its value is a
    /// secret.
    pub fn keys() -> impl Iterator<Item = (&'static str, bool)> {
        KEYS.iter().copied()
    }

    /// The raw value of a key, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// Sets a key, as the builder does (highest precedence).
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> Result<()> {
        check_known(key, &Source::Env)?;
        self.values
            .insert(key.to_owned(), (value.into(), Source::Env));
        Ok(())
    }

    fn read_process_env(&mut self) -> Result<()> {
        for (k, v) in std::env::vars_os() {
            let Some(k) = k.to_str() else { continue };
            if !k.starts_with("ERRSNAP_") {
                continue;
            }
            check_known(k, &Source::Env)?;
            let v = v.into_string().map_err(|_| {
                Error::config(k, "the value is not valid UTF-8 (in the environment)")
            })?;
            self.values.insert(k.to_owned(), (v, Source::Env));
        }
        Ok(())
    }

    fn read_dotenv(&mut self, path: &Path) -> Result<()> {
        let raw =
            std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        self.read_dotenv_bytes(path, raw)
    }

    /// Parses `.env` content (`path` only names it in errors).
    pub(crate) fn read_dotenv_bytes(&mut self, path: &Path, raw: Vec<u8>) -> Result<()> {
        let text = String::from_utf8(raw).map_err(|e| {
            let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Error::config(
                format!("{}:{line}", path.display()),
                "the line is not valid UTF-8",
            )
        })?;
        let env = |name: &str| std::env::var(name).ok();
        let entries = crate::dotenv::parse(&text, &env).map_err(|e| {
            // Never echo the line: it may hold a password.
            Error::config(
                format!("{}:{}", path.display(), e.line),
                format!("the line cannot be read (content not shown): {}", e.hint),
            )
        })?;
        let mut legacy: Vec<(&'static str, String, Source)> = Vec::new();
        for entry in entries {
            let key = entry.key;
            let source = |written| Source::File {
                path: path.to_owned(),
                line: entry.line,
                written,
            };
            if key.starts_with("ERRSNAP_") {
                let source = source(None);
                check_known(&key, &source)?;
                self.values.insert(key, (entry.value, source));
            } else if let Some((written, mapped)) = legacy_key(&key) {
                legacy.push((mapped, entry.value, source(Some(written))));
            } else if let Some(near) = near_legacy_key(&key) {
                self.warnings.push(format!(
                    "unknown key {key:?} in {}:{} is ignored (did you mean {near}?)",
                    path.display(),
                    entry.line
                ));
            }
        }
        // The original design's keys, unless the namespaced key is set.
        for (mapped, value, source) in legacy {
            self.values
                .entry(mapped.to_owned())
                .or_insert((value, source));
        }
        Ok(())
    }

    /// Things in the settings that do not stop errsnap but are probably
    /// mistakes (an original-design key spelled slightly wrong, which is
    /// ignored). Printed once on stderr when a logger is built, and by
    /// `errsnap check` and `errsnap test-alert`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The name under which the user wrote `key`: the original design's
    /// name (`mail_server`) when the value came from one, else `key`.
    pub(crate) fn name_of(&self, key: &str) -> String {
        match self.values.get(key) {
            Some((
                _,
                Source::File {
                    written: Some(w), ..
                },
            )) => (*w).to_owned(),
            _ => key.to_owned(),
        }
    }

    /// Renames the key of a configuration error to the name the user wrote,
    /// and says which errsnap key it stands for.
    pub(crate) fn rename(&self, e: Error) -> Error {
        if let crate::ErrorKind::Config { key, message } = e.kind() {
            let written = self.name_of(key);
            if written != *key {
                return Error::config(
                    written.clone(),
                    format!("{message} ({written} is the original design's name for {key})"),
                );
            }
        }
        e
    }

    /// Parses a key's value; `expected` says what a valid value looks like.
    pub(crate) fn parse<T: FromStr>(&self, key: &str, expected: &str) -> Result<Option<T>> {
        match self.values.get(key) {
            None => Ok(None),
            // An empty value means "not set" (as in a copied .env.example).
            Some((v, _)) if v.trim().is_empty() => Ok(None),
            Some((v, source)) => v.trim().parse().map(Some).map_err(|_| {
                let shown = if is_secret(key) {
                    "<redacted>".to_owned()
                } else {
                    format!("{:?}", v.chars().take(100).collect::<String>())
                };
                self.rename(Error::config(
                    key,
                    format!("{shown} (from {source}): expected {expected}"),
                ))
            }),
        }
    }

    /// A non-empty string value.
    pub(crate) fn string(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

fn truncate100(v: &str) -> String {
    v.chars().take(100).collect()
}

/// The original design's `.env` keys, read from the `.env` file only (they
/// are too generic to take from the environment), and their new names.
const LEGACY_KEYS: &[(&str, &str)] = &[
    ("webhook", "ERRSNAP_SLACK_WEBHOOK_URL"),
    ("slack_app_name", "ERRSNAP_SLACK_APP_NAME"),
    ("mail_server", "ERRSNAP_SMTP_HOST"),
    ("server_port", "ERRSNAP_SMTP_PORT"),
    ("username", "ERRSNAP_SMTP_USERNAME"),
    ("password", "ERRSNAP_SMTP_PASSWORD"),
    ("email_app_name", "ERRSNAP_EMAIL_APP_NAME"),
    ("sender_email", "ERRSNAP_EMAIL_FROM"),
    ("recipient_email", "ERRSNAP_EMAIL_TO"),
];

fn legacy_key(key: &str) -> Option<(&'static str, &'static str)> {
    LEGACY_KEYS.iter().copied().find(|(k, _)| *k == key)
}

/// An original-design key that `key` is probably a misspelling of (the
/// `.env` file may hold the application's own keys too, so only close
/// misses of the longer names count).
fn near_legacy_key(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    LEGACY_KEYS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| k.len() >= 7)
        .find(|k| *k != key && edit_distance(k, &lower) <= if k.len() >= 10 { 2 } else { 1 })
}

fn check_known(key: &str, source: &Source) -> Result<()> {
    if KEYS.iter().any(|(name, _)| *name == key) {
        return Ok(());
    }
    let hint = KEYS
        .iter()
        .min_by_key(|(name, _)| edit_distance(name, key))
        .map(|(name, _)| format!(" (did you mean {name}?)"))
        .unwrap_or_default();
    Err(Error::config(
        key,
        format!("unknown key (from {source}){hint}"),
    ))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        std::fs::write(&p, content).unwrap();
        (dir, p)
    }

    #[test]
    fn reads_bom_crlf_export_quotes() {
        let (_d, p) = write(
            "\u{feff}# comment\r\nexport ERRSNAP_APP_NAME=\"my app\"\r\nERRSNAP_RELEASE='1.2'\r\nERRSNAP_APP_NAME=second\r\n",
        );
        let mut c = Config::default();
        c.read_dotenv(&p).unwrap();
        assert_eq!(c.get("ERRSNAP_APP_NAME"), Some("second"));
        assert_eq!(c.get("ERRSNAP_RELEASE"), Some("1.2"));
    }

    #[test]
    fn seed_keys_are_read_and_namespaced_keys_win() {
        let (_d, p) = write(
            "webhook=https://hooks.slack.com/services/A\nERRSNAP_SLACK_WEBHOOK_URL=https://hooks.slack.com/services/B\nmail_server=smtp.example.com\npassword=hunter2\n",
        );
        let mut c = Config::default();
        c.read_dotenv(&p).unwrap();
        assert_eq!(
            c.get("ERRSNAP_SLACK_WEBHOOK_URL"),
            Some("https://hooks.slack.com/services/B")
        );
        assert_eq!(c.get("ERRSNAP_SMTP_HOST"), Some("smtp.example.com"));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("services/B"),
            "{dbg}"
        );
    }

    #[test]
    fn unknown_key_is_named_with_a_hint() {
        let (_d, p) = write("ERRSNAP_APP_NAMEE=x\n");
        let mut c = Config::default();
        let err = c.read_dotenv(&p).unwrap_err().to_string();
        assert!(err.contains("ERRSNAP_APP_NAMEE"), "{err}");
        assert!(err.contains("did you mean ERRSNAP_APP_NAME"), "{err}");
        assert!(err.contains(":1"), "{err}");
    }

    #[test]
    fn bad_line_is_named_by_number_not_content() {
        let (_d, p) = write("ERRSNAP_APP_NAME=a\nthis line has hunter2 in it\n");
        let mut c = Config::default();
        let err = c.read_dotenv(&p).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains(":2"), "{err}");
    }

    #[test]
    fn bad_value_names_key_value_and_source() {
        let (_d, p) = write("ERRSNAP_QUEUE_CAPACITY=lots\n");
        let mut c = Config::default();
        c.read_dotenv(&p).unwrap();
        let err = c
            .parse::<usize>("ERRSNAP_QUEUE_CAPACITY", "a whole number")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ERRSNAP_QUEUE_CAPACITY"), "{err}");
        assert!(err.contains("\"lots\""), "{err}");
        assert!(err.contains(":1"), "{err}");
    }
}
