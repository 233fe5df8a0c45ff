//! Live updates (server-sent events): once a second the newest stored row
//! is read; when it changed, a `change` event tells the page to fetch its
//! rows again. One cheap query per open page per second, whatever the
//! write rate; at most `App::max_streams` streams at once (503 beyond).

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use super::Shared;

/// How often the newest row is read.
const EVERY: Duration = Duration::from_secs(1);

/// The newest row id (`None` on an error: the stream waits and tries again).
async fn newest(app: &Shared) -> Option<i64> {
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || app.pool.with(|db| Ok(db.last_row()?)))
        .await
        .ok()?
        .ok()?
}

/// Counts an open stream; uncounts it when the stream is dropped (the
/// page closed, the connection gone).
struct Open(Shared);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `GET /live`.
pub(crate) async fn stream(State(app): State<Shared>) -> Response {
    let open = app.streams.fetch_add(1, Ordering::SeqCst);
    let guard = Open(Arc::clone(&app));
    if open >= app.max_streams {
        drop(guard);
        return super::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live pages open; reload later",
        );
    }
    let start = newest(&app).await;
    let events = stream::unfold((guard, start), |(guard, mut seen)| async move {
        let app = &guard.0;
        loop {
            tokio::time::sleep(EVERY).await;
            let now = newest(app).await;
            if now.is_some() && now != seen {
                seen = now;
                let ev = Event::default()
                    .event("change")
                    .data(now.unwrap_or(0).to_string());
                return Some((Ok::<_, Infallible>(ev), (guard, seen)));
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
