//! Stored text made safe for a terminal.
//!
//! Every string that comes from the database (messages, chains, tags,
//! paths, host names, alert errors) is user data: an ESC, BEL or OSC
//! sequence in it could retitle the terminal, hide lines or fake output,
//! and a bidirectional override could make text read differently than it
//! is. Every human-readable output of the CLI passes stored text through
//! [`safe`] or [`safe_line`]; `--json` output keeps the exact text.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether a terminal could act on `c`: C0 controls, DEL, C1 controls, and
/// the Unicode bidirectional controls (the marks U+061C, U+200E, U+200F,
/// the embeddings and overrides U+202A-U+202E, the isolates
/// U+2066-U+2069).
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_dangerous(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_dangerous(c) || keep(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// `s` with every control character shown as an escape (`\x1b`,
/// `\u{9b}`), except line feeds and tabs, which keep their layout.
pub(crate) fn safe(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n' || c == '\t')
}

/// `s` on one line: every control character escaped, line feeds and tabs
/// too.
pub(crate) fn safe_line(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_acts_on() {
        assert_eq!(safe("plain text: ü ✓"), "plain text: ü ✓");
        assert!(matches!(safe("plain"), Cow::Borrowed(_)));
        assert_eq!(safe("a\x1b]0;owned\x07b"), "a\\x1b]0;owned\\x07b");
        assert_eq!(safe("x\ry"), "x\\x0dy");
        assert_eq!(safe("bs\x08"), "bs\\x08");
        assert_eq!(safe("del\x7f"), "del\\x7f");
        assert_eq!(safe("nul\0"), "nul\\x00");
        assert_eq!(safe("csi\u{9b}31m"), "csi\\u{9b}31m");
        assert_eq!(safe("\u{80}\u{9f}"), "\\u{80}\\u{9f}");
        assert_eq!(safe("rtl\u{202e}txt"), "rtl\\u{202e}txt");
        assert_eq!(safe("\u{200e}\u{200f}"), "\\u{200e}\\u{200f}");
        assert_eq!(
            safe("alm\u{061c}x"),
            "alm\\u{61c}x",
            "the Arabic letter mark"
        );
        assert_eq!(
            safe("\u{202a}\u{2066}\u{2069}"),
            "\\u{202a}\\u{2066}\\u{2069}"
        );
        // Next to the bidi controls, ordinary characters stay.
        assert_eq!(
            safe("\u{200d}\u{2065}\u{206a}\u{2029}\u{061b}\u{061d}"),
            "\u{200d}\u{2065}\u{206a}\u{2029}\u{061b}\u{061d}"
        );
        assert_eq!(safe("line 1\n\tline 2"), "line 1\n\tline 2");
        assert_eq!(safe_line("line 1\n\tline 2"), "line 1\\x0a\\x09line 2");
        assert_eq!(safe_line("ok"), "ok");
        assert_eq!(safe_line("\u{9f}"), "\\u{9f}");
        assert_eq!(safe_line("~\u{a0}"), "~\u{a0}");
    }
}
