//! What the read side returns, whatever the store behind it: groups,
//! events, one event in full, statistics, checks, exports.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::event::{AlertKind, Breadcrumb, ChainLink, EventKind, Frame};
use crate::event::{HostInfo, Snapshot};
use crate::level::Level;

/// The status of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum GroupStatus {
    /// Alerts as usual.
    Open,
    /// Fixed: if it happens again it reopens and alerts (a regression).
    Resolved,
    /// Known: stored, never alerted.
    Muted,
    /// Fixed in the next release: occurrences from the release it was
    /// resolved in (the newest its events had) are counted quietly; one
    /// from any other release reopens it and alerts (a regression).
    #[serde(rename = "resolved-next")]
    ResolvedInNextRelease,
}

impl GroupStatus {
    /// The name shown and accepted (`open`, `resolved`, `muted`,
    /// `resolved-next`).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Open => "open",
            GroupStatus::Resolved => "resolved",
            GroupStatus::Muted => "muted",
            GroupStatus::ResolvedInNextRelease => "resolved-next",
        }
    }

    /// The stored `status` column (resolved in the next release is stored
    /// as resolved, with a mark).
    pub(crate) fn stored(self) -> &'static str {
        match self {
            GroupStatus::ResolvedInNextRelease => "resolved",
            other => other.as_str(),
        }
    }
}

impl std::str::FromStr for GroupStatus {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" | "unresolved" | "reopen" => Ok(GroupStatus::Open),
            "resolved" | "resolve" => Ok(GroupStatus::Resolved),
            "muted" | "mute" | "ignored" => Ok(GroupStatus::Muted),
            "resolved-next" | "next-release" | "resolve-next" | "resolved-in-next-release" => {
                Ok(GroupStatus::ResolvedInNextRelease)
            }
            _ => Err(format!(
                "unknown status {s:?}: expected open, resolved, resolved-next or muted"
            )),
        }
    }
}

impl GroupStatus {
    /// The status of a stored name (`None` for a name this build does not
    /// know).
    pub fn from_name(s: &str) -> Option<GroupStatus> {
        match s {
            "open" => Some(GroupStatus::Open),
            "resolved" => Some(GroupStatus::Resolved),
            "muted" => Some(GroupStatus::Muted),
            "resolved-next" => Some(GroupStatus::ResolvedInNextRelease),
            _ => None,
        }
    }
}

impl std::fmt::Display for GroupStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the delivery of one alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// Waiting for its channel (first try or a retry).
    Pending,
    /// Claimed by a notify thread, being sent.
    Sending,
    /// Delivered.
    Sent,
    /// Given up: the channel refused it for good, or retries ran out.
    Failed,
    /// Never sent: its channel is not configured.
    Dropped,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dropped => "dropped",
        }
    }

    /// The status of a stored name (`None` for a name this build does not
    /// know).
    pub fn from_name(s: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Sending,
            DeliveryStatus::Sent,
            DeliveryStatus::Failed,
            DeliveryStatus::Dropped,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Order of [`Database::groups`](crate::db::Database::groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GroupOrder {
    /// Most recently seen first.
    #[default]
    LastSeen,
    /// Most frequent first.
    Count,
    /// Newest first (by first seen).
    FirstSeen,
}

/// Which groups to list. Every field narrows the selection.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct GroupQuery {
    /// Order.
    pub order: GroupOrder,
    /// Only this logger.
    pub logger: Option<String>,
    /// Only this status (`Resolved` also selects those resolved in the next
    /// release).
    pub status: Option<GroupStatus>,
    /// Only groups first seen in this release.
    pub new_in: Option<String>,
    /// Only groups whose highest level is at least this.
    pub min_level: Option<Level>,
    /// Only groups seen with this release.
    pub release: Option<String>,
    /// Only groups seen in this environment.
    pub environment: Option<String>,
    /// Only groups seen on this host (its name).
    pub host: Option<String>,
    /// Only groups with an occurrence at or after this time (ms; to the
    /// hour).
    pub since: Option<i64>,
    /// Only groups with an occurrence before this time (ms; to the hour).
    pub until: Option<i64>,
    /// Skip this many (paging).
    pub offset: usize,
    /// At most this many (0: no limit).
    pub limit: usize,
    /// Only these groups (for [`Database::group`](crate::db::Database::group)
    /// and search hits; empty: no such filter).
    pub(crate) ids: Vec<i64>,
    /// Only the groups merged into this one (else merged groups are left
    /// out unless named by id).
    pub merged_into: Option<i64>,
}

/// Occurrences in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HourCount {
    /// The group (`None` in totals over every group).
    pub group: Option<i64>,
    /// Start of the hour (ms since the Unix epoch, UTC).
    pub hour_ms: i64,
    /// Occurrences.
    pub count: u64,
}

