//! The tests of `format`: each channel's rendering of an alert, and the
//! escapes that keep what users wrote from being read as markup.

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
