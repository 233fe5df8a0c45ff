//! Stable grouping keys.
//!
//! A fingerprint must be the same for the same error raised by the same code
//! in another run or another build: it is made of the logger, the kind, the
//! error type, the *normalized* message (numbers, hex and ids replaced) and
//! the names of the top in-app functions (demangled without their hash),
//! never of addresses. Where no in-app frame is known, the source location
//! stands in. A panic is grouped by its location (known without symbols),
//! so that its row can be committed before its stack is named.

use crate::event::{ChainLink, EventKind, Frame, Location};

/// How many in-app frames take part in the fingerprint.
const FRAMES_IN_FINGERPRINT: usize = 5;
/// How much of the normalized message takes part.
const MESSAGE_CHARS: usize = 512;

/// A stable 128-bit FNV-1a (two 64-bit lanes with different offsets), hex.
#[derive(Clone)]
pub(crate) struct StableHasher {
    a: u64,
    b: u64,
}

impl StableHasher {
    pub(crate) fn new() -> Self {
        StableHasher {
            a: 0xcbf2_9ce4_8422_2325,
            b: 0x6c62_272e_07bb_0142,
        }
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        for &byte in bytes {
            self.a = (self.a ^ byte as u64).wrapping_mul(PRIME);
            self.b = (self.b ^ (byte as u64).rotate_left(3)).wrapping_mul(PRIME);
        }
    }

    /// Writes a field followed by a separator that cannot occur in UTF-8.
    pub(crate) fn field(&mut self, s: &str) {
        self.write(s.as_bytes());
        self.write(&[0xFF]);
    }

    pub(crate) fn finish_hex(&self) -> String {
        format!("{:016x}{:016x}", self.a, self.b)
    }
}

/// Replaces the parts of a message that vary between occurrences of the same
/// error: decimal numbers become `<n>`, hex numbers and long hex-like ids
/// (UUID parts, hashes) become `<hex>`; whitespace runs become one space:
/// `user 42 not found` becomes `user <n> not found`.
pub(crate) fn normalize_message(msg: &str) -> String {
    // Look at a bounded prefix, normalize all of it, then cut the result:
    // cutting the output while building it would make a second pass differ
    // (the function must be idempotent).
    let end = msg
        .char_indices()
        .nth(MESSAGE_CHARS * 4)
        .map_or(msg.len(), |(i, _)| i);
    let msg = &msg[..end];
    let mut out = String::with_capacity(msg.len().min(MESSAGE_CHARS * 2));
    let mut chars = msg.char_indices().peekable();
    let mut last_space = false;
    while let Some(&(start, c)) = chars.peek() {
        if c.is_ascii_alphanumeric() {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if c.is_ascii_alphanumeric() {
                    end = i + c.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push_str(classify_token(&msg[start..end]));
            last_space = false;
        } else if c.is_whitespace() {
            chars.next();
            if !last_space {
                out.push(' ');
                last_space = true;
            }
        } else {
            chars.next();
            out.push(c);
            last_space = false;
        }
    }
    let mut out = out.trim().to_owned();
    if out.len() > MESSAGE_CHARS {
        let mut cut = MESSAGE_CHARS;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        // Never split a token: a part of one may classify differently.
        let b = out.as_bytes();
        if b[cut].is_ascii_alphanumeric() {
            while cut > 0 && b[cut - 1].is_ascii_alphanumeric() {
                cut -= 1;
            }
        }
        out.truncate(cut);
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
    }
    out
}

fn classify_token(t: &str) -> &str {
    let b = t.as_bytes();
    if b.iter().all(u8::is_ascii_digit) {
        return "<n>";
    }
    if (t.starts_with("0x") || t.starts_with("0X"))
        && b.len() > 2
        && b[2..].iter().all(u8::is_ascii_hexdigit)
    {
        return "<hex>";
    }
    if b.len() >= 8 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit) {
        return "<hex>";
    }
    // Digits glued to a word (`id42`, `v2x9`) still vary per occurrence.
    if b.iter().filter(|c| c.is_ascii_digit()).count() * 2 >= b.len() {
        return "<n>";
    }
    t
}

/// Computes the fingerprint of an event.
pub(crate) fn fingerprint(
    logger: &str,
    kind: EventKind,
    message: &str,
    chain: &[ChainLink],
    frames: &[Frame],
    location: Option<&Location>,
) -> String {
    let mut h = StableHasher::new();
    h.field("errsnap-fp-v1");
    h.field(logger);
    h.field(kind.as_str());
    if let Some(t) = chain.first().and_then(|c| c.type_name.as_deref()) {
        h.field(t);
    }
    h.field(&normalize_message(message));
    // A panic's stack may be stored raw first and named later: its group
    // must not depend on the names.
    let frames = match (kind, location) {
        (EventKind::Panic, Some(_)) => &[][..],
        _ => frames,
    };
    let mut in_app = frames
        .iter()
        .filter(|f| f.in_app)
        .filter_map(|f| f.function.as_deref())
        .take(FRAMES_IN_FINGERPRINT)
        .peekable();
    if in_app.peek().is_some() {
        for f in in_app {
            h.field(f);
        }
    } else if let Some(l) = location {
        h.field(&l.file);
        h.field(&l.line.to_string());
    }
    h.finish_hex()
}

/// The group's title: the message's first line, at most 200 characters.
pub(crate) fn title(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let mut t: String = line.chars().take(200).collect();
    if t.len() < line.len() {
        t.push('…');
    }
    if t.is_empty() {
        t.push_str("(empty message)");
    }
    t
}

