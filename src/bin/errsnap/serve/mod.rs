//! `errsnap serve`: a local web dashboard over the same read API as the
//! other commands, so it shows a `LOGS.db` file and a fleet's PostgreSQL
//! database alike.
//!
//! Layers, outermost first: `guard` (Host check against DNS rebinding,
//! the token and its session cookie, CSRF on every POST, the security
//! headers on every answer), then the pages (`pages/`), each rendered on
//! a blocking thread with a database connection from a small pool, with
//! auto-escaping templates (maud) and charts drawn as inline SVG
//! (`charts`). Every stored string is user data: it is escaped for HTML
//! by the templates and its control characters are shown as escapes.

mod charts;
mod conns;
mod guard;
mod live;
mod pages;
mod source;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use errsnap::db::Database;

use crate::args::{Cli, ServeArgs};

/// Connections kept open between requests.
const POOL_IDLE: usize = 4;

/// Database connections shared by the request threads.
struct Pool {
    open: Box<dyn Fn() -> Result<Database> + Send + Sync>,
    idle: Mutex<Vec<Database>>,
}

impl Pool {
    /// Runs `f` with a connection (an idle one, else a new one). A
    /// connection whose call failed is closed, not kept (a server that
    /// restarted leaves it dead).
    fn with<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let db = match idle {
            Some(db) => db,
            None => (self.open)()?,
        };
        let out = f(&db);
        if out.is_ok() {
            if let Ok(mut v) = self.idle.lock() {
                if v.len() < POOL_IDLE {
                    v.push(db);
                }
            }
        }
        out
    }
}

/// What every request shares.
pub(crate) struct App {
    pool: Pool,
    /// The access token.
    token: String,
    /// The open sessions (random per login, 12 hours each).
    sessions: guard::Sessions,
    /// Wrong tokens per client address.
    wrong_tokens: guard::WrongTokens,
    /// Reached through a TLS proxy: the cookie is `Secure`.
    behind_tls: bool,
    /// The cookie's name (per port: browsers share cookies across ports).
    cookie: String,
    /// The token every form carries (random per start).
    csrf: String,
    read_only: bool,
    /// Host header values answered (lowercase).
    hosts: Vec<String>,
    /// Canonical directories whose files may be shown.
    roots: Vec<PathBuf>,
    /// The repository suspect commits are blamed in (`--repo`, else
    /// `ERRSNAP_REPO_PATH`).
    repo: Option<errsnap::db::Repository>,
    /// The database, as pages name it (never with a password).
    db_name: String,
    /// Live-update streams open now, and at most.
    streams: std::sync::atomic::AtomicUsize,
    max_streams: usize,
}

type Shared = Arc<App>;

