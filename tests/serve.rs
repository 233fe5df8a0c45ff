//! `errsnap serve` (issue #19), over HTTP against the running server.

use std::time::Duration;

use errsnap::{
    db::{Database, GroupStatus},
    Level,
};

use crate::dash::{csrf, first_group, request, Dash};
use crate::util;

const T: Duration = Duration::from_secs(20);

/// A database with errors in two releases and environments.
fn recorded() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, db) = util::temp_db();
    let web = util::builder(&db, "web")
        .release("1.0")
        .environment("prod")
        .build()
        .unwrap();
    for i in 0..5 {
        web.error(format!("payment {i} declined by the bank"));
    }
    web.warn("cache is 91% full");
    assert!(web.flush(T));
    drop(web);
    let jobs = util::builder(&db, "jobs")
        .release("2.0")
        .environment("staging")
        .build()
        .unwrap();
    let e = std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "upstream refused the connection",
    );
    jobs.capture_error(&e);
    assert!(jobs.flush(T));
    (dir, db)
}

fn status_of(db: &std::path::Path, group: i64) -> GroupStatus {
    Database::open(db)
        .unwrap()
        .group(group)
        .unwrap()
        .unwrap()
        .status
}

#[test]
fn every_page_needs_the_token_and_the_token_gives_a_strict_session() {
    // See: issue #19 (1) and (4)
    let (_d, db) = recorded();
    let dash = Dash::start(&db, &[]);
    assert_eq!(dash.token.len(), 64, "a random token by default");
    for path in [
        "/",
        "/groups/1",
        "/events",
        "/stats",
        "/runs",
        "/releases",
        "/search?q=payment",
        "/live",
    ] {
        let r = dash.get(path, None);
        assert_eq!(r.status, 401, "{path}");
        assert!(
            !r.body.contains("payment"),
            "{path} shows no data: {}",
            r.body
        );
        // Pages answer with the login form; the event stream in plain text.
        let form = r.body.contains("<form method=\"post\" action=\"/login\">");
        assert_eq!(form, path != "/live", "{path}: {}", r.body);
        assert_eq!(r.body.contains("log in first"), path == "/live", "{path}");
    }
    let login = dash.get("/login", None);
    assert_eq!(login.status, 200);
    assert!(login.body.contains("name=\"token\"") && !login.body.contains("payment"));
    // A POST without a session is refused in plain text.
    let r = dash.post("/groups/1/status", "x=y", "status=muted");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("log in first"), "{}", r.body);
    let wrong = dash.get(
        "/?token=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        None,
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let forged = dash.get(
        "/",
        Some(&format!(
            "errsnap_session_{}=nope",
            dash.addr.split(':').nth(1).unwrap()
        )),
    );
    assert_eq!(forged.status, 401);
    // The token in the URL: a session cookie, and the token leaves the URL.
    let r = dash.get(&format!("/stats?token={}&x=1", dash.token), None);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/stats?x=1"));
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    assert!(!set.contains(&dash.token), "the cookie is not the token");
    // However the key is spelled, the token leaves the URL; never another host.
    let r = dash.get(&format!("/events?tok%65n={}&level=warn", dash.token), None);
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/events?level=warn"))
    );
    let r = dash.get(&format!("//evil.example/?token={}", dash.token), None);
    assert_eq!(r.header("location"), Some("/"));
    let r = dash.get(&format!("/\\evil.example/?token={}", dash.token), None);
    assert_eq!(r.header("location"), Some("/"));
    let cookie = dash.login();
    for path in [
        "/",
        "/events",
        "/stats",
        "/runs",
        "/releases",
        "/search?q=payment",
        "/login",
    ] {
        let r = dash.get(path, Some(&cookie));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert!(r.header("server-timing").is_none() || path != "/login");
    }
    assert!(dash
        .get("/", Some(&cookie))
        .header("server-timing")
        .unwrap()
        .starts_with("render;dur="));
    // The login form.
    let r = request(
        &dash.addr,
        "POST",
        "/login",
        &[
            ("Host", dash.addr.clone()),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ],
        &format!("token={}", dash.token),
    );
    assert_eq!(r.status, 303);
    // A session of its own, under the same cookie name.
    let (name, _) = cookie.split_once('=').unwrap();
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.starts_with(&format!("{name}=")) && !set.starts_with(&cookie),
        "{set}"
    );
    let r = request(
        &dash.addr,
        "POST",
        "/login",
        &[
            ("Host", dash.addr.clone()),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ],
        "token=guess",
    );
    assert_eq!(r.status, 401);
    // No secret and no token in any page.
    let page = dash.get("/stats", Some(&cookie)).body;
    assert!(!page.contains(&dash.token));
}

