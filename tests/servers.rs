//! Real protocol servers on 127.0.0.1 for the alert tests: an HTTP/1.1
//! server that plays a Slack webhook, and an SMTP server that keeps what it
//! receives. Each connection is served on a thread of its own; scripted
//! replies allow outages, rate limits and hangs.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the webhook stub answers.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// Status, body, extra headers.
    Status(u16, String, Vec<(String, String)>),
    /// Reads the request, then says nothing for this long.
    Hang(Duration),
}

impl Reply {
    pub(crate) fn ok() -> Reply {
        Reply::Status(200, "ok".into(), Vec::new())
    }
    pub(crate) fn status(code: u16, body: &str) -> Reply {
        Reply::Status(code, body.into(), Vec::new())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    pub(crate) at: Instant,
}

impl Request {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Default)]
struct HttpState {
    script: VecDeque<Reply>,
    default: Option<Reply>,
    requests: Vec<Request>,
}

/// The webhook stub.
#[derive(Clone)]
pub(crate) struct HttpStub {
    pub(crate) addr: SocketAddr,
    state: Arc<Mutex<HttpState>>,
    https: bool,
}

impl HttpStub {
    pub(crate) fn start() -> HttpStub {
        HttpStub::start_with(None)
    }

    /// The same stub behind HTTPS, with a certificate signed by `ca`.
    pub(crate) fn start_tls(ca: &TestCa) -> HttpStub {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(ca.server_chain(), ca.server_key())
            .unwrap();
        HttpStub::start_with(Some(Arc::new(config)))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> HttpStub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(HttpState {
            default: Some(Reply::ok()),
            ..HttpState::default()
        }));
        let s = state.clone();
        let https = tls.is_some();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let s = s.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    None => serve_http(stream, &s),
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        serve_http(rustls::StreamOwned::new(conn, stream), &s);
                    }
                });
            }
        });
        HttpStub { addr, state, https }
    }

    /// The webhook URL (http to loopback is allowed for tests).
    pub(crate) fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/services/T000/B000/SECRETTOKEN", self.addr)
    }

    /// Replies used in order, before the default.
    pub(crate) fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    pub(crate) fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = Some(reply);
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until `n` requests arrived (or `timeout`); returns them.
    pub(crate) fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let end = Instant::now() + timeout;
        loop {
            let r = self.requests();
            if r.len() >= n || Instant::now() >= end {
                return r;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve_http(stream: impl Read + Write, state: &Mutex<HttpState>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let reply = {
        let mut st = state.lock().unwrap();
        st.requests.push(Request {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        st.script
            .pop_front()
            .or_else(|| st.default.clone())
            .unwrap_or_else(Reply::ok)
    };
    let stream = reader.get_mut();
    match reply {
        Reply::Hang(d) => std::thread::sleep(d),
        Reply::Status(code, body, extra) => {
            let mut out = format!(
                "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in extra {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            let _ = stream.write_all(out.as_bytes());
            let _ = stream.flush();
        }
    }
}

/// How the SMTP sink behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SmtpMode {
    Accept,
    /// 535 to every AUTH.
    RefuseAuth,
    /// Closes the connection in the middle of DATA.
    CloseMidData,
}

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    pub(crate) data: String,
    pub(crate) auth: Option<(String, String)>,
}

impl Mail {
    /// The value of a header (unfolded).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut out: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(o) = out.as_mut() {
                    o.push_str(line.trim_start());
                }
                continue;
            }
            if out.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    out = Some(v.trim().to_owned());
                }
            }
        }
        out
    }
}

struct SmtpState {
    mode: SmtpMode,
    mails: Vec<Mail>,
    connections: usize,
}

/// The SMTP sink.
#[derive(Clone)]
pub(crate) struct SmtpSink {
    pub(crate) addr: SocketAddr,
    state: Arc<Mutex<SmtpState>>,
}

