//! A PostgreSQL server for one test or benchmark: Debian's `postgresql`
//! (`initdb` + `pg_ctl`) in a temporary directory on a free loopback port,
//! as the `postgres` user when root. Shared by `tests/pg.rs` and the
//! benchmark report (`#[path]`), so it needs nothing but `tempfile` and
//! `libc`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// How a child process ended and what it said (for assertion messages).
fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The password of the `postgres` user in every test server.
pub(crate) const PASSWORD: &str = "pg-s3cret-Xq7";

/// A PostgreSQL server of one test; stopped (immediately) when dropped.
pub(crate) struct Pg {
    bin: PathBuf,
    data: PathBuf,
    pub(crate) port: u16,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

/// How a test server is set up.
#[derive(Default)]
pub(crate) struct PgOptions<'a> {
    /// Serve TLS with this certificate and key (PEM).
    pub(crate) tls: Option<(&'a str, &'a str)>,
    /// Refuse connections that are not encrypted (`hostssl` only).
    pub(crate) tls_only: bool,
}

fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    // SAFETY: a plain query.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Pg {
    /// Starts a server, or `None` with a skip line when the binaries are
    /// missing (a failure with `ERRSNAPTEST_REQUIRE_PG=1`).
    pub(crate) fn start(test: &str, opts: PgOptions<'_>) -> Option<Pg> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var("ERRSNAPTEST_REQUIRE_PG").is_err(),
                "{test}: ERRSNAPTEST_REQUIRE_PG is set but no PostgreSQL is installed (apt-get install postgresql)"
            );
            eprintln!("SKIPPED {test}: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let as_postgres = is_root();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = root.join("data");
        std::fs::write(root.join("pw"), PASSWORD).unwrap();
        std::fs::create_dir(root.join("sock")).unwrap();
        if let Some((cert, key)) = opts.tls {
            std::fs::write(root.join("server.crt"), cert).unwrap();
            std::fs::write(root.join("server.key"), key).unwrap();
            std::fs::set_permissions(
                root.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&root)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown to postgres");
        }
        let pg = Pg {
            bin,
            data: data.clone(),
            port: free_port(),
            as_postgres,
            _dir: dir,
        };
        let out = pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--pwfile",
                root.join("pw").to_str().unwrap(),
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb: {}", describe(&out));
        if opts.tls_only {
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            )
            .unwrap();
        }
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\nmax_connections = 200\n",
            pg.port,
            root.join("sock").display()
        );
        if opts.tls.is_some() {
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                root.join("server.crt").display(),
                root.join("server.key").display()
            ));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(&mut f, conf.as_bytes()).unwrap();
        pg.pg_ctl_start();
        Some(pg)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args).output().unwrap()
    }

    fn pg_ctl_start(&self) {
        let log = self.data.parent().unwrap().join("log");
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            describe(&out),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server at once (`-m immediate`: like a crash).
    pub(crate) fn stop_immediate(&self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts it again after [`Pg::stop_immediate`].
    pub(crate) fn restart(&self) {
        self.pg_ctl_start();
    }

    /// A URL for the `postgres` user with the right password.
    pub(crate) fn url(&self, query: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres{query}",
            self.port
        )
    }

    /// Runs SQL with `psql` over the server's socket; its output.
    pub(crate) fn psql(&self, sql: &str) -> String {
        self.psql_on("postgres", sql)
    }

    /// Runs SQL in database `db`.
    pub(crate) fn psql_on(&self, db: &str, sql: &str) -> String {
        let sock = self.data.parent().unwrap().join("sock");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join("psql"));
            c
        } else {
            Command::new(self.bin.join("psql"))
        };
        let out = cmd
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&sock)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop_immediate();
    }
}
