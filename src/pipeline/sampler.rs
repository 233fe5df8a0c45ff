//! Taking the process and host picture of an event (the seed's
//! `hw_monitor`).
//!
//! A [`Sampler`] lives on the writer thread. It keeps the previous CPU-time
//! sample, so the process CPU % it reports is derived from CPU-time deltas
//! over real elapsed time (never from a sleep, and never the constant 0.0 a
//! single `sysinfo` refresh gives).

use std::time::Instant;

use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::event::sample::RunSample;
use crate::event::{HostInfo, HostStats, ProcessStats, Snapshot};

impl Snapshot {
    /// Takes the same picture errsnap stores with an event: the process's
    /// CPU and memory, the host's, the cgroup's limits. Its CPU
    /// percentages are over the time since the previous `take` in this
    /// process (the first one: since the process started).
    ///
    /// ```
    /// let snap = errsnap::snapshot::Snapshot::take();
    /// assert!(snap.process.rss_bytes > 0);
    /// assert!(snap.host.total_memory > 0);
    /// ```
    pub fn take() -> Snapshot {
        static SHARED: std::sync::Mutex<Option<Sampler>> = std::sync::Mutex::new(None);
        let mut s = SHARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.get_or_insert_with(Sampler::new).sample()
    }
}

impl HostInfo {
    /// Reads the host description (tens of milliseconds: done once).
    pub fn collect() -> HostInfo {
        let mut sys = System::new();
        sys.refresh_memory();
        sys.refresh_cpu_all();
        let cpus = sys.cpus();
        HostInfo {
            hostname: System::host_name(),
            os_name: System::name(),
            os_version: System::os_version(),
            kernel_version: System::kernel_version(),
            arch: System::cpu_arch(),
            cpu_brand: cpus
                .first()
                .map(|c| c.brand().trim().to_owned())
                .filter(|b| !b.is_empty()),
            cpu_count: cpus.len() as u64,
            physical_cores: System::physical_core_count().map(|n| n as u64),
            cpu_frequency_mhz: cpus.first().map(|c| c.frequency()).filter(|&f| f > 0),
            total_memory: sys.total_memory(),
            total_swap: sys.total_swap(),
            boot_time: System::boot_time(),
        }
    }
}

/// Windows shorter than this give noisy percentages: the previous value is
/// kept instead.
const MIN_WINDOW_MS: u128 = 50;
/// The CPU-% window restarts after this long, so the figure stays recent.
const MAX_WINDOW_MS: u128 = 1_000;

/// Takes snapshots, keeping what is needed for correct CPU percentages
/// (the writer owns one; [`Snapshot::take`] shares another).
pub(crate) struct Sampler {
    sys: System,
    pid: Pid,
    // Process CPU %: the start of the current window and the last value.
    window_start: (Instant, u64),
    last_proc_pct: Option<f64>,
    // Host CPU %: sysinfo computes it between two refreshes.
    last_cpu_refresh: Instant,
    last_host_pct: Option<f64>,
    // The process's cgroup, found once.
    cgroup: Option<crate::pipeline::cgroup::Cgroup>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").field("pid", &self.pid).finish()
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

impl Sampler {
    /// A sampler; its first CPU-time reading starts the first window.
    pub(crate) fn new() -> Sampler {
        let mut sys = System::new();
        sys.refresh_cpu_usage();
        let now = Instant::now();
        Sampler {
            sys,
            pid: Pid::from_u32(std::process::id()),
            window_start: (now, process_cpu_ms().map(|(u, s)| u + s).unwrap_or(0)),
            last_proc_pct: None,
            last_cpu_refresh: now,
            last_host_pct: None,
            cgroup: crate::pipeline::cgroup::current(),
        }
    }

    /// Takes a snapshot (a few small `/proc` reads on Linux; see
    /// BENCHMARKS.md for its cost).
    // Long by design: one field of the snapshot per line, read from one
    // refresh of the system tables.
    pub(crate) fn sample(&mut self) -> Snapshot {
        let now = Instant::now();
        let taken_at_ms = crate::util::time::now_ms();

        // Process CPU time and percentage from deltas.
        let cpu = process_cpu_ms();
        if let Some((user, system)) = cpu {
            let total = user + system;
            let (start, start_cpu) = self.window_start;
            let elapsed = now.duration_since(start).as_millis();
            if elapsed >= MIN_WINDOW_MS {
                let pct = total.saturating_sub(start_cpu) as f64 * 100.0 / elapsed as f64;
                self.last_proc_pct = Some((pct * 100.0).round() / 100.0);
                if elapsed >= MAX_WINDOW_MS {
                    self.window_start = (now, total);
                }
            } else if self.last_proc_pct.is_none() {
                // Too soon after start for a window of our own: the average
                // since the process started (what `ps` shows), so the first
                // event of a process has a figure too.
                self.last_proc_pct = lifetime_cpu_percent(total);
            }
        }

        self.sys
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        if now.duration_since(self.last_cpu_refresh) >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
            self.sys.refresh_cpu_usage();
            self.last_cpu_refresh = now;
            self.last_host_pct = Some((self.sys.global_cpu_usage() as f64 * 100.0).round() / 100.0);
        }
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            false,
            ProcessRefreshKind::nothing()
                .with_memory()
                .with_disk_usage(),
        );
        let total_memory = self.sys.total_memory();
        let mut process = ProcessStats {
            cpu_user_ms: cpu.map(|c| c.0),
            cpu_system_ms: cpu.map(|c| c.1),
            cpu_percent: self.last_proc_pct,
            threads: thread_count(),
            open_fds: open_fd_count(),
            ..ProcessStats::default()
        };
        if let Some(p) = self.sys.process(self.pid) {
            process.rss_bytes = p.memory();
            process.virtual_bytes = p.virtual_memory();
            let du = p.disk_usage();
            process.io_read_bytes = Some(du.total_read_bytes);
            process.io_write_bytes = Some(du.total_written_bytes);
            if process.open_fds.is_none() {
                process.open_fds = p.open_files().map(|n| n as u64);
            }
            if process.cpu_user_ms.is_none() {
                process.cpu_user_ms = Some(p.accumulated_cpu_time());
            }
        }
        if total_memory > 0 {
            let pct = process.rss_bytes as f64 * 100.0 / total_memory as f64;
            process.memory_percent = (pct * 1000.0).round() / 1000.0;
        }
        let load = System::load_average();
        Snapshot {
            taken_at_ms,
            process,
            host: HostStats {
                total_memory,
                used_memory: self.sys.used_memory(),
                available_memory: self.sys.available_memory(),
                total_swap: self.sys.total_swap(),
                used_swap: self.sys.used_swap(),
                cpu_percent: self.last_host_pct,
                load_1: load.one,
                load_5: load.five,
                load_15: load.fifteen,
                uptime_s: System::uptime(),
            },
            cgroup: self.cgroup.as_ref().map(|c| c.stats()),
        }
    }
}

