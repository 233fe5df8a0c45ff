//! The schema of LOGS.db, versioned with `PRAGMA user_version` and marked
//! as errsnap's with `PRAGMA application_id`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up. Migrations
//! are additive (new tables, new nullable columns, new indexes), so a build
//! that knows an older schema can usually still write a newer one: each
//! migration records the oldest writer that can (`min_writer`), stored in
//! the `errsnap_meta` table. A file is opened only after [`inspect`] has
//! decided it is errsnap's and writable by this build; anything else is
//! refused and left byte for byte as it was.

use rusqlite::{Connection, OptionalExtension};

use super::fail;
use crate::error::{Error, ErrorKind, Result};

/// One step of the schema.
pub(crate) struct Migration {
    /// The statements that take the schema to this version.
    pub(crate) sql: &'static str,
    /// The oldest schema version whose writer can still write the schema
    /// after this migration (equal to the previous one while migrations
    /// stay additive).
    pub(crate) min_writer: i64,
}

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: V1,
        min_writer: 1,
    },
    Migration {
        sql: V2,
        min_writer: 1,
    },
    Migration {
        sql: V3,
        min_writer: 1,
    },
    Migration {
        sql: V4,
        min_writer: 1,
    },
    // A writer older than version 5 would store no crash, but its CHECK
    // would be gone: it still writes the same rows.
    Migration {
        sql: V5,
        min_writer: 1,
    },
    // An older writer would store events without their summary rows (the
    // dashboard's counts, values and search): it may no longer write.
    Migration {
        sql: V6,
        min_writer: 6,
    },
    // An index only: a version-6 writer still writes the same rows.
    Migration {
        sql: V7,
        min_writer: 6,
    },
    // A new column and a new table: an older writer stores events without
    // their context and attachments, rows otherwise the same.
    Migration {
        sql: V8,
        min_writer: 6,
    },
    // New nullable columns: an older writer's rows name no origin (its
    // flush does not look for them) and its claims no run (put back after
    // ten minutes, as before).
    Migration {
        sql: V9,
        min_writer: 6,
    },
    // Merges: an older writer would store events in a group merged into
    // another (where nobody looks): it may no longer write.
    Migration {
        sql: V10,
        min_writer: 10,
    },
    // A new table: an older writer keeps no flight recorder, its rows
    // otherwise the same.
    Migration {
        sql: V11,
        min_writer: 10,
    },
    // New tables: an older writer records no check-in, its rows otherwise
    // the same.
    Migration {
        sql: V12,
        min_writer: 10,
    },
    // Outbox rows that are not events: an older writer's notify thread
    // would take a check-in's row for an event's and fail it: it may no
    // longer write.
    Migration {
        sql: V13,
        min_writer: 13,
    },
];

/// The newest schema version this build writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Marks the file as errsnap's (`PRAGMA application_id`, "ESNP").
pub(crate) const APPLICATION_ID: i64 = 0x4553_4E50;

/// What a file at the database path is, as far as errsnap is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// An empty file (or none): errsnap creates its schema.
    New,
    /// errsnap's, at a version this build can write (migrated up if older).
    Ours {
        /// `PRAGMA user_version`.
        version: i64,
    },
}

/// Reads the file's marks without changing anything, and decides whether
/// errsnap may use it.
///
/// # Errors
/// [`ErrorKind::ForeignDatabase`] for another program's file,
/// [`ErrorKind::UnknownSchema`] for a version errsnap never wrote,
/// [`ErrorKind::FutureSchema`] for a newer schema this build cannot write.
pub(crate) fn inspect(conn: &Connection, path: &std::path::Path) -> Result<Disposition> {
    let ctx = |what: &str| format!("{what} of {}", path.display());
    let pragma = |name: &str| -> Result<i64> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(|e| fail(ctx(&format!("reading the {name}")), e))
    };
    let application_id = pragma("application_id")?;
    let version = pragma("user_version")?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| fail(ctx("reading the schema"), e))?;
    let path_text = path.display().to_string();
    if application_id != APPLICATION_ID {
        if application_id == 0 && tables == 0 && version == 0 {
            return Ok(Disposition::New);
        }
        if application_id == 0 && tables == 0 {
            return Err(Error::new(ErrorKind::UnknownSchema {
                path: path_text,
                found: version,
                newest: LATEST,
            }));
        }
        return Err(Error::new(ErrorKind::ForeignDatabase {
            path: path_text,
            application_id,
        }));
    }
    if (1..=LATEST).contains(&version) {
        return Ok(Disposition::Ours { version });
    }
    // A newer errsnap records the oldest writer that can still write its
    // schema; without that record the version is not one errsnap wrote.
    let min_writer = if version > LATEST {
        min_writer_of(conn)
    } else {
        None
    };
    match min_writer {
        Some(min) if min <= LATEST => Ok(Disposition::Ours { version }),
        Some(min) => Err(Error::new(ErrorKind::FutureSchema {
            path: path_text,
            found: version,
            min_writer: min,
            supported: LATEST,
        })),
        None => Err(Error::new(ErrorKind::UnknownSchema {
            path: path_text,
            found: version,
            newest: LATEST,
        })),
    }
}

