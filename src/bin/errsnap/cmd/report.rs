//! Reports: `stats`, `host`, `runs`, `releases`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::args::{Cli, RunsArgs, StatsArgs};
use crate::open;
use crate::output::{bytes, one_line, time, Out};
use crate::term::safe_line;

/// `errsnap stats`: counts by level, logger, day; alerts; losses.
pub(crate) fn stats(cli: &Cli, a: &StatsArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let s = db.stats(a.top)?;
    if cli.json {
        out.json(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out.w, "events: {}   groups: {}", s.events, s.groups)?;
    writeln!(
        out.w,
        "file: {} ({} in use)",
        bytes(s.file_bytes),
        bytes(s.used_bytes)
    )?;
    let section =
        |out: &mut Out, title: &str, m: &std::collections::BTreeMap<String, i64>| -> Result<()> {
            writeln!(out.w, "\n{title}")?;
            if m.is_empty() {
                writeln!(out.w, "  (none)")?;
            }
            for (k, v) in m {
                writeln!(out.w, "  {:<24} {v:>8}", safe_line(k))?;
            }
            Ok(())
        };
    section(out, "by level", &s.by_level)?;
    section(out, "by logger", &s.by_logger)?;
    section(out, "by day (UTC)", &s.by_day)?;
    section(out, "alerts", &s.alerts)?;
    section(out, "counters (losses are never silent)", &s.counters)?;
    writeln!(out.w, "\ntop groups")?;
    for g in &s.top_groups {
        writeln!(
            out.w,
            "  {:>5} {:>8}  {}",
            g.id,
            g.count,
            one_line(&g.title, 80)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `errsnap host`: the hosts that recorded events.
pub(crate) fn host(cli: &Cli, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let hosts = db.hosts()?;
    if cli.json {
        let v: Vec<_> = hosts
            .iter()
            .map(|(r, h)| serde_json::json!({"id": r.id, "first_seen": r.first_seen, "last_seen": r.last_seen, "host": h}))
            .collect();
        out.json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (r, h) in &hosts {
        writeln!(
            out.w,
            "host {} ({})",
            r.id,
            safe_line(h.hostname.as_deref().unwrap_or("unknown"))
        )?;
        writeln!(
            out.w,
            "  os:      {} {} (kernel {}), {}",
            safe_line(h.os_name.as_deref().unwrap_or("?")),
            safe_line(h.os_version.as_deref().unwrap_or("")),
            safe_line(h.kernel_version.as_deref().unwrap_or("?")),
            safe_line(&h.arch)
        )?;
        writeln!(
            out.w,
            "  cpu:     {} x {} ({} cores{})",
            h.cpu_count,
            safe_line(h.cpu_brand.as_deref().unwrap_or("?")),
            h.physical_cores.map_or("?".into(), |c| c.to_string()),
            h.cpu_frequency_mhz
                .map_or(String::new(), |f| format!(", {f} MHz"))
        )?;
        writeln!(
            out.w,
            "  memory:  {}, swap {}",
            bytes(h.total_memory),
            bytes(h.total_swap)
        )?;
        writeln!(
            out.w,
            "  seen:    {} to {}",
            time(r.first_seen),
            time(r.last_seen)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `errsnap runs`: the runs ledger, newest first.
pub(crate) fn runs(cli: &Cli, a: &RunsArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let runs = db.runs(a.limit)?;
    if cli.json {
        out.json(&runs)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out.w,
        "{:>6}  {:<9} {:<9} {:>8}  {:<19}  {:<19}  {:>10}  release",
        "run", "status", "reason", "pid", "started (UTC)", "ended (UTC)", "last rss"
    )?;
    for r in &runs {
        writeln!(
            out.w,
            "{:>6}  {:<9} {:<9} {:>8}  {:<19}  {:<19}  {:>10}  {}",
            r.id,
            r.status.as_str(),
            safe_line(r.end_reason.as_deref().unwrap_or("")),
            r.pid,
            time(r.started_at),
            r.ended_at.map(time).unwrap_or_default(),
            r.last_rss_bytes.map(bytes).unwrap_or_default(),
            safe_line(r.release.as_deref().unwrap_or("")),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `errsnap releases`: each release's crash-free runs and new or regressed
/// groups, newest first.
pub(crate) fn releases(cli: &Cli, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let rows = db.releases()?;
    if cli.json {
        out.json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out.w,
        "{:<24} {:>6} {:>8} {:>8} {:>8} {:>11} {:>5} {:>9}  first seen (UTC)",
        "release", "runs", "exited", "crashed", "abnormal", "crash-free", "new", "regressed"
    )?;
    for r in &rows {
        writeln!(
            out.w,
            "{:<24} {:>6} {:>8} {:>8} {:>8} {:>11} {:>5} {:>9}  {}",
            safe_line(&r.release),
            r.runs,
            r.exited,
            r.crashed,
            r.abnormal,
            r.crash_free_percent
                .map(|p| format!("{p:.1}%"))
                .unwrap_or_else(|| "-".to_owned()),
            r.new_groups,
            r.regressed_groups,
            r.first_seen.map(time).unwrap_or_default(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
