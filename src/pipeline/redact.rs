//! Redaction: secrets are removed before anything is stored or sent.
//!
//! Runs on the writer thread, over the message, the error chain, tag values,
//! string values of `extra`, breadcrumbs, and file paths (location and
//! frames). The event records how many replacements were made, never what
//! they replaced. If a rule fails on a field (it panics), the whole field is
//! replaced by a marker: redaction fails closed.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;

use regex::Regex;

use crate::error::{Error, Result};
use crate::event::Event;

/// The marker that replaces a secret.
pub(crate) const MARK: &str = "[REDACTED]";
/// What a field becomes when redaction itself failed.
pub(crate) const FAILED: &str = "[REDACTED: redaction failed]";

struct Rule {
    re: Regex,
    /// Replacement template (`$1` etc. refer to the rule's groups).
    with: &'static str,
}

/// The rules, compiled when first needed (a program that records nothing
/// never pays for them; a user's own patterns are compiled at once, so a
/// bad one is an error of `build`).
pub(crate) struct Redactor {
    emails: bool,
    user: Vec<String>,
    compiled: std::sync::OnceLock<Option<Compiled>>,
    home: Option<String>,
}

struct Compiled {
    rules: Vec<Rule>,
    /// All patterns at once: text that matches none (the usual case) costs
    /// one scan.
    any: regex::RegexSet,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("emails", &self.emails)
            .field("user_rules", &self.user.len())
            .finish()
    }
}

/// Built-in rules: (pattern, replacement).
const BUILT_IN: &[(&str, &str)] = &[
    // Private key blocks.
    (
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
        "[REDACTED PRIVATE KEY]",
    ),
    // Authorization headers.
    (
        r"(?i)\b(authorization|proxy-authorization)(\s*[:=]\s*)(bearer|basic|token|digest)\s+[^\s,;]+",
        "$1$2$3 [REDACTED]",
    ),
    // Slack webhook URLs and tokens.
    (
        r"https://hooks\.slack\.com/(services|workflows|triggers)/[A-Za-z0-9/_-]+",
        "https://hooks.slack.com/$1/[REDACTED]",
    ),
    (r"\bxox[abposre]-[A-Za-z0-9-]{8,}", "[REDACTED]"),
    // AWS access key ids.
    (
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b",
        "[REDACTED]",
    ),
    // Passwords inside URLs: scheme://user:password@host.
    (
        r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@",
        "${1}[REDACTED]@",
    ),
    // key=value / key: value pairs whose key names a secret.
    (
        r#"(?i)(["']?[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|client[_-]?secret|credentials?)["']?)(\s*[=:]\s*)(\[REDACTED\]|"[^"]*"|'[^']*'|[^\s&,;"'}\])]+)"#,
        "$1$2[REDACTED]",
    ),
];

const EMAIL_RULE: &str = r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b";

impl Redactor {
    /// The built-in rules, e-mail redaction if asked, and the user's
    /// patterns (each replaced whole by `[REDACTED]`). `key` names where the
    /// patterns came from, for errors: the user's patterns are compiled
    /// here; without any, compiling waits for the first text to redact.
    pub(crate) fn new(emails: bool, user: &[String], key: &str) -> Result<Redactor> {
        let home = std::env::var("HOME")
            .ok()
            .filter(|h| h.len() > 1 && h.starts_with('/'))
            .map(|h| h.trim_end_matches('/').to_owned());
        let r = Redactor {
            emails,
            user: user.to_vec(),
            compiled: std::sync::OnceLock::new(),
            home,
        };
        if !user.is_empty() {
            let c = compile(emails, user, key)?;
            let _ = r.compiled.set(Some(c));
        }
        Ok(r)
    }

    /// A redactor whose rules never compile: every field it is given is
    /// replaced by [`FAILED`] (redaction fails closed).
    pub(crate) fn fail_closed() -> Redactor {
        let r = Redactor {
            emails: false,
            user: Vec::new(),
            compiled: std::sync::OnceLock::new(),
            home: None,
        };
        let _ = r.compiled.set(None);
        r
    }

    /// Whether e-mail addresses are redacted, and the user's own patterns
    /// (what a crash file records, for whoever imports it).
    pub(crate) fn settings(&self) -> (bool, &[String]) {
        (self.emails, &self.user)
    }

