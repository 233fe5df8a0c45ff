//! Grouping rules: the `[[grouping]]` tables of the settings file.
//!
//! ```toml
//! [[grouping]]                       # every timeout of the database, one group
//! error_type = "*::db::Timeout"
//! message = "*timed out*"
//! fingerprint = ["db-timeout"]
//!
//! [[grouping]]                       # split a group by a tag
//! logger = "payments"
//! tags = { provider = "*" }
//! fingerprint = ["{{ default }}", "{{ tags.provider }}"]
//!
//! [[grouping]]                       # not stored, only counted
//! message = "client went away*"
//! ignore = true
//! ```
//!
//! A rule matches when all its fields match (glob patterns: `*`, `?`,
//! `[abc]`; `message` ignores case, the others do not); the first rule
//! that matches decides. What each field looks at is
//! `pipeline::grouping`'s to say; this file parses and checks.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The grouping algorithm of events recorded before grouping rules: the
/// fingerprint of the fields as captured, before redaction.
pub(crate) const ALGORITHM_CAPTURED: u32 = 1;
/// The grouping algorithm of this build: the fingerprint of the fields as
/// stored (redacted), then the rules.
pub(crate) const ALGORITHM: u32 = 2;

/// What a rule looks at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Field {
    /// The event's message.
    Message,
    /// The type of any error of the chain.
    ErrorType,
    /// The module path of any in-app frame's function.
    Module,
    /// Any in-app frame's function.
    Function,
    /// The event's source file or any in-app frame's file.
    File,
    /// The logger's name.
    Logger,
    /// The value of one tag.
    Tag(String),
}

impl Field {
    /// The field as written in the settings file.
    pub(crate) fn name(&self) -> String {
        match self {
            Field::Message => "message".into(),
            Field::ErrorType => "error_type".into(),
            Field::Module => "module".into(),
            Field::Function => "function".into(),
            Field::File => "file".into(),
            Field::Logger => "logger".into(),
            Field::Tag(k) => format!("tags.{k}"),
        }
    }
}

/// One field and its glob pattern.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "MatcherText", into = "MatcherText")]
pub(crate) struct Matcher {
    pub(crate) field: Field,
    pub(crate) pattern: String,
    glob: glob::Pattern,
}

#[derive(Serialize, Deserialize)]
struct MatcherText {
    field: Field,
    pattern: String,
}

impl TryFrom<MatcherText> for Matcher {
    type Error = String;
    fn try_from(m: MatcherText) -> Result<Self, String> {
        Matcher::new(m.field, &m.pattern)
    }
}

impl From<Matcher> for MatcherText {
    fn from(m: Matcher) -> Self {
        MatcherText {
            field: m.field,
            pattern: m.pattern,
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.pattern == other.pattern
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {:?}", self.field.name(), self.pattern)
    }
}

impl Matcher {
    /// A matcher; the error says what is wrong with the pattern.
    pub(crate) fn new(field: Field, pattern: &str) -> Result<Matcher, String> {
        let glob = glob::Pattern::new(pattern)
            .map_err(|e| format!("{:?} is not a glob pattern ({})", pattern, e.msg))?;
        Ok(Matcher {
            field,
            pattern: pattern.to_owned(),
            glob,
        })
    }

    /// Whether `text` matches (a message whatever its case).
    pub(crate) fn matches(&self, text: &str) -> bool {
        let options = glob::MatchOptions {
            case_sensitive: self.field != Field::Message,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        self.glob.matches_with(text, options)
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    /// Group by these parts (`{{ default }}`: errsnap's own fingerprint;
    /// `{{ tags.KEY }}`, `{{ logger }}`, `{{ error_type }}`: the event's).
    Fingerprint(Vec<String>),
    /// Neither stored nor alerted; counted (`grouping_ignored`).
    Ignore,
}

/// One `[[grouping]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Rule {
    pub(crate) matchers: Vec<Matcher>,
    pub(crate) action: Action,
}

/// The grouping a store's events were made with: the algorithm's version
/// and the rules. Stored with the events: a change of either is a
/// transition (`store::sql::grouping`), never a silent split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GroupingConfig {
    pub(crate) algorithm: u32,
    #[serde(default)]
    pub(crate) rules: Vec<Rule>,
}

impl Default for GroupingConfig {
    fn default() -> Self {
        GroupingConfig {
            algorithm: ALGORITHM,
            rules: Vec::new(),
        }
    }
}

impl GroupingConfig {
    /// The configuration of events stored before rules existed.
    pub(crate) fn captured() -> GroupingConfig {
        GroupingConfig {
            algorithm: ALGORITHM_CAPTURED,
            rules: Vec::new(),
        }
    }

