//! What the dashboard reads instead of scanning every event: per group,
//! occurrences per hour, the values it was seen with (release,
//! environment, host), and its distinct texts for search. Each backend
//! keeps them in the transaction that writes a batch, from a
//! [`BatchSummary`] built here (no SQL in this file).
//!
//! Texts are indexed once per distinct (group, message, chain, backtrace),
//! the message and the chain's messages normalized as for grouping (numbers and hex ids replaced:
//! `user 42 not found` is `user <n> not found`): a storm of one error adds
//! no search text, even when each occurrence names another id, so its bytes
//! per occurrence stay those of the event row (BENCHMARKS.md). Ids are
//! found with the events' text filter instead.

use std::collections::{HashMap, HashSet};

use crate::event::{ChainLink, Event, Frame};
use crate::pipeline::fingerprint::{normalize_message, StableHasher};

/// Milliseconds in an hour: `hour = ts / HOUR_MS`.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The most bytes of one search text (message, chain, frames).
const TEXT_LIMIT: usize = 8 * 1024;

/// The value kinds a group is seen with.
pub(crate) const VALUE_KEYS: [&str; 3] = ["release", "environment", "host"];

/// One value a group was seen with, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueCount {
    pub(crate) count: i64,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
}

/// One distinct text to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewText {
    pub(crate) group: i64,
    pub(crate) key: String,
    pub(crate) body: String,
    /// Bytes of `body` before the frames (kept, so that frames named
    /// later can replace theirs: [`renamed`]).
    pub(crate) head_len: i64,
    /// The stack whose frames the text holds.
    pub(crate) backtrace: Option<i64>,
}

/// The summary rows one batch changes.
#[derive(Debug, Default)]
pub(crate) struct BatchSummary {
    /// (group, hour) → occurrences.
    pub(crate) hours: HashMap<(i64, i64), i64>,
    /// (group, key, value) → count and times.
    pub(crate) values: HashMap<(i64, &'static str, String), ValueCount>,
    /// Texts not yet known to this writer (the store ignores keys it has).
    pub(crate) texts: Vec<NewText>,
    /// The keys of `texts`.
    keys: HashSet<u128>,
}

/// The texts a writer knows are stored (bounded; forgetting one costs one
/// ignored insert).
#[derive(Debug, Default)]
pub(crate) struct KnownTexts {
    keys: HashSet<u128>,
}

/// How many text keys a writer remembers.
const KNOWN_LIMIT: usize = 50_000;

impl BatchSummary {
    /// Counts one stored event of `group` (`backtrace`: its backtrace row,
    /// `host`: the writer's host name). Its text is kept under its own
    /// group, `home` when that was merged into `group`: search reads a
    /// merged group's texts as the group's that took it, so an unmerge
    /// takes its texts along without moving them.
    pub(crate) fn add(
        &mut self,
        ev: &Event,
        (group, home): (i64, Option<i64>),
        backtrace: Option<i64>,
        host: Option<&str>,
        known: &KnownTexts,
    ) {
        let ts = ev.timestamp_ms;
        *self
            .hours
            .entry((group, ts.div_euclid(HOUR_MS)))
            .or_insert(0) += 1;
        let values = [ev.release.as_deref(), ev.environment.as_deref(), host];
        for (key, value) in VALUE_KEYS.into_iter().zip(values) {
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            self.values
                .entry((group, key, value.to_owned()))
                .and_modify(|c| {
                    c.count += 1;
                    c.first_seen = c.first_seen.min(ts);
                    c.last_seen = c.last_seen.max(ts);
                })
                .or_insert(ValueCount {
                    count: 1,
                    first_seen: ts,
                    last_seen: ts,
                });
        }
        let own = home.unwrap_or(group);
        let (key, hex) = text_key(own, &ev.message, &ev.chain, backtrace);
        if known.keys.contains(&key) || !self.keys.insert(key) {
            return;
        }
        let (body, head_len) = search_text(&ev.message, &ev.chain, frame_names(&ev.frames));
        self.texts.push(NewText {
            group: own,
            key: hex,
            body,
            head_len,
            backtrace,
        });
    }
}

impl KnownTexts {
    /// Remembers the texts of a committed batch.
    pub(crate) fn remember(&mut self, batch: &BatchSummary) {
        if self.keys.len() + batch.keys.len() > KNOWN_LIMIT {
            self.keys.clear();
        }
        self.keys.extend(&batch.keys);
    }
}

/// The functions and files of frames, for [`search_text`].
pub(crate) fn frame_names(frames: &[Frame]) -> impl Iterator<Item = (Option<&str>, Option<&str>)> {
    frames
        .iter()
        .map(|f| (f.function.as_deref(), f.file.as_deref()))
}

/// The text of a stored event, for a backend filling the texts of events
/// stored before the texts were kept.
pub(crate) fn text_of<'a>(
    group: i64,
    message: &str,
    chain: &[ChainLink],
    backtrace: Option<i64>,
    frames: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> NewText {
    let (body, head_len) = search_text(message, chain, frames);
    NewText {
        group,
        key: text_key(group, message, chain, backtrace).1,
        body,
        head_len,
        backtrace,
    }
}

/// The key of an event's text: its group, message, chain and backtrace.
fn text_key(
    group: i64,
    message: &str,
    chain: &[ChainLink],
    backtrace: Option<i64>,
) -> (u128, String) {
    let mut h = StableHasher::new();
    h.write(&group.to_le_bytes());
    h.field(&normalize_message(message));
    for link in chain {
        h.field(link.type_name.as_deref().unwrap_or(""));
        h.field(&normalize_message(&link.message));
    }
    h.write(&backtrace.unwrap_or(-1).to_le_bytes());
    let hex = h.finish_hex();
    (u128::from_str_radix(&hex, 16).unwrap_or(0), hex)
}

/// What search looks in for one event: the message, the chain (types and
/// messages) and the frames (functions and files), at most 8 KiB; with the
/// length of the part before the frames.
pub(crate) fn search_text<'a>(
    message: &str,
    chain: &[ChainLink],
    frames: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> (String, i64) {
    let mut out = String::with_capacity(message.len() + 256);
    push_line(&mut out, &normalize_message(message));
    for link in chain {
        push_line(&mut out, link.type_name.as_deref().unwrap_or(""));
        push_line(&mut out, &normalize_message(&link.message));
    }
    cut(&mut out);
    let head = out.len();
    push_frames(&mut out, frames);
    (out, head as i64)
}

/// A stored text with its frames replaced by `frames` (named after the
/// text was stored): its first `head_len` bytes, then the new frames.
pub(crate) fn renamed<'a>(
    body: &str,
    head_len: i64,
    frames: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> String {
    let mut end = usize::try_from(head_len).unwrap_or(0).min(body.len());
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = body[..end].to_owned();
    push_frames(&mut out, frames);
    out
}

fn push_line(out: &mut String, s: &str) {
    if out.len() < TEXT_LIMIT && !s.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(s);
    }
}

