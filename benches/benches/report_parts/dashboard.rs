//! `dashboard`: `errsnap serve` on 1,000,000 events in 10,000 groups
//! (issue #19 (5)), written through the writer's batch path
//! (`errsnap::fuzzing::write_history`: rows, summaries and search texts as
//! the writer writes them; times spread over 14 days). The release CLI
//! serves the file on loopback; each page is asked for `REPEAT` times and
//! its server time read from `Server-Timing` (median and p95). In the same
//! run, the peer: what the pages would cost without the summaries
//! (sparklines from the events by `Database::histogram`, search by `LIKE`
//! over the messages), as ratios. And the bytes: the summaries' share per
//! event (the file with and without them, both vacuumed), and a storm's
//! bytes per repeated occurrence with search on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use serde_json::{json, Value};

const REPEAT: usize = 30;
const DAY: i64 = 86_400_000;

fn release_cli() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let ok = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "--features",
            "cli,mysql",
            "--bin",
            "errsnap",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo build")
        .success();
    assert!(ok, "building the errsnap CLI failed");
    target.join("release/errsnap")
}

struct Serve {
    child: Child,
    addr: String,
    cookie: String,
}

impl Serve {
    fn start(cli: &Path, db: &Path) -> Serve {
        Serve::start_with(cli, db, &[])
    }

    fn start_with(cli: &Path, db: &Path, env: &[(&str, &str)]) -> Serve {
        let mut child = Command::new(cli)
            .arg("--db")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("errsnap serve");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut url = String::new();
        while !url.contains("token=") {
            url.clear();
            let n = out.read_line(&mut url).expect("the URL");
            assert!(n > 0, "errsnap serve ended before saying its URL");
        }
        let rest = url.trim().trim_start_matches("http://").to_owned();
        let (addr, token) = rest.split_once("/?token=").expect("a URL");
        let mut s = Serve {
            child,
            addr: addr.to_owned(),
            cookie: String::new(),
        };
        let (_, headers, _) = s.get(&format!("/?token={token}"));
        let set = headers
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: "))
            .expect("a cookie");
        s.cookie = set.split(';').next().expect("a cookie").to_owned();
        s
    }

