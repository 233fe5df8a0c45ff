//! Entry points for the fuzz targets (`fuzz/`) and the benchmarks, behind
//! the `fuzzing` feature. Each fuzz entry runs a piece of errsnap on
//! arbitrary input and panics if one of its promises breaks. Not a stable
//! API.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::channels::{format, Alert, AlertFrame, AlertKind};
use crate::event::EventKind;
use crate::level::Level;

/// `.env` parsing: never panics, and an error is always one of errsnap's
/// fixed messages, carrying at most a key name and a line number from the
/// input, never a value.
pub fn dotenv(data: &[u8]) {
    let mut c = crate::settings::Config::default();
    let Err(e) = c.read_dotenv_bytes(std::path::Path::new(".env"), data.to_vec()) else {
        return;
    };
    let text = e.to_string();
    let Some(rest) = text.strip_prefix("invalid ") else {
        panic!("unexpected error shape: {text:?}");
    };
    let fixed = [
        "the line is not KEY=VALUE (content not shown)",
        "the line is not valid UTF-8",
        "cannot be parsed (i/o error)",
        "cannot be parsed (bad variable substitution)",
        "cannot be parsed (syntax error)",
    ];
    let ok = if let Some(line_err) = rest.strip_prefix(".env:") {
        // ".env:<line>: <fixed message>"
        let (line, msg) = line_err.split_once(": ").unwrap_or(("", ""));
        line.chars().all(|c| c.is_ascii_digit()) && fixed.contains(&msg)
    } else if let Some(msg) = rest.strip_prefix(".env: ") {
        fixed.contains(&msg)
    } else {
        // "<ERRSNAP_ key>: unknown key (from .env:<line>)[ (did you mean ..?)]"
        rest.starts_with("ERRSNAP_") && rest.contains(": unknown key (from .env:")
    };
    assert!(ok, "an error carries more than a key and a line: {text:?}");
}

fn alert(message: &str) -> Alert {
    Alert {
        kind: AlertKind::Regression,
        event_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
        timestamp_ms: 1_700_000_000_000,
        level: Level::Error,
        event_kind: EventKind::Message,
        logger: "fuzz".into(),
        app_name: Some(message.chars().take(40).collect()),
        environment: None,
        release: Some(message.chars().take(20).collect()),
        message: message.into(),
        chain: vec![message.chars().rev().collect()],
        location: Some(format!("{message}:1:1")),
        host: Some(message.chars().take(10).collect()),
        pid: 1,
        cpu_percent: None,
        rss_bytes: None,
        host_memory_percent: None,
        frames: vec![AlertFrame {
            function: message.into(),
            location: None,
            in_app: true,
        }],
        group_title: message.into(),
        hosts_seen: Some(3),
        occurrences: 1,
        suspect: None,
        trend: Vec::new(),
        suppressed: 0,
    }
}

/// The Slack payload: valid JSON, within Slack's limits, never an unescaped
/// `<`, `>` or a code block closed early.
pub fn slack(message: &str) {
    let p = format::slack_payload(&alert(message));
    let json = p.to_string();
    let back: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let blocks = back["blocks"].as_array().expect("blocks");
    assert!(blocks.len() <= format::SLACK_MAX_BLOCKS);
    for t in &format::json_strings(&back) {
        assert!(!t.contains('<') && !t.contains('>'), "unescaped: {t:?}");
        assert!(t.chars().count() <= format::SLACK_SECTION_MAX, "too long");
    }
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            if t.starts_with("*Backtrace*") {
                assert_eq!(t.matches("```").count(), 2, "{t:?}");
            }
        }
    }
}

/// The e-mail: a subject on one line, never a bare CR or LF in a header,
/// HTML escaped.
pub fn email(message: &str) {
    let a = alert(message);
    let subject = format::email_subject(&a);
    assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    assert!(!subject.chars().any(char::is_control), "{subject:?}");
    let html = format::email_html(&a);
    assert!(!html.contains("<script"), "html not escaped");
    let _ = format::email_text(&a);
}

