//! Triage: `merge`, `unmerge`, `regroup` and `blame`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use errsnap::db::{Database, Repository};

use crate::args::{BlameArgs, Cli, MergeArgs, RegroupArgs, UnmergeArgs};
use crate::output::Out;
use crate::term::safe_line;
use crate::{open, settings};

/// `errsnap merge INTO GROUP...`: the groups join the first one, for good.
pub(crate) fn merge(cli: &Cli, a: &MergeArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let r = db.merge(a.into, &a.groups)?;
    if cli.json {
        out.json(&r)?;
    } else {
        let list: Vec<String> = r.groups.iter().map(i64::to_string).collect();
        writeln!(
            out.w,
            "merged group{} {} into group {}: {} events moved; their fingerprints' next events \
             go there too (undo with `errsnap unmerge GROUP`)",
            if list.len() == 1 { "" } else { "s" },
            list.join(", "),
            r.into,
            r.events
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `errsnap unmerge GROUP`: a merged group and its events apart again.
pub(crate) fn unmerge(cli: &Cli, a: &UnmergeArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let r = db.unmerge(a.group)?;
    if cli.json {
        out.json(&r)?;
    } else {
        writeln!(
            out.w,
            "group {} is apart again: {} events moved back from group {}",
            a.group, r.events, r.into
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `errsnap regroup [--dry-run]`: the stored events grouped again by the
/// settings file's `[[grouping]]` rules.
pub(crate) fn regroup(cli: &Cli, a: &RegroupArgs, out: &mut Out) -> Result<ExitCode> {
    let db = open(cli)?;
    let config = settings(cli)?;
    let r = db
        .regroup(&config, !a.dry_run)
        .context("regrouping (the rules of the settings file's [[grouping]] tables)")?;
    if cli.json {
        out.json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if r.applied { "moved" } else { "would move" };
    writeln!(
        out.w,
        "{} events read: {verb} {}; {} left where the code grouped them; {} a rule now \
         ignores (left as stored)",
        r.scanned, r.events, r.custom, r.ignored
    )?;
    for m in &r.moves {
        let to = match m.to {
            Some(g) => format!("group {g}"),
            None => "a new group".into(),
        };
        writeln!(
            out.w,
            "  {:>6}  group {} {:?} -> {to} (fingerprint {})",
            m.events,
            m.from,
            safe_line(&m.from_title),
            &m.fingerprint[..m.fingerprint.len().min(12)]
        )?;
    }
    if !r.emptied.is_empty() {
        let list: Vec<String> = r.emptied.iter().map(i64::to_string).collect();
        writeln!(
            out.w,
            "groups left without events, merged into the one that took most: {}",
            list.join(", ")
        )?;
    }
    if !r.applied && r.events > 0 {
        writeln!(out.w, "run `errsnap regroup` to move them")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The repository of `--repo` or `ERRSNAP_REPO_PATH`, with the path maps.
fn repository(cli: &Cli, a: &BlameArgs) -> Result<Repository> {
    let config = settings(cli)?;
    let root = match &a.repo {
        Some(r) => r.clone(),
        None => match config.get("ERRSNAP_REPO_PATH").filter(|p| !p.is_empty()) {
            Some(p) => p.into(),
            None => std::path::PathBuf::from("."),
        },
    };
    let mut repo = Repository::new(root);
    if let Some(map) = config.get("ERRSNAP_REPO_PATH_MAP") {
        repo = repo.map_paths(map)?;
    }
    for m in &a.path_map {
        repo = repo.map_paths(m).context("--path-map")?;
    }
    Ok(repo)
}

/// `errsnap blame GROUP`: the group's suspect commit.
pub(crate) fn blame(cli: &Cli, a: &BlameArgs, out: &mut Out) -> Result<ExitCode> {
    let db: Database = open(cli)?;
    let repo = repository(cli, a)?;
    let Some(s) = db.suspects(a.group, &repo)? else {
        bail!("no group {} in {}", a.group, crate::db_name(cli, &db));
    };
    if cli.json {
        out.json(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(c) = &s.commit {
        writeln!(out.w, "release commit {}", &c[..c.len().min(12)])?;
    }
    match &s.suspect {
        Some(c) => {
            let day = jiff::Timestamp::from_second(c.time)
                .map(|t| t.strftime("%Y-%m-%d").to_string())
                .unwrap_or_default();
            writeln!(
                out.w,
                "suspect commit {} by {} <{}>, {day}: {}",
                &c.id[..c.id.len().min(12)],
                safe_line(&c.author),
                safe_line(&c.email),
                safe_line(&c.summary)
            )?;
        }
        None => writeln!(out.w, "no suspect commit")?,
    }
    for l in &s.lines {
        writeln!(
            out.w,
            "  #{} {}:{}  {} {} ({})",
            l.frame,
            safe_line(&l.path),
            l.line,
            &l.commit.id[..l.commit.id.len().min(10)],
            safe_line(&l.commit.author),
            safe_line(&l.commit.summary)
        )?;
    }
    for n in &s.notes {
        writeln!(out.w, "  note: {}", safe_line(n))?;
    }
    Ok(ExitCode::SUCCESS)
}
