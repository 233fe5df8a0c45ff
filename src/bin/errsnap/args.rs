//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Browse, export, retain and check an errsnap database (LOGS.db).
#[derive(Debug, Parser)]
#[command(name = "errsnap", version, about, long_about = None)]
pub(crate) struct Cli {
    /// The database file.
    #[arg(
        long,
        global = true,
        default_value = "LOGS.db",
        env = "ERRSNAP_DB_PATH",
        hide_env_values = true
    )]
    pub(crate) db: PathBuf,
    /// Read settings from this `.env` file instead of `./.env` (for
    /// `test-alert` and `check`).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) env_file: Option<PathBuf>,
    /// Print JSON instead of text (for scripts).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Colour: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Groups of repeated errors, most recent (or most frequent) first.
    Groups(GroupsArgs),
    /// Events, filtered by cause, position and time.
    Events(EventsArgs),
    /// One event in full.
    Show(ShowArgs),
    /// Follow new events as they arrive.
    Tail(TailArgs),
    /// Counts per level, logger and day; top groups; alerts; losses; size.
    Stats(StatsArgs),
    /// Export events as JSON, JSON Lines or CSV.
    Export(ExportArgs),
    /// Delete old events (retention), optionally archiving them first.
    Purge(PurgeArgs),
    /// Change a group's status: open, resolved, resolved-next (quiet for
    /// its current release) or muted.
    Resolve(ResolveArgs),
    /// Merge groups into the first one, for good: their events move, their
    /// counts are added, and their fingerprints' next events go there too.
    Merge(MergeArgs),
    /// Take a merged group back out, with its events; it stays apart.
    Unmerge(UnmergeArgs),
    /// Group the stored events again by the settings file's [[grouping]]
    /// rules (see what would move with --dry-run first).
    Regroup(RegroupArgs),
    /// A group's suspect commit: git blame, at the commit the release
    /// names, of the lines of its top in-app frames.
    Blame(BlameArgs),
    /// Name the stored frames that have only an address (a stripped binary,
    /// a panic's raw stack), against the binaries that recorded them.
    Symbolicate(SymbolicateArgs),
    /// Integrity, schema version, pending and failed alerts, the spool.
    Check,
    /// Create or upgrade errsnap's schema in a server database
    /// (`--db postgres://...`, feature postgres; `--db mysql://...` or
    /// `mariadb://...`, feature mysql). Safe to run from many processes at
    /// once: one migrates, the others find it done.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    Migrate,
    /// Send a test alert through every configured channel (.env).
    TestAlert,
    /// The recorded host descriptions.
    Host,
    /// Runs (one per process that opened the database) and how each ended:
    /// exited, crashed, abnormal (killed, out of memory), or running.
    Runs(RunsArgs),
    /// Each release's crash-free runs, and the groups new or regressed in it.
    Releases,
    /// A local web dashboard: groups with sparklines, a group's history,
    /// events, search, stats, live updates, resolve and mute. Prints a URL
    /// with a token; every page needs it.
    Serve(ServeArgs),
    /// Run a job as a monitor's run: `errsnap monitor run SLUG --schedule
    /// '0 3 * * *' -- cmd args` (its output passed through, SIGINT,
    /// SIGTERM and SIGHUP forwarded, its exit status returned).
    Monitor(MonitorArgs),
    /// Each monitor, its schedule, the next run expected, its latest runs.
    Monitors(MonitorsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MonitorArgs {
    #[command(subcommand)]
    pub(crate) action: MonitorAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MonitorAction {
    /// Run COMMAND as a run of monitor SLUG: its start, end, exit status or
    /// signal and duration are recorded (and its output's tail kept with a
    /// failure); errsnap exits with the command's status (128+N after
    /// signal N).
    Run(MonitorRunArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MonitorRunArgs {
    /// The monitor's slug: 1 to 64 lowercase letters, digits, '-', '_'.
    pub(crate) slug: String,
    /// When runs are expected: a crontab (five fields, or @daily, ...).
    #[arg(long, conflicts_with = "every")]
    pub(crate) schedule: Option<String>,
    /// The crontab's IANA time zone.
    #[arg(long, default_value = "UTC")]
    pub(crate) tz: String,
    /// Runs are expected this often instead (a heartbeat), e.g. 10m.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) every: Option<std::time::Duration>,
    /// How late a run may start and still be on time.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub(crate) margin: std::time::Duration,
    /// How long a run may take (0: no limit).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub(crate) max_runtime: std::time::Duration,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub(crate) command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct MonitorsArgs {
    /// Show this many runs of each monitor, newest first.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub(crate) runs: usize,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where to listen. A non-loopback address also needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// The access token (default: a random one, printed in the URL). Other
    /// local users can read it in the process list: prefer --token-file or
    /// ERRSNAP_DASHBOARD_TOKEN.
    #[arg(long, env = "ERRSNAP_DASHBOARD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Read the access token from this file's first line (mode 600).
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    pub(crate) token_file: Option<PathBuf>,
    /// The dashboard is reached through a TLS-terminating proxy: the
    /// session cookie is marked Secure (it is also when the proxy sends
    /// `X-Forwarded-Proto: https`).
    #[arg(long)]
    pub(crate) behind_tls: bool,
    /// Show only: no resolve or mute buttons, and status changes refused.
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Listen on an address other hosts can reach (plain HTTP: put a TLS
    /// proxy in front).
    #[arg(long)]
    pub(crate) allow_remote: bool,
    /// Also answer requests addressed to this host name (repeatable; e.g.
    /// the name a proxy forwards). Others are refused (DNS rebinding).
    #[arg(long = "host-name", value_name = "NAME")]
    pub(crate) host_names: Vec<String>,
    /// Show the source lines of in-app frames whose file is under this
    /// directory (repeatable; default: the current directory). Files
    /// elsewhere are never read, whatever a stored frame says.
    #[arg(long = "source-root", value_name = "DIR")]
    pub(crate) source_roots: Vec<PathBuf>,
    /// The git repository of the recorded code: group pages name their
    /// suspect commit (default: ERRSNAP_REPO_PATH; none: not shown).
    #[arg(long, value_name = "DIR")]
    pub(crate) repo: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GroupSort {
    Last,
    Count,
}

#[derive(Debug, Args)]
pub(crate) struct GroupsArgs {
    /// Order.
    #[arg(long, value_enum, default_value_t = GroupSort::Last)]
    pub(crate) sort: GroupSort,
    /// Only this logger.
    #[arg(long)]
    pub(crate) logger: Option<String>,
    /// Only this status (open, resolved, resolved-next, muted).
    #[arg(long)]
    pub(crate) status: Option<errsnap::db::GroupStatus>,
    /// Only groups first seen in this release.
    #[arg(long, value_name = "RELEASE")]
    pub(crate) new_in: Option<String>,
    /// Only the groups merged into this one (merged groups are listed
    /// only so).
    #[arg(long, value_name = "GROUP")]
    pub(crate) merged_into: Option<i64>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: usize,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct Filters {
    /// Only this group (id).
    #[arg(long)]
    pub(crate) group: Option<i64>,
    /// Only this logger.
    #[arg(long)]
    pub(crate) logger: Option<String>,
    /// At least this level (trace, debug, info, warn, error, fatal).
    #[arg(long)]
    pub(crate) level: Option<errsnap::Level>,
    /// From this time: 30m, 2h, 7d (ago), 2026-11-23, 2026-11-23T18:00:00Z, or ms.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Before this time (same forms as --since).
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// Only messages containing this text (case-insensitive).
    #[arg(long)]
    pub(crate) grep: Option<String>,
    /// Only events raised in this file (a path suffix), optionally :LINE.
    #[arg(long, value_name = "PATH[:LINE]")]
    pub(crate) file: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    #[command(flatten)]
    pub(crate) filters: Filters,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: usize,
    /// Oldest first (default: newest first).
    #[arg(long)]
    pub(crate) oldest_first: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The event id (or a unique prefix of 6 characters or more).
    pub(crate) id: String,
    /// Resolve frames stored without symbols against this binary (used
    /// only for frames with its build-id).
    #[arg(long)]
    pub(crate) binary: Vec<PathBuf>,
    /// Show every frame, not only the application's.
    #[arg(long)]
    pub(crate) all_frames: bool,
    /// Write the event's attachments into this directory (created 0700;
    /// each file new, 0600, never over an existing one).
    #[arg(long, value_name = "DIR")]
    pub(crate) save_attachments: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    pub(crate) filters: Filters,
    /// Show this many existing events first.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub(crate) lines: usize,
    /// How often to look for new events, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub(crate) interval_ms: u64,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// How many top groups to show.
    #[arg(long, default_value_t = 10)]
    pub(crate) top: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Json,
    Jsonl,
    Csv,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub(crate) format: Format,
    /// Output directory (created if needed).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Lay files out as YYYY/MM/DD/<logger>.<ext> (UTC days).
    #[arg(long)]
    pub(crate) by_day: bool,
    /// Start a new file after this many events.
    #[arg(long, default_value_t = 250_000)]
    pub(crate) max_per_file: u64,
    #[command(flatten)]
    pub(crate) filters: Filters,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("rule").required(true).args(["older_than", "keep"])))]
pub(crate) struct PurgeArgs {
    /// Delete events older than this (30d, 12h, 90m).
    #[arg(long)]
    pub(crate) older_than: Option<String>,
    /// Keep only the newest N events.
    #[arg(long)]
    pub(crate) keep: Option<u64>,
    /// Export the events to delete into this directory first (JSON Lines, by day).
    #[arg(long)]
    pub(crate) archive: Option<PathBuf>,
    /// Rebuild the file afterwards to give the space back.
    #[arg(long)]
    pub(crate) vacuum: bool,
    /// Only say what would be deleted.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["id", "group"])))]
pub(crate) struct ResolveArgs {
    /// An event id: its group changes.
    pub(crate) id: Option<String>,
    /// A group id.
    #[arg(long)]
    pub(crate) group: Option<i64>,
    /// The new status.
    #[arg(long, default_value = "resolved")]
    pub(crate) status: errsnap::db::GroupStatus,
}

#[derive(Debug, Args)]
pub(crate) struct SymbolicateArgs {
    /// A binary (or a separate debug file) to resolve with: used for the
    /// frames recorded with its GNU build-id. Repeatable. Without it, each
    /// module is looked up at its recorded path, and used only when the
    /// file there still has the recorded build-id.
    #[arg(long)]
    pub(crate) binary: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunsArgs {
    /// Show at most this many runs, newest first.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub(crate) limit: usize,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The group that takes the others.
    pub(crate) into: i64,
    /// The groups merged into it.
    #[arg(required = true)]
    pub(crate) groups: Vec<i64>,
}

#[derive(Debug, Args)]
pub(crate) struct UnmergeArgs {
    /// A merged group (listed under the group that took it: `errsnap
    /// groups --merged-into GROUP`).
    pub(crate) group: i64,
}

#[derive(Debug, Args)]
pub(crate) struct RegroupArgs {
    /// Only say which events would move where.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BlameArgs {
    /// The group.
    pub(crate) group: i64,
    /// The git repository of the recorded code (default:
    /// ERRSNAP_REPO_PATH, else the current directory).
    #[arg(long, value_name = "DIR")]
    pub(crate) repo: Option<PathBuf>,
    /// Recorded path prefixes and the repository's: `build=repo`
    /// (repeatable; after ERRSNAP_REPO_PATH_MAP's).
    #[arg(long, value_name = "BUILD=REPO")]
    pub(crate) path_map: Vec<String>,
}
