//! Whom the PostgreSQL client trusts: libpq's `sslmode` and root
//! certificate rules, checked with rustls (tokio-postgres itself knows only
//! `disable`, `prefer` and `require`, and checks nothing).
//!
//! | sslmode | TLS | certificate |
//! | --- | --- | --- |
//! | `disable` | never | |
//! | `prefer` (default) | if the server offers it | not checked |
//! | `require` | always | signed by the root file's CAs when there is one, else not checked |
//! | `verify-ca` | always | signed by the root file's CAs |
//! | `verify-full` | always | signed by the root file's (or the system's) CAs, for this host name |
//!
//! The root file, in this order: `sslrootcert=` in the URL,
//! `ERRSNAP_TLS_CA_FILE`, `PGSSLROOTCERT`, then `~/.postgresql/root.crt`
//! when it exists. A file named by the first three must be readable (libpq
//! would quietly stop checking under `require`; a typo must not do that).
//! `sslrootcert=system` trusts the operating system's store and, as in
//! libpq, needs `verify-full` (it is the default then): public CAs vouch
//! for names, so only the name check makes them mean anything.
//!
//! The root file *replaces* the built-in roots here, where for SMTP and
//! webhooks `ERRSNAP_TLS_CA_FILE` adds to them: `verify-ca` and `require`
//! check no name, so trusting the public CAs too would let anyone holding
//! any public certificate in. Under `prefer` nothing is checked: a man in
//! the middle can decline TLS there anyway.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;

use crate::error::{Error, Result};

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
    pub(super) fn parse(s: &str) -> Result<SslMode> {
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

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the CAs that vouch for the server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// A PEM file a setting names (`key`): it must be readable.
    Named { key: &'static str, path: PathBuf },
    /// libpq's default file (`~/.postgresql/root.crt`): used if it exists.
    Default(PathBuf),
    /// `sslrootcert=system`: the operating system's store.
    System,
    /// None at all.
    Nothing,
}

/// What libpq reads from the environment: `PGSSLROOTCERT` and the home
/// directory holding `.postgresql/root.crt`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LibpqEnv {
    pub(crate) sslrootcert: Option<OsString>,
    pub(crate) default_root: Option<PathBuf>,
}

impl LibpqEnv {
    /// This process's.
    pub(crate) fn from_process() -> LibpqEnv {
        Self::from_vars(&|k| std::env::var_os(k))
    }

    /// From the variables `var` gives.
    fn from_vars(var: &dyn Fn(&str) -> Option<OsString>) -> LibpqEnv {
        #[cfg(windows)]
        let home = var("APPDATA").map(|h| PathBuf::from(h).join("postgresql"));
        #[cfg(not(windows))]
        let home = var("HOME").map(|h| PathBuf::from(h).join(".postgresql"));
        LibpqEnv {
            sslrootcert: var("PGSSLROOTCERT").filter(|v| !v.is_empty()),
            default_root: home.map(|d| d.join("root.crt")),
        }
    }
}

/// The server check a connection makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trust {
    pub(crate) mode: SslMode,
    pub(crate) roots: Roots,
}

/// What a handshake checks, once the roots are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// No TLS.
    Plain,
    /// TLS, any certificate (the handshake's signatures still checked).
    Encrypted,
    /// A certificate the roots sign, for any name.
    Chain,
    /// A certificate the roots sign, for this host.
    ChainAndName,
}

impl Trust {
    /// libpq's rules: `mode` from the URL (`None`: not given), its
    /// `sslrootcert`, errsnap's `ERRSNAP_TLS_CA_FILE`, then `env`.
    ///
    /// # Errors
    /// `sslrootcert=system` with a mode weaker than `verify-full`.
    pub(crate) fn resolve(
        mode: Option<SslMode>,
        url_rootcert: Option<PathBuf>,
        ca_file: Option<PathBuf>,
        env: &LibpqEnv,
    ) -> Result<Trust> {
        let is_system = |p: &PathBuf| p.as_os_str() == "system";
        let roots = if let Some(p) = url_rootcert {
            if is_system(&p) {
                Roots::System
            } else {
                Roots::Named {
                    key: "sslrootcert",
                    path: p,
                }
            }
        } else if let Some(p) = ca_file {
            Roots::Named {
                key: crate::settings::TLS_CA_FILE_KEY,
                path: p,
            }
        } else if let Some(p) = env.sslrootcert.clone().map(PathBuf::from) {
            if is_system(&p) {
                Roots::System
            } else {
                Roots::Named {
                    key: "PGSSLROOTCERT",
                    path: p,
                }
            }
        } else if let Some(p) = env.default_root.clone() {
            Roots::Default(p)
        } else {
            Roots::Nothing
        };
        let mode = match (mode, &roots) {
            (None, Roots::System) => SslMode::VerifyFull,
            (Some(m), Roots::System) if m != SslMode::VerifyFull => {
                return Err(Error::config(
                    URL_KEY,
                    format!(
                        "sslrootcert=system needs sslmode=verify-full, not {}: the system's \
                         CAs vouch for anyone's name, so only checking the name means anything",
                        m.name()
                    ),
                ));
            }
            (m, _) => m.unwrap_or(SslMode::Prefer),
        };
        Ok(Trust { mode, roots })
    }

