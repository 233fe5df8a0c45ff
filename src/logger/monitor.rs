//! Monitors from code: [`EventLogger::monitor`] declares one; a run's
//! [`CheckIn`] says it started and how it ended. The caller's thread only
//! hands the check-in to the writer (one lock, one push): the writer
//! records it, and judges every monitor on its heartbeat.

use std::time::{Duration, Instant};

use super::EventLogger;
use crate::error::Result;
use crate::monitors::check_in::{self, Exit, MonitorSpec, Note, Status};
use crate::monitors::Schedule;

/// How a monitor is declared: its schedule, how late a run may start
/// (default 1 minute) and how long it may run (default 30 minutes: the
/// defaults of Sentry's cron monitors).
///
/// ```
/// use std::time::Duration;
/// use errsnap::monitor::{MonitorConfig, Schedule};
/// let nightly = MonitorConfig::new(Schedule::crontab("0 3 * * *", "Europe/Riga")?)
///     .checkin_margin(Duration::from_secs(300))
///     .max_runtime(Duration::from_secs(3600));
/// # Ok::<(), errsnap::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    schedule: Schedule,
    margin: Duration,
    max_runtime: Option<Duration>,
}

impl MonitorConfig {
    /// A monitor on `schedule`, with the default margin and run time.
    pub fn new(schedule: Schedule) -> MonitorConfig {
        MonitorConfig {
            schedule,
            margin: Duration::from_secs(60),
            max_runtime: Some(Duration::from_secs(30 * 60)),
        }
    }

    /// How late a run may start and still be on time (for an interval,
    /// how late the next check-in may come).
    pub fn checkin_margin(mut self, margin: Duration) -> MonitorConfig {
        self.margin = margin;
        self
    }

    /// How long a run may take before it counts as timed out.
    pub fn max_runtime(mut self, max: Duration) -> MonitorConfig {
        self.max_runtime = Some(max);
        self
    }

    /// Runs may take as long as they take.
    pub fn no_max_runtime(mut self) -> MonitorConfig {
        self.max_runtime = None;
        self
    }
}

/// A declared monitor: [`start`](Monitor::start) a run, or
/// [`beat`](Monitor::beat) for a heartbeat.
#[derive(Debug, Clone)]
pub struct Monitor {
    logger: EventLogger,
    spec: MonitorSpec,
}

/// One run of a monitored job, from [`Monitor::start`]: end it with
/// [`ok`](CheckIn::ok), [`error`](CheckIn::error) or
/// [`exited`](CheckIn::exited). Dropped without an answer (a `?` that
/// returned early, a panic) it counts as an error.
#[derive(Debug)]
#[must_use = "a check-in dropped at once ends the run as an error"]
pub struct CheckIn {
    monitor: Monitor,
    uid: String,
    started: Instant,
    answered: bool,
    attachments: Vec<crate::event::Attachment>,
}

impl EventLogger {
    /// Declares the monitor `slug` (1 to 64 lowercase letters, digits, `-`
    /// and `_`) in this logger's store, with `config`. Every errsnap
    /// process with the store open (this application's writer, `errsnap
    /// serve`, `errsnap check`) then notices a run that was due and did not
    /// start, ran past its maximum, or whose process died, and raises an
    /// event of the monitor's group through the alert channels.
    ///
    /// # Errors
    /// A slug that is not one.
    ///
    /// ```no_run
    /// use errsnap::monitor::{MonitorConfig, Schedule};
    /// let logger = errsnap::EventLogger::new("jobs")?;
    /// let sync = logger.monitor(
    ///     "nightly-sync",
    ///     MonitorConfig::new(Schedule::crontab("0 3 * * *", "Europe/Riga")?),
    /// )?;
    /// let run = sync.start();
    /// // ... the job ...
    /// run.ok();
    /// # Ok::<(), errsnap::Error>(())
    /// ```
    pub fn monitor(&self, slug: &str, config: MonitorConfig) -> Result<Monitor> {
        check_in::check_slug(slug)?;
        let m = Monitor {
            logger: self.clone(),
            spec: MonitorSpec {
                slug: slug.to_owned(),
                schedule: config.schedule,
                margin: config.margin,
                max_runtime: config.max_runtime,
            },
        };
        m.send(m.note(&check_in::new_uid()));
        Ok(m)
    }
}

