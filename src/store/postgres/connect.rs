//! Where the PostgreSQL store is and how to reach it: the URL (or
//! `key=value` string) parsed, the password taken from it or from
//! `ERRSNAP_DATABASE_PASSWORD`, and `sslmode` given the meaning libpq users
//! know. tokio-postgres itself accepts only `disable`, `prefer` and
//! `require`; errsnap strips `verify-ca` / `verify-full` and `sslrootcert`
//! and checks the certificate with rustls.
//!
//! | sslmode | TLS | certificate |
//! | --- | --- | --- |
//! | `disable` | never | |
//! | `prefer` (default) | if the server offers it | not checked |
//! | `require` | always | not checked (encrypted only) |
//! | `verify-ca` | always | signed by a trusted CA |
//! | `verify-full` | always | signed by a trusted CA, for this host name |
//!
//! Trusted CAs: `sslrootcert` (or `ERRSNAP_TLS_CA_FILE`) when given, else
//! the Mozilla roots (webpki-roots). The password never appears in an error,
//! a log line or [`PgTarget::display`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode as ClientSslMode;

use crate::error::{Error, ErrorKind, Result};

/// The setting that names the database.
pub(crate) const URL_KEY: &str = "ERRSNAP_DATABASE_URL";

/// How TLS is used (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::config(
                    URL_KEY,
                    format!(
                        "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                    ),
                ))
            }
        })
    }
}

/// A PostgreSQL database to connect to.
#[derive(Clone)]
pub(crate) struct PgTarget {
    config: postgres::Config,
    pub(crate) ssl: SslMode,
    ca_file: Option<PathBuf>,
    display: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("at", &self.display)
            .field("ssl", &self.ssl)
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
    /// `ca_file` (from `ERRSNAP_TLS_CA_FILE`) when it has no `sslrootcert`.
    ///
    /// # Errors
    /// A value that is not a PostgreSQL URL, an unknown `sslmode`, or
    /// options the client refuses; the message never holds the password.
    pub(crate) fn parse(
        url: &str,
        password: Option<&str>,
        ca_file: Option<PathBuf>,
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
        let mut ssl = SslMode::Prefer;
        let mut rootcert = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => ssl = SslMode::parse(v)?,
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
        config.ssl_mode(match ssl {
            SslMode::Disable => ClientSslMode::Disable,
            SslMode::Prefer => ClientSslMode::Prefer,
            _ => ClientSslMode::Require,
        });
        config.application_name("errsnap");
        let display = display_of(&config);
        Ok(PgTarget {
            config,
            ssl,
            ca_file: rootcert.or(ca_file),
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
        let connected = match self.ssl {
            SslMode::Disable => self.config.connect(postgres::NoTls),
            mode => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.tls_config(mode)?);
                self.config.connect(tls)
            }
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
        Error::new(ErrorKind::Storage {
            context: format!("{doing} {}: {message}", self.display),
        })
    }

    fn tls_config(&self, mode: SslMode) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config(URL_KEY, format!("TLS: {e}")))?;
        let config = match mode {
            SslMode::Prefer | SslMode::Require | SslMode::Disable => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verify::Encrypted(provider)))
                .with_no_client_auth(),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = Arc::new(self.roots()?);
                let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots,
                    provider.clone(),
                )
                .build()
                .map_err(|e| Error::config(URL_KEY, format!("TLS: {e}")))?;
                if mode == SslMode::VerifyFull {
                    builder.with_webpki_verifier(webpki).with_no_client_auth()
                } else {
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(verify::AnyName(webpki)))
                        .with_no_client_auth()
                }
            }
        };
        Ok(config)
    }

    fn roots(&self) -> Result<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                use rustls_pki_types::pem::PemObject;
                let key = "sslrootcert";
                let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| Error::config(key, format!("{}: {e}", path.display())))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(Error::config(
                        key,
                        format!("{}: no certificate in it", path.display()),
                    ));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        Ok(roots)
    }
}

/// `%XX` escapes of a URL query value decoded (a path may hold them).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

/// The certificate checks of `require` / `prefer` (encrypted, any
/// certificate: libpq's meaning) and `verify-ca` (a trusted CA, any name).
mod verify {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    /// Any certificate; the handshake's signatures are still checked.
    #[derive(Debug)]
    pub(super) struct Encrypted(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for Encrypted {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// A certificate signed by a trusted CA, whatever name it is for.
    #[derive(Debug)]
    pub(super) struct AnyName(pub(super) Arc<rustls::client::WebPkiServerVerifier>);

    impl ServerCertVerifier for AnyName {
        fn verify_server_cert(
            &self,
            end: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self
                .0
                .verify_server_cert(end, intermediates, name, ocsp, now)
            {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName,
                ))
                | Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(m, c, d)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(m, c, d)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
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
        assert_eq!(t.ssl, SslMode::VerifyFull);
        assert_eq!(
            t.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(t.display(), "postgres://app@db.internal:6432/errs");
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        let t = PgTarget::parse("postgres://app@h/d", Some("fromenv"), None).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"fromenv"[..]));
        assert_eq!(t.ssl, SslMode::Prefer);
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