impl Sampler {
    /// A reading for the flight recorder: the snapshot's process and
    /// cgroup figures, the descriptors' limit and the CPU quota's
    /// throttling.
    pub(crate) fn reading(&mut self) -> RunSample {
        let snap = self.sample();
        let p = &snap.process;
        let cg = snap.cgroup.as_ref();
        RunSample {
            at_ms: snap.taken_at_ms,
            rss_bytes: Some(p.rss_bytes).filter(|&r| r > 0),
            cpu_percent: p.cpu_percent,
            threads: p.threads,
            open_fds: p.open_fds,
            fd_limit: fd_limit(),
            io_read_bytes: p.io_read_bytes,
            io_write_bytes: p.io_write_bytes,
            cgroup_memory_bytes: cg.and_then(|c| c.memory_current_bytes),
            cgroup_memory_max_bytes: cg.and_then(|c| c.memory_max_bytes),
            cgroup_throttled_usec: self.cgroup.as_ref().and_then(|c| c.throttled_usec()),
        }
    }
}

/// The soft limit of open descriptors (`None`: unlimited or unknown).
#[cfg(unix)]
fn fd_limit() -> Option<u64> {
    // SAFETY: getrlimit only writes into the struct we own.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer; RLIMIT_NOFILE is always accepted.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur as u64)
}

#[cfg(not(unix))]
fn fd_limit() -> Option<u64> {
    None
}

/// CPU time over wall time since the process started, in percent.
#[cfg(target_os = "linux")]
fn lifetime_cpu_percent(cpu_ms: u64) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces and parens);
    // `starttime` is field 22 of the line, the 20th after the name.
    let after = &stat[stat.rfind(')')? + 1..];
    let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks_per_s <= 0 {
        return None;
    }
    let age_ms = (uptime - start_ticks / ticks_per_s as f64) * 1000.0;
    if age_ms < 1.0 {
        return None;
    }
    Some((cpu_ms as f64 * 100.0 / age_ms * 100.0).round() / 100.0)
}

#[cfg(not(target_os = "linux"))]
fn lifetime_cpu_percent(_cpu_ms: u64) -> Option<f64> {
    None
}

/// (user, system) CPU time of this process in ms.
#[cfg(unix)]
fn process_cpu_ms() -> Option<(u64, u64)> {
    // SAFETY: getrusage only writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage; RUSAGE_SELF is always accepted.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return None;
    }
    let ms = |tv: libc::timeval| tv.tv_sec as u64 * 1000 + tv.tv_usec as u64 / 1000;
    Some((ms(usage.ru_utime), ms(usage.ru_stime)))
}

#[cfg(not(unix))]
fn process_cpu_ms() -> Option<(u64, u64)> {
    None
}

#[cfg(target_os = "linux")]
fn thread_count() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(not(target_os = "linux"))]
fn thread_count() -> Option<u64> {
    None
}

#[cfg(target_os = "linux")]
fn open_fd_count() -> Option<u64> {
    // One of the entries is the directory handle used to list it.
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(n.saturating_sub(1))
}

#[cfg(not(target_os = "linux"))]
fn open_fd_count() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_reflects_busy_work() {
        let mut s = Sampler::new();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 250 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let snap = s.sample();
        let pct = snap.process.cpu_percent.unwrap_or(0.0);
        assert!(pct > 30.0, "busy loop should show CPU use, got {pct}");
        assert!(snap.process.rss_bytes > 0);
        assert!(snap.host.total_memory > 0);
    }

    #[test]
    fn the_first_sample_right_after_start_has_a_cpu_figure() {
        // See: issue #13 (5): the first event of a process showed `cpu: ?`.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 30 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let mut s = Sampler::new();
        let snap = s.sample();
        #[cfg(target_os = "linux")]
        {
            let pct = snap.process.cpu_percent.expect("a CPU figure at once");
            assert!(pct > 0.0, "{pct}");
        }
        let _ = snap;
    }

    #[test]
    fn host_info_has_basics() {
        let h = HostInfo::collect();
        assert!(h.cpu_count > 0);
        assert!(h.total_memory > 0);
        assert!(!h.arch.is_empty());
    }
}
