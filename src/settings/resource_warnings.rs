//! `[[resource_warning]]` rules of the settings file: warnings before
//! death, each checked by the writer against the flight recorder's
//! readings (`pipeline::resource_warnings`). Off unless a rule is written.
//!
//! ```toml
//! [[resource_warning]]
//! memory_percent_of_limit = 90   # the cgroup's memory above 90% of its limit
//! readings = 3                   # for 3 readings in a row (default 3)
//!
//! [[resource_warning]]
//! fds_percent_of_limit = 80      # open descriptors above 80% of RLIMIT_NOFILE
//!
//! [[resource_warning]]
//! name = "leak"
//! rss_growth_mib_per_min = 100   # RSS growing faster, over `readings` readings
//! readings = 6
//! ```

use serde::Deserialize;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Condition {
    /// The cgroup's memory above this share of its limit (percent).
    MemoryPercent(f64),
    /// Open descriptors above this share of their limit (percent).
    FdPercent(f64),
    /// RSS growing faster than this many bytes a minute.
    RssGrowth(f64),
}

/// One rule: its name (its group's), what it watches, and over how many
/// readings in a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceWarning {
    pub(crate) name: String,
    pub(crate) condition: Condition,
    pub(crate) readings: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    memory_percent_of_limit: Option<f64>,
    fds_percent_of_limit: Option<f64>,
    rss_growth_mib_per_min: Option<f64>,
    readings: Option<u32>,
}

/// The most readings a rule may span (the writer keeps this many).
pub(crate) const MAX_READINGS: usize = 120;

