//! Keeping the database: `export`, `purge`, `resolve`, `symbolicate`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use errsnap::db::PurgeRule;

use crate::args::{self, Cli, ExportArgs, PurgeArgs, ResolveArgs, SymbolicateArgs};
use crate::output::{self, now_ms, Out};
use crate::term::safe_line;
use crate::{export as files, filter, open};

/// `errsnap export`: events into JSONL or CSV files.
pub(crate) fn export(cli: &Cli, a: &ExportArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let f = filter(&a.filters)?;
    let summary = files::export(&db, &f, a.format, &a.out, a.by_day, a.max_per_file)?;
    if cli.json {
        out.json(&summary)?;
    } else {
        writeln!(
            out.w,
            "exported {} events into {} files under {}",
            summary.events,
            summary.files.len(),
            a.out.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `errsnap purge`: retention, optionally archiving first.
pub(crate) fn purge(cli: &Cli, a: &PurgeArgs, out: &mut Out) -> Result<ExitCode> {
    let mut db = open(cli)?;
    let rule = match (&a.older_than, a.keep) {
        (Some(age), _) => {
            PurgeRule::OlderThan(now_ms() - output::duration_ms(age).context("--older-than")?)
        }
        (None, Some(n)) => PurgeRule::KeepNewest(n),
        (None, None) => bail!("give --older-than or --keep"),
    };
    let candidates = db.purge_candidates(rule)?.len();
    if a.dry_run {
        if cli.json {
            out.json(&serde_json::json!({"dry_run": true, "would_delete": candidates}))?;
        } else {
            writeln!(out.w, "would delete {candidates} events")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let archived = match &a.archive {
        Some(dir) => {
            let f = db.purge_bound(rule)?;
            let s = files::export(&db, &f, args::Format::Jsonl, dir, true, 250_000)
                .context("archiving before the purge (nothing was deleted)")?;
            Some(s)
        }
        None => None,
    };
    let report = db.purge(rule)?;
    if a.vacuum {
        db.vacuum()?;
    }
    if cli.json {
        out.json(&serde_json::json!({ "purge": report, "archive": archived }))?;
    } else {
        if let (Some(s), Some(dir)) = (&archived, &a.archive) {
            writeln!(out.w, "archived {} events into {}", s.events, dir.display())?;
        }
        writeln!(
            out.w,
            "deleted {} events ({} kept: first of their group or alert pending), {} snapshots, {} backtraces",
            report.events, report.kept, report.snapshots, report.backtraces
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `errsnap resolve`: sets a group's status.
pub(crate) fn resolve(cli: &Cli, a: &ResolveArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let group = match (a.group, &a.id) {
        (Some(g), _) => g,
        (None, Some(id)) => match db.group_of(id)? {
            Some(g) => g,
            None => bail!("no event {id:?} in {}", crate::db_name(cli, &db)),
        },
        (None, None) => bail!("give an event id or --group"),
    };
    if !db.set_group_status(group, a.status)? {
        bail!("no group {group} in {}", crate::db_name(cli, &db));
    }
    if cli.json {
        out.json(&serde_json::json!({"group": group, "status": a.status}))?;
    } else {
        writeln!(out.w, "group {group} is now {}", a.status.as_str())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `errsnap symbolicate`: names stored raw frames.
pub(crate) fn symbolicate(cli: &Cli, a: &SymbolicateArgs, out: &mut Out) -> Result<ExitCode> {
    let mut db = open(cli)?;
    let report = db.symbolicate(&a.binary)?;
    if cli.json {
        out.json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out.w,
        "{} of {} stacks with raw frames updated: {} frames resolved, {} still raw",
        report.stacks_updated, report.stacks, report.frames_resolved, report.frames_unresolved
    )?;
    for m in &report.missing {
        let id = m.build_id.as_deref().map_or("unknown".into(), safe_line);
        writeln!(out.w, "  needs {} (build-id {id})", safe_line(&m.module))?;
    }
    Ok(ExitCode::SUCCESS)
}
