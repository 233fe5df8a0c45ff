//! Triage on every backend: grouping rules applied by the writer and by
//! `regroup` alike, a change of rules that splits nothing until regrouped,
//! merges and unmerges that keep every count equal to the stored events,
//! with writers running meanwhile (SQLite, and the PostgreSQL and MariaDB
//! the tests start, when those features are built).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::time::Duration;

use super::sql::backend::SqlStore;
use super::sql::{params, Conn};
use crate::event::{Event, EventId};
use crate::pipeline::grouping::Grouping;
use crate::settings::grouping::{parse_rules, GroupingConfig, ALGORITHM};
use crate::settings::Durability;
use crate::store::seam::{Maintenance, Writer};
use crate::store::sqlite::read::SqliteReader;
use crate::store::sqlite::SqliteStore;

/// A writer and a maintenance handle of one database, and how to open
/// another writer of it (another process of a fleet).
struct Site {
    name: &'static str,
    open_writer: Box<dyn Fn() -> Box<dyn WriterConn> + Send + Sync>,
    admin: Box<dyn Maintenance>,
}

/// A writer whose connection the test also reads through.
trait WriterConn: Writer + Send {
    fn sql(&mut self) -> Box<dyn Conn + '_>;
}

impl<T: Writer + SqlStore + Send> WriterConn for T {
    fn sql(&mut self) -> Box<dyn Conn + '_> {
        SqlStore::conn(self)
    }
}

fn sqlite_site(dir: &std::path::Path, name: &str) -> Site {
    let path = dir.join(format!("{name}.db"));
    drop(SqliteStore::open(&path, Durability::Normal, Duration::from_secs(5)).unwrap());
    let p = path.clone();
    Site {
        name: "sqlite",
        open_writer: Box::new(move || {
            Box::new(SqliteStore::open(&p, Durability::Normal, Duration::from_secs(30)).unwrap())
        }),
        admin: Box::new(SqliteReader::open(&path).unwrap()),
    }
}

#[cfg(all(feature = "postgres", unix))]
use super::differential::pg_server;

#[cfg(all(feature = "postgres", unix))]
fn pg_site(pg: &pg_server::Pg, dir: &std::path::Path, db: &str) -> Site {
    use crate::store::postgres::{connect::PgTarget, read::PgReader, PgStore};
    pg.psql(&format!("CREATE DATABASE {db}"));
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{}/{db}?sslmode=disable",
        pg_server::PASSWORD,
        pg.port
    );
    let target = PgTarget::parse(&url, None, None).unwrap();
    let local = dir.join(format!("{db}.local"));
    drop(PgStore::open(&target, &local).unwrap());
    let t = target.clone();
    Site {
        name: "postgres",
        open_writer: Box::new(move || Box::new(PgStore::open(&t, &local).unwrap())),
        admin: Box::new(PgReader::open(&target).unwrap()),
    }
}

#[cfg(feature = "mysql")]
fn maria_site(
    m: &crate::store::mysql::tests::server::Maria,
    dir: &std::path::Path,
    db: &str,
) -> Site {
    use crate::store::mysql::{connect::MyTarget, read::MyReader, MyStore};
    m.sql(&format!(
        "CREATE DATABASE {db}; GRANT ALL ON {db}.* TO 'errsnap'@'127.0.0.1';"
    ));
    let url = m
        .url("?ssl-mode=DISABLED")
        .replace("/errsnap?", &format!("/{db}?"));
    let target = MyTarget::parse(&url, None, None).unwrap();
    let local = dir.join(format!("{db}.local"));
    drop(MyStore::open(&target, &local).unwrap());
    let t = target.clone();
    Site {
        name: "mariadb",
        open_writer: Box::new(move || Box::new(MyStore::open(&t, &local).unwrap())),
        admin: Box::new(MyReader::open(&target).unwrap()),
    }
}

