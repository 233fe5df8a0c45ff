//! A MariaDB server for one test: Debian's `mariadb-server`
//! (`mariadb-install-db` + `mariadbd --no-defaults`) in a temporary
//! directory on a free loopback port and its own socket, no service
//! manager (as root with `--user=root`). A user `errsnap` with
//! [`PASSWORD`] owns the database `errsnap`. Needs nothing but `tempfile`
//! and `libc`, so the library's own tests can include it (`#[path]`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The password of the `errsnap` user in every test server.
pub(crate) const PASSWORD: &str = "my-s3cret-Zr4";

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    // SAFETY: a plain query.
    unsafe { libc::geteuid() == 0 }
}

/// A MariaDB server of one test; killed when dropped.
pub(crate) struct Maria {
    pub(crate) port: u16,
    root: PathBuf,
    child: Option<Child>,
    tls: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Maria {
    /// Starts a server (with TLS from this certificate and key, PEM, when
    /// given), or `None` with a skip line when MariaDB is not installed
    /// (a failure with `ERRSNAPTEST_REQUIRE_MYSQL=1`).
    pub(crate) fn start(test: &str, tls: Option<(&str, &str)>) -> Option<Maria> {
        let installed = ["/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db"]
            .iter()
            .all(|p| std::path::Path::new(p).exists());
        if !installed {
            assert!(
                std::env::var("ERRSNAPTEST_REQUIRE_MYSQL").is_err(),
                "{test}: ERRSNAPTEST_REQUIRE_MYSQL is set but MariaDB is not installed (apt-get install mariadb-server)"
            );
            eprintln!("SKIPPED {test}: no MariaDB (mariadbd, mariadb-install-db)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        // Its own temporary directory: servers of parallel tests would
        // otherwise meet in /tmp.
        std::fs::create_dir(root.join("tmp")).unwrap();
        let mut cmd = Command::new("/usr/bin/mariadb-install-db");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", root.join("data").display()))
            .arg(format!("--tmpdir={}", root.join("tmp").display()))
            .args(["--auth-root-authentication-method=socket", "--skip-test-db"]);
        if is_root() {
            cmd.arg("--user=root");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            describe(&out)
        );
        let mut m = Maria {
            port: free_port(),
            root,
            child: None,
            tls: tls.map(|(c, k)| (c.to_owned(), k.to_owned())),
            _dir: dir,
        };
        if let Some((cert, key)) = tls {
            std::fs::write(m.root.join("server.crt"), cert).unwrap();
            std::fs::write(m.root.join("server.key"), key).unwrap();
        }
        m.launch();
        m.sql(&format!(
            "CREATE DATABASE errsnap; CREATE USER 'errsnap'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
             GRANT ALL ON errsnap.* TO 'errsnap'@'127.0.0.1';"
        ));
        Some(m)
    }

    fn socket(&self) -> PathBuf {
        self.root.join("sock")
    }

    fn launch(&mut self) {
        let mut cmd = Command::new("/usr/sbin/mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.root.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--pid-file={}", self.root.join("pid").display()))
            .arg(format!("--tmpdir={}", self.root.join("tmp").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--innodb-flush-log-at-trx-commit=2",
                "--innodb-buffer-pool-size=64M",
                "--max-connections=200",
            ])
            .arg(format!(
                "--log-error={}",
                self.root.join("error.log").display()
            ));
        if is_root() {
            cmd.arg("--user=root");
        }
        if self.tls.is_some() {
            cmd.arg(format!(
                "--ssl-cert={}",
                self.root.join("server.crt").display()
            ))
            .arg(format!(
                "--ssl-key={}",
                self.root.join("server.key").display()
            ));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        while !self.socket().exists()
            || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "mariadbd did not start: {}",
                std::fs::read_to_string(self.root.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server at once (like a crash).
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Starts it again after [`Maria::kill`].
    pub(crate) fn restart(&mut self) {
        self.launch();
    }

    /// A URL for the `errsnap` user with the right password.
    pub(crate) fn url(&self, query: &str) -> String {
        format!(
            "mysql://errsnap:{PASSWORD}@127.0.0.1:{}/errsnap{query}",
            self.port
        )
    }

    /// Runs SQL as root over the socket; its output (tab-separated).
    pub(crate) fn sql(&self, sql: &str) -> String {
        let out = Command::new("/usr/bin/mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args([
                "--default-character-set=utf8mb4",
                "-u",
                "root",
                "-N",
                "-B",
                "-e",
                sql,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "mariadb {sql}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Maria {
    fn drop(&mut self) {
        self.kill();
    }
}
