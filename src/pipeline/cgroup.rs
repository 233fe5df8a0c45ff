//! The control group a process runs in (Linux), and what it says: memory
//! in use and its limit, the CPU quota, and how many processes the kernel's
//! OOM killer has killed in it, so that a run that vanished can be named an
//! OOM kill.
//!
//! cgroup v2 (`memory.current`, `memory.max`, `cpu.max`, `memory.events`)
//! is read where the memory controller is in the unified hierarchy; else
//! the v1 memory controller (`memory.usage_in_bytes`,
//! `memory.limit_in_bytes`, `memory.oom_control`) and v1 CPU quota
//! (`cpu.cfs_quota_us` / `cpu.cfs_period_us`).

use std::path::{Path, PathBuf};

use crate::event::CgroupStats;

/// Where the cgroup file systems are mounted.
const ROOT: &str = "/sys/fs/cgroup";

/// A process's cgroup: the directory of its memory controller, and where
/// its CPU quota is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cgroup {
    /// The cgroup's path inside the hierarchy (`/system.slice/app.service`).
    pub(crate) name: String,
    /// 1 or 2.
    pub(crate) version: u8,
    memory_dir: PathBuf,
    cpu_dir: Option<PathBuf>,
}

/// The cgroup of process `pid` (`None`: not Linux, no cgroup file system,
/// no memory controller).
pub(crate) fn of_process(pid: u32) -> Option<Cgroup> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    of_lines(&text, Path::new(ROOT))
}

/// The cgroup of this process.
pub(crate) fn current() -> Option<Cgroup> {
    of_process(std::process::id())
}

/// Finds the memory controller's directory from `/proc/<pid>/cgroup` lines
/// (`hierarchy-id:controllers:path`) under `root`.
fn of_lines(text: &str, root: &Path) -> Option<Cgroup> {
    let mut v1_memory = None;
    let mut v1_cpu = None;
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            v2 = Some(path.to_owned());
            continue;
        }
        let list: Vec<&str> = controllers.split(',').collect();
        if list.contains(&"memory") {
            v1_memory = Some((path.to_owned(), root.join(controllers).join(rel)));
        }
        if list.contains(&"cpu") {
            v1_cpu = Some(root.join(controllers).join(rel));
        }
    }
    if let Some(path) = v2 {
        let rel = path.trim_start_matches('/');
        // Pure v2 at the root, or the hybrid layout's `unified` mount.
        for base in [root.to_owned(), root.join("unified")] {
            let dir = base.join(rel);
            if dir.join("memory.current").exists() || dir.join("memory.events").exists() {
                return Some(Cgroup {
                    name: path,
                    version: 2,
                    cpu_dir: Some(dir.clone()),
                    memory_dir: dir,
                });
            }
        }
    }
    let (name, memory_dir) = v1_memory?;
    memory_dir
        .join("memory.usage_in_bytes")
        .exists()
        .then_some(Cgroup {
            name,
            version: 1,
            memory_dir,
            cpu_dir: v1_cpu,
        })
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A limit: `max` (v2) or v1's "no limit" (a page-rounded `i64::MAX`) is none.
fn limit(s: &str) -> Option<u64> {
    let n: u64 = s.parse().ok()?;
    (n < (1 << 62)).then_some(n)
}

/// `key value` lines (`memory.events`, `memory.oom_control`): `key`'s value.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

impl Cgroup {
    /// What the cgroup says now.
    pub(crate) fn stats(&self) -> CgroupStats {
        let m = &self.memory_dir;
        let (current, max, oom) = if self.version == 2 {
            (
                read(m, "memory.current").and_then(|s| s.parse().ok()),
                read(m, "memory.max").and_then(|s| limit(&s)),
                read(m, "memory.events").and_then(|s| keyed(&s, "oom_kill")),
            )
        } else {
            (
                read(m, "memory.usage_in_bytes").and_then(|s| s.parse().ok()),
                read(m, "memory.limit_in_bytes").and_then(|s| limit(&s)),
                read(m, "memory.oom_control").and_then(|s| keyed(&s, "oom_kill")),
            )
        };
        let cpu_max = self.cpu_dir.as_deref().and_then(|d| {
            if self.version == 2 {
                read(d, "cpu.max")
            } else {
                let quota = read(d, "cpu.cfs_quota_us")?;
                let period = read(d, "cpu.cfs_period_us")?;
                Some(if quota == "-1" {
                    format!("max {period}")
                } else {
                    format!("{quota} {period}")
                })
            }
        });
        CgroupStats {
            path: self.name.clone(),
            version: self.version,
            memory_current_bytes: current,
            memory_max_bytes: max,
            cpu_max,
            oom_kills: oom,
        }
    }

