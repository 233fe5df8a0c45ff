//! The runs ledger (issue #17): one row per process that opened the store,
//! with how it ended.

use serde::Serialize;

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RunStatus {
    /// Still running (or not judged yet).
    Running,
    /// Ended cleanly: the logger was dropped or flushed at exit.
    Exited,
    /// A panic was recorded.
    Crashed,
    /// Gone without a word: killed, out of memory, power lost (found by a
    /// later start on the same host and boot).
    Abnormal,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Exited => "exited",
            RunStatus::Crashed => "crashed",
            RunStatus::Abnormal => "abnormal",
        }
    }

    /// The status of a stored name (`None` for a name this build does not
    /// know).
    pub fn from_name(s: &str) -> Option<RunStatus> {
        match s {
            "running" => Some(RunStatus::Running),
            "exited" => Some(RunStatus::Exited),
            "crashed" => Some(RunStatus::Crashed),
            "abnormal" => Some(RunStatus::Abnormal),
            _ => None,
        }
    }
}

/// One recorded run, as [`Database::runs`](crate::db::Database::runs) lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RunRow {
    /// Row id.
    pub id: i64,
    /// How it ended.
    pub status: RunStatus,
    /// Its process id.
    pub pid: u32,
    /// When it opened the store (ms since the Unix epoch).
    pub started_at: i64,
    /// When it ended, or was found gone.
    pub ended_at: Option<i64>,
    /// Its host's name.
    pub hostname: Option<String>,
    /// The application name, release and GNU build-id of its executable.
    pub app_name: Option<String>,
    /// See `app_name`.
    pub release: Option<String>,
    /// See `app_name`.
    pub build_id: Option<String>,
    /// The process's resident memory at its last sign of life (the
    /// heartbeat): what a run killed for memory had.
    pub last_rss_bytes: Option<u64>,
    /// Its CPU use then, in percent of one core.
    pub last_cpu_percent: Option<f64>,
    /// Why it ended, when known: `oom-kill` for a run found gone whose
    /// cgroup's OOM-kill count rose meanwhile.
    pub end_reason: Option<String>,
    /// Its cgroup's directory (memory controller), when it ran in one.
    pub cgroup: Option<String>,
    /// Its cgroup's memory limit then.
    pub memory_max_bytes: Option<u64>,
}

/// One release's health, as [`Database::releases`](crate::db::Database::releases)
/// reports it: its runs and how they ended, and the groups new in it or
/// regressed in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ReleaseRow {
    /// The release.
    pub release: String,
    /// Runs recorded with it.
    pub runs: u64,
    /// ... that ended cleanly.
    pub exited: u64,
    /// ... that crashed (a panic or a native crash).
    pub crashed: u64,
    /// ... gone without a word (killed, out of memory).
    pub abnormal: u64,
    /// ... still running.
    pub running: u64,
    /// The share of its runs that neither crashed nor ended abnormally, in
    /// percent (`None` without runs).
    pub crash_free_percent: Option<f64>,
    /// Its first run's start, or its first event (ms since the Unix epoch).
    pub first_seen: Option<i64>,
    /// Its last sign of life.
    pub last_seen: Option<i64>,
    /// Groups first seen in it.
    pub new_groups: u64,
    /// Resolved groups that came back in it.
    pub regressed_groups: u64,
}

impl ReleaseRow {
    /// The crash-free share of `runs` of which `bad` crashed or ended
    /// abnormally (one decimal).
    pub(crate) fn crash_free(runs: u64, bad: u64) -> Option<f64> {
        (runs > 0).then(|| {
            let pct = runs.saturating_sub(bad) as f64 * 100.0 / runs as f64;
            (pct * 10.0).round() / 10.0
        })
    }
}

/// A run's sign of life: what the writer notes after a write or on its
/// heartbeat.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RunSign<'a> {
    pub(crate) app: Option<&'a str>,
    pub(crate) release: Option<&'a str>,
    pub(crate) rss_bytes: Option<u64>,
    pub(crate) cpu_percent: Option<f64>,
}

