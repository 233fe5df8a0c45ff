//! The alert policy gives the same rows on every backend and however a
//! stream is cut into batches: random streams (groups, levels, releases,
//! status changes, clock steps back, duplicates, configured, forwarding
//! and unknown channels) fed to SQLite, to a real PostgreSQL and (feature
//! `mysql`) a real MariaDB the test starts, each as one batch per stretch between status changes and as
//! many small batches; outbox rows, channel memory and groups compared.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::time::Duration;

#[path = "../../tests/support/pg_server.rs"]
pub(super) mod pg_server;

#[cfg(feature = "mysql")]
use crate::store::mysql::tests::server as mariadb_server;

use super::sql::backend::SqlStore;
use super::sql::{params, Conn, Value};
use crate::event::{AlertKind, Event, EventId};
use crate::level::Level;
use crate::settings::Durability;
use crate::store::postgres::connect::PgTarget;
use crate::store::postgres::read::PgReader;
use crate::store::postgres::PgStore;
use crate::store::read::GroupStatus;
use crate::store::seam::Maintenance;
use crate::store::seam::{AlertRules, Writer};
use crate::store::sqlite::read::SqliteReader;
use crate::store::sqlite::SqliteStore;

const MIN: i64 = 60_000;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

enum Op {
    Batch(Vec<Event>),
    Status(String, GroupStatus),
}

/// A stream of stretches of events, a status change between them.
fn stream(seed: u64) -> Vec<Op> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let channels = ["slack", "email", "sentry", "pager"];
    let releases = [Some("1.0"), Some("1.1"), Some("2.0"), None];
    let mut release = 0;
    let mut clock = 1_700_000_000_000i64;
    let mut ops = Vec::new();
    let mut stretch: Vec<Event> = Vec::new();
    let mut sent: Vec<Event> = Vec::new();
    let mut seen_groups: Vec<String> = Vec::new();
    for _ in 0..260 {
        if rng.chance(7) && !seen_groups.is_empty() {
            ops.push(Op::Batch(std::mem::take(&mut stretch)));
            let fp = seen_groups[rng.below(seen_groups.len() as u64) as usize].clone();
            let status = match rng.below(4) {
                0 => GroupStatus::Resolved,
                1 => GroupStatus::ResolvedInNextRelease,
                2 => GroupStatus::Muted,
                _ => GroupStatus::Open,
            };
            ops.push(Op::Status(fp, status));
            continue;
        }
        if rng.chance(4) && !sent.is_empty() {
            // A retried event: stored once.
            let again = sent[rng.below(sent.len() as u64) as usize].clone();
            stretch.push(again);
            continue;
        }
        if rng.chance(6) {
            release = rng.below(releases.len() as u64) as usize;
        }
        clock += match rng.below(10) {
            0 => -5 * MIN,
            1 | 2 => 0,
            _ => (rng.below(15) as i64) * MIN + rng.below(1000) as i64,
        };
        let group = rng.below(5).min(rng.below(5));
        let mut ev = Event::sample(&format!("failure {group}"));
        ev.id = EventId::generate(clock);
        ev.timestamp_ms = clock;
        ev.fingerprint = format!("fp{group}");
        ev.release = releases[release].map(str::to_owned);
        ev.level = if rng.chance(30) {
            Level::Warn
        } else {
            Level::Error
        };
        ev.alert_channels = channels
            .iter()
            .filter(|_| rng.chance(45))
            .map(|c| (*c).to_owned())
            .collect();
        if !seen_groups.contains(&ev.fingerprint) {
            seen_groups.push(ev.fingerprint.clone());
        }
        sent.push(ev.clone());
        stretch.push(ev);
    }
    ops.push(Op::Batch(stretch));
    ops
}

/// One store under test and the reader that changes group status.
trait Backend {
    fn store(&mut self) -> &mut dyn Writer;
    fn conn(&mut self) -> Box<dyn Conn + '_>;
    fn set_status(&mut self, group: i64, status: GroupStatus);
}

/// A store and its reader.
struct Both<S, R>(S, R);

