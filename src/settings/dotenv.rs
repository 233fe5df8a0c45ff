//! A `.env` reader with python-dotenv's rules, the ones the original
//! design's `.env` files were written for.
//!
//! - `KEY=VALUE`, `KEY = VALUE`, `export KEY=VALUE`; blank lines and lines
//!   starting with `#` are skipped.
//! - An unquoted value runs to the end of the line, trimmed; spaces inside
//!   it are kept (`ERRSNAP_EMAIL_TO=oncall@example.com, dev@example.com`,
//!   `ERRSNAP_EMAIL_FROM=Errsnap Alerts <alerts@example.com>`), and a `#`
//!   after whitespace starts a comment.
//! - `'single'` quotes are literal (`\'` and `\\` aside); `"double"` quotes
//!   understand `\n`, `\t`, `\"`, `\\` and friends. Both may span lines.
//! - `${NAME}` and `${NAME:-default}` in unquoted and double-quoted values
//!   are replaced by the process environment's value, else an earlier key of
//!   the file, else the default (or nothing).
//!
//! Errors name the line, never its content (it may hold a password).

/// One `KEY=VALUE` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) value: String,
    /// 1-based line where the entry starts.
    pub(crate) line: usize,
}

/// Why a line is not an entry: its number and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineError {
    pub(crate) line: usize,
    pub(crate) hint: &'static str,
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }
    /// Skips spaces and tabs (not line ends).
    fn blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
            self.bump();
        }
    }
    /// Skips to the start of the next line.
    fn rest_of_line(&mut self) -> &str {
        let start = self.pos;
        let end = self.s[start..]
            .find('\n')
            .map_or(self.s.len(), |i| start + i);
        self.pos = end;
        let text = &self.s[start..end];
        if self.peek() == Some('\n') {
            self.bump();
        }
        text
    }
}

/// Parses the whole file. `env` looks up `${NAME}` in the process
/// environment.
// Long by design: one pass over the file's lines as python-dotenv reads
// them (quotes, escapes, `export`, multi-line values); its states share
// the cursor, and splitting them would scatter one grammar.
pub(crate) fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>, LineError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut c = Cursor {
        s: text,
        pos: 0,
        line: 1,
    };
    let mut out: Vec<Entry> = Vec::new();
    loop {
        c.blanks();
        match c.peek() {
            None => break,
            Some('\n') => {
                c.bump();
                continue;
            }
            Some('#') => {
                c.rest_of_line();
                continue;
            }
            _ => {}
        }
        let line = c.line;
        let err = |hint| LineError { line, hint };
        if c.s[c.pos..].starts_with("export") && c.s[c.pos + 6..].starts_with([' ', '\t']) {
            c.pos += 6;
            c.blanks();
        }
        let key_start = c.pos;
        while c
            .peek()
            .is_some_and(|ch| !matches!(ch, '=' | '#' | ' ' | '\t' | '\r' | '\n'))
        {
            c.bump();
        }
        let key = c.s[key_start..c.pos].to_owned();
        if key.is_empty() {
            return Err(err("expected KEY=VALUE"));
        }
        c.blanks();
        if c.peek() != Some('=') {
            return Err(err("expected KEY=VALUE (no `=` after the key)"));
        }
        c.bump();
        c.blanks();
        let lookup = |name: &str| -> Option<String> {
            env(name).or_else(|| {
                out.iter()
                    .rev()
                    .find(|e| e.key == name)
                    .map(|e| e.value.clone())
            })
        };
        let value = match c.peek() {
            Some(q @ ('\'' | '"')) => {
                c.bump();
                let mut raw = String::new();
                loop {
                    match c.bump() {
                        None => {
                            return Err(err(
                                "the quote is never closed: close it, or quote the value with \
                                 the other quote character",
                            ))
                        }
                        Some('\\') => match c.bump() {
                            Some(n) => {
                                raw.push('\\');
                                raw.push(n);
                            }
                            None => {
                                return Err(err("the quote is never closed: close it"));
                            }
                        },
                        Some(ch) if ch == q => break,
                        Some(ch) => raw.push(ch),
                    }
                }
                let after = c.rest_of_line().trim();
                if !after.is_empty() && !after.starts_with('#') {
                    return Err(err(
                        "text after the closing quote: quote the whole value, or put a \
                         comment after a space and `#`",
                    ));
                }
                if q == '\'' {
                    unescape(&raw, true)
                } else {
                    expand(&unescape(&raw, false), &lookup)
                }
            }
            _ => {
                let rest = c.rest_of_line();
                // A comment starts at whitespace followed by `#`.
                let cut = rest
                    .char_indices()
                    .find(|&(i, ch)| ch == '#' && rest[..i].ends_with([' ', '\t']))
                    .map_or(rest.len(), |(i, _)| i);
                expand(rest[..cut].trim(), &lookup)
            }
        };
        out.push(Entry { key, value, line });
    }
    Ok(out)
}

