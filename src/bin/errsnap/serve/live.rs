//! Live updates (server-sent events): once a second the newest stored row
//! is read; when it changed, a `change` event tells the page to fetch its
//! rows again. One cheap query per open page per second, whatever the
//! write rate.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};

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

/// `GET /live`.
pub(crate) async fn stream(
    State(app): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = newest(&app).await;
    let events = stream::unfold((app, start), |(app, mut seen)| async move {
        loop {
            tokio::time::sleep(EVERY).await;
            let now = newest(&app).await;
            if now.is_some() && now != seen {
                seen = now;
                let ev = Event::default()
                    .event("change")
                    .data(now.unwrap_or(0).to_string());
                return Some((Ok(ev), (app, seen)));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