#[test]
fn a_fixed_token_and_the_host_header_are_checked() {
    // See: issue #19 (1): DNS rebinding, --token, --host-name
    let (_d, db) = recorded();
    let dash = Dash::start(
        &db,
        &[
            "--token",
            "a-fixed-token-of-some-length",
            "--host-name",
            "Dash.Test",
        ],
    );
    assert_eq!(dash.token, "a-fixed-token-of-some-length");
    let cookie = dash.login();
    let port = dash.addr.split(':').nth(1).unwrap();
    for (host, ok) in [
        (dash.addr.clone(), true),
        (format!("localhost:{port}"), true),
        (format!("dash.test:{port}"), true),
        ("dash.test".to_owned(), true),
        (format!("evil.example:{port}"), false),
        ("evil.example".to_owned(), false),
        (String::new(), false),
    ] {
        let r = request(
            &dash.addr,
            "GET",
            "/",
            &[("Host", host.clone()), ("Cookie", cookie.clone())],
            "",
        );
        assert_eq!(r.status == 200, ok, "Host: {host:?} gave {}", r.status);
        if !ok {
            assert_eq!(r.status, 421);
            assert!(!r.body.contains("payment"));
        }
    }
    // A short token, and a non-loopback address without --allow-remote.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .args(["--db", db.to_str().unwrap(), "serve", "--token", "short"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--token"),
        "{}",
        util::describe(&out)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .args([
            "--db",
            db.to_str().unwrap(),
            "serve",
            "--listen",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--allow-remote") && err.contains("0.0.0.0:0"),
        "{err}"
    );
}

#[test]
fn status_actions_need_the_csrf_token_and_use_the_store() {
    // See: issue #19 (3)
    let (_d, db) = recorded();
    let dash = Dash::start(&db, &[]);
    let cookie = dash.login();
    let list = dash.get("/?sort=count", Some(&cookie)).body;
    let g = first_group(&list);
    assert!(
        list.contains("payment <n> declined") || list.contains("payment 0 declined"),
        "{list}"
    );
    let page = dash.get(&format!("/groups/{g}"), Some(&cookie)).body;
    for label in ["Resolve", "Resolve in next release", "Mute"] {
        assert!(page.contains(&format!(">{label}</button>")), "{label}");
    }
    let token = csrf(&page);
    let path = format!("/groups/{g}/status");
    // Without the token, with a wrong one, from another origin: 403, no change.
    assert_eq!(dash.post(&path, &cookie, "status=resolved").status, 403);
    assert_eq!(
        dash.post(&path, &cookie, "status=resolved&csrf=00").status,
        403
    );
    let cross = request(
        &dash.addr,
        "POST",
        &path,
        &[
            ("Host", dash.addr.clone()),
            ("Cookie", cookie.clone()),
            ("Origin", "http://evil.example".into()),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ],
        &format!("status=resolved&csrf={token}"),
    );
    assert_eq!(cross.status, 403);
    let no_session = request(
        &dash.addr,
        "POST",
        &path,
        &[
            ("Host", dash.addr.clone()),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ],
        &format!("status=resolved&csrf={token}"),
    );
    assert_eq!(no_session.status, 401);
    assert_eq!(status_of(&db, g), GroupStatus::Open);
    // With it: each status, as `errsnap resolve` sets it.
    for (form, want) in [
        ("resolved", GroupStatus::Resolved),
        ("open", GroupStatus::Open),
        ("resolved-next", GroupStatus::ResolvedInNextRelease),
        ("muted", GroupStatus::Muted),
        ("open", GroupStatus::Open),
    ] {
        let r = dash.post(&path, &cookie, &format!("status={form}&csrf={token}"));
        assert_eq!(r.status, 303, "{form}: {}", r.body);
        assert_eq!(r.header("location"), Some(format!("/groups/{g}").as_str()));
        assert_eq!(status_of(&db, g), want, "{form}");
    }
    let r = dash.post(&path, &cookie, &format!("status=deleted&csrf={token}"));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("status=deleted"), "{}", r.body);
    assert_eq!(
        dash.post(
            "/groups/999999/status",
            &cookie,
            &format!("status=muted&csrf={token}")
        )
        .status,
        404
    );
    // Read-only: no buttons, and the same POST refused.
    drop(dash);
    let ro = Dash::start(&db, &["--read-only"]);
    let cookie = ro.login();
    let page = ro.get(&format!("/groups/{g}"), Some(&cookie)).body;
    assert!(
        !page.contains("<button") || !page.contains("name=\"status\""),
        "no actions: {page}"
    );
    assert!(page.contains("read-only"));
    // Refused for being read-only (before any token is looked at).
    let r = ro.post(&path, &cookie, &format!("status=muted&csrf={token}"));
    assert_eq!(r.status, 403);
    assert!(r.body.contains("read-only (--read-only)"), "{}", r.body);
    assert_eq!(status_of(&db, g), GroupStatus::Open);
}

