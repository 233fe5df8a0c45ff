//! Wrapping fallible code (#3): `report`, `report_with`, `Option::report`, `catch`.

use std::time::Duration;

use errsnap::prelude::*;
use errsnap::{CatchError, Level};

use crate::util::{self, count, open};

const T: Duration = Duration::from_secs(20);

#[test]
fn report_passes_the_result_through_unchanged() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "wrapped");
    let ok: Result<u8, std::num::ParseIntError> = "7".parse::<u8>().report(&logger);
    assert_eq!(ok, Ok(7));
    let expected = "x".parse::<u8>().unwrap_err();
    let err = "x".parse::<u8>().report(&logger).unwrap_err();
    assert_eq!(err, expected);
    let line = line!() - 2;
    let warn = "y".parse::<u8>().report_at(&logger, Level::Warn);
    assert!(warn.is_err());
    let custom = std::fs::read("/nonexistent/errsnap").report_with(&logger, |e| {
        format!("reading the cache failed: {}", e.kind())
    });
    assert_eq!(custom.unwrap_err().kind(), std::io::ErrorKind::NotFound);
    assert!(logger.flush(T));

    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 3);
    let (msg, file, l, level, ty): (String, String, i64, i64, String) = db
        .query_row(
            "SELECT message, file, line, level, error_type FROM events ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(msg, expected.to_string());
    assert!(file.ends_with("wrap.rs"));
    assert_eq!(l as u32, line, "the location is the caller's");
    assert_eq!(level, 4);
    assert_eq!(ty, "core::num::error::ParseIntError");
    let (msg, chain): (String, String) = db
        .query_row(
            "SELECT message, error_chain FROM events ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(msg, "reading the cache failed: entity not found");
    assert!(chain.contains("No such file or directory"), "{chain}");
    assert_eq!(count(&db, "SELECT count(*) FROM events WHERE level = 3"), 1);
}

#[test]
fn option_report_records_none_only() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "options");
    assert_eq!(Some(3).report(&logger, "missing"), Some(3));
    assert_eq!(None::<u8>.report(&logger, "user missing"), None);
    assert_eq!(
        None::<u8>.report_at(&logger, Level::Warn, "soft missing"),
        None
    );
    assert!(logger.flush(T));
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 2);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM events WHERE message = 'user missing' AND level = 4"
        ),
        1
    );
}

#[test]
fn catch_returns_what_the_closure_returned() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "caught");
    let ok: Result<Vec<u8>, CatchError<std::io::Error>> = logger.catch(|| Ok(vec![1, 2, 3]));
    assert_eq!(ok.unwrap(), vec![1, 2, 3]);

    let err: Result<(), CatchError<std::io::Error>> = logger.catch(|| {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "no way",
        ))
    });
    match err {
        Err(CatchError::Err(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
            assert_eq!(e.to_string(), "no way");
        }
        other => panic!("unexpected {other:?}"),
    }

    let panicked: Result<(), CatchError<std::io::Error>> = logger.catch(|| {
        std::panic::panic_any(String::from("boom inside catch"));
    });
    match panicked {
        Err(CatchError::Panic { message, payload }) => {
            assert_eq!(message, "boom inside catch");
            assert_eq!(
                payload.downcast_ref::<String>().unwrap(),
                "boom inside catch"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(logger.flush(T));
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 2);
    assert_eq!(
        count(&db, "SELECT count(*) FROM events WHERE kind = 'panic' AND level = 5 AND message = 'boom inside catch'"),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM events WHERE kind = 'error' AND message = 'no way'"
        ),
        1
    );
}

/// #14 (2): per-call tags, extra and level on the `Option` and `catch`
/// paths too.
#[test]
fn option_report_and_catch_take_per_call_options() {
    let (logger, captured) = errsnap::EventLogger::for_tests();
    let none: Option<u8> = None;
    let got = none.report_with_options(
        &logger,
        "no cached price",
        errsnap::PushOptions::new()
            .level(Level::Warn)
            .tag("cache", "prices")
            .extra("sku", 42),
    );
    assert_eq!(got, None);
    let some = Some(3u8).report_with_options(&logger, "never", errsnap::PushOptions::new());
    assert_eq!(some, Some(3));
    let r: Result<u8, CatchError<std::num::ParseIntError>> = logger
        .catch_with(errsnap::PushOptions::new().tag("job", "import"), || {
            "x".parse::<u8>()
        });
    assert!(matches!(r, Err(CatchError::Err(_))));
    let r: Result<u8, CatchError<std::num::ParseIntError>> = logger
        .catch_with(errsnap::PushOptions::new().tag("job", "resize"), || {
            panic!("image too large")
        });
    assert!(matches!(r, Err(CatchError::Panic { .. })));
    assert!(logger.flush(T));
    let events = captured.events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0].message(), "no cached price");
    assert_eq!(events[0].level(), Level::Warn);
    assert_eq!(
        events[0].tags().get("cache").map(String::as_str),
        Some("prices")
    );
    assert_eq!(events[0].extra().get("sku"), Some(&serde_json::json!(42)));
    assert_eq!(
        events[1].tags().get("job").map(String::as_str),
        Some("import")
    );
    assert_eq!(events[1].level(), Level::Error);
    assert_eq!(
        events[2].tags().get("job").map(String::as_str),
        Some("resize")
    );
    assert_eq!(events[2].level(), Level::Fatal, "a panic is always fatal");
}

/// #14 (3): `release_name!` names the calling crate, not errsnap.
#[test]
fn release_name_is_the_calling_crates() {
    assert_eq!(
        errsnap::release_name!(),
        concat!(env!("CARGO_PKG_NAME"), "@", env!("CARGO_PKG_VERSION"))
    );
    // This test crate is errsnap's own package; the macro expands in the
    // caller, so a dependent crate gets its own name the same way.
    let (logger, captured) = errsnap::EventLogger::builder()
        .name("rel")
        .release(errsnap::release_name!())
        .build_for_tests()
        .unwrap();
    logger.error("with a release");
    assert!(logger.flush(T));
    let events = captured.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].release(), Some(errsnap::release_name!()));
}
