//! What alerts say: Slack payloads and e-mail subjects and bodies. Pure
//! functions, so they can be tested (and fuzzed) without a network.

use serde_json::{json, Value};

use super::{Alert, AlertKind};
use crate::level::Level;

/// Slack's limit for a section's text.
pub(crate) const SLACK_SECTION_MAX: usize = 3000;
/// Slack's limit for a field's text.
const SLACK_FIELD_MAX: usize = 2000;
/// Slack's limit on blocks per message.
pub(crate) const SLACK_MAX_BLOCKS: usize = 50;
/// How much of a message an e-mail body carries.
const EMAIL_MESSAGE_MAX: usize = 256 * 1024;
const TRUNCATED: &str = "… [truncated]";

/// Escapes `&`, `<` and `>`: Slack's only control characters in text. This
/// also defeats `<!channel>` mentions and `<url|label>` link spoofing.
pub(crate) fn slack_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text safe inside a Slack code block: escaped, and no run of backticks
/// that could close the block early, inside or at its edges (a zero-width
/// space follows every backtick and opens the text).
fn slack_code(s: &str) -> String {
    format!("\u{200b}{}", slack_escape(s).replace('`', "`\u{200b}"))
}

/// Cuts `s` to at most `max` bytes on a character boundary, with a marker.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(TRUNCATED.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &s[..end])
}

/// Like [`truncate`], counting characters (Slack counts characters).
fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(TRUNCATED.chars().count());
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(TRUNCATED);
    out
}

fn level_label(level: Level) -> &'static str {
    match level {
        Level::Fatal => "FATAL",
        Level::Error => "ERROR",
        Level::Warn => "WARN",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
        Level::Trace => "TRACE",
    }
}

fn level_emoji(level: Level) -> &'static str {
    match level {
        Level::Fatal => ":rotating_light:",
        Level::Error => ":red_circle:",
        Level::Warn => ":warning:",
        _ => ":information_source:",
    }
}

/// "12", or "12 on 3 hosts" when a fleet saw the group on several.
fn occurrences(alert: &Alert) -> String {
    match alert.hosts_seen {
        Some(h) if h > 1 => format!("{} on {h} hosts", alert.occurrences),
        _ => alert.occurrences.to_string(),
    }
}

fn kind_note(alert: &Alert) -> String {
    match alert.kind {
        AlertKind::New if alert.suppressed > 0 => {
            format!(" ({} more since the last alert)", alert.suppressed)
        }
        AlertKind::New => String::new(),
        AlertKind::Regression => match &alert.release {
            Some(r) => format!(" (regressed in {r}: the group was resolved)"),
            None => " (regression: the group was resolved)".to_owned(),
        },
        AlertKind::Digest => format!(" (digest: {} more since the last alert)", alert.suppressed),
        AlertKind::Test => " (test alert)".to_owned(),
    }
}

/// The first line of the message, or a placeholder.
fn first_line(msg: &str) -> &str {
    let line = msg.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "(empty message)"
    } else {
        line
    }
}

use crate::util::time::format_utc;

fn app(alert: &Alert) -> &str {
    alert.app_name.as_deref().unwrap_or("errsnap")
}

