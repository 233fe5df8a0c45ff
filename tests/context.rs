//! Issue #21: scopes (threads, futures interleaved on one thread), users
//! and their personal data, and the tower layer serving a real axum app on
//! loopback.

use std::path::Path;
use std::time::Duration;

use errsnap::{
    db::{Database, EventDetail, EventFilter},
    PushOptions, User,
};

use crate::util;

const T: Duration = Duration::from_secs(20);

/// Every stored event in full, oldest first.
pub(crate) fn details(db: &Path) -> Vec<EventDetail> {
    let d = Database::open(db).unwrap();
    d.events(&EventFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| d.event(&r.id).unwrap().unwrap())
        .collect()
}

#[test]
fn scopes_across_await_keep_their_own_context_on_one_thread() {
    let (_d, db) = util::temp_db();
    let logger = util::logger(&db, "tasks");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let task = |i: u32| {
            let logger = logger.clone();
            logger.clone().scoped(
                move |s| {
                    s.set_tag("task", i.to_string())
                        .set_tag("who", "scope")
                        .set_extra("attempt", i)
                        .set_transaction(format!("job-{i}"))
                        .set_user(User::new().id(format!("u{i}")));
                },
                async move {
                    for step in 0..3 {
                        logger.add_breadcrumb(
                            errsnap::Level::Info,
                            "step",
                            format!("task {i} step {step}"),
                        );
                        // Another task runs here, on this same thread.
                        tokio::task::yield_now().await;
                    }
                    logger.push_to_table(
                        format!("task {i} failed"),
                        PushOptions::new().tag("who", "event"),
                    );
                },
            )
        };
        tokio::join!(task(1), task(2), task(3));
    });
    // Outside every scope: nothing of theirs.
    logger.error("outside");
    assert!(logger.flush(T));
    let events = details(&db);
    assert_eq!(events.len(), 4);
    for e in &events[..3] {
        let i = e.tags["task"].clone();
        assert_eq!(e.row.message, format!("task {i} failed"));
        assert_eq!(e.transaction.as_deref(), Some(format!("job-{i}").as_str()));
        assert_eq!(
            e.user.as_ref().and_then(|u| u.id.clone()),
            Some(format!("u{i}"))
        );
        assert_eq!(e.extra["attempt"].to_string(), i);
        // The event's own tag wins over the scope's.
        assert_eq!(e.tags["who"], "event");
        let crumbs: Vec<&str> = e.breadcrumbs.iter().map(|b| b.message.as_str()).collect();
        assert_eq!(
            crumbs,
            (0..3)
                .map(|s| format!("task {i} step {s}"))
                .collect::<Vec<_>>(),
            "only its own task's breadcrumbs"
        );
    }
    let outside = &events[3];
    assert!(outside.user.is_none() && outside.transaction.is_none());
    assert!(!outside.tags.contains_key("task"));
    assert!(outside.breadcrumbs.is_empty());
}