    /// What a handshake checks, given whether the roots' file exists.
    pub(crate) fn check(&self, root_file_exists: bool) -> Check {
        let has_roots = match self.roots {
            Roots::Named { .. } | Roots::System => true,
            Roots::Default(_) => root_file_exists,
            Roots::Nothing => false,
        };
        match self.mode {
            SslMode::Disable => Check::Plain,
            SslMode::Prefer => Check::Encrypted,
            SslMode::Require if has_roots => Check::Chain,
            SslMode::Require => Check::Encrypted,
            SslMode::VerifyCa => Check::Chain,
            SslMode::VerifyFull => Check::ChainAndName,
        }
    }

    /// The rustls configuration a connection uses; `None` for no TLS.
    ///
    /// # Errors
    /// A named root file that cannot be read or holds no certificate; a
    /// `verify-*` mode with no roots at all; an empty system store.
    pub(crate) fn client_config(&self) -> Result<Option<rustls::ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let Some(verifier) = self.verifier(&provider)? else {
            return Ok(None);
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config(URL_KEY, format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Some(config))
    }

    /// What a handshake checks now (whether libpq's default root file is
    /// there is looked at each time).
    fn check_now(&self) -> Check {
        let default_exists = match &self.roots {
            Roots::Default(p) => p.exists(),
            _ => false,
        };
        self.check(default_exists)
    }

    /// The check of the server's certificate; `None` for no TLS.
    fn verifier(
        &self,
        provider: &Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Option<Arc<dyn ServerCertVerifier>>> {
        let check = self.check_now();
        Ok(Some(match check {
            Check::Plain => return Ok(None),
            Check::Encrypted => Arc::new(super::verify::Encrypted(provider.clone())),
            Check::Chain | Check::ChainAndName => {
                let roots = Arc::new(self.root_store()?);
                let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots,
                    provider.clone(),
                )
                .build()
                .map_err(|e| Error::config(URL_KEY, format!("TLS: {e}")))?;
                if check == Check::ChainAndName {
                    webpki
                } else {
                    Arc::new(super::verify::AnyName(webpki))
                }
            }
        }))
    }

    /// The roots of a checking handshake.
    fn root_store(&self) -> Result<rustls::RootCertStore> {
        let mut store = rustls::RootCertStore::empty();
        let (key, path) = match &self.roots {
            Roots::Named { key, path } => (*key, path),
            Roots::Default(path) if path.exists() => ("sslrootcert", path),
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(Error::config(
                        URL_KEY,
                        "sslrootcert=system: the operating system's certificate store is \
                         empty or unreadable",
                    ));
                }
                return Ok(store);
            }
            Roots::Default(path) => return Err(no_roots(self.mode, Some(path))),
            Roots::Nothing => return Err(no_roots(self.mode, None)),
        };
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::config(key, format!("{}: {e}", path.display())))?;
        let (added, _) = store.add_parsable_certificates(certs);
        if added == 0 {
            return Err(Error::config(
                key,
                format!("{}: no certificate in it", path.display()),
            ));
        }
        Ok(store)
    }
}

