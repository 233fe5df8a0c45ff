//! The dashboard's listener: each connection served by hyper's HTTP/1 with
//! a timer, so that no client can hold the server by being slow.
//!
//! - A request's headers must arrive within [`Limits::header_timeout`]; the
//!   same clock runs while a kept-alive connection waits for its next
//!   request, so an idle connection closes too.
//! - A POST (its body included) must be handled within
//!   [`Limits::body_timeout`].
//! - At most [`Limits::max_connections`] connections are open, derived from
//!   the descriptor limit (`RLIMIT_NOFILE`) with room kept for the database
//!   pool: at the cap, the connection that has waited longest for a
//!   request (half-sent or idle) is closed to make room; when every one is
//!   busy, the newcomer is closed instead.
//! - At most [`Limits::max_streams`] live-update streams (`/live`) are open
//!   at once; more get 503 (`live.rs`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower_service::Service;

/// The client's address, in each request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) std::net::IpAddr);

/// Descriptors kept for everything but the connections: the database pool
/// and its files (a SQLite connection holds the file, its WAL and its
/// shared memory), the listener, standard streams, the runtime's own.
const RESERVED_FDS: u64 = 48;
/// Connections at most, however many descriptors there are.
const MAX_CONNECTIONS: u64 = 512;
/// Connections at least (a limit lower than the reserve still serves).
const MIN_CONNECTIONS: u64 = 8;

/// How much the listener allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) max_streams: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) body_timeout: Duration,
}

impl Limits {
    /// The limits for this process: connections from its descriptor limit.
    pub(crate) fn for_this_process() -> Limits {
        Limits::with_descriptors(descriptor_limit())
    }

    /// The limits when `fds` descriptors may be open.
    pub(crate) fn with_descriptors(fds: u64) -> Limits {
        let conns = fds
            .saturating_sub(RESERVED_FDS)
            .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS) as usize;
        Limits {
            max_connections: conns,
            max_streams: (conns / 4).clamp(1, 32),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// The soft `RLIMIT_NOFILE` (1024 where it cannot be read).
fn descriptor_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
            // `rlim_t` is 64 bits wide on every Unix errsnap builds for.
            #[allow(clippy::useless_conversion)]
            return u64::try_from(r.rlim_cur).unwrap_or(u64::MAX);
        }
    }
    1024
}

/// One open connection.
struct Entry {
    /// Since when it waits for a request (`None`: a request is being
    /// handled, or a stream is open).
    waiting_since: Option<Instant>,
    abort: Option<tokio::task::AbortHandle>,
}

#[derive(Default)]
struct Table {
    next: u64,
    conns: HashMap<u64, Entry>,
}

type Conns = Arc<Mutex<Table>>;

fn lock(t: &Conns) -> std::sync::MutexGuard<'_, Table> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Closes the connection that has waited longest for a request; `false`
/// when every connection is busy.
fn evict_longest_waiting(t: &mut Table) -> bool {
    let oldest = t
        .conns
        .iter()
        .filter_map(|(id, e)| e.waiting_since.map(|s| (s, *id)))
        .min();
    let Some((_, id)) = oldest else {
        return false;
    };
    if let Some(e) = t.conns.remove(&id) {
        if let Some(a) = e.abort {
            a.abort();
        }
    }
    true
}

/// Notes that connection `id` handles a request (`busy`) or waits for the
/// next one.
fn mark(conns: &Conns, id: u64, busy: bool) {
    if let Some(e) = lock(conns).conns.get_mut(&id) {
        e.waiting_since = (!busy).then(Instant::now);
    }
}

/// Serves `router` on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let conns: Conns = Arc::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, addr)) => (s, Peer(addr.ip())),
                Err(_) => {
                    // Out of descriptors (or another transient failure):
                    // make room, wait a moment, go on.
                    evict_longest_waiting(&mut lock(&conns));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let id = {
            let mut t = lock(&conns);
            if t.conns.len() >= limits.max_connections && !evict_longest_waiting(&mut t) {
                // Every connection is busy: this one is closed at once.
                continue;
            }
            t.next += 1;
            let id = t.next;
            t.conns.insert(
                id,
                Entry {
                    waiting_since: Some(Instant::now()),
                    abort: None,
                },
            );
            id
        };
        let task = tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            limits,
            conns.clone(),
            id,
        ));
        if let Some(e) = lock(&conns).conns.get_mut(&id) {
            e.abort = Some(task.abort_handle());
        }
    }
    for (_, e) in lock(&conns).conns.drain() {
        if let Some(a) = e.abort {
            a.abort();
        }
    }
}

/// One connection, to its end.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: Peer,
    router: Router,
    limits: Limits,
    conns: Conns,
    id: u64,
) {
    let service = {
        let conns = conns.clone();
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let mut router = router.clone();
            let conns = conns.clone();
            req.extensions_mut().insert(peer);
            async move {
                mark(&conns, id, true);
                let post = req.method() == Method::POST;
                let call = router.call(req.map(Body::new));
                let resp = if post {
                    match tokio::time::timeout(limits.body_timeout, call).await {
                        Ok(r) => r,
                        Err(_) => Ok(timed_out()),
                    }
                } else {
                    call.await
                };
                let resp = resp.unwrap_or_else(|e: Infallible| match e {});
                // A stream (live updates) keeps the connection busy while
                // it is open; every other answer is written at once.
                let streaming = resp
                    .headers()
                    .get(axum::http::header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
                if !streaming {
                    mark(&conns, id, false);
                }
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let _ = http.serve_connection(TokioIo::new(stream), service).await;
    lock(&conns).conns.remove(&id);
}

fn timed_out() -> Response<Body> {
    let mut r = Response::new(Body::from("the request took too long to arrive"));
    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_follow_the_descriptor_limit_with_room_for_the_pool() {
        assert_eq!(Limits::with_descriptors(1024).max_connections, 512);
        assert_eq!(Limits::with_descriptors(128).max_connections, 80);
        assert_eq!(Limits::with_descriptors(20).max_connections, 8);
        assert_eq!(Limits::with_descriptors(u64::MAX).max_connections, 512);
        assert_eq!(Limits::with_descriptors(128).max_streams, 20);
        assert_eq!(Limits::with_descriptors(20).max_streams, 2);
        assert_eq!(Limits::with_descriptors(1024).max_streams, 32);
    }

    #[test]
    fn the_connection_that_waited_longest_goes_first_never_a_busy_one() {
        let t0 = Instant::now();
        let mut t = Table::default();
        for (id, since) in [
            (1, Some(t0 + Duration::from_secs(2))),
            (2, None),
            (3, Some(t0)),
        ] {
            t.conns.insert(
                id,
                Entry {
                    waiting_since: since,
                    abort: None,
                },
            );
        }
        assert!(evict_longest_waiting(&mut t));
        assert!(!t.conns.contains_key(&3), "the longest waiting");
        assert!(evict_longest_waiting(&mut t));
        assert!(!t.conns.contains_key(&1));
        assert!(!evict_longest_waiting(&mut t), "only a busy one is left");
        assert!(t.conns.contains_key(&2));
    }
}