    /// Time the CPU quota held the cgroup back so far, in microseconds
    /// (v2 `cpu.stat` `throttled_usec`; v1 `cpu.stat` `throttled_time`, in
    /// ns). `None` without a CPU controller.
    pub(crate) fn throttled_usec(&self) -> Option<u64> {
        let stat = read(self.cpu_dir.as_deref()?, "cpu.stat")?;
        if self.version == 2 {
            keyed(&stat, "throttled_usec")
        } else {
            keyed(&stat, "throttled_time").map(|ns| ns / 1000)
        }
    }

    /// The cgroup's directory (its memory controller's), to find it again
    /// when judging a run.
    pub(crate) fn dir(&self) -> &Path {
        &self.memory_dir
    }
}

/// The OOM-kill count of the cgroup at `dir` now (`None`: gone, unreadable).
pub(crate) fn oom_kills_at(dir: &Path) -> Option<u64> {
    read(dir, "memory.events")
        .and_then(|s| keyed(&s, "oom_kill"))
        .or_else(|| read(dir, "memory.oom_control").and_then(|s| keyed(&s, "oom_kill")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    #[test]
    fn reads_a_v2_cgroup() {
        let d = tree(&[
            ("app.slice/memory.current", "1048576\n"),
            ("app.slice/memory.max", "67108864\n"),
            ("app.slice/cpu.max", "50000 100000\n"),
            (
                "app.slice/memory.events",
                "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n",
            ),
        ]);
        let cg = of_lines("0::/app.slice\n", d.path()).unwrap();
        assert_eq!(cg.version, 2);
        let s = cg.stats();
        assert_eq!(s.path, "/app.slice");
        assert_eq!(s.memory_current_bytes, Some(1 << 20));
        assert_eq!(s.memory_max_bytes, Some(64 << 20));
        assert_eq!(s.cpu_max.as_deref(), Some("50000 100000"));
        assert_eq!(s.oom_kills, Some(2));
        assert_eq!(oom_kills_at(cg.dir()), Some(2));
        std::fs::write(d.path().join("app.slice/memory.max"), "max\n").unwrap();
        assert_eq!(cg.stats().memory_max_bytes, None, "no limit");
        // Found by either file of the memory controller.
        let d = tree(&[
            ("a/memory.current", "1"),
            ("b/memory.events", "oom_kill 0\n"),
        ]);
        assert_eq!(of_lines("0::/a\n", d.path()).unwrap().version, 2);
        assert_eq!(of_lines("0::/b\n", d.path()).unwrap().version, 2);
        assert!(
            of_lines("0::/c\n", d.path()).is_none(),
            "no memory controller"
        );
    }

    #[test]
    fn limits_from_v1s_no_limit_up_are_none() {
        assert_eq!(limit("67108864"), Some(64 << 20));
        assert_eq!(limit(&((1u64 << 62) - 1).to_string()), Some((1 << 62) - 1));
        assert_eq!(limit(&(1u64 << 62).to_string()), None);
        assert_eq!(limit("max"), None);
    }

    #[test]
    fn only_hierarchy_0_is_the_unified_one() {
        let d = tree(&[
            ("odd/memory.current", "1"),
            ("memory/x/memory.usage_in_bytes", "4096"),
        ]);
        // A line with no controllers that is not hierarchy 0 is not v2.
        let cg = of_lines("3::/odd\n4:memory:/x\n", d.path()).unwrap();
        assert_eq!((cg.version, cg.name.as_str()), (1, "/x"));
    }

    #[test]
    fn this_process_is_read_from_proc() {
        let lines = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let expected = of_lines(&lines, Path::new(ROOT));
        assert_eq!(current(), expected);
        assert_eq!(of_process(std::process::id()), expected);
    }

    #[test]
    fn reads_v1_in_a_hybrid_layout_without_a_v2_memory_controller() {
        let d = tree(&[
            ("unified/x/cgroup.procs", ""),
            ("memory/x/memory.usage_in_bytes", "4096"),
            ("memory/x/memory.limit_in_bytes", "9223372036854771712"),
            (
                "memory/x/memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            ),
            ("cpu,cpuacct/x/cpu.cfs_quota_us", "-1"),
            ("cpu,cpuacct/x/cpu.cfs_period_us", "100000"),
        ]);
        let lines = "9:name=systemd:/\n4:memory:/x\n2:cpu,cpuacct:/x\n0::/x\n";
        let cg = of_lines(lines, d.path()).unwrap();
        assert_eq!(cg.version, 1);
        let s = cg.stats();
        assert_eq!(s.memory_current_bytes, Some(4096));
        assert_eq!(s.memory_max_bytes, None, "v1's no-limit value");
        assert_eq!(s.cpu_max.as_deref(), Some("max 100000"));
        assert_eq!(s.oom_kills, Some(2));
        assert!(of_lines("garbage\n1:cpu:/\n", d.path()).is_none());
    }
}
