//! A stored event as a Sentry event payload (the JSON of an envelope's
//! `event` item): pure, no I/O. Field names and orders follow the Relay
//! event schema: exception values oldest (the root cause) first, stack
//! frames caller first, addresses as `"0x…"` strings, the message as
//! `logentry.message` (required there) and `logentry.formatted`.
//!
//! The payload stays within Sentry's 1 MiB per event: when it would not,
//! parts are cut in a fixed order (large extra values, the middle of the
//! stack, breadcrumbs and extra, the message) and `extra.errsnap.truncated`
//! names what was cut.

use serde_json::{json, Map, Value};

use super::{cut, hex_id, trace_ids};
use crate::event::{EventKind, Frame};
use crate::level::Level;
use crate::store::EventDetail;

/// The largest payload sent: under Sentry's 1 MiB, with room for the
/// envelope's headers.
pub(crate) const MAX_EVENT_BYTES: usize = 1_000_000;
/// Sentry's own limits (data-handling): message and exception values,
/// tag values, breadcrumbs kept, one extra value.
const MAX_MESSAGE: usize = 8192;
const MAX_TAG_VALUE: usize = 200;
const MAX_BREADCRUMBS: usize = 100;
const MAX_EXTRA_VALUE: usize = 16 * 1024;
/// Frames kept from each end of a stack that does not fit.
const KEEP_FRAMES: usize = 25;

/// Sentry's name for a level.
pub(crate) fn level_name(l: Level) -> &'static str {
    match l {
        Level::Trace | Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warning",
        Level::Error => "error",
        Level::Fatal => "fatal",
    }
}

/// The event as Sentry's JSON, at most [`MAX_EVENT_BYTES`] long.
pub(crate) fn payload(d: &EventDetail) -> Vec<u8> {
    let mut cuts: Vec<&'static str> = Vec::new();
    let mut ev = event(d, &mut cuts);
    // Steps 0 to 4 (the last keeps only the essentials, which always fit).
    for step in 0..SHRINK_STEPS {
        if !cuts.is_empty() {
            mark(&mut ev, &cuts);
        }
        let bytes = serde_json::to_vec(&ev).unwrap_or_default();
        if bytes.len() <= MAX_EVENT_BYTES {
            return bytes;
        }
        shrink(&mut ev, step, &mut cuts);
    }
    mark(&mut ev, &cuts);
    serde_json::to_vec(&ev).unwrap_or_default()
}

/// How many ways [`shrink`] has.
const SHRINK_STEPS: usize = 5;

/// One step of making an oversized payload fit, in order.
// Long by design: one arm per step, in the order `payload` tries them, from
// the least missed cut (large extra values) to the essentials only.
fn shrink(ev: &mut Value, step: usize, cuts: &mut Vec<&'static str>) {
    match step {
        0 => {
            // Large extra values become a note of their size.
            if let Some(extra) = ev.get_mut("extra").and_then(Value::as_object_mut) {
                for (k, v) in extra.iter_mut() {
                    if k == "errsnap.truncated" {
                        continue;
                    }
                    let n = serde_json::to_vec(v).map_or(0, |b| b.len());
                    if n > MAX_EXTRA_VALUE {
                        *v = Value::String(format!("[cut by errsnap: {n} bytes]"));
                        push(cuts, "extra");
                    }
                }
            }
        }
        1 => {
            // The middle of each stack.
            for stack in stacks(ev) {
                let Some(frames) = stack.get_mut("frames").and_then(Value::as_array_mut) else {
                    continue;
                };
                if frames.len() > 2 * KEEP_FRAMES {
                    let end = frames.len() - KEEP_FRAMES;
                    frames.drain(KEEP_FRAMES..end);
                    stack["frames_omitted"] = json!([KEEP_FRAMES, end]);
                    push(cuts, "frames");
                }
            }
        }
        2 => {
            let Some(o) = ev.as_object_mut() else { return };
            if o.remove("breadcrumbs").is_some() {
                push(cuts, "breadcrumbs");
            }
            // (An extra holding only the mark of what was cut is no extra.)
            let has_extra = o
                .get("extra")
                .and_then(Value::as_object)
                .is_some_and(|m| m.keys().any(|k| k != "errsnap.truncated"));
            if has_extra {
                o.remove("extra");
                push(cuts, "extra");
            }
        }
        3 => {
            // The texts themselves.
            let short = |v: &mut Value| {
                if let Some(s) = v.as_str() {
                    *v = Value::String(cut(s, 1024).0);
                }
            };
            short(&mut ev["logentry"]["message"]);
            short(&mut ev["logentry"]["formatted"]);
            if let Some(values) = ev
                .pointer_mut("/exception/values")
                .and_then(Value::as_array_mut)
            {
                for v in values {
                    short(&mut v["value"]);
                }
            }
            push(cuts, "message");
        }
        _ => {
            // Whatever is left beyond the essentials (many tags, many
            // links with long stacks): only they are sent, each text
            // short.
            const KEEP: [&str; 12] = [
                "transaction",
                "event_id",
                "timestamp",
                "platform",
                "level",
                "logger",
                "release",
                "environment",
                "server_name",
                "fingerprint",
                "sdk",
                "logentry",
            ];
            if let Some(o) = ev.as_object_mut() {
                let exception = o.remove("exception");
                o.retain(|k, _| KEEP.contains(&k.as_str()));
                if let Some(mut exc) = exception {
                    if let Some(values) = exc.get_mut("values").and_then(Value::as_array_mut) {
                        for v in values.iter_mut() {
                            if let Some(v) = v.as_object_mut() {
                                v.remove("stacktrace");
                            }
                        }
                        let n = values.len();
                        values.drain(..n.saturating_sub(10));
                    }
                    o.insert("exception".into(), exc);
                }
            }
            push(cuts, "all but the essentials");
        }
    }
}