    /// The compiled rules (`None`: they could not be compiled, and every
    /// field is replaced by [`FAILED`]: redaction fails closed).
    fn compiled(&self) -> Option<&Compiled> {
        self.compiled
            .get_or_init(|| compile(self.emails, &self.user, "redaction").ok())
            .as_ref()
    }

    /// One text, redacted (a monitor's failure in the caller's words).
    pub(crate) fn redact_text(&self, s: &str) -> String {
        self.text(s).0
    }

    /// Redacts one text; returns it and the number of replacements.
    fn text(&self, s: &str) -> (String, u32) {
        let Some(c) = self.compiled() else {
            return (FAILED.to_owned(), 1);
        };
        let home_present = self.home.as_deref().is_some_and(|h| s.contains(h));
        if !home_present && !c.any.is_match(s) {
            return (s.to_owned(), 0);
        }
        let run = || {
            let mut n = 0u32;
            let mut cur: Cow<'_, str> = Cow::Borrowed(s);
            for rule in &c.rules {
                // A match whose replacement is itself (a value redacted
                // already, by errsnap or by the caller) is not counted.
                let mut hits = 0u32;
                let out = rule.re.replace_all(&cur, |caps: &regex::Captures<'_>| {
                    let mut with = String::new();
                    caps.expand(rule.with, &mut with);
                    if caps.get(0).is_none_or(|m| m.as_str() != with) {
                        hits += 1;
                    }
                    with
                });
                if hits > 0 {
                    n += hits;
                    cur = Cow::Owned(out.into_owned());
                }
            }
            if let Some(home) = &self.home {
                let hits = count_home(&cur, home);
                if hits > 0 {
                    n += hits as u32;
                    cur = Cow::Owned(replace_home(&cur, home));
                }
            }
            (cur.into_owned(), n)
        };
        std::panic::catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| (FAILED.to_owned(), 1))
    }

    fn field(&self, s: &mut String, count: &mut u32) {
        if s.is_empty() {
            return;
        }
        let (out, n) = self.text(s);
        if n > 0 {
            *s = out;
            *count += n;
        }
    }

    fn json(&self, v: &mut serde_json::Value, count: &mut u32) {
        match v {
            serde_json::Value::String(s) => self.field(s, count),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.json(x, count)),
            serde_json::Value::Object(o) => self.object(o, count),
            _ => {}
        }
    }

    fn object(&self, o: &mut serde_json::Map<String, serde_json::Value>, count: &mut u32) {
        for (k, x) in o.iter_mut() {
            // A value under a secret-looking key goes whole.
            if is_secret_key(k) && !x.is_null() && !x.is_object() && !x.is_array() {
                *x = serde_json::Value::String(MARK.to_owned());
                *count += 1;
            } else {
                self.json(x, count);
            }
        }
    }

    /// Redacts every text of an event; returns the number of replacements.
    pub(crate) fn event(&self, ev: &mut Event) -> u32 {
        let mut n = 0;
        self.field(&mut ev.message, &mut n);
        for link in &mut ev.chain {
            self.field(&mut link.message, &mut n);
        }
        for (k, v) in ev.tags.iter_mut() {
            if is_secret_key(k) {
                *v = MARK.to_owned();
                n += 1;
            } else {
                self.field(v, &mut n);
            }
        }
        self.object(&mut ev.extra, &mut n);
        if let Some(l) = &mut ev.location {
            self.field(&mut l.file, &mut n);
        }
        for b in &mut ev.breadcrumbs {
            self.field(&mut b.message, &mut n);
        }
        for t in ev.context.texts_mut() {
            self.field(t, &mut n);
        }
        if let Some(r) = &mut ev.context.request {
            for (k, v) in r.headers.iter_mut() {
                if is_secret_key(k) {
                    *v = MARK.to_owned();
                    n += 1;
                } else {
                    self.field(v, &mut n);
                }
            }
        }
        n
    }

    /// For the fuzz targets.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn fuzz_field(&self, s: &mut String, count: &mut u32) {
        self.field(s, count);
    }

    /// Redacts the file paths of frames (once per distinct backtrace).
    pub(crate) fn frames(&self, frames: &mut [crate::event::Frame]) -> u32 {
        let mut n = 0;
        for f in frames {
            if let Some(file) = &mut f.file {
                self.field(file, &mut n);
            }
        }
        n
    }
}