fn unescape(raw: &str, single: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars();
    while let Some(ch) = it.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        let Some(n) = it.next() else {
            out.push('\\');
            break;
        };
        let mapped = if single {
            match n {
                '\\' | '\'' => Some(n),
                _ => None,
            }
        } else {
            match n {
                '\\' | '\'' | '"' => Some(n),
                'a' => Some('\u{7}'),
                'b' => Some('\u{8}'),
                'f' => Some('\u{c}'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'v' => Some('\u{b}'),
                _ => None,
            }
        };
        match mapped {
            Some(m) => out.push(m),
            None => {
                out.push('\\');
                out.push(n);
            }
        }
    }
    out
}

/// Replaces `${NAME}` and `${NAME:-default}`.
fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let Some(end) = rest[i..].find('}') else {
            break;
        };
        out.push_str(&rest[..i]);
        let inner = &rest[i + 2..i + end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, d),
            None => (inner, ""),
        };
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => out.push_str(default),
        }
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn kv(text: &str) -> Vec<(String, String)> {
        parse(text, &no_env)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn one(text: &str) -> String {
        let mut v = kv(text);
        assert_eq!(v.len(), 1, "{text:?}");
        v.remove(0).1
    }

    #[test]
    fn python_dotenv_values() {
        assert_eq!(
            one("ERRSNAP_EMAIL_TO=oncall@example.com, dev@example.com\n"),
            "oncall@example.com, dev@example.com"
        );
        assert_eq!(
            one("ERRSNAP_EMAIL_FROM=Errsnap Alerts <alerts@example.com>"),
            "Errsnap Alerts <alerts@example.com>"
        );
        assert_eq!(one("webhook = https://x/y  "), "https://x/y");
        assert_eq!(one("K=587                 # 465 = implicit"), "587");
        assert_eq!(one("K=a#b"), "a#b");
        assert_eq!(one("K=a\t# c"), "a");
        assert_eq!(one("K="), "");
        assert_eq!(one("K=   "), "");
        assert_eq!(one("export K=v"), "v");
        assert_eq!(one("exporter=v"), "v");
        assert_eq!(one("K='a # b' # c"), "a # b");
        assert_eq!(one("K='lit\\n \\' \\\\'"), "lit\\n ' \\");
        assert_eq!(one("K=\"a\\tb\\n\\\"q\\\" \\x\""), "a\tb\n\"q\" \\x");
        assert_eq!(one("K=\"two\nlines\""), "two\nlines");
        assert_eq!(one("\u{feff}K=v\r\n"), "v");
        assert_eq!(one("K=\"v\"\r\n"), "v");
        assert_eq!(
            kv("# c\n\n  A=1\nB = two words \nA=3\n"),
            [
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("A".into(), "3".into())
            ]
        );
    }

    #[test]
    fn lines_are_counted_across_multi_line_values() {
        let e = parse("A=\"x\ny\"\n\nB=2\n", &no_env).unwrap();
        assert_eq!((e[0].line, e[1].line), (1, 4));
    }

    #[test]
    fn variables_expand_from_the_environment_then_the_file() {
        let env = |n: &str| (n == "HOST").then(|| "db.local".to_owned());
        let e = parse(
            "U=app\nA=${U}@${HOST}\nB=\"${MISSING:-dflt}\"\nC='${U}'\nD=${U",
            &env,
        )
        .unwrap();
        let get = |k: &str| e.iter().find(|x| x.key == k).unwrap().value.clone();
        assert_eq!(get("A"), "app@db.local");
        assert_eq!(get("B"), "dflt");
        assert_eq!(get("C"), "${U}");
        assert_eq!(get("D"), "${U");
    }

    #[test]
    fn bad_lines_are_named_with_a_fix() {
        for (text, line, hint) in [
            ("A=1\njust words\n", 2, "KEY=VALUE"),
            ("A=1\n=value\n", 2, "KEY=VALUE"),
            ("K=\"never closed\n", 1, "never closed"),
            ("K='a'b\n", 1, "after the closing quote"),
            ("\n\nK=\"x\" y", 3, "after the closing quote"),
        ] {
            let e = parse(text, &no_env).unwrap_err();
            assert_eq!(e.line, line, "{text:?}");
            assert!(e.hint.contains(hint), "{text:?}: {}", e.hint);
        }
    }
}
