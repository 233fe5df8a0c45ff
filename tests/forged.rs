//! What a hostile database can hold that errsnap never writes itself (a
//! fleet's shared database, a file from elsewhere), and what the command
//! line makes of it: every human-facing output stays inert.

use crate::cli::{assert_inert, errsnap, ok};
use crate::util::{self, open};

/// An event id is stored text too: `show` and `events` print it escaped.
#[test]
fn a_forged_event_id_is_printed_escaped() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "forged");
    logger.error("an ordinary error");
    assert!(logger.flush(std::time::Duration::from_secs(20)));
    drop(logger);
    // 26 bytes, as an id is (upper case: the lookup upper-cases ids).
    let id = "01FORGED\x1b]0;OWNED\x07\x1b[2J\rX\x08A";
    assert_eq!(id.len(), 26);
    open(&path)
        .execute("UPDATE events SET uid = ?1", [id])
        .unwrap();
    for args in [vec!["events"], vec!["show", id]] {
        let out = errsnap(&path, &args);
        assert!(out.status.success(), "{args:?}: {}", util::describe(&out));
        assert_inert(&format!("{args:?}"), &out.stdout);
    }
    let shown = ok(&path, &["show", id]);
    assert!(
        shown.contains("event   01FORGED\\x1b]0;OWNED\\x07"),
        "{shown}"
    );
}