#[test]
fn thread_scopes_nest_and_personal_data_is_kept_only_when_enabled() {
    for (pii, name) in [(false, "private"), (true, "pii")] {
        let (_d, db) = util::temp_db();
        let logger = util::builder(&db, name)
            .store_user_email(pii)
            .store_user_ip(pii)
            .build()
            .unwrap();
        logger.scope(
            |s| {
                s.set_tag("tenant", "acme").set_user(
                    User::new()
                        .id("42")
                        .username("ann")
                        .email("ann@example.com")
                        .ip_address("192.0.2.7"),
                );
            },
            || {
                let _inner = logger.push_scope(|s| {
                    s.set_tag("tenant", "globex").set_transaction("nightly");
                });
                logger.error("inner");
                drop(_inner);
                logger.error("outer");
            },
        );
        assert!(logger.flush(T));
        let events = details(&db);
        assert_eq!(events.len(), 2);
        let (inner, outer) = (&events[0], &events[1]);
        assert_eq!(inner.tags["tenant"], "globex");
        assert_eq!(inner.transaction.as_deref(), Some("nightly"));
        assert_eq!(outer.tags["tenant"], "acme");
        assert!(outer.transaction.is_none());
        for e in [inner, outer] {
            let u = e.user.as_ref().expect("user");
            assert_eq!(
                (u.id.as_deref(), u.username.as_deref()),
                (Some("42"), Some("ann"))
            );
            assert_eq!(u.email.is_some(), pii, "{name}");
            assert_eq!(u.ip_address.is_some(), pii, "{name}");
        }
        if !pii {
            let bytes = util::file_bytes(&db);
            assert!(!contains(&bytes, b"ann@example.com"));
            assert!(!contains(&bytes, b"192.0.2.7"));
        }
    }
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(feature = "tower")]
pub(crate) mod http {
    //! The axum app of the tower tests, served on loopback, and a plain
    //! HTTP/1.1 client.

    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};

    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::Router;

    #[derive(Debug)]
    pub(crate) struct AppError(std::io::Error);

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let mut res = (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            res.extensions_mut()
                .insert(errsnap::tower::ResponseError::new(&self.0));
            res
        }
    }

    /// An error with a cause, so the chain has two links.
    #[derive(Debug)]
    struct Loading(std::io::Error);
    impl std::fmt::Display for Loading {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("loading the cart")
        }
    }
    impl std::error::Error for Loading {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    pub(crate) fn app(logger: errsnap::EventLogger) -> Router {
        let l2 = logger.clone();
        Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/status",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "plain 500") }),
            )
            .route(
                "/carts/{id}",
                get(|Path(id): Path<u32>| async move {
                    // Set deep in the handler: the layer's event sees it.
                    errsnap::configure_scope(|s| {
                        s.set_user(errsnap::User::new().id(format!("owner-of-{id}")));
                    });
                    let cause = std::io::Error::other(format!("cart {id} row is corrupt"));
                    Err::<&str, _>(AppError(std::io::Error::other(Loading(cause))))
                }),
            )
            .route(
                "/panic/{n}",
                get(move |Path(n): Path<u32>| {
                    let logger = l2.clone();
                    async move {
                        logger.add_breadcrumb(errsnap::Level::Info, "db", "read 3 rows");
                        tokio::task::yield_now().await;
                        if n > 0 {
                            panic!("invariant {n} broken");
                        }
                        "no panic"
                    }
                }),
            )
            .route(
                "/search",
                get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "search is down") }),
            )
            // No route template here (no MatchedPath): the layer makes one.
            .fallback(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "no such link") })
            .layer(errsnap::tower::HttpLayer::new(logger).header("x-tenant"))
    }

    /// Serves `app` on a loopback port in a runtime of its own thread;
    /// the address.
    pub(crate) fn serve(app: Router) -> (SocketAddr, tokio::runtime::Runtime) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        (addr, rt)
    }

    /// One GET with extra headers; the status (0: the connection closed
    /// without an answer).
    pub(crate) fn call(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> u16 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        text.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(feature = "tower")]
