//! One module per group of subcommands; each command is a function
//! `(cli, args, out) -> exit code`.

pub(crate) mod browse;
pub(crate) mod check;
pub(crate) mod maintain;
pub(crate) mod monitor;
pub(crate) mod report;
pub(crate) mod show;
pub(crate) mod triage;