/// The `min_writer_version` recorded in `errsnap_meta`, if any.
fn min_writer_of(conn: &Connection) -> Option<i64> {
    conn.query_row(
        "SELECT CAST(value AS INTEGER) FROM errsnap_meta WHERE key = 'min_writer_version'",
        [],
        |r| r.get(0),
    )
    .optional()
    .ok()
    .flatten()
}

/// Records the schema version and the oldest compatible writer (inside the
/// migration's transaction).
pub(crate) const RECORD_META: &str = "INSERT INTO errsnap_meta (key, value) VALUES
    ('schema_version', ?1), ('min_writer_version', ?2)
    ON CONFLICT(key) DO UPDATE SET value = excluded.value";

/// Version 13: the outbox also carries what forwarding channels send that
/// is not an event (`kind` `check_in`, `session`, `client_report`): such a
/// row has no group, names its item in `event_uid` (a check-in's or a
/// session's id) and holds the item itself in `payload`. SQLite cannot
/// drop a `CHECK` or a `NOT NULL`: the table is made again.
const V13: &str = r#"
CREATE TABLE outbox_v13 (
    id            INTEGER PRIMARY KEY,
    event_uid     TEXT    NOT NULL,
    group_id      INTEGER REFERENCES event_groups(id),
    channel       TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('new', 'regression', 'digest', 'test',
                                                   'check_in', 'session', 'client_report')),
    status        TEXT    NOT NULL
                  CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dropped')),
    suppressed    INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    next_attempt  INTEGER NOT NULL,
    claimed_by    INTEGER,
    claimed_at    INTEGER,
    sent_at       INTEGER,
    last_error    TEXT,
    origin_run    INTEGER,
    claim_run     TEXT,
    payload       TEXT
);
INSERT INTO outbox_v13 (id, event_uid, group_id, channel, kind, status, suppressed, attempts,
                        created_at, next_attempt, claimed_by, claimed_at, sent_at, last_error,
                        origin_run, claim_run)
    SELECT id, event_uid, group_id, channel, kind, status, suppressed, attempts, created_at,
           next_attempt, claimed_by, claimed_at, sent_at, last_error, origin_run, claim_run
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v13 RENAME TO outbox;
CREATE INDEX outbox_status_due ON outbox(status, next_attempt);
CREATE INDEX outbox_channel_due ON outbox(status, channel, next_attempt);
"#;