fn push_frames<'a>(
    out: &mut String,
    frames: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) {
    for (function, file) in frames {
        push_line(out, function.unwrap_or(""));
        push_line(out, file.unwrap_or(""));
    }
    cut(out);
}

/// Cuts `out` to the limit, at a character boundary.
fn cut(out: &mut String) {
    if out.len() > TEXT_LIMIT {
        let mut end = TEXT_LIMIT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
}

/// Search hits from found `(group, text)` pairs, best first: each group
/// once (with its best text), at most `limit`, their rows read in one call.
pub(crate) fn hits(
    found: Vec<(i64, String)>,
    limit: usize,
    typed: &str,
    rows: impl FnOnce(&[i64]) -> crate::error::Result<Vec<crate::store::read::GroupRow>>,
) -> crate::error::Result<Vec<crate::store::read::SearchHit>> {
    let mut order: Vec<(i64, String)> = Vec::new();
    for (g, body) in found {
        if order.len() == limit {
            break;
        }
        if !order.iter().any(|(o, _)| *o == g) {
            order.push((g, body));
        }
    }
    let ids: Vec<i64> = order.iter().map(|(g, _)| *g).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_id: HashMap<i64, crate::store::read::GroupRow> =
        rows(&ids)?.into_iter().map(|g| (g.id, g)).collect();
    Ok(order
        .into_iter()
        .filter_map(|(g, body)| {
            Some(crate::store::read::SearchHit {
                group: by_id.remove(&g)?,
                text: excerpt(&body, typed),
            })
        })
        .collect())
}

/// The words of a search as a person typed it (letters and digits; at
/// most 16 words of 64 characters), as the full-text indexes split text.
pub(crate) fn words(typed: &str) -> Vec<String> {
    typed
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| w.chars().take(64).collect())
        .collect()
}