fn push(cuts: &mut Vec<&'static str>, what: &'static str) {
    if !cuts.contains(&what) {
        cuts.push(what);
    }
}

/// Says what was cut in `extra` (visible in every Sentry-like UI).
fn mark(ev: &mut Value, cuts: &[&'static str]) {
    let Some(o) = ev.as_object_mut() else { return };
    let extra = o.entry("extra").or_insert_with(|| json!({}));
    if let Some(extra) = extra.as_object_mut() {
        extra.insert("errsnap.truncated".to_owned(), json!(cuts));
    }
}

/// Every stack trace in the payload.
fn stacks(ev: &mut Value) -> Vec<&mut Value> {
    let mut out = Vec::new();
    let Some(o) = ev.as_object_mut() else {
        return out;
    };
    for (key, v) in o.iter_mut() {
        if key != "exception" && key != "threads" {
            continue;
        }
        if let Some(values) = v.get_mut("values").and_then(Value::as_array_mut) {
            for item in values {
                if let Some(s) = item.get_mut("stacktrace") {
                    out.push(s);
                }
            }
        }
    }
    out
}

// Long by design: one payload, field by field as the Relay schema lists
// them; each part with a shape of its own is its own function.
fn event(d: &EventDetail, cuts: &mut Vec<&'static str>) -> Value {
    let (message, cut_message) = cut(&d.row.message, MAX_MESSAGE);
    if cut_message {
        push(cuts, "message");
    }
    let Value::Object(mut o) = json!({
        "event_id": hex_id(&d.row.id),
        "timestamp": crate::util::time::rfc3339(d.row.ts),
        "platform": "native",
        "level": level_name(d.row.level),
        "logger": d.row.logger,
        "logentry": { "message": message, "formatted": message },
        "fingerprint": [d.group_fingerprint],
        "sdk": { "name": "errsnap", "version": env!("CARGO_PKG_VERSION") },
    }) else {
        return Value::Null;
    };
    let mut put = |k: &str, v: Option<&String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            o.insert(k.to_owned(), Value::String(v.clone()));
        }
    };
    put("release", d.release.as_ref());
    put("environment", d.environment.as_ref());
    put(
        "server_name",
        d.host.as_ref().and_then(|h| h.hostname.as_ref()),
    );
    let stack = stacktrace(&d.frames);
    if let Some(values) = exceptions(d, stack.clone(), cuts) {
        o.insert("exception".into(), json!({ "values": values }));
    }
    let mut thread = json!({
        "id": d.thread_id,
        "current": true,
        "crashed": matches!(d.row.kind, EventKind::Panic | EventKind::Crash),
    });
    if let Some(name) = &d.row.thread {
        thread["name"] = json!(name);
    }
    if d.row.kind == EventKind::Message {
        if let Some(s) = stack {
            thread["stacktrace"] = s;
        }
    }
    o.insert("threads".into(), json!({ "values": [thread] }));
    if let Some(images) = images(&d.frames, d.host.as_ref().map(|h| h.arch.as_str())) {
        o.insert("debug_meta".into(), json!({ "images": images }));
    }
    o.insert("tags".into(), Value::Object(tags(d, cuts)));
    o.insert("contexts".into(), Value::Object(contexts(d)));
    scope_parts(d, &mut o);
    let extra = match &d.extra {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => Map::from_iter([("extra".to_owned(), other.clone())]),
    };
    if !extra.is_empty() {
        o.insert("extra".into(), Value::Object(extra));
    }
    let crumbs = &d.breadcrumbs[d.breadcrumbs.len().saturating_sub(MAX_BREADCRUMBS)..];
    if crumbs.len() < d.breadcrumbs.len() {
        push(cuts, "breadcrumbs");
    }
    if !crumbs.is_empty() {
        let values: Vec<Value> = crumbs
            .iter()
            .map(|b| {
                json!({
                    "timestamp": crate::util::time::rfc3339(b.timestamp_ms),
                    "category": b.category,
                    "level": level_name(b.level),
                    "message": cut(&b.message, MAX_MESSAGE).0,
                })
            })
            .collect();
        o.insert("breadcrumbs".into(), json!({ "values": values }));
    }
    Value::Object(o)
}

