//! Where the PostgreSQL store is and how to reach it: the URL (or
//! `key=value` string) parsed, the password taken from it or from
//! `ERRSNAP_DATABASE_PASSWORD`. `sslmode` and `sslrootcert` are taken out
//! of it and given libpq's meaning in [`super::tls`] (tokio-postgres itself
//! knows only `disable`, `prefer` and `require`). The password never
//! appears in an error, a log line or [`PgTarget::display`].

use std::path::PathBuf;
use std::time::Duration;

use postgres::config::SslMode as ClientSslMode;

use crate::error::{Error, ErrorKind, Result};

pub(crate) use super::tls::URL_KEY;
use super::tls::{LibpqEnv, SslMode, Trust};

/// A PostgreSQL database to connect to.
#[derive(Clone)]
pub(crate) struct PgTarget {
    config: postgres::Config,
    pub(crate) trust: Trust,
    display: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("at", &self.display)
            .field("ssl", &self.trust.mode)
            .finish_non_exhaustive()
    }
}

/// Whether a `--db` / `ERRSNAP_DATABASE_URL` value names PostgreSQL.
pub(crate) fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

impl PgTarget {
    /// Parses a `postgres://` URL. `password` (from
    /// `ERRSNAP_DATABASE_PASSWORD`) is used when the URL has none;
    /// `ca_file` (from `ERRSNAP_TLS_CA_FILE`) when it has no `sslrootcert`,
    /// then libpq's `PGSSLROOTCERT` and `~/.postgresql/root.crt`.
    ///
    /// # Errors
    /// A value that is not a PostgreSQL URL, an unknown `sslmode`,
    /// `sslrootcert=system` without `verify-full`, or options the client
    /// refuses; the message never holds the password.
    pub(crate) fn parse(
        url: &str,
        password: Option<&str>,
        ca_file: Option<PathBuf>,
    ) -> Result<PgTarget> {
        Self::parse_with(url, password, ca_file, &LibpqEnv::from_process())
    }

    /// [`PgTarget::parse`] with libpq's environment given.
    pub(crate) fn parse_with(
        url: &str,
        password: Option<&str>,
        ca_file: Option<PathBuf>,
        env: &LibpqEnv,
    ) -> Result<PgTarget> {
        if !is_postgres_url(url) {
            return Err(Error::config(
                URL_KEY,
                "not a PostgreSQL URL (postgres://user@host:port/database)",
            ));
        }
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, q),
            None => (url, ""),
        };
        let mut ssl = None;
        let mut rootcert = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => ssl = Some(SslMode::parse(v)?),
                "sslrootcert" => rootcert = Some(PathBuf::from(percent_decode(v))),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: postgres::Config = rest.parse().map_err(|e: postgres::Error| {
            // The client's message names the option, never its value.
            Error::config(URL_KEY, format!("not a usable PostgreSQL URL: {e}"))
        })?;
        if config.get_password().is_none() {
            if let Some(p) = password.filter(|p| !p.is_empty()) {
                config.password(p);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let trust = Trust::resolve(
            ssl,
            rootcert,
            ca_file.filter(|p| !p.as_os_str().is_empty()),
            env,
        )?;
        config.ssl_mode(match trust.mode {
            SslMode::Disable => ClientSslMode::Disable,
            SslMode::Prefer => ClientSslMode::Prefer,
            _ => ClientSslMode::Require,
        });
        config.application_name("errsnap");
        let display = display_of(&config);
        Ok(PgTarget {
            config,
            trust,
            display,
        })
    }

    /// `postgres://user@host:port/database`, without the password: what
    /// messages say.
    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    /// Connects (within the connect timeout, 5 s unless the URL says).
    ///
    /// # Errors
    /// The server cannot be reached, refuses the login or the TLS the mode
    /// asks for; the message names the server and the reason, never the
    /// password.
    pub(crate) fn connect(&self) -> Result<postgres::Client> {
        let connected = match self.trust.client_config()? {
            None => self.config.connect(postgres::NoTls),
            Some(tls) => self
                .config
                .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls)),
        };
        connected.map_err(|e| self.error("connecting to", e))
    }

    /// A client error about this database, as errsnap says it.
    pub(crate) fn error(&self, doing: &str, e: postgres::Error) -> Error {
        let message = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.severity(), db.message()),
            None => {
                // The client's own words, then their causes ("error
                // performing TLS handshake: invalid peer certificate: ...").
                let mut m = e.to_string();
                let mut cur = std::error::Error::source(&e);
                while let Some(c) = cur {
                    let t = c.to_string();
                    if !m.contains(&t) {
                        m.push_str(": ");
                        m.push_str(&t);
                    }
                    cur = c.source();
                }
                m
            }
        };
        // A serialization failure, a deadlock or a lock wait that timed
        // out rolled back only the transaction: worth another try soon, on
        // the same connection.
        use postgres::error::SqlState;
        let busy = e.code().is_some_and(|c| {
            [
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::LOCK_NOT_AVAILABLE,
            ]
            .contains(c)
        });
        let e = Error::new(ErrorKind::Storage {
            context: format!("{doing} {}: {message}", self.display),
        });
        if busy {
            e.with_fault(crate::error::Fault::Busy)
        } else {
            e
        }
    }
}

/// `%XX` escapes of a URL query value decoded (a path may hold them).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// What messages name a database by: never the password.
fn display_of(c: &postgres::Config) -> String {
    use postgres::config::Host;
    let user = c.get_user().unwrap_or("");
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match c.get_ports().get(i).or(c.get_ports().first()) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .collect();
    let at = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!(
        "postgres://{at}{}/{}",
        hosts.join(","),
        c.get_dbname().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_are_stripped_and_the_password_never_shown() {
        let t = PgTarget::parse(
            "postgres://app:s3cret@db.internal:6432/errs?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
            None,
            None,
        )
        .unwrap();
        assert_eq!(t.trust.mode, SslMode::VerifyFull);
        assert_eq!(
            t.trust.roots,
            super::super::tls::Roots::Named {
                key: "sslrootcert",
                path: PathBuf::from("/etc/ca.pem")
            }
        );
        assert_eq!(t.display(), "postgres://app@db.internal:6432/errs");
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        let t = PgTarget::parse("postgres://app@h/d", Some("fromenv"), None).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"fromenv"[..]));
        assert_eq!(t.trust.mode, SslMode::Prefer);
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&Duration::from_secs(5))
        );
        let t = PgTarget::parse("postgres://app:url@h/d", Some("env"), None).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"url"[..]), "the URL's wins");
    }

    #[test]
    fn bad_values_name_the_key_never_the_secret() {
        let e = PgTarget::parse("postgres://u:s3cret@h/d?sslmode=sometimes", None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ERRSNAP_DATABASE_URL") && e.contains("sometimes"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
        let e = PgTarget::parse("postgres://u:s3cret@h/d?nonsense=1", None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ERRSNAP_DATABASE_URL") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(PgTarget::parse("mysql://h/d", None, None).is_err());
        assert!(is_postgres_url("postgresql://h/d") && !is_postgres_url("LOGS.db"));
    }

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("%2Ftmp%20x"), "/tmp x");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