impl<S: Writer + SqlStore, R: Maintenance> Backend for Both<S, R> {
    fn store(&mut self) -> &mut dyn Writer {
        &mut self.0
    }
    fn conn(&mut self) -> Box<dyn Conn + '_> {
        SqlStore::conn(&mut self.0)
    }
    fn set_status(&mut self, group: i64, status: GroupStatus) {
        assert!(self.1.set_group_status(group, status).unwrap());
    }
}

/// Feeds the stream, each stretch in batches of at most `cut` events
/// (`usize::MAX`: one batch), and returns what the store holds.
fn feed(
    b: &mut dyn Backend,
    ops: &[Op],
    rules: &AlertRules,
    cut: usize,
) -> BTreeMap<&'static str, Vec<String>> {
    b.store().set_alert_rules(rules.clone());
    for op in ops {
        match op {
            Op::Batch(evs) => {
                for chunk in evs.chunks(cut.max(1)) {
                    b.store().insert_batch(chunk).unwrap();
                }
            }
            Op::Status(fp, status) => {
                let id: i64 = b
                    .conn()
                    .one(
                        "test",
                        "SELECT id FROM event_groups WHERE fingerprint = ?1",
                        params![fp],
                    )
                    .unwrap();
                b.set_status(id, *status);
            }
        }
    }
    let mut c = b.conn();
    let mut out = BTreeMap::new();
    for (name, sql) in [
        (
            "outbox",
            "SELECT o.event_uid, o.channel, o.kind, o.status, o.suppressed, o.last_error,
                    g.fingerprint
             FROM outbox o JOIN event_groups g ON g.id = o.group_id",
        ),
        (
            "alert_state",
            "SELECT g.fingerprint, a.channel, a.last_alert_at, a.suppressed, a.last_event_uid
             FROM alert_state a JOIN event_groups g ON g.id = a.group_id",
        ),
        (
            "groups",
            "SELECT fingerprint, count, status, resolved_next, regressed_in, regressed_at,
                    level, first_seen, last_seen, last_event_uid, resolved_release
             FROM event_groups",
        ),
        ("events", "SELECT uid FROM events"),
    ] {
        let mut rows: Vec<String> = c
            .query("test", sql, params![])
            .unwrap()
            .into_iter()
            .map(|r| {
                r.0.iter()
                    .map(|v| match v {
                        Value::Null => "NULL".to_owned(),
                        Value::Bool(b) => i64::from(*b).to_string(),
                        Value::Int(i) => i.to_string(),
                        Value::Text(s) => s.clone(),
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        rows.sort();
        out.insert(name, rows);
    }
    out
}

#[test]
fn every_backend_and_every_batching_makes_the_same_alerts() {
    let Some(pg) = pg_server::Pg::start("alert policy differential", Default::default()) else {
        return;
    };
    #[cfg(feature = "mysql")]
    let Some(maria) = mariadb_server::Maria::start("alert policy differential", None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut n = 0;
    for seed in 1..=6u64 {
        let threshold = if seed % 2 == 0 { 3 } else { 1 };
        let rules = crate::store::policy::tests::rules(threshold);
        let ops = stream(seed);
        let mut results = Vec::new();
        for (label, cut) in [("one", usize::MAX), ("many", 1 + seed as usize % 4)] {
            n += 1;
            let path = dir.path().join(format!("s{n}.db"));
            let store =
                SqliteStore::open(&path, Durability::Normal, Duration::from_secs(5)).unwrap();
            let mut lite = Both(store, SqliteReader::open(&path).unwrap());
            results.push((
                format!("sqlite {label}"),
                feed(&mut lite, &ops, &rules, cut),
            ));
            let db = format!("d{n}");
            pg.psql(&format!("CREATE DATABASE {db}"));
            let url = format!(
                "postgres://postgres:{}@127.0.0.1:{}/{db}?sslmode=disable",
                pg_server::PASSWORD,
                pg.port
            );
            let target = PgTarget::parse(&url, None, None).unwrap();
            let store = PgStore::open(&target, &dir.path().join(format!("p{n}.db"))).unwrap();
            let mut fleet = Both(store, PgReader::open(&target).unwrap());
            results.push((
                format!("postgres {label}"),
                feed(&mut fleet, &ops, &rules, cut),
            ));
            #[cfg(feature = "mysql")]
            {
                use crate::store::mysql::{connect::MyTarget, read::MyReader, MyStore};
                maria.sql(&format!(
                    "CREATE DATABASE {db}; GRANT ALL ON {db}.* TO 'errsnap'@'127.0.0.1';"
                ));
                let url = maria
                    .url("?ssl-mode=DISABLED")
                    .replace("/errsnap?", &format!("/{db}?"));
                let target = MyTarget::parse(&url, None, None).unwrap();
                let store = MyStore::open(&target, &dir.path().join(format!("m{n}.db"))).unwrap();
                let mut fleet = Both(store, MyReader::open(&target).unwrap());
                results.push((
                    format!("mariadb {label}"),
                    feed(&mut fleet, &ops, &rules, cut),
                ));
            }
        }
        let (first, expected) = &results[0];
        for (label, got) in &results[1..] {
            for (table, rows) in expected {
                let only = |a: &[String], b: &[String]| -> Vec<String> {
                    a.iter().filter(|r| !b.contains(r)).cloned().collect()
                };
                assert!(
                    &got[table] == rows,
                    "seed {seed}: {table} of {label} differs from {first}:\n only in {label}: {:?}\n only in {first}: {:?}",
                    only(&got[table], rows),
                    only(rows, &got[table])
                );
            }
        }
        for row in &expected["outbox"] {
            let f: Vec<&str> = row.split('|').collect();
            *kinds.entry(format!("{} {}", f[2], f[3])).or_default() += 1;
            if f[4] != "0" {
                *kinds.entry("held back".into()).or_default() += 1;
            }
        }
    }
    // The streams reach every rule.
    for kind in [AlertKind::New.as_str(), AlertKind::Regression.as_str()] {
        assert!(
            kinds.get(&format!("{kind} pending")).copied().unwrap_or(0) > 0,
            "{kinds:?}"
        );
    }
    assert!(
        kinds.get("new dropped").copied().unwrap_or(0) > 0,
        "{kinds:?}"
    );
}

/// Runs `script` on a fresh database `name` of the PostgreSQL and (feature
/// `mysql`) the MariaDB the test starts, and checks each saw `want` (what
/// SQLite saw): a store's answers alike on every backend.
#[cfg(unix)]
pub(super) fn on_every_server(
    name: &str,
    want: &[String],
    script: &dyn Fn(&mut dyn crate::store::Store, &dyn crate::store::seam::Reader) -> Vec<String>,
) {
    let Some(pg) = pg_server::Pg::start(name, Default::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    {
        use crate::store::postgres::{connect::PgTarget, read::PgReader, PgStore};
        pg.psql(&format!("CREATE DATABASE {name}"));
        let url = format!(
            "postgres://postgres:{}@127.0.0.1:{}/{name}?sslmode=disable",
            pg_server::PASSWORD,
            pg.port
        );
        let target = PgTarget::parse(&url, None, None).unwrap();
        let mut store = PgStore::open(&target, &dir.path().join("pg.local")).unwrap();
        let reader = PgReader::open(&target).unwrap();
        assert_eq!(script(&mut store, &reader), want, "postgres");
    }
    #[cfg(feature = "mysql")]
    {
        use crate::store::mysql::{connect::MyTarget, read::MyReader, MyStore};
        let Some(m) = crate::store::mysql::tests::server::Maria::start(name, None) else {
            return;
        };
        m.sql(&format!(
            "CREATE DATABASE {name}; GRANT ALL ON {name}.* TO 'errsnap'@'127.0.0.1';"
        ));
        let url = m
            .url("?ssl-mode=DISABLED")
            .replace("/errsnap?", &format!("/{name}?"));
        let target = MyTarget::parse(&url, None, None).unwrap();
        let mut store = MyStore::open(&target, &dir.path().join("my.local")).unwrap();
        let reader = MyReader::open(&target).unwrap();
        assert_eq!(script(&mut store, &reader), want, "mariadb");
    }
}