impl Monitor {
    /// Its slug.
    pub fn slug(&self) -> &str {
        &self.spec.slug
    }

    /// Its schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.spec.schedule
    }

    /// A run starts now.
    pub fn start(&self) -> CheckIn {
        let uid = check_in::new_uid();
        self.send(Note {
            status: Status::InProgress,
            ..self.note(&uid)
        });
        CheckIn {
            monitor: self.clone(),
            uid,
            started: Instant::now(),
            answered: false,
            attachments: Vec::new(),
        }
    }

    /// A heartbeat: a run that ended well just now (for a monitor on an
    /// interval, the sign that the worker is alive).
    pub fn beat(&self) {
        self.send(Note {
            status: Status::Ok,
            duration_ms: Some(0),
            ..self.note(&check_in::new_uid())
        });
    }

    fn note(&self, uid: &str) -> Note {
        Note {
            spec: self.spec.clone(),
            uid: uid.to_owned(),
            status: Status::Declared,
            at_ms: crate::util::time::now_ms(),
            duration_ms: None,
            exit: Exit::default(),
            reason: None,
            attachments: Vec::new(),
            attachment_cap: self.logger.inner.context.attachment_cap,
        }
    }

    fn send(&self, mut note: Note) {
        note.reason = note
            .reason
            .map(|r| self.logger.inner.context.redactor.redact_text(&r));
        self.logger.worker().check_in(note);
    }
}

impl CheckIn {
    /// The run's id (32 hex digits; Sentry's check-in id when forwarded).
    pub fn id(&self) -> &str {
        &self.uid
    }

    /// Keeps `attachment` with the run's failure event, if it fails (a
    /// log's tail, a report), within the logger's per-event cap.
    pub fn attach(&mut self, attachment: crate::event::Attachment) {
        self.attachments.push(attachment);
    }

    /// The run ended well.
    pub fn ok(mut self) {
        self.end(Status::Ok, Exit::default(), None);
    }

    /// The run failed with `error` (its message and causes, redacted).
    pub fn error(mut self, error: &(dyn std::error::Error + 'static)) {
        let mut text = error.to_string();
        let mut cause = error.source();
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        self.end(Status::Error, Exit::default(), Some(text));
    }

    /// The run failed, for the reason given (redacted).
    pub fn error_message(mut self, reason: impl Into<String>) {
        self.end(Status::Error, Exit::default(), Some(reason.into()));
    }

    /// The run was a command that ended with `status`: ok on success, else
    /// an error naming the exit code or the signal.
    pub fn exited(mut self, status: std::process::ExitStatus) {
        let code = status.code();
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal: Option<i32> = None;
        let exit = Exit { code, signal };
        if status.success() {
            self.end(Status::Ok, exit, None);
            return;
        }
        let reason = match (code, signal) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("killed by signal {s}{}", signal_name(s)),
            (None, None) => "ended abnormally".to_owned(),
        };
        self.end(Status::Error, exit, Some(reason));
    }

    fn end(&mut self, status: Status, exit: Exit, reason: Option<String>) {
        self.answered = true;
        let took = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.monitor.send(Note {
            status,
            duration_ms: Some(took),
            exit,
            reason,
            attachments: std::mem::take(&mut self.attachments),
            ..self.monitor.note(&self.uid)
        });
    }
}

impl Drop for CheckIn {
    fn drop(&mut self) {
        if !self.answered {
            let why = if std::thread::panicking() {
                "the run panicked"
            } else {
                "the check-in was dropped without ok() or error()"
            };
            self.end(Status::Error, Exit::default(), Some(why.to_owned()));
        }
    }
}

/// ` (SIGKILL)` for a signal this platform names.
fn signal_name(sig: i32) -> String {
    #[cfg(target_os = "linux")]
    {
        let name = crate::pipeline::crash::signal_name(sig);
        if !name.is_empty() && !name.starts_with("signal") {
            return format!(" ({name})");
        }
    }
    let _ = sig;
    String::new()
}