/// Compiles the built-in rules, e-mail redaction if asked, and the user's
/// patterns.
fn compile(emails: bool, user: &[String], key: &str) -> Result<Compiled> {
    let mut rules = Vec::new();
    for (p, with) in BUILT_IN {
        let re =
            Regex::new(p).map_err(|e| Error::config("redaction", format!("built-in rule: {e}")))?;
        rules.push(Rule { re, with });
    }
    if emails {
        let re = Regex::new(EMAIL_RULE)
            .map_err(|e| Error::config("redaction", format!("built-in rule: {e}")))?;
        rules.push(Rule {
            re,
            with: "[EMAIL]",
        });
    }
    for p in user {
        let re = regex::RegexBuilder::new(p)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                let first = e.to_string().lines().last().unwrap_or("").trim().to_owned();
                Error::config(
                    key,
                    format!("{p:?}: not a valid regular expression ({first})"),
                )
            })?;
        rules.push(Rule { re, with: MARK });
    }
    let any = regex::RegexSetBuilder::new(rules.iter().map(|r| r.re.as_str()))
        .size_limit(8 << 20)
        .build()
        .map_err(|e| Error::config(key, format!("the rules together are too large ({e})")))?;
    Ok(Compiled { rules, any })
}

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase().replace('-', "_");
    [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "private_key",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Counts occurrences of the home directory as a path prefix.
fn count_home(s: &str, home: &str) -> usize {
    s.match_indices(home)
        .filter(|(i, _)| is_home_at(s, *i, home))
        .count()
}

fn is_home_at(s: &str, i: usize, home: &str) -> bool {
    let after = s[i + home.len()..].chars().next();
    let before = s[..i].chars().last();
    matches!(
        after,
        None | Some('/') | Some(' ') | Some('"') | Some('\'') | Some(':')
    ) && !matches!(before, Some(c) if c.is_alphanumeric() || c == '/' || c == '.' || c == '_')
}

fn replace_home(s: &str, home: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (i, _) in s.match_indices(home) {
        if i < last || !is_home_at(s, i, home) {
            continue;
        }
        out.push_str(&s[last..i]);
        out.push('~');
        last = i + home.len();
    }
    out.push_str(&s[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redactor {
        let mut red = Redactor::new(true, &["order-[0-9]{6}".into()], "test").unwrap();
        red.home = Some("/home/alice".into());
        red
    }

    fn check(input: &str, must_not: &[&str], must: &[&str]) {
        let (out, n) = r().text(input);
        assert!(n > 0, "{input:?} was not redacted");
        for m in must_not {
            assert!(!out.contains(m), "{out:?} still has {m:?}");
        }
        for m in must {
            assert!(out.contains(m), "{out:?} lacks {m:?}");
        }
    }

    #[test]
    fn the_built_in_rules_compile_on_first_use() {
        let red = Redactor::new(false, &[], "test").unwrap();
        assert!(
            red.compiled.get().is_none(),
            "nothing compiled before a text"
        );
        let (out, n) = red.text("token=abc123 for bob");
        assert_eq!((out.as_str(), n), ("token=[REDACTED] for bob", 1));
        assert!(red.compiled.get().is_some_and(Option::is_some));
        // A user's pattern is compiled at once: a bad one is refused now.
        let bad = Redactor::new(false, &["(".into()], "ERRSNAP_REDACT_PATTERNS");
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("ERRSNAP_REDACT_PATTERNS"));
    }

    #[test]
    fn key_value_secrets() {
        check(
            "login failed: password=hunter2 user=bob",
            &["hunter2"],
            &["user=bob", "password=[REDACTED]"],
        );
        check(
            "db_password: 's3cr3t value'",
            &["s3cr3t"],
            &["db_password: [REDACTED]"],
        );
        check(
            r#"{"api_key": "AbC123xyz", "n": 1}"#,
            &["AbC123xyz"],
            &["\"n\": 1"],
        );
        check(
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG",
            &["wJalrXUtnFEMI"],
            &[],
        );
        check("GET /cb?token=abc.def&x=1", &["abc.def"], &["&x=1"]);
    }

    #[test]
    fn headers_tokens_keys_urls() {
        check(
            "Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig",
            &["eyJhbGciOi"],
            &["Authorization: Bearer [REDACTED]"],
        );
        check(
            "slack says xoxb-1234567890-abcdefghij",
            &["xoxb-1234567890"],
            &[],
        );
        check(
            "posting to https://hooks.slack.com/services/T000/B000/XXXXSECRET failed",
            &["XXXXSECRET"],
            &["hooks.slack.com/services/[REDACTED] failed"],
        );
        check(
            "key AKIAIOSFODNN7EXAMPLE leaked",
            &["AKIAIOSFODNN7EXAMPLE"],
            &["key [REDACTED] leaked"],
        );
        check(
            "postgres://app:pa55w0rd@db:5432/x",
            &["pa55w0rd"],
            &["postgres://app:[REDACTED]@db"],
        );
        check(
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            &["MIIEow"],
            &["[REDACTED PRIVATE KEY]"],
        );
    }

    #[test]
    fn emails_home_and_user_rules() {
        check(
            "mail bob@example.com now",
            &["bob@example.com"],
            &["[EMAIL]"],
        );
        check(
            "open /home/alice/.ssh/id_rsa: denied",
            &["/home/alice"],
            &["~/.ssh/id_rsa"],
        );
        check("refund order-123456", &["123456"], &[]);
        let (out, n) = r().text("/home/alicex/file and /tmp/home/alice");
        assert_eq!(
            (out.as_str(), n),
            ("/home/alicex/file and /tmp/home/alice", 0)
        );
    }

    #[test]
    fn secrets_inside_lists_and_nested_objects_of_extra_are_redacted() {
        // See: issue #12 (7): the `Array` arm had no test.
        let red = r();
        let mut v = serde_json::json!({
            "headers": ["Authorization: Bearer abc.def.ghi", "Accept: */*"],
            "nested": {"password": "hunter2", "list": [{"token": "t0k3n"}], "n": 5},
            "plain": [1, null, true],
        });
        let mut n = 0;
        red.json(&mut v, &mut n);
        let text = v.to_string();
        for secret in ["abc.def.ghi", "hunter2", "t0k3n"] {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
        assert_eq!(n, 3, "{text}");
        assert_eq!(v["headers"][1], "Accept: */*");
        assert_eq!(v["nested"]["n"], 5);
        assert_eq!(v["plain"], serde_json::json!([1, null, true]));
        // A secret-named key holding a container is walked, not replaced.
        let mut v = serde_json::json!({"token": ["password=x1", "fine"]});
        let mut n = 0;
        red.json(&mut v, &mut n);
        assert_eq!(v["token"][1], "fine");
        assert_eq!(n, 1);
    }

    #[test]
    fn home_is_replaced_only_as_a_whole_path() {
        // See: issue #12 (7): boundaries of `replace_home`.
        let home = "/home/alice";
        for (input, expected) in [
            ("/home/alice", "~"),
            ("/home/alice/x", "~/x"),
            ("a /home/alice b", "a ~ b"),
            ("\"/home/alice\"", "\"~\""),
            ("'/home/alice'", "'~'"),
            ("/home/alice:/usr/bin", "~:/usr/bin"),
            ("/home/alice/a /home/alice/b", "~/a ~/b"),
            ("/home/alice/home/alice", "~/home/alice"),
        ] {
            assert_eq!(replace_home(input, home), expected, "{input:?}");
            assert_eq!(
                count_home(input, home),
                expected.matches('~').count(),
                "{input:?}"
            );
        }
        for untouched in [
            "x/home/alice",
            "_/home/alice",
            "./home/alice",
            "9/home/alice",
            "/home/alicex",
            "/home/alice-x",
            "/home/alice.bak",
            "/home/alic",
        ] {
            assert_eq!(replace_home(untouched, home), untouched);
            assert_eq!(count_home(untouched, home), 0, "{untouched:?}");
        }
    }

    fn event_with_secrets() -> Event {
        use crate::event::{Breadcrumb, ChainLink, EventKind, Location};
        let mut tags = std::collections::BTreeMap::new();
        tags.insert("api_token".to_owned(), "tok-1".to_owned());
        tags.insert("route".to_owned(), "/login?password=p4ss".to_owned());
        tags.insert("region".to_owned(), "eu-1".to_owned());
        let serde_json::Value::Object(extra) = serde_json::json!({
            "password": "p455",
            "nothing": null,
            "user": {"name": "bob", "secret": "s3"},
            "n": 1,
        }) else {
            unreachable!()
        };
        let mut ev = Event::sample("login failed: password=hunter2");
        ev.kind = EventKind::Error;
        ev.chain = vec![
            ChainLink {
                message: "outer".into(),
                type_name: None,
            },
            ChainLink {
                message: "Authorization: Bearer abc.def".into(),
                type_name: None,
            },
        ];
        ev.location = Some(Location {
            file: "/home/alice/src/main.rs".into(),
            line: 1,
            column: 1,
        });
        ev.tags = tags;
        ev.extra = extra;
        ev.breadcrumbs = vec![Breadcrumb {
            timestamp_ms: 0,
            level: crate::level::Level::Info,
            category: "http".into(),
            message: "GET /?token=t0k".into(),
        }];
        ev.context.transaction = Some("GET /login".into());
        ev.context.request = Some(
            crate::event::Request::new("GET", "/home/alice/x")
                .query("token=q7k&page=2")
                .header("X-Api-Token", "h3d")
                .header("user-agent", "curl/8"),
        );
        ev
    }

    #[test]
    fn every_text_of_an_event_is_redacted_and_counted() {
        let mut ev = event_with_secrets();
        let n = r().event(&mut ev);
        // message, chain link, tag by key, tag by value, extra by key (twice),
        // home in the location, breadcrumb; the request's query, header by
        // key and home in its path.
        assert_eq!(n, 11);
        let all = format!("{ev:?}");
        for secret in [
            "hunter2", "abc.def", "tok-1", "p4ss", "p455", "s3\"", "t0k", "alice", "q7k", "h3d",
        ] {
            assert!(!all.contains(secret), "{secret} left in {all}");
        }
        assert_eq!(ev.tags["region"], "eu-1");
        let req = ev.context.request.as_ref().expect("request");
        assert!(req.query.as_deref().is_some_and(|q| q.ends_with("&page=2")));
        assert_eq!(req.headers["user-agent"], "curl/8");
        assert_eq!(ev.chain[0].message, "outer");
        assert_eq!(ev.extra["nothing"], serde_json::Value::Null);
        assert_eq!(ev.extra["n"], 1);
        assert_eq!(ev.extra["user"]["name"], "bob");
        assert_eq!(
            ev.location.as_ref().map(|l| l.file.as_str()),
            Some("~/src/main.rs")
        );
    }

    #[test]
    fn frame_paths_are_redacted_and_counted() {
        let frame = |file: Option<&str>| crate::event::Frame {
            function: Some("app::run".into()),
            file: file.map(str::to_owned),
            line: Some(3),
            column: None,
            address: 1,
            module: None,
            module_offset: None,
            build_id: None,
            in_app: true,
        };
        let mut frames = vec![
            frame(Some("/home/alice/app/src/run.rs")),
            frame(None),
            frame(Some("/home/alice/x.rs")),
            frame(Some("/usr/src/y.rs")),
        ];
        assert_eq!(r().frames(&mut frames), 2);
        assert_eq!(frames[0].file.as_deref(), Some("~/app/src/run.rs"));
        assert_eq!(frames[3].file.as_deref(), Some("/usr/src/y.rs"));
        assert!(format!("{:?}", r()).contains("rules"));
    }

    #[test]
    fn redacting_twice_changes_and_counts_nothing_more() {
        let r = r();
        let (once, n) = r.text("GET /x?token=abc&page=2 password=hunter2");
        assert_eq!(once, "GET /x?token=[REDACTED]&page=2 password=[REDACTED]");
        assert_eq!(n, 2);
        let (twice, n) = r.text(&once);
        assert_eq!(twice, once);
        assert_eq!(n, 0);
    }

    #[test]
    fn plain_text_is_left_alone() {
        let (out, n) = r().text("user 42 not found in region eu-1");
        assert_eq!((out.as_str(), n), ("user 42 not found in region eu-1", 0));
    }

    #[test]
    fn a_bad_user_pattern_is_a_named_error() {
        let err =
            Redactor::new(false, &["(unclosed".into()], "ERRSNAP_REDACT_PATTERNS").unwrap_err();
        assert!(err.to_string().contains("ERRSNAP_REDACT_PATTERNS"), "{err}");
        assert!(err.to_string().contains("(unclosed"), "{err}");
    }
}
