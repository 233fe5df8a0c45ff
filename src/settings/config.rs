//! [`Config`]: the settings as read, each value with where it came from,
//! from the process environment, a `.env` file and an optional settings
//! file, before they are typed ([`super::Settings`]).
//!
//! The `.env` file is read (with python-dotenv's rules, see
//! [`super::dotenv`]) into errsnap's own map: the process environment is
//! never modified (that is unsound once threads run). Precedence: builder
//! calls, then the process environment, then the `.env` file, then the
//! settings file (its `[loggers.<name>]` sections before its root
//! `[levels]`), then defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::keys::{self, Kind, KEYS};
use crate::error::{Error, Result};

/// The default location of the optional settings file.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "config/errsnap.toml";

/// Where a value came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
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
        line: usize,
    },
    Env,
    /// A call of the builder's setter.
    Builder {
        setter: &'static str,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File { path, line, .. } => write!(f, "{}:{}", path.display(), line),
            Source::Toml { path, key, line } => {
                write!(f, "{} {key} (line {line})", path.display())
            }
            Source::Env => f.write_str("the environment"),
            Source::Builder { setter } => write!(f, "the builder's `.{setter}(..)`"),
        }
    }
}

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

/// errsnap's settings as read from `.env`, the environment and the
/// settings file. Every key is in `.env.example`; `Debug` never shows
/// secret values.
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
    pub(super) values: BTreeMap<String, (String, Source)>,
    /// The settings file's levels: `[levels]` under `""`, and
    /// `[loggers.<name>]` under the logger's name: destination -> level.
    pub(super) levels: BTreeMap<String, BTreeMap<String, (String, Source)>>,
    /// The settings file's `[[grouping]]` and `[[resource_warning]]` rules.
    pub(super) grouping: Vec<super::grouping::Rule>,
    pub(super) resource_warnings: Vec<super::resource_warnings::ResourceWarning>,
    /// Findings that do not stop errsnap (a misspelled original-design key).
    warnings: Vec<String>,
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
    keys::find(key).is_some_and(|k| k.secret)
}

impl Config {
    /// The settings file read when none is named: `config/errsnap.toml`
    /// (optional; `ERRSNAP_CONFIG_FILE` or
    /// [`EventLoggerBuilder::config_file`](crate::EventLoggerBuilder::config_file)
    /// name another, which must exist).
    pub const DEFAULT_FILE: &'static str = DEFAULT_CONFIG_FILE;

    /// No settings at all (every default).
    pub fn empty() -> Config {
        Config::default()
    }

    /// Reads `./.env` if it exists, then the process environment on top,
    /// then the settings file (`ERRSNAP_CONFIG_FILE`, else
    /// `config/errsnap.toml` if it exists) below both.
    ///
    /// # Errors
    /// A malformed `.env` line (named by line number, never by content), an
    /// unknown `ERRSNAP_*` key, or a settings file that cannot be read.
    pub fn from_env() -> Result<Config> {
        let mut c = Config::default();
        let path = Path::new(".env");
        if path.is_file() && c.trusted_default(path) {
            c.read_dotenv(path)?;
        }
        c.read_process_env()?;
        c.read_default_file()?;
        Ok(c)
    }

    /// Reads the given `.env` file (which must exist), then the process
    /// environment on top, then the settings file below both.
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

