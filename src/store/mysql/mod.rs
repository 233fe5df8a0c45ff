//! The MySQL and MariaDB store (feature `mysql`): a fleet's events in a
//! MySQL 8 or MariaDB 10.6+ database, through the shared SQL layer.
//!
//! Built so far: reaching the server (`connect`: the URL, the password,
//! `ssl-mode`), the layer's connection (`conn`) and the schema
//! (`migrate`). The batch insert and the store itself come next; until
//! then no URL opens it.

// Used by the tests only until the store is built on them.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod conn;
pub(crate) mod connect;
pub(crate) mod migrate;

#[cfg(test)]
mod tests;