#[test]
fn a_group_resolved_in_the_next_release_stays_quiet_for_its_release() {
    // See: issue #19 (3): resolve in next release
    let (_d, db) = util::temp_db();
    let v1 = util::builder(&db, "app").release("1.0").build().unwrap();
    v1.error("flaky upstream");
    assert!(v1.flush(T));
    let g = Database::open(&db)
        .unwrap()
        .groups(&Default::default())
        .unwrap()[0]
        .id;
    assert!(Database::open(&db)
        .unwrap()
        .set_group_status(g, GroupStatus::ResolvedInNextRelease)
        .unwrap());
    // Again in 1.0: counted, still resolved.
    v1.error("flaky upstream");
    assert!(v1.flush(T));
    drop(v1);
    let row = Database::open(&db).unwrap().group(g).unwrap().unwrap();
    assert_eq!(
        (row.count, row.status),
        (2, GroupStatus::ResolvedInNextRelease)
    );
    // In 1.1: a regression.
    let v2 = util::builder(&db, "app").release("1.1").build().unwrap();
    v2.error("flaky upstream");
    assert!(v2.flush(T));
    let row = Database::open(&db).unwrap().group(g).unwrap().unwrap();
    assert_eq!(row.status, GroupStatus::Open);
    assert_eq!(row.regressed_in.as_deref(), Some("1.1"));
}