#[test]
fn tower_layer_records_5xx_errors_and_panics_with_the_request_and_no_secret() {
    let (_d, db) = util::temp_db();
    let logger = util::builder(&db, "web")
        .store_user_email(false)
        .store_user_ip(true)
        .build()
        .unwrap();
    let (addr, rt) = http::serve(http::app(logger.clone()));
    let ua = [
        ("User-Agent", "it/1.0"),
        ("Cookie", "sid=c00kie"),
        ("Authorization", "Bearer b3arer"),
        ("X-Tenant", "acme"),
    ];
    assert_eq!(http::call(addr, "/ok", &ua), 200);
    assert_eq!(http::call(addr, "/status", &ua), 500);
    assert_eq!(http::call(addr, "/carts/7", &ua), 500);
    assert_eq!(
        http::call(addr, "/panic/1", &ua),
        0,
        "the panic goes on unwinding"
    );
    assert_eq!(
        http::call(addr, "/search?q=shoes&token=s3cr3t&api_key=k3y&page=2", &ua),
        503
    );
    // A path no route matched, a reset token in it and SSO names in the
    // query: the route is made from the path, the token stored nowhere.
    assert_eq!(
        http::call(
            addr,
            "/reset/Zk3qP9xLmW2vT8rY42?ticket=t1ck3t&SAMLResponse=s4ml&PHPSESSID=phps3ss",
            &ua
        ),
        500
    );
    // The server still serves, and a handler that does not panic is fine.
    assert_eq!(http::call(addr, "/panic/0", &ua), 200);
    assert!(logger.flush(T));
    // A panic's batch is committed at once: it may be stored first.
    let events = details(&db);
    let mut msgs: Vec<&str> = events.iter().map(|e| e.row.message.as_str()).collect();
    msgs.sort_unstable();
    assert_eq!(
        msgs,
        [
            "HTTP 500 GET /reset/{token}",
            "HTTP 500 GET /status",
            "HTTP 503 GET /search",
            "invariant 1 broken",
            "loading the cart",
        ]
    );
    let reset = events
        .iter()
        .find(|e| e.row.message == "HTTP 500 GET /reset/{token}")
        .unwrap();
    let r = reset.request.as_ref().unwrap();
    assert_eq!(r.route.as_deref(), Some("/reset/{token}"));
    assert_eq!(r.path, "/reset/[REDACTED]");
    assert_eq!(
        r.query.as_deref(),
        Some("ticket=[REDACTED]&SAMLResponse=[REDACTED]&PHPSESSID=[REDACTED]")
    );
    let everything = format!("{reset:?}");
    for secret in ["Zk3qP9", "t1ck3t", "s4ml", "phps3ss"] {
        assert!(
            !everything.contains(secret),
            "{secret} stored: {everything}"
        );
    }
    let by = |m: &str| events.iter().find(|e| e.row.message == m).unwrap();
    for (msg, route, path, status) in [
        ("HTTP 500 GET /status", "/status", "/status", Some(500)),
        ("loading the cart", "/carts/{id}", "/carts/7", Some(500)),
        ("invariant 1 broken", "/panic/{n}", "/panic/1", None),
        ("HTTP 503 GET /search", "/search", "/search", Some(503)),
    ] {
        let e = by(msg);
        let r = e
            .request
            .as_ref()
            .unwrap_or_else(|| panic!("{msg}: no request"));
        assert_eq!(r.method, "GET", "{msg}");
        assert_eq!(r.route.as_deref(), Some(route), "{msg}");
        assert_eq!(r.path, path, "{msg}");
        assert_eq!(r.status, status, "{msg}");
        assert_eq!(
            e.transaction.as_deref(),
            Some(format!("GET {route}").as_str())
        );
        assert_eq!(e.tags["http.route"], route);
        assert_eq!(e.tags["http.method"], "GET");
        if let Some(s) = status {
            assert_eq!(e.tags["http.status"], s.to_string());
            assert!(r.duration_ms.is_some());
        }
        assert_eq!(r.headers["user-agent"], "it/1.0");
        assert_eq!(r.headers["x-tenant"], "acme");
        assert!(!r.headers.contains_key("cookie") && !r.headers.contains_key("authorization"));
        assert_eq!(
            r.peer.as_deref(),
            Some("127.0.0.1"),
            "IP storing is on here"
        );
        assert_eq!(r.host.as_deref(), Some(addr.to_string().as_str()));
    }
    // The error's chain, from the response's extension.
    let cart = by("loading the cart");
    assert_eq!(cart.row.kind, errsnap::event::EventKind::Error);
    let chain: Vec<&str> = cart.chain.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(chain, ["loading the cart", "cart 7 row is corrupt"]);
    assert_eq!(
        cart.user.as_ref().and_then(|u| u.id.as_deref()),
        Some("owner-of-7"),
        "configure_scope in the handler reaches the layer's event"
    );
    assert!(
        by("HTTP 500 GET /status").user.is_none(),
        "not another request's user"
    );
    // The panic: recorded by the layer (no hook here), with the request and
    // the breadcrumb raised in the handler before it.
    let panic = by("invariant 1 broken");
    assert_eq!(panic.row.kind, errsnap::event::EventKind::Panic);
    assert_eq!(panic.row.level, errsnap::Level::Fatal);
    let crumbs: Vec<&str> = panic
        .breadcrumbs
        .iter()
        .map(|b| b.message.as_str())
        .collect();
    assert_eq!(crumbs, ["read 3 rows"]);
    // The query, secrets replaced by name.
    let search = by("HTTP 503 GET /search");
    assert_eq!(
        search.request.as_ref().unwrap().query.as_deref(),
        Some("q=shoes&token=[REDACTED]&api_key=[REDACTED]&page=2")
    );
    // No secret anywhere in the database.
    let bytes = util::file_bytes(&db);
    for secret in [
        "s3cr3t", "k3y", "c00kie", "b3arer", "Zk3qP9", "t1ck3t", "s4ml", "phps3ss",
    ] {
        assert!(!contains(&bytes, secret.as_bytes()), "{secret} stored");
    }
    // Each request left a breadcrumb outside the requests' scopes: the next
    // event raised outside a request carries them.
    logger.error("after the requests");
    assert!(logger.flush(T));
    let after = details(&db).pop().unwrap();
    let crumbs: Vec<&str> = after
        .breadcrumbs
        .iter()
        .map(|b| b.message.as_str())
        .collect();
    assert_eq!(crumbs.len(), 7, "{crumbs:?}");
    assert!(
        crumbs[5].starts_with("GET /reset/{token} 500 ("),
        "{crumbs:?}"
    );
    assert!(crumbs[0].starts_with("GET /ok 200 ("), "{crumbs:?}");
    assert!(
        crumbs[3].starts_with("GET /panic/{n} panicked ("),
        "{crumbs:?}"
    );
    assert!(crumbs[4].starts_with("GET /search 503 ("), "{crumbs:?}");
    drop(rt);
}

