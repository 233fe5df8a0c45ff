//! The process and host picture taken with an event: pure data. The
//! pipeline's sampler takes it.

use serde::{Deserialize, Serialize};

/// A picture of the process and the host at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was taken (ms since the Unix epoch, UTC).
    pub taken_at_ms: i64,
    /// This process.
    pub process: ProcessStats,
    /// The whole machine.
    pub host: HostStats,
    /// The control group the process runs in (Linux), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupStats>,
}

/// What the process's control group says (cgroup v2, or v1's memory and
/// CPU controllers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStats {
    /// Its path in the hierarchy (`/system.slice/app.service`).
    pub path: String,
    /// 1 or 2.
    pub version: u8,
    /// Memory in use by the group (`memory.current`).
    pub memory_current_bytes: Option<u64>,
    /// Its memory limit (`memory.max`; `None`: no limit).
    pub memory_max_bytes: Option<u64>,
    /// Its CPU quota as `cpu.max` says it: `"<quota> <period>"` or
    /// `"max <period>"`.
    pub cpu_max: Option<String>,
    /// Processes of the group killed by the OOM killer so far
    /// (`memory.events`: `oom_kill`).
    pub oom_kills: Option<u64>,
}

/// Resource use of this process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// CPU time spent in user mode since the process started, in ms.
    pub cpu_user_ms: Option<u64>,
    /// CPU time spent in the kernel since the process started, in ms.
    pub cpu_system_ms: Option<u64>,
    /// CPU use over the last sampling window, in percent of one core
    /// (like `top`: may exceed 100 on several cores).
    pub cpu_percent: Option<f64>,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// Virtual memory size in bytes.
    pub virtual_bytes: u64,
    /// RSS as a percentage of the host's total memory.
    pub memory_percent: f64,
    /// Number of threads, where the OS tells.
    pub threads: Option<u64>,
    /// Bytes read from storage since start, where the OS tells.
    pub io_read_bytes: Option<u64>,
    /// Bytes written to storage since start, where the OS tells.
    pub io_write_bytes: Option<u64>,
    /// Open file descriptors, where the OS tells.
    pub open_fds: Option<u64>,
}

/// Resource use of the whole host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStats {
    /// Total memory in bytes.
    pub total_memory: u64,
    /// Used memory in bytes.
    pub used_memory: u64,
    /// Available memory in bytes.
    pub available_memory: u64,
    /// Total swap in bytes.
    pub total_swap: u64,
    /// Used swap in bytes.
    pub used_swap: u64,
    /// Global CPU use in percent (0 to 100) since the previous sample; `None`
    /// until two samples far enough apart exist.
    pub cpu_percent: Option<f64>,
    /// 1-minute load average.
    pub load_1: f64,
    /// 5-minute load average.
    pub load_5: f64,
    /// 15-minute load average.
    pub load_15: f64,
    /// Seconds since boot.
    pub uptime_s: u64,
}

/// The host's description, recorded once per writer start in the `hosts`
/// table (the seed's `config/config.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name.
    pub hostname: Option<String>,
    /// OS name (`Debian GNU/Linux`).
    pub os_name: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// Kernel version.
    pub kernel_version: Option<String>,
    /// CPU architecture (`x86_64`).
    pub arch: String,
    /// CPU brand string.
    pub cpu_brand: Option<String>,
    /// Logical CPUs.
    pub cpu_count: u64,
    /// Physical cores, where known.
    pub physical_cores: Option<u64>,
    /// CPU frequency in MHz.
    pub cpu_frequency_mhz: Option<u64>,
    /// Total memory in bytes.
    pub total_memory: u64,
    /// Total swap in bytes.
    pub total_swap: u64,
    /// Boot time (seconds since the Unix epoch).
    pub boot_time: u64,
}
