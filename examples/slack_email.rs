//! Reads `.env` (see `.env.example`) and sends one test alert through every
//! configured channel, printing what each answered.
//!
//! ```sh
//! cp .env.example .env   # then fill in ERRSNAP_SLACK_WEBHOOK_URL and/or ERRSNAP_SMTP_*
//! cargo run --example slack_email
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let logger = errsnap::EventLogger::new("alerts_check")?;
    let results = logger.send_test_alert();
    if results.is_empty() {
        println!(
            "no alert channel is configured: set ERRSNAP_SLACK_WEBHOOK_URL and/or \
             ERRSNAP_SMTP_HOST (see .env.example)"
        );
        return Ok(());
    }
    let mut failed = 0;
    for (channel, result) in results {
        match result {
            Ok(()) => println!("{channel}: delivered"),
            Err(e) => {
                failed += 1;
                println!("{channel}: FAILED: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} channel(s) failed").into());
    }
    Ok(())
}
