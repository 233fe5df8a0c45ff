-- errsnap's PostgreSQL schema (version 1): the SQLite model for a fleet.
-- Every host writes into the same tables; ids are assigned by the server;
-- events are unique by `uid` (an event forwarded twice is stored once).

CREATE TABLE IF NOT EXISTS errsnap_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS loggers (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS hosts (
    id                 BIGSERIAL PRIMARY KEY,
    key                TEXT    NOT NULL UNIQUE,
    hostname           TEXT,
    os_name            TEXT,
    os_version         TEXT,
    kernel_version     TEXT,
    arch               TEXT    NOT NULL,
    cpu_brand          TEXT,
    cpu_count          INTEGER NOT NULL,
    physical_cores     INTEGER,
    cpu_frequency_mhz  BIGINT,
    total_memory       BIGINT  NOT NULL,
    total_swap         BIGINT  NOT NULL,
    boot_time          BIGINT  NOT NULL,
    first_seen         BIGINT  NOT NULL,
    last_seen          BIGINT  NOT NULL
);

CREATE TABLE IF NOT EXISTS backtraces (
    id           BIGSERIAL PRIMARY KEY,
    hash         TEXT    NOT NULL UNIQUE,
    frame_count  INTEGER NOT NULL,
    resolved     BOOLEAN NOT NULL
);

CREATE TABLE IF NOT EXISTS frames (
    backtrace_id   BIGINT  NOT NULL REFERENCES backtraces(id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL,
    function       TEXT,
    file           TEXT,
    line           INTEGER,
    col            INTEGER,
    address        BIGINT  NOT NULL,
    module         TEXT,
    module_offset  BIGINT,
    in_app         BOOLEAN NOT NULL,
    build_id       TEXT,
    PRIMARY KEY (backtrace_id, idx)
);

CREATE TABLE IF NOT EXISTS event_groups (
    id               BIGSERIAL PRIMARY KEY,
    fingerprint      TEXT    NOT NULL UNIQUE,
    logger_id        BIGINT  NOT NULL REFERENCES loggers(id),
    kind             TEXT    NOT NULL,
    level            SMALLINT NOT NULL,
    title            TEXT    NOT NULL,
    culprit          TEXT,
    first_seen       BIGINT  NOT NULL,
    last_seen        BIGINT  NOT NULL,
    count            BIGINT  NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'resolved', 'muted')),
    first_event_uid  TEXT    NOT NULL,
    last_event_uid   TEXT    NOT NULL,
    first_release    TEXT,
    resolved_release TEXT,
    regressed_in     TEXT,
    regressed_at     BIGINT
);
CREATE INDEX IF NOT EXISTS event_groups_last_seen ON event_groups (last_seen);
-- Version 2: resolved in the next release (quiet for the release it was
-- resolved in).
ALTER TABLE event_groups ADD COLUMN IF NOT EXISTS resolved_next BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS snapshots (
    id                    BIGSERIAL PRIMARY KEY,
    taken_at              BIGINT NOT NULL,
    pid                   BIGINT NOT NULL,
    proc_cpu_user_ms      BIGINT,
    proc_cpu_system_ms    BIGINT,
    proc_cpu_percent      DOUBLE PRECISION,
    proc_rss_bytes        BIGINT NOT NULL,
    proc_virtual_bytes    BIGINT NOT NULL,
    proc_memory_percent   DOUBLE PRECISION NOT NULL,
    proc_threads          BIGINT,
    proc_io_read_bytes    BIGINT,
    proc_io_write_bytes   BIGINT,
    proc_open_fds         BIGINT,
    sys_total_memory      BIGINT NOT NULL,
    sys_used_memory       BIGINT NOT NULL,
    sys_available_memory  BIGINT NOT NULL,
    sys_total_swap        BIGINT NOT NULL,
    sys_used_swap         BIGINT NOT NULL,
    sys_cpu_percent       DOUBLE PRECISION,
    load_1                DOUBLE PRECISION NOT NULL,
    load_5                DOUBLE PRECISION NOT NULL,
    load_15               DOUBLE PRECISION NOT NULL,
    uptime_s              BIGINT NOT NULL,
    cgroup                JSONB
);

