//! Monitors: jobs that should have run. A monitor has a schedule (a
//! crontab in a time zone, or an interval between check-ins); its
//! check-ins say when a run started and how it ended, and a run that was
//! expected and never came is noticed.

pub(crate) mod schedule;

pub use schedule::Schedule;