#[test]
fn hostile_stored_text_renders_as_inert_text() {
    // See: issue #19 (4); the reliability suite's hostile inputs
    let (_d, db) = util::temp_db();
    let l = util::builder(&db, "web")
        .release("<b>1</b>")
        .build()
        .unwrap();
    let hostile = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(2)>",
        "</textarea><svg onload=alert(3)>",
        "\x1b]0;owned\x07 bell and \u{202e}reversed",
        "javascript:alert(4)",
    ];
    for h in hostile {
        // The scope's user, request and transaction, and an attachment's
        // name, are stored text too (#21).
        l.scope(
            |s| {
                s.set_transaction(h)
                    .set_user(errsnap::User::new().id(h).username(h))
                    .set_request(
                        errsnap::event::Request::new("GET", h)
                            .route(h)
                            .query(h)
                            .header("user-agent", h),
                    );
            },
            || {
                l.event(Level::Error, h)
                    .tag("t<script>", "<script>alert(5)</script>")
                    .extra(
                        "x",
                        serde_json::json!({"<img src=y>": "</pre><script>alert(6)</script>"}),
                    )
                    .attach(errsnap::Attachment::text(h, "x"))
                    .emit();
            },
        );
    }
    assert!(l.flush(T));
    drop(l);
    let dash = Dash::start(&db, &[]);
    let cookie = dash.login();
    let list = dash.get("/", Some(&cookie)).body;
    let mut pages = vec![list.clone()];
    let mut at = 0;
    while let Some(i) = list[at..].find("href=\"/groups/") {
        let id: String = list[at + i + 14..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        at += i + 14;
        pages.push(dash.get(&format!("/groups/{id}"), Some(&cookie)).body);
    }
    assert!(pages.len() > hostile.len(), "every group page was read");
    pages.push(dash.get("/events", Some(&cookie)).body);
    pages.push(dash.get("/search?q=alert", Some(&cookie)).body);
    pages.push(dash.get("/search?q=%3Cscript%3E", Some(&cookie)).body);
    pages.push(dash.get("/stats", Some(&cookie)).body);
    pages.push(dash.get("/?release=%3Cb%3E1%3C%2Fb%3E", Some(&cookie)).body);
    for p in &pages {
        for bad in [
            "<script>alert",
            "<img src=x",
            "<svg onload",
            "<img src=y",
            "<b>1</b>",
            "\x1b",
            "\x07",
            "\u{202e}",
        ] {
            assert!(!p.contains(bad), "{bad:?} rendered live in {p}");
        }
    }
    let all = pages.join("\n");
    assert!(all.contains("<h3>Request</h3>") && all.contains("<h3>Attachments</h3>"));
    assert!(all.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        all.contains("\\x1b]0;owned\\x07"),
        "control characters shown as escapes"
    );
    assert!(all.contains("\\u{202e}reversed"));
    assert!(
        all.contains("&lt;b&gt;1&lt;/b&gt;"),
        "the release filter choice is escaped"
    );
    // Each hostile attachment downloads under a name of safe characters.
    let mut downloads = 0;
    for p in &pages {
        let mut at = 0;
        while let Some(i) = p[at..].find("/attachments/0\"") {
            let start = p[..at + i].rfind("href=\"").unwrap() + 6;
            let link = &p[start..at + i + 14];
            at += i + 14;
            let r = dash.get(link, Some(&cookie));
            assert_eq!(r.status, 200, "{link}");
            let d = r.header("content-disposition").unwrap();
            let name = d
                .strip_prefix("attachment; filename=\"")
                .unwrap()
                .trim_end_matches('"');
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{d}"
            );
            assert_eq!(r.header("content-type"), Some("application/octet-stream"));
            downloads += 1;
        }
    }
    assert!(downloads >= 1, "the event pages link their attachments");
    // The only scripts are the server's own file.
    assert_eq!(
        all.matches("<script").count(),
        all.matches("<script src=\"/static/app.js\" defer></script>")
            .count()
    );
}

