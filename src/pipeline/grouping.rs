//! Which group an event joins: errsnap's fingerprint of the fields as
//! stored (redacted), then the `[[grouping]]` rules, then a fingerprint
//! the code chose (`PushOptions::fingerprint`), which wins over a rule's.
//! The same function runs on the writer for every new event and in
//! `errsnap regroup` over the stored events, so both agree.
//!
//! While a store is in transition (its events were grouped with another
//! configuration: rules or algorithm changed), each event also carries its
//! fingerprints under the earlier configurations: the store puts it in the
//! group it had before when its new fingerprint has none yet
//! (`store::sql::grouping`), so a change never silently splits a group.

use std::collections::BTreeMap;

use crate::event::{ChainLink, Event, EventKind, Frame, Location, DEFAULT_FINGERPRINT};
use crate::pipeline::fingerprint;
use crate::settings::grouping::{Action, Field, GroupingConfig, Matcher, Rule, ALGORITHM_CAPTURED};

/// How many earlier configurations a writer computes fingerprints for.
pub(crate) const EARLIER_LIMIT: usize = 4;

/// What grouping looks at, from a new event or a stored one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub(crate) logger: &'a str,
    pub(crate) kind: EventKind,
    pub(crate) message: &'a str,
    pub(crate) chain: &'a [ChainLink],
    pub(crate) frames: &'a [Frame],
    pub(crate) location: Option<&'a Location>,
    pub(crate) tags: &'a BTreeMap<String, String>,
}

impl<'a> Subject<'a> {
    /// The fields of an event.
    pub(crate) fn of(ev: &'a Event) -> Subject<'a> {
        Subject {
            logger: &ev.logger,
            kind: ev.kind,
            message: &ev.message,
            chain: &ev.chain,
            frames: &ev.frames,
            location: ev.location.as_ref(),
            tags: &ev.tags,
        }
    }

    /// errsnap's own fingerprint of these fields.
    pub(crate) fn default_fingerprint(&self) -> String {
        fingerprint::fingerprint(
            self.logger,
            self.kind,
            self.message,
            self.chain,
            self.frames,
            self.location,
        )
    }

    /// The frames rules look at: the in-app ones, else all.
    fn rule_frames(&self) -> impl Iterator<Item = &'a Frame> {
        let any_in_app = self.frames.iter().any(|f| f.in_app);
        self.frames.iter().filter(move |f| f.in_app || !any_in_app)
    }

    fn matches(&self, m: &Matcher) -> bool {
        match &m.field {
            Field::Message => m.matches(self.message),
            Field::ErrorType => self
                .chain
                .iter()
                .filter_map(|c| c.type_name.as_deref())
                .any(|t| m.matches(t)),
            Field::Function => self
                .rule_frames()
                .filter_map(|f| f.function.as_deref())
                .any(|f| m.matches(f)),
            Field::Module => self
                .rule_frames()
                .filter_map(|f| f.function.as_deref())
                .filter_map(|f| f.rsplit_once("::").map(|(module, _)| module))
                .any(|module| m.matches(module)),
            Field::File => {
                self.location.is_some_and(|l| m.matches(&l.file))
                    || self
                        .rule_frames()
                        .filter_map(|f| f.file.as_deref())
                        .any(|f| m.matches(f))
            }
            Field::Logger => m.matches(self.logger),
            Field::Tag(key) => self.tags.get(key).is_some_and(|v| m.matches(v)),
        }
    }

    /// A rule's part with the event's values put in: `{{ logger }}`,
    /// `{{ error_type }}`, `{{ tags.KEY }}` (`{{ default }}` stays, for
    /// [`fingerprint::rule_fingerprint`]).
    fn expand(&self, part: &str) -> String {
        let trimmed = part.trim();
        let Some(var) = trimmed
            .strip_prefix("{{")
            .and_then(|v| v.strip_suffix("}}"))
            .map(str::trim)
        else {
            return part.to_owned();
        };
        match var {
            "logger" => self.logger.to_owned(),
            "error_type" => self
                .chain
                .first()
                .and_then(|c| c.type_name.clone())
                .unwrap_or_default(),
            "message" => fingerprint::normalize_message(self.message),
            _ => match var.strip_prefix("tags.") {
                Some(key) => self.tags.get(key).cloned().unwrap_or_default(),
                None => part.to_owned(),
            },
        }
    }
}

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grouped {
    /// Into the group of this fingerprint; `custom`: the code chose it.
    Fingerprint { fingerprint: String, custom: bool },
    /// Nowhere: a rule ignores it.
    Ignored,
}

