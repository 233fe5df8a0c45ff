//! errsnap's integration tests: one binary (one link on 2 cores), a module
//! per topic. Tests that need a process of their own (panics, a second run)
//! re-run this binary with `ERRSNAPTEST_SCENARIO` set, or run an example or
//! the `tests/fixtures/abort_app` crate. Modules that use Unix APIs
//! (signals, `/proc`, permissions, `fork`) are built on Unix only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

#[cfg(feature = "cli")]
mod dash;
#[cfg(all(feature = "sentry", feature = "otlp"))]
mod peers;
mod servers;
mod util;

mod alerts;
mod alerts_setup;
#[cfg(all(unix, feature = "cli"))]
mod argv;
#[cfg(unix)]
mod attachments;
#[cfg(feature = "cli")]
mod browser;
#[cfg(unix)]
mod child;
#[cfg(target_os = "linux")]
mod claims;
#[cfg(feature = "cli")]
mod cli;
#[cfg(unix)]
mod context;
#[cfg(target_os = "linux")]
mod crash;
#[cfg(target_os = "linux")]
mod crash_settings;
#[cfg(all(unix, feature = "sentry", feature = "otlp"))]
mod delivery;
mod ecosystem;
mod fallback;
#[cfg(feature = "cli")]
mod forged;
#[cfg(all(feature = "sentry", feature = "otlp"))]
mod forward;
#[cfg(all(
    target_os = "linux",
    target_arch = "x86_64",
    feature = "sentry",
    feature = "otlp"
))]
mod minidump;
#[cfg(all(feature = "sentry", feature = "otlp"))]
mod monitors;
#[cfg(all(feature = "mysql", feature = "postgres", feature = "cli"))]
mod mysql;
#[cfg(unix)]
mod panic;
#[cfg(all(feature = "postgres", feature = "cli"))]
mod pg;
#[cfg(all(feature = "postgres", feature = "cli"))]
mod pg_tls;
#[cfg(all(unix, feature = "cli"))]
mod planted;
#[cfg(all(target_os = "linux", target_arch = "x86_64", feature = "cli"))]
mod recorder;
#[cfg(unix)]
mod reliability;
mod routing;
#[cfg(feature = "cli")]
mod runs;
#[cfg(unix)]
mod security;
#[cfg(feature = "cli")]
mod serve;
#[cfg(all(unix, feature = "cli"))]
mod serve_guard;
#[cfg(unix)]
mod store;
mod surface;
#[cfg(feature = "cli")]
mod symbolicate;
#[cfg(feature = "cli")]
mod triage;
#[cfg(all(feature = "sentry", feature = "otlp"))]
mod upstream;
mod worker;
mod wrap;