impl App {
    /// Renders a page on a blocking thread; the answer carries the time it
    /// took (`Server-Timing: render;dur=ms`).
    async fn page<F>(self: &Arc<Self>, f: F) -> Response
    where
        F: FnOnce(&Database, &App) -> Result<Response> + Send + 'static,
    {
        let app = Arc::clone(self);
        let started = Instant::now();
        let done = tokio::task::spawn_blocking(move || app.pool.with(|db| f(db, &app))).await;
        let mut resp = match done {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => pages::error_page(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
            Err(_) => pages::error_page(StatusCode::INTERNAL_SERVER_ERROR, "the page failed"),
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if let Ok(v) = HeaderValue::from_str(&format!("render;dur={ms:.2}")) {
            resp.headers_mut().insert("server-timing", v);
        }
        resp
    }
}

/// 32 random bytes, hex.
fn random_hex() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A token given with `--token` or `ERRSNAP_DASHBOARD_TOKEN`: at least 16
/// characters, each one that a URL carries as it is (letters, digits,
/// `-._~`), so the printed URL works. Never echoed back.
fn checked_token(t: &str) -> Result<String> {
    let t = t.trim();
    if t.len() < 16 {
        bail!("--token (or ERRSNAP_DASHBOARD_TOKEN): at least 16 characters");
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        bail!("--token (or ERRSNAP_DASHBOARD_TOKEN): only letters, digits and - . _ ~");
    }
    Ok(t.to_owned())
}

/// The Host header values a listener answers: `name:port` for its
/// address (and the loopback names when it is loopback), and the bare
/// name too on port 80, where browsers leave the port out.
fn allowed_hosts(addr: SocketAddr, names: &[String]) -> Vec<String> {
    let port = addr.port();
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let mut bare = vec![ip];
    if addr.ip().is_loopback() {
        bare.extend(["localhost".into(), "127.0.0.1".into(), "[::1]".into()]);
    }
    let mut hosts: Vec<String> = bare.iter().map(|h| format!("{h}:{port}")).collect();
    if port == 80 {
        hosts.extend(bare);
    }
    for n in names {
        let n = n.trim().to_ascii_lowercase();
        if !n.is_empty() {
            hosts.push(format!("{n}:{port}"));
            hosts.push(n);
        }
    }
    let mut hosts: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    hosts.dedup();
    hosts
}

/// The source roots, made canonical (a missing one is an error that names
/// it).
fn roots(given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let given = if given.is_empty() {
        vec![std::env::current_dir().context("reading the current directory")?]
    } else {
        given.to_vec()
    };
    given
        .iter()
        .map(|r| {
            r.canonicalize()
                .with_context(|| format!("--source-root {}", r.display()))
        })
        .collect()
}

/// The repository of `--repo`, else of `ERRSNAP_REPO_PATH` (none: no
/// suspect commits shown), with `ERRSNAP_REPO_PATH_MAP`.
fn repository(cli: &Cli, a: &ServeArgs) -> Result<Option<errsnap::db::Repository>> {
    let config = crate::settings(cli)?;
    let root = match (&a.repo, config.get("ERRSNAP_REPO_PATH")) {
        (Some(r), _) => r.clone(),
        (None, Some(p)) if !p.is_empty() => PathBuf::from(p),
        _ => return Ok(None),
    };
    let map = config.get("ERRSNAP_REPO_PATH_MAP").unwrap_or_default();
    Ok(Some(
        errsnap::db::Repository::new(root)
            .map_paths(map)
            .context("ERRSNAP_REPO_PATH_MAP")?,
    ))
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(pages::groups::page))
        .route("/groups/{id}", get(pages::group::page))
        .route("/groups/{id}/status", post(pages::group::set_status))
        .route("/groups/{id}/merge", post(pages::triage::merge))
        .route("/groups/{id}/unmerge", post(pages::triage::unmerge))
        .route("/events", get(pages::events::list))
        .route("/events/{id}", get(pages::events::one))
        .route(
            "/events/{id}/attachments/{n}",
            get(pages::events::attachment),
        )
        .route("/search", get(pages::search::page))
        .route("/stats", get(pages::stats::page))
        .route("/runs", get(pages::runs::runs))
        .route("/runs/{id}", get(pages::runs::run))
        .route("/releases", get(pages::runs::releases))
        .route("/monitors", get(pages::monitors::page))
        .route("/live", get(live::stream))
        .route("/login", get(guard::login_form).post(guard::login))
        .route("/logout", post(guard::logout))
        .route("/static/app.css", get(pages::css))
        .route("/static/app.js", get(pages::js))
        .fallback(|| async { pages::error_page(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            guard::check,
        ))
        .with_state(app)
}

/// `errsnap serve`.
pub(crate) fn serve(cli: &Cli, a: &ServeArgs) -> Result<std::process::ExitCode> {
    if !a.listen.ip().is_loopback() && !a.allow_remote {
        bail!(
            "--listen {}: not a loopback address; other hosts could reach it. Add --allow-remote \
             to mean it (the token is still required; put TLS in front)",
            a.listen
        );
    }
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let token = match (&a.token, &a.token_file) {
        (_, Some(path)) => checked_token(&crate::secrets::read_token_file(path)?)?,
        (Some(t), None) => {
            if crate::secrets::given_in_args(&argv, "--token") {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("errsnap: warning: {}", crate::secrets::TOKEN_IN_ARGS);
                }
            }
            checked_token(t)?
        }
        (None, None) => random_hex()?,
    };
    // Open once now, so a wrong path or URL fails here, not on a page.
    let first = crate::open(cli)?;
    // While it serves, a writer of the store judges the monitors (runs
    // missed, too long, or whose process died) on its heartbeat: when the
    // store has monitors (so it is already of a schema that has them), and
    // not when read-only.
    let _monitors = if a.read_only || !crate::cmd::check::has_monitors(cli) {
        None
    } else {
        match crate::monitors_logger(cli) {
            Ok(l) => Some(l),
            Err(e) => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("errsnap: warning: monitors will not be judged: {e:#}");
                }
                None
            }
        }
    };
    let db_name = crate::db_name(cli, &first);
    let opener = {
        let db = cli.db.clone();
        let env_file = cli.env_file.clone();
        move || crate::open_at(&db, env_file.as_deref())
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_io()
        .enable_time()
        .build()
        .context("starting the server's runtime")?;
    let limits = conns::Limits::for_this_process();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("--listen {}", a.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let app = Arc::new(App {
            pool: Pool {
                open: Box::new(opener),
                idle: Mutex::new(vec![first]),
            },
            cookie: format!("errsnap_session_{}", addr.port()),
            sessions: guard::Sessions::default(),
            wrong_tokens: guard::WrongTokens::default(),
            behind_tls: a.behind_tls,
            csrf: random_hex()?,
            read_only: a.read_only,
            hosts: allowed_hosts(addr, &a.host_names),
            roots: roots(&a.source_roots)?,
            repo: repository(cli, a)?,
            db_name,
            token: token.clone(),
            streams: std::sync::atomic::AtomicUsize::new(0),
            max_streams: limits.max_streams,
        });
        {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            writeln!(out, "errsnap: serving {} on", app.db_name)?;
            writeln!(out, "  http://{addr}/?token={token}")?;
            if a.read_only {
                writeln!(out, "  (read-only)")?;
            }
            out.flush()?;
        }
        conns::serve(listener, router(app), limits, stopped()).await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn stopped() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: &str) -> Response {
    (status, body.to_owned()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_the_listener_loopback_names_and_the_given_names() {
        let h = allowed_hosts("127.0.0.1:8080".parse().unwrap(), &["Dash.Example".into()]);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "dash.example",
            "dash.example:8080",
        ] {
            assert!(h.iter().any(|x| x == ok), "{ok} in {h:?}");
        }
        assert!(!h.iter().any(|x| x == "evil.example:8080"));
        let remote = allowed_hosts("10.0.0.5:9000".parse().unwrap(), &[]);
        assert_eq!(remote, ["10.0.0.5:9000"]);
        // Port 80: browsers send the bare name.
        let web = allowed_hosts("127.0.0.1:80".parse().unwrap(), &[]);
        for ok in ["127.0.0.1", "localhost", "[::1]", "localhost:80"] {
            assert!(web.iter().any(|x| x == ok), "{ok} in {web:?}");
        }
        assert!(
            !h.iter().any(|x| x == "localhost"),
            "not on another port: {h:?}"
        );
        let v6 = allowed_hosts("[::1]:8080".parse().unwrap(), &[]);
        assert!(v6.iter().any(|x| x == "[::1]:8080"), "{v6:?}");
    }

    #[test]
    fn given_tokens_are_long_and_url_safe() {
        assert_eq!(
            checked_token(" abcdefgh-12345678 ").unwrap(),
            "abcdefgh-12345678"
        );
        assert!(checked_token("short").is_err());
        for bad in [
            "abcdefgh12345678&x",
            "abcdefgh12345678#",
            "abcdefgh 12345678",
            "abcdefgh%12345678",
        ] {
            let e = checked_token(bad).unwrap_err().to_string();
            assert!(e.contains("--token") && !e.contains(bad), "{e}");
        }
    }

    #[test]
    fn random_tokens_differ() {
        let a = random_hex().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_hex().unwrap());
    }
}
