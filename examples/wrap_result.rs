//! Wrapping fallible code: `.report(&logger)?`, `Option::report`, `catch`.
//!
//! Run with `cargo run --example wrap_result`.

use std::time::Duration;

use errsnap::prelude::*;
use errsnap::{CatchError, EventLogger, Level};

fn parse_port(s: &str, logger: &EventLogger) -> Result<u16, std::num::ParseIntError> {
    // Records the error (with its chain and this line) and passes it on.
    let port = s.parse::<u16>().report(logger)?;
    Ok(port)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let logger = EventLogger::new("wrapped")?;

    assert_eq!(parse_port("8080", &logger), Ok(8080));
    assert!(parse_port("eighty", &logger).is_err());

    let _ =
        std::fs::read("/nonexistent").report_with(&logger, |e| format!("reading the cache: {e}"));
    let _ = "x".parse::<f64>().report_at(&logger, Level::Warn);

    let user: Option<&str> = None;
    let _ = user.report(&logger, "no user in the session");

    // A closure that panics: recorded, and handed back as a value.
    let r: Result<(), CatchError<std::io::Error>> = logger.catch(|| {
        let v: Vec<u8> = Vec::new();
        let _ = v[3];
        Ok(())
    });
    match r {
        Err(CatchError::Panic { message, .. }) => println!("caught a panic: {message}"),
        other => return Err(format!("expected a panic, got {other:?}").into()),
    }

    logger.flush(Duration::from_secs(10));
    println!(
        "recorded into {} (table `wrapped`)",
        logger.path().display()
    );
    Ok(())
}