/// Version 12: monitors (`monitor`) and their check-ins; one row per
/// (monitor, expected time), so a missed run is found once across a fleet.
const V12: &str = r#"
CREATE TABLE monitors (
    id             INTEGER PRIMARY KEY,
    slug           TEXT    NOT NULL UNIQUE,
    crontab        TEXT,
    zone           TEXT,
    every_ms       INTEGER,
    margin_ms      INTEGER NOT NULL,
    max_runtime_ms INTEGER,
    declared_at    INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    judged_until   INTEGER NOT NULL,
    failing        INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE check_ins (
    id            INTEGER PRIMARY KEY,
    monitor_id    INTEGER NOT NULL,
    uid           TEXT    NOT NULL UNIQUE,
    expected_at   INTEGER,
    started_at    INTEGER,
    ended_at      INTEGER,
    status        TEXT    NOT NULL,
    duration_ms   INTEGER,
    exit_code     INTEGER,
    exit_signal   INTEGER,
    host_id       INTEGER,
    pid           INTEGER,
    boot_id       TEXT,
    process_start INTEGER,
    reason        TEXT
);
CREATE UNIQUE INDEX check_ins_expected ON check_ins (monitor_id, expected_at);
CREATE INDEX check_ins_monitor ON check_ins (monitor_id, status, started_at);
"#;

/// Version 11: the flight recorder, each run's readings in chunks
/// (`store::recorder`), found by run and dropped by age.
const V11: &str = r#"
CREATE TABLE run_samples (
    run_id    INTEGER NOT NULL,
    chunk     INTEGER NOT NULL,
    first_at  INTEGER NOT NULL,
    last_at   INTEGER NOT NULL,
    readings  INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (run_id, chunk)
) WITHOUT ROWID;
CREATE INDEX run_samples_last_at ON run_samples(last_at);
"#;

/// Version 9 (#27): each outbox row names the run whose event made it
/// (`origin_run`, a `runs` id: a flush waits for its own process's alerts,
/// whoever sends them), and a claim names the run that holds it
/// (`claim_run`: boot id, pid and process start, so that any process can
/// tell a claim of a run that has ended).
/// Version 10 (triage): merged groups point at the group that took them
/// (`merged_into`; their rows stay, so a fingerprint keeps its group and an
/// unmerge its place); an event in a group other than its fingerprint's
/// names its own (`home_id`, NULL otherwise: a byte for most events);
/// whether the code chose a group's fingerprint (`custom`: regrouping
/// leaves those; a rule's fingerprints are hashed apart from the code's); a
/// group that points at another because its fingerprint followed an
/// earlier grouping (`followed`; regrouping undoes those, never a merge
/// someone made); and
/// the grouping configurations the events were made with.
const V10: &str = r#"
ALTER TABLE event_groups ADD COLUMN merged_into INTEGER;
ALTER TABLE event_groups ADD COLUMN followed INTEGER;
CREATE INDEX event_groups_merged ON event_groups(merged_into) WHERE merged_into IS NOT NULL;
ALTER TABLE events ADD COLUMN home_id INTEGER;
ALTER TABLE event_groups ADD COLUMN custom INTEGER;
CREATE TABLE grouping_configs (
    id          INTEGER PRIMARY KEY,
    config      TEXT    NOT NULL,
    adopted_at  INTEGER NOT NULL,
    retired_at  INTEGER
);
"#;

const V9: &str = r#"
ALTER TABLE outbox ADD COLUMN origin_run INTEGER;
ALTER TABLE outbox ADD COLUMN claim_run TEXT;
"#;

/// Version 8 (#21): each event's request-scoped context (transaction,
/// user, HTTP request) as JSON, and attachments: small blobs kept with
/// their event (`data` NULL when a cap dropped the bytes; `dropped` says
/// which), deleted with it.
const V8: &str = r#"
ALTER TABLE events ADD COLUMN context TEXT;
CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY,
    event_uid     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    content_type  TEXT,
    size          INTEGER NOT NULL,
    data          BLOB,
    dropped       TEXT
);
CREATE INDEX attachments_event ON attachments(event_uid);
-- Deleted with their event, whoever deletes it (older writers too).
CREATE TRIGGER attachments_follow_events AFTER DELETE ON events BEGIN
    DELETE FROM attachments WHERE event_uid = old.uid;
END;
"#;

/// Version 7 (#20): each channel's pending rows by due time, so that the
/// notify thread finds a channel's rows without reading past another
/// channel's backlog (a forwarding channel's server down for hours).
const V7: &str = r#"
CREATE INDEX IF NOT EXISTS outbox_channel_due ON outbox(status, channel, next_attempt);
"#;