-- The hot table: its ids point to loggers, event_groups, backtraces,
-- snapshots and hosts, but without foreign-key constraints, whose checks
-- would cost four lookups per inserted row; the writer inserts those rows
-- first, in the same transaction, and retention never deletes a group.
CREATE TABLE IF NOT EXISTS events (
    id             BIGSERIAL PRIMARY KEY,
    uid            TEXT    NOT NULL UNIQUE,
    ts             BIGINT  NOT NULL,
    logger_id      BIGINT  NOT NULL,
    level          SMALLINT NOT NULL CHECK (level BETWEEN 0 AND 5),
    kind           TEXT    NOT NULL,
    message        TEXT    NOT NULL,
    error_chain    JSONB,
    error_type     TEXT,
    file           TEXT,
    line           INTEGER,
    col            INTEGER,
    thread_name    TEXT,
    thread_id      BIGINT  NOT NULL,
    pid            BIGINT  NOT NULL,
    app_name       TEXT,
    release        TEXT,
    environment    TEXT,
    tags           JSONB,
    extra          JSONB,
    group_id       BIGINT  NOT NULL,
    backtrace_id   BIGINT,
    snapshot_id    BIGINT,
    host_id        BIGINT,
    alert_channels TEXT,
    breadcrumbs    JSONB,
    redactions     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_group_ts ON events (group_id, ts);
-- Version 3 (#21): the request-scoped context (transaction, user, request).
ALTER TABLE events ADD COLUMN IF NOT EXISTS context JSONB;

-- Version 3 (#21): attachments, kept with their event and deleted with it;
-- data is NULL when a cap dropped the bytes (dropped says which).
CREATE TABLE IF NOT EXISTS attachments (
    id            BIGSERIAL PRIMARY KEY,
    event_uid     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    content_type  TEXT,
    size          BIGINT  NOT NULL,
    data          BYTEA,
    dropped       TEXT
);
CREATE INDEX IF NOT EXISTS attachments_event ON attachments (event_uid);

-- Alerts to deliver; claimed row by row with FOR UPDATE SKIP LOCKED, so
-- every process of a fleet can deliver and none sends a row twice.
CREATE TABLE IF NOT EXISTS outbox (
    id            BIGSERIAL PRIMARY KEY,
    event_uid     TEXT    NOT NULL,
    group_id      BIGINT  NOT NULL REFERENCES event_groups(id),
    channel       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    suppressed    BIGINT  NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    next_attempt  BIGINT  NOT NULL,
    claimed_by    TEXT,
    claimed_at    BIGINT,
    sent_at       BIGINT,
    last_error    TEXT
);
CREATE INDEX IF NOT EXISTS outbox_status_due ON outbox (status, next_attempt);
-- The run whose event made the row (a flush waits for its own alerts,
-- whoever sends them), and the run that holds a claim (boot id, pid and
-- process start: any host can tell a claim of a run that has ended) (#27).
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS origin_run BIGINT;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claim_run TEXT;
-- Each channel's pending rows by due time (#20; in databases made since).
CREATE INDEX IF NOT EXISTS outbox_channel_due ON outbox (status, channel, next_attempt);

-- The hosts each group was seen on (alerts say on how many).
CREATE TABLE IF NOT EXISTS group_hosts (
    group_id  BIGINT NOT NULL REFERENCES event_groups(id) ON DELETE CASCADE,
    host_id   BIGINT NOT NULL REFERENCES hosts(id),
    PRIMARY KEY (group_id, host_id)
);

CREATE TABLE IF NOT EXISTS alert_state (
    group_id        BIGINT NOT NULL REFERENCES event_groups(id),
    channel         TEXT   NOT NULL,
    last_alert_at   BIGINT NOT NULL,
    suppressed      BIGINT NOT NULL DEFAULT 0,
    last_event_uid  TEXT   NOT NULL,
    PRIMARY KEY (group_id, channel)
);

CREATE TABLE IF NOT EXISTS counters (
    name   TEXT   PRIMARY KEY,
    value  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
    id             BIGSERIAL PRIMARY KEY,
    host_id        BIGINT REFERENCES hosts(id),
    boot_id        TEXT,
    pid            INTEGER NOT NULL,
    process_start  BIGINT,
    started_at     BIGINT  NOT NULL,
    last_seen      BIGINT,
    last_rss_bytes BIGINT,
    last_cpu_percent DOUBLE PRECISION,
    ended_at       BIGINT,
    app_name       TEXT,
    release        TEXT,
    build_id       TEXT,
    status         TEXT    NOT NULL
                   CHECK (status IN ('running', 'exited', 'crashed', 'abnormal')),
    cgroup         TEXT,
    oom_kills_at_start BIGINT,
    memory_max_bytes BIGINT,
    end_reason     TEXT
);
CREATE INDEX IF NOT EXISTS runs_open ON runs (boot_id) WHERE status = 'running';

-- The original design's table: events with their snapshots.
CREATE OR REPLACE VIEW hw_logs AS
SELECT e.uid                AS event_id,
       e.ts                 AS ts,
       l.name               AS logger,
       e.message            AS message,
       e.pid                AS pid,
       h.hostname           AS hostname,
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
JOIN loggers l ON l.id = e.logger_id
LEFT JOIN hosts h ON h.id = e.host_id;

-- Version 2 (the dashboard): per group, occurrences per hour, the values
-- it was seen with, and its distinct texts with a full-text index; kept by
-- the writer with each batch (store/summary.rs).
CREATE TABLE IF NOT EXISTS group_hours (
    group_id  BIGINT NOT NULL REFERENCES event_groups(id) ON DELETE CASCADE,
    hour      BIGINT NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (group_id, hour)
);
CREATE INDEX IF NOT EXISTS group_hours_hour ON group_hours (hour);
CREATE TABLE IF NOT EXISTS group_values (
    group_id    BIGINT NOT NULL REFERENCES event_groups(id) ON DELETE CASCADE,
    key         TEXT   NOT NULL CHECK (key IN ('release', 'environment', 'host')),
    value       TEXT   NOT NULL,
    count       BIGINT NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    PRIMARY KEY (group_id, key, value)
);
CREATE INDEX IF NOT EXISTS group_values_value ON group_values (key, value);
CREATE TABLE IF NOT EXISTS group_texts (
    id        BIGSERIAL PRIMARY KEY,
    key       TEXT   NOT NULL UNIQUE,
    group_id  BIGINT NOT NULL REFERENCES event_groups(id) ON DELETE CASCADE,
    backtrace_id BIGINT,
    head_len  BIGINT NOT NULL,
    body      TEXT   NOT NULL,
    -- Split on what is not a letter or digit, as SQLite's FTS5 (unicode61)
    -- splits: `src/db.rs` and `app::db::connect` are found by `db`.
    words     tsvector GENERATED ALWAYS AS
              (to_tsvector('simple', regexp_replace(body, '[^[:alnum:]]+', ' ', 'g'))) STORED
);
CREATE INDEX IF NOT EXISTS group_texts_words ON group_texts USING gin (words);
CREATE INDEX IF NOT EXISTS group_texts_backtrace ON group_texts (backtrace_id)
    WHERE backtrace_id IS NOT NULL;

-- Version 5 (triage): merged groups point at the group that took them;
-- an event in a group other than its fingerprint's names its own
-- (`home_id`, NULL otherwise); whether the code chose a group's fingerprint; the
-- grouping configurations the events were made with.
ALTER TABLE event_groups ADD COLUMN IF NOT EXISTS merged_into BIGINT;
ALTER TABLE event_groups ADD COLUMN IF NOT EXISTS followed BOOLEAN;
CREATE INDEX IF NOT EXISTS event_groups_merged ON event_groups (merged_into)
    WHERE merged_into IS NOT NULL;
ALTER TABLE events ADD COLUMN IF NOT EXISTS home_id BIGINT;
ALTER TABLE event_groups ADD COLUMN IF NOT EXISTS custom BOOLEAN;
CREATE TABLE IF NOT EXISTS grouping_configs (
    id          BIGSERIAL PRIMARY KEY,
    config      TEXT   NOT NULL,
    adopted_at  BIGINT NOT NULL,
    retired_at  BIGINT
);

-- Version 6: the flight recorder, each run's readings in chunks
-- (`store::recorder`), found by run and dropped by age.
CREATE TABLE IF NOT EXISTS run_samples (
    run_id    BIGINT  NOT NULL,
    chunk     INTEGER NOT NULL,
    first_at  BIGINT  NOT NULL,
    last_at   BIGINT  NOT NULL,
    readings  INTEGER NOT NULL,
    data      BYTEA   NOT NULL,
    PRIMARY KEY (run_id, chunk)
);
CREATE INDEX IF NOT EXISTS run_samples_last_at ON run_samples (last_at);

-- Version 7: monitors and their check-ins; one row per (monitor, expected
-- time), so a missed run is found once across a fleet.
CREATE TABLE IF NOT EXISTS monitors (
    id             BIGSERIAL PRIMARY KEY,
    slug           TEXT    NOT NULL UNIQUE,
    crontab        TEXT,
    zone           TEXT,
    every_ms       BIGINT,
    margin_ms      BIGINT  NOT NULL,
    max_runtime_ms BIGINT,
    declared_at    BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    judged_until   BIGINT  NOT NULL,
    failing        BIGINT  NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS check_ins (
    id            BIGSERIAL PRIMARY KEY,
    monitor_id    BIGINT  NOT NULL,
    uid           TEXT    NOT NULL UNIQUE,
    expected_at   BIGINT,
    started_at    BIGINT,
    ended_at      BIGINT,
    status        TEXT    NOT NULL,
    duration_ms   BIGINT,
    exit_code     BIGINT,
    exit_signal   BIGINT,
    host_id       BIGINT,
    pid           BIGINT,
    boot_id       TEXT,
    process_start BIGINT,
    reason        TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS check_ins_expected ON check_ins (monitor_id, expected_at);
CREATE INDEX IF NOT EXISTS check_ins_monitor ON check_ins (monitor_id, status, started_at);

-- Version 8: the outbox also carries what forwarding channels send that is
-- not an event (kind check_in, session, client_report): such a row has no
-- group, names its item in event_uid and holds the item in payload.
ALTER TABLE outbox ALTER COLUMN group_id DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS payload TEXT;