/// The first rule whose fields all match.
fn rule_for<'r>(rules: &'r [Rule], s: &Subject<'_>) -> Option<&'r Rule> {
    rules
        .iter()
        .find(|r| r.matchers.iter().all(|m| s.matches(m)))
}

/// Groups `s` by `config`; `custom`: the parts the code chose, if any.
/// (An algorithm-1 configuration has no rules: its fingerprint is the
/// captured one, which the caller has.)
pub(crate) fn group(
    config: &GroupingConfig,
    s: &Subject<'_>,
    custom: Option<&[String]>,
) -> Grouped {
    let default = s.default_fingerprint();
    let rule = rule_for(&config.rules, s);
    if let Some(Rule {
        action: Action::Ignore,
        ..
    }) = rule
    {
        return Grouped::Ignored;
    }
    if let Some(parts) = custom {
        return Grouped::Fingerprint {
            fingerprint: fingerprint::custom_fingerprint(parts, &default),
            custom: true,
        };
    }
    match rule {
        Some(Rule {
            action: Action::Fingerprint(parts),
            ..
        }) => {
            let parts: Vec<String> = parts.iter().map(|p| s.expand(p)).collect();
            // A rule of `{{ default }}` alone groups as errsnap would.
            if parts.len() == 1 && is_default(&parts[0]) {
                return Grouped::Fingerprint {
                    fingerprint: default,
                    custom: false,
                };
            }
            Grouped::Fingerprint {
                fingerprint: fingerprint::rule_fingerprint(&parts, &default),
                custom: false,
            }
        }
        _ => Grouped::Fingerprint {
            fingerprint: default,
            custom: false,
        },
    }
}

fn is_default(part: &str) -> bool {
    let p = part.trim();
    p == DEFAULT_FINGERPRINT || p == "{{default}}"
}

/// The grouping a writer applies: its own configuration and, while its
/// store is in transition, the earlier ones (newest first).
#[derive(Debug, Clone, Default)]
pub(crate) struct Grouping {
    pub(crate) current: GroupingConfig,
    pub(crate) earlier: Vec<GroupingConfig>,
    /// Events a rule ignored since the writer last counted them.
    pub(crate) ignored: u64,
}

impl Grouping {
    /// A writer's grouping before its store said what it holds.
    pub(crate) fn new(current: GroupingConfig) -> Grouping {
        Grouping {
            current,
            earlier: Vec::new(),
            ignored: 0,
        }
    }

    /// Whether an earlier configuration is the first algorithm's, whose
    /// fingerprint is of the fields as captured (before redaction).
    pub(crate) fn needs_captured(&self) -> bool {
        self.earlier
            .iter()
            .any(|c| c.algorithm == ALGORITHM_CAPTURED)
    }