/// A value a group was seen with (a release, an environment, a host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GroupValue {
    /// `release`, `environment` or `host`.
    pub key: String,
    /// The value.
    pub value: String,
    /// Occurrences with it.
    pub count: i64,
    /// First seen with it (ms).
    pub first_seen: i64,
    /// Last seen with it (ms).
    pub last_seen: i64,
}

/// A group found by [`Database::search`](crate::db::Database::search).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SearchHit {
    /// The group.
    pub group: GroupRow,
    /// The best matching text (message, chain, frames), cut short.
    pub text: String,
}

/// The process figures of one occurrence (for charts across a group).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Sample {
    /// When (ms).
    pub ts: i64,
    /// Process CPU %.
    pub cpu_percent: Option<f64>,
    /// Resident memory (bytes).
    pub rss_bytes: i64,
    /// Share of the host's memory (%).
    pub memory_percent: f64,
}

/// The newest error recorded on channel `o.channel` and when its delivery
/// was made (two columns; the same SQL in both dialects).
pub(crate) const NEWEST_CHANNEL_ERROR: &str =
    "(SELECT last_error FROM outbox x WHERE x.channel = o.channel
       AND x.last_error IS NOT NULL AND x.status <> 'dropped' ORDER BY x.id DESC LIMIT 1),
    (SELECT created_at FROM outbox x WHERE x.channel = o.channel
       AND x.last_error IS NOT NULL AND x.status <> 'dropped' ORDER BY x.id DESC LIMIT 1)";

/// How alert deliveries on one channel stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ChannelHealth {
    /// The channel.
    pub channel: String,
    /// Waiting (first try or a retry), or being sent.
    pub pending: i64,
    /// Given up.
    pub failed: i64,
    /// Delivered.
    pub sent: i64,
    /// The newest error recorded on the channel (already free of secrets).
    pub last_error: Option<String>,
    /// When that delivery was created (ms).
    pub last_error_at: Option<i64>,
}

/// One group, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GroupRow {
    /// Group id.
    pub id: i64,
    /// Fingerprint (hex).
    pub fingerprint: String,
    /// Logger.
    pub logger: String,
    /// Highest level seen.
    pub level: Level,
    /// What the group's first event was.
    pub kind: EventKind,
    /// First line of the first message.
    pub title: String,
    /// Top in-app function or location.
    pub culprit: Option<String>,
    /// First seen (ms).
    pub first_seen: i64,
    /// Last seen (ms).
    pub last_seen: i64,
    /// Occurrences.
    pub count: i64,
    /// Open, resolved or muted.
    pub status: GroupStatus,
    /// Id of the last event.
    pub last_event: String,
    /// The release of its first event: the group is new in it.
    pub first_release: Option<String>,
    /// The release it came back in after it was resolved (a regression),
    /// until it is resolved again.
    pub regressed_in: Option<String>,
    /// When it came back after it was resolved (ms since the Unix epoch).
    pub regressed_at: Option<i64>,
    /// The group it was merged into (its events, and its fingerprint's
    /// future events, are there; listed only by id or by
    /// [`GroupQuery::merged_into`]).
    pub merged_into: Option<i64>,
}

/// What a merge or an unmerge changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MergeReport {
    /// The group that took the others (a merge), or the one it left (an
    /// unmerge).
    pub into: i64,
    /// The groups merged, or the group taken back out.
    pub groups: Vec<i64>,
    /// Stored events that moved.
    pub events: u64,
}