#[test]
fn filters_sort_paging_and_sparklines() {
    // See: issue #19 (2): the groups page
    let (_d, db) = recorded();
    let many = util::builder(&db, "batch").release("3.0").build().unwrap();
    for i in 0..60 {
        // Distinct words (letters past `f`, so no part reads as a hex
        // id the grouping ignores): 60 groups.
        let word: String = [i / 400, (i / 20) % 20, i % 20, 7]
            .iter()
            .map(|d| (b'g' + *d as u8) as char)
            .collect();
        many.warn(format!("batch step {word} finished late"));
    }
    assert!(many.flush(T));
    drop(many);
    let dash = Dash::start(&db, &[]);
    let cookie = dash.login();
    let get = |p: &str| dash.get(p, Some(&cookie));
    let rows = |p: &str| get(p).body.matches("<tr data-group=").count();
    assert_eq!(rows("/"), 50, "a page holds 50 groups");
    assert_eq!(rows("/?page=2"), 63 - 50);
    assert!(get("/").body.contains("rel=\"next\""));
    assert!(!get("/?page=2").body.contains("rel=\"next\""));
    assert_eq!(
        rows("/?level=error"),
        2,
        "payments and the refused connection"
    );
    assert_eq!(rows("/?level=warn&page=2"), 63 - 50);
    assert_eq!(rows("/?release=1.0"), 2);
    assert_eq!(rows("/?environment=staging"), 1);
    assert_eq!(rows("/?logger=jobs"), 1);
    let host = sysinfo::System::host_name().unwrap_or_default();
    if !host.is_empty() {
        assert_eq!(rows(&format!("/?host={host}&page=2")), 63 - 50);
    }
    assert_eq!(rows("/?host=no-such-host"), 0);
    assert_eq!(rows("/?range=1h"), 50);
    assert_eq!(rows("/?status=resolved"), 0);
    // Sorted by count: the five payments first.
    let by_count = get("/?sort=count").body;
    let first = by_count.find("<tr data-group=").unwrap();
    assert!(by_count[first..]
        .split("</tr>")
        .next()
        .unwrap()
        .contains("declined"));
    // Sparklines: the last 24 hours and 14 days, as inline SVG bars.
    let row = by_count[first..].split("</tr>").next().unwrap().to_owned();
    assert_eq!(row.matches("<svg").count(), 2, "{row}");
    assert!(
        row.contains("aria-label=\"last 24 hours: 5 in all, at most 5\""),
        "{row}"
    );
    assert!(
        row.contains("aria-label=\"last 14 days: 5 in all, at most 5\""),
        "{row}"
    );
    assert!(row.contains("badge new"), "first seen today: new");
    // The filter choices come from what was recorded.
    let page = get("/").body;
    for v in ["1.0", "2.0", "3.0", "prod", "staging"] {
        assert!(page.contains(&format!("<option value=\"{v}\">")), "{v}");
    }
    // Bad values are named.
    for (q, name) in [
        ("level=loud", "level=loud"),
        ("range=2y", "range=2y"),
        ("sort=size", "sort=size"),
        ("page=x", "page=x"),
        ("status=lost", "status=lost"),
    ] {
        let r = get(&format!("/?{q}"));
        assert_eq!(r.status, 400, "{q}");
        assert!(r.body.contains(name), "{q}: {}", r.body);
    }
    // The live fragment is the rows alone.
    let frag = get("/?fragment=rows&level=error").body;
    assert!(frag.starts_with("<tr") && !frag.contains("<html"), "{frag}");
}