/// Parses the `[[resource_warning]]` array; errors name the rule and key.
pub(crate) fn parse_rules(value: &toml::Value) -> Result<Vec<ResourceWarning>, String> {
    let toml::Value::Array(items) = value else {
        return Err("resource_warning: expected [[resource_warning]] tables".into());
    };
    let mut rules: Vec<ResourceWarning> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("resource_warning[{i}]");
        let raw: Raw = item
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| format!("{at}: {}", e.message()))?;
        let percent = |key: &str, v: f64| {
            if v > 0.0 && v <= 100.0 {
                Ok(v)
            } else {
                Err(format!(
                    "{at}.{key}: {v} is not a percentage above 0 and at most 100"
                ))
            }
        };
        let mut conditions = Vec::new();
        if let Some(v) = raw.memory_percent_of_limit {
            conditions.push((
                "memory",
                Condition::MemoryPercent(percent("memory_percent_of_limit", v)?),
            ));
        }
        if let Some(v) = raw.fds_percent_of_limit {
            conditions.push((
                "descriptors",
                Condition::FdPercent(percent("fds_percent_of_limit", v)?),
            ));
        }
        if let Some(v) = raw.rss_growth_mib_per_min {
            if !(v > 0.0 && v.is_finite()) {
                return Err(format!(
                    "{at}.rss_growth_mib_per_min: {v} is not a positive rate"
                ));
            }
            conditions.push(("rss-growth", Condition::RssGrowth(v * (1u64 << 20) as f64)));
        }
        let (default_name, condition) = match conditions.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "{at}: say what to watch: memory_percent_of_limit, fds_percent_of_limit or rss_growth_mib_per_min"
                ))
            }
            _ => return Err(format!("{at}: one condition per rule (write a rule for each)")),
        };
        let readings = raw.readings.unwrap_or(3) as usize;
        if readings == 0 || readings > MAX_READINGS {
            return Err(format!(
                "{at}.readings: {readings} is not from 1 to {MAX_READINGS}"
            ));
        }
        if matches!(condition, Condition::RssGrowth(_)) && readings < 2 {
            return Err(format!("{at}.readings: a growth needs at least 2 readings"));
        }
        let name = raw.name.unwrap_or_else(|| default_name.to_owned());
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(format!("{at}.name: expected 1 to 64 printable characters"));
        }
        if rules.iter().any(|r| r.name == name) {
            return Err(format!(
                "{at}.name: {name:?} is the name of an earlier rule"
            ));
        }
        rules.push(ResourceWarning {
            name,
            condition,
            readings,
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Result<Vec<ResourceWarning>, String> {
        let t: toml::Table = toml::from_str(text).unwrap();
        parse_rules(&t["resource_warning"])
    }

    #[test]
    fn rules_read_their_condition_readings_and_name() {
        let r = rules(
            r#"
            [[resource_warning]]
            memory_percent_of_limit = 90
            [[resource_warning]]
            fds_percent_of_limit = 80
            readings = 1
            [[resource_warning]]
            name = "leak"
            rss_growth_mib_per_min = 100
            readings = 6
            "#,
        )
        .unwrap();
        assert_eq!(
            r,
            vec![
                ResourceWarning {
                    name: "memory".into(),
                    condition: Condition::MemoryPercent(90.0),
                    readings: 3
                },
                ResourceWarning {
                    name: "descriptors".into(),
                    condition: Condition::FdPercent(80.0),
                    readings: 1
                },
                ResourceWarning {
                    name: "leak".into(),
                    condition: Condition::RssGrowth(100.0 * 1048576.0),
                    readings: 6
                },
            ]
        );
    }

    #[test]
    fn bad_rules_are_named_with_their_key() {
        let err = |t: &str| rules(&format!("[[resource_warning]]\n{t}")).unwrap_err();
        assert!(err("memroy_percent_of_limit = 9")
            .contains("resource_warning[0]: unknown field `memroy_percent_of_limit`"));
        assert!(err("memory_percent_of_limit = 0")
            .contains("resource_warning[0].memory_percent_of_limit: 0"));
        assert!(err("memory_percent_of_limit = 101").contains("not a percentage"));
        assert!(err("fds_percent_of_limit = -5").contains("fds_percent_of_limit: -5"));
        assert!(err("rss_growth_mib_per_min = 0").contains("not a positive rate"));
        assert!(err("readings = 3").contains("say what to watch"));
        assert!(
            err("memory_percent_of_limit = 90\nfds_percent_of_limit = 80")
                .contains("one condition per rule")
        );
        assert!(
            err("memory_percent_of_limit = 90\nreadings = 0").contains("readings: 0 is not from 1")
        );
        assert!(err("memory_percent_of_limit = 90\nreadings = 121").contains("readings: 121"));
        assert!(err("rss_growth_mib_per_min = 5\nreadings = 1").contains("at least 2"));
        assert!(err("memory_percent_of_limit = 90\nname = \"\"").contains("name: expected"));
        let twice = rules(
            "[[resource_warning]]\nmemory_percent_of_limit = 90\n[[resource_warning]]\nmemory_percent_of_limit = 95",
        )
        .unwrap_err();
        assert!(
            twice.contains("resource_warning[1].name: \"memory\""),
            "{twice}"
        );
        // The bounds themselves are accepted.
        let ok = |t: &str| rules(&format!("[[resource_warning]]\n{t}")).unwrap();
        assert_eq!(
            ok("memory_percent_of_limit = 100\nreadings = 120")[0].readings,
            120
        );
        assert_eq!(
            ok("rss_growth_mib_per_min = 5\nreadings = 2")[0].readings,
            2
        );
        let name64 = "n".repeat(64);
        assert_eq!(
            ok(&format!("fds_percent_of_limit = 1\nname = \"{name64}\""))[0].name,
            name64
        );
        assert!(
            err(&format!("fds_percent_of_limit = 1\nname = \"{name64}n\""))
                .contains("name: expected")
        );
        assert!(err("fds_percent_of_limit = 1\nname = \"a\\u0007b\"").contains("name: expected"));
        let t: toml::Table = toml::from_str("resource_warning = 3").unwrap();
        assert!(parse_rules(&t["resource_warning"])
            .unwrap_err()
            .contains("expected [[resource_warning]]"));
    }
}
