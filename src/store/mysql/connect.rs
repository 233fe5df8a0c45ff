//! Where a MySQL or MariaDB store is and how to reach it: the URL
//! (`mysql://` or `mariadb://user:password@host:port/database`) parsed by
//! errsnap, the password taken from it or from `ERRSNAP_DATABASE_PASSWORD`,
//! and `ssl-mode` given the meaning MySQL's own clients give it. The
//! password never appears in an error, a log line or
//! [`MyTarget::display`].
//!
//! What the `mysql` client does by itself, and what is done about it:
//! - it always trusts the public web roots beside a CA file, so
//!   `VERIFY_CA` (the CA file alone, any name) cannot be honoured: the
//!   mode is refused with a message saying to use `VERIFY_IDENTITY`, which
//!   checks the name (a public certificate must then be the server's own);
//! - it has no `PREFERRED`: errsnap connects with TLS and, only when the
//!   server says it has none, again without;
//! - it moves a loopback TCP connection to the server's Unix socket (and
//!   then skips TLS while the session still looks secure): switched off;
//! - it parses `mysql://` only: errsnap reads the URL itself.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// The setting a database URL comes from (errors name it).
pub(crate) const URL_KEY: &str = "ERRSNAP_DATABASE_URL";

/// `ssl-mode`, as MySQL's clients name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// No TLS.
    Disabled,
    /// TLS when the server has it, else none (the default, as MySQL's).
    Preferred,
    /// TLS, the certificate not checked.
    Required,
    /// TLS, the certificate checked against the CA file (or the public
    /// roots) and the host name.
    VerifyIdentity,
}

impl SslMode {
    /// The mode as MySQL's clients spell it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }

    fn parse(v: &str) -> Result<SslMode> {
        match v.to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLED" => Ok(SslMode::Disabled),
            "PREFERRED" => Ok(SslMode::Preferred),
            "REQUIRED" => Ok(SslMode::Required),
            "VERIFY_IDENTITY" => Ok(SslMode::VerifyIdentity),
            "VERIFY_CA" => Err(Error::config(
                URL_KEY,
                "ssl-mode=VERIFY_CA cannot be honoured: the MySQL client trusts the public \
                 web roots beside the CA file, so any public certificate would pass; use \
                 ssl-mode=VERIFY_IDENTITY (the CA file and the server's name)",
            )),
            other => Err(Error::config(
                URL_KEY,
                format!(
                    "ssl-mode={other:?} is not one of DISABLED, PREFERRED, REQUIRED, \
                     VERIFY_IDENTITY"
                ),
            )),
        }
    }
}

/// A MySQL or MariaDB database to connect to.
#[derive(Clone)]
pub(crate) struct MyTarget {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    database: String,
    pub(crate) ssl: SslMode,
    ca_file: Option<PathBuf>,
    display: String,
}

impl std::fmt::Debug for MyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MyTarget")
            .field("at", &self.display)
            .field("ssl", &self.ssl)
            .finish_non_exhaustive()
    }
}

