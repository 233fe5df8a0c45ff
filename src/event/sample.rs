//! One reading of a run's flight recorder: pure data. The pipeline's
//! sampler takes it on the heartbeat's timer; the store keeps a run's
//! series of them, the crash file its last ones.

use serde::{Deserialize, Serialize};

/// The process's resources at one moment, as the flight recorder keeps
/// them for a run (see [`Database::run_samples`](crate::db::Database::run_samples)).
/// A figure the platform does not give is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSample {
    /// When it was taken (ms since the Unix epoch, UTC).
    pub at_ms: i64,
    /// Resident memory, in bytes (kept to the KiB).
    pub rss_bytes: Option<u64>,
    /// CPU use since the previous reading, in percent of one core (kept to
    /// a tenth).
    pub cpu_percent: Option<f64>,
    /// Threads.
    pub threads: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The descriptors' limit (`RLIMIT_NOFILE`, soft).
    pub fd_limit: Option<u64>,
    /// Bytes read from storage since the process started (kept to the KiB).
    pub io_read_bytes: Option<u64>,
    /// Bytes written to storage since the process started (kept to the KiB).
    pub io_write_bytes: Option<u64>,
    /// The cgroup's memory in use (`memory.current`, v1
    /// `memory.usage_in_bytes`), in bytes (kept to the KiB).
    pub cgroup_memory_bytes: Option<u64>,
    /// The cgroup's memory limit (`memory.max`, v1
    /// `memory.limit_in_bytes`; `None`: no limit).
    pub cgroup_memory_max_bytes: Option<u64>,
    /// Time the cgroup's CPU quota held it back so far, in microseconds
    /// (`cpu.stat`: `throttled_usec`, v1 `throttled_time`).
    pub cgroup_throttled_usec: Option<u64>,
}

impl RunSample {
    /// A reading taken at `at_ms` with no figures yet (fill in the fields;
    /// the struct is non-exhaustive).
    ///
    /// ```
    /// let mut s = errsnap::db::RunSample::at(1_700_000_000_000);
    /// s.rss_bytes = Some(64 << 20);
    /// assert_eq!(s.cpu_percent, None);
    /// ```
    pub fn at(at_ms: i64) -> RunSample {
        RunSample {
            at_ms,
            ..RunSample::default()
        }
    }

    /// The share of the cgroup's memory limit in use, in percent (`None`
    /// without a limit).
    pub fn cgroup_memory_percent(&self) -> Option<f64> {
        let max = self.cgroup_memory_max_bytes.filter(|&m| m > 0)?;
        Some(self.cgroup_memory_bytes? as f64 * 100.0 / max as f64)
    }

    /// The share of the descriptors' limit open, in percent.
    pub fn fd_percent(&self) -> Option<f64> {
        let max = self.fd_limit.filter(|&m| m > 0)?;
        Some(self.open_fds? as f64 * 100.0 / max as f64)
    }
}