/// Where the group happens: the top in-app function, else the location.
pub(crate) fn culprit(frames: &[Frame], location: Option<&Location>) -> Option<String> {
    frames
        .iter()
        .find(|f| f.in_app && f.function.is_some())
        .and_then(|f| f.function.clone())
        .or_else(|| location.map(|l| format!("{}:{}", l.file, l.line)))
}

/// The storage key of a backtrace: a stable hash of its resolved frames.
pub(crate) fn backtrace_hash(frames: &[Frame]) -> String {
    let mut h = StableHasher::new();
    for f in frames {
        h.field(f.function.as_deref().unwrap_or(""));
        h.field(f.file.as_deref().unwrap_or(""));
        h.write(&f.line.unwrap_or(0).to_le_bytes());
        h.write(&f.column.unwrap_or(0).to_le_bytes());
        h.field(f.module.as_deref().unwrap_or(""));
        h.write(&f.module_offset.unwrap_or(u64::MAX).to_le_bytes());
    }
    h.finish_hex()
}

/// The fingerprint of an event whose caller chose the parts: the parts
/// hashed, with [`crate::event::DEFAULT_FINGERPRINT`] replaced by errsnap's own.
pub(crate) fn custom_fingerprint(parts: &[String], default: &str) -> String {
    parts_fingerprint("errsnap-fp-custom-v1", parts, default)
}

/// The fingerprint a grouping rule gives: as [`custom_fingerprint`], in a
/// space of its own, so that a group is either the code's or errsnap's
/// (`event_groups.custom`: what `errsnap regroup` leaves alone).
pub(crate) fn rule_fingerprint(parts: &[String], default: &str) -> String {
    parts_fingerprint("errsnap-fp-rule-v1", parts, default)
}

fn parts_fingerprint(space: &str, parts: &[String], default: &str) -> String {
    let mut h = StableHasher::new();
    h.field(space);
    for p in parts {
        let p = p.trim();
        if p == crate::event::DEFAULT_FINGERPRINT || p == "{{default}}" {
            h.field(default);
        } else {
            h.field(p);
        }
    }
    h.finish_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_varying_parts() {
        assert_eq!(normalize_message("user 42 not found"), "user <n> not found");
        assert_eq!(
            normalize_message("bad ptr 0xdeadBEEF at   id 9f86d081884c7d65"),
            "bad ptr <hex> at id <hex>"
        );
        assert_eq!(
            normalize_message("req 550e8400-e29b-41d4-a716-446655440000 failed"),
            "req <hex>-<n>-<n>-<n>-<n> failed"
        );
        assert_eq!(normalize_message("décembre café"), "décembre café");
        assert_eq!(normalize_message(""), "");
    }

    /// Found by fuzzing (normalize): long messages were cut while being
    /// normalized, so normalizing twice differed.
    #[test]
    fn fuzz_regression_normalization_is_idempotent_when_long() {
        let input =
            "2\u{128}\u{128}\n)YZZ 0\u{1a}0\u{1a}0\nZZ \nY 1Z 0\u{1a}0\n\n\u{1a}0ZZ ".repeat(40);
        let once = normalize_message(&input);
        assert!(once.len() <= MESSAGE_CHARS);
        assert_eq!(normalize_message(&once), once);
        let split = "0\u{1a}0ZZ 0\u{1a}0\u{1a}0\n0\n\nY 0Z  0Z 0\u{1a}0\n\n)YZZ ".repeat(40);
        let once = normalize_message(&split);
        assert_eq!(normalize_message(&once), once);
        for n in [1, 7, 200, 511, 512, 513, 2000] {
            let s = "ab1 ".repeat(n);
            let once = normalize_message(&s);
            assert_eq!(normalize_message(&once), once, "{n}");
        }
    }

    #[test]
    fn same_inputs_same_fingerprint_and_numbers_ignored() {
        let a = fingerprint("t", EventKind::Message, "timeout after 30s", &[], &[], None);
        let b = fingerprint("t", EventKind::Message, "timeout after 45s", &[], &[], None);
        let c = fingerprint("u", EventKind::Message, "timeout after 45s", &[], &[], None);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 32);
        // Pinned: the fingerprint must never change between builds.
        assert_eq!(
            fingerprint("t", EventKind::Error, "x", &[], &[], None),
            fingerprint("t", EventKind::Error, "x", &[], &[], None)
        );
    }

    #[test]
    fn hasher_is_stable_across_builds() {
        let mut h = StableHasher::new();
        h.write(b"errsnap");
        assert_eq!(h.finish_hex(), "5ac1dd8bccd7aae8c6f6c2e390d160ee");
    }

    #[test]
    fn title_takes_first_line() {
        assert_eq!(title("a\nb"), "a");
        assert_eq!(title(""), "(empty message)");
        assert_eq!(title(&"x".repeat(300)).chars().count(), 201);
    }
    #[test]
    fn custom_fingerprints_merge_or_split() {
        let a = custom_fingerprint(&["x".into(), "y".into()], "d1");
        let b = custom_fingerprint(&["x".into(), "y".into()], "d2");
        assert_eq!(a, b, "the default does not matter without its part");
        let c = custom_fingerprint(&["{{ default }}".into(), "t".into()], "d1");
        let d = custom_fingerprint(&["{{default}}".into(), "t".into()], "d2");
        assert_ne!(c, d);
        assert_eq!(
            c,
            custom_fingerprint(&[" {{ default }} ".into(), "t".into()], "d1")
        );
        assert_ne!(a, custom_fingerprint(&["xy".into()], "d1"));
        assert_ne!(c, "d1");
    }
}
