//! `errsnap export` (and `purge --archive`): events into JSON, JSON Lines
//! or CSV files, one file per logger (and per day with `--by-day`, in the
//! `YYYY/MM/DD/<logger>.<ext>` layout), a new file every `max_per_file`
//! events.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use errsnap::db::{Database, EventFilter, ExportRow};

use crate::args::Format;

const CSV_HEADER: &[&str] = &[
    "id",
    "time",
    "ts",
    "logger",
    "level",
    "kind",
    "message",
    "error_type",
    "error_chain",
    "file",
    "line",
    "column",
    "thread",
    "thread_id",
    "pid",
    "app_name",
    "release",
    "environment",
    "group",
    "fingerprint",
    "tags",
    "extra",
    "breadcrumbs",
    "redactions",
    "cpu_percent",
    "rss_bytes",
    "host",
];

enum Writer {
    Json { w: BufWriter<File>, first: bool },
    Jsonl(BufWriter<File>),
    Csv(Box<csv::Writer<BufWriter<File>>>),
}

struct Sink {
    writer: Writer,
    count: u64,
    part: u32,
}

impl Format {
    fn ext(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn csv_record(r: &ExportRow) -> Vec<String> {
    vec![
        r.id.clone(),
        r.time.clone(),
        r.ts.to_string(),
        r.logger.clone(),
        r.level.clone(),
        r.kind.clone(),
        r.message.clone(),
        opt(&r.error_type),
        r.error_chain.to_string(),
        opt(&r.file),
        opt(&r.line),
        opt(&r.column),
        opt(&r.thread),
        r.thread_id.to_string(),
        r.pid.to_string(),
        opt(&r.app_name),
        opt(&r.release),
        opt(&r.environment),
        r.group.to_string(),
        r.fingerprint.clone(),
        r.tags.to_string(),
        r.extra.to_string(),
        r.breadcrumbs.to_string(),
        r.redactions.to_string(),
        opt(&r.cpu_percent),
        opt(&r.rss_bytes),
        opt(&r.host),
    ]
}

impl Writer {
    fn open(path: &Path, format: Format) -> Result<Writer> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let w = BufWriter::new(file);
        Ok(match format {
            Format::Json => Writer::Json { w, first: true },
            Format::Jsonl => Writer::Jsonl(w),
            Format::Csv => {
                let mut c = csv::Writer::from_writer(w);
                c.write_record(CSV_HEADER)?;
                Writer::Csv(Box::new(c))
            }
        })
    }

    fn write(&mut self, row: &ExportRow) -> Result<()> {
        match self {
            Writer::Json { w, first } => {
                w.write_all(if *first { b"[\n" } else { b",\n" })?;
                *first = false;
                serde_json::to_writer(&mut *w, row)?;
            }
            Writer::Jsonl(w) => {
                serde_json::to_writer(&mut *w, row)?;
                w.write_all(b"\n")?;
            }
            Writer::Csv(c) => c.write_record(csv_record(row))?,
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            Writer::Json { mut w, first } => {
                w.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
                w.into_inner()?.sync_all()?;
            }
            Writer::Jsonl(w) => w.into_inner()?.sync_all()?,
            Writer::Csv(c) => c.into_inner()?.into_inner()?.sync_all()?,
        }
        Ok(())
    }
}

/// What an export wrote.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Summary {
    pub(crate) events: u64,
    pub(crate) files: Vec<PathBuf>,
}

fn file_for(out: &Path, day: Option<&str>, logger: &str, part: u32, format: Format) -> PathBuf {
    let mut p = out.to_owned();
    if let Some(day) = day {
        for piece in day.split('-') {
            p.push(piece);
        }
    }
    let name = if part == 1 {
        format!("{logger}.{}", format.ext())
    } else {
        format!("{logger}-{part}.{}", format.ext())
    };
    p.push(name);
    p
}

pub(crate) fn export(
    db: &Database,
    filter: &EventFilter,
    format: Format,
    out: &Path,
    by_day: bool,
    max_per_file: u64,
) -> Result<Summary> {
    let total = db.count_events(filter)?;
    let bar = if std::io::stderr().is_terminal() && total > 1_000 {
        let b = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} exporting [{bar:40}] {pos}/{len} events ({eta} left)",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut sinks: HashMap<(Option<String>, String), Sink> = HashMap::new();
    let mut files = Vec::new();
    let mut events = 0;
    let max = max_per_file.max(1);
    db.for_each_export::<anyhow::Error>(filter, |row| {
        let day = by_day.then(|| row.time[..10].to_owned());
        let key = (day, row.logger.clone());
        if let Some(sink) = sinks.get_mut(&key) {
            if sink.count >= max {
                let part = sink.part + 1;
                let path = file_for(out, key.0.as_deref(), &key.1, part, format);
                let old = std::mem::replace(&mut sink.writer, Writer::open(&path, format)?);
                old.finish()?;
                files.push(path);
                sink.count = 0;
                sink.part = part;
            }
        } else {
            let path = file_for(out, key.0.as_deref(), &key.1, 1, format);
            let writer = Writer::open(&path, format)?;
            files.push(path);
            sinks.insert(
                key.clone(),
                Sink {
                    writer,
                    count: 0,
                    part: 1,
                },
            );
        }
        if let Some(sink) = sinks.get_mut(&key) {
            sink.writer.write(&row)?;
            sink.count += 1;
        }
        events += 1;
        bar.inc(1);
        Ok(())
    })?;
    for (_, sink) in sinks {
        sink.writer.finish()?;
    }
    bar.finish_and_clear();
    files.sort();
    Ok(Summary { events, files })
}
