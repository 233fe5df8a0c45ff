//! The bottom layer: small tools every other layer may use, and none of
//! errsnap's own types. errsnap's own failure reports (`internal_log`),
//! bounded waits (`sync`), private directories (`private_dir`), files a
//! stored row names opened safely (`regular`), time (`time`), and running
//! user code that may panic (`unwind`).

pub(crate) mod internal_log;
#[cfg(target_os = "linux")]
pub(crate) mod loaded;
pub(crate) mod private_dir;
pub(crate) mod regular;
pub(crate) mod sync;
pub(crate) mod time;
pub(crate) mod unwind;
