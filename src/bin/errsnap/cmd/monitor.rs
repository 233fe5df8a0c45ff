//! Monitors: `monitor run` (a job run as a monitor's run) and `monitors`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use errsnap::monitor::{MonitorConfig, Schedule};

use crate::args::{Cli, MonitorRunArgs, MonitorsArgs};
use crate::output::{time, Out};
use crate::term::safe_line;

/// The output's tail kept with a failed run.
const TAIL_BYTES: usize = 64 * 1024;

/// `errsnap monitor run SLUG ... -- COMMAND`.
pub(crate) fn run(cli: &Cli, a: &MonitorRunArgs) -> Result<ExitCode> {
    let schedule = match (&a.schedule, a.every) {
        (Some(tab), None) => Schedule::crontab(tab, &a.tz)?,
        (None, Some(every)) => Schedule::interval(every)?,
        _ => bail!("give the schedule: --schedule CRONTAB [--tz ZONE], or --every DURATION"),
    };
    let mut config = MonitorConfig::new(schedule).checkin_margin(a.margin);
    config = if a.max_runtime.is_zero() {
        config.no_max_runtime()
    } else {
        config.max_runtime(a.max_runtime)
    };
    let logger = crate::monitors_logger(cli)?;
    let monitor = logger.monitor(&a.slug, config)?;
    let mut check_in = monitor.start();
    let program = &a.command[0];
    let spawned = std::process::Command::new(program)
        .args(&a.command[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let why = format!("cannot start {}: {e}", program.to_string_lossy());
            check_in.error_message(why.clone());
            logger.flush(Duration::from_secs(10));
            bail!("{why}");
        }
    };
    #[cfg(unix)]
    forward::arm(child.id());
    // The output passes through as it comes; the last 64 KiB of both
    // streams are kept, in the order they came, for a failure.
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_BYTES)));
    let pumps = [
        child
            .stdout
            .take()
            .map(|s| pump(s, std::io::stdout(), tail.clone())),
        child
            .stderr
            .take()
            .map(|s| pump(s, std::io::stderr(), tail.clone())),
    ];
    let status = child.wait().context("waiting for the command")?;
    #[cfg(unix)]
    forward::disarm();
    for p in pumps.into_iter().flatten() {
        let _ = p.join();
    }
    if !status.success() {
        let kept: Vec<u8> = tail
            .lock()
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default();
        if !kept.is_empty() {
            check_in.attach(errsnap::Attachment::bytes("output-tail.txt", kept));
        }
    }
    check_in.exited(status);
    logger.flush(Duration::from_secs(10));
    Ok(ExitCode::from(exit_code(status)))
}

/// The command's status as errsnap's own: its code, or 128+N after signal N.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(c) = status.code() {
        return u8::try_from(c & 0xff).unwrap_or(1);
    }
    #[cfg(unix)]
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return u8::try_from((128 + sig) & 0xff).unwrap_or(1);
    }
    1
}

/// Copies a child's stream to ours as it comes, keeping its tail.
fn pump(
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    tail: Arc<Mutex<VecDeque<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let _ = to.write_all(&buf[..n]);
            let _ = to.flush();
            if let Ok(mut t) = tail.lock() {
                t.extend(&buf[..n]);
                let over = t.len().saturating_sub(TAIL_BYTES);
                t.drain(..over);
            }
        }
    })
}

/// SIGINT, SIGTERM and SIGHUP sent to errsnap go on to the command. One
/// that a terminal sent (to the whole foreground process group, the
/// command included) is not sent twice.
#[cfg(unix)]
mod forward {
    use std::sync::atomic::{AtomicI32, Ordering};

    static CHILD: AtomicI32 = AtomicI32::new(0);
    const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        let pid = CHILD.load(Ordering::Relaxed);
        // SAFETY: the kernel's siginfo; kill is async-signal-safe.
        unsafe {
            let from_terminal = !info.is_null() && (*info).si_code == libc::SI_KERNEL;
            if pid > 0 && !from_terminal {
                libc::kill(pid, sig);
            }
        }
    }

    pub(super) fn arm(child: u32) {
        CHILD.store(i32::try_from(child).unwrap_or(0), Ordering::Relaxed);
        // SAFETY: installs a handler that only reads an atomic and calls kill.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            for sig in SIGNALS {
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    }

    pub(super) fn disarm() {
        CHILD.store(0, Ordering::Relaxed);
    }
}

/// `errsnap monitors`.
pub(crate) fn list(cli: &Cli, a: &MonitorsArgs, out: &mut Out) -> Result<ExitCode> {
    let db = crate::open(cli)?;
    let monitors = db.monitors(a.runs)?;
    if cli.json {
        out.json(&monitors)?;
        return Ok(ExitCode::SUCCESS);
    }
    if monitors.is_empty() {
        writeln!(
            out.w,
            "no monitors (declare one with EventLogger::monitor or errsnap monitor run)"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for m in &monitors {
        let schedule = match (&m.crontab, m.every_ms) {
            (Some(tab), _) => format!("{tab} ({})", m.zone.as_deref().unwrap_or("UTC")),
            (None, Some(ms)) => format!(
                "every {}",
                humantime::format_duration(Duration::from_millis(ms as u64))
            ),
            _ => "-".to_owned(),
        };
        // Oldest to newest, left to right: ✓ ok, ✗ error, ! timeout, ·
        // missed, … running.
        let strip: String = m
            .runs
            .iter()
            .rev()
            .map(|r| match r.status.as_str() {
                "ok" => '✓',
                "error" => '✗',
                "timeout" => '!',
                "missed" => '·',
                _ => '…',
            })
            .collect();
        let state = if m.failing {
            out.paint("31", "failing")
        } else {
            out.paint("32", "ok")
        };
        writeln!(
            out.w,
            "{}  {}  {}  next {}  {}",
            safe_line(&m.slug),
            safe_line(&schedule),
            state,
            m.next_expected_at.map_or_else(|| "-".to_owned(), time),
            strip
        )?;
        if let Some(r) = m.runs.iter().find(|r| r.reason.is_some()) {
            writeln!(
                out.w,
                "    last failure: {}",
                safe_line(r.reason.as_deref().unwrap_or(""))
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