#[test]
fn a_group_page_has_history_values_resources_and_its_latest_event() {
    // See: issue #19 (2): a group; source lines only under the roots
    let (_d, db) = recorded();
    let dash = Dash::start(&db, &["--source-root", env!("CARGO_MANIFEST_DIR")]);
    let cookie = dash.login();
    let g = first_group(&dash.get("/?sort=count", Some(&cookie)).body);
    let page = dash.get(&format!("/groups/{g}"), Some(&cookie)).body;
    for want in [
        "Occurrences per hour, last 48 hours",
        "Occurrences per day, last 30 days",
        "aria-label=\"per hour: 5 in all",
        "<h3>Releases</h3>",
        "<th>1.0</th>",
        "<th>prod</th>",
        "Resident memory across the last",
        "<polyline",
        "<h3>Message</h3>",
        "payment 4 declined by the bank",
        "<h3>Stack</h3>",
        "frame in-app",
        "<h3>Snapshot</h3>",
        "id=\"count\">5<",
    ] {
        assert!(page.contains(want), "{want} in the group page");
    }
    // Source lines of this test file (under the root).
    assert!(
        page.contains("<pre class=\"source\">"),
        "source lines shown"
    );
    assert!(
        page.contains("fn recorded()") || page.contains("web.error("),
        "this file's lines"
    );
    // Another root: the same frames, no file read.
    drop(dash);
    let elsewhere = tempfile::tempdir().unwrap();
    let dash = Dash::start(&db, &["--source-root", elsewhere.path().to_str().unwrap()]);
    let cookie = dash.login();
    let page = dash.get(&format!("/groups/{g}"), Some(&cookie)).body;
    assert!(page.contains("frame in-app") && !page.contains("<pre class=\"source\">"));
    // The events of the group, and one event.
    let events = dash.get(&format!("/events?group={g}"), Some(&cookie)).body;
    assert_eq!(events.matches("href=\"/events/").count(), 5);
    let id_at = events.find("href=\"/events/").unwrap() + 14;
    let id: String = events[id_at..].split('"').next().unwrap().to_owned();
    let one = dash.get(&format!("/events/{id}"), Some(&cookie));
    assert_eq!(one.status, 200);
    assert!(one.body.contains(&id) && one.body.contains("declined by the bank"));
    assert_eq!(dash.get("/events/not-an-id!", Some(&cookie)).status, 400);
    assert_eq!(
        dash.get("/events/0000000000000000", Some(&cookie)).status,
        404
    );
    assert_eq!(dash.get("/groups/999999", Some(&cookie)).status, 404);
    assert_eq!(dash.get("/groups/x", Some(&cookie)).status, 400);
    assert_eq!(dash.get("/no/such/page", Some(&cookie)).status, 404);
    // Text search in messages finds ids the index leaves out.
    let by_text = dash.get("/events?text=payment%203", Some(&cookie)).body;
    assert_eq!(by_text.matches("href=\"/events/").count(), 1);
}

#[test]
fn search_finds_message_chain_and_frames_and_indexes_a_storm_once() {
    // See: issue #19 (2): search, distinct texts
    let (_d, db) = recorded();
    let storm = util::logger(&db, "storm");
    for i in 0..2000 {
        storm.error(format!("disk quota exceeded for tenant {i}"));
    }
    assert!(storm.flush(T));
    drop(storm);
    let conn = util::open(&db);
    assert_eq!(
        util::count(
            &conn,
            "SELECT count(*) FROM group_texts WHERE body LIKE 'disk quota%'"
        ),
        1,
        "2000 occurrences, one text"
    );
    let dash = Dash::start(&db, &[]);
    let cookie = dash.login();
    let hits = |q: &str| {
        let b = dash.get(&format!("/search?q={q}"), Some(&cookie)).body;
        b.matches("<li><span class=\"status").count()
    };
    assert_eq!(hits("quota"), 1);
    assert_eq!(hits("quot"), 1, "the last word is a prefix");
    assert_eq!(hits("DISK+Quota"), 1, "case does not matter");
    assert_eq!(hits("refused"), 1, "the chain's message");
    assert_eq!(hits("upstream"), 1);
    assert_eq!(
        hits("recorded"),
        3,
        "a function name in the frames (this file's)"
    );
    assert_eq!(hits("nothing+like+this"), 0);
    assert_eq!(
        hits("%22%29+OR+*+NEAR%28"),
        0,
        "operators typed are plain words"
    );
    let page = dash.get("/search?q=quota", Some(&cookie)).body;
    assert!(
        page.contains("disk quota exceeded for tenant &lt;n&gt;"),
        "{page}"
    );
}