/// The dashboard (issue #19): per group, occurrences per hour, the values
/// it was seen with (release, environment, host) and its distinct texts
/// with a full-text index, kept by the writer with each batch (see
/// `store::summary`); and "resolved in the next release". Counts and
/// values are filled here from the stored events; texts by the writer's
/// migration (`summary::backfill_texts`).
const V6: &str = r#"
CREATE TABLE group_hours (
    group_id  INTEGER NOT NULL REFERENCES event_groups(id),
    hour      INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (group_id, hour)
) WITHOUT ROWID;
CREATE INDEX group_hours_hour ON group_hours(hour);
CREATE TABLE group_values (
    group_id    INTEGER NOT NULL REFERENCES event_groups(id),
    key         TEXT    NOT NULL CHECK (key IN ('release', 'environment', 'host')),
    value       TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (group_id, key, value)
) WITHOUT ROWID;
CREATE INDEX group_values_value ON group_values(key, value);
CREATE TABLE group_texts (
    id            INTEGER PRIMARY KEY,
    key           TEXT    NOT NULL UNIQUE,
    group_id      INTEGER NOT NULL REFERENCES event_groups(id),
    backtrace_id  INTEGER,
    head_len      INTEGER NOT NULL,
    body          TEXT    NOT NULL
);
CREATE INDEX group_texts_backtrace ON group_texts(backtrace_id) WHERE backtrace_id IS NOT NULL;
CREATE VIRTUAL TABLE group_texts_fts USING fts5(
    body, content = 'group_texts', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 0'
);
ALTER TABLE event_groups ADD COLUMN resolved_next INTEGER NOT NULL DEFAULT 0;
INSERT INTO group_hours (group_id, hour, count)
    SELECT group_id, ts / 3600000, count(*) FROM events GROUP BY 1, 2;
INSERT INTO group_values (group_id, key, value, count, first_seen, last_seen)
    SELECT group_id, 'release', release, count(*), min(ts), max(ts) FROM events
    WHERE release <> '' GROUP BY group_id, release;
INSERT INTO group_values (group_id, key, value, count, first_seen, last_seen)
    SELECT group_id, 'environment', environment, count(*), min(ts), max(ts) FROM events
    WHERE environment <> '' GROUP BY group_id, environment;
INSERT INTO group_values (group_id, key, value, count, first_seen, last_seen)
    SELECT e.group_id, 'host', h.hostname, count(*), min(e.ts), max(e.ts)
    FROM events e JOIN hosts h ON h.id = e.host_id
    WHERE h.hostname <> '' GROUP BY e.group_id, h.hostname;
"#;