    /// Groups a redacted event: sets its fingerprint (and whether the code
    /// chose it) and its fingerprints under the earlier configurations.
    /// `captured`: its fingerprint of the fields before redaction (the
    /// first algorithm's). Returns false when a rule ignores the event (it
    /// is counted).
    pub(crate) fn apply(
        &mut self,
        ev: &mut Event,
        custom: Option<&[String]>,
        captured: String,
    ) -> bool {
        let s = Subject::of(ev);
        let Grouped::Fingerprint {
            fingerprint,
            custom: chosen,
        } = group(&self.current, &s, custom)
        else {
            self.ignored += 1;
            return false;
        };
        let mut earlier: Vec<String> = Vec::new();
        for config in &self.earlier {
            let fp = if config.algorithm == ALGORITHM_CAPTURED {
                captured.clone()
            } else {
                match group(config, &s, custom) {
                    Grouped::Fingerprint { fingerprint, .. } => fingerprint,
                    Grouped::Ignored => continue,
                }
            };
            if fp != fingerprint && !earlier.contains(&fp) {
                earlier.push(fp);
            }
        }
        ev.fingerprint = fingerprint;
        ev.custom_fingerprint = chosen;
        ev.earlier_fingerprints = earlier;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::grouping::{parse_rules, ALGORITHM};

    fn config(text: &str) -> GroupingConfig {
        let t: toml::Table = toml::from_str(text).unwrap();
        GroupingConfig {
            algorithm: ALGORITHM,
            rules: parse_rules(&t["grouping"]).unwrap(),
        }
    }

    fn frame(function: &str, file: &str, in_app: bool) -> Frame {
        Frame::named(Some(function.into()), Some(file.into()), Some(10), in_app)
    }

    struct Fields {
        logger: &'static str,
        message: &'static str,
        chain: Vec<ChainLink>,
        frames: Vec<Frame>,
        tags: BTreeMap<String, String>,
    }

    impl Fields {
        fn new(message: &'static str) -> Fields {
            Fields {
                logger: "app",
                message,
                chain: vec![ChainLink {
                    type_name: Some("sqlx::Error".into()),
                    message: message.into(),
                }],
                frames: vec![
                    frame("std::rt::lang_start", "/rustc/std/rt.rs", false),
                    frame("app::db::query", "src/db.rs", true),
                    frame("app::main", "src/main.rs", true),
                ],
                tags: BTreeMap::from([("shard".to_owned(), "eu-1".to_owned())]),
            }
        }
        fn subject(&self) -> Subject<'_> {
            Subject {
                logger: self.logger,
                kind: EventKind::Error,
                message: self.message,
                chain: &self.chain,
                frames: &self.frames,
                location: None,
                tags: &self.tags,
            }
        }
    }

    fn fp(g: Grouped) -> String {
        match g {
            Grouped::Fingerprint { fingerprint, .. } => fingerprint,
            Grouped::Ignored => panic!("ignored"),
        }
    }

    #[test]
    fn each_field_matches_what_it_names() {
        let f = Fields::new("query timed out after 30s");
        let s = f.subject();
        let none = GroupingConfig::default();
        let default = fp(group(&none, &s, None));
        assert_eq!(
            default,
            fingerprint::fingerprint(
                "app",
                EventKind::Error,
                f.message,
                &f.chain,
                &f.frames,
                None
            ),
            "without rules, errsnap's own fingerprint"
        );
        for (rule, hit) in [
            ("message = \"*TIMED OUT*\"", true),
            ("message = \"timed out\"", false),
            ("error_type = \"sqlx::*\"", true),
            ("error_type = \"std::*\"", false),
            ("function = \"app::db::*\"", true),
            ("function = \"std::rt::*\"", false),
            ("module = \"app::db\"", true),
            ("module = \"app\"", true),
            ("module = \"app::d\"", false),
            ("file = \"src/db.rs\"", true),
            ("file = \"*/rt.rs\"", false),
            ("logger = \"app\"", true),
            ("logger = \"ap\"", false),
            ("tags = { shard = \"eu-*\" }", true),
            ("tags = { shard = \"us-*\" }", false),
            ("tags = { region = \"*\" }", false),
            ("message = \"*timed*\"\nlogger = \"other\"", false),
        ] {
            let c = config(&format!("[[grouping]]\n{rule}\nfingerprint = [\"x\"]"));
            let got = fp(group(&c, &s, None));
            assert_eq!(got != default, hit, "{rule}");
        }
    }