/// A run that ended by a native crash, as its crash file tells: found by
/// boot, pid and process start (so a reused pid is never taken for it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CrashedRun<'a> {
    pub(crate) boot_id: Option<&'a str>,
    pub(crate) pid: u32,
    pub(crate) process_start: Option<u64>,
    /// When it crashed.
    pub(crate) at_ms: i64,
    pub(crate) release: Option<&'a str>,
    pub(crate) app_name: Option<&'a str>,
}

/// What identifies a run on its host: boot, pid and the process's start
/// time (so a reused pid is never taken for the run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunStart {
    pub(crate) boot_id: Option<String>,
    pub(crate) pid: u32,
    /// The process's start, in clock ticks since boot (`/proc/<pid>/stat`).
    pub(crate) process_start: Option<u64>,
    pub(crate) started_at: i64,
    pub(crate) app_name: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) build_id: Option<String>,
    /// Its cgroup's directory, OOM-kill count and memory limit at start.
    pub(crate) cgroup: Option<String>,
    pub(crate) oom_kills: Option<u64>,
    pub(crate) memory_max_bytes: Option<u64>,
}

impl RunStart {
    /// This process.
    pub(crate) fn this_process(app_name: Option<String>, release: Option<String>) -> RunStart {
        let pid = std::process::id();
        let cgroup = crate::pipeline::cgroup::current();
        let stats = cgroup.as_ref().map(|c| c.stats());
        RunStart {
            cgroup: cgroup.map(|c| c.dir().to_string_lossy().into_owned()),
            oom_kills: stats.as_ref().and_then(|s| s.oom_kills),
            memory_max_bytes: stats.as_ref().and_then(|s| s.memory_max_bytes),
            boot_id: boot_id(),
            pid,
            process_start: process_start(pid),
            started_at: crate::util::time::now_ms(),
            app_name,
            release,
            build_id: std::env::current_exe().ok().and_then(|p| {
                crate::pipeline::symbols::build_id_of_file(&p)
                    .ok()
                    .flatten()
            }),
        }
    }
}

/// Whether the process of a run recorded on this boot is still the same
/// process: the pid exists and started when the run's did.
pub(crate) fn still_running(pid: u32, process_start_ticks: Option<u64>) -> bool {
    match (process_start(pid), process_start_ticks) {
        (Some(now), Some(then)) => now == then,
        // Without start times (not Linux), the pid alone decides.
        (None, _) => pid_exists(pid),
        (Some(_), None) => true,
    }
}

/// This boot's id (Linux: `/proc/sys/kernel/random/boot_id`).
pub(crate) fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Field 22 of `/proc/<pid>/stat`: the start time in clock ticks since boot.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// When a process that started `ticks` clock ticks after boot started, in
/// seconds since the Unix epoch (`btime` of `/proc/stat` and the ticks).
pub(crate) fn started_at_secs(ticks: u64) -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    #[cfg(unix)]
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    #[cfg(not(unix))]
    let hz = 100;
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(btime + ticks / hz)
}

fn pid_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_running_and_a_gone_one_is_not() {
        let me = RunStart::this_process(None, None);
        assert!(still_running(me.pid, me.process_start));
        #[cfg(target_os = "linux")]
        {
            assert!(me.boot_id.is_some() && me.process_start.is_some());
            // The same pid with another start time: a reused pid.
            assert!(!still_running(me.pid, me.process_start.map(|t| t + 1)));
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!still_running(pid, Some(1)));
    }

    #[test]
    fn crash_free_share() {
        assert_eq!(ReleaseRow::crash_free(0, 0), None);
        assert_eq!(ReleaseRow::crash_free(4, 1), Some(75.0));
        assert_eq!(ReleaseRow::crash_free(3, 1), Some(66.7));
        assert_eq!(ReleaseRow::crash_free(3, 0), Some(100.0));
    }

    #[test]
    fn names_round_trip() {
        for s in [
            RunStatus::Running,
            RunStatus::Exited,
            RunStatus::Crashed,
            RunStatus::Abnormal,
        ] {
            assert_eq!(RunStatus::from_name(s.as_str()), Some(s));
        }
        assert_eq!(RunStatus::from_name("zombie"), None);
    }
}