    /// The stored form (compared as text: the same rules, the same text).
    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form.
    pub(crate) fn from_text(text: &str) -> Option<GroupingConfig> {
        serde_json::from_str(text).ok()
    }
}

/// The field names a rule may have, for errors.
const FIELDS: [&str; 7] = [
    "message",
    "error_type",
    "module",
    "function",
    "file",
    "logger",
    "tags",
];

/// Parses the rule `[[grouping]]` number `index` (from 0); the error
/// names the key (`grouping[1].fingerprint: ...`).
pub(crate) fn parse_rule(index: usize, table: &toml::Table) -> Result<Rule, String> {
    let at = |key: &str| format!("grouping[{index}].{key}");
    let mut matchers = Vec::new();
    let mut action = None;
    let mut ignore = false;
    for (key, value) in table {
        match (key.as_str(), value) {
            ("fingerprint", toml::Value::Array(parts)) => {
                let parts = parts
                    .iter()
                    .map(|p| p.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| format!("{}: expected an array of strings", at(key)))?;
                if parts.is_empty() || parts.iter().all(|p| p.trim().is_empty()) {
                    return Err(format!("{}: expected at least one part", at(key)));
                }
                action = Some(Action::Fingerprint(parts));
            }
            ("fingerprint", _) => {
                return Err(format!(
                    "{}: expected an array of strings, e.g. [\"{{{{ default }}}}\", \"db\"]",
                    at(key)
                ))
            }
            ("ignore", toml::Value::Boolean(b)) => ignore = *b,
            ("ignore", _) => return Err(format!("{}: expected true or false", at(key))),
            ("tags", toml::Value::Table(tags)) => {
                for (tag, pattern) in tags {
                    let pattern = pattern.as_str().ok_or_else(|| {
                        format!("{}: expected a string pattern", at(&format!("tags.{tag}")))
                    })?;
                    matchers.push(
                        Matcher::new(Field::Tag(tag.clone()), pattern)
                            .map_err(|e| format!("{}: {e}", at(&format!("tags.{tag}"))))?,
                    );
                }
            }
            ("tags", _) => {
                return Err(format!(
                    "{}: expected a table, e.g. {{ component = \"db\" }}",
                    at(key)
                ))
            }
            (name, value) => {
                let field = match name {
                    "message" => Field::Message,
                    "error_type" => Field::ErrorType,
                    "module" => Field::Module,
                    "function" => Field::Function,
                    "file" => Field::File,
                    "logger" => Field::Logger,
                    _ => {
                        let hint = FIELDS
                            .iter()
                            .chain(["fingerprint", "ignore"].iter())
                            .min_by_key(|f| super::edit_distance(f, name))
                            .map(|f| format!(" (did you mean {f}?)"))
                            .unwrap_or_default();
                        return Err(format!("{}: unknown key{hint}", at(name)));
                    }
                };
                let pattern = value
                    .as_str()
                    .ok_or_else(|| format!("{}: expected a string pattern", at(name)))?;
                matchers
                    .push(Matcher::new(field, pattern).map_err(|e| format!("{}: {e}", at(name)))?);
            }
        }
    }
    if matchers.is_empty() {
        return Err(format!(
            "grouping[{index}]: a rule needs at least one of {}",
            FIELDS.join(", ")
        ));
    }
    matchers.sort_by(|a, b| a.field.cmp(&b.field));
    let action = match (action, ignore) {
        (Some(_), true) => {
            return Err(format!(
                "grouping[{index}]: either fingerprint or ignore = true, not both"
            ))
        }
        (Some(a), false) => a,
        (None, true) => Action::Ignore,
        (None, false) => {
            return Err(format!(
                "grouping[{index}]: say what the rule does: fingerprint = [...] or ignore = true"
            ))
        }
    };
    Ok(Rule { matchers, action })
}

/// The rules of a `grouping` value of the settings file (an array of
/// tables); errors name the rule and key.
pub(crate) fn parse_rules(value: &toml::Value) -> Result<Vec<Rule>, String> {
    let toml::Value::Array(items) = value else {
        return Err("grouping: expected [[grouping]] tables".into());
    };
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let toml::Value::Table(t) = item else {
            return Err(format!("grouping[{i}]: expected a [[grouping]] table"));
        };
        rules.push(parse_rule(i, t)?);
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Result<Vec<Rule>, String> {
        let t: toml::Table = toml::from_str(text).unwrap();
        parse_rules(&t["grouping"])
    }

    #[test]
    fn a_rule_reads_its_fields_and_action() {
        let r = rules(
            r#"
            [[grouping]]
            message = "*timed out*"
            tags = { db = "main" }
            fingerprint = ["{{ default }}", "db"]
            [[grouping]]
            logger = "noisy"
            ignore = true
            "#,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].action,
            Action::Fingerprint(vec!["{{ default }}".into(), "db".into()])
        );
        assert_eq!(r[0].matchers.len(), 2);
        assert!(r[0].matchers[0].matches("Query TIMED OUT after 3s"));
        assert!(!r[0].matchers[0].matches("refused"));
        assert_eq!(r[0].matchers[1].field, Field::Tag("db".into()));
        assert!(r[0].matchers[1].matches("main"));
        assert!(
            !r[0].matchers[1].matches("MAIN"),
            "only messages ignore case"
        );
        assert_eq!(r[1].action, Action::Ignore);
        // Shown as written; equal when field and pattern are.
        assert_eq!(
            format!("{:?}", r[0].matchers),
            r#"[message = "*timed out*", tags.db = "main"]"#
        );
        let m = |f: Field, p: &str| Matcher::new(f, p).unwrap();
        assert_eq!(m(Field::Message, "a"), m(Field::Message, "a"));
        assert_ne!(m(Field::Message, "a"), m(Field::Message, "b"));
        assert_ne!(m(Field::Message, "a"), m(Field::Logger, "a"));
        assert_eq!(Field::ErrorType.name(), "error_type");
    }

    #[test]
    fn mistakes_name_the_rule_and_key() {
        let cases = [
            ("[[grouping]]\nmesage = \"x\"\nignore = true", "grouping[0].mesage: unknown key (did you mean message?)"),
            ("[[grouping]]\nmessage = \"x\"", "grouping[0]: say what the rule does"),
            ("[[grouping]]\nignore = true", "grouping[0]: a rule needs at least one of"),
            ("[[grouping]]\nmessage = \"[x\"\nignore = true", "grouping[0].message: \"[x\" is not a glob pattern"),
            ("[[grouping]]\nmessage = \"x\"\nfingerprint = \"db\"", "grouping[0].fingerprint: expected an array"),
            ("[[grouping]]\nmessage = \"x\"\nfingerprint = []", "grouping[0].fingerprint: expected at least one part"),
            ("[[grouping]]\nmessage = \"x\"\nfingerprint = [\" \"]", "grouping[0].fingerprint: expected at least one part"),
            ("[[grouping]]\nmessage = \"x\"\nfingerprint = [\"a\"]\nignore = true", "not both"),
            ("[[grouping]]\nmessage = 3\nignore = true", "grouping[0].message: expected a string pattern"),
            ("[[grouping]]\nmessage = \"x\"\nignore = true\n[[grouping]]\ntags = { a = 1 }\nignore = true", "grouping[1].tags.a: expected a string pattern"),
            ("[[grouping]]\nmessage = \"x\"\nignore = \"yes\"", "grouping[0].ignore: expected true or false"),
        ];
        for (text, want) in cases {
            let err = rules(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let t: toml::Table = toml::from_str("[grouping]\nmessage = \"x\"").unwrap();
        assert!(parse_rules(&t["grouping"])
            .unwrap_err()
            .contains("[[grouping]]"));
    }

    #[test]
    fn a_configuration_reads_back_what_it_stored() {
        let r = rules("[[grouping]]\nfile = \"src/*.rs\"\nfingerprint = [\"x\"]").unwrap();
        let config = GroupingConfig {
            algorithm: ALGORITHM,
            rules: r,
        };
        let text = config.to_text();
        let back = GroupingConfig::from_text(&text).unwrap();
        assert_eq!(back, config);
        assert!(back.rules[0].matchers[0].matches("src/db.rs"));
        assert_eq!(back.to_text(), text, "the same rules, the same text");
        assert_ne!(
            GroupingConfig::captured().to_text(),
            GroupingConfig::default().to_text()
        );
        assert!(GroupingConfig::from_text("{\"algorithm\":2,\"rules\":[{\"matchers\":[{\"field\":\"message\",\"pattern\":\"[\"}],\"action\":\"ignore\"}]}").is_none());
    }
}
