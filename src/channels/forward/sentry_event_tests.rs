//! The tests of `sentry_event`: the payload's fields and order, and each
//! step that makes an oversized event fit.

use super::*;
use crate::event::ChainLink;

fn detail() -> EventDetail {
    let mut d = crate::channels::forward::test_event(&crate::event::Alert::test(
        "web",
        Some("shop".into()),
        Some("production".into()),
    ));
    d.row.kind = EventKind::Error;
    d.row.message = "loading config".into();
    d.chain = vec![
        ChainLink {
            message: "loading config".into(),
            type_name: Some("app::ConfigError".into()),
        },
        ChainLink {
            message: "permission denied".into(),
            type_name: None,
        },
    ];
    d.frames = vec![
        Frame {
            function: Some("app::load".into()),
            file: Some("/src/app.rs".into()),
            line: Some(12),
            column: Some(5),
            address: 0x5000,
            module: Some("/usr/bin/app".into()),
            module_offset: Some(0x1000),
            build_id: Some("0011223344556677889900aabbccddeeff001122".into()),
            in_app: true,
        },
        Frame {
            function: None,
            file: None,
            line: None,
            column: None,
            address: 0x6000,
            module: Some("/usr/bin/app".into()),
            module_offset: Some(0x2000),
            build_id: Some("0011223344556677889900aabbccddeeff001122".into()),
            in_app: false,
        },
    ];
    d
}

fn parse(d: &EventDetail) -> Value {
    serde_json::from_slice(&payload(d)).unwrap()
}

#[test]
fn the_chain_is_root_cause_first_and_the_stack_caller_first() {
    let v = parse(&detail());
    let values = v["exception"]["values"].as_array().unwrap();
    assert_eq!(values[0]["value"], "permission denied");
    assert!(values[0].get("type").is_none());
    assert_eq!(values[1]["type"], "app::ConfigError");
    assert_eq!(values[1]["mechanism"]["handled"], true);
    let frames = values[1]["stacktrace"]["frames"].as_array().unwrap();
    assert_eq!(frames[1]["function"], "app::load");
    assert_eq!(frames[1]["instruction_addr"], "0x5000");
    assert_eq!(frames[1]["image_addr"], "0x4000");
    assert_eq!(frames[1]["lineno"], 12);
    assert_eq!(frames[1]["in_app"], true);
    assert!(frames[0].get("function").is_none());
    let image = &v["debug_meta"]["images"][0];
    assert_eq!(image["code_id"], "0011223344556677889900aabbccddeeff001122");
    assert_eq!(image["debug_id"], "33221100-5544-7766-8899-00aabbccddee");
    assert_eq!(v["level"], "error");
    assert_eq!(v["environment"], "production");
    assert_eq!(v["event_id"].as_str().unwrap().len(), 32);
}

#[test]
fn levels_are_sentrys() {
    assert_eq!(level_name(Level::Warn), "warning");
    assert_eq!(level_name(Level::Trace), "debug");
    assert_eq!(level_name(Level::Fatal), "fatal");
    assert_eq!(level_name(Level::Info), "info");
    assert_eq!(level_name(Level::Error), "error");
}

#[test]
fn a_panic_is_unhandled_and_a_message_has_no_exception() {
    let mut d = detail();
    d.row.kind = EventKind::Panic;
    d.chain.clear();
    d.row.message = "index out of bounds".into();
    let v = parse(&d);
    let values = v["exception"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0]["type"], "panic");
    assert_eq!(values[0]["mechanism"]["handled"], false);
    assert_eq!(v["threads"]["values"][0]["crashed"], true);
    d.row.kind = EventKind::Message;
    let v = parse(&d);
    assert!(v.get("exception").is_none());
    assert_eq!(v["logentry"]["formatted"], "index out of bounds");
    assert_eq!(
        v["threads"]["values"][0]["stacktrace"]["frames"][1]["function"],
        "app::load"
    );
}

