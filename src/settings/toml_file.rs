//! The settings file (`config/errsnap.toml`): each `[section] field` is a
//! key of the table (`[alerts.slack] webhook_url` is
//! `ERRSNAP_SLACK_WEBHOOK_URL`); `[levels]` and `[loggers.<name>]` hold
//! levels per destination. Errors name the file, the key and the line.

use std::path::Path;

use super::config::{edit_distance, Config, Source};
use super::keys::{self, Kind, KEYS};
use crate::error::{Error, Result};

impl Config {
    pub(super) fn read_toml(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let file: toml::Table = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!(" at line {}", line_of(&text, s.start)))
                .unwrap_or_default();
            Error::config(path.display().to_string(), format!("{}{at}", e.message()))
        })?;
        let named = |key: &str| Error::config(path.display().to_string(), key.to_owned());
        for (section, body) in file {
            if section == "grouping" {
                self.grouping = super::grouping::parse_rules(&body).map_err(|e| {
                    let line = line_of(&text, text.find("[[grouping]]").unwrap_or(0));
                    named(&format!("{e} (the rules start at line {line})"))
                })?;
                continue;
            }
            if section == "resource_warning" {
                self.resource_warnings =
                    super::resource_warnings::parse_rules(&body).map_err(|e| {
                        let at = text.find("[[resource_warning]]").unwrap_or(0);
                        named(&format!(
                            "{e} (the rules start at line {})",
                            line_of(&text, at)
                        ))
                    })?;
                continue;
            }
            let toml::Value::Table(body) = body else {
                return Err(named(&format!(
                    "{section:?} at line {}: expected a [section]",
                    line_of(&text, text.find(&section).unwrap_or(0))
                )));
            };
            if section == "loggers" {
                for (logger, levels) in body {
                    let toml::Value::Table(levels) = levels else {
                        return Err(named(&format!("loggers.{logger}: expected a table")));
                    };
                    self.put_levels(path, &text, &logger, &format!("loggers.{logger}"), levels)?;
                }
                continue;
            }
            if section == "levels" {
                self.put_levels(path, &text, "", "levels", body)?;
                continue;
            }
            for (field, value) in body {
                let dotted = format!("{section}.{field}");
                let now = self
                    .current_name(&dotted, &path.display().to_string())
                    .to_owned();
                let Some(key) = keys::find_toml(&now) else {
                    let hint = KEYS
                        .iter()
                        .filter_map(|k| k.toml)
                        .min_by_key(|t| edit_distance(t, &dotted))
                        .map(|t| format!(" (did you mean {t}?)"))
                        .unwrap_or_default();
                    let line = line_of(&text, find_field(&text, &section, &field));
                    return Err(named(&format!("unknown key {dotted} at line {line}{hint}")));
                };
                let v = toml_text(&value)
                    .ok_or_else(|| named(&format!("{dotted}: expected {}", key.kind.expected())))?;
                let line = line_of(&text, find_field(&text, &section, &field));
                self.values.entry(key.name.to_owned()).or_insert((
                    v,
                    Source::Toml {
                        path: path.to_owned(),
                        key: dotted,
                        line,
                    },
                ));
            }
        }
        Ok(())
    }

    /// Keeps the levels of `[levels]` (`logger` empty) or of a
    /// `[loggers.<name>]` section.
    fn put_levels(
        &mut self,
        path: &Path,
        text: &str,
        logger: &str,
        section: &str,
        levels: toml::Table,
    ) -> Result<()> {
        for (dest, v) in levels {
            let toml::Value::String(v) = v else {
                return Err(Error::config(
                    path.display().to_string(),
                    format!("{section}.{dest}: expected {}", Kind::Level.expected()),
                ));
            };
            let header = section
                .split_once('.')
                .map_or(section.to_owned(), |(a, b)| format!("{a}.{b}"));
            let line = line_of(text, find_field(text, &header, &dest));
            let source = Source::Toml {
                path: path.to_owned(),
                key: format!("{section}.{dest}"),
                line,
            };
            // The root levels are the keys' values too (`ERRSNAP_DB_LEVEL`).
            if logger.is_empty() {
                if let Some(key) = keys::find_toml(&format!("levels.{dest}")) {
                    self.values
                        .entry(key.name.to_owned())
                        .or_insert((v.clone(), source.clone()));
                }
            }
            self.levels
                .entry(logger.to_owned())
                .or_default()
                .entry(dest.clone())
                .or_insert((v, source));
        }
        Ok(())
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Where `field = ` stands inside `[section]` (for messages).
fn find_field(text: &str, section: &str, field: &str) -> usize {
    let start = text.find(&format!("[{section}]")).unwrap_or(0);
    let mut offset = start;
    for line in text[start..].split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with(field) && t[field.len()..].trim_start().starts_with('=') {
            return offset;
        }
        offset += line.len();
    }
    start
}

/// A settings-file value as the text an environment variable would hold.
fn toml_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(a) => {
            let items: Option<Vec<&str>> = a.iter().map(toml::Value::as_str).collect();
            items.and_then(|i| serde_json::to_string(&i).ok())
        }
        _ => None,
    }
}
