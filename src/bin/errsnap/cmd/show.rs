//! `errsnap show ID`: one event in full, its frames resolved on request
//! against the binary that recorded them.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::browse::location;
use crate::args::{Cli, ShowArgs};
use crate::open;
use crate::output::{bytes, time, Out};
use crate::term::{safe, safe_line};

/// `errsnap show ID`: one event in full.
pub(crate) fn show(cli: &Cli, a: &ShowArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let Some(mut d) = db.event(&a.id)? else {
        bail!("no event {:?} in {}", a.id, crate::db_name(cli, &db));
    };
    if !a.binary.is_empty() {
        d.frames = errsnap::db::Database::resolve_frames(&d.frames, &a.binary)?;
    }
    if let Some(dir) = &a.save_attachments {
        let files = db.save_attachments(&d.row.id, dir)?;
        if cli.json {
            out.json(&serde_json::json!({ "saved": files }))?;
            return Ok(ExitCode::SUCCESS);
        }
        for f in &files {
            writeln!(out.w, "saved {}", safe_line(&f.display().to_string()))?;
        }
        if files.is_empty() {
            writeln!(out.w, "no attachment with data")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let trend = db.event_trend(&d.row.id)?;
    if cli.json {
        // The event's fields, and the minutes before it beside them.
        let mut v = serde_json::to_value(&d)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("before".into(), serde_json::to_value(&trend)?);
        }
        out.json(&v)?;
    } else {
        print_detail(out, &d, a.all_frames)?;
        if let Some(t) = trend.filter(|t| !t.readings.is_empty()) {
            print_before(&mut out.w, &t)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

// Long by design: each section of the text report in the order it is
// printed; the sections with a shape of their own (context, frames,
// snapshot, alerts) are their own functions.
fn print_detail(out: &mut Out, d: &errsnap::db::EventDetail, all_frames: bool) -> Result<()> {
    let e = &d.row;
    let level = out.level(e.level);
    let w = &mut out.w;
    writeln!(w, "event   {}", safe_line(&e.id))?;
    writeln!(w, "time    {} UTC", time(e.ts))?;
    writeln!(w, "level   {level} ({})", e.kind.as_str())?;
    writeln!(w, "logger  {}", safe_line(&e.logger))?;
    writeln!(
        w,
        "group   {} ({} occurrences, {}): {}",
        e.group,
        d.group_count,
        d.group_status.as_str(),
        safe_line(&d.group_title)
    )?;
    writeln!(w, "where   {}", location(e))?;
    writeln!(
        w,
        "thread  {} (id {}), pid {}",
        safe_line(e.thread.as_deref().unwrap_or("?")),
        d.thread_id,
        e.pid
    )?;
    for (k, v) in [
        ("app", &d.app_name),
        ("release", &d.release),
        ("env", &d.environment),
    ] {
        if let Some(v) = v {
            writeln!(w, "{k:<7} {}", safe_line(v))?;
        }
    }
    writeln!(w, "\nmessage\n  {}", safe(&e.message).replace('\n', "\n  "))?;
    if d.chain.len() > 1 {
        writeln!(w, "\ncaused by")?;
        for link in d.chain.iter().skip(1) {
            writeln!(w, "  - {}", safe(&link.message).replace('\n', "\n    "))?;
        }
    }
    print_context(w, d)?;
    if !d.tags.is_empty() {
        writeln!(w, "\ntags")?;
        for (k, v) in &d.tags {
            writeln!(w, "  {} = {}", safe_line(k), safe_line(v))?;
        }
    }
    if d.extra.as_object().is_some_and(|o| !o.is_empty()) {
        // JSON escapes control characters in strings already; keys and
        // values pass through `safe` for the bidirectional controls.
        let pretty = serde_json::to_string_pretty(&d.extra)?;
        writeln!(w, "\nextra\n  {}", safe(&pretty).replace('\n', "\n  "))?;
    }
    if !d.breadcrumbs.is_empty() {
        writeln!(w, "\nbreadcrumbs (oldest first)")?;
        for b in &d.breadcrumbs {
            writeln!(
                w,
                "  {} {:<5} {}: {}",
                time(b.timestamp_ms),
                b.level.as_str().to_ascii_uppercase(),
                safe_line(&b.category),
                safe_line(&b.message)
            )?;
        }
    }
    if !d.attachments.is_empty() {
        writeln!(w, "\nattachments (--save-attachments DIR writes them)")?;
        for a in &d.attachments {
            let what = match a.dropped() {
                Some(why) => format!("not kept: {}", safe_line(why)),
                None => a
                    .content_type()
                    .map(|c| safe_line(c).into_owned())
                    .unwrap_or_default(),
            };
            writeln!(w, "  {}  {}  {what}", safe_line(a.name()), bytes(a.size()))?;
        }
    }
    print_frames(w, d, all_frames)?;
    if let Some(s) = &d.snapshot {
        print_snapshot(w, s)?;
    }
    if let Some(h) = &d.host {
        if d.snapshot.is_none() {
            writeln!(w, "\nhost")?;
        }
        writeln!(
            w,
            "    name: {}",
            safe_line(h.hostname.as_deref().unwrap_or("?"))
        )?;
    }
    print_alerts(w, &d.alerts)
}

/// The run's minutes before the event: the trend in words, then the RSS
/// of each reading as a row of bars.
fn print_before(w: &mut impl Write, t: &errsnap::db::EventTrend) -> Result<()> {
    writeln!(
        w,
        "\nbefore it (run {}, {} readings)",
        t.run,
        t.readings.len()
    )?;
    for line in &t.words {
        writeln!(w, "    {}", safe_line(line))?;
    }
    let all: Vec<u64> = t.readings.iter().filter_map(|s| s.rss_bytes).collect();
    // At most 60 bars: every n-th reading, the last one always.
    let step = all.len().div_ceil(60).max(1);
    let rss: Vec<u64> = all.iter().rev().step_by(step).rev().copied().collect();
    if let (Some(&max), true) = (all.iter().max(), rss.len() >= 2) {
        const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
        let line: String = rss
            .iter()
            .map(|&r| BARS[(r as f64 / max.max(1) as f64 * 7.0).round() as usize])
            .collect();
        writeln!(w, "    RSS {line} (highest {})", bytes(max))?;
    }
    Ok(())
}

/// The transaction, user and request the event was raised for.
fn print_context(w: &mut impl Write, d: &errsnap::db::EventDetail) -> Result<()> {
    if let Some(t) = &d.transaction {
        writeln!(w, "\ntransaction  {}", safe_line(t))?;
    }
    if let Some(u) = &d.user {
        let parts: Vec<String> = [
            ("id", &u.id),
            ("username", &u.username),
            ("email", &u.email),
            ("ip", &u.ip_address),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {}", safe_line(v))))
        .collect();
        writeln!(w, "\nuser    {}", parts.join(", "))?;
    }
    if let Some(r) = &d.request {
        writeln!(w, "\nrequest")?;
        let query = r
            .query
            .as_ref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        writeln!(
            w,
            "  {} {}{}",
            safe_line(&r.method),
            safe_line(&r.path),
            safe_line(&query)
        )?;
        if let Some(route) = &r.route {
            writeln!(w, "  route     {}", safe_line(route))?;
        }
        match (r.status, r.duration_ms) {
            (Some(s), Some(ms)) => writeln!(w, "  status    {s} after {ms} ms")?,
            (Some(s), None) => writeln!(w, "  status    {s}")?,
            _ => {}
        }
        if let Some(h) = &r.host {
            writeln!(w, "  host      {}", safe_line(h))?;
        }
        if let Some(p) = &r.peer {
            writeln!(w, "  peer      {}", safe_line(p))?;
        }
        for (k, v) in &r.headers {
            writeln!(w, "  {}: {}", safe_line(k), safe_line(v))?;
        }
    }
    Ok(())
}

/// The backtrace: application frames (or all of them), innermost first.
fn print_frames(w: &mut impl Write, d: &errsnap::db::EventDetail, all_frames: bool) -> Result<()> {
    if !d.frames.is_empty() {
        let shown: Vec<_> = d
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| all_frames || f.in_app || f.function.is_none())
            .collect();
        writeln!(
            w,
            "\nbacktrace ({} of {} frames{}{})",
            shown.len(),
            d.frames.len(),
            if all_frames {
                ""
            } else {
                ", application code; --all-frames for all"
            },
            if d.symbols_resolved {
                ""
            } else {
                "; some unresolved: see --binary"
            }
        )?;
        for (i, f) in shown {
            match &f.function {
                Some(name) => writeln!(w, "  {i:>3}: {}", safe_line(name))?,
                None => writeln!(
                    w,
                    "  {i:>3}: {:#x} in {} (+{:#x})",
                    f.address,
                    safe_line(f.module.as_deref().unwrap_or("?")),
                    f.module_offset.unwrap_or(0)
                )?,
            }
            if let Some(file) = &f.file {
                writeln!(w, "         at {}:{}", safe_line(file), f.line.unwrap_or(0))?;
            }
        }
    }
    Ok(())
}

/// The process and host figures taken when the event was recorded.
fn print_snapshot(w: &mut impl Write, s: &errsnap::snapshot::Snapshot) -> Result<()> {
    {
        let p = &s.process;
        let h = &s.host;
        writeln!(w, "\nprocess")?;
        writeln!(
            w,
            "    cpu: {}",
            p.cpu_percent.map_or("?".into(), |c| format!("{c:.1}%"))
        )?;
        writeln!(
            w,
            "    cpu time: {} ms user, {} ms system",
            p.cpu_user_ms.unwrap_or(0),
            p.cpu_system_ms.unwrap_or(0)
        )?;
        writeln!(
            w,
            "    memory: {} rss, {} virtual ({:.2}%)",
            bytes(p.rss_bytes),
            bytes(p.virtual_bytes),
            p.memory_percent
        )?;
        writeln!(
            w,
            "    threads: {}",
            p.threads.map_or("?".into(), |t| t.to_string())
        )?;
        writeln!(
            w,
            "    open fds: {}",
            p.open_fds.map_or("?".into(), |t| t.to_string())
        )?;
        writeln!(w, "host")?;
        writeln!(
            w,
            "    memory: {} used of {} ({} available)",
            bytes(h.used_memory),
            bytes(h.total_memory),
            bytes(h.available_memory)
        )?;
        writeln!(
            w,
            "    cpu: {}",
            h.cpu_percent.map_or("?".into(), |c| format!("{c:.1}%"))
        )?;
        writeln!(
            w,
            "    load: {:.2} {:.2} {:.2}",
            h.load_1, h.load_5, h.load_15
        )?;
    }
    Ok(())
}

/// Each alert of the event and where its delivery stands.
fn print_alerts(w: &mut impl Write, alerts: &[errsnap::db::AlertStatus]) -> Result<()> {
    if !alerts.is_empty() {
        writeln!(w, "\nalerts")?;
        for a in alerts {
            writeln!(
                w,
                "  {:<8} {:<10} {:<8} after {} attempt(s){}",
                safe_line(&a.channel),
                a.kind.as_str(),
                a.status.as_str(),
                a.attempts,
                a.last_error
                    .as_deref()
                    .map(|e| format!(": {}", safe_line(e)))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}