    /// Adds the settings of a TOML file (see `config/errsnap.example.toml`
    /// in the repository for every key), below everything already set.
    ///
    /// # Errors
    /// The file cannot be read, is not valid TOML, or has an unknown key or a
    /// secret (the message names it, with its line).
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
                if p.is_file() && self.trusted_default(p) {
                    self.read_toml(p)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether a settings file found by default (not named by the program)
    /// may be obeyed (see `settings::trust`); if not, a warning says why
    /// (`errsnap check` and the logger's build show it) and it is skipped.
    fn trusted_default(&mut self, path: &Path) -> bool {
        match super::trust::refusal(path) {
            None => true,
            Some(why) => {
                self.warnings.push(format!(
                    "ignoring {}: {why}; another user could have put it there (make it yours and \
                     not writable by others, or name it with ERRSNAP_CONFIG_FILE / --env-file)",
                    path.display()
                ));
                false
            }
        }
    }

    /// The destinations the settings file names in its level sections
    /// (`database`, `console`, channel names), to check them against the
    /// channels there are.
    pub(crate) fn level_destinations(&self) -> Vec<(String, String)> {
        self.levels
            .values()
            .flat_map(|m| m.iter())
            .map(|(dest, (_, source))| (dest.clone(), source.to_string()))
            .collect()
    }

    /// The level of `dest` (`database`, `console`, or a channel name) for
    /// the logger `name`: the environment and `.env` first, then the file's
    /// `[loggers.<name>]`, then its `[levels]`, then `default`.
    pub(crate) fn level_for(
        &self,
        name: &str,
        dest: &str,
        default: crate::level::LevelFilter,
    ) -> Result<crate::level::LevelFilter> {
        let key = match dest {
            "database" => Some("ERRSNAP_DB_LEVEL"),
            "console" => Some("ERRSNAP_CONSOLE_LEVEL"),
            channel => keys::channel_key(channel, "MIN_LEVEL"),
        };
        let expected = Kind::Level.expected();
        if let Some(key) = key {
            if let Some((_, source)) = self.values.get(key) {
                if !matches!(source, Source::Toml { .. }) {
                    return Ok(self.value(key)?.unwrap_or(default));
                }
            }
        }
        for section in [name, ""] {
            if let Some((v, source)) = self.levels.get(section).and_then(|l| l.get(dest)) {
                return v.trim().parse().map_err(|_| {
                    Error::config(
                        key.unwrap_or(dest),
                        format!("{:?} (from {source}): expected {expected}", truncate100(v)),
                    )
                });
            }
        }
        Ok(default)
    }

    /// Every key errsnap reads (`ERRSNAP_*`), and whether its value is a
    /// secret.
    pub fn keys() -> impl Iterator<Item = (&'static str, bool)> {
        KEYS.iter().map(|k| (k.name, k.secret))
    }

    /// The raw value of a key, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// Sets a key, as the builder does (highest precedence).
    ///
    /// # Errors
    /// The key is not one errsnap reads.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> Result<()> {
        let key = self.current_name(key, "Config::set");
        check_known(key, &Source::Env)?;
        self.values
            .insert(key.to_owned(), (value.into(), Source::Env));
        Ok(())
    }

    /// Sets a key from the builder's setter `setter`: above every other
    /// source.
    pub(crate) fn set_by_builder(&mut self, key: &str, value: String, setter: &'static str) {
        self.values
            .insert(key.to_owned(), (value, Source::Builder { setter }));
    }

