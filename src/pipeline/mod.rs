//! The writer's steps, between the queue and the store: symbolize the
//! stack (`symbolize`) or read the error's own backtrace (`origin`), take
//! the snapshot (`sampler`), group (`fingerprint`), redact (`redact`), and
//! drop repeated reports of one failure (`dedupe`); a run's readings in
//! words (`trend`). Runs only on errsnap's
//! writer thread (and in the panic hook's fallback), never on the caller's.

pub(crate) mod attach;
pub(crate) mod cgroup;
pub(crate) mod crash;
pub(crate) mod dedupe;
pub(crate) mod dwarf;
pub(crate) mod fingerprint;
pub(crate) mod grouping;
pub(crate) mod modules;
pub(crate) mod monitors;
pub(crate) mod origin;
mod own;
mod pending;
pub(crate) mod process;
pub(crate) mod redact;
pub(crate) mod resource_warnings;
pub(crate) mod sampler;
pub(crate) mod symbolicate;
pub(crate) mod symbolize;
pub(crate) mod symbols;
pub(crate) mod trend;

pub(crate) use pending::{BeforeSave, Context, PendingEvent};