/// Native crashes (issue #17): events of kind `crash`. SQLite cannot change
/// a CHECK constraint, so the events table is rebuilt (rows, ids and the
/// index kept; legacy renaming leaves the views that name `events` as they
/// are). Runs gain their cgroup and why they ended; snapshots their cgroup's
/// figures (JSON); groups the release they were first seen in, resolved in
/// and regressed in.
const V5: &str = r#"
PRAGMA legacy_alter_table = ON;
CREATE TABLE events_v5 (
    id            INTEGER PRIMARY KEY,
    uid           TEXT    NOT NULL UNIQUE,
    ts            INTEGER NOT NULL,
    logger_id     INTEGER NOT NULL REFERENCES loggers(id),
    level         INTEGER NOT NULL CHECK (level BETWEEN 0 AND 5),
    kind          TEXT    NOT NULL CHECK (kind IN ('message', 'error', 'panic', 'crash')),
    message       TEXT    NOT NULL,
    error_chain   TEXT,
    error_type    TEXT,
    file          TEXT,
    line          INTEGER,
    col           INTEGER,
    thread_name   TEXT,
    thread_id     INTEGER NOT NULL,
    pid           INTEGER NOT NULL,
    app_name      TEXT,
    release       TEXT,
    environment   TEXT,
    tags          TEXT,
    extra         TEXT,
    group_id      INTEGER NOT NULL REFERENCES event_groups(id),
    backtrace_id  INTEGER REFERENCES backtraces(id),
    snapshot_id   INTEGER REFERENCES snapshots(id),
    host_id       INTEGER REFERENCES hosts(id),
    alert_channels TEXT,
    breadcrumbs   TEXT,
    redactions    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO events_v5 SELECT * FROM events;
DROP TABLE events;
ALTER TABLE events_v5 RENAME TO events;
CREATE INDEX events_group_ts ON events(group_id, ts);
PRAGMA legacy_alter_table = OFF;
ALTER TABLE runs ADD COLUMN cgroup TEXT;
ALTER TABLE runs ADD COLUMN oom_kills_at_start INTEGER;
ALTER TABLE runs ADD COLUMN memory_max_bytes INTEGER;
ALTER TABLE runs ADD COLUMN end_reason TEXT;
ALTER TABLE snapshots ADD COLUMN cgroup TEXT;
ALTER TABLE event_groups ADD COLUMN first_release TEXT;
ALTER TABLE event_groups ADD COLUMN resolved_release TEXT;
ALTER TABLE event_groups ADD COLUMN regressed_in TEXT;
ALTER TABLE event_groups ADD COLUMN regressed_at INTEGER;
"#;

/// Version 2: the compatibility record.
/// The runs ledger (issue #17): one row per process that opened the store.
const V4: &str = r#"
CREATE TABLE runs (
    id             INTEGER PRIMARY KEY,
    host_id        INTEGER REFERENCES hosts(id),
    boot_id        TEXT,
    pid            INTEGER NOT NULL,
    process_start  INTEGER,
    started_at     INTEGER NOT NULL,
    last_seen      INTEGER,
    last_rss_bytes INTEGER,
    last_cpu_percent REAL,
    ended_at       INTEGER,
    app_name       TEXT,
    release        TEXT,
    build_id       TEXT,
    status         TEXT NOT NULL
                   CHECK (status IN ('running', 'exited', 'crashed', 'abnormal'))
);
CREATE INDEX runs_open ON runs (boot_id) WHERE status = 'running';
"#;

/// Raw frames: each frame's module build-id (issue #16), so a stored stack
/// can be resolved later against the matching binary.
const V3: &str = r#"
ALTER TABLE frames ADD COLUMN build_id TEXT;
"#;

const V2: &str = r#"
CREATE TABLE errsnap_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
"#;

const V1: &str = r#"
CREATE TABLE loggers (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE hosts (
    id                 INTEGER PRIMARY KEY,
    key                TEXT    NOT NULL UNIQUE,
    hostname           TEXT,
    os_name            TEXT,
    os_version         TEXT,
    kernel_version     TEXT,
    arch               TEXT    NOT NULL,
    cpu_brand          TEXT,
    cpu_count          INTEGER NOT NULL,
    physical_cores     INTEGER,
    cpu_frequency_mhz  INTEGER,
    total_memory       INTEGER NOT NULL,
    total_swap         INTEGER NOT NULL,
    boot_time          INTEGER NOT NULL,
    first_seen         INTEGER NOT NULL,
    last_seen          INTEGER NOT NULL
);

CREATE TABLE backtraces (
    id           INTEGER PRIMARY KEY,
    hash         TEXT    NOT NULL UNIQUE,
    frame_count  INTEGER NOT NULL,
    resolved     INTEGER NOT NULL CHECK (resolved IN (0, 1))
);

CREATE TABLE frames (
    backtrace_id   INTEGER NOT NULL REFERENCES backtraces(id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL,
    function       TEXT,
    file           TEXT,
    line           INTEGER,
    col            INTEGER,
    address        INTEGER NOT NULL,
    module         TEXT,
    module_offset  INTEGER,
    in_app         INTEGER NOT NULL CHECK (in_app IN (0, 1)),
    PRIMARY KEY (backtrace_id, idx)
) WITHOUT ROWID;

CREATE TABLE event_groups (
    id               INTEGER PRIMARY KEY,
    fingerprint      TEXT    NOT NULL UNIQUE,
    logger_id        INTEGER NOT NULL REFERENCES loggers(id),
    kind             TEXT    NOT NULL,
    level            INTEGER NOT NULL,
    title            TEXT    NOT NULL,
    culprit          TEXT,
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    count            INTEGER NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'resolved', 'muted')),
    first_event_uid  TEXT    NOT NULL,
    last_event_uid   TEXT    NOT NULL
);
CREATE INDEX event_groups_last_seen ON event_groups(last_seen);

CREATE TABLE snapshots (
    id                    INTEGER PRIMARY KEY,
    taken_at              INTEGER NOT NULL,
    pid                   INTEGER NOT NULL,
    proc_cpu_user_ms      INTEGER,
    proc_cpu_system_ms    INTEGER,
    proc_cpu_percent      REAL,
    proc_rss_bytes        INTEGER NOT NULL,
    proc_virtual_bytes    INTEGER NOT NULL,
    proc_memory_percent   REAL    NOT NULL,
    proc_threads          INTEGER,
    proc_io_read_bytes    INTEGER,
    proc_io_write_bytes   INTEGER,
    proc_open_fds         INTEGER,
    sys_total_memory      INTEGER NOT NULL,
    sys_used_memory       INTEGER NOT NULL,
    sys_available_memory  INTEGER NOT NULL,
    sys_total_swap        INTEGER NOT NULL,
    sys_used_swap         INTEGER NOT NULL,
    sys_cpu_percent       REAL,
    load_1                REAL    NOT NULL,
    load_5                REAL    NOT NULL,
    load_15               REAL    NOT NULL,
    uptime_s              INTEGER NOT NULL
);

CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    uid           TEXT    NOT NULL UNIQUE,
    ts            INTEGER NOT NULL,
    logger_id     INTEGER NOT NULL REFERENCES loggers(id),
    level         INTEGER NOT NULL CHECK (level BETWEEN 0 AND 5),
    kind          TEXT    NOT NULL CHECK (kind IN ('message', 'error', 'panic')),
    message       TEXT    NOT NULL,
    error_chain   TEXT,
    error_type    TEXT,
    file          TEXT,
    line          INTEGER,
    col           INTEGER,
    thread_name   TEXT,
    thread_id     INTEGER NOT NULL,
    pid           INTEGER NOT NULL,
    app_name      TEXT,
    release       TEXT,
    environment   TEXT,
    tags          TEXT,
    extra         TEXT,
    group_id      INTEGER NOT NULL REFERENCES event_groups(id),
    backtrace_id  INTEGER REFERENCES backtraces(id),
    snapshot_id   INTEGER REFERENCES snapshots(id),
    host_id       INTEGER REFERENCES hosts(id),
    alert_channels TEXT,
    breadcrumbs   TEXT,
    redactions    INTEGER NOT NULL DEFAULT 0
);
-- Row ids grow in insertion (so time) order, so listings walk the table
-- newest first. The only secondary index serves the per-group queries and the
-- "N within a window" alert rule; each index costs bytes on every event (see
-- BENCHMARKS.md), so time and logger filters scan in row-id order instead.
CREATE INDEX events_group_ts ON events(group_id, ts);