/// An event as the writer makes it: grouped by `grouping`.
fn event(grouping: &mut Grouping, message: &str, ts: i64) -> Event {
    let mut ev = Event::sample(message);
    ev.id = EventId::generate(ts);
    ev.timestamp_ms = ts;
    ev.release = Some(format!("1.{}", ts % 3));
    let captured = crate::pipeline::fingerprint::fingerprint(
        &ev.logger,
        ev.kind,
        &ev.message,
        &ev.chain,
        &ev.frames,
        None,
    );
    assert!(grouping.apply(&mut ev, None, captured));
    ev
}

fn config(rules: &str) -> GroupingConfig {
    let t: toml::Table = toml::from_str(rules).unwrap();
    GroupingConfig {
        algorithm: ALGORITHM,
        rules: t
            .get("grouping")
            .map(|g| parse_rules(g).unwrap())
            .unwrap_or_default(),
    }
}

/// Inserts a batch as the writer does: a batch that met a merge is
/// written again (the writer's spool does it; stored once by its ids).
fn insert(w: &mut dyn WriterConn, events: &[Event]) {
    for attempt in 0.. {
        match w.insert_batch(events) {
            Ok(_) => return,
            Err(e) if e.is_busy() && attempt < 2000 => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// What a store holds, checked for agreement with itself: every live
/// group's count, hourly counts and release values equal its stored
/// events; no event in a merged group; each event's own group is where it
/// is or merged into it. Returns the live groups by title with their
/// counts, and the total of stored events.
fn consistent(c: &mut dyn Conn, label: &str) -> (BTreeMap<String, i64>, i64) {
    let one = |c: &mut dyn Conn, sql: &str| -> Vec<(String, i64, i64, i64, i64)> {
        c.map("test", sql, params![], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
    };
    let d = c.dialect();
    let rows = one(
        c,
        &format!(
            "SELECT g.title, g.count,
                    (SELECT count(*) FROM events e WHERE e.group_id = g.id),
                    {},
                    {}
             FROM event_groups g WHERE g.merged_into IS NULL",
            d.cast_int(
                "coalesce((SELECT sum(h.count) FROM group_hours h WHERE h.group_id = g.id), 0)"
            ),
            d.cast_int(
                "coalesce((SELECT sum(v.count) FROM group_values v
                           WHERE v.group_id = g.id AND v.\"key\" = 'release'), 0)"
            )
        ),
    );
    let mut live = BTreeMap::new();
    for (title, count, events, hours, values) in rows {
        assert_eq!(
            (count, hours, values),
            (events, events, events),
            "{label}: group {title:?}: count, hourly counts and values equal its events"
        );
        if count > 0 {
            *live.entry(title).or_insert(0) += count;
        }
    }
    let hidden: i64 = c
        .one(
            "test",
            "SELECT count(*) FROM events e JOIN event_groups g ON g.id = e.group_id
             WHERE g.merged_into IS NOT NULL",
            params![],
        )
        .unwrap();
    assert_eq!(hidden, 0, "{label}: no event stays in a merged group");
    let astray: i64 = c
        .one(
            "test",
            "SELECT count(*) FROM events e JOIN event_groups h ON h.id = e.home_id
             WHERE coalesce(h.merged_into, h.id) <> e.group_id",
            params![],
        )
        .unwrap();
    assert_eq!(astray, 0, "{label}: each event is where its own group is");
    let total: i64 = c
        .one("test", "SELECT count(*) FROM events", params![])
        .unwrap();
    (live, total)
}

fn group_id(c: &mut dyn Conn, fp: &str) -> i64 {
    c.one(
        "test",
        "SELECT id FROM event_groups WHERE fingerprint = ?1",
        params![fp],
    )
    .unwrap()
}

/// Merges, a fingerprint's events after the merge, an unmerge: the same
/// on every site, every count equal to the events.
fn merge_and_unmerge(site: &Site) -> Vec<String> {
    let label = site.name;
    let mut w = (site.open_writer)();
    let mut g = Grouping::new(GroupingConfig::default());
    let t0 = 1_700_000_000_000;
    let mut batch = Vec::new();
    for i in 0..30 {
        let msg = ["disk full", "timeout talking to db", "connection refused"][i % 3];
        batch.push(event(&mut g, msg, t0 + i as i64 * 600_000));
    }
    insert(&mut *w, &batch);
    let fp = |m: &str| event(&mut Grouping::default(), m, 0).fingerprint;
    let (a, b, c3) = {
        let mut c = w.sql();
        (
            group_id(&mut *c, &fp("disk full")),
            group_id(&mut *c, &fp("timeout talking to db")),
            group_id(&mut *c, &fp("connection refused")),
        )
    };
    let r = site.admin.merge_groups(a, &[b, c3]).unwrap();
    assert_eq!((r.into, r.events), (a, 20), "{label}");
    // Merged: refused again, and into itself.
    let e = site.admin.merge_groups(b, &[a]).unwrap_err().to_string();
    assert!(
        e.contains(&format!("group {b} is merged into group {a}")),
        "{label}: {e}"
    );
    assert!(site.admin.merge_groups(a, &[a]).is_err());
    assert!(site
        .admin
        .merge_groups(a, &[999_999])
        .unwrap_err()
        .to_string()
        .contains("no group 999999"));
    // Search finds a merged group's texts as the group's that took it.
    let found: Vec<i64> = site
        .admin
        .search("refused", 10)
        .unwrap()
        .iter()
        .map(|h| h.group.id)
        .collect();
    assert_eq!(found, vec![a], "{label}: search after the merge");
    // Later events of a merged fingerprint join the group that took it.
    let later: Vec<Event> = (0..6)
        .map(|i| event(&mut g, "timeout talking to db", t0 + 40 * 600_000 + i))
        .collect();
    insert(&mut *w, &later);
    {
        let mut c = w.sql();
        let (live, total) = consistent(&mut *c, label);
        assert_eq!(total, 36);
        assert_eq!(live, BTreeMap::from([("disk full".into(), 36)]), "{label}");
    }
    // Unmerged: its events, old and new, go back; it stays apart.
    let r = site.admin.unmerge_group(b).unwrap();
    assert_eq!(
        (r.into, r.groups.clone(), r.events),
        (a, vec![b], 16),
        "{label}"
    );
    assert!(site
        .admin
        .unmerge_group(b)
        .unwrap_err()
        .to_string()
        .contains("not merged"));
    insert(
        &mut *w,
        &[event(&mut g, "timeout talking to db", t0 + 50 * 600_000)],
    );
    let found: Vec<i64> = site
        .admin
        .search("timeout", 10)
        .unwrap()
        .iter()
        .map(|h| h.group.id)
        .collect();
    assert_eq!(found, vec![b], "{label}: search after the unmerge");
    let mut c = w.sql();
    let (live, total) = consistent(&mut *c, label);
    assert_eq!(total, 37);
    assert_eq!(
        live,
        BTreeMap::from([
            ("disk full".into(), 20),
            ("timeout talking to db".into(), 17)
        ]),
        "{label}"
    );
    // What every site must agree on.
    c.map(
        "test",
        "SELECT g.title, g.count, g.first_seen, g.last_seen, coalesce(m.title, '-')
         FROM event_groups g LEFT JOIN event_groups m ON m.id = g.merged_into",
        params![],
        |r| {
            Ok(format!(
                "{}|{}|{}|{}|{}",
                r.get::<String>(0)?,
                r.get::<i64>(1)?,
                r.get::<i64>(2)?,
                r.get::<i64>(3)?,
                r.get::<String>(4)?
            ))
        },
    )
    .map(|mut v| {
        v.sort();
        v
    })
    .unwrap()
}

/// Writers on several threads (each its own connection, as processes of
/// a fleet) while groups are merged and unmerged over and over: every
/// event is stored once, in the right group, and counted once.
fn merges_under_writers(site: &Site) {
    let label = site.name;
    let messages = [
        "alpha failed",
        "beta failed",
        "gamma failed",
        "delta failed",
    ];
    // The groups, made first.
    let mut w = (site.open_writer)();
    let mut g = Grouping::default();
    let t0 = 1_700_000_000_000;
    let first: Vec<Event> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| event(&mut g, m, t0 + i as i64))
        .collect();
    insert(&mut *w, &first);
    let ids: Vec<i64> = {
        let mut c = w.sql();
        first
            .iter()
            .map(|e| group_id(&mut *c, &e.fingerprint))
            .collect()
    };
    drop(w);
    let per_writer = 600;
    let writers: Vec<_> = (0..3)
        .map(|n| {
            let mut w = (site.open_writer)();
            std::thread::spawn(move || {
                let mut g = Grouping::default();
                for b in 0..per_writer / 20 {
                    let batch: Vec<Event> = (0..20)
                        .map(|i| {
                            let k = (n + b + i) % 4;
                            let ts = t0 + 1_000_000 + (n * 100_000 + b * 20 + i) as i64 * 1_000;
                            event(
                                &mut g,
                                [
                                    "alpha failed",
                                    "beta failed",
                                    "gamma failed",
                                    "delta failed",
                                ][k],
                                ts,
                            )
                        })
                        .collect();
                    insert(&mut *w, &batch);
                    // A fleet's pace, so that merges fall between batches
                    // as well as inside them.
                    std::thread::sleep(Duration::from_millis(4));
                }
            })
        })
        .collect();
    let mut merges = 0;
    let mut unmerges = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        match site.admin.merge_groups(ids[0], &ids[1..3]) {
            Ok(_) => merges += 1,
            Err(e) if e.is_busy() || e.to_string().contains("already") => {}
            Err(e) => panic!("{label}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
        for &id in &ids[1..3] {
            match site.admin.unmerge_group(id) {
                Ok(_) => unmerges += 1,
                Err(e) if e.is_busy() || e.to_string().contains("not merged") => {}
                Err(e) => panic!("{label}: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for w in writers {
        w.join().unwrap();
    }
    eprintln!("{label}: {merges} merges and {unmerges} unmerges under 3 writers");
    assert!(
        merges >= 2 && unmerges >= 2,
        "{label}: {merges} merges, {unmerges} unmerges"
    );
    let mut w = (site.open_writer)();
    let mut c = w.sql();
    let (live, total) = consistent(&mut *c, label);
    assert_eq!(
        total,
        4 + 3 * per_writer as i64,
        "{label}: every event stored once"
    );
    assert_eq!(
        live.values().sum::<i64>(),
        total,
        "{label}: every event counted once"
    );
}

#[test]
fn sqlite_merges_and_unmerges_keep_counts_equal_to_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let site = sqlite_site(dir.path(), "m");
    let rows = merge_and_unmerge(&site);
    assert!(
        rows.iter()
            .any(|r| r.starts_with("connection refused|0|") && r.ends_with("|disk full")),
        "{rows:?}"
    );
    let site = sqlite_site(dir.path(), "w");
    merges_under_writers(&site);
}

#[cfg(all(feature = "postgres", unix))]
#[test]
fn every_backend_merges_alike_and_loses_nothing_under_writers() {
    let Some(pg) = pg_server::Pg::start("merges", Default::default()) else {
        return;
    };
    #[cfg(feature = "mysql")]
    let Some(maria) = crate::store::mysql::tests::server::Maria::start("merges", None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut sites = vec![
        sqlite_site(dir.path(), "m"),
        pg_site(&pg, dir.path(), "merges"),
    ];
    #[cfg(feature = "mysql")]
    sites.push(maria_site(&maria, dir.path(), "merges"));
    let results: Vec<(&str, Vec<String>)> = sites
        .iter()
        .map(|s| (s.name, merge_and_unmerge(s)))
        .collect();
    for (name, rows) in &results[1..] {
        assert_eq!(rows, &results[0].1, "{name} differs from sqlite");
    }
    let mut sites = vec![pg_site(&pg, dir.path(), "writers")];
    #[cfg(feature = "mysql")]
    sites.push(maria_site(&maria, dir.path(), "writers"));
    for s in &sites {
        merges_under_writers(s);
    }
}

#[test]
fn a_change_of_rules_splits_nothing_until_regrouped() {
    let dir = tempfile::tempdir().unwrap();
    let site = sqlite_site(dir.path(), "r");
    let mut w = (site.open_writer)();
    let t0 = 1_700_000_000_000;
    // Grouped without rules: one group per kind of timeout.
    let before = GroupingConfig::default();
    let (_, earlier) = w.adopt_grouping(Some(&before)).unwrap();
    assert!(earlier.is_empty(), "a new store has no earlier grouping");
    let mut g = Grouping::new(before.clone());
    let old: Vec<Event> = (0..12)
        .map(|i| {
            event(
                &mut g,
                ["timeout talking to db", "timeout talking to cache"][i % 2],
                t0 + i as i64 * 1000,
            )
        })
        .collect();
    insert(&mut *w, &old);
    // A rule groups every timeout as one: the store keeps the old
    // configuration in transition.
    let rules = config("[[grouping]]\nmessage = \"timeout *\"\nfingerprint = [\"timeouts\"]\n[[grouping]]\nmessage = \"*noise*\"\nignore = true");
    let (_, earlier) = w.adopt_grouping(Some(&rules)).unwrap();
    assert_eq!(earlier, vec![before.clone()]);
    let (used, again) = w.adopt_grouping(None).unwrap();
    assert_eq!(
        (used, again),
        (rules.clone(), vec![before.clone()]),
        "read back"
    );
    let mut g = Grouping::new(rules.clone());
    g.earlier = earlier;
    let new: Vec<Event> = (0..4)
        .map(|i| event(&mut g, "timeout talking to db", t0 + 100_000 + i))
        .collect();
    assert!(!new[0].earlier_fingerprints.is_empty());
    insert(&mut *w, &new);
    let mut noise = Event::sample("some noise");
    assert!(!g.apply(&mut noise, None, String::new()), "ignored");
    {
        let mut c = w.sql();
        let (live, total) = consistent(&mut *c, "transition");
        assert_eq!(total, 16);
        assert_eq!(
            live,
            BTreeMap::from([
                ("timeout talking to cache".into(), 6),
                ("timeout talking to db".into(), 10)
            ]),
            "the new fingerprint follows the group it had: no split"
        );
    }
    // A dry run says what would move and moves nothing.
    let dry = site.admin.regroup(&rules, false).unwrap();
    assert_eq!(
        (dry.applied, dry.scanned, dry.custom, dry.ignored),
        (false, 16, 0, 0)
    );
    assert_eq!(dry.events, 16, "{dry:?}");
    assert_eq!(dry.moves.len(), 2, "{dry:?}");
    assert!(
        dry.moves[0].to.is_some() && dry.moves.iter().all(|m| m.to == dry.moves[0].to),
        "into the group the new fingerprint has: {dry:?}"
    );
    {
        let mut c = w.sql();
        assert_eq!(consistent(&mut *c, "dry run").0.len(), 2);
    }
    // Applied: one group of every timeout, the old ones merged into it.
    let done = site.admin.regroup(&rules, true).unwrap();
    assert_eq!((done.applied, done.events), (true, 16), "{done:?}");
    assert_eq!(done.emptied.len(), 2, "{done:?}");
    let mut c = w.sql();
    let (live, total) = consistent(&mut *c, "regrouped");
    assert_eq!(total, 16);
    assert_eq!(
        live.values().copied().collect::<Vec<_>>(),
        vec![16],
        "{live:?}"
    );
    drop(c);
    let (_, earlier) = w.adopt_grouping(None).unwrap();
    assert!(earlier.is_empty(), "the transition ended");
    assert_eq!(
        site.admin.regroup(&rules, false).unwrap().events,
        0,
        "nothing left to move"
    );
    // Events the code grouped stay where they are.
    let mut g = Grouping::new(rules.clone());
    let mut mine = Event::sample("timeout talking to db");
    mine.timestamp_ms = t0 + 200_000;
    assert!(g.apply(&mut mine, Some(&["mine".into()]), String::new()));
    insert(&mut *w, &[mine]);
    let r = site
        .admin
        .regroup(&GroupingConfig::default(), false)
        .unwrap();
    assert_eq!((r.custom, r.events), (1, 16), "{r:?}");
}
