//! What an alert says, and the policy that decides when one is sent: pure
//! data shared by the store (which decides in the event's transaction) and
//! the channels (which send).

use std::time::Duration;

use crate::event::EventKind;
use crate::level::Level;

/// Why an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AlertKind {
    /// The first occurrence of a group, or the first after its cooldown
    /// ([`Alert::suppressed`] then says how many were held back meanwhile).
    New,
    /// A group marked resolved happened again.
    Regression,
    /// The cooldown ended with occurrences held back and none since
    /// ([`Alert::suppressed`] says how many).
    Digest,
    /// A test alert (`EventLogger::send_test_alert`).
    Test,
}

impl AlertKind {
    /// The stored name: `new`, `regression`, `digest`, `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::New => "new",
            AlertKind::Regression => "regression",
            AlertKind::Digest => "digest",
            AlertKind::Test => "test",
        }
    }

    /// The kind of a stored name (`None` for a name this build does not
    /// know).
    pub fn from_name(s: &str) -> Option<AlertKind> {
        match s {
            "new" => Some(AlertKind::New),
            "regression" => Some(AlertKind::Regression),
            "digest" => Some(AlertKind::Digest),
            "test" => Some(AlertKind::Test),
            _ => None,
        }
    }
}

/// `s` without control characters (NUL, ESC, BEL, ...), line feeds and
/// tabs aside: alert text goes to people, through media that would show
/// them as `\u0000` or act on them.
fn strip_controls(s: &mut String) {
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        s.retain(|c| !c.is_control() || c == '\n' || c == '\t');
    }
}

impl Alert {
    /// Strips control characters from every text of the alert (done before
    /// any channel sees it).
    pub(crate) fn strip_controls(&mut self) {
        for s in [&mut self.message, &mut self.logger, &mut self.group_title]
            .into_iter()
            .chain(self.chain.iter_mut())
            .chain(
                [
                    &mut self.app_name,
                    &mut self.environment,
                    &mut self.release,
                    &mut self.location,
                    &mut self.host,
                ]
                .into_iter()
                .flatten(),
            )
        {
            strip_controls(s);
        }
        for t in &mut self.trend {
            strip_controls(t);
        }
        for f in &mut self.frames {
            strip_controls(&mut f.function);
            if let Some(l) = &mut f.location {
                strip_controls(l);
            }
        }
    }
}

/// One frame as shown in an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertFrame {
    /// Function name.
    pub function: String,
    /// `file:line`, when known.
    pub location: Option<String>,
    /// Whether it is the application's own code.
    pub in_app: bool,
}

impl AlertFrame {
    /// A stored frame as an alert shows it (an unnamed one by address).
    pub(crate) fn of(f: super::Frame) -> AlertFrame {
        AlertFrame {
            function: f.function.unwrap_or_else(|| format!("{:#x}", f.address)),
            location: f.file.map(|file| match f.line {
                Some(l) => format!("{file}:{l}"),
                None => file,
            }),
            in_app: f.in_app,
        }
    }
}

/// The messages below the outermost of a stored error chain (JSON).
pub(crate) fn chain_messages(json: Option<&str>) -> Vec<String> {
    let Some(json) = json else { return Vec::new() };
    let links: Vec<super::ChainLink> = serde_json::from_str(json).unwrap_or_default();
    links.into_iter().skip(1).map(|l| l.message).collect()
}

/// Everything a channel gets to say about an event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Alert {
    /// Why it is sent.
    pub kind: AlertKind,
    /// The event's id (text form).
    pub event_id: String,
    /// When the event happened (ms since the Unix epoch).
    pub timestamp_ms: i64,
    /// Severity.
    pub level: Level,
    /// Message, error or panic.
    pub event_kind: EventKind,
    /// The logger (table).
    pub logger: String,
    /// The application's name (the channel's app name if configured, else
    /// the event's).
    pub app_name: Option<String>,
    /// Environment, if configured.
    pub environment: Option<String>,
    /// The event's release, if known (a regression says which release
    /// the group came back in).
    pub release: Option<String>,
    /// The full message (channels truncate as their medium requires).
    pub message: String,
    /// The error chain below the message, outermost first.
    pub chain: Vec<String>,
    /// `file:line:column`.
    pub location: Option<String>,
    /// Host name.
    pub host: Option<String>,
    /// Process id.
    pub pid: u32,
    /// Process CPU %, if a snapshot was taken.
    pub cpu_percent: Option<f64>,
    /// Resident memory in bytes, if a snapshot was taken.
    pub rss_bytes: Option<u64>,
    /// Host memory use in percent, if a snapshot was taken.
    pub host_memory_percent: Option<f64>,
    /// The backtrace, innermost first.
    pub frames: Vec<AlertFrame>,
    /// The group's title.
    pub group_title: String,
    /// On how many hosts the group was seen (a fleet's PostgreSQL store;
    /// `None` for one file).
    pub hosts_seen: Option<u64>,
    /// How often the group has happened in all.
    pub occurrences: u64,
    /// Occurrences since the previous alert of this group on this channel
    /// that were not alerted (the digest's "N more since").
    pub suppressed: u64,
    /// The suspect commit of a new group, in words (`3f2c9e1 by Carol,
    /// 2026-12-01: db: read the first row`), when the release names a
    /// commit and `ERRSNAP_REPO_PATH` the repository.
    pub suspect: Option<String>,
    /// The run's trend over the minutes before the event, in words, one
    /// line per resource that moved ("RSS 0.2 -> 3.9 GiB in 9 min, cgroup
    /// limit 4 GiB (97%)"), from the flight recorder; empty without its
    /// readings.
    pub trend: Vec<String>,
}

/// Throttling and delivery settings shared by all channels of a file.
#[derive(Debug, Clone)]
pub(crate) struct AlertPolicy {
    /// After an alert, a group alerts again at most once per cooldown, with
    /// a digest of what it suppressed.
    pub(crate) cooldown: Duration,
    /// Alert only once a group has happened this many times within `window`.
    pub(crate) threshold: u32,
    pub(crate) window: Duration,
    /// First retry delay (doubles each attempt, with jitter, up to 5 min).
    pub(crate) retry_base: Duration,
    /// Give up (status `failed`) after trying this long.
    pub(crate) give_up_after: Duration,
    /// How long the panic hook waits for a fatal alert to go out.
    pub(crate) panic_wait: Duration,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            cooldown: Duration::from_secs(600),
            threshold: 1,
            window: Duration::from_secs(3600),
            retry_base: Duration::from_secs(2),
            give_up_after: Duration::from_secs(24 * 3600),
            panic_wait: Duration::from_secs(2),
        }
    }
}
