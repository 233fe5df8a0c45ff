//! The dashboard's own protections, over HTTP against the running server:
//! slow clients, sessions, logout, wrong tokens.

use std::time::Duration;

use crate::dash::{csrf, request, Dash};
use crate::util;

/// A database with a few errors.
fn recorded() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, db) = util::temp_db();
    let web = util::builder(&db, "web").build().unwrap();
    for i in 0..5 {
        web.error(format!("payment {i} declined by the bank"));
    }
    assert!(web.flush(Duration::from_secs(20)));
    (dir, db)
}

/// Slow clients (slowloris): 300 connections that send half a request and
/// wait, against a server allowed 128 descriptors. The connections that
/// waited longest are closed to make room, and a logged-in request still
/// answers at once.
#[test]
fn half_sent_requests_cannot_take_the_dashboard_down() {
    use std::io::{Read, Write};
    let (_d, db) = recorded();
    let dash = Dash::start_limited(db.to_str().unwrap(), &[], Some(128));
    let cookie = dash.login();
    let mut held = Vec::new();
    for _ in 0..300 {
        let Ok(mut s) = std::net::TcpStream::connect(&dash.addr) else {
            continue;
        };
        let _ = write!(s, "GET / HTTP/1.1\r\nHost: {}\r\nX-Slow: ", dash.addr);
        held.push(s);
    }
    assert!(held.len() >= 250, "only {} connections made", held.len());
    let started = std::time::Instant::now();
    let r = dash.get("/stats", Some(&cookie));
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        took < Duration::from_secs(5),
        "a logged-in page took {took:?} beside 300 half-sent requests"
    );
    // The oldest half-sent ones were closed to make room for it.
    let mut closed = 0;
    for s in held.iter_mut().take(50) {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 1];
        if matches!(s.read(&mut b), Ok(0)) {
            closed += 1;
        }
    }
    assert!(
        closed > 0,
        "none of the oldest half-sent connections was closed"
    );
}

/// Sessions: each login its own, 12 hours, `Secure` behind TLS; "Log out"
/// ends it; wrong tokens are limited per client address.
#[test]
fn sessions_expire_end_at_logout_and_wrong_tokens_are_limited() {
    let (_d, db) = recorded();
    let dash = Dash::start(&db, &[]);
    let r = dash.get(&format!("/?token={}", dash.token), None);
    let set = r.header("set-cookie").unwrap().to_owned();
    assert!(set.contains("Max-Age=43200"), "{set}");
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let other = dash.login();
    assert_ne!(cookie, other, "each login is a session of its own");
    // A proxy that says the browser came over TLS: the cookie is Secure.
    let r = request(
        &dash.addr,
        "GET",
        &format!("/?token={}", dash.token),
        &[
            ("Host", dash.addr.clone()),
            ("X-Forwarded-Proto", "https".to_owned()),
        ],
        "",
    );
    assert!(r.header("set-cookie").unwrap().contains("; Secure"));
    // Log out: the session ends, the cookie is cleared; the other stays.
    let page = dash.get("/", Some(&cookie));
    assert!(page.body.contains("action=\"/logout\""), "{}", page.body);
    let r = dash.post("/logout", &cookie, &format!("csrf={}", csrf(&page.body)));
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(dash.get("/", Some(&cookie)).status, 401, "ended");
    assert_eq!(
        dash.get("/", Some(&other)).status,
        200,
        "the other session goes on"
    );
    // A logout without the CSRF token changes nothing.
    let r = dash.post("/logout", &other, "csrf=wrong");
    assert_eq!(r.status, 403);
    assert_eq!(dash.get("/", Some(&other)).status, 200);
    // Ten wrong tokens a minute, then 429, even for the right one.
    for i in 0..10 {
        let r = dash.get(&format!("/?token=wrong-token-{i:04}-abcdef"), None);
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = dash.get("/?token=wrong-token-again-abcdef", None);
    assert_eq!(r.status, 429, "{}", r.body);
    let r = dash.get(&format!("/?token={}", dash.token), None);
    assert_eq!(r.status, 429, "no guessing past the limit");
    // A session keeps working meanwhile.
    assert_eq!(dash.get("/", Some(&other)).status, 200);
}
