//! Trust settings shared by every TLS client errsnap has (SMTP, webhooks).
//!
//! The built-in Mozilla roots (webpki-roots) are always trusted;
//! `ERRSNAP_TLS_CA_FILE` adds a PEM bundle to them, for internal relays and
//! receivers whose certificates a company CA signs. With the `native-roots`
//! feature the operating system's store is used as well.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::{Error, Result};
use crate::settings::{Config, TLS_CA_FILE_KEY};

/// Extra trusted roots: a validated PEM bundle, shared by the clients.
#[derive(Clone, Default)]
pub(crate) struct ExtraRoots {
    pem: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtraRoots")
            .field("bundle", &self.pem.as_ref().map(|p| p.len()))
            .finish()
    }
}

impl ExtraRoots {
    /// Reads `ERRSNAP_TLS_CA_FILE` if set.
    ///
    /// # Errors
    /// The file cannot be read, or holds no PEM certificate, or a damaged
    /// one (the error names the key and the path).
    pub(crate) fn from_config(config: &Config) -> Result<ExtraRoots> {
        match config.string(TLS_CA_FILE_KEY) {
            Some(path) => ExtraRoots::from_file(Path::new(&path)).map_err(|e| config.rename(e)),
            None => Ok(ExtraRoots::default()),
        }
    }

    /// Reads and checks a PEM bundle.
    pub(crate) fn from_file(path: &Path) -> Result<ExtraRoots> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::config(
                TLS_CA_FILE_KEY,
                format!("{:?}: cannot be read ({e})", path.display().to_string()),
            )
        })?;
        ExtraRoots::from_pem(&bytes).map_err(|why| {
            Error::config(
                TLS_CA_FILE_KEY,
                format!("{:?}: {why}", path.display().to_string()),
            )
        })
    }

    /// Checks a PEM bundle: one certificate or more, each well formed.
    pub(crate) fn from_pem(bytes: &[u8]) -> std::result::Result<ExtraRoots, String> {
        let mut n = 0;
        // The same check the clients make when they add a root.
        let mut store = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(bytes) {
            let cert = cert.map_err(|e| format!("not a valid PEM bundle ({e})"))?;
            store.add(cert).map_err(|e| {
                format!(
                    "certificate {} cannot be used as a trusted root ({e})",
                    n + 1
                )
            })?;
            n += 1;
        }
        if n == 0 {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
        }
        Ok(ExtraRoots {
            pem: Some(Arc::from(bytes)),
        })
    }

    /// The PEM bundle, if any.
    pub(crate) fn pem(&self) -> Option<&Arc<[u8]>> {
        self.pem.as_ref()
    }
}

/// Whether `err` (or anything in its source chain) is a failed check of the
/// server's certificate: a channel that cannot work until the settings
/// change, not a passing fault.
pub(crate) fn is_certificate_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if is_cert(e) {
            return true;
        }
        // `io::Error::source` skips the error it wraps: look inside.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if is_certificate_error(inner) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

fn is_cert(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        e.downcast_ref::<rustls::Error>(),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_checked() {
        assert!(ExtraRoots::from_pem(b"").is_err());
        assert!(ExtraRoots::from_pem(b"not pem at all").is_err());
        let bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = ExtraRoots::from_pem(bad).unwrap_err();
        assert!(err.contains("certificate 1 cannot be used"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = ExtraRoots::from_file(&dir.path().join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(TLS_CA_FILE_KEY) && err.contains("missing.pem"),
            "{err}"
        );
    }

    #[test]
    fn certificate_errors_are_found_inside_io_errors() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(is_certificate_error(&cert));
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, cert);
        assert!(is_certificate_error(&wrapped));
        let other = std::io::Error::other("connection reset");
        assert!(!is_certificate_error(&other));
        assert!(!is_certificate_error(&rustls::Error::DecryptError));
    }
}