/// libpq's refusal of `verify-*` without a root file.
fn no_roots(mode: SslMode, default: Option<&PathBuf>) -> Error {
    let missing = match default {
        Some(p) => format!(", and {} does not exist", p.display()),
        None => String::new(),
    };
    Error::config(
        URL_KEY,
        format!(
            "sslmode={} needs root certificates to trust: no sslrootcert, {} or PGSSLROOTCERT is \
             set{missing}; name a PEM file, or use sslrootcert=system with verify-full",
            mode.name(),
            crate::settings::TLS_CA_FILE_KEY,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(sslrootcert: Option<&str>, home: Option<&str>) -> LibpqEnv {
        LibpqEnv {
            sslrootcert: sslrootcert.map(OsString::from),
            default_root: home.map(|h| PathBuf::from(h).join(".postgresql/root.crt")),
        }
    }

    fn named(key: &'static str, path: &str) -> Roots {
        Roots::Named {
            key,
            path: PathBuf::from(path),
        }
    }

    #[test]
    fn a_mode_is_named_as_libpq_names_it() {
        for (name, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(mode.name(), name);
            assert_eq!(SslMode::parse(name).unwrap(), mode);
        }
        assert_eq!(SslMode::parse("allow").unwrap(), SslMode::Prefer);
    }

    #[test]
    fn the_root_file_is_found_in_libpqs_order_after_the_url_and_errsnaps_setting() {
        let all = env(Some("/pg/env.pem"), Some("/home/u"));
        let t = Trust::resolve(
            None,
            Some("/url.pem".into()),
            Some("/errsnap.pem".into()),
            &all,
        )
        .unwrap();
        assert_eq!(t.roots, named("sslrootcert", "/url.pem"));
        let t = Trust::resolve(None, None, Some("/errsnap.pem".into()), &all).unwrap();
        assert_eq!(t.roots, named("ERRSNAP_TLS_CA_FILE", "/errsnap.pem"));
        let t = Trust::resolve(None, None, None, &all).unwrap();
        assert_eq!(t.roots, named("PGSSLROOTCERT", "/pg/env.pem"));
        let t = Trust::resolve(None, None, None, &env(None, Some("/home/u"))).unwrap();
        assert_eq!(
            t.roots,
            Roots::Default(PathBuf::from("/home/u/.postgresql/root.crt"))
        );
        let t = Trust::resolve(None, None, None, &env(None, None)).unwrap();
        assert_eq!(t.roots, Roots::Nothing);
        assert_eq!(t.mode, SslMode::Prefer);
    }

    #[test]
    fn require_with_a_root_file_checks_the_chain_as_libpq_does() {
        let file = Trust::resolve(
            Some(SslMode::Require),
            Some("/ca.pem".into()),
            None,
            &env(None, None),
        )
        .unwrap();
        assert_eq!(file.check(false), Check::Chain);
        let default =
            Trust::resolve(Some(SslMode::Require), None, None, &env(None, Some("/h"))).unwrap();
        assert_eq!(default.check(true), Check::Chain);
        assert_eq!(default.check(false), Check::Encrypted);
        let none = Trust::resolve(Some(SslMode::Require), None, None, &env(None, None)).unwrap();
        assert_eq!(none.check(false), Check::Encrypted);
        // The other modes keep their meaning whatever the roots.
        for (mode, want) in [
            (SslMode::Disable, Check::Plain),
            (SslMode::Prefer, Check::Encrypted),
            (SslMode::VerifyCa, Check::Chain),
            (SslMode::VerifyFull, Check::ChainAndName),
        ] {
            let t =
                Trust::resolve(Some(mode), Some("/ca.pem".into()), None, &env(None, None)).unwrap();
            assert_eq!(t.check(true), want, "{mode:?}");
            assert_eq!(t.check(false), want, "{mode:?}");
        }
    }

    #[test]
    fn system_roots_need_verify_full_and_make_it_the_default() {
        for (url, pg) in [(Some("system"), None), (None, Some("system"))] {
            let t = Trust::resolve(None, url.map(PathBuf::from), None, &env(pg, None)).unwrap();
            assert_eq!(t.roots, Roots::System);
            assert_eq!(t.mode, SslMode::VerifyFull);
            assert_eq!(t.check(false), Check::ChainAndName);
            for weak in [
                SslMode::Disable,
                SslMode::Prefer,
                SslMode::Require,
                SslMode::VerifyCa,
            ] {
                let e = Trust::resolve(Some(weak), url.map(PathBuf::from), None, &env(pg, None))
                    .unwrap_err()
                    .to_string();
                assert!(
                    e.contains("sslrootcert=system")
                        && e.contains(&format!("not {}:", weak.name())),
                    "{e}"
                );
            }
        }
        let full = Trust::resolve(
            Some(SslMode::VerifyFull),
            Some("system".into()),
            None,
            &env(None, None),
        )
        .unwrap();
        assert_eq!(full.mode, SslMode::VerifyFull);
        // ERRSNAP_TLS_CA_FILE is a file for every client, never `system`.
        let t = Trust::resolve(None, None, Some("system".into()), &env(None, None)).unwrap();
        assert_eq!(t.roots, named("ERRSNAP_TLS_CA_FILE", "system"));
    }

    #[test]
    fn a_named_root_file_that_cannot_be_read_is_an_error_naming_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let t = Trust::resolve(
            Some(SslMode::Require),
            None,
            None,
            &LibpqEnv {
                sslrootcert: Some(missing.clone().into_os_string()),
                default_root: None,
            },
        )
        .unwrap();
        let e = t.client_config().unwrap_err().to_string();
        assert!(e.contains("PGSSLROOTCERT") && e.contains("nope.pem"), "{e}");
        std::fs::write(&missing, "not a certificate\n").unwrap();
        let e = t.client_config().unwrap_err().to_string();
        assert!(e.contains("no certificate"), "{e}");
        // The default file is only used if it is there; verify-* without
        // any roots is refused as libpq refuses it.
        let t = Trust::resolve(
            Some(SslMode::Require),
            None,
            None,
            &LibpqEnv {
                sslrootcert: None,
                default_root: Some(dir.path().join("root.crt")),
            },
        )
        .unwrap();
        assert!(t.client_config().unwrap().is_some());
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let t = Trust::resolve(
                Some(mode),
                None,
                None,
                &LibpqEnv {
                    sslrootcert: None,
                    default_root: Some(dir.path().join("root.crt")),
                },
            )
            .unwrap();
            let e = t.client_config().unwrap_err().to_string();
            assert!(
                e.contains(&format!("sslmode={} needs", mode.name()))
                    && e.contains("root.crt")
                    && e.contains("system"),
                "{e}"
            );
        }
        let t = Trust::resolve(Some(SslMode::Disable), None, None, &LibpqEnv::default()).unwrap();
        assert!(t.client_config().unwrap().is_none());
    }

    #[test]
    fn libpqs_variables_name_the_root_file() {
        let vars = |pg: Option<&str>, home: Option<&str>| {
            LibpqEnv::from_vars(&move |k: &str| match k {
                "PGSSLROOTCERT" => pg.map(OsString::from),
                "HOME" | "APPDATA" => home.map(OsString::from),
                _ => None,
            })
        };
        let e = vars(Some("/ca.pem"), Some("/home/u"));
        assert_eq!(e.sslrootcert, Some(OsString::from("/ca.pem")));
        #[cfg(not(windows))]
        assert_eq!(
            e.default_root,
            Some(PathBuf::from("/home/u/.postgresql/root.crt"))
        );
        let e = vars(Some(""), None);
        assert_eq!(e.sslrootcert, None, "an empty PGSSLROOTCERT is none");
        assert_eq!(e.default_root, None);
        #[cfg(not(windows))]
        assert_eq!(
            LibpqEnv::from_process().default_root,
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
        );
    }

    /// A CA, and a certificate it signed for `localhost`.
    fn signed() -> (String, rustls_pki_types::CertificateDer<'static>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (ca_cert.pem(), leaf.der().clone())
    }

    #[test]
    fn each_check_accepts_what_libpq_accepts() {
        use rustls_pki_types::{ServerName, UnixTime};
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert) = signed();
        let (other_ca, _) = signed();
        std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
        std::fs::write(dir.path().join("other.pem"), other_ca).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verdict = |mode, file: &str, name: &str| {
            let t = Trust {
                mode,
                roots: named("sslrootcert", dir.path().join(file).to_str().unwrap()),
            };
            let v = t.verifier(&provider).unwrap().unwrap();
            assert!(!v.supported_verify_schemes().is_empty());
            v.verify_server_cert(
                &cert,
                &[],
                &ServerName::try_from(name.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .is_ok()
        };
        assert!(verdict(SslMode::VerifyFull, "ca.pem", "localhost"));
        assert!(
            !verdict(SslMode::VerifyFull, "ca.pem", "db.example"),
            "the name is checked"
        );
        assert!(
            verdict(SslMode::VerifyCa, "ca.pem", "db.example"),
            "any name"
        );
        assert!(verdict(SslMode::Require, "ca.pem", "db.example"));
        for mode in [SslMode::VerifyFull, SslMode::VerifyCa, SslMode::Require] {
            assert!(
                !verdict(mode, "other.pem", "localhost"),
                "{mode:?}: another CA"
            );
        }
        assert!(
            verdict(SslMode::Prefer, "other.pem", "db.example"),
            "prefer checks nothing"
        );
        let plain = Trust {
            mode: SslMode::Disable,
            roots: Roots::Nothing,
        };
        assert!(plain.verifier(&provider).unwrap().is_none());
    }

    #[test]
    fn libpqs_default_root_file_is_obeyed_when_it_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.crt");
        let t = Trust {
            mode: SslMode::Require,
            roots: Roots::Default(root.clone()),
        };
        assert_eq!(t.check_now(), Check::Encrypted);
        std::fs::write(&root, signed().0).unwrap();
        assert_eq!(t.check_now(), Check::Chain);
        assert!(t.client_config().unwrap().is_some());
        let ca = Trust {
            mode: SslMode::VerifyCa,
            roots: Roots::Default(root),
        };
        assert!(ca.client_config().unwrap().is_some());
    }

    #[test]
    fn the_system_store_is_used_when_it_has_certificates() {
        let t = Trust {
            mode: SslMode::VerifyFull,
            roots: Roots::System,
        };
        let found = !rustls_native_certs::load_native_certs().certs.is_empty();
        match t.client_config() {
            Ok(c) => assert!(found && c.is_some()),
            Err(e) => {
                assert!(!found, "{e}");
                assert!(e.to_string().contains("empty or unreadable"), "{e}");
            }
        }
    }
}