/// Redaction: never panics, and a redacted text has nothing left to redact
/// for the key/value rule.
pub fn redact(text: &str) {
    static RULES: std::sync::OnceLock<crate::pipeline::redact::Redactor> =
        std::sync::OnceLock::new();
    let r = RULES
        .get_or_init(|| crate::pipeline::redact::Redactor::new(true, &[], "fuzz").expect("rules"));
    let mut ev_text = text.to_owned();
    let mut n = 0;
    r.fuzz_field(&mut ev_text, &mut n);
    let mut again = ev_text.clone();
    let mut m = 0;
    r.fuzz_field(&mut again, &mut m);
    assert!(again.len() <= ev_text.len() + 64 * (m as usize + 1));
}

/// Fingerprint normalization: never panics, idempotent, bounded.
pub fn normalize(text: &str) {
    let once = crate::pipeline::fingerprint::normalize_message(text);
    let twice = crate::pipeline::fingerprint::normalize_message(&once);
    assert_eq!(once, twice, "normalization is not idempotent");
    assert!(once.len() <= 512 + 16);
}

/// Reads the unwind tables the callers' stack walk needs, as a logger's
/// writer thread does at its start (the benchmarks have no logger).
pub fn prepare_stack_walk() {
    crate::capture::refresh_unwind_tables();
}

/// The callers' stack walk as errsnap does it (framehop on Linux x86_64,
/// else `_Unwind_Backtrace` through the backtrace crate), for the
/// benchmarks' unwinder comparison: appends return addresses to `ips`.
#[inline(never)]
pub fn stack_walk(ips: &mut Vec<usize>) {
    ips.extend(crate::capture::RawBacktrace::capture().ips);
}

/// For the dashboard benchmark: writes `n` error events of `groups`
/// distinct errors into the store at `path` through the writer's batch
/// path (`Store::insert_batch`, batches of 1,000: event rows, groups,
/// backtraces, snapshots, summaries and search texts, as the writer
/// writes them), their times spread evenly over the `span_ms` before now
/// (the writer's own clock cannot be set). Each group has its own
/// ten-frame stack; each occurrence names another order id (normalized
/// away, as ids are); releases and environments vary by group. Returns
/// the events written.
pub fn write_history(path: &std::path::Path, n: u64, groups: u64, span_ms: i64) -> u64 {
    write_history_to(path, &crate::store::Backend::File, n, groups, span_ms)
}

/// [`write_history`] into the server database `url` names (its schema
/// made first if needed; `path` only names the spool's place).
///
/// # Panics
/// The URL cannot be used or the server cannot be written.
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub fn write_history_url(
    url: &str,
    path: &std::path::Path,
    n: u64,
    groups: u64,
    span_ms: i64,
) -> u64 {
    let backend = crate::store::backend_for(url, None, None).unwrap();
    write_history_to(path, &backend, n, groups, span_ms)
}

