//! `errsnap`: browse, export, retain and check an errsnap database.
//!
//! Install with `cargo install errsnap --features cli` (or, from a clone,
//! `cargo install --path . --features cli`); run `errsnap --help`.

mod args;
mod export;
mod output;
mod term;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use errsnap::{Database, EventFilter, GroupOrder, GroupQuery, PurgeRule};

use crate::args::{Cli, Command, Filters, GroupSort};
use crate::output::{bytes, now_ms, one_line, parse_time, sparkline, time, Out};
use crate::term::{safe, safe_line};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`errsnap events | head`) is not an error.
            if e.chain()
                .filter_map(|c| c.downcast_ref::<std::io::Error>())
                .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!("errsnap: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}

fn open(cli: &Cli) -> Result<Database> {
    if std::fs::symlink_metadata(&cli.db).is_err() {
        bail!(
            "no database at {}: run your program once (it creates the file), or point at one \
             with --db PATH or ERRSNAP_DB_PATH",
            cli.db.display()
        );
    }
    Database::open(&cli.db).with_context(|| format!("cannot open {}", cli.db.display()))
}

/// The settings: `--env-file`, else `./.env`, with the environment on top.
fn settings(cli: &Cli) -> Result<errsnap::Config> {
    Ok(match &cli.env_file {
        Some(p) => errsnap::Config::from_dotenv_path(p)?,
        None => errsnap::Config::from_env()?,
    })
}

fn filter(f: &Filters) -> Result<EventFilter> {
    let now = now_ms();
    let mut out = EventFilter::default();
    out.group = f.group;
    out.logger = f.logger.clone();
    out.min_level = f.level;
    out.since = f
        .since
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()
        .context("--since")?;
    out.until = f
        .until
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()
        .context("--until")?;
    out.grep = f.grep.clone();
    out.file = match &f.file {
        None => None,
        Some(spec) => match spec.rsplit_once(':') {
            Some((path, line)) if line.chars().all(|c| c.is_ascii_digit()) && !line.is_empty() => {
                Some((path.to_owned(), Some(line.parse().context("--file LINE")?)))
            }
            _ => Some((spec.clone(), None)),
        },
    };
    Ok(out)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let mut out = Out::new(cli.color);
    match &cli.command {
        Command::Groups(a) => {
            let db = open(&cli)?;
            let mut q = GroupQuery::default();
            q.order = match a.sort {
                GroupSort::Last => GroupOrder::LastSeen,
                GroupSort::Count => GroupOrder::Count,
            };
            q.logger = a.logger.clone();
            q.status = a.status;
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
                "{:>5}  {:<5}  {:<8}  {:>7}  {:<19}  {:<19}  {:<12}  TITLE  (CULPRIT)",
                "ID", "LEVEL", "STATUS", "COUNT", "LAST SEEN", "FIRST SEEN", "LAST 24H"
            )?;
            for g in &groups {
                let spark = sparkline(&db.histogram(g.id, day_ago, now, 12)?);
                let level = out.level(g.level);
                writeln!(
                    out.w,
                    "{:>5}  {level}  {:<8}  {:>7}  {}  {}  {spark}  {}  ({})",
                    g.id,
                    safe_line(&g.status),
                    g.count,
                    time(g.last_seen),
                    time(g.first_seen),
                    one_line(&g.title, 80),
                    safe_line(g.culprit.as_deref().unwrap_or("-"))
                )?;
            }
        }
        Command::Events(a) => {
            let db = open(&cli)?;
            let mut f = filter(&a.filters)?;
            f.limit = a.limit;
            f.newest_first = !a.oldest_first;
            let events = db.events(&f)?;
            if cli.json {
                out.json(&events)?;
                return Ok(ExitCode::SUCCESS);
            }
            for e in &events {
                print_event_line(&mut out, e)?;
            }
        }
        Command::Show(a) => {
            let db = open(&cli)?;
            let Some(mut d) = db.event(&a.id)? else {
                bail!("no event {:?} in {}", a.id, cli.db.display());
            };
            if let Some(bin) = &a.binary {
                resolve_frames(&mut d.frames, bin)?;
            }
            if cli.json {
                out.json(&d)?;
            } else {
                print_detail(&mut out, &d, a.all_frames)?;
            }
        }
        Command::Tail(a) => {
            let db = open(&cli)?;
            let base = filter(&a.filters)?;
            let mut f = base.clone();
            f.limit = a.lines;
            f.newest_first = true;
            let mut first = db.events(&f)?;
            first.reverse();
            let mut last = db.last_row()?.unwrap_or(0);
            for e in &first {
                tail_line(&mut out, e, cli.json)?;
            }
            out.w.flush()?;
            loop {
                std::thread::sleep(Duration::from_millis(a.interval_ms.max(50)));
                let mut f = base.clone();
                f.after_row = Some(last);
                for e in db.events(&f)? {
                    last = last.max(e.row);
                    tail_line(&mut out, &e, cli.json)?;
                }
                last = last.max(db.last_row()?.unwrap_or(0));
                out.w.flush()?;
            }
        }
        Command::Stats(a) => {
            let db = open(&cli)?;
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
            let section = |out: &mut Out,
                           title: &str,
                           m: &std::collections::BTreeMap<String, i64>|
             -> Result<()> {
                writeln!(out.w, "\n{title}")?;
                if m.is_empty() {
                    writeln!(out.w, "  (none)")?;
                }
                for (k, v) in m {
                    writeln!(out.w, "  {:<24} {v:>8}", safe_line(k))?;
                }
                Ok(())
            };
            section(&mut out, "by level", &s.by_level)?;
            section(&mut out, "by logger", &s.by_logger)?;
            section(&mut out, "by day (UTC)", &s.by_day)?;
            section(&mut out, "alerts", &s.alerts)?;
            section(&mut out, "counters (losses are never silent)", &s.counters)?;
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
        }
        Command::Export(a) => {
            let db = open(&cli)?;
            let f = filter(&a.filters)?;
            let summary = export::export(&db, &f, a.format, &a.out, a.by_day, a.max_per_file)?;
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
        }
        Command::Purge(a) => {
            let mut db = open(&cli)?;
            let rule = match (&a.older_than, a.keep) {
                (Some(age), _) => PurgeRule::OlderThan(
                    now_ms() - output::duration_ms(age).context("--older-than")?,
                ),
                (None, Some(n)) => PurgeRule::KeepNewest(n),
                (None, None) => bail!("give --older-than or --keep"),
            };
            let candidates = db.purge_candidates(rule)?.len();
            if a.dry_run {
                writeln!(out.w, "would delete {candidates} events")?;
                return Ok(ExitCode::SUCCESS);
            }
            let archived = match &a.archive {
                Some(dir) => {
                    let f = db.purge_bound(rule)?;
                    let s = export::export(&db, &f, args::Format::Jsonl, dir, true, 250_000)
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
        }
        Command::Resolve(a) => {
            let db = open(&cli)?;
            let group = match (a.group, &a.id) {
                (Some(g), _) => g,
                (None, Some(id)) => match db.group_of(id)? {
                    Some(g) => g,
                    None => bail!("no event {id:?} in {}", cli.db.display()),
                },
                (None, None) => bail!("give an event id or --group"),
            };
            if !db.set_group_status(group, a.status)? {
                bail!("no group {group} in {}", cli.db.display());
            }
            if cli.json {
                out.json(&serde_json::json!({"group": group, "status": a.status}))?;
            } else {
                writeln!(out.w, "group {group} is now {}", a.status.as_str())?;
            }
        }
        Command::Check => {
            let r = Database::check_path(&cli.db);
            let warnings = match settings(&cli) {
                Ok(c) => c.warnings().to_vec(),
                Err(e) => vec![format!("the settings cannot be read: {e}")],
            };
            if cli.json {
                out.json(&r)?;
            } else {
                let w = &mut out.w;
                if !r.integrity.is_empty() {
                    writeln!(w, "integrity:      {}", safe_line(&r.integrity.join("; ")))?;
                }
                writeln!(
                    w,
                    "schema version: {} (this errsnap: {})",
                    r.schema_version.map_or("?".to_owned(), |v| v.to_string()),
                    r.supported_version
                )?;
                writeln!(
                    w,
                    "alerts:         {} pending, {} failed",
                    r.pending_alerts, r.failed_alerts
                )?;
                writeln!(
                    w,
                    "spool:          {} files, {} events waiting to be imported",
                    r.spool_files, r.spool_events
                )?;
                for warning in r.warnings.iter().chain(&warnings) {
                    writeln!(w, "warning: {}", safe_line(warning))?;
                }
                for problem in &r.problems {
                    writeln!(w, "problem: {}", safe_line(problem))?;
                }
                writeln!(
                    w,
                    "{}",
                    if r.healthy() {
                        "healthy"
                    } else {
                        "NOT healthy"
                    }
                )?;
            }
            return Ok(if r.healthy() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            });
        }
        Command::TestAlert => {
            let config = settings(&cli)?;
            for warning in config.warnings() {
                writeln!(out.w, "warning: {}", safe_line(warning))?;
            }
            let results = config.send_test_alert()?;
            if results.is_empty() {
                writeln!(out.w, "no alert channel is configured (see .env.example)")?;
                return Ok(ExitCode::from(1));
            }
            let mut failed = false;
            for (channel, r) in &results {
                match r {
                    Ok(()) => writeln!(out.w, "{}: delivered", safe_line(channel))?,
                    Err(e) => {
                        failed = true;
                        writeln!(
                            out.w,
                            "{}: FAILED: {}",
                            safe_line(channel),
                            safe_line(&e.to_string())
                        )?;
                    }
                }
            }
            return Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
        Command::Host => {
            let db = open(&cli)?;
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
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn location(e: &errsnap::EventRow) -> String {
    match (&e.file, e.line) {
        (Some(f), Some(l)) => format!("{}:{l}", safe_line(f)),
        (Some(f), None) => safe_line(f).into_owned(),
        _ => "-".into(),
    }
}

fn print_event_line(out: &mut Out, e: &errsnap::EventRow) -> Result<()> {
    let level = out.level(e.level);
    writeln!(
        out.w,
        "{}  {level}  {:<14}  {}  {}  {}",
        time(e.ts),
        one_line(&e.logger, 14),
        e.id,
        one_line(&e.message, 100),
        out.paint("2", &location(e))
    )?;
    Ok(())
}

fn tail_line(out: &mut Out, e: &errsnap::EventRow, json: bool) -> Result<()> {
    if json {
        serde_json::to_writer(&mut out.w, e)?;
        writeln!(out.w)?;
        Ok(())
    } else {
        print_event_line(out, e)
    }
}

fn print_detail(out: &mut Out, d: &errsnap::EventDetail, all_frames: bool) -> Result<()> {
    let e = &d.row;
    let level = out.level(e.level);
    let w = &mut out.w;
    writeln!(w, "event   {}", e.id)?;
    writeln!(w, "time    {} UTC", time(e.ts))?;
    writeln!(w, "level   {level} ({})", safe_line(&e.kind))?;
    writeln!(w, "logger  {}", safe_line(&e.logger))?;
    writeln!(
        w,
        "group   {} ({} occurrences, {}): {}",
        e.group,
        d.group_count,
        safe_line(&d.group_status),
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
    if let Some(s) = &d.snapshot {
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
    if let Some(h) = &d.host {
        writeln!(
            w,
            "    name: {}",
            safe_line(h.hostname.as_deref().unwrap_or("?"))
        )?;
    }
    if !d.alerts.is_empty() {
        writeln!(w, "\nalerts")?;
        for a in &d.alerts {
            writeln!(
                w,
                "  {:<8} {:<10} {:<8} after {} attempt(s){}",
                safe_line(&a.channel),
                safe_line(&a.kind),
                safe_line(&a.status),
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

/// Resolves frames stored without symbols against `binary`, using their
/// module offsets (stable across runs of the same build).
fn resolve_frames(frames: &mut Vec<errsnap::Frame>, binary: &std::path::Path) -> Result<()> {
    let loader = addr2line::Loader::new(binary)
        .map_err(|e| anyhow::anyhow!("reading symbols of {}: {e}", binary.display()))?;
    let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut out = Vec::with_capacity(frames.len());
    for (i, f) in frames.drain(..).enumerate() {
        let ours = f
            .module
            .as_deref()
            .is_none_or(|m| m.rsplit('/').next() == Some(name));
        let (Some(offset), None, true) = (f.module_offset, &f.function, ours) else {
            out.push(f);
            continue;
        };
        let probe = if i == 0 {
            offset
        } else {
            offset.saturating_sub(1)
        };
        let mut found = Vec::new();
        if let Ok(mut iter) = loader.find_frames(probe) {
            while let Ok(Some(fr)) = iter.next() {
                let function = fr
                    .function
                    .as_ref()
                    .and_then(|n| n.demangle().ok())
                    .map(|n| strip_hash(&n));
                let (file, line, column) = fr
                    .location
                    .map(|l| (l.file.map(str::to_owned), l.line, l.column))
                    .unwrap_or((None, None, None));
                let mut g = f.clone();
                g.function = function;
                g.file = file;
                g.line = line;
                g.column = column;
                found.push(g);
            }
        }
        if found.is_empty() {
            if let Some(sym) = loader.find_symbol(probe) {
                let mut g = f.clone();
                g.function = Some(strip_hash(&addr2line::demangle_auto(sym.into(), None)));
                found.push(g);
            }
        }
        if found.is_empty() {
            out.push(f);
        } else {
            out.extend(found);
        }
    }
    *frames = out;
    Ok(())
}

/// `foo::bar::h0123456789abcdef` -> `foo::bar`.
fn strip_hash(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            head.to_owned()
        }
        _ => name.to_owned(),
    }
}