/// The transaction, user and request interfaces (from the event's scope;
/// personal data only as stored: e-mail and IP only when enabled).
fn scope_parts(d: &EventDetail, o: &mut Map<String, Value>) {
    if let Some(t) = &d.transaction {
        o.insert("transaction".into(), json!(cut(t, 200).0));
    }
    if let Some(u) = &d.user {
        let mut user = Map::new();
        for (k, v) in [
            ("id", &u.id),
            ("username", &u.username),
            ("email", &u.email),
            ("ip_address", &u.ip_address),
        ] {
            if let Some(v) = v {
                user.insert(k.into(), json!(cut(v, 200).0));
            }
        }
        if !user.is_empty() {
            o.insert("user".into(), Value::Object(user));
        }
    }
    let Some(r) = &d.request else { return };
    let host = r.host.as_deref().unwrap_or("localhost");
    let mut req = json!({
        "method": r.method,
        "url": format!("http://{host}{}", r.path),
    });
    if let Some(q) = &r.query {
        req["query_string"] = json!(q);
    }
    if !r.headers.is_empty() {
        req["headers"] = json!(r.headers);
    }
    // Sentry takes the user's IP from REMOTE_ADDR: only when stored.
    if let Some(peer) = &r.peer {
        req["env"] = json!({ "REMOTE_ADDR": peer });
    }
    o.insert("request".into(), req);
    if let Some(status) = r.status {
        if let Some(Value::Object(c)) = o.get_mut("contexts") {
            c.insert(
                "response".into(),
                json!({ "type": "response", "status_code": status }),
            );
        }
    }
}

/// The exception values, root cause first; the outermost (last) carries
/// the stack and how it was caught. `None` for a plain message.
fn exceptions(
    d: &EventDetail,
    stack: Option<Value>,
    cuts: &mut Vec<&'static str>,
) -> Option<Vec<Value>> {
    let (outer_type, mechanism, handled) = match d.row.kind {
        EventKind::Message => return None,
        EventKind::Error => (None, "generic", true),
        EventKind::Panic => (Some("panic"), "panic", false),
        EventKind::Crash => (Some("crash"), "signalhandler", false),
    };
    let mut text = |s: &str| {
        let (v, was_cut) = cut(s, MAX_MESSAGE);
        if was_cut {
            push(cuts, "message");
        }
        v
    };
    let mut values: Vec<Value> = Vec::new();
    if d.row.kind == EventKind::Error && !d.chain.is_empty() {
        for (i, link) in d.chain.iter().enumerate().rev() {
            let mut v = json!({ "value": text(&link.message) });
            if i == 0 {
                v["type"] = json!(link.type_name.as_deref().unwrap_or("Error"));
            }
            values.push(v);
        }
    } else {
        // A panic or crash: its causes (when a chain was kept), then
        // itself.
        for link in d.chain.iter().rev() {
            values.push(json!({ "value": text(&link.message) }));
        }
        values.push(json!({
            "type": outer_type.unwrap_or("Error"),
            "value": text(&d.row.message),
        }));
    }
    let last = values.last_mut()?;
    last["mechanism"] = json!({ "type": mechanism, "handled": handled });
    if let Some(s) = stack {
        last["stacktrace"] = s;
    }
    Some(values)
}

/// The frames, caller first (stored innermost first).
fn stacktrace(frames: &[Frame]) -> Option<Value> {
    if frames.is_empty() {
        return None;
    }
    let frames: Vec<Value> = frames.iter().rev().map(frame).collect();
    Some(json!({ "frames": frames }))
}

