//! The dashboard in a real browser (issue #19): headless Debian Chromium
//! driven through chromedriver (W3C WebDriver over loopback HTTP). It
//! opens the groups page, watches a live update arrive, opens a group,
//! clicks Resolve and checks the new status, saving screenshots under
//! `target/screenshots/`. Skipped (with a line saying so) where Chromium is
//! not installed, unless `ERRSNAPTEST_REQUIRE_BROWSER=1` (as in `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use errsnap::db::{Database, GroupStatus};
use serde_json::{json, Value};

use crate::dash::{request, Dash};
use crate::util;

const T: Duration = Duration::from_secs(20);

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

struct Driver {
    child: Child,
    addr: String,
    session: String,
}

impl Driver {
    fn start(driver: &Path, browser: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + T;
        loop {
            if std::net::TcpStream::connect(&addr).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut d = Driver {
            child,
            addr,
            session: String::new(),
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-component-update",
                         "--no-first-run", "--disable-dev-shm-usage", "--window-size=1360,1000"]
            }
        }}});
        let r = d.call("POST", "/session", Some(caps));
        d.session = r["value"]["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        d
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// One WebDriver command; an error answer (such as a stale element
    /// after a live update replaced the rows) is returned, not a panic.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut h = vec![("Host", self.addr.clone())];
        if method == "POST" {
            h.push(("Content-Type", "application/json".into()));
        }
        let r = request(&self.addr, method, path, &h, &body);
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        if r.status < 400 {
            Ok(v)
        } else {
            Err(format!("{} {}", r.status, r.body))
        }
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    /// The elements matching a CSS selector (none is not an error).
    fn all(&self, css: &str) -> Vec<String> {
        let v = self.call(
            "POST",
            &self.s("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_object()?.values().next()?.as_str().map(str::to_owned))
            .collect()
    }

    fn text(&self, element: &str) -> String {
        self.try_text(element)
            .unwrap_or_else(|e| panic!("text of {element}: {e}"))
    }

    fn try_text(&self, element: &str) -> Result<String, String> {
        let v = self.try_call("GET", &self.s(&format!("/element/{element}/text")), None)?;
        Ok(v["value"].as_str().unwrap_or("").to_owned())
    }

    fn try_click(&self, element: &str) -> Result<(), String> {
        self.try_call(
            "POST",
            &self.s(&format!("/element/{element}/click")),
            Some(json!({})),
        )
        .map(drop)
    }

    /// The texts of every element matching `css`, read again from the
    /// start when the live update replaced the rows while reading.
    fn texts(&self, css: &str) -> Vec<String> {
        let deadline = Instant::now() + T;
        loop {
            let read: Result<Vec<String>, String> =
                self.all(css).iter().map(|e| self.try_text(e)).collect();
            match read {
                Ok(texts) => return texts,
                Err(e) => assert!(Instant::now() < deadline, "{css}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `css` matches an element whose text satisfies `ok`.
    /// Elements replaced while looking (stale) are looked up again.
    fn wait_for(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + T;
        loop {
            for e in self.all(css) {
                if self.try_text(&e).is_ok_and(|t| ok(&t)) {
                    return e;
                }
            }
            assert!(Instant::now() < deadline, "nothing matched {css}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Clicks the element `css` whose text satisfies `ok`, finding it again
    /// when a live update replaced it between finding and clicking.
    fn click_on(&self, css: &str, ok: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + T;
        loop {
            let e = self.wait_for(css, &ok);
            match self.try_click(&e) {
                Ok(()) => return,
                Err(err) => assert!(Instant::now() < deadline, "click {css}: {err}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let v = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = request(
                &self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                &[("Host", self.addr.clone())],
                "",
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_browser_opens_groups_sees_a_live_update_opens_a_group_and_resolves_it() {
    // See: issue #19 (Tests): a real headless Chromium
    let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    let browser = find(&["/usr/bin/chromium", "/usr/lib/chromium/chromium"]);
    let (Some(driver), Some(browser)) = (driver, browser) else {
        assert!(
            std::env::var_os("ERRSNAPTEST_REQUIRE_BROWSER").is_none(),
            "ERRSNAPTEST_REQUIRE_BROWSER is set but chromium or chromium-driver is missing"
        );
        eprintln!(
            "browser: chromium and chromium-driver are not installed; the browser test is skipped"
        );
        return;
    };
    let (_d, db) = util::temp_db();
    // A reading every 100 ms: the run's page has its charts.
    let web = util::builder(&db, "checkout")
        .release("2.3.1")
        .environment("production")
        .heartbeat(std::time::Duration::from_millis(100))
        .build()
        .unwrap();
    for i in 0..12 {
        web.error(format!("payment {i} declined: card issuer unavailable"));
    }
    let e = std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "inventory service timed out after 30s",
    );
    web.capture_error(&e);
    web.warn("<script>alert('stored xss')</script> in a product name");
    web.warn("cache is 93% full");
    assert!(web.flush(T));
    let dash = Dash::start(&db, &["--source-root", env!("CARGO_MANIFEST_DIR")]);
    let d = Driver::start(&driver, &browser);
    // The printed URL logs in; the token leaves the address bar.
    d.go(&dash.url);
    d.wait_for("h1", |t| t == "Groups");
    let url = d.call("GET", &d.s("/url"), None)["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!url.contains("token="), "{url}");
    let titles = d.texts("td.title > a");
    assert_eq!(titles.len(), 4, "{titles:?}");
    assert!(
        titles
            .iter()
            .any(|t| t.contains("<script>alert('stored xss')</script>")),
        "shown as text: {titles:?}"
    );
    // A new error while the page is open arrives without a reload.
    web.error("checkout session expired mid-payment");
    assert!(web.flush(T));
    d.wait_for("td.title > a", |t| t.contains("checkout session expired"));
    d.screenshot("dashboard-groups.png");
    // Open the most frequent group.
    d.go(&format!("http://{}/?sort=count", dash.addr));
    d.click_on("td.title > a", |t| t.contains("payment"));
    d.wait_for("h1.group-title", |t| t.contains("payment"));
    let count = d.text(&d.all("#count")[0]);
    assert_eq!(count, "12");
    assert!(!d.all("pre.source").is_empty(), "source lines of this file");
    d.screenshot("dashboard-group.png");
    // Resolve it.
    let resolve = d.all("div.actions button[value=\"resolved\"]");
    assert_eq!(resolve.len(), 1);
    d.try_click(&resolve[0]).unwrap();
    d.wait_for("p.group-status .status", |t| t == "resolved");
    d.screenshot("dashboard-resolved.png");
    let g = Database::open(&db)
        .unwrap()
        .groups(&errsnap::db::GroupQuery::default())
        .unwrap();
    let payments = g.iter().find(|g| g.title.starts_with("payment")).unwrap();
    assert_eq!(payments.status, GroupStatus::Resolved);
    // Merge the cache warning's group into it from the form, then take it
    // back out with its row's button.
    let cache = g.iter().find(|g| g.title.starts_with("cache")).unwrap().id;
    let input = d.all("#merge-groups");
    assert_eq!(input.len(), 1);
    d.call(
        "POST",
        &d.s(&format!("/element/{}/value", input[0])),
        Some(json!({"text": cache.to_string()})),
    );
    d.click_on("form.merge button", |t| t == "Merge");
    d.wait_for("#count", |t| t == "13");
    d.wait_for("section.triage th a", |t| t == format!("group {cache}"));
    d.screenshot("dashboard-merged.png");
    let db_now = Database::open(&db).unwrap();
    assert_eq!(db_now.merged_into(payments.id).unwrap().len(), 1);
    d.click_on("section.triage td form.inline button", |t| t == "Unmerge");
    d.wait_for("h1.group-title", |t| t.contains("cache is 93% full"));
    let back = db_now.group(cache).unwrap().unwrap();
    assert_eq!((back.merged_into, back.count), (None, 1));
    assert_eq!(db_now.group(payments.id).unwrap().unwrap().count, 12);
    // The runs and the releases, from the navigation.
    d.click_on("header nav a", |t| t == "Runs");
    d.wait_for("h1", |t| t == "Runs");
    d.wait_for("#runs td span.badge", |t| t == "running" || t == "exited");
    d.screenshot("dashboard-runs.png");
    // One run's page: its flight recorder up to its end.
    d.click_on("#runs td a", |_| true);
    d.wait_for("h1", |t| t.starts_with("Run "));
    d.wait_for("section.charts figcaption", |t| t == "RSS");
    d.screenshot("dashboard-run.png");
    d.click_on("header nav a", |t| t == "Runs");
    d.wait_for("h1", |t| t == "Runs");
    d.click_on("header nav a", |t| t == "Releases");
    d.wait_for("#releases td", |t| t == "2.3.1");
    d.screenshot("dashboard-releases.png");
}