#[test]
fn an_oversized_event_is_cut_to_fit_and_says_so() {
    let mut d = detail();
    d.extra = json!({ "config": "x".repeat(3_000_000), "small": 1 });
    d.tags.insert("long".into(), "t".repeat(500));
    d.row.message = "m".repeat(20_000);
    d.chain[0].message = d.row.message.clone();
    let bytes = payload(&d);
    assert!(bytes.len() <= MAX_EVENT_BYTES, "{}", bytes.len());
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["extra"]["small"], 1);
    assert!(v["extra"]["config"]
        .as_str()
        .unwrap()
        .starts_with("[cut by errsnap"));
    let cut: Vec<&str> = v["extra"]["errsnap.truncated"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(cut, ["message", "tags", "extra"]);
    assert_eq!(v["tags"]["long"].as_str().unwrap().chars().count(), 201);
    assert_eq!(
        v["logentry"]["formatted"].as_str().unwrap().chars().count(),
        MAX_MESSAGE + 1
    );
}

#[test]
fn a_huge_stack_loses_its_middle_then_breadcrumbs_and_extra() {
    let mut d = detail();
    let f = d.frames[0].clone();
    d.frames = (0..5000)
        .map(|i| Frame {
            function: Some(format!("f{i}_{}", "x".repeat(300))),
            ..f.clone()
        })
        .collect();
    let v: Value = serde_json::from_slice(&payload(&d)).unwrap();
    let st = &v["exception"]["values"][1]["stacktrace"];
    assert_eq!(st["frames"].as_array().unwrap().len(), 2 * KEEP_FRAMES);
    assert_eq!(
        st["frames_omitted"],
        json!([KEEP_FRAMES, 5000 - KEEP_FRAMES])
    );
    assert_eq!(v["extra"]["errsnap.truncated"], json!(["frames"]));
    // Caller first: the outermost frame (stored last) leads.
    assert!(st["frames"][0]["function"]
        .as_str()
        .unwrap()
        .starts_with("f4999_"));
}

