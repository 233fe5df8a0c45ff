-- errsnap's MySQL / MariaDB schema (version 1): the PostgreSQL model of a
-- fleet, in InnoDB. Statements are separated by `;` at the end of a line
-- and each is safe to run again (DDL commits by itself, so the schema is
-- made in idempotent steps under a named lock: `migrate.rs`).
-- `{KEY}` is the NO PAD binary collation of keys (MariaDB's
-- `utf8mb4_nopad_bin`, MySQL 8's `utf8mb4_0900_bin`: plain `utf8mb4_bin`
-- ignores trailing spaces, so `a` and `a ` would be one key); `{TEXT}` the
-- case-insensitive one of searched text.

CREATE TABLE IF NOT EXISTS errsnap_meta (
    "key"  VARCHAR(64) COLLATE {KEY} PRIMARY KEY,
    value  TEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS errsnap_locks (
    id  BIGINT PRIMARY KEY
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS loggers (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(255) NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS hosts (
    id                 BIGINT AUTO_INCREMENT PRIMARY KEY,
    "key"              VARCHAR(255) NOT NULL UNIQUE,
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
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS backtraces (
    id           BIGINT AUTO_INCREMENT PRIMARY KEY,
    hash         VARCHAR(128) NOT NULL UNIQUE,
    frame_count  INTEGER NOT NULL,
    resolved     BOOLEAN NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS frames (
    backtrace_id   BIGINT  NOT NULL,
    idx            INTEGER NOT NULL,
    function       TEXT,
    file           TEXT,
    line           INTEGER,
    col            INTEGER,
    address        BIGINT  NOT NULL,
    module         TEXT,
    module_offset  BIGINT,
    in_app         BOOLEAN NOT NULL,
    build_id       VARCHAR(128),
    PRIMARY KEY (backtrace_id, idx),
    FOREIGN KEY (backtrace_id) REFERENCES backtraces (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS event_groups (
    id               BIGINT AUTO_INCREMENT PRIMARY KEY,
    fingerprint      VARCHAR(128) NOT NULL UNIQUE,
    logger_id        BIGINT  NOT NULL,
    kind             VARCHAR(32) NOT NULL,
    level            SMALLINT NOT NULL,
    title            TEXT    NOT NULL,
    culprit          TEXT,
    first_seen       BIGINT  NOT NULL,
    last_seen        BIGINT  NOT NULL,
    count            BIGINT  NOT NULL,
    status           VARCHAR(16) NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'resolved', 'muted')),
    first_event_uid  VARCHAR(64) NOT NULL,
    last_event_uid   VARCHAR(64) NOT NULL,
    first_release    VARCHAR(255),
    resolved_release VARCHAR(255),
    regressed_in     VARCHAR(255),
    regressed_at     BIGINT,
    resolved_next    BOOLEAN NOT NULL DEFAULT false,
    merged_into      BIGINT,
    followed         BOOLEAN,
    custom           BOOLEAN,
    INDEX event_groups_last_seen (last_seen),
    INDEX event_groups_merged (merged_into),
    FOREIGN KEY (logger_id) REFERENCES loggers (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS snapshots (
    id                    BIGINT AUTO_INCREMENT PRIMARY KEY,
    taken_at              BIGINT NOT NULL,
    pid                   BIGINT NOT NULL,
    proc_cpu_user_ms      BIGINT,
    proc_cpu_system_ms    BIGINT,
    proc_cpu_percent      DOUBLE,
    proc_rss_bytes        BIGINT NOT NULL,
    proc_virtual_bytes    BIGINT NOT NULL,
    proc_memory_percent   DOUBLE NOT NULL,
    proc_threads          BIGINT,
    proc_io_read_bytes    BIGINT,
    proc_io_write_bytes   BIGINT,
    proc_open_fds         BIGINT,
    sys_total_memory      BIGINT NOT NULL,
    sys_used_memory       BIGINT NOT NULL,
    sys_available_memory  BIGINT NOT NULL,
    sys_total_swap        BIGINT NOT NULL,
    sys_used_swap         BIGINT NOT NULL,
    sys_cpu_percent       DOUBLE,
    load_1                DOUBLE NOT NULL,
    load_5                DOUBLE NOT NULL,
    load_15               DOUBLE NOT NULL,
    uptime_s              BIGINT NOT NULL,
    cgroup                LONGTEXT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

-- The hot table, without foreign keys (as on PostgreSQL: the writer
-- inserts the rows it points to first, in the same transaction).
CREATE TABLE IF NOT EXISTS events (
    id             BIGINT AUTO_INCREMENT PRIMARY KEY,
    uid            VARCHAR(64) NOT NULL UNIQUE,
    ts             BIGINT  NOT NULL,
    logger_id      BIGINT  NOT NULL,
    level          SMALLINT NOT NULL CHECK (level BETWEEN 0 AND 5),
    kind           VARCHAR(32) NOT NULL,
    message        LONGTEXT NOT NULL,
    error_chain    LONGTEXT,
    error_type     TEXT,
    file           TEXT,
    line           INTEGER,
    col            INTEGER,
    thread_name    TEXT,
    thread_id      BIGINT  NOT NULL,
    pid            BIGINT  NOT NULL,
    app_name       TEXT,
    "release"      VARCHAR(255),
    environment    VARCHAR(255),
    tags           LONGTEXT,
    extra          LONGTEXT,
    group_id       BIGINT  NOT NULL,
    backtrace_id   BIGINT,
    snapshot_id    BIGINT,
    host_id        BIGINT,
    alert_channels TEXT,
    breadcrumbs    LONGTEXT,
    redactions     INTEGER NOT NULL DEFAULT 0,
    context        LONGTEXT,
    home_id        BIGINT,
    INDEX events_group_ts (group_id, ts),
    INDEX events_ts (ts)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS attachments (
    id            BIGINT AUTO_INCREMENT PRIMARY KEY,
    event_uid     VARCHAR(64) NOT NULL,
    name          TEXT    NOT NULL,
    content_type  TEXT,
    size          BIGINT  NOT NULL,
    data          LONGBLOB,
    dropped       TEXT,
    INDEX attachments_event (event_uid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS outbox (
    id            BIGINT AUTO_INCREMENT PRIMARY KEY,
    event_uid     VARCHAR(64) NOT NULL,
    group_id      BIGINT  NOT NULL,
    channel       VARCHAR(64) NOT NULL,
    kind          VARCHAR(32) NOT NULL,
    status        VARCHAR(16) NOT NULL,
    suppressed    BIGINT  NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    next_attempt  BIGINT  NOT NULL,
    claimed_by    TEXT,
    claimed_at    BIGINT,
    sent_at       BIGINT,
    last_error    TEXT,
    origin_run    BIGINT,
    claim_run     TEXT,
    INDEX outbox_status_due (status, next_attempt),
    INDEX outbox_channel_due (status, channel, next_attempt),
    FOREIGN KEY (group_id) REFERENCES event_groups (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS group_hosts (
    group_id  BIGINT NOT NULL,
    host_id   BIGINT NOT NULL,
    PRIMARY KEY (group_id, host_id),
    FOREIGN KEY (group_id) REFERENCES event_groups (id) ON DELETE CASCADE,
    FOREIGN KEY (host_id) REFERENCES hosts (id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS alert_state (
    group_id        BIGINT NOT NULL,
    channel         VARCHAR(64) NOT NULL,
    last_alert_at   BIGINT NOT NULL,
    suppressed      BIGINT NOT NULL DEFAULT 0,
    last_event_uid  VARCHAR(64) NOT NULL,
    PRIMARY KEY (group_id, channel),
    FOREIGN KEY (group_id) REFERENCES event_groups (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS counters (
    name   VARCHAR(255) PRIMARY KEY,
    value  BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

CREATE TABLE IF NOT EXISTS runs (
    id             BIGINT AUTO_INCREMENT PRIMARY KEY,
    host_id        BIGINT,
    boot_id        VARCHAR(64),
    pid            INTEGER NOT NULL,
    process_start  BIGINT,
    started_at     BIGINT  NOT NULL,
    last_seen      BIGINT,
    last_rss_bytes BIGINT,
    last_cpu_percent DOUBLE,
    ended_at       BIGINT,
    app_name       TEXT,
    "release"      VARCHAR(255),
    build_id       VARCHAR(128),
    status         VARCHAR(16) NOT NULL
                   CHECK (status IN ('running', 'exited', 'crashed', 'abnormal')),
    cgroup         TEXT,
    oom_kills_at_start BIGINT,
    memory_max_bytes BIGINT,
    end_reason     TEXT,
    INDEX runs_boot_status (boot_id, status),
    FOREIGN KEY (host_id) REFERENCES hosts (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

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

CREATE TABLE IF NOT EXISTS group_hours (
    group_id  BIGINT NOT NULL,
    hour      BIGINT NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (group_id, hour),
    INDEX group_hours_hour (hour),
    FOREIGN KEY (group_id) REFERENCES event_groups (id) ON DELETE CASCADE
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS group_values (
    group_id    BIGINT NOT NULL,
    "key"       VARCHAR(16) NOT NULL CHECK ("key" IN ('release', 'environment', 'host')),
    value       VARCHAR(255) NOT NULL,
    count       BIGINT NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    PRIMARY KEY (group_id, "key", value),
    INDEX group_values_value ("key", value),
    FOREIGN KEY (group_id) REFERENCES event_groups (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

-- Searched with InnoDB's full-text index, which splits on what is not a
-- letter or digit and skips stopwords and words under its minimum length.
CREATE TABLE IF NOT EXISTS group_texts (
    id            BIGINT AUTO_INCREMENT PRIMARY KEY,
    "key"         VARCHAR(128) NOT NULL UNIQUE,
    group_id      BIGINT NOT NULL,
    backtrace_id  BIGINT,
    head_len      BIGINT NOT NULL,
    body          MEDIUMTEXT COLLATE {TEXT} NOT NULL,
    INDEX group_texts_backtrace (backtrace_id),
    FULLTEXT INDEX group_texts_body (body),
    FOREIGN KEY (group_id) REFERENCES event_groups (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

-- Version 2 (triage): merged groups point at the group that took them;
-- an event in a group other than its fingerprint's names its own; whether
-- the code chose its fingerprint; the grouping configurations. (A column
-- or index already there is skipped: `migrate.rs`.)
ALTER TABLE event_groups ADD COLUMN merged_into BIGINT;
ALTER TABLE event_groups ADD COLUMN followed BOOLEAN;
ALTER TABLE event_groups ADD INDEX event_groups_merged (merged_into);
ALTER TABLE events ADD COLUMN home_id BIGINT;
ALTER TABLE event_groups ADD COLUMN custom BOOLEAN;
CREATE TABLE IF NOT EXISTS grouping_configs (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    config      LONGTEXT NOT NULL,
    adopted_at  BIGINT NOT NULL,
    retired_at  BIGINT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

-- Version 3: the flight recorder, each run's readings in chunks
-- (`store::recorder`), found by run and dropped by age.
CREATE TABLE IF NOT EXISTS run_samples (
    run_id    BIGINT  NOT NULL,
    chunk     INTEGER NOT NULL,
    first_at  BIGINT  NOT NULL,
    last_at   BIGINT  NOT NULL,
    readings  INTEGER NOT NULL,
    data      MEDIUMBLOB NOT NULL,
    PRIMARY KEY (run_id, chunk),
    INDEX run_samples_last_at (last_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

-- Version 4: monitors and their check-ins; one row per (monitor, expected
-- time), so a missed run is found once across a fleet.
CREATE TABLE IF NOT EXISTS monitors (
    id             BIGINT AUTO_INCREMENT PRIMARY KEY,
    slug           VARCHAR(64) NOT NULL,
    crontab        VARCHAR(255),
    zone           VARCHAR(64),
    every_ms       BIGINT,
    margin_ms      BIGINT NOT NULL,
    max_runtime_ms BIGINT,
    declared_at    BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    judged_until   BIGINT NOT NULL,
    failing        BIGINT NOT NULL DEFAULT 0,
    UNIQUE KEY monitors_slug (slug)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};
CREATE TABLE IF NOT EXISTS check_ins (
    id            BIGINT AUTO_INCREMENT PRIMARY KEY,
    monitor_id    BIGINT NOT NULL,
    uid           CHAR(32) NOT NULL,
    expected_at   BIGINT,
    started_at    BIGINT,
    ended_at      BIGINT,
    status        VARCHAR(16) NOT NULL,
    duration_ms   BIGINT,
    exit_code     BIGINT,
    exit_signal   BIGINT,
    host_id       BIGINT,
    pid           BIGINT,
    boot_id       VARCHAR(64),
    process_start BIGINT,
    reason        TEXT,
    UNIQUE KEY check_ins_uid (uid),
    UNIQUE KEY check_ins_expected (monitor_id, expected_at),
    INDEX check_ins_monitor (monitor_id, status, started_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {KEY};

-- Version 5: the outbox also carries what forwarding channels send that is
-- not an event (kind check_in, session, client_report): such a row has no
-- group, names its item in event_uid and holds the item in payload.
ALTER TABLE outbox MODIFY group_id BIGINT NULL;
ALTER TABLE outbox ADD COLUMN payload MEDIUMTEXT;
