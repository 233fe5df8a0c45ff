//! Browsing: `groups`, `events`, `tail`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use errsnap::db::{GroupOrder, GroupQuery};

use crate::args::{Cli, EventsArgs, GroupSort, GroupsArgs, TailArgs};
use crate::output::{now_ms, one_line, sparkline, time, Out};
use crate::term::safe_line;
use crate::{filter, open};

/// `errsnap groups`: the groups of repeated errors.
pub(crate) fn groups(cli: &Cli, a: &GroupsArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let mut q = GroupQuery::default();
    q.order = match a.sort {
        GroupSort::Last => GroupOrder::LastSeen,
        GroupSort::Count => GroupOrder::Count,
    };
    q.logger = a.logger.clone();
    q.status = a.status;
    q.new_in = a.new_in.clone();
    q.merged_into = a.merged_into;
    q.limit = a.limit;
    let groups = db.groups(&q)?;
    let now = now_ms();
    let day_ago = now - 86_400_000;
    if cli.json {
        let mut rows = Vec::new();
        for g in &groups {
            let mut v = serde_json::to_value(g)?;
            v["last_24h"] = serde_json::to_value(db.histogram(g.id, day_ago, now, 24)?)?;
            rows.push(v);
        }
        out.json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out.w,
        "{:>5}  {:<5}  {:<9}  {:>7}  {:<19}  {:<19}  {:<12}  TITLE  (CULPRIT)",
        "ID", "LEVEL", "STATUS", "COUNT", "LAST SEEN", "FIRST SEEN", "LAST 24H"
    )?;
    for g in &groups {
        let spark = sparkline(&db.histogram(g.id, day_ago, now, 12)?);
        let level = out.level(g.level);
        // A group that came back after it was resolved says so.
        let status = if g.regressed_at.is_some() && g.status == errsnap::db::GroupStatus::Open {
            "regressed"
        } else {
            g.status.as_str()
        };
        let badge = match (&g.regressed_in, &g.first_release) {
            (Some(r), _) if status == "regressed" => format!("[regressed in {}] ", safe_line(r)),
            (_, Some(r)) => format!("[new in {}] ", safe_line(r)),
            _ => String::new(),
        };
        writeln!(
            out.w,
            "{:>5}  {level}  {:<9}  {:>7}  {}  {}  {spark}  {badge}{}  ({})",
            g.id,
            status,
            g.count,
            time(g.last_seen),
            time(g.first_seen),
            one_line(&g.title, 80),
            safe_line(g.culprit.as_deref().unwrap_or("-"))
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `errsnap events`: matching events, one line each.
pub(crate) fn events(cli: &Cli, a: &EventsArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let mut f = filter(&a.filters)?;
    f.limit = a.limit;
    f.newest_first = !a.oldest_first;
    let events = db.events(&f)?;
    if cli.json {
        out.json(&events)?;
        return Ok(ExitCode::SUCCESS);
    }
    for e in &events {
        print_event_line(out, e)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `errsnap tail`: follows new events (until interrupted).
pub(crate) fn tail(cli: &Cli, a: &TailArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let base = filter(&a.filters)?;
    let mut f = base.clone();
    f.limit = a.lines;
    f.newest_first = true;
    let mut first = db.events(&f)?;
    first.reverse();
    let mut last = db.last_row()?.unwrap_or(0);
    for e in &first {
        tail_line(out, e, cli.json)?;
    }
    out.w.flush()?;
    loop {
        std::thread::sleep(Duration::from_millis(a.interval_ms.max(50)));
        let mut f = base.clone();
        f.after_row = Some(last);
        for e in db.events(&f)? {
            last = last.max(e.row);
            tail_line(out, &e, cli.json)?;
        }
        last = last.max(db.last_row()?.unwrap_or(0));
        out.w.flush()?;
    }
}

pub(crate) fn location(e: &errsnap::db::EventRow) -> String {
    match (&e.file, e.line) {
        (Some(f), Some(l)) => format!("{}:{l}", safe_line(f)),
        (Some(f), None) => safe_line(f).into_owned(),
        _ => "-".into(),
    }
}

fn print_event_line(out: &mut Out, e: &errsnap::db::EventRow) -> Result<()> {
    let level = out.level(e.level);
    writeln!(
        out.w,
        "{}  {level}  {:<14}  {}  {}  {}",
        time(e.ts),
        one_line(&e.logger, 14),
        safe_line(&e.id),
        one_line(&e.message, 100),
        out.paint("2", &location(e))
    )?;
    Ok(())
}

fn tail_line(out: &mut Out, e: &errsnap::db::EventRow, json: bool) -> Result<()> {
    if json {
        serde_json::to_writer(&mut out.w, e)?;
        writeln!(out.w)?;
        Ok(())
    } else {
        print_event_line(out, e)
    }
}
