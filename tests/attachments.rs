//! Issue #21 (4): attachments kept with their event, capped per event and
//! per database, written out by the CLI, deleted with their event.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use errsnap::{
    db::{Database, PurgeRule},
    Attachment, Config, Level,
};

use crate::context::details;
use crate::util;

const T: Duration = Duration::from_secs(20);

#[test]
fn attachments_are_stored_capped_read_back_and_deleted_with_their_event() {
    let (dir, db) = util::temp_db();
    let log_file = dir.path().join("app.log");
    std::fs::write(&log_file, "boot\nconnect\nquery failed\n").unwrap();
    let mut cfg = Config::empty();
    cfg.set("ERRSNAP_ATTACHMENTS_MAX_KB_PER_EVENT", "4")
        .unwrap();
    let logger = util::builder(&db, "att").config(cfg).build().unwrap();
    let id = logger
        .event(Level::Error, "import failed")
        .attach(Attachment::text("../../row.csv", "7,ann,,").content_type("text/csv"))
        .attach(Attachment::file_tail(&log_file, 13))
        .attach(Attachment::bytes("dump.bin", vec![0u8; 5000]))
        .attach(Attachment::file(dir.path().join("missing.toml")))
        .emit();
    let plain = logger.error("no attachments");
    assert!(logger.flush(T));
    let d = Database::open(&db).unwrap();
    let detail = d.event(&id.to_string()).unwrap().unwrap();
    let listed: Vec<(&str, u64, Option<&str>)> = detail
        .attachments
        .iter()
        .map(|a| (a.name(), a.size(), a.dropped()))
        .collect();
    assert_eq!(
        listed,
        [
            ("row.csv", 7, None),
            ("app.log", 13, None),
            ("dump.bin", 5000, Some("over the per-event cap")),
            ("missing.toml", 0, Some("unreadable: entity not found")),
        ]
    );
    assert!(
        detail.attachments.iter().all(|a| a.data().is_none()),
        "a listing holds no bytes"
    );
    let full = d.attachments(&id.to_string()).unwrap();
    assert_eq!(full[0].data(), Some(&b"7,ann,,"[..]));
    assert_eq!(full[0].content_type(), Some("text/csv"));
    assert_eq!(full[1].data(), Some(&b"query failed\n"[..]));
    assert!(d.attachments(&plain.to_string()).unwrap().is_empty());

    // Written out: new files, 0600, never over an existing one or a link.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(dir.path().join("victim"), out.join("row.csv")).unwrap();
    let files = d.save_attachments(&id.to_string(), &out).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["row-2.csv", "app.log"]);
    assert!(
        !dir.path().join("victim").exists(),
        "written through a link"
    );
    assert_eq!(std::fs::read(out.join("row-2.csv")).unwrap(), b"7,ann,,");
    let mode = std::fs::metadata(out.join("app.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A directory others may write to is refused.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = d.save_attachments(&id.to_string(), &open).unwrap_err();
    assert!(err.to_string().contains("open"), "{err}");
    drop(d);

    // Deleted with their event (the group's first event is kept: purge a
    // later one).
    let again = logger
        .event(Level::Error, "import failed")
        .attach(Attachment::text("row.csv", "8,bob,,"))
        .emit();
    let newest = logger.error("newest");
    assert!(logger.flush(T));
    let conn = util::open(&db);
    assert_eq!(util::count(&conn, "SELECT count(*) FROM attachments"), 5);
    let mut d = Database::open(&db).unwrap();
    let report = d.purge(PurgeRule::KeepNewest(1)).unwrap();
    assert!(report.events >= 1, "{report:?}");
    assert!(d.event(&again.to_string()).unwrap().is_none());
    assert!(d.event(&newest.to_string()).unwrap().is_some());
    let left: Vec<String> = {
        let mut st = conn
            .prepare("SELECT DISTINCT event_uid FROM attachments")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        left,
        [id.to_string()],
        "only the kept event's attachments stay"
    );
}

#[test]
fn the_database_cap_drops_the_oldest_attachments_bytes_first() {
    let (_d, db) = util::temp_db();
    let mut cfg = Config::empty();
    cfg.set("ERRSNAP_ATTACHMENTS_MAX_MB", "1").unwrap();
    let logger = util::builder(&db, "cap").config(cfg).build().unwrap();
    let ids: Vec<_> = (0..3u8)
        .map(|i| {
            logger
                .event(Level::Error, format!("snapshot {i}"))
                .attach(Attachment::bytes("heap.bin", vec![i; 600 * 1024]))
                .emit()
        })
        .collect();
    assert!(logger.flush(T));
    // Retention runs at least at shutdown.
    drop(logger);
    let d = Database::open(&db).unwrap();
    let kept: Vec<(Option<usize>, Option<String>)> = ids
        .iter()
        .map(|id| {
            let a = &d.attachments(&id.to_string()).unwrap()[0];
            (a.data().map(<[u8]>::len), a.dropped().map(str::to_owned))
        })
        .collect();
    assert_eq!(
        kept,
        [
            (None, Some("over the database cap".to_owned())),
            (None, Some("over the database cap".to_owned())),
            (Some(600 * 1024), None),
        ]
    );
    // The events themselves stay.
    assert_eq!(details(&db).len(), 3);
}

#[cfg(feature = "cli")]
#[test]
fn show_lists_attachments_and_saves_them() {
    let (dir, db) = util::temp_db();
    let logger = util::logger(&db, "cli");
    let id = logger
        .event(Level::Error, "render failed")
        .attach(Attachment::text("tmpl\u{1b}[31m.html", "<p>{{x}}</p>"))
        .emit();
    assert!(logger.flush(T));
    let text = crate::cli::ok(&db, &["show", &id.to_string()]);
    assert!(text.contains("attachments"), "{text}");
    assert!(text.contains("tmpl[31m.html"), "escaped name: {text}");
    assert!(!text.contains('\u{1b}'));
    let out = dir.path().join("saved");
    let saved = crate::cli::json(
        &db,
        &[
            "show",
            &id.to_string(),
            "--save-attachments",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(saved["saved"].as_array().unwrap().len(), 1, "{saved}");
    assert_eq!(
        std::fs::read_to_string(out.join("tmpl[31m.html")).unwrap(),
        "<p>{{x}}</p>"
    );
}
