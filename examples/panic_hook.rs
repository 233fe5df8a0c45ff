//! Installs the panic hook and panics; the panic is in LOGS.db before the
//! process ends.
//!
//! ```sh
//! cargo run --example panic_hook                 # panics on the main thread
//! cargo run --example panic_hook -- --thread     # panics on a spawned thread
//! cargo run --example panic_hook -- --db /tmp/x.db
//! ```
//! Then: `sqlite3 LOGS.db "SELECT time, message, file, line FROM crashes"`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut db = PathBuf::from(errsnap::db::Database::DEFAULT_PATH);
    let mut on_thread = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--thread" => on_thread = true,
            "--db" => db = args.next().ok_or("--db needs a path")?.into(),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let _guard = errsnap::init(errsnap::EventLogger::builder().name("crashes").db_path(&db))?;
    println!("recording panics into {}", db.display());
    if on_thread {
        let handle = std::thread::Builder::new()
            .name("worker-7".into())
            .spawn(|| explode("the worker thread gave up"))?;
        let _ = handle.join();
        // Like Rust without errsnap: the thread's panic does not end main.
        println!("worker panicked; main goes on");
        return Ok(());
    }
    explode("the main thread gave up");
}

#[inline(never)]
fn explode(what: &str) -> ! {
    panic!("{what}: invariant violated (x = {})", 42);
}
