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
pub(crate) mod tests {
    use super::*;
    use crate::event::AlertFrame;
    use crate::event::EventKind;

    pub(crate) fn sample(message: &str) -> Alert {
        Alert {
            kind: AlertKind::New,
            event_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
            timestamp_ms: 1_700_000_000_000,
            level: Level::Error,
            event_kind: EventKind::Message,
            logger: "payments".into(),
            app_name: Some("shop".into()),
            environment: Some("prod".into()),
            release: None,
            message: message.into(),
            chain: vec!["connection <refused>".into()],
            location: Some("src/pay.rs:10:5".into()),
            host: Some("web-1".into()),
            pid: 42,
            cpu_percent: Some(12.5),
            rss_bytes: Some(10 << 20),
            host_memory_percent: Some(40.0),
            frames: vec![AlertFrame {
                function: "shop::pay```".into(),
                location: Some("src/pay.rs:10".into()),
                in_app: true,
            }],
            group_title: message.lines().next().unwrap_or("").into(),
            hosts_seen: None,
            occurrences: 3,
            suspect: None,
            trend: Vec::new(),
            suppressed: 0,
        }
    }

    #[test]
    fn the_trend_is_a_slack_field_and_e_mail_lines() {
        let mut a = sample("out of memory soon");
        assert!(!email_text(&a).contains("Before it"));
        a.trend = vec![
            "RSS 0.2 -> 3.8 GiB in 9 min, cgroup limit 4 GiB (97%)".into(),
            "open files 120 -> 1,020 in 9 min <limit>".into(),
        ];
        let p = slack_payload(&a);
        let field = p["blocks"][1]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap().to_owned())
            .find(|t| t.starts_with("*Before it*"))
            .expect("a field");
        assert_eq!(
            field,
            "*Before it*\nRSS 0.2 -&gt; 3.8 GiB in 9 min, cgroup limit 4 GiB (97%)\nopen files 120 -&gt; 1,020 in 9 min &lt;limit&gt;"
        );
        let text = email_text(&a);
        assert!(
            text.contains("Before it    RSS 0.2 -> 3.8 GiB in 9 min, cgroup limit 4 GiB (97%)\n             open files 120 -> 1,020 in 9 min <limit>\n"),
            "{text}"
        );
        assert!(email_html(&a).contains("open files 120 -&gt; 1,020 in 9 min &lt;limit&gt;"));
    }

    #[test]
    fn slack_escapes_mentions_and_links() {
        let p = slack_payload(&sample("<!channel> pay <https://evil|bank> & go"));
        for t in json_strings(&p) {
            assert!(!t.contains('<') && !t.contains('>'), "unescaped: {t}");
        }
        assert!(p["text"].as_str().unwrap().contains("&lt;!channel&gt;"));
        let code = p["blocks"][3]["text"]["text"].as_str().unwrap();
        assert_eq!(code.matches("```").count(), 2, "{code}");
    }

    /// Every text object of the payload, wherever it stands.
    fn text_objects(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("mrkdwn") {
                    out.push(v.clone());
                }
                o.values().for_each(|x| text_objects(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| text_objects(x, out)),
            _ => {}
        }
    }

    #[test]
    fn slack_sends_every_text_verbatim_and_unfurls_nothing() {
        let mut a = sample("see https://evil.example/login and #general @here");
        a.chain = vec!["at https://evil.example/x".into(), "#random".into()];
        a.environment = Some("prod #ops".into());
        let p = slack_payload(&a);
        assert_eq!(p["unfurl_links"], false);
        assert_eq!(p["unfurl_media"], false);
        assert_eq!(p["mrkdwn"], false, "the fallback text is plain");
        let mut objects = Vec::new();
        text_objects(&p, &mut objects);
        // The message, six fields, the chain, the backtrace, the context.
        assert_eq!(objects.len(), 10, "{p}");
        for o in &objects {
            assert_eq!(o["verbatim"], true, "not verbatim: {o}");
        }
        // Text objects are nothing but mrkdwn: no plain_text that Slack
        // would render with emoji and links of its own.
        assert!(!p.to_string().contains("plain_text"), "{p}");
    }

    /// Found by fuzzing (slack_payload): backticks at the edges of a code
    /// block's text merged with its fences.
    #[test]
    fn fuzz_regression_code_block_edges() {
        let mut a = sample("x");
        a.frames[0].function = "`````\0\0\0\u{7f}`".into();
        let p = slack_payload(&a);
        let code = p["blocks"][3]["text"]["text"].as_str().unwrap();
        assert!(code.starts_with("*Backtrace*"));
        assert_eq!(code.matches("```").count(), 2, "{code:?}");
    }

    #[test]
    fn slack_respects_limits() {
        let big = "é".repeat(3_000_000);
        let p = slack_payload(&sample(&big));
        let blocks = p["blocks"].as_array().unwrap();
        assert!(blocks.len() <= SLACK_MAX_BLOCKS);
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= SLACK_SECTION_MAX);
            }
        }
        assert!(p["text"].as_str().unwrap().chars().count() <= SLACK_SECTION_MAX);
        assert!(blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .ends_with(TRUNCATED));
    }

    #[test]
    fn subject_is_one_clean_line() {
        let s = email_subject(&sample("first\r\nBcc: victim@example.com\x1b[31m"));
        assert_eq!(s, "[shop] ERROR: first");
        let s = email_subject(&sample("a\u{7}b\tc\rd"));
        assert!(!s.contains(['\r', '\n', '\u{7}', '\t']), "{s:?}");
    }

    #[test]
    fn html_is_escaped() {
        let h = email_html(&sample("</script><script>alert(1)</script>"));
        assert!(!h.contains("<script>"));
        assert!(h.contains("&lt;/script&gt;"));
    }

    #[test]
    fn escapes_are_exact() {
        assert_eq!(slack_escape("a&b<c>d"), "a&amp;b&lt;c&gt;d");
        assert_eq!(html_escape("&<>\"'x"), "&amp;&lt;&gt;&quot;&#39;x");
        assert_eq!(slack_code("a`b"), "\u{200b}a`\u{200b}b");
        assert_eq!(header_safe("  a\r\n\tb  \u{2028}c\u{2029} "), "a b c");
        assert_eq!(header_safe("plain"), "plain");
        let v = serde_json::json!({"a": ["x", {"b": "y"}], "c": 1, "d": "z"});
        let mut strings = json_strings(&v);
        strings.sort();
        assert_eq!(strings, ["x", "y", "z"]);
    }

    #[test]
    fn truncation_is_exact() {
        let alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        let cut = truncate(alphabet, 20);
        assert_eq!(
            cut,
            format!("{}{TRUNCATED}", &alphabet[..20 - TRUNCATED.len()])
        );
        assert_eq!(truncate(alphabet, 100), alphabet);
        // A cut inside a character moves back to its start, never past max.
        let accents = "é".repeat(20);
        let cut = truncate(&accents, 20);
        assert_eq!(cut, format!("éé{TRUNCATED}"));
        assert!(cut.len() <= 20);
        // An e-mail carries 256 KiB of the message, not more, not less.
        let mut big = sample(&"Ж".repeat(150 * 1024));
        big.group_title = "g".into();
        let body = email_text(&big);
        assert!(body.contains(TRUNCATED));
        let kept = body.matches('Ж').count() * 'Ж'.len_utf8();
        assert!(kept >= 256 * 1024 - TRUNCATED.len() - 4, "{kept}");
        assert!(kept <= 256 * 1024, "{kept}");
        let fits = "k".repeat(200 * 1024);
        assert!(!email_text(&sample(&fits)).contains(TRUNCATED));
    }

    #[test]
    fn slack_shows_level_kind_process_and_backtrace() {
        let mut a = sample("boom");
        for (level, emoji) in [
            (Level::Fatal, ":rotating_light:"),
            (Level::Error, ":red_circle:"),
            (Level::Warn, ":warning:"),
            (Level::Info, ":information_source:"),
        ] {
            a.level = level;
            let p = slack_payload(&a);
            let head = p["blocks"][0]["text"]["text"].as_str().unwrap();
            assert!(head.starts_with(emoji), "{head}");
            assert!(
                head.contains(&format!("*{}*", level_label(level))),
                "{head}"
            );
        }
        let p = slack_payload(&a);
        let fields = json_strings(&p["blocks"][1]);
        assert!(
            fields
                .iter()
                .any(|f| f == "*Process*\nCPU 12.5% · RSS 10.0 MiB · host memory 40%"),
            "{fields:?}"
        );
        let code = p["blocks"][3]["text"]["text"].as_str().unwrap();
        assert!(
            code.contains("shop::pay") && code.contains("at src/pay.rs:10"),
            "{code}"
        );
        // Without a snapshot: no Process field.
        a.cpu_percent = None;
        a.rss_bytes = None;
        a.host_memory_percent = None;
        let fields = json_strings(&slack_payload(&a)["blocks"][1]);
        assert!(
            !fields.iter().any(|f| f.starts_with("*Process*")),
            "{fields:?}"
        );
        // A huge backtrace keeps its block within Slack's limit, fenced.
        a.frames = (0..40)
            .map(|i| AlertFrame {
                function: format!("f{i}_{}", "x".repeat(400)),
                location: None,
                in_app: true,
            })
            .collect();
        let p = slack_payload(&a);
        let code = p["blocks"][3]["text"]["text"].as_str().unwrap();
        assert!(code.chars().count() <= SLACK_SECTION_MAX, "{}", code.len());
        // ... and uses the room it has.
        assert!(
            code.chars().count() >= SLACK_SECTION_MAX - 4,
            "{}",
            code.chars().count()
        );
        assert!(code.ends_with("```") && code.contains(TRUNCATED));
    }

    #[test]
    fn why_an_alert_is_sent_is_said() {
        let mut a = sample("boom");
        assert_eq!(kind_note(&a), "");
        a.suppressed = 3;
        assert_eq!(kind_note(&a), " (3 more since the last alert)");
        assert!(email_subject(&a).ends_with("(3 more since the last alert)"));
        a.kind = AlertKind::Digest;
        assert_eq!(kind_note(&a), " (digest: 3 more since the last alert)");
        a.kind = AlertKind::Regression;
        assert!(kind_note(&a).contains("regression"));
        assert_eq!(occurrences(&a), "3");
        a.hosts_seen = Some(4);
        assert_eq!(occurrences(&a), "3 on 4 hosts");
        a.hosts_seen = Some(1);
        assert_eq!(occurrences(&a), "3");
        a.release = Some("1.4.2".into());
        assert_eq!(
            kind_note(&a),
            " (regressed in 1.4.2: the group was resolved)"
        );
        a.release = Some("1.4.2\nBcc: x@y.z".into());
        assert!(!email_subject(&a).contains('\n'), "{}", email_subject(&a));
        a.kind = AlertKind::Test;
        assert_eq!(kind_note(&a), " (test alert)");
        assert!(slack_payload(&a)["text"]
            .as_str()
            .unwrap()
            .ends_with("(test alert)"));
    }

    #[test]
    fn email_text_has_every_fact() {
        let t = email_text(&sample("the ledger is off"));
        for fact in [
            "ERROR in shop\n\nthe ledger is off\n\n",
            "Caused by: connection <refused>\n",
            "Location     src/pay.rs:10:5\n",
            "Logger       payments\n",
            "Time         2023-11-14 22:13:20 UTC\n",
            "Host         web-1\n",
            "PID          42\n",
            "Occurrences  3\n",
            "Environment  prod\n",
            "Process      CPU 12.5% · RSS 10.0 MiB · host memory 40%\n",
            "\nBacktrace:\n  0* shop::pay```\n        at src/pay.rs:10\n",
            "(* = application code)",
        ] {
            assert!(t.contains(fact), "{fact:?} missing from:\n{t}");
        }
        let mut a = sample("x");
        a.frames.clear();
        assert!(!email_text(&a).contains("Backtrace"));
    }

    #[test]
    fn truncate_keeps_char_boundaries() {
        let t = truncate(&"é".repeat(100), 21);
        assert!(t.len() <= 21 + 1 && t.ends_with(TRUNCATED));
    }
}
