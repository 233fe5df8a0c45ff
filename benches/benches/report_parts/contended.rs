//! `caller_cost.contended`: one caller thread captures errors from 2,000
//! generated, distinct functions while the writer symbolizes. Each new
//! function is a stack the writer has not resolved before, so it keeps
//! resolving symbols while the caller captures: the caller must not wait
//! for that (issue #16). The miss rate is measured from the stored rows:
//! the share of captures whose stack was new to the writer.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{hist, summary};
use crate::common::{deep, errsnap_logger, DEPTH};

seq_macro::seq!(N in 0..2000 {
    #[inline(never)]
    fn site~N(logger: &errsnap::EventLogger) {
        logger.error("contended capture");
        std::hint::black_box(N);
    }
});

seq_macro::seq!(N in 0..2000 {
    /// Every generated capture site, each its own function.
    const SITES: [fn(&errsnap::EventLogger); 2000] = [#(site~N,)*];
});

pub(crate) fn contended(dir: &Path) -> Value {
    let path = dir.join("CONTENDED.db");
    let logger = errsnap_logger(&path, errsnap::Durability::Normal);
    // The symbol tables are loaded once before (as in any process that has
    // captured before); what is measured is the steady state of misses.
    deep(DEPTH, &mut || logger.error("warm up"));
    logger.flush(Duration::from_secs(60));
    let mut h = hist();
    for site in SITES {
        let t = Instant::now();
        deep(DEPTH, &mut || site(&logger));
        h.record((t.elapsed().as_nanos() as u64).max(1))
            .expect("record");
    }
    assert!(logger.flush(Duration::from_secs(120)), "flush");
    let db = rusqlite::Connection::open(&path).expect("open");
    let (events, stacks): (i64, i64) = db
        .query_row(
            "SELECT count(*), count(DISTINCT backtrace_id) FROM events
             WHERE message = 'contended capture'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count");
    assert_eq!(events, SITES.len() as i64, "every capture stored");
    let mut v = summary(&h);
    v["symbolizer_miss_rate"] = json!(stacks as f64 / events as f64);
    v["sites"] = json!(SITES.len());
    v
}
