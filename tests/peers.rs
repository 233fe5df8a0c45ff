//! The forwarding tests' real peers (issue #20), each a child process on
//! loopback: Bugsink (PyPI `bugsink`, a Sentry-compatible server), an
//! OTLP/HTTP receiver decoding with the official protobuf definitions
//! (PyPI `opentelemetry-proto`), and a fault-injecting proxy in front of
//! either. `.ci/run` installs both packages in its venv and sets
//! `ERRSNAPTEST_REQUIRE_SERVERS=1`; elsewhere a test without them prints a
//! skip line.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) fn support(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script)
}

/// The venv's Python when it can import `module`; `None` (with a skip
/// line) when it cannot and the servers are not required.
pub(crate) fn python_with(test: &str, module: &str, package: &str) -> Option<String> {
    let python = std::env::var("ERRSNAPTEST_PYTHON").unwrap_or_else(|_| {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".to_owned()
        }
    });
    let has = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        assert!(
            std::env::var_os("ERRSNAPTEST_REQUIRE_SERVERS").is_none(),
            "{test}: {package} is required (ERRSNAPTEST_REQUIRE_SERVERS) but {python} lacks it"
        );
        eprintln!("skip {test}: {package} is not installed (pip install {package})");
        return None;
    }
    Some(python)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads the `READY <port>` line a support script prints.
fn ready_port(child: &mut Child, what: &str) -> u16 {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{what} did not start: {line:?}"))
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A Bugsink server in a directory of its own, with one project.
pub(crate) struct Bugsink {
    python: String,
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    /// `http://<key>@127.0.0.1:<port>/<project>`.
    pub(crate) dsn: String,
    child: Option<Child>,
}

/// The migrated database every Bugsink of this test run starts from.
static TEMPLATE: Mutex<Option<PathBuf>> = Mutex::new(None);

impl Bugsink {
    /// Sets a server up without starting it (`quota`: Bugsink's events per
    /// project per 5 minutes, past which it answers 429).
    pub(crate) fn prepare(test: &str, quota: Option<u32>) -> Option<Bugsink> {
        let python = python_with(test, "bugsink", "bugsink")?;
        let template = {
            let mut t = TEMPLATE.lock().unwrap_or_else(|p| p.into_inner());
            match &*t {
                Some(p) => p.clone(),
                None => {
                    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bugsink-template");
                    let ok = Command::new(&python)
                        .arg(support("bugsink_server.py"))
                        .arg("template")
                        .arg(&p)
                        .status()
                        .unwrap();
                    assert!(ok.success(), "Bugsink's database could not be made");
                    *t = Some(p.clone());
                    p
                }
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new(&python);
        cmd.arg(support("bugsink_server.py"))
            .arg("prepare")
            .arg(dir.path())
            .arg(port.to_string())
            .arg(&template);
        if let Some(q) = quota {
            cmd.arg(q.to_string());
        }
        let out = cmd.stderr(Stdio::inherit()).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let dsn = text
            .lines()
            .find_map(|l| l.strip_prefix("DSN="))
            .unwrap_or_else(|| panic!("no DSN from Bugsink: {text}"))
            .to_owned();
        Some(Bugsink {
            python,
            dir,
            port,
            dsn,
            child: None,
        })
    }

    /// Prepares and starts a server.
    pub(crate) fn start(test: &str) -> Option<Bugsink> {
        let mut b = Bugsink::prepare(test, None)?;
        b.run();
        Some(b)
    }

    /// Starts the prepared server and waits until it is ready.
    pub(crate) fn run(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        self.child = Some(
            Command::new(&self.python)
                .arg(support("bugsink_server.py"))
                .arg("serve")
                .arg(self.dir.path())
                .arg(self.port.to_string())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while !health(self.port) {
            assert!(
                Instant::now() < deadline,
                "Bugsink did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the server wrote to its log.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The project's public key (the DSN's user part).
    pub(crate) fn key(&self) -> String {
        let rest = self.dsn.split_once("://").unwrap().1;
        rest.split_once('@').unwrap().0.to_owned()
    }

    /// The DSN with another port (a proxy in front of this server).
    pub(crate) fn dsn_via(&self, port: u16) -> String {
        self.dsn
            .replace(&format!(":{}/", self.port), &format!(":{port}/"))
    }

    /// The stored issues and events (`{"issues": [...], "events": [...]}`).
    pub(crate) fn query(&self) -> Value {
        let out = Command::new(&self.python)
            .arg(support("bugsink_server.py"))
            .arg("query")
            .arg(self.dir.path())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "query failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let json = text.lines().rfind(|l| l.starts_with('{')).unwrap_or("{}");
        serde_json::from_str(json).unwrap()
    }

    /// Waits until at least `n` events are stored; returns what is stored.
    pub(crate) fn wait_events(&self, n: usize, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let q = self.query();
            let have = q["events"].as_array().map_or(0, Vec::len);
            if have >= n || Instant::now() >= deadline {
                return q;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Bugsink {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Whether `GET /health/ready` answers 200.
fn health(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    if s.read_exact(&mut head).is_err() {
        return false;
    }
    head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200")
}

/// The fault-injecting proxy (`tests/support/fault_proxy.py`).
pub(crate) struct FaultProxy {
    pub(crate) port: u16,
    log: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl FaultProxy {
    /// A proxy to `upstream` answering its first requests as `schedule`
    /// says (`429:2,503,drop,pass`).
    pub(crate) fn start(python: &str, upstream: u16, schedule: &str) -> FaultProxy {
        FaultProxy::start_with(python, upstream, schedule, false)
    }

    /// The same, keeping each request's body (base64, as `body`).
    pub(crate) fn start_with(
        python: &str,
        upstream: u16,
        schedule: &str,
        bodies: bool,
    ) -> FaultProxy {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new(python)
            .arg(support("fault_proxy.py"))
            .arg(upstream.to_string())
            .arg(&log)
            .arg(schedule)
            .args(bodies.then_some("bodies"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let port = ready_port(&mut child, "the fault proxy");
        FaultProxy {
            port,
            log,
            child: Some(child),
            _dir: dir,
        }
    }

    /// The requests so far, in order.
    pub(crate) fn requests(&self) -> Vec<Value> {
        lines(&self.log)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// The OTLP/HTTP receiver (`tests/support/otlp_receiver.py`).
pub(crate) struct OtlpReceiver {
    pub(crate) port: u16,
    out: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl OtlpReceiver {
    pub(crate) fn start(test: &str) -> Option<OtlpReceiver> {
        OtlpReceiver::start_on(test, 0)
    }

    /// A receiver on `port` (0: any free one).
    pub(crate) fn start_on(test: &str, port: u16) -> Option<OtlpReceiver> {
        let python = python_with(test, "opentelemetry.proto", "opentelemetry-proto")?;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("records.jsonl");
        let mut child = Command::new(&python)
            .arg(support("otlp_receiver.py"))
            .arg(&out)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let port = ready_port(&mut child, "the OTLP receiver");
        Some(OtlpReceiver {
            port,
            out,
            child: Some(child),
            _dir: dir,
        })
    }

    /// The decoded records so far.
    pub(crate) fn records(&self) -> Vec<Value> {
        lines(&self.out)
    }

    pub(crate) fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.records();
            if r.len() >= n || Instant::now() >= deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