/// What `errsnap regroup` found (a dry run) or did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RegroupReport {
    /// Whether the events were moved (else: a dry run).
    pub applied: bool,
    /// Events read.
    pub scanned: u64,
    /// Events whose fingerprint the code chose, left where they are.
    pub custom: u64,
    /// Events a rule now ignores: stored before, left where they are.
    pub ignored: u64,
    /// Events that move (or moved).
    pub events: u64,
    /// Where they go, by group they leave and fingerprint they take.
    pub moves: Vec<RegroupMove>,
    /// Groups left without events, merged into the group that took most.
    pub emptied: Vec<i64>,
}

/// Events of one group that take another fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RegroupMove {
    /// The group they leave.
    pub from: i64,
    /// Its title.
    pub from_title: String,
    /// The group they join (`None`: a new one, made by the run).
    pub to: Option<i64>,
    /// The fingerprint they take.
    pub fingerprint: String,
    /// How many.
    pub events: u64,
}

/// Which events to list. Every field narrows the selection.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EventFilter {
    /// Group id.
    pub group: Option<i64>,
    /// Logger name.
    pub logger: Option<String>,
    /// Lowest level.
    pub min_level: Option<Level>,
    /// From this time (ms, inclusive).
    pub since: Option<i64>,
    /// Before this time (ms, exclusive).
    pub until: Option<i64>,
    /// Text contained in the message (case-insensitive for ASCII).
    pub grep: Option<String>,
    /// Source file (suffix match), optionally with a line.
    pub file: Option<(String, Option<u32>)>,
    /// Only events stored after this row id (for following).
    pub after_row: Option<i64>,
    /// Only events stored before this row id.
    pub before_row: Option<i64>,
    /// Newest first (default: oldest first).
    pub newest_first: bool,
    /// At most this many (0: no limit).
    pub limit: usize,
}

/// One event, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EventRow {
    /// Row id (increases with each insert).
    #[serde(skip)]
    pub row: i64,
    /// Event id.
    pub id: String,
    /// Time (ms).
    pub ts: i64,
    /// Logger.
    pub logger: String,
    /// Level.
    pub level: Level,
    /// A message, a captured error or a panic.
    pub kind: EventKind,
    /// The full message.
    pub message: String,
    /// Source file.
    pub file: Option<String>,
    /// Line.
    pub line: Option<u32>,
    /// Group id.
    pub group: i64,
    /// Thread name.
    pub thread: Option<String>,
    /// Process id.
    pub pid: u32,
}

/// The status of one alert of an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AlertStatus {
    /// Channel.
    pub channel: String,
    /// Why the alert was made.
    pub kind: AlertKind,
    /// Where its delivery stands.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// When it was sent (ms).
    pub sent_at: Option<i64>,
}

/// One event in full.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EventDetail {
    /// The listing fields.
    #[serde(flatten)]
    pub row: EventRow,
    /// Column in the source line.
    pub column: Option<u32>,
    /// Thread id.
    pub thread_id: u64,
    /// Error chain, outermost first.
    pub chain: Vec<ChainLink>,
    /// Application name.
    pub app_name: Option<String>,
    /// Release.
    pub release: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Extra data.
    pub extra: serde_json::Value,
    /// Breadcrumbs, oldest first.
    pub breadcrumbs: Vec<Breadcrumb>,
    /// How many secrets redaction replaced.
    pub redactions: i64,
    /// The group's fingerprint, title, count and status.
    pub group_fingerprint: String,
    /// Group title.
    pub group_title: String,
    /// Group count.
    pub group_count: i64,
    /// Group status.
    pub group_status: GroupStatus,
    /// Backtrace, innermost first.
    pub frames: Vec<Frame>,
    /// Whether every frame was resolved when stored.
    pub symbols_resolved: bool,
    /// The snapshot, if one was taken.
    pub snapshot: Option<Snapshot>,
    /// The host.
    pub host: Option<HostInfo>,
    /// Alerts and their delivery.
    pub alerts: Vec<AlertStatus>,
    /// The transaction (`GET /users/{id}`), from the scope it was raised in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// The user, from the scope it was raised in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<crate::event::User>,
    /// The HTTP request it was raised while handling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<crate::event::Request>,
    /// Its attachments, without their bytes (see
    /// [`Database::attachments`](crate::db::Database::attachments)).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::event::StoredAttachment>,
}