fn frames_text(alert: &Alert, max_frames: usize) -> String {
    let in_app: Vec<_> = alert.frames.iter().filter(|f| f.in_app).collect();
    let chosen: Vec<_> = if in_app.is_empty() {
        alert.frames.iter().take(max_frames).collect()
    } else {
        in_app.into_iter().take(max_frames).collect()
    };
    chosen
        .iter()
        .map(|f| match &f.location {
            Some(l) => format!("{}\n    at {l}", f.function),
            None => f.function.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn memory_text(alert: &Alert) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(c) = alert.cpu_percent {
        parts.push(format!("CPU {c:.1}%"));
    }
    if let Some(r) = alert.rss_bytes {
        parts.push(format!("RSS {:.1} MiB", r as f64 / 1_048_576.0));
    }
    if let Some(m) = alert.host_memory_percent {
        parts.push(format!("host memory {m:.0}%"));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// A Block Kit text object of errsnap's markup around stored text: sent
/// `verbatim`, so Slack turns no URL, `#channel` or `@name` of the logged
/// text into a link or a mention (the text is escaped as well).
fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

/// The Slack incoming-webhook payload: a `text` fallback and Block Kit
/// blocks, every piece of user text escaped and within Slack's limits,
/// every text object verbatim, and nothing unfurled (a URL in an error
/// message never becomes a preview in the alert).
// Long by design: the Block Kit message is built block by block in the
// order Slack shows them; each block's limits are applied where it is made.
pub(crate) fn slack_payload(alert: &Alert) -> Value {
    let level = level_label(alert.level);
    let text = truncate_chars(
        &slack_escape(&format!(
            "[{}] {level}: {}{}",
            app(alert),
            first_line(&alert.message),
            kind_note(alert)
        )),
        SLACK_SECTION_MAX,
    );
    let mut env = String::new();
    if let Some(e) = &alert.environment {
        env = format!(" ({})", slack_escape(e));
    }
    let header = format!(
        "{} *{level}*{} in *{}*{env} · logger `{}`\n",
        level_emoji(alert.level),
        slack_escape(&kind_note(alert)),
        slack_escape(app(alert)),
        slack_escape(&alert.logger),
    );
    let room = SLACK_SECTION_MAX.saturating_sub(header.chars().count());
    let message = truncate_chars(&slack_escape(&alert.message), room);
    let mut blocks = vec![json!({
        "type": "section",
        "text": mrkdwn(format!("{header}{message}"))
    })];

    let mut fields = Vec::new();
    let mut field = |title: &str, value: String| {
        let v = truncate_chars(&format!("*{title}*\n{value}"), SLACK_FIELD_MAX);
        fields.push(mrkdwn(v));
    };
    if let Some(l) = &alert.location {
        field(
            "Location",
            format!("`{}`", slack_escape(l).replace('`', "'")),
        );
    }
    field(
        "Host",
        format!(
            "{} · pid {}",
            slack_escape(alert.host.as_deref().unwrap_or("unknown")),
            alert.pid
        ),
    );
    if let Some(m) = memory_text(alert) {
        field("Process", m);
    }
    field("Occurrences", occurrences(alert));
    if let Some(s) = &alert.suspect {
        field("Suspect commit", slack_escape(s));
    }
    if !alert.trend.is_empty() {
        field("Before it", slack_escape(&alert.trend.join("\n")));
    }
    field("Event", format!("`{}`", alert.event_id));
    field("Time", format_utc(alert.timestamp_ms));
    blocks.push(json!({"type": "section", "fields": fields}));

    if !alert.chain.is_empty() {
        let chain = alert
            .chain
            .iter()
            .map(|c| format!("• {}", slack_escape(c)))
            .collect::<Vec<_>>()
            .join("\n");
        blocks.push(json!({
            "type": "section",
            "text": mrkdwn(truncate_chars(&format!("*Caused by*\n{chain}"), SLACK_SECTION_MAX))
        }));
    }
    if !alert.frames.is_empty() {
        let title = "*Backtrace*\n```";
        let body = slack_code(&frames_text(alert, 12));
        let room = SLACK_SECTION_MAX - title.len() - 3;
        blocks.push(json!({
            "type": "section",
            "text": mrkdwn(format!("{title}{}```", truncate_chars(&body, room)))
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [mrkdwn(truncate_chars(&format!(
            "errsnap · group: {}", slack_escape(&alert.group_title)), SLACK_FIELD_MAX))]
    }));
    blocks.truncate(SLACK_MAX_BLOCKS);
    json!({
        "text": text,
        // The fallback (notifications) as plain text: no markup, no links.
        "mrkdwn": false,
        "unfurl_links": false,
        "unfurl_media": false,
        "blocks": blocks,
    })
}

/// Every string inside a JSON value (for checks of what Slack receives).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn json_strings(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| out.extend(json_strings(x))),
        Value::Object(o) => o.values().for_each(|x| out.extend(json_strings(x))),
        _ => {}
    }
    out
}

/// Removes control characters (CR, LF, tabs, escapes) so the text can stand
/// in a header: never a bare CR or LF.
pub(crate) fn header_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.chars() {
        let c = if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out.trim().to_owned()
}

/// `[app] LEVEL: first line of message`, single-line, at most 180 chars.
pub(crate) fn email_subject(alert: &Alert) -> String {
    let s = format!(
        "[{}] {}: {}{}",
        header_safe(app(alert)),
        level_label(alert.level),
        header_safe(first_line(&alert.message)),
        header_safe(&kind_note(alert))
    );
    truncate_chars(&s, 180)
}

/// The plain-text e-mail body: the same facts as Slack plus the full
/// backtrace.
pub(crate) fn email_text(alert: &Alert) -> String {
    let mut s = String::new();
    let level = level_label(alert.level);
    s.push_str(&format!(
        "{level} in {}{}\n\n",
        app(alert),
        kind_note(alert)
    ));
    s.push_str(&truncate(&alert.message, EMAIL_MESSAGE_MAX));
    s.push_str("\n\n");
    for c in &alert.chain {
        s.push_str(&format!("Caused by: {}\n", truncate(c, 4096)));
    }
    let mut facts = vec![
        ("Logger", alert.logger.clone()),
        ("Time", format_utc(alert.timestamp_ms)),
        (
            "Host",
            alert.host.clone().unwrap_or_else(|| "unknown".into()),
        ),
        ("PID", alert.pid.to_string()),
        ("Occurrences", occurrences(alert)),
        ("Event", alert.event_id.clone()),
        ("Group", alert.group_title.clone()),
    ];
    if let Some(l) = &alert.location {
        facts.insert(0, ("Location", l.clone()));
    }
    if let Some(e) = &alert.environment {
        facts.push(("Environment", e.clone()));
    }
    if let Some(m) = memory_text(alert) {
        facts.push(("Process", m));
    }
    if let Some(c) = &alert.suspect {
        facts.push(("Suspect", c.clone()));
    }
    for (i, t) in alert.trend.iter().enumerate() {
        facts.push((if i == 0 { "Before it" } else { "" }, t.clone()));
    }
    s.push('\n');
    for (k, v) in facts {
        s.push_str(&format!("{k:<12} {v}\n"));
    }
    if !alert.frames.is_empty() {
        s.push_str("\nBacktrace:\n");
        for (i, f) in alert.frames.iter().enumerate() {
            let mark = if f.in_app { "*" } else { " " };
            s.push_str(&format!("{i:>3}{mark} {}\n", f.function));
            if let Some(l) = &f.location {
                s.push_str(&format!("        at {l}\n"));
            }
        }
        s.push_str("(* = application code)\n");
    }
    s
}

/// Escapes text for HTML.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The HTML alternative: the plain text, escaped, in a `<pre>`, under a
/// heading.
pub(crate) fn email_html(alert: &Alert) -> String {
    format!(
        "<!DOCTYPE html><html><body><h2>{}</h2><pre style=\"white-space: pre-wrap\">{}</pre></body></html>",
        html_escape(&email_subject(alert)),
        html_escape(&email_text(alert))
    )
}

#[cfg(test)]
#[path = "format_tests.rs"]
pub(crate) mod tests;