fn cuts_of(v: &Value) -> Vec<String> {
    v["extra"]["errsnap.truncated"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn many_medium_extras_go_whole_and_a_stack_of_fifty_stays() {
    let mut d = detail();
    let f = d.frames[0].clone();
    d.frames = vec![f; 2 * KEEP_FRAMES];
    // 100 values of 15 KiB: none over the per-value limit, 1.5 MB in all.
    let mut extra = serde_json::Map::new();
    for i in 0..100 {
        extra.insert(format!("v{i}"), json!("e".repeat(15 * 1024)));
    }
    d.extra = Value::Object(extra);
    d.breadcrumbs = vec![crate::event::Breadcrumb {
        timestamp_ms: 1,
        level: Level::Info,
        category: "http".into(),
        message: "GET /".into(),
    }];
    let bytes = payload(&d);
    assert!(bytes.len() <= MAX_EVENT_BYTES);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(cuts_of(&v), ["breadcrumbs", "extra"]);
    assert!(v.get("breadcrumbs").is_none());
    assert_eq!(v["extra"].as_object().unwrap().len(), 1, "only the mark");
    let st = &v["exception"]["values"][1]["stacktrace"];
    assert_eq!(st["frames"].as_array().unwrap().len(), 2 * KEEP_FRAMES);
    assert!(st.get("frames_omitted").is_none());
    assert_eq!(v["logentry"]["formatted"], "loading config");
}

#[test]
fn extra_values_are_cut_only_past_their_limit() {
    let mut d = detail();
    let at = |n: usize| json!("x".repeat(n - 2)); // serialized: n bytes
    d.extra = json!({
        "big": "b".repeat(2_000_000),
        "edge": at(MAX_EXTRA_VALUE),
        "over": at(MAX_EXTRA_VALUE + 1),
    });
    let v: Value = serde_json::from_slice(&payload(&d)).unwrap();
    assert_eq!(cuts_of(&v), ["extra"]);
    assert_eq!(
        v["extra"]["edge"].as_str().unwrap().len(),
        MAX_EXTRA_VALUE - 2
    );
    assert!(v["extra"]["over"]
        .as_str()
        .unwrap()
        .starts_with("[cut by errsnap"));
    assert!(v["extra"]["big"]
        .as_str()
        .unwrap()
        .starts_with("[cut by errsnap"));
}

#[test]
fn long_chains_are_cut_to_short_texts_before_the_essentials() {
    let mut d = detail();
    d.chain = (0..200)
        .map(|i| ChainLink {
            message: format!("{i} {}", "c".repeat(9000)),
            type_name: None,
        })
        .collect();
    let v: Value = serde_json::from_slice(&payload(&d)).unwrap();
    assert_eq!(cuts_of(&v), ["message"]);
    let values = v["exception"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 200);
    assert_eq!(values[0]["value"].as_str().unwrap().chars().count(), 1025);
    assert!(
        values[199].get("stacktrace").is_some(),
        "not the essentials"
    );
}

#[test]
fn whatever_the_event_holds_it_fits() {
    let mut d = detail();
    for i in 0..20_000 {
        d.tags.insert(format!("tag{i}"), "v".repeat(300));
    }
    let bytes = payload(&d);
    assert!(bytes.len() <= MAX_EVENT_BYTES, "{}", bytes.len());
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v.get("tags").is_none());
    assert_eq!(v["exception"]["values"][1]["type"], "app::ConfigError");
    assert!(v["exception"]["values"][1].get("stacktrace").is_none());
    assert_eq!(v["fingerprint"][0], d.group_fingerprint);
    // The mark stays visible: extra holds only it.
    let cut = v["extra"]["errsnap.truncated"].as_array().unwrap();
    assert!(cut.contains(&json!("all but the essentials")), "{cut:?}");
}

#[test]
fn trace_ids_come_from_valid_tags_only() {
    let mut d = detail();
    d.tags
        .insert("trace_id".into(), "4BF92F3577B34DA6A3CE929D0E0E4736".into());
    d.tags.insert("span_id".into(), "00f067aa0ba902b7".into());
    let v = parse(&d);
    assert_eq!(
        v["contexts"]["trace"]["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(v["contexts"]["trace"]["span_id"], "00f067aa0ba902b7");
    d.tags.insert("trace_id".into(), "0".repeat(32));
    assert!(parse(&d)["contexts"].get("trace").is_none());
    d.tags.insert("trace_id".into(), "xyz".into());
    assert!(parse(&d)["contexts"].get("trace").is_none());
}

#[test]
fn every_kind_of_event_reads_as_sentrys_own_event_type() {
    use sentry_types::protocol::v7::{Event, Level as SentryLevel};
    for kind in [
        EventKind::Error,
        EventKind::Panic,
        EventKind::Crash,
        EventKind::Message,
    ] {
        let mut d = detail();
        d.row.kind = kind;
        d.snapshot = Some(crate::event::Snapshot::take());
        let mut v: Value = serde_json::from_slice(&payload(&d)).unwrap();
        // Relay's `elf` image type, which the SDK's own types do not list
        // (they send `symbolic`): read apart.
        let images = v.as_object_mut().unwrap().remove("debug_meta").unwrap();
        assert_eq!(images["images"][0]["type"], "elf");
        // A cause without a type goes with its value only (Relay takes
        // either); the SDK's types want a type.
        if let Some(values) = v
            .pointer_mut("/exception/values")
            .and_then(Value::as_array_mut)
        {
            for x in values.iter_mut().filter(|x| x.get("type").is_none()) {
                assert!(x["value"].is_string());
                x["type"] = Value::from("Error");
            }
        }
        let e: Event<'_> =
            serde_json::from_value(v.clone()).unwrap_or_else(|err| panic!("{kind:?}: {err}: {v}"));
        assert_eq!(e.level, SentryLevel::Error);
        assert_eq!(
            e.event_id.simple().to_string(),
            crate::channels::forward::hex_id(&d.row.id)
        );
        assert_eq!(e.release.as_deref(), d.release.as_deref());
        assert!(e.contexts.contains_key("errsnap"), "{kind:?}");
        match kind {
            EventKind::Message => {
                let entry = e.logentry.expect("a message's text");
                assert_eq!(entry.message, "loading config");
                assert!(e.exception.values.is_empty());
            }
            _ => {
                let values = &e.exception.values;
                assert!(!values.is_empty(), "{kind:?}");
                let frames = &values.last().unwrap().stacktrace.as_ref().unwrap().frames;
                assert_eq!(frames.len(), 2);
                assert_eq!(frames[1].function.as_deref(), Some("app::load"));
            }
        }
    }
}
