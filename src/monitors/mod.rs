//! Monitors: jobs that should have run. A monitor has a schedule (a
//! crontab in a time zone, or an interval between check-ins); its
//! check-ins say when a run started and how it ended; a run that was
//! expected and never came, that ran too long or that died is noticed by
//! whichever errsnap process has the store open.

pub(crate) mod check_in;
pub(crate) mod judge;
pub(crate) mod rows;
pub(crate) mod schedule;

pub(crate) use schedule::Schedule;
