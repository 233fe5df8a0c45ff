//! Triage from the command line: `errsnap merge`, `unmerge`, `regroup`
//! and `blame`, against databases the library wrote in the test, and a git
//! repository the test scripts (several authors and dates: the right
//! suspect is known from how the history was built).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::cli::{json, ok};
use crate::util;

const T: Duration = Duration::from_secs(20);

fn errsnap_with(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_errsnap"));
    cmd.arg("--db")
        .arg(db)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("ERRSNAP_DB_PATH")
        .env_remove("ERRSNAP_REPO_PATH")
        .env_remove("ERRSNAP_REPO_PATH_MAP");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn group_of(db: &Path, title: &str) -> i64 {
    let groups = json(db, &["groups"]);
    groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["title"].as_str().unwrap().starts_with(title))
        .unwrap_or_else(|| panic!("no group {title:?}: {groups}"))["id"]
        .as_i64()
        .unwrap()
}

#[test]
fn merge_unmerge_and_regroup_from_the_command_line() {
    let (dir, db) = util::temp_db();
    let log = util::logger(&db, "shop");
    for i in 0..4 {
        log.error(format!("timeout talking to db after {i}s"));
        log.error(format!("timeout talking to cache after {i}s"));
    }
    log.error("disk full");
    assert!(log.flush(T));
    drop(log);
    let (db_g, cache_g, disk_g) = (
        group_of(&db, "timeout talking to db"),
        group_of(&db, "timeout talking to cache"),
        group_of(&db, "disk full"),
    );
    let out = ok(&db, &["merge", &db_g.to_string(), &cache_g.to_string()]);
    assert!(
        out.contains(&format!(
            "merged group {cache_g} into group {db_g}: 4 events moved"
        )),
        "{out}"
    );
    let groups = json(&db, &["groups"]);
    assert_eq!(groups.as_array().unwrap().len(), 2, "{groups}");
    let merged = json(&db, &["groups", "--merged-into", &db_g.to_string()]);
    assert_eq!(merged[0]["id"].as_i64(), Some(cache_g), "{merged}");
    assert_eq!(
        json(&db, &["events", "--group", &db_g.to_string()])
            .as_array()
            .unwrap()
            .len(),
        8
    );
    // Mistakes are refused and say why.
    let bad = errsnap_with(
        &db,
        &["merge", &disk_g.to_string(), &cache_g.to_string()],
        &[],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains(&format!(
            "group {cache_g} is merged into group {db_g} already"
        )),
        "{}",
        util::describe(&bad)
    );
    let out = ok(&db, &["unmerge", &cache_g.to_string()]);
    assert!(
        out.contains(&format!(
            "group {cache_g} is apart again: 4 events moved back"
        )),
        "{out}"
    );
    assert_eq!(json(&db, &["groups"]).as_array().unwrap().len(), 3);
    // A rule groups every timeout as one: a dry run says so, a run does it.
    let rules = dir.path().join("errsnap.toml");
    std::fs::write(
        &rules,
        "[[grouping]]\nmessage = \"timeout *\"\nfingerprint = [\"timeouts\"]\n",
    )
    .unwrap();
    let env = [("ERRSNAP_CONFIG_FILE", rules.to_str().unwrap())];
    let dry = errsnap_with(&db, &["regroup", "--dry-run"], &env);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{}", util::describe(&dry));
    assert!(text.contains("9 events read: would move 8"), "{text}");
    assert!(text.contains("-> a new group"), "{text}");
    assert_eq!(
        json(&db, &["groups"]).as_array().unwrap().len(),
        3,
        "moved nothing"
    );
    let run = errsnap_with(&db, &["regroup", "--json"], &env);
    assert!(run.status.success(), "{}", util::describe(&run));
    let r: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        (r["applied"].as_bool(), r["events"].as_u64()),
        (Some(true), Some(8)),
        "{r}"
    );
    let groups = json(&db, &["groups", "--sort", "count"]);
    let counts: Vec<i64> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![8, 1], "{groups}");
    // A rule that does not parse is named.
    std::fs::write(&rules, "[[grouping]]\nmesage = \"x\"\nignore = true\n").unwrap();
    let bad = errsnap_with(&db, &["regroup", "--dry-run"], &env);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("grouping[0].mesage: unknown key (did you mean message?)"),
        "{}",
        util::describe(&bad)
    );
}

/// A git repository the test writes commit by commit.
struct Repo(tempfile::TempDir);

