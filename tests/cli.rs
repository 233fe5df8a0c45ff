//! The `errsnap` command (#6), against databases built by the library in
//! the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use errsnap::{EventLogger, Level};

use crate::util::{self, count, open};

const T: Duration = Duration::from_secs(20);

pub(crate) fn errsnap(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("ERRSNAP_DB_PATH")
        .output()
        .unwrap()
}

pub(crate) fn ok(db: &Path, args: &[&str]) -> String {
    let out = errsnap(db, args);
    assert!(
        out.status.success(),
        "errsnap {args:?}: {}",
        util::describe(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn json(db: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(db, &a)).unwrap()
}

#[inline(never)]
fn checkout(logger: &EventLogger, n: u32) {
    logger.error(format!("payment declined for order {n}"));
}

#[inline(never)]
fn search(logger: &EventLogger) {
    logger.warn("search index is stale");
}

/// A database with two loggers, three groups, eleven events.
fn sample_db() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = util::temp_db();
    let shop = util::builder(&path, "shop")
        .app_name("shop")
        .build()
        .unwrap();
    let web = util::builder(&path, "web").build().unwrap();
    for n in 0..5 {
        checkout(&shop, n);
    }
    for _ in 0..3 {
        search(&web);
    }
    shop.event(
        Level::Fatal,
        "database \"primary\" unreachable, retrying\nsecond line",
    )
    .tag("region", "eu-1")
    .extra("attempt", 3)
    .emit();
    web.add_breadcrumb(Level::Info, "http", "GET /search?q=shoes 200");
    web.error("renderer crashed");
    web.error("renderer crashed");
    assert!(shop.flush(T) && web.flush(T));
    (dir, path)
}

#[test]
fn groups_lists_by_recency_and_by_count() {
    let (_d, path) = sample_db();
    let groups = json(&path, &["groups"]);
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 4);
    assert_eq!(groups[0]["title"], "renderer crashed");
    assert_eq!(groups[0]["last_24h"].as_array().unwrap().len(), 24);
    assert_eq!(
        groups[0]["last_24h"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        2
    );
    let by_count = json(&path, &["groups", "--sort", "count"]);
    assert_eq!(by_count[0]["count"], 5);
    assert_eq!(by_count[0]["culprit"], "integration::cli::checkout");
    assert_eq!(
        json(&path, &["groups", "--logger", "web"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let text = ok(&path, &["groups"]);
    assert!(text.lines().next().unwrap().contains("LAST 24H"), "{text}");
    assert!(text.contains("█"), "a sparkline: {text}");
}

#[test]
fn events_filter_by_cause_position_and_time() {
    let (_d, path) = sample_db();
    let all = json(&path, &["events"]);
    assert_eq!(all.as_array().unwrap().len(), 11);
    let n = |args: &[&str]| json(&path, args).as_array().unwrap().len();
    let group = json(&path, &["groups", "--sort", "count"])[0]["id"].to_string();
    assert_eq!(n(&["events", "--group", &group]), 5);
    assert_eq!(n(&["events", "--logger", "web"]), 5);
    assert_eq!(n(&["events", "--level", "error"]), 8);
    assert_eq!(n(&["events", "--grep", "RENDERER"]), 2);
    assert_eq!(n(&["events", "--since", "1h"]), 11);
    assert_eq!(n(&["events", "--until", "1h"]), 0);
    assert_eq!(
        n(&[
            "events",
            "--since",
            "2000-01-01",
            "--until",
            "2999-01-01T00:00:00Z"
        ]),
        11
    );
    assert_eq!(n(&["events", "--file", "tests/cli.rs"]), 11);
    let line = json(&path, &["events", "--grep", "search index"])[0]["line"].to_string();
    assert_eq!(n(&["events", "--file", &format!("cli.rs:{line}")]), 3);
    assert_eq!(n(&["events", "--limit", "3"]), 3);
    // Newest first by default, oldest first on request.
    let newest = json(&path, &["events", "--limit", "1"]);
    let oldest = json(&path, &["events", "--limit", "1", "--oldest-first"]);
    assert_eq!(newest[0]["message"], "renderer crashed");
    assert_eq!(oldest[0]["message"], "payment declined for order 0");
    let bad = errsnap(&path, &["events", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--since"),
        "{}",
        util::describe(&bad)
    );
}

#[test]
fn show_prints_one_event_in_full() {
    let (_d, path) = sample_db();
    let id = json(&path, &["events", "--grep", "primary"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail = json(&path, &["show", &id]);
    assert_eq!(detail["tags"]["region"], "eu-1");
    assert_eq!(detail["extra"]["attempt"], 3);
    assert!(detail["snapshot"]["process"]["rss_bytes"].as_u64().unwrap() > 0);
    assert!(detail["host"]["cpu_count"].as_u64().unwrap() > 0);
    assert!(detail["frames"].as_array().unwrap().len() > 2);
    // Ids are case-insensitive; a prefix must be unique (ids made in one
    // process in the same millisecond share all but their last characters).
    assert_eq!(json(&path, &["show", &id.to_lowercase()])["id"], id);
    let prefix = errsnap(&path, &["show", &id[..18]]);
    assert_eq!(prefix.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&prefix.stderr).contains("matches several events"));

    let text = ok(&path, &["show", &id]);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"[0-9A-HJKMNP-TV-Z]{26}", "[EVENT-ID]");
    settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[TIME]");
    settings.add_filter(r"(?m)^(    [a-z ]+:) .*$", "$1 [..]");
    settings.add_filter(r"\(id \d+\), pid \d+", "(id [TID]), pid [PID]");
    settings.add_filter(r"group   \d+ ", "group   [G] ");
    settings.add_filter(r"\.rs:\d+", ".rs:[LINE]");
    settings.add_filter(
        r"backtrace \(\d+ of \d+ frames",
        "backtrace ([N] of [M] frames",
    );
    settings.add_filter(r"(?m)^ +\d+: ", "  [I]: ");
    settings.add_filter(r"at /\S*/tests/", "at [REPO]/tests/");
    settings.bind(|| insta::assert_snapshot!("show_fatal_event", text));
}

#[test]
fn stats_counts_levels_loggers_days_and_losses() {
    let (_d, path) = sample_db();
    let s = json(&path, &["stats"]);
    assert_eq!(s["events"], 11);
    assert_eq!(s["groups"], 4);
    assert_eq!(s["by_level"]["error"], 7);
    assert_eq!(s["by_level"]["warn"], 3);
    assert_eq!(s["by_level"]["fatal"], 1);
    assert_eq!(s["by_logger"]["shop"], 6);
    assert_eq!(
        s["by_day"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_i64().unwrap())
            .sum::<i64>(),
        11
    );
    assert_eq!(s["top_groups"][0]["count"], 5);
    assert!(s["file_bytes"].as_u64().unwrap() > 0);
    assert!(ok(&path, &["stats"]).contains("counters (losses are never silent)"));
}

/// Moves events to other days, to test day partitions.
fn backdate(path: &Path, message_like: &str, days: i64) {
    open(path)
        .execute(
            &format!(
                "UPDATE events SET ts = ts - {} WHERE message LIKE '{message_like}'",
                days * 86_400_000
            ),
            [],
        )
        .unwrap();
}

#[test]
fn export_by_day_in_json_jsonl_and_csv() {
    let (dir, path) = sample_db();
    backdate(&path, "payment declined%", 3);
    let out = dir.path().join("export");
    let summary = json(
        &path,
        &[
            "export",
            "--format",
            "jsonl",
            "--by-day",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(summary["events"], 11);
    // Every file sits in the folder of its events' day, named by logger.
    let files: Vec<PathBuf> = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f.as_str().unwrap()))
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    let mut sizes = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for r in &rows {
            let day = &r["time"].as_str().unwrap()[..10];
            let expected = out
                .join(day.replace('-', "/"))
                .join(format!("{}.jsonl", r["logger"].as_str().unwrap()));
            assert_eq!(f, &expected);
        }
        sizes.push((rows[0]["logger"].as_str().unwrap().to_owned(), rows.len()));
        if rows.len() == 5 && rows[0]["logger"] == "shop" {
            assert_eq!(rows[0]["message"], "payment declined for order 0");
            assert_eq!(rows[0]["level"], "error");
        }
    }
    sizes.sort();
    assert_eq!(
        sizes,
        [
            ("shop".to_owned(), 1),
            ("shop".to_owned(), 5),
            ("web".to_owned(), 5)
        ]
    );

    // JSON: one array per file.
    let jdir = dir.path().join("json");
    ok(
        &path,
        &[
            "export",
            "--format",
            "json",
            "--out",
            jdir.to_str().unwrap(),
        ],
    );
    let arr: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(jdir.join("shop.json")).unwrap()).unwrap();
    assert_eq!(arr.len(), 6);

    // CSV: a header, proper quoting (quotes, commas, newlines), read back.
    let cdir = dir.path().join("csv");
    ok(
        &path,
        &[
            "export",
            "--format",
            "csv",
            "--out",
            cdir.to_str().unwrap(),
            "--logger",
            "shop",
        ],
    );
    let mut reader = csv::Reader::from_path(cdir.join("shop.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    let msg_col = headers.iter().position(|h| h == "message").unwrap();
    let tags_col = headers.iter().position(|h| h == "tags").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6);
    let fatal = rows
        .iter()
        .find(|r| r[msg_col].contains("primary"))
        .unwrap();
    assert_eq!(
        &fatal[msg_col],
        "database \"primary\" unreachable, retrying\nsecond line"
    );
    assert_eq!(&fatal[tags_col], "{\"region\":\"eu-1\"}");

    // A new file after --max-per-file events.
    let sdir = dir.path().join("split");
    ok(
        &path,
        &[
            "export",
            "--out",
            sdir.to_str().unwrap(),
            "--logger",
            "web",
            "--max-per-file",
            "2",
        ],
    );
    let mut names: Vec<String> = std::fs::read_dir(&sdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["web-2.jsonl", "web-3.jsonl", "web.jsonl"]);
}

#[test]
fn purge_keeps_first_events_and_pending_alerts_and_archives() {
    let (dir, path) = sample_db();
    backdate(&path, "payment declined%", 40);
    backdate(&path, "search index%", 40);
    // A pending alert on one old event: it must stay.
    {
        let db = open(&path);
        db.execute(
            "INSERT INTO outbox (event_uid, group_id, channel, kind, status, created_at, next_attempt)
             SELECT uid, group_id, 'slack', 'new', 'pending', 0, 0 FROM events
             WHERE message = 'payment declined for order 3'",
            [],
        )
        .unwrap();
    }
    let dry = ok(&path, &["purge", "--older-than", "30d", "--dry-run"]);
    assert!(dry.contains("would delete 5 events"), "{dry}");
    let archive = dir.path().join("archive");
    let r = json(
        &path,
        &[
            "purge",
            "--older-than",
            "30d",
            "--archive",
            archive.to_str().unwrap(),
            "--vacuum",
        ],
    );
    assert_eq!(r["purge"]["events"], 5);
    assert_eq!(r["purge"]["kept"], 3);
    // The archive holds every matching event.
    assert_eq!(r["archive"]["events"], 8);
    let db = open(&path);
    let left: Vec<String> = db
        .prepare("SELECT message FROM events WHERE ts < strftime('%s','now') * 1000 - 86400000 * 30 ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        left,
        [
            "payment declined for order 0",
            "payment declined for order 3",
            "search index is stale"
        ]
    );
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 6);
    // Groups and their counts stay.
    assert_eq!(count(&db, "SELECT sum(count) FROM event_groups"), 11);
    // --keep: the newest N (and the protected ones).
    let r = json(&path, &["purge", "--keep", "2"]);
    assert_eq!(
        r["purge"]["events"].as_u64().unwrap() + r["purge"]["kept"].as_u64().unwrap(),
        4
    );
    assert!(
        errsnap(&path, &["purge"]).status.code() == Some(2),
        "a rule is required"
    );
}

#[test]
fn resolve_mutes_and_reopens_groups() {
    let (_d, path) = sample_db();
    let id = json(&path, &["events", "--grep", "renderer"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = json(&path, &["resolve", &id]);
    assert_eq!(r["status"], "resolved");
    let group = r["group"].to_string();
    let groups = json(&path, &["groups", "--status", "resolved"]);
    assert_eq!(groups.as_array().unwrap().len(), 1);
    ok(&path, &["resolve", "--group", &group, "--status", "muted"]);
    assert_eq!(
        json(&path, &["groups", "--status", "muted"])[0]["id"].to_string(),
        group
    );
    let missing = errsnap(&path, &["resolve", "--group", "999"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no group 999"));
    // A resolved group that happens again reopens (a regression).
    ok(&path, &["resolve", &id]);
    let web = util::logger(&path, "web");
    web.error("renderer crashed");
    assert!(web.flush(T));
    assert_eq!(
        json(&path, &["groups", "--logger", "web"])[0]["status"],
        "open"
    );
}

#[test]
fn check_reports_integrity_schema_alerts_and_the_spool() {
    let (_d, path) = sample_db();
    let r = json(&path, &["check"]);
    assert_eq!(r["integrity"][0], "ok");
    assert_eq!(r["schema_version"], util::SCHEMA);
    assert_eq!(r["spool_files"], 0);
    // A spool left by a process that is gone.
    let spool = path.with_file_name("LOGS.db.spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(spool.join("spool-999999.jsonl"), "{}\n{}\n").unwrap();
    let out = errsnap(&path, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 files, 2 events") && text.contains("NOT healthy"),
        "{text}"
    );
    assert!(
        text.contains("problem: 2 events in 1 spool files wait to be imported"),
        "{text}"
    );
}

#[test]
fn host_and_missing_database() {
    let (_d, path) = sample_db();
    let hosts = json(&path, &["host"]);
    assert!(hosts[0]["host"]["total_memory"].as_u64().unwrap() > 0);
    assert!(ok(&path, &["host"]).contains("memory:"));
    let out = errsnap(&path.with_file_name("nope.db"), &["groups"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope.db"),
        "{}",
        util::describe(&out)
    );
}

#[test]
fn test_alert_uses_the_env_file_of_the_working_directory() {
    let stub = crate::servers::HttpStub::start();
    let (dir, path) = sample_db();
    std::fs::write(
        dir.path().join(".env"),
        format!("ERRSNAP_SLACK_WEBHOOK_URL={}\n", stub.url()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .current_dir(dir.path())
        .arg("--db")
        .arg(&path)
        .arg("test-alert")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("slack: delivered"));
    assert!(stub.requests()[0].body.contains("test alert"));
    // Without a channel: said so, exit 1.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .current_dir(empty.path())
        .arg("test-alert")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn tail_follows_new_events() {
    let (_d, path) = sample_db();
    let mut child = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .arg("--db")
        .arg(&path)
        .args(["tail", "-n", "1", "--interval-ms", "50", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["message"], "renderer crashed");
    let logger = util::logger(&path, "web");
    logger.error("a new failure while tailing");
    assert!(logger.flush(T));
    let next: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(next["message"], "a new failure while tailing");
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "many");
    for i in 0..3000 {
        logger.warn(format!(
            "event number {i} with some text to fill the pipe buffer quickly"
        ));
    }
    assert!(logger.flush(T));
    let mut child = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .arg("--db")
        .arg(&path)
        .args(["events", "--limit", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    assert!(lines.next().is_some());
    drop(lines); // the reader goes away, like `| head -1`
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
}

#[test]
fn show_resolves_stored_addresses_against_the_binary() {
    let (_d, path) = sample_db();
    let id = json(&path, &["events", "--grep", "primary"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = json(&path, &["show", &id]);
    let names = |d: &serde_json::Value| -> Vec<String> {
        d["frames"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["in_app"] == true)
            .map(|f| f["function"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let expected = names(&before);
    assert!(
        expected.contains(&"integration::cli::sample_db".to_owned()),
        "{expected:?}"
    );
    // Forget the symbols, as when the panic hook ran out of time.
    open(&path)
        .execute(
            "UPDATE frames SET function = NULL, file = NULL, line = NULL, col = NULL
             WHERE backtrace_id = (SELECT backtrace_id FROM events WHERE uid = ?1)",
            [&id],
        )
        .unwrap();
    let blank = json(&path, &["show", &id]);
    assert!(blank["frames"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["function"].is_null()));
    let text = ok(&path, &["show", &id]);
    assert!(
        text.contains("some unresolved: see --binary") || text.contains(" in "),
        "{text}"
    );
    // The module of these frames is this test binary.
    let exe = std::env::current_exe().unwrap();
    let resolved = json(&path, &["show", &id, "--binary", exe.to_str().unwrap()]);
    let got: Vec<String> = resolved["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["function"].as_str().map(str::to_owned))
        .collect();
    for name in &expected {
        assert!(
            got.contains(name),
            "{name} not resolved from the binary: {got:?}"
        );
    }
}

/// What a terminal acts on: ESC, BEL, CR, BS, C1 CSI, a bidi override.
pub(crate) const HOSTILE: &str = "boom \x1b]0;owned\x07\x1b[2J\rfake ok\x08\u{9b}31m\u{202e}txet";

pub(crate) fn assert_inert(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    for bad in ['\x1b', '\x07', '\r', '\x08', '\u{9b}', '\u{202e}'] {
        assert!(
            !text.contains(bad),
            "{what} printed {bad:?} raw:\n{}",
            text.escape_debug()
        );
    }
}

#[derive(Debug)]
struct HostileError;

impl std::fmt::Display for HostileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(HOSTILE)
    }
}

impl std::error::Error for HostileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&CAUSE)
    }
}

#[derive(Debug)]
struct Cause;
static CAUSE: Cause = Cause;

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cause {HOSTILE}")
    }
}

impl std::error::Error for Cause {}

#[test]
fn every_human_output_escapes_stored_control_characters() {
    // See: issue #12 (5)
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "hostile");
    logger.add_breadcrumb(Level::Info, HOSTILE, HOSTILE);
    logger
        .event(Level::Error, HOSTILE)
        .error(&HostileError)
        .tag("t", HOSTILE)
        .extra(HOSTILE, HOSTILE)
        .emit();
    assert!(logger.flush(T));
    drop(logger);
    // What the library never writes itself, a hostile file can hold.
    let db = open(&path);
    db.execute(
        "UPDATE events SET file = ?1, thread_name = ?1, app_name = ?1, release = ?1",
        [HOSTILE],
    )
    .unwrap();
    db.execute(
        "UPDATE frames SET function = ?1, file = ?1, module = ?1",
        [HOSTILE],
    )
    .unwrap();
    db.execute(
        "UPDATE hosts SET hostname = ?1, os_name = ?1, cpu_brand = ?1, kernel_version = ?1",
        [HOSTILE],
    )
    .unwrap();
    db.execute(
        "UPDATE event_groups SET title = ?1, culprit = ?1",
        [HOSTILE],
    )
    .unwrap();
    db.execute(
        "INSERT INTO outbox (event_uid, group_id, channel, kind, status, created_at,
             next_attempt, last_error)
         SELECT uid, group_id, 'slack', 'new', 'failed', 0, 0, ?1 FROM events",
        [HOSTILE],
    )
    .unwrap();
    drop(db);
    let id = json(&path, &["events"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for args in [
        vec!["groups"],
        vec!["events"],
        vec!["show", &id, "--all-frames"],
        vec!["stats"],
        vec!["host"],
        vec!["check"],
    ] {
        let out = errsnap(&path, &args);
        assert!(
            out.status.code().is_some_and(|c| c <= 2),
            "{args:?}: {}",
            util::describe(&out)
        );
        assert_inert(&format!("{args:?}"), &out.stdout);
        assert_inert(&format!("{args:?} (stderr)"), &out.stderr);
    }
    let shown = ok(&path, &["show", &id]);
    assert!(shown.contains("boom \\x1b]0;owned\\x07"), "{shown}");
    // tail prints the same lines, then follows: read one and stop it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .arg("--db")
        .arg(&path)
        .args(["tail", "-n", "1", "--interval-ms", "50"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(line.contains("boom"), "{line}");
    assert_inert("tail", line.as_bytes());
    // --json keeps the exact text.
    let exact = json(&path, &["show", &id]);
    assert_eq!(exact["message"], HOSTILE);
    // test-alert prints what the server answered: escaped too.
    let stub = crate::servers::HttpStub::start();
    stub.set_default(crate::servers::Reply::status(500, HOSTILE));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("ERRSNAP_SLACK_WEBHOOK_URL={}\n", stub.url()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .current_dir(dir.path())
        .arg("test-alert")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("FAILED"),
        "{}",
        util::describe(&out)
    );
    assert_inert("test-alert", &out.stdout);
}

#[test]
fn check_exits_2_naming_a_foreign_file_or_an_unknown_version() {
    // See: issue #12 (3, 4)
    let (_d, path) = util::temp_db();
    open(&path)
        .execute_batch("PRAGMA application_id = 42; CREATE TABLE mine (x);")
        .unwrap();
    let out = errsnap(&path, &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", util::describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("not an errsnap database (application_id 0x2a"),
        "{text}"
    );
    let (_d, path) = util::temp_db();
    open(&path)
        .execute_batch("PRAGMA user_version = -1;")
        .unwrap();
    let out = errsnap(&path, &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", util::describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("schema version -1")
            && text.contains(&format!("knows versions 1 to {}", util::SCHEMA)),
        "{text}"
    );
}

#[test]
fn env_file_and_a_missing_database_are_explained() {
    // See: issue #13 (6)
    let stub = crate::servers::HttpStub::start();
    let elsewhere = tempfile::tempdir().unwrap();
    let env = elsewhere.path().join("alerts.env");
    std::fs::write(
        &env,
        format!(
            "ERRSNAP_SLACK_WEBHOOK_URL={}\nmail_sever = smtp.example.com\n",
            stub.url()
        ),
    )
    .unwrap();
    let (_d, path) = sample_db();
    let cwd = tempfile::tempdir().unwrap(); // no .env here
    let out = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .current_dir(cwd.path())
        .arg("--db")
        .arg(&path)
        .arg("--env-file")
        .arg(&env)
        .arg("test-alert")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("slack: delivered"), "{text}");
    assert!(
        text.contains("warning: unknown key \"mail_sever\"") && text.contains("mail_server"),
        "{text}"
    );
    assert_eq!(stub.requests().len(), 1);
    // No database at the path: say so, and how to point at one.
    let out = errsnap(&cwd.path().join("LOGS.db"), &["groups"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no database at") && err.contains("--db PATH"),
        "{err}"
    );
}