    fn read_process_env(&mut self) -> Result<()> {
        for (k, v) in std::env::vars_os() {
            let Some(k) = k.to_str() else { continue };
            // `ERRSNAP_EXAMPLE_*` belongs to the examples (their listen
            // address and such), not to the library.
            if !k.starts_with("ERRSNAP_") || k.starts_with("ERRSNAP_EXAMPLE_") {
                continue;
            }
            let k = self.current_name(k, "the environment");
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
        let entries = super::dotenv::parse(&text, &env).map_err(|e| {
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
                let key = self
                    .current_name(&key, &format!("{}:{}", path.display(), entry.line))
                    .to_owned();
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

    /// The name a key has now: a renamed key's former name is still read,
    /// with a warning naming where it stands.
    pub(crate) fn current_name<'k>(&mut self, key: &'k str, place: &str) -> &'k str {
        match keys::renamed(key) {
            Some(now) => {
                self.warnings.push(format!(
                    "{key} (in {place}) is now called {now}; it is still read"
                ));
                now
            }
            None => key,
        }
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
        if let crate::error::ErrorKind::Config { key, message } = e.kind() {
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

    /// A key's value, parsed; an empty value means "not set" (as in a
    /// copied `.env.example`). The error names the key (as the user wrote
    /// it), the value (never a secret's), where it came from, and what a
    /// valid value looks like, from the key table.
    pub(crate) fn value<T: FromStr>(&self, key: &str) -> Result<Option<T>> {
        let expected =
            keys::find(key).map_or_else(|| "a valid value".into(), |k| k.kind.expected());
        match self.values.get(key) {
            None => Ok(None),
            Some((v, _)) if v.trim().is_empty() => Ok(None),
            Some((v, source)) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.invalid(key, v, source, &expected)),
        }
    }

    fn invalid(&self, key: &str, v: &str, source: &Source, expected: &str) -> Error {
        let shown = if is_secret(key) {
            "<redacted>".to_owned()
        } else {
            format!("{:?}", truncate100(v))
        };
        self.rename(Error::config(
            key,
            format!("{shown} (from {source}): expected {expected}"),
        ))
    }

    /// A whole number within the key's range.
    pub(crate) fn count(&self, key: &str) -> Result<Option<u64>> {
        let n: Option<u64> = self.value(key)?;
        if let (Some(n), Some(k)) = (n, keys::find(key)) {
            if let Kind::Count { min, max } = k.kind {
                if n < min || n > max {
                    let (v, source) = &self.values[key];
                    return Err(self.invalid(key, v, source, &k.kind.expected()));
                }
            }
        }
        Ok(n)
    }

    /// A duration: a bare number in the key's unit (ms or s), or a
    /// humantime duration (`3s`, `10m`, `1h 30m`), within the key's range.
    pub(crate) fn duration(&self, key: &str) -> Result<Option<std::time::Duration>> {
        use std::time::Duration;
        let Some(k) = keys::find(key) else {
            return Ok(None);
        };
        let Some((v, source)) = self.values.get(key).filter(|(v, _)| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let t = v.trim();
        let (unit, min, max) = match k.kind {
            Kind::Millis { max_ms } => (
                Duration::from_millis(1),
                Duration::ZERO,
                Duration::from_millis(max_ms),
            ),
            Kind::Secs { min_s, max_s } => (
                Duration::from_secs(1),
                Duration::from_secs(min_s),
                Duration::from_secs(max_s),
            ),
            Kind::Days { max_d } => (
                Duration::from_secs(86_400),
                Duration::from_nanos(1),
                Duration::from_secs(max_d * 86_400),
            ),
            _ => return Ok(None),
        };
        let d = match t.parse::<u32>() {
            Ok(n) => Some(unit * n),
            Err(_) => humantime::parse_duration(t).ok(),
        };
        match d {
            Some(d) if d >= min && d <= max => Ok(Some(d)),
            _ => Err(self.invalid(key, v, source, &k.kind.expected())),
        }
    }

    /// A size in bytes: a bare number in the key's unit (KiB or MiB), or
    /// a number with a unit (`B`, `KiB`, `MiB`, `GiB`; `KB`, `MB`, `GB` are
    /// read as the same binary units), within the key's range.
    pub(crate) fn bytes(&self, key: &str) -> Result<Option<u64>> {
        let Some(k) = keys::find(key) else {
            return Ok(None);
        };
        let Kind::Size { unit, min, max } = k.kind else {
            return Ok(None);
        };
        let Some((v, source)) = self.values.get(key).filter(|(v, _)| !v.trim().is_empty()) else {
            return Ok(None);
        };
        match super::size::parse_size(v.trim(), unit) {
            Some(n) if n >= min.saturating_mul(unit) && n <= max.saturating_mul(unit) => {
                Ok(Some(n))
            }
            _ => Err(self.invalid(key, v, source, &k.kind.expected())),
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
    if keys::find(key).is_some() {
        return Ok(());
    }
    let hint = KEYS
        .iter()
        .min_by_key(|k| edit_distance(k.name, key))
        .map(|k| format!(" (did you mean {}?)", k.name))
        .unwrap_or_default();
    Err(Error::config(
        key,
        format!("unknown key (from {source}){hint}"),
    ))
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
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
#[path = "config_tests.rs"]
mod tests;