impl EventDetail {
    /// Fills the transaction, user and request from the stored `context`
    /// column's JSON.
    pub(crate) fn set_context(&mut self, json: Option<&str>) {
        let Some(ctx) =
            json.and_then(|j| serde_json::from_str::<crate::event::EventContext>(j).ok())
        else {
            return;
        };
        self.transaction = ctx.transaction;
        self.user = ctx.user;
        self.request = ctx.request;
    }
}

/// Counts for `errsnap stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Events in all.
    pub events: i64,
    /// Groups in all.
    pub groups: i64,
    /// Events per level name.
    pub by_level: BTreeMap<String, i64>,
    /// Events per logger.
    pub by_logger: BTreeMap<String, i64>,
    /// Events per day (`YYYY-MM-DD`, UTC).
    pub by_day: BTreeMap<String, i64>,
    /// The most frequent groups.
    pub top_groups: Vec<GroupRow>,
    /// Alerts per delivery status.
    pub alerts: BTreeMap<String, i64>,
    /// Loss and other counters (`dropped_events`, `sampled_out`, ...).
    pub counters: BTreeMap<String, i64>,
    /// Size of the database file in bytes.
    pub file_bytes: u64,
    /// Bytes in use inside it.
    pub used_bytes: u64,
}

/// The result of `errsnap check`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// `PRAGMA integrity_check` lines (`["ok"]` when healthy; empty when
    /// the file could not be opened).
    pub integrity: Vec<String>,
    /// Schema version of the file (`None` when it could not be read).
    pub schema_version: Option<i64>,
    /// The newest schema this build knows.
    pub supported_version: i64,
    /// Alerts waiting to be sent.
    pub pending_alerts: i64,
    /// Alerts that failed for good.
    pub failed_alerts: i64,
    /// Spool files waiting to be imported, and the events in them.
    pub spool_files: u64,
    /// Events in the spool.
    pub spool_events: u64,
    /// Files holding spool lines that could not be imported (kept, never
    /// deleted), with their line counts.
    pub rejected: Vec<(String, u64)>,
    /// One line per unhealthy finding; empty when healthy.
    pub problems: Vec<String>,
    /// Findings that do not make the file unhealthy (e.g. permissions).
    pub warnings: Vec<String>,
}

impl CheckReport {
    /// Whether everything is healthy (no problem found).
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One event as exported (JSON, JSON Lines, CSV).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ExportRow {
    /// Event id.
    pub id: String,
    /// Time, RFC 3339 (UTC).
    pub time: String,
    /// Time, ms since the Unix epoch.
    pub ts: i64,
    /// Logger.
    pub logger: String,
    /// Level name.
    pub level: String,
    /// `message`, `error` or `panic`.
    pub kind: String,
    /// Message.
    pub message: String,
    /// Type of the outermost error.
    pub error_type: Option<String>,
    /// Error chain (JSON array).
    pub error_chain: serde_json::Value,
    /// Source file.
    pub file: Option<String>,
    /// Line.
    pub line: Option<u32>,
    /// Column.
    pub column: Option<u32>,
    /// Thread name.
    pub thread: Option<String>,
    /// Thread id.
    pub thread_id: i64,
    /// Process id.
    pub pid: i64,
    /// Application.
    pub app_name: Option<String>,
    /// Release.
    pub release: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Group id.
    pub group: i64,
    /// Group fingerprint.
    pub fingerprint: String,
    /// Tags (JSON object).
    pub tags: serde_json::Value,
    /// Extra (JSON object).
    pub extra: serde_json::Value,
    /// Breadcrumbs (JSON array).
    pub breadcrumbs: serde_json::Value,
    /// Redactions made.
    pub redactions: i64,
    /// Process CPU %, if a snapshot was taken.
    pub cpu_percent: Option<f64>,
    /// Process RSS bytes, if a snapshot was taken.
    pub rss_bytes: Option<i64>,
    /// Host name.
    pub host: Option<String>,
}

/// When a host was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HostRow {
    /// Host id.
    pub id: i64,
    /// First seen (ms).
    pub first_seen: i64,
    /// Last seen (ms).
    pub last_seen: i64,
}

/// What [`migrate`](crate::db::migrate) did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Migration {
    /// The database, without its password.
    pub database: String,
    /// The schema version it has now.
    pub schema_version: i64,
    /// Whether this call created or upgraded the schema (`false`: it was
    /// up to date, or another process did it meanwhile).
    pub migrated: bool,
}