#[cfg(feature = "tower")]
#[test]
fn a_handler_panic_is_recorded_once_by_the_hook_with_the_request() {
    // The panic hook is process-wide: in a child process of its own.
    let (_d, db) = util::temp_db();
    let out = util::run_child("tower_panic_with_hook", &db, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let events = details(&db);
    assert_eq!(events.len(), 1, "recorded once: {events:?}");
    let e = &events[0];
    assert_eq!(e.row.kind, errsnap::event::EventKind::Panic);
    assert_eq!(e.row.message, "invariant 2 broken");
    let r = e
        .request
        .as_ref()
        .expect("the hook saw the request's scope");
    assert_eq!(r.route.as_deref(), Some("/panic/{n}"));
    assert!(r.peer.is_none(), "IP storing is off by default");
    assert_eq!(e.transaction.as_deref(), Some("GET /panic/{n}"));
    assert_eq!(e.breadcrumbs.len(), 1);
}

/// The child side of the test above.
#[cfg(feature = "tower")]
pub(crate) fn tower_panic_with_hook(db: &Path) {
    let logger = util::logger(db, "hooked");
    errsnap::install_panic_hook(&logger);
    let (addr, rt) = http::serve(http::app(logger.clone()));
    assert_eq!(http::call(addr, "/panic/2", &[]), 0);
    assert!(logger.flush(T));
    drop(rt);
}

#[cfg(feature = "tower")]
#[test]
fn the_axum_example_serves_records_and_flushes_on_sigterm() {
    use std::io::BufRead;
    let (dir, db) = util::temp_db();
    let mut child = std::process::Command::new(util::example("axum_service"))
        .current_dir(dir.path())
        .env("ERRSNAP_EXAMPLE_LISTEN", "127.0.0.1:0")
        .env("ERRSNAP_DB_PATH", &db)
        .env_remove("RUST_BACKTRACE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr: std::net::SocketAddr = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{first}"))
        .parse()
        .unwrap();
    assert_eq!(http::call(addr, "/ok", &[]), 200);
    assert_eq!(http::call(addr, "/fail", &[]), 500);
    assert_eq!(http::call(addr, "/panic", &[]), 0);
    assert_eq!(http::call(addr, "/users/42", &[]), 200);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("flushing")), "{rest:?}");
    // A panic's batch is committed at once: it may be stored first.
    let mut events = details(&db);
    events.sort_by_key(|e| e.row.message.clone());
    let got: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.row.message.as_str(), e.transaction.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("loading the price table", Some("GET /fail")),
            ("the price table is empty", Some("GET /panic")),
        ]
    );
    assert_eq!(events[0].chain.len(), 2);
    assert_eq!(events[0].request.as_ref().and_then(|r| r.status), Some(500));
    #[cfg(feature = "cli")]
    {
        let id = events[0].row.id.clone();
        let text = crate::cli::ok(&db, &["show", &id]);
        for want in [
            "transaction  GET /fail",
            "request\n  GET /fail\n  route     /fail\n  status    500 after",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
        let json = crate::cli::json(&db, &["show", &id]);
        assert_eq!(json["request"]["route"], "/fail");
        assert_eq!(json["request"]["status"], 500);
    }
}