// Long by design: a benchmark fixture that spells out every field of each
// event it writes: open the store, make each group's stack, then write the
// events in batches, top to bottom.
fn write_history_to(
    path: &std::path::Path,
    backend: &crate::store::Backend,
    n: u64,
    groups: u64,
    span_ms: i64,
) -> u64 {
    use crate::event::{ChainLink, Event, EventId, Frame, Location};
    use crate::pipeline::fingerprint;
    use std::sync::Arc;
    let mut store = crate::store::open(
        path,
        backend,
        crate::store::Durability::Normal,
        std::time::Duration::from_secs(10),
        false,
    )
    .unwrap();
    store
        .register_host(
            &crate::event::HostInfo::collect(),
            crate::util::time::now_ms(),
        )
        .unwrap();
    let mut sampler = crate::pipeline::sampler::Sampler::new();
    // Words of letters past `f` (never read as hex ids): one per group.
    let word = |g: u64| -> String {
        let mut w = String::new();
        let mut v = g;
        for _ in 0..4 {
            w.push((b'g' + (v % 20) as u8) as char);
            v /= 20;
        }
        w
    };
    let stacks: Vec<Arc<[Frame]>> = (0..groups)
        .map(|g| {
            (0..10u32)
                .map(|i| Frame {
                    function: Some(if i < 3 {
                        format!("shop::{}::step_{i}", word(g))
                    } else {
                        format!("tokio::runtime::task::poll_{i}")
                    }),
                    file: Some(if i < 3 {
                        format!("src/{}.rs", word(g))
                    } else {
                        "/cargo/registry/tokio/src/runtime/task.rs".into()
                    }),
                    line: Some(10 + i),
                    column: Some(5),
                    address: 0x5555_0000 + u64::from(i) * 16,
                    module: None,
                    module_offset: None,
                    build_id: None,
                    in_app: i < 3,
                })
                .collect::<Vec<_>>()
                .into()
        })
        .collect();
    let now = crate::util::time::now_ms();
    let start = now - span_ms;
    let mut written = 0;
    let mut batch = Vec::with_capacity(1000);
    let snapshot = sampler.sample();
    for i in 0..n {
        // Occurrences cycle through the groups, heavier on the first ones.
        let g = (i * i + i / 3) % groups;
        let ts = start + (span_ms as u128 * u128::from(i) / u128::from(n.max(1))) as i64;
        let message = format!("payment for order {i} failed in step {}", word(g));
        let chain = vec![
            ChainLink {
                message: message.clone(),
                type_name: Some("shop::PaymentError".into()),
            },
            ChainLink {
                message: format!("gateway {} refused the connection", word(g % 97)),
                type_name: None,
            },
        ];
        let frames = Arc::clone(&stacks[g as usize]);
        let location = Location {
            file: format!("src/{}.rs", word(g)),
            line: 42,
            column: 9,
        };
        let fp = fingerprint::fingerprint(
            "shop",
            EventKind::Error,
            &message,
            &chain,
            &frames,
            Some(&location),
        );
        batch.push(Event {
            id: EventId::generate(ts),
            timestamp_ms: ts,
            logger: "shop".into(),
            level: if g.is_multiple_of(10) {
                Level::Fatal
            } else {
                Level::Error
            },
            kind: EventKind::Error,
            message,
            chain,
            location: Some(location),
            thread_name: Some("worker-3".into()),
            thread_id: 3,
            pid: std::process::id(),
            app_name: Some("shop".into()),
            release: Some(format!("1.{}.0", g % 5)),
            environment: Some(
                if g.is_multiple_of(4) {
                    "staging"
                } else {
                    "production"
                }
                .into(),
            ),
            tags: std::collections::BTreeMap::new(),
            extra: serde_json::Map::new(),
            frames,
            backtrace_hash: None,
            symbols_resolved: true,
            fingerprint: fp,
            custom_fingerprint: false,
            earlier_fingerprints: Vec::new(),
            snapshot: Some(snapshot.clone()),
            alert_channels: Vec::new(),
            breadcrumbs: Vec::new(),
            redactions: 0,
            origin: false,
            context: Default::default(),
            attachments: Vec::new(),
        });
        if batch.len() == 1000 || i + 1 == n {
            written += store.insert_batch(&batch).unwrap().written as u64;
            batch.clear();
        }
    }
    written
}

/// A crash file's bytes, read as the importer reads them and made a
/// minidump (`None`: the file is refused, or holds no record that makes
/// one). Whatever the bytes, a dump returned must read whole.
pub fn crash_file_minidump(data: &[u8]) -> Option<Vec<u8>> {
    let f = crate::crash::file::parse(std::ffi::OsStr::new("crash-1-fuzz.bin"), data).ok()?;
    crate::crash::minidump::write(&f)
}