/// `%XX` escapes decoded (a password may hold them).
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl MyTarget {
    /// Parses a `mysql://` or `mariadb://` URL: `user[:password]@host[:port]
    /// /database[?ssl-mode=...]`. `password` (from
    /// `ERRSNAP_DATABASE_PASSWORD`) is used when the URL has none; `ca_file`
    /// (from `ERRSNAP_TLS_CA_FILE`, or `ssl-ca=` in the URL) is trusted
    /// besides the public roots.
    ///
    /// # Errors
    /// Not such a URL, no database named, a port that is no number, an
    /// unknown option or `ssl-mode`; the message never holds the password.
    pub(crate) fn parse(
        url: &str,
        password: Option<&str>,
        ca_file: Option<PathBuf>,
    ) -> Result<MyTarget> {
        let rest = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
            .ok_or_else(|| {
                Error::config(
                    URL_KEY,
                    "not a MySQL or MariaDB URL (mysql://user@host:3306/database)",
                )
            })?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let database = decode(database);
        if database.is_empty() || database.contains('/') {
            return Err(Error::config(
                URL_KEY,
                "the URL names no database (mysql://user@host:3306/database)",
            ));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, url_password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((u, p)) => (Some(decode(u)), Some(decode(p))),
                None => (Some(decode(u)), None),
            },
            None => (None, None),
        };
        // `host`, `host:port`, `[v6]` or `[v6]:port`.
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => {
                let (h, rest) = v6.split_once(']').ok_or_else(|| {
                    Error::config(URL_KEY, "an IPv6 address without its closing ]")
                })?;
                (h, rest.strip_prefix(':'))
            }
            None => match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            },
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| Error::config(URL_KEY, format!("the port {p:?} is not a number")))?,
            None => 3306,
        };
        if host.is_empty() {
            return Err(Error::config(URL_KEY, "the URL names no host"));
        }
        let mut ssl = SslMode::Preferred;
        let mut ca = ca_file.filter(|p| !p.as_os_str().is_empty());
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k.replace('_', "-").as_str() {
                "ssl-mode" | "sslmode" => ssl = SslMode::parse(&decode(v))?,
                "ssl-ca" => ca = Some(PathBuf::from(decode(v))),
                other => {
                    return Err(Error::config(
                        URL_KEY,
                        format!("unknown option {other:?} in the URL (ssl-mode, ssl-ca)"),
                    ))
                }
            }
        }
        let password =
            url_password.or_else(|| password.filter(|p| !p.is_empty()).map(str::to_owned));
        let display = format!(
            "mysql://{}{host}:{port}/{database}",
            user.as_deref().map(|u| format!("{u}@")).unwrap_or_default()
        );
        Ok(MyTarget {
            host: host.to_owned(),
            port,
            user,
            password,
            database,
            ssl,
            ca_file: ca,
            display,
        })
    }

    /// The database as messages name it: no password.
    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    /// The client's options for one connection, with or without TLS.
    fn opts(&self, tls: bool) -> mysql::Opts {
        let mut b = mysql::OptsBuilder::new()
            .ip_or_hostname(Some(self.host.clone()))
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(Some(self.database.clone()))
            // A loopback TCP address stays TCP (the client would move to
            // the server's socket, and drop TLS with it).
            .prefer_socket(false)
            .tcp_connect_timeout(Some(Duration::from_secs(5)))
            .read_timeout(Some(Duration::from_secs(60)))
            .write_timeout(Some(Duration::from_secs(60)))
            .stmt_cache_size(256)
            .init(vec![
                "SET NAMES utf8mb4",
                "SET SESSION sql_mode = 'ANSI_QUOTES,PIPES_AS_CONCAT,STRICT_ALL_TABLES,\
                 NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'",
                "SET SESSION time_zone = '+00:00'",
                // REPEATABLE READ's gap locks deadlock concurrent upserts.
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            ]);
        if tls {
            let mut ssl = mysql::SslOpts::default();
            if let Some(ca) = &self.ca_file {
                ssl = ssl.with_root_cert_path(Some(ca.clone()));
            }
            if self.ssl != SslMode::VerifyIdentity {
                ssl = ssl
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true);
            }
            b = b.ssl_opts(Some(ssl));
        }
        b.into()
    }

    /// Connects and sets up the session (utf8mb4, UTC, READ COMMITTED,
    /// ANSI quotes and `||`).
    ///
    /// # Errors
    /// The server cannot be reached, refuses the login or the TLS the mode
    /// asks for; the message names the database, never the password.
    pub(crate) fn connect(&self) -> Result<mysql::Conn> {
        let doing = "connecting to";
        match self.ssl {
            SslMode::Disabled => mysql::Conn::new(self.opts(false)),
            SslMode::Required | SslMode::VerifyIdentity => {
                match mysql::Conn::new(self.opts(true)) {
                    Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)) => {
                        return Err(Error::new(ErrorKind::Storage {
                            context: format!(
                                "{doing} {}: the server has no TLS, which ssl-mode={} asks for",
                                self.display,
                                self.ssl.name()
                            ),
                        }));
                    }
                    other => other,
                }
            }
            SslMode::Preferred => match mysql::Conn::new(self.opts(true)) {
                Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)) => {
                    mysql::Conn::new(self.opts(false))
                }
                other => other,
            },
        }
        .map_err(|e| self.error(doing, e))
    }

    /// An error of the client, named for what was being done and the
    /// database; deadlocks and lock wait timeouts (1213, 1205) are
    /// [`Fault::Busy`](crate::error::Fault::Busy): the transaction was
    /// rolled back and is worth another try.
    pub(crate) fn error(&self, doing: &str, e: mysql::Error) -> Error {
        let busy = matches!(&e, mysql::Error::MySqlError(m) if m.code == 1213 || m.code == 1205);
        let mut message = match &e {
            mysql::Error::MySqlError(m) => format!("{} ({})", m.message, m.code),
            other => other.to_string(),
        };
        if let Some(p) = self.password.as_deref().filter(|p| p.len() >= 3) {
            message = message.replace(p, "<redacted>");
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_read_with_its_password_port_and_mode() {
        let t = MyTarget::parse(
            "mariadb://app:p%40ss@db.internal:3307/errsnap?ssl-mode=verify_identity",
            None,
            None,
        )
        .unwrap();
        assert_eq!(t.host, "db.internal");
        assert_eq!(t.port, 3307);
        assert_eq!(t.user.as_deref(), Some("app"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!(t.database, "errsnap");
        assert_eq!(t.ssl, SslMode::VerifyIdentity);
        assert_eq!(t.display(), "mysql://app@db.internal:3307/errsnap");
        let shown = format!("{t:?}");
        assert!(
            shown.contains("mysql://app@db.internal:3307/errsnap"),
            "{shown}"
        );
        assert!(!shown.contains("p@ss"), "{shown}");
        // An IPv6 address in brackets, with and without a port.
        let t = MyTarget::parse("mysql://app@[::1]:3307/errsnap", None, None).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 3307));
        let t = MyTarget::parse("mysql://app@[::1]/errsnap", None, None).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 3306));
        let t = MyTarget::parse("mysql://app@127.0.0.1/errsnap", Some("from-env"), None).unwrap();
        assert_eq!((t.port, t.password.as_deref()), (3306, Some("from-env")));
        assert_eq!(t.ssl, SslMode::Preferred, "MySQL's own default");
    }

    #[test]
    fn a_bad_url_is_an_error_naming_what_is_wrong_never_the_password() {
        for (url, says) in [
            ("postgres://a@b/c", "not a MySQL"),
            ("mysql://app:hunter2@host", "no database"),
            ("mysql://app:hunter2@host:33x/db", "is not a number"),
            (
                "mysql://app:hunter2@host/db?ssl-mode=VERIFY_CA",
                "VERIFY_IDENTITY",
            ),
            (
                "mysql://app:hunter2@host/db?ssl-mode=sometimes",
                "not one of",
            ),
            ("mysql://app:hunter2@host/db?pool=3", "unknown option"),
        ] {
            let e = MyTarget::parse(url, None, None).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(e.contains(URL_KEY), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn a_servers_message_never_carries_the_password() {
        let t = MyTarget::parse("mysql://app:hunter2@h/db?ssl-mode=REQUIRED", None, None).unwrap();
        let e = t
            .error(
                "connecting to",
                mysql::Error::MySqlError(mysql::MySqlError {
                    state: "28000".into(),
                    code: 1045,
                    message: "Access denied for user 'app' (using password: hunter2)".into(),
                }),
            )
            .to_string();
        assert!(e.contains("Access denied") && e.contains("(1045)"), "{e}");
        assert!(!e.contains("hunter2") && e.contains("<redacted>"), "{e}");
        // A password too short to tell from other words is left to stand
        // (it would blank the message's letters).
        let t = MyTarget::parse("mysql://app:ab@h/db", None, None).unwrap();
        let e = t
            .error(
                "reading",
                mysql::Error::MySqlError(mysql::MySqlError {
                    state: "HY000".into(),
                    code: 1,
                    message: "table absent".into(),
                }),
            )
            .to_string();
        assert!(e.contains("table absent"), "{e}");
        assert_eq!(SslMode::Required.name(), "REQUIRED");
        assert_eq!(SslMode::VerifyIdentity.name(), "VERIFY_IDENTITY");
        assert_eq!(SslMode::Disabled.name(), "DISABLED");
        assert_eq!(SslMode::Preferred.name(), "PREFERRED");
    }
}
