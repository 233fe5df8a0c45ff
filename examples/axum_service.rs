//! An axum service recorded by errsnap's tower layer: every event raised
//! while a request is handled carries its method, route, status, selected
//! headers and (with `ERRSNAP_STORE_USER_IP=true`) the peer; 5xx responses
//! and handler panics become events; each request leaves a breadcrumb.
//!
//! Run with `cargo run --example axum_service --features tower`, then:
//!
//! ```text
//! curl -i http://127.0.0.1:3000/ok          # 200
//! curl -i http://127.0.0.1:3000/fail        # 500, an error event with its chain
//! curl -i http://127.0.0.1:3000/panic       # a panic event (the connection closes)
//! curl -i http://127.0.0.1:3000/users/42    # 200, in the scope of user 42
//! errsnap list                              # (feature cli) what was recorded
//! ```
//!
//! It listens on `ERRSNAP_EXAMPLE_LISTEN` (default `127.0.0.1:3000`),
//! records into `./LOGS.db` (or `ERRSNAP_DB_PATH`), and runs until Ctrl-C
//! or SIGTERM, then flushes.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// A handler's error: a 500 for the client, the whole chain for errsnap.
#[derive(Debug)]
struct AppError(std::io::Error);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut res = (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        res.extensions_mut()
            .insert(errsnap::tower::ResponseError::new(&self.0));
        res
    }
}

async fn ok() -> &'static str {
    "ok\n"
}

async fn fail() -> Result<&'static str, AppError> {
    let err = std::fs::read_to_string("/nonexistent/pricing.toml")
        .map_err(|e| std::io::Error::new(e.kind(), ConfigError("loading the price table", e)));
    err.map(|_| "unreachable\n").map_err(AppError)
}

/// Context above an I/O error, so the stored chain has two links.
#[derive(Debug)]
struct ConfigError(&'static str, std::io::Error);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.1)
    }
}

async fn panics() -> &'static str {
    let prices: Vec<u32> = Vec::new();
    if prices.is_empty() {
        panic!("the price table is empty");
    }
    "unreachable\n"
}

async fn user(Path(id): Path<u64>, logger: axum::extract::State<errsnap::EventLogger>) -> String {
    // Everything recorded for this request from here on (the layer's
    // events too) carries this user.
    errsnap::configure_scope(|s| {
        s.set_user(errsnap::User::new().id(id.to_string()));
    });
    logger.add_breadcrumb(errsnap::Level::Info, "db", format!("loaded user {id}"));
    format!("user {id}\n")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("ERRSNAP_DB_PATH").unwrap_or_else(|_| "LOGS.db".to_owned());
    let guard = errsnap::init(
        errsnap::EventLogger::builder()
            .name("axum_service")
            .db_path(path),
    )?;
    let logger = guard.logger().clone();
    let listen: SocketAddr = std::env::var("ERRSNAP_EXAMPLE_LISTEN")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()
        .map_err(|e| format!("ERRSNAP_EXAMPLE_LISTEN: {e}"))?;

    let app = Router::new()
        .route("/ok", get(ok))
        .route("/fail", get(fail))
        .route("/panic", get(panics))
        .route("/users/{id}", get(user))
        .with_state(logger.clone())
        // After routing: the layer sees the route template.
        .layer(errsnap::tower::HttpLayer::new(logger.clone()));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopped())
        .await
    })?;
    println!("stopping; flushing what was recorded");
    guard.flush(Duration::from_secs(10));
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