    #[test]
    fn rules_decide_in_order_and_code_chosen_parts_win() {
        let a = Fields::new("query timed out after 30s");
        let b = Fields::new("connection reset by peer");
        let c = config(
            "[[grouping]]\nerror_type = \"sqlx::Error\"\nfingerprint = [\"db\"]\n\
             [[grouping]]\nmessage = \"*\"\nfingerprint = [\"everything\"]",
        );
        let (ga, gb) = (group(&c, &a.subject(), None), group(&c, &b.subject(), None));
        assert_eq!(ga, gb, "the first rule that matches decides");
        assert_eq!(
            ga,
            Grouped::Fingerprint {
                fingerprint: fingerprint::rule_fingerprint(&["db".into()], "unused"),
                custom: false
            }
        );
        let chosen = group(&c, &a.subject(), Some(&["mine".into()]));
        assert_eq!(
            chosen,
            Grouped::Fingerprint {
                fingerprint: fingerprint::custom_fingerprint(&["mine".into()], "unused"),
                custom: true
            }
        );
        let ignore = config("[[grouping]]\nmessage = \"*reset*\"\nignore = true");
        assert_eq!(
            group(&ignore, &b.subject(), Some(&["mine".into()])),
            Grouped::Ignored
        );
        assert_ne!(group(&ignore, &a.subject(), None), Grouped::Ignored);
    }

    #[test]
    fn parts_take_the_events_values() {
        let a = Fields::new("x");
        let mut b = Fields::new("x");
        b.tags.insert("shard".into(), "us-2".into());
        let split = config("[[grouping]]\nlogger = \"app\"\nfingerprint = [\"{{ default }}\", \"{{ tags.shard }}\"]");
        assert_ne!(
            group(&split, &a.subject(), None),
            group(&split, &b.subject(), None)
        );
        let same = config(
            "[[grouping]]\nlogger = \"app\"\nfingerprint = [\"{{ default }}\", \"{{ logger }}\"]",
        );
        assert_eq!(
            group(&same, &a.subject(), None),
            group(&same, &b.subject(), None)
        );
        let plain = config("[[grouping]]\nlogger = \"app\"\nfingerprint = [\"{{ default }}\"]");
        let none = GroupingConfig::default();
        assert_eq!(
            group(&plain, &a.subject(), None),
            group(&none, &a.subject(), None)
        );
        let s = a.subject();
        assert_eq!(s.expand("{{ error_type }}"), "sqlx::Error");
        assert_eq!(s.expand("{{ logger }}"), "app");
        assert_eq!(s.expand("{{tags.missing}}"), "");
        assert_eq!(s.expand("{{ unknown }}"), "{{ unknown }}");
        assert_eq!(s.expand("{{ message }}"), "x");
        assert_eq!(s.expand("plain"), "plain");
    }

    #[test]
    fn a_writer_in_transition_names_the_earlier_fingerprints() {
        let rules = config("[[grouping]]\nerror_type = \"sqlx::*\"\nfingerprint = [\"db\"]");
        let mut g = Grouping::new(rules.clone());
        assert!(!g.needs_captured());
        g.earlier = vec![GroupingConfig::default(), GroupingConfig::captured()];
        assert!(g.needs_captured());
        let f = Fields::new("timed out");
        let mut ev = crate::event::Event::sample("x");
        ev.logger = f.logger.into();
        ev.message = f.message.into();
        ev.chain = f.chain.clone();
        ev.frames = f.frames.clone().into();
        ev.tags = f.tags.clone();
        ev.location = None;
        ev.kind = EventKind::Error;
        assert!(g.apply(&mut ev, None, "captured-fp".into()));
        assert_eq!(ev.fingerprint, fp(group(&rules, &f.subject(), None)));
        assert!(!ev.custom_fingerprint);
        assert_eq!(
            ev.earlier_fingerprints,
            vec![
                fp(group(&GroupingConfig::default(), &f.subject(), None)),
                "captured-fp".into()
            ]
        );
        // Unchanged by the transition: nothing earlier to name.
        let mut g = Grouping::new(GroupingConfig::default());
        g.earlier = vec![GroupingConfig::default()];
        let before = ev.fingerprint.clone();
        assert!(g.apply(&mut ev, Some(&["c".into()]), before));
        assert!(ev.custom_fingerprint);
        assert!(ev.earlier_fingerprints.is_empty());
        let mut g = Grouping::new(config("[[grouping]]\nlogger = \"app\"\nignore = true"));
        assert!(!g.apply(&mut ev, None, String::new()));
        assert_eq!(g.ignored, 1);
    }
}