-- One row per alert to deliver, written in the same transaction as its
-- event. status: pending -> sending (claimed by a process) -> sent | failed;
-- dropped when the channel asked for is not configured.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY,
    event_uid     TEXT    NOT NULL,
    group_id      INTEGER NOT NULL REFERENCES event_groups(id),
    channel       TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('new', 'regression', 'digest', 'test')),
    status        TEXT    NOT NULL
                  CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dropped')),
    suppressed    INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    next_attempt  INTEGER NOT NULL,
    claimed_by    INTEGER,
    claimed_at    INTEGER,
    sent_at       INTEGER,
    last_error    TEXT
);
CREATE INDEX outbox_status_due ON outbox(status, next_attempt);

-- Per group and channel: when it last alerted, and what was held back since.
CREATE TABLE alert_state (
    group_id        INTEGER NOT NULL REFERENCES event_groups(id),
    channel         TEXT    NOT NULL,
    last_alert_at   INTEGER NOT NULL,
    suppressed      INTEGER NOT NULL DEFAULT 0,
    last_event_uid  TEXT    NOT NULL,
    PRIMARY KEY (group_id, channel)
) WITHOUT ROWID;

CREATE TABLE counters (
    name   TEXT    PRIMARY KEY,
    value  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE VIEW hw_logs AS
SELECT e.uid                AS event_id,
       e.ts                 AS ts,
       l.name               AS logger,
       e.message            AS message,
       e.pid                AS pid,
       s.taken_at           AS taken_at,
       s.proc_cpu_user_ms   AS cpu_user_ms,
       s.proc_cpu_system_ms AS cpu_system_ms,
       s.proc_cpu_percent   AS cpu_percent,
       s.proc_rss_bytes     AS rss_bytes,
       s.proc_virtual_bytes AS virtual_bytes,
       s.proc_memory_percent AS memory_percent,
       s.proc_threads       AS threads,
       s.proc_io_read_bytes AS io_read_bytes,
       s.proc_io_write_bytes AS io_write_bytes,
       s.proc_open_fds      AS open_fds,
       s.sys_total_memory   AS sys_total_memory,
       s.sys_used_memory    AS sys_used_memory,
       s.sys_available_memory AS sys_available_memory,
       s.sys_total_swap     AS sys_total_swap,
       s.sys_used_swap      AS sys_used_swap,
       s.sys_cpu_percent    AS sys_cpu_percent,
       s.load_1             AS load_1,
       s.load_5             AS load_5,
       s.load_15            AS load_15,
       s.uptime_s           AS uptime_s
FROM events e
JOIN snapshots s ON s.id = e.snapshot_id
JOIN loggers l ON l.id = e.logger_id;
"#;
