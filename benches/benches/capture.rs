//! Criterion: the caller-side cost of one captured error with a ~30-frame
//! stack, errsnap against its peers, in one run.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench capture`

mod common;

use std::time::{Duration, Instant};

use common::*;
use criterion::{criterion_group, criterion_main, Criterion};

/// Times only the calls; the writer drains between chunks (untimed), so the
/// queue never fills and nothing is dropped.
fn timed_chunks(iters: u64, logger: &errsnap::EventLogger, mut call: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(2_000);
        let t = Instant::now();
        for _ in 0..n {
            call();
        }
        total += t.elapsed();
        logger.flush(Duration::from_secs(60));
        left -= n;
    }
    assert_eq!(logger.dropped_events(), 0);
    total
}

fn caller_cost(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let logger = errsnap_logger(&dir.path().join("LOGS.db"), errsnap::Durability::Normal);
    let mut g = c.benchmark_group("caller_cost");
    g.measurement_time(Duration::from_secs(4));

    g.bench_function("errsnap_error", |b| {
        b.iter_custom(|iters| {
            timed_chunks(iters, &logger, || {
                deep(DEPTH, &mut || logger.error("payment provider timed out"));
            })
        })
    });
    let err = timeout();
    g.bench_function("errsnap_capture_error", |b| {
        b.iter_custom(|iters| {
            timed_chunks(iters, &logger, || {
                deep(DEPTH, &mut || logger.capture_error(&err));
            })
        })
    });
    g.bench_function("errsnap_push_to_table", |b| {
        b.iter_custom(|iters| {
            timed_chunks(iters, &logger, || {
                deep(DEPTH, &mut || {
                    logger.push_to_table(
                        "Error: division by zero",
                        errsnap::PushOptions::new().hw_monitor(true),
                    )
                });
            })
        })
    });

    let _sentry = sentry_init();
    g.bench_function("sentry_capture_message_with_stack", |b| {
        b.iter(|| {
            deep(DEPTH, &mut || {
                sentry::capture_message("payment provider timed out", sentry::Level::Error)
            })
        })
    });
    drop(_sentry);

    let (dispatch, _guard) = tracing_init(dir.path());
    tracing::dispatcher::with_default(&dispatch, || {
        g.bench_function("tracing_appender_error", |b| {
            b.iter(|| deep(DEPTH, &mut || tracing::error!("payment provider timed out")))
        });
    });

    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    let naive = dir.path().join("NAIVE.db");
    g.bench_function("naive_original_design", |b| {
        b.iter(|| {
            deep(DEPTH, &mut || {
                naive_push(&naive, "error_table", "Error: division by zero")
            })
        })
    });
    g.finish();
}

/// Scopes (issue #21): entering and leaving one, and capturing inside one,
/// against sentry's `with_scope` in the same run.
fn scope_cost(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let logger = errsnap_logger(&dir.path().join("LOGS.db"), errsnap::Durability::Normal);
    let mut g = c.benchmark_group("scope_cost");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("errsnap_enter_empty_scope", |b| {
        b.iter(|| logger.scope(|_| {}, || std::hint::black_box(1)))
    });
    g.bench_function("errsnap_enter_scope_2_tags_and_user", |b| {
        b.iter(|| {
            logger.scope(
                |s| {
                    s.set_tag("route", "/carts/{id}")
                        .set_tag("tenant", "acme")
                        .set_user(errsnap::User::new().id("42"));
                },
                || std::hint::black_box(1),
            )
        })
    });
    let _sentry = sentry_init();
    g.bench_function("sentry_with_scope_2_tags_and_user", |b| {
        b.iter(|| {
            sentry::with_scope(
                |s| {
                    s.set_tag("route", "/carts/{id}");
                    s.set_tag("tenant", "acme");
                    s.set_user(Some(sentry::User {
                        id: Some("42".into()),
                        ..Default::default()
                    }));
                },
                || std::hint::black_box(1),
            )
        })
    });
    drop(_sentry);
    g.bench_function("errsnap_error_outside_scope", |b| {
        b.iter_custom(|iters| {
            timed_chunks(iters, &logger, || {
                deep(DEPTH, &mut || logger.error("payment provider timed out"));
            })
        })
    });
    let _in = logger.push_scope(|s| {
        s.set_tag("route", "/carts/{id}")
            .set_tag("tenant", "acme")
            .set_user(errsnap::User::new().id("42"));
    });
    g.bench_function("errsnap_error_inside_scope", |b| {
        b.iter_custom(|iters| {
            timed_chunks(iters, &logger, || {
                deep(DEPTH, &mut || logger.error("payment provider timed out"));
            })
        })
    });
    drop(_in);
    g.finish();
}

criterion_group!(benches, caller_cost, scope_cost);
criterion_main!(benches);
