//! An error's own backtrace: where an `anyhow::Error` or `eyre::Report`
//! was made (when it captured one), read from its text form.
//!
//! std's `Backtrace` gives no frames on stable Rust, only its `Display`:
//! lines `   N: function` followed by `at file:line:column`. The writer turns
//! that text into frames (as sentry-backtrace does); the caller's thread
//! only copies the text.

use std::sync::Arc;

use crate::event::Frame;
use crate::pipeline::symbolize::ResolvedTrace;

/// The most frames read from a backtrace's text.
const MAX_FRAMES: usize = crate::capture::MAX_FRAMES;

/// Parses a backtrace's text into frames, innermost first.
pub(crate) fn parse(text: &str) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(at) = t.strip_prefix("at ") {
            if let Some(f) = frames.last_mut() {
                if f.file.is_none() {
                    let (file, line, column) = split_location(at);
                    f.file = Some(file.to_owned());
                    f.line = line;
                    f.column = column;
                }
            }
            continue;
        }
        let Some((index, name)) = t.split_once(": ") else {
            continue;
        };
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if frames.len() >= MAX_FRAMES {
            break;
        }
        frames.push(Frame {
            function: Some(name.trim().to_owned()),
            file: None,
            line: None,
            column: None,
            address: 0,
            module: None,
            module_offset: None,
            build_id: None,
            in_app: false,
        });
    }
    for f in &mut frames {
        f.in_app = crate::pipeline::symbolize::is_in_app(f.function.as_deref(), f.file.as_deref());
    }
    crate::pipeline::symbolize::trim_internal(frames)
}

/// `file:line:column` (a Windows path may hold a `:` of its own).
fn split_location(at: &str) -> (&str, Option<u32>, Option<u32>) {
    let mut parts = at.rsplitn(3, ':');
    let last = parts.next();
    let middle = parts.next();
    let rest = parts.next();
    match (rest, middle, last) {
        (Some(file), Some(l), Some(c)) if l.parse::<u32>().is_ok() && c.parse::<u32>().is_ok() => {
            (file, l.parse().ok(), c.parse().ok())
        }
        _ => match at.rsplit_once(':') {
            Some((file, l)) if l.parse::<u32>().is_ok() => (file, l.parse().ok(), None),
            _ => (at, None, None),
        },
    }
}

/// The stored form of an origin backtrace: frames, redacted file paths,
/// and their storage key.
pub(crate) fn trace(
    text: &str,
    redactor: &crate::pipeline::redact::Redactor,
) -> Arc<ResolvedTrace> {
    let mut frames = parse(text);
    let redactions = redactor.frames(&mut frames);
    let hash: Arc<str> = Arc::from(crate::pipeline::fingerprint::backtrace_hash(&frames));
    Arc::new(ResolvedTrace {
        frames: Arc::from(frames),
        hash,
        complete: true,
        redactions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "   0: anyhow::error::<impl anyhow::Error>::msg
             at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/anyhow-1.0.104/src/error.rs:83:36
   1: myapp::load_config
             at ./src/config.rs:12:9
   2: myapp::main
             at ./src/main.rs:4:5
   3: core::ops::function::FnOnce::call_once
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/ops/function.rs:250:5
   4: main
   5: __libc_start_main
";

    #[test]
    fn parses_std_backtrace_text_and_trims_the_error_library() {
        let frames = parse(TEXT);
        let names: Vec<_> = frames.iter().map(|f| f.function.clone().unwrap()).collect();
        assert_eq!(
            names,
            [
                "myapp::load_config",
                "myapp::main",
                "core::ops::function::FnOnce::call_once",
                "main",
                "__libc_start_main"
            ]
        );
        assert_eq!(frames[0].file.as_deref(), Some("./src/config.rs"));
        assert_eq!((frames[0].line, frames[0].column), (Some(12), Some(9)));
        assert!(frames[0].in_app && frames[1].in_app);
        assert!(!frames[2].in_app && !frames[3].in_app);
        assert_eq!(frames[3].file, None);
    }

    #[test]
    fn locations_split_from_the_right() {
        assert_eq!(
            split_location("C:\\src\\a.rs:3:4"),
            ("C:\\src\\a.rs", Some(3), Some(4))
        );
        assert_eq!(split_location("/a/b.rs:7"), ("/a/b.rs", Some(7), None));
        assert_eq!(split_location("<unknown>"), ("<unknown>", None, None));
        assert!(parse("no frames here\nat nothing").is_empty());
    }
}
