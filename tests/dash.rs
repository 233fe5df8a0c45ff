//! Helpers for the dashboard's tests: an `errsnap serve` process on a
//! loopback port, and a small HTTP/1.1 client that sends exactly the
//! headers a test gives (a browser's Host, Origin and Cookie included).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `errsnap serve`.
pub(crate) struct Dash {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// The URL it printed (with the token).
    pub(crate) url: String,
    pub(crate) token: String,
}

impl Dash {
    /// Starts `errsnap --db DB serve --listen 127.0.0.1:0 ARGS`.
    pub(crate) fn start(db: &Path, args: &[&str]) -> Dash {
        Self::start_db(db.to_str().unwrap(), args)
    }

    /// The same for a `--db` that is a URL.
    pub(crate) fn start_db(db: &str, args: &[&str]) -> Dash {
        Self::start_limited(db, args, None)
    }

    /// `errsnap serve` of a database whose password is given apart, in
    /// `ERRSNAP_DATABASE_PASSWORD` (serve refuses one in `--db`).
    pub(crate) fn start_with_password(db: &str, password: &str) -> Dash {
        Self::start_full(db, &[], None, Some(password))
    }

    /// The same, with at most `nofile` open descriptors (`ulimit -n`).
    pub(crate) fn start_limited(db: &str, args: &[&str], nofile: Option<u64>) -> Dash {
        Self::start_full(db, args, nofile, None)
    }

    fn start_full(db: &str, args: &[&str], nofile: Option<u64>, password: Option<&str>) -> Dash {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_errsnap"));
        cmd.args(["--db", db, "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("ERRSNAP_DB_PATH")
            .env_remove("ERRSNAP_DASHBOARD_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match password {
            Some(p) => cmd.env("ERRSNAP_DATABASE_PASSWORD", p),
            None => cmd.env_remove("ERRSNAP_DATABASE_PASSWORD"),
        };
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; it runs in the child
            // between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let r = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        for _ in 0..3 {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            if let Some(u) = line.trim().strip_prefix("http://") {
                url = format!("http://{u}");
                break;
            }
        }
        assert!(!url.is_empty(), "errsnap serve printed no URL");
        let rest = url.trim_start_matches("http://");
        let (addr, query) = rest.split_once("/?token=").unwrap();
        // Keep reading its output so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Dash {
            child,
            addr: addr.to_owned(),
            token: query.to_owned(),
            url,
        }
    }

    /// A request with this server's Host header.
    pub(crate) fn get(&self, path: &str, cookie: Option<&str>) -> Resp {
        let mut h = vec![("Host", self.addr.clone())];
        if let Some(c) = cookie {
            h.push(("Cookie", c.to_owned()));
        }
        request(&self.addr, "GET", path, &h, "")
    }

    /// A form POST with this server's Host header.
    pub(crate) fn post(&self, path: &str, cookie: &str, form: &str) -> Resp {
        let h = vec![
            ("Host", self.addr.clone()),
            ("Cookie", cookie.to_owned()),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ];
        request(&self.addr, "POST", path, &h, form)
    }

    /// Logs in with the token; returns the `Cookie` header value.
    pub(crate) fn login(&self) -> String {
        let r = self.get(&format!("/?token={}", self.token), None);
        assert_eq!(r.status, 303, "{}", r.body);
        let set = r.header("set-cookie").unwrap().to_owned();
        set.split(';').next().unwrap().to_owned()
    }
}

impl Drop for Dash {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
pub(crate) fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    // Read until the answer is complete (its length, its last chunk, or
    // the end of the connection): some servers keep it open.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if complete(&raw) {
            break;
        }
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    parse(&raw)
}

/// Whether `raw` holds a whole answer.
fn complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.len() >= len;
    }
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = HashMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t == "chunked")
    {
        body = unchunk(&body);
    }
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 4 + size..];
    }
    out
}

/// The first `data-group` id on a page.
pub(crate) fn first_group(html: &str) -> i64 {
    let at = html.find("data-group=\"").expect("a group row") + 12;
    html[at..].split('"').next().unwrap().parse().unwrap()
}

/// The CSRF token in a page's forms.
pub(crate) fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with the CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}