#[test]
fn live_updates_reach_an_open_page() {
    // See: issue #19 (2): server-sent events
    let (_d, db) = recorded();
    let dash = Dash::start(&db, &[]);
    let cookie = dash.login();
    let mut s = std::net::TcpStream::connect(&dash.addr).unwrap();
    use std::io::{Read, Write};
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /live HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n",
        dash.addr
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The headers first.
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("text/event-stream"));
    let l = util::logger(&db, "late");
    l.error("arrived while the page was open");
    assert!(l.flush(T));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&got).contains("event: change") {
        assert!(
            std::time::Instant::now() < deadline,
            "no change event: {}",
            String::from_utf8_lossy(&got)
        );
        let n = s.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn a_schema_5_file_is_read_and_changed_by_this_cli() {
    // See: issue #19: the reader on a file no writer has migrated yet
    let (_d, db) = recorded();
    util::open(&db)
        .execute_batch(
            "DROP TABLE group_texts_fts; DROP TABLE group_texts; DROP TABLE group_values;
             DROP TABLE group_hours; ALTER TABLE event_groups DROP COLUMN resolved_next;
             PRAGMA user_version = 5;
             UPDATE errsnap_meta SET value = '5' WHERE key = 'schema_version';
             UPDATE errsnap_meta SET value = '1' WHERE key = 'min_writer_version';",
        )
        .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_errsnap"))
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["resolve", "--group", "1", "--status", "muted"]);
    assert!(out.status.success(), "{}", util::describe(&out));
    assert_eq!(status_of(&db, 1), GroupStatus::Muted);
    let out = run(&["resolve", "--group", "1", "--status", "resolved"]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let out = run(&["resolve", "--group", "1", "--status", "resolved-next"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema version 5"));
    // The dashboard shows it without the summaries.
    let dash = Dash::start(&db, &[]);
    let cookie = dash.login();
    let r = dash.get("/", Some(&cookie));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.matches("<tr data-group=").count(), 3);
    assert_eq!(dash.get("/search?q=payment", Some(&cookie)).status, 200);
    assert_eq!(dash.get("/groups/1", Some(&cookie)).status, 200);
}

#[test]
fn the_runs_and_releases_pages_say_how_each_run_ended_and_each_release_fared() {
    let (_d, db) = util::temp_db();
    for release in ["2.0", "2.1<b>"] {
        let log = util::builder(&db, "shop").release(release).build().unwrap();
        log.error(format!("checkout failed in {release}"));
        assert!(log.flush(Duration::from_secs(20)));
        drop(log);
    }
    // The first run was killed by the kernel (as the runs ledger records it).
    util::open(&db)
        .execute_batch("UPDATE runs SET status = 'abnormal', end_reason = 'oom-kill' WHERE id = 1")
        .unwrap();
    let dash = Dash::start(&db, &[]);
    let cookie = dash.login();
    let runs = dash.get("/runs", Some(&cookie));
    assert_eq!(runs.status, 200, "{}", runs.body);
    assert!(runs.body.contains("ended abnormally"), "{}", runs.body);
    assert!(
        runs.body.contains("<code class=\"reason\">oom-kill</code>"),
        "{}",
        runs.body
    );
    assert!(runs.body.contains(">exited</span>"), "{}", runs.body);
    assert!(
        runs.body.contains("2.1&lt;b&gt;") && !runs.body.contains("2.1<b>"),
        "escaped"
    );
    assert!(
        runs.body.contains("aria-current=\"page\">Runs"),
        "{}",
        runs.body
    );
    let rel = dash.get("/releases", Some(&cookie));
    assert_eq!(rel.status, 200, "{}", rel.body);
    // 2.0: one run, abnormal: 0 % crash-free; 2.1<b>: one run, exited: 100 %.
    assert!(
        rel.body.contains("0.0 %") && rel.body.contains("100.0 %"),
        "{}",
        rel.body
    );
    assert!(rel.body.contains("href=\"/?new_in=2.0\""), "{}", rel.body);
    let new_in = dash.get("/?new_in=2.0", Some(&cookie));
    assert!(
        new_in.body.contains("checkout failed in 2.0"),
        "{}",
        new_in.body
    );
    assert!(
        !new_in.body.contains("checkout failed in 2.1"),
        "only the group new in 2.0"
    );
}
