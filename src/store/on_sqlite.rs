//! The harness a store's test script runs in on SQLite (a fresh file, its
//! store and its reader); `differential::on_every_server` runs the same
//! script on the servers and compares.

use std::time::Duration;

use crate::settings::Durability;
use crate::store::seam::Reader;
use crate::store::sqlite::read::SqliteReader;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

/// What `script` says when run on a fresh SQLite file.
pub(super) fn on_sqlite(
    script: &dyn Fn(&mut dyn Store, &dyn Reader) -> Vec<String>,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("LOGS.db");
    let mut store = SqliteStore::open(&path, Durability::Normal, Duration::from_secs(5)).unwrap();
    let reader = SqliteReader::open(&path).unwrap();
    script(&mut store, &reader)
}