    /// Status, headers (lowercase names), body.
    fn get(&self, path: &str) -> (u16, String, String) {
        let mut c = TcpStream::connect(&self.addr).expect("connect");
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nConnection: close\r\n\r\n",
            self.addr, self.cookie
        )
        .expect("write");
        let mut raw = String::new();
        c.read_to_string(&mut raw).expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: String = head
            .lines()
            .skip(1)
            .map(|l| match l.split_once(':') {
                Some((k, v)) => format!("{}: {}\n", k.to_ascii_lowercase(), v.trim()),
                None => String::new(),
            })
            .collect();
        (status, headers, body.to_owned())
    }

    /// The server time of `path` (ms), `REPEAT` times: median and p95, and
    /// the page's size.
    fn time(&self, path: &str) -> Value {
        let mut ms = Vec::with_capacity(REPEAT);
        let mut bytes = 0;
        for _ in 0..REPEAT {
            let (status, headers, body) = self.get(path);
            assert_eq!(status, 200, "{path}: {body}");
            bytes = body.len();
            let dur = headers
                .lines()
                .find_map(|l| l.strip_prefix("server-timing: render;dur="))
                .and_then(|v| v.parse::<f64>().ok())
                .expect("Server-Timing");
            ms.push(dur);
        }
        ms.sort_by(f64::total_cmp);
        json!({
            "path": path,
            "median_ms": ms[ms.len() / 2],
            "p95_ms": ms[(ms.len() * 95 / 100).min(ms.len() - 1)],
            "bytes": bytes,
        })
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The file's size after VACUUM, with and without the summaries.
fn summary_bytes(db: &Path, dir: &Path) -> (u64, u64) {
    let with = dir.join("with.db");
    let without = dir.join("without.db");
    let _ = std::fs::remove_file(&with);
    let _ = std::fs::remove_file(&without);
    let c = rusqlite::Connection::open(db).expect("open");
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    c.execute("VACUUM INTO ?1", [with.to_str().expect("path")])
        .expect("vacuum");
    c.execute("VACUUM INTO ?1", [without.to_str().expect("path")])
        .expect("vacuum");
    let w = rusqlite::Connection::open(&without).expect("open");
    w.execute_batch(
        "DROP TABLE group_texts_fts; DROP TABLE group_texts; DROP TABLE group_values;
         DROP TABLE group_hours; VACUUM;",
    )
    .expect("drop the summaries");
    (size(&with), size(&without))
}

/// Sparklines (24 hourly and 14 daily buckets) of the 50 most frequent
/// groups, drawn from the summaries (`Database::hourly`, what the page
/// reads) and from the events themselves (`Database::histogram`, what a
/// dashboard without summaries would read); median ms of each.
fn sparklines(db: &Path) -> (f64, f64) {
    let d = errsnap::db::Database::open(db).expect("open");
    let mut q = errsnap::db::GroupQuery::default();
    q.order = errsnap::db::GroupOrder::Count;
    q.limit = 50;
    let ids: Vec<i64> = d.groups(&q).expect("groups").iter().map(|g| g.id).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_millis() as i64)
        .unwrap_or(0);
    let median = |f: &dyn Fn()| {
        let mut times: Vec<f64> = (0..7)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let summaries = median(&|| {
        d.hourly(Some(&ids), now - 14 * DAY, now).expect("hourly");
    });
    let events = median(&|| {
        for &g in &ids {
            d.histogram(g, now - DAY, now, 24).expect("histogram");
            d.histogram(g, now - 14 * DAY, now, 14).expect("histogram");
        }
    });
    (summaries, events)
}

/// Groups whose message holds `word`, by `LIKE` over the events; ms.
fn search_by_like(db: &Path, word: &str) -> f64 {
    let c = rusqlite::Connection::open(db).expect("open");
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM (SELECT DISTINCT group_id FROM events
                 WHERE message LIKE '%' || ?1 || '%' OR error_chain LIKE '%' || ?1 || '%' LIMIT 50)",
                [word],
                |r| r.get(0),
            )
            .expect("like");
        assert!(n > 0);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 10.0).round() / 10.0
    } else {
        0.0
    }
}

pub(crate) fn dashboard(quick: bool) -> Value {
    let (n, groups) = if quick {
        (100_000, 1_000)
    } else {
        (1_000_000, 10_000)
    };
    let cli = release_cli();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("LOGS.db");
    eprintln!("  writing {n} events in {groups} groups through the writer's batch path ...");
    let t = Instant::now();
    let written = errsnap::fuzzing::write_history(&db, n, groups, 14 * DAY);
    let write_s = t.elapsed().as_secs_f64();
    assert_eq!(written, n);
    let (with, without) = summary_bytes(&db, dir.path());
    // A storm: one error repeated, each occurrence naming another id.
    let storm_db = dir.path().join("storm.db");
    errsnap::fuzzing::write_history(&storm_db, 10_000, 1, DAY);
    let before = summary_bytes(&storm_db, dir.path()).0;
    errsnap::fuzzing::write_history(&storm_db, 100_000, 1, DAY);
    let after = summary_bytes(&storm_db, dir.path()).0;
    let serve = Serve::start(&cli, &db);
    let (_, _, by_count) = serve.get("/?sort=count");
    let big = first_group(&by_count);
    let (_, _, by_last) = serve.get("/?sort=first");
    let small = first_group(&by_last);
    eprintln!("  pages ...");
    let pages = json!({
        "groups": serve.time("/"),
        "groups_filtered": serve.time("/?level=fatal&release=1.0.0&environment=staging&range=7d&sort=count"),
        "groups_page_20": serve.time("/?page=20"),
        "group_biggest": serve.time(&format!("/groups/{big}")),
        "group_small": serve.time(&format!("/groups/{small}")),
        "search_word": serve.time("/search?q=gateway+jhgg"),
        "search_prefix": serve.time("/search?q=step+hh"),
        "search_common": serve.time("/search?q=payment"),
        "stats": serve.time("/stats"),
    });
    drop(serve);
    let (spark_summaries, spark_events) = sparklines(&db);
    let like = search_by_like(&db, "jhgg");
    let search_ms = pages["search_word"]["median_ms"].as_f64().unwrap_or(0.0);
    json!({
        "events": n,
        "groups": groups,
        "write_seconds": (write_s * 10.0).round() / 10.0,
        "write_events_per_second": (n as f64 / write_s).round(),
        "file_bytes": with,
        "bytes_per_event": with / n,
        "summary_bytes_per_event": (with.saturating_sub(without)) as f64 / n as f64,
        "storm_bytes_per_repeated_occurrence": after.saturating_sub(before) as f64 / 100_000.0,
        "pages": pages,
        "sparklines_50_biggest_from_summaries_ms": spark_summaries,
        "peer_sparklines_50_biggest_from_events_ms": spark_events,
        "sparklines_events_over_summaries": ratio(spark_events, spark_summaries),
        "peer_search_by_like_ms": like,
        "search_like_over_fts": ratio(like, search_ms),
    })
}