impl SmtpSink {
    pub(crate) fn start(mode: SmtpMode) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(SmtpState {
            mode,
            mails: Vec::new(),
            connections: 0,
        }));
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve_smtp(stream, &s);
                });
            }
        });
        SmtpSink { addr, state }
    }

    pub(crate) fn set_mode(&self, mode: SmtpMode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub(crate) fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }

    pub(crate) fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    pub(crate) fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let end = Instant::now() + timeout;
        loop {
            let m = self.mails();
            if m.len() >= n || Instant::now() >= end {
                return m;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Decodes base64 (whitespace and padding ignored).
pub(crate) fn b64decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let Some(v) = A.iter().position(|&x| x == c) else {
            continue;
        };
        buf = (buf << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

fn serve_smtp(stream: TcpStream, state: &Mutex<SmtpState>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    state.lock().unwrap().connections += 1;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut w = stream;
    w.write_all(b"220 sink.test ESMTP errsnap-test-sink\r\n")?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut auth = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let mode = state.lock().unwrap().mode;
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            w.write_all(
                b"250-sink.test\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            )?;
        } else if upper.starts_with("AUTH PLAIN") {
            if mode == SmtpMode::RefuseAuth {
                w.write_all(b"535 5.7.8 Authentication credentials invalid\r\n")?;
                continue;
            }
            let decoded = b64decode(cmd[10..].trim());
            let parts: Vec<String> = decoded
                .split(|&b| b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            if parts.len() == 3 {
                auth = Some((parts[1].clone(), parts[2].clone()));
            }
            w.write_all(b"235 2.7.0 Authentication successful\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..]
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_owned();
            w.write_all(b"250 2.1.0 OK\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(
                cmd[8..]
                    .trim()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            );
            w.write_all(b"250 2.1.5 OK\r\n")?;
        } else if upper == "DATA" {
            w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            let mut lines = 0;
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                lines += 1;
                if mode == SmtpMode::CloseMidData && lines == 5 {
                    return Ok(()); // drop the connection mid-DATA
                }
                if l == ".\r\n" {
                    break;
                }
                let l = l
                    .strip_prefix('.')
                    .filter(|_| l.starts_with(".."))
                    .unwrap_or(&l);
                data.push_str(l);
            }
            state.lock().unwrap().mails.push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
                auth: auth.clone(),
            });
            w.write_all(b"250 2.0.0 OK queued\r\n")?;
        } else if upper == "QUIT" {
            w.write_all(b"221 2.0.0 Bye\r\n")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            w.write_all(b"250 2.0.0 OK\r\n")?;
        } else {
            w.write_all(b"502 5.5.2 Command not recognized\r\n")?;
        }
    }
}

/// A certificate authority made for one test, and a server certificate it
/// signed for 127.0.0.1 and localhost.
pub(crate) struct TestCa {
    pub(crate) ca_pem: String,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl TestCa {
    pub(crate) fn new() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "errsnap test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "errsnap test server");
        let cert = params.signed_by(&key, &issuer).unwrap();
        TestCa {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    fn server_chain(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        vec![rustls::pki_types::CertificateDer::from(
            self.cert_der.clone(),
        )]
    }

    fn server_key(&self) -> rustls::pki_types::PrivateKeyDer<'static> {
        rustls::pki_types::PrivateKeyDer::Pkcs8(self.key_der.clone().into())
    }

    /// Writes `ca.pem`, `server.pem` and `server.key` into `dir`.
    pub(crate) fn write(&self, dir: &std::path::Path) -> std::path::PathBuf {
        std::fs::write(dir.join("ca.pem"), &self.ca_pem).unwrap();
        std::fs::write(dir.join("server.pem"), &self.cert_pem).unwrap();
        std::fs::write(dir.join("server.key"), &self.key_pem).unwrap();
        dir.join("ca.pem")
    }
}

/// A real SMTP server (aiosmtpd, PyPI) in a child process, see
/// `tests/support/smtp_server.py`. `.ci/run` installs aiosmtpd in a venv
/// and sets `ERRSNAPTEST_PYTHON` and `ERRSNAPTEST_REQUIRE_SERVERS=1`; elsewhere
/// a test without it prints a skip line.
pub(crate) struct RealSmtp {
    pub(crate) port: u16,
    out: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

/// Options for [`RealSmtp::start`].
#[derive(Default)]
pub(crate) struct SmtpOptions<'a> {
    pub(crate) tls: Option<&'a TestCa>,
    pub(crate) auth: Option<(&'a str, &'a str)>,
}

impl RealSmtp {
    /// Starts the server, or `None` (with a skip line) when aiosmtpd is not
    /// installed and `ERRSNAPTEST_REQUIRE_SERVERS` is not set.
    pub(crate) fn start(test: &str, opts: SmtpOptions<'_>) -> Option<RealSmtp> {
        let python = std::env::var("ERRSNAPTEST_PYTHON").unwrap_or_else(|_| {
            let venv =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
            if venv.exists() {
                venv.display().to_string()
            } else {
                "python3".to_owned()
            }
        });
        let has = std::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !has {
            assert!(
                std::env::var_os("ERRSNAPTEST_REQUIRE_SERVERS").is_none(),
                "{test}: aiosmtpd is required (ERRSNAPTEST_REQUIRE_SERVERS) but {python} lacks it"
            );
            eprintln!("skip {test}: aiosmtpd is not installed (pip install aiosmtpd)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mails.jsonl");
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut cmd = std::process::Command::new(&python);
        cmd.arg(script).arg(port.to_string()).arg(&out);
        if let Some(ca) = opts.tls {
            ca.write(dir.path());
            cmd.arg("--tls")
                .arg(dir.path().join("server.pem"))
                .arg(dir.path().join("server.key"));
        }
        if let Some((u, p)) = opts.auth {
            cmd.args(["--auth", u, p]);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the SMTP server did not start");
        Some(RealSmtp {
            port,
            out,
            child,
            _dir: dir,
        })
    }

    /// The messages accepted so far.
    pub(crate) fn mails(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub(crate) fn wait_for(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let end = Instant::now() + timeout;
        loop {
            let m = self.mails();
            if m.len() >= n || Instant::now() >= end {
                return m;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RealSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