fn frame(f: &Frame) -> Value {
    let mut v = json!({
        "in_app": f.in_app,
        "instruction_addr": format!("{:#x}", f.address),
    });
    if let Some(func) = &f.function {
        v["function"] = json!(func);
    }
    if let Some(file) = &f.file {
        v["filename"] = json!(file);
        if file.starts_with('/') {
            v["abs_path"] = json!(file);
        }
    }
    if let Some(l) = f.line.filter(|l| *l > 0) {
        v["lineno"] = json!(l);
    }
    if let Some(c) = f.column.filter(|c| *c > 0) {
        v["colno"] = json!(c);
    }
    if let Some(m) = &f.module {
        v["package"] = json!(m);
    }
    if let Some(off) = f.module_offset.filter(|o| *o <= f.address) {
        v["image_addr"] = json!(format!("{:#x}", f.address - off));
    }
    v
}

/// The modules of frames stored without a name (raw), as `elf` debug
/// images, so a server with the debug files can name them.
fn images(frames: &[Frame], arch: Option<&str>) -> Option<Vec<Value>> {
    let mut out: Vec<Value> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for f in frames.iter().filter(|f| f.function.is_none()) {
        let (Some(module), Some(build_id), Some(off)) = (&f.module, &f.build_id, f.module_offset)
        else {
            continue;
        };
        if seen.contains(&module.as_str()) || off > f.address {
            continue;
        }
        seen.push(module);
        let mut image = json!({
            "type": "elf",
            "code_file": module,
            "code_id": build_id,
            "debug_id": debug_id(build_id),
            "image_addr": format!("{:#x}", f.address - off),
        });
        if let Some(a) = arch.filter(|a| !a.is_empty()) {
            image["arch"] = json!(a);
        }
        out.push(image);
    }
    (!out.is_empty()).then_some(out)
}

/// Sentry's debug id of an ELF build id: its first 16 bytes as a
/// little-endian UUID (the first three fields byte-swapped).
pub(crate) fn debug_id(build_id: &str) -> String {
    let mut b = [0u8; 16];
    let hex = build_id.as_bytes();
    for (i, slot) in b.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).unwrap_or(b"00");
        *slot = std::str::from_utf8(pair)
            .ok()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
            .unwrap_or(0);
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn tags(d: &EventDetail, cuts: &mut Vec<&'static str>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in &d.tags {
        let (v, was_cut) = cut(v, MAX_TAG_VALUE);
        if was_cut {
            push(cuts, "tags");
        }
        out.insert(k.clone(), Value::String(v));
    }
    out.insert("errsnap.kind".into(), json!(d.row.kind.as_str()));
    out
}

/// `os`, `device`, `runtime`, `app` (RSS), `trace` when the event has
/// trace ids, and `errsnap`: the whole snapshot and where it came from.
fn contexts(d: &EventDetail) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("runtime".into(), json!({ "name": "rust" }));
    if let Some(h) = &d.host {
        let mut os = json!({});
        for (k, v) in [
            ("name", &h.os_name),
            ("version", &h.os_version),
            ("kernel_version", &h.kernel_version),
        ] {
            if let Some(v) = v {
                os[k] = json!(v);
            }
        }
        c.insert("os".into(), os);
        let mut device = json!({
            "arch": h.arch,
            "processor_count": h.cpu_count,
            "memory_size": h.total_memory,
        });
        if let Some(b) = &h.cpu_brand {
            device["cpu_description"] = json!(b);
        }
        if let Some(s) = &d.snapshot {
            device["free_memory"] = json!(s.host.available_memory);
        }
        if h.boot_time > 0 {
            let ms = i64::try_from(h.boot_time).unwrap_or(0).saturating_mul(1000);
            device["boot_time"] = json!(crate::util::time::rfc3339(ms));
        }
        c.insert("device".into(), device);
    }
    // No `type`: Sentry infers it from the key (and keeps `type` for
    // itself; Sentry's own types refuse a custom context typed `default`).
    let mut errsnap = json!({
        "pid": d.row.pid,
        "group_title": d.group_title,
        "group_count": d.group_count,
    });
    if let (Some(file), Some(line)) = (&d.row.file, d.row.line) {
        errsnap["location"] = json!(format!("{file}:{line}"));
    }
    if let Some(s) = &d.snapshot {
        c.insert("app".into(), json!({ "app_memory": s.process.rss_bytes }));
        errsnap["snapshot"] = serde_json::to_value(s).unwrap_or(Value::Null);
    }
    c.insert("errsnap".into(), errsnap);
    if let Some((trace, span)) = trace_ids(d) {
        let mut t = json!({ "trace_id": trace });
        if let Some(s) = span {
            t["span_id"] = json!(s);
        }
        c.insert("trace".into(), t);
    }
    c
}

#[cfg(test)]
#[path = "sentry_event_tests.rs"]
mod tests;