/// The same pages on MySQL / MariaDB (`dashboard_mysql`): the events
/// written through the MySQL store's batch path into a local MariaDB the
/// report starts, `errsnap serve --db mysql://...` timed as above.
pub(crate) fn dashboard_mysql(quick: bool) -> Value {
    let Some(m) = super::fleet::mariadb_server::Maria::start("bench dashboard mysql", None) else {
        return json!({"skipped": "no MariaDB server binaries"});
    };
    let (n, groups) = if quick {
        (100_000, 1_000)
    } else {
        (1_000_000, 10_000)
    };
    let cli = release_cli();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = m.url("?ssl-mode=DISABLED");
    eprintln!("  writing {n} events in {groups} groups into MariaDB ...");
    let t = Instant::now();
    let written =
        errsnap::fuzzing::write_history_url(&url, &dir.path().join("LOGS.db"), n, groups, 14 * DAY);
    let write_s = t.elapsed().as_secs_f64();
    assert_eq!(written, n);
    // `serve` refuses a password in `--db`: it comes from the environment.
    let plain = url.replace(
        &format!(":{}@", super::fleet::mariadb_server::PASSWORD),
        "@",
    );
    let serve = Serve::start_with(
        &cli,
        Path::new(&plain),
        &[(
            "ERRSNAP_DATABASE_PASSWORD",
            super::fleet::mariadb_server::PASSWORD,
        )],
    );
    let (_, _, by_count) = serve.get("/?sort=count");
    let big = first_group(&by_count);
    let (_, _, by_last) = serve.get("/?sort=first");
    let small = first_group(&by_last);
    eprintln!("  pages ...");
    let pages = json!({
        "groups": serve.time("/"),
        "groups_filtered": serve.time("/?level=fatal&release=1.0.0&environment=staging&range=7d&sort=count"),
        "groups_page_20": serve.time("/?page=20"),
        "group_biggest": serve.time(&format!("/groups/{big}")),
        "group_small": serve.time(&format!("/groups/{small}")),
        "search_word": serve.time("/search?q=gateway+jhgg"),
        "search_prefix": serve.time("/search?q=step+hhg"),
        "search_common": serve.time("/search?q=payment"),
        "stats": serve.time("/stats"),
    });
    json!({
        "events": n,
        "groups": groups,
        "write_seconds": (write_s * 10.0).round() / 10.0,
        "write_events_per_second": (n as f64 / write_s).round(),
        "pages": pages,
    })
}

fn first_group(html: &str) -> i64 {
    let at = html.find("data-group=\"").expect("a group row") + 12;
    html[at..]
        .split('"')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("an id")
}