#[cfg(feature = "tracing")]
#[test]
fn direct_events_inside_a_span_carry_its_name_and_fields() {
    use tracing_subscriber::layer::SubscriberExt;
    let (_d, db) = util::temp_db();
    let logger = util::logger(&db, "spans");
    let subscriber =
        tracing_subscriber::registry().with(errsnap::tracing::ErrsnapLayer::new(logger.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("request", route = "/carts/{id}");
        let _o = outer.enter();
        let inner = tracing::info_span!("load_cart", cart_id = 7);
        let _i = inner.enter();
        logger.error("cart unreadable");
    });
    logger.error("outside any span");
    assert!(logger.flush(T));
    let events = details(&db);
    let e = &events[0];
    assert_eq!(e.tags["span"], "load_cart");
    assert_eq!(e.extra["spans"][0]["name"], "request");
    assert_eq!(e.extra["spans"][0]["fields"]["route"], "/carts/{id}");
    assert_eq!(e.extra["spans"][1]["fields"]["cart_id"], 7);
    assert!(events[1].extra.get("spans").is_none());
    assert!(!events[1].tags.contains_key("span"));
}

#[cfg(all(feature = "tracing", feature = "opentelemetry"))]
#[test]
fn events_link_to_the_opentelemetry_trace_of_the_current_span() {
    use opentelemetry::trace::{TraceContextExt, TracerProvider};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;
    let (_d, db) = util::temp_db();
    let logger = util::logger(&db, "otel");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("errsnap-test")))
        .with(errsnap::tracing::ErrsnapLayer::new(logger.clone()));
    let ids = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("checkout");
        let _e = span.enter();
        tracing::error!("payment declined"); // through the layer
        logger.error("stock check failed"); // direct
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    });
    logger.error("outside any span");
    assert!(logger.flush(T));
    assert_eq!(ids.0.len(), 32);
    let events = details(&db);
    assert_eq!(events.len(), 3);
    for e in &events[..2] {
        assert_eq!(e.tags.get("trace_id"), Some(&ids.0), "{}", e.row.message);
        assert_eq!(e.tags.get("span_id"), Some(&ids.1), "{}", e.row.message);
    }
    assert!(!events[2].tags.contains_key("trace_id"));
}