/// The line of a found text that holds the search's first word (else its
/// first line), at most 200 characters.
pub(crate) fn excerpt(body: &str, typed: &str) -> String {
    let first = words(typed)
        .into_iter()
        .next()
        .unwrap_or_default()
        .to_lowercase();
    let line = body
        .lines()
        .find(|l| !first.is_empty() && l.to_lowercase().contains(&first))
        .or_else(|| body.lines().next())
        .unwrap_or("");
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(msg: &str) -> Event {
        let mut ev = Event::sample(msg);
        ev.timestamp_ms = 7 * HOUR_MS + 5;
        ev.release = Some("1.0".into());
        ev
    }

    #[test]
    fn a_storm_adds_one_text_and_counts_every_occurrence() {
        let mut known = KnownTexts::default();
        let mut s = BatchSummary::default();
        for _ in 0..100 {
            s.add(
                &event("disk full"),
                (3, None),
                Some(9),
                Some("web-1"),
                &known,
            );
        }
        assert_eq!(s.hours[&(3, 7)], 100);
        assert_eq!(s.texts.len(), 1);
        assert_eq!(s.values[&(3, "release", "1.0".to_owned())].count, 100);
        assert_eq!(s.values[&(3, "host", "web-1".to_owned())].count, 100);
        assert!(!s.values.contains_key(&(3, "environment", String::new())));
        // Another group, message or backtrace is another text.
        s.add(&event("disk full"), (4, None), Some(9), None, &known);
        s.add(&event("disk gone"), (3, None), Some(9), None, &known);
        s.add(&event("disk full"), (3, None), None, None, &known);
        assert_eq!(s.texts.len(), 4);
        // Occurrences that differ only by a number share their text, in
        // the message and in the chain.
        let with_chain = |msg: &str| {
            let mut e = event(msg);
            e.chain = vec![ChainLink {
                type_name: Some("E".into()),
                message: msg.into(),
            }];
            e
        };
        s.add(&with_chain("user 42 gone"), (3, None), None, None, &known);
        s.add(&with_chain("user 43 gone"), (3, None), None, None, &known);
        assert_eq!(s.texts.len(), 5);
        assert_eq!(s.texts[4].body, "user <n> gone\nE\nuser <n> gone");
        assert_eq!(s.texts[4].head_len, s.texts[4].body.len() as i64);
        assert_eq!(s.texts[0].backtrace, Some(9));
        // A batch that did not commit taught nothing: the next one has the
        // texts again; once committed, they are not repeated.
        let mut next = BatchSummary::default();
        next.add(&event("disk full"), (3, None), Some(9), None, &known);
        assert_eq!(next.texts.len(), 1);
        known.remember(&next);
        let mut last = BatchSummary::default();
        last.add(&event("disk full"), (3, None), Some(9), None, &known);
        assert!(last.texts.is_empty());
        // An event of a merged group: counted in the group that took it,
        // its text kept under its own.
        let mut merged = BatchSummary::default();
        merged.add(&event("disk full"), (3, Some(7)), Some(9), None, &known);
        assert_eq!(merged.texts.len(), 1, "another group's text");
        assert_eq!(merged.texts[0].group, 7);
        assert!(merged.hours.keys().all(|(g, _)| *g == 3));
    }

    #[test]
    fn searches_are_words_and_excerpts_are_the_matching_line() {
        assert_eq!(
            words(r#"db::"connect" OR*  é1"#),
            ["db", "connect", "OR", "é1"]
        );
        assert!(words(" -- \" * ").is_empty());
        assert_eq!(words(&"w ".repeat(40)).len(), 16);
        assert_eq!(words(&"x".repeat(100))[0].len(), 64);
        let body = "timeout\nio::Error\nConnection REFUSED by peer";
        assert_eq!(excerpt(body, "refused"), "Connection REFUSED by peer");
        assert_eq!(excerpt(body, "nothing"), "timeout");
        assert_eq!(excerpt(&"a".repeat(300), "a").len(), 200);
    }

    #[test]
    fn the_text_holds_message_chain_and_frames_within_the_limit() {
        let mut ev = event("top");
        ev.chain = vec![ChainLink {
            type_name: Some("io::Error".into()),
            message: "refused".into(),
        }];
        ev.frames = vec![Frame {
            function: Some("app::db::connect".into()),
            file: Some("src/db.rs".into()),
            line: Some(3),
            column: None,
            address: 1,
            module: None,
            module_offset: None,
            build_id: None,
            in_app: true,
        }]
        .into();
        let (body, head) = search_text(&ev.message, &ev.chain, frame_names(&ev.frames));
        assert_eq!(body, "top\nio::Error\nrefused\napp::db::connect\nsrc/db.rs");
        assert_eq!(&body[..head as usize], "top\nio::Error\nrefused");
        // Frames named later replace the stored ones, the head kept.
        let named = [(Some("app::db::reconnect"), Some("src/db2.rs"))];
        assert_eq!(
            renamed(&body, head, named.into_iter()),
            "top\nio::Error\nrefused\napp::db::reconnect\nsrc/db2.rs"
        );
        assert_eq!(renamed(&body, 999, std::iter::empty()), body);
        let name = "é".repeat(50);
        let many = (0..200).map(|_| (Some(name.as_str()), Some("src/x.rs")));
        let (t, head) = search_text("top", &[], many);
        assert_eq!(head, 3);
        assert!(t.len() <= TEXT_LIMIT && t.len() > TEXT_LIMIT - 4);
    }
}
