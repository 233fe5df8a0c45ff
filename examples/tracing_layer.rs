//! errsnap as a `tracing` layer in a tokio service: ERROR events become
//! grouped, alerted snapshots in LOGS.db with their fields and spans, with no
//! change to the logging code; INFO and WARN events become breadcrumbs.
//!
//! Run with `cargo run --example tracing_layer --features tracing`.

use std::time::Duration;

use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let guard = errsnap::init(errsnap::EventLogger::builder().name("service"))?;
    tracing_subscriber::registry()
        .with(errsnap::tracing::ErrsnapLayer::new(guard.logger().clone()))
        .init();

    let handles: Vec<_> = (0..4)
        .map(|worker| {
            tokio::spawn(
                async move {
                    tracing::info!(sku = 1000 + worker, "looking up stock");
                    if worker == 3 {
                        let err = std::io::Error::other("inventory service returned 503");
                        tracing::error!(
                            error = &err as &dyn std::error::Error,
                            "inventory lookup failed"
                        );
                    }
                }
                .instrument(tracing::info_span!("worker", id = worker)),
            )
        })
        .collect();
    for h in handles {
        h.await?;
    }
    guard.flush(Duration::from_secs(10));
    println!(
        "recorded into {}; try: sqlite3 LOGS.db 'SELECT message, file, line FROM service'",
        guard.logger().path().display()
    );
    Ok(())
}