impl Repo {
    fn git(&self, args: &[&str], author: Option<(&str, i64)>) -> String {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(self.0.path()).args(args);
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@example.invalid");
        if let Some((name, t)) = author {
            cmd.env("GIT_AUTHOR_NAME", name)
                .env(
                    "GIT_AUTHOR_EMAIL",
                    format!("{}@example.invalid", name.to_lowercase()),
                )
                .env("GIT_AUTHOR_DATE", format!("{t} +0000"))
                .env("GIT_COMMITTER_DATE", format!("{t} +0000"));
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", util::describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// Records the error whose line the scripted history changes.
fn record_decline(log: &errsnap::EventLogger) {
    log.error("payment declined");
}
const DECLINE_LINE: u32 = line!() - 2;

/// A repository whose history changed the line `record_decline` records
/// at: Alice wrote every line, Bob later that one (the release's commit),
/// Carol another line after; with Bob's commit.
fn scripted_history() -> (Repo, String) {
    let repo = Repo(tempfile::tempdir().unwrap());
    repo.git(&["init", "-q", "-b", "main"], None);
    let line = DECLINE_LINE;
    let file = repo.0.path().join("tests/triage.rs");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut lines: Vec<String> = (1..=400).map(|i| format!("// line {i}")).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    repo.git(&["add", "."], None);
    repo.git(
        &["commit", "-q", "-m", "everything"],
        Some(("Alice", 1_780_000_000)),
    );
    lines[line as usize - 1] = "    log.error(\"payment declined\");".into();
    std::fs::write(&file, lines.join("\n")).unwrap();
    repo.git(
        &["commit", "-q", "-am", "pay: report declines"],
        Some(("Bob", 1_780_500_000)),
    );
    let bob = repo.git(&["rev-parse", "HEAD"], None);
    lines[5] = "// Carol's".into();
    std::fs::write(&file, lines.join("\n")).unwrap();
    repo.git(
        &["commit", "-q", "-am", "a comment"],
        Some(("Carol", 1_780_900_000)),
    );
    (repo, bob)
}

#[test]
fn blame_names_the_commit_that_last_changed_where_it_failed() {
    let line = DECLINE_LINE;
    let (repo, bob) = scripted_history();
    let release = format!("shop@1.0.0+{}", &bob[..9]);
    let (_d, db) = util::temp_db();
    let log = util::builder(&db, "shop").release(release).build().unwrap();
    record_decline(&log);
    assert!(log.flush(T));
    drop(log);
    let g = group_of(&db, "payment declined");
    let map = format!("{}=", env!("CARGO_MANIFEST_DIR"));
    let out = errsnap_with(
        &db,
        &[
            "blame",
            &g.to_string(),
            "--repo",
            repo.0.path().to_str().unwrap(),
            "--path-map",
            &map,
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", util::describe(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["commit"].as_str(), Some(bob.as_str()), "{s}");
    assert_eq!(s["suspect"]["author"].as_str(), Some("Bob"), "{s}");
    assert_eq!(
        s["suspect"]["summary"].as_str(),
        Some("pay: report declines"),
        "{s}"
    );
    assert_eq!(
        s["lines"][0]["path"].as_str(),
        Some("tests/triage.rs"),
        "{s}"
    );
    assert_eq!(s["lines"][0]["line"].as_u64(), Some(u64::from(line)), "{s}");
    // The same from the settings, as text.
    let out = errsnap_with(
        &db,
        &["blame", &g.to_string()],
        &[
            ("ERRSNAP_REPO_PATH", repo.0.path().to_str().unwrap()),
            ("ERRSNAP_REPO_PATH_MAP", &map),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", util::describe(&out));
    assert!(
        text.contains(&format!(
            "suspect commit {} by Bob <bob@example.invalid>",
            &bob[..12]
        )),
        "{text}"
    );
    let none = errsnap_with(&db, &["blame", "99999", "--repo", "."], &[]);
    assert!(!none.status.success());
}

#[test]
fn a_new_groups_alert_names_its_suspect_commit() {
    let (repo, bob) = scripted_history();
    let stub = crate::servers::HttpStub::start();
    let mut config = errsnap::Config::empty();
    config.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
    let (_d, db) = util::temp_db();
    let log = util::builder(&db, "shop")
        .config(config)
        .release(format!("1.0.0+{}", &bob[..9]))
        .repo_path(repo.0.path())
        .repo_path_map(format!("{}=", env!("CARGO_MANIFEST_DIR")))
        .build()
        .unwrap();
    record_decline(&log);
    assert!(log.flush(T));
    let sent = stub.wait_for(1, T);
    let body = sent[0].json().to_string();
    assert!(body.contains("Suspect commit"), "{body}");
    assert!(
        body.contains(&format!("{} by Bob", &bob[..10])) && body.contains("pay: report declines"),
        "{body}"
    );
    // The event is stored as ever: the suspect is the alert's, not the event's.
    assert_eq!(json(&db, &["events"]).as_array().unwrap().len(), 1);
}

#[test]
fn an_ignoring_rule_stores_nothing_and_counts_it() {
    let (dir, db) = util::temp_db();
    let rules = dir.path().join("errsnap.toml");
    std::fs::write(
        &rules,
        "[[grouping]]\nmessage = \"client went away*\"\nignore = true\n",
    )
    .unwrap();
    let log = util::builder(&db, "web")
        .config_file(&rules)
        .build()
        .unwrap();
    log.error("client went away mid-response");
    log.error("client went away again");
    log.error("disk full");
    assert!(log.flush(T));
    drop(log);
    let conn = util::open(&db);
    assert_eq!(util::count(&conn, "SELECT count(*) FROM events"), 1);
    assert_eq!(
        util::count(
            &conn,
            "SELECT value FROM counters WHERE name = 'grouping_ignored'"
        ),
        2
    );
}
