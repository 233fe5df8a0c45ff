//! The SMTP e-mail channel.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use super::format::{email_html, email_subject, email_text};
use super::{Alert, Channel, ChannelError};
use crate::error::{Error, Result};

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// No encryption. Only for a local relay or tests: refused with
    /// credentials unless the host is a loopback address.
    None,
}

impl SmtpTls {
    /// The default for a port: 465 implicit, otherwise STARTTLS.
    pub fn for_port(port: u16) -> SmtpTls {
        if port == 465 {
            SmtpTls::Implicit
        } else {
            SmtpTls::StartTls
        }
    }
}

impl FromStr for SmtpTls {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "implicit" | "tls" | "ssl" => Ok(SmtpTls::Implicit),
            "starttls" => Ok(SmtpTls::StartTls),
            "none" | "plain" => Ok(SmtpTls::None),
            _ => Err("expected implicit, starttls or none".into()),
        }
    }
}

/// Sends alerts by e-mail over SMTP (rustls).
///
/// `Debug` never shows the password.
///
/// ```
/// use errsnap::channels::{EmailChannel, SmtpTls};
/// let mailer = EmailChannel::builder("smtp.example.com", 587)
///     .tls(SmtpTls::StartTls)
///     .credentials("alerts@example.com", "app-password")
///     .from("Alerts <alerts@example.com>")
///     .to("oncall@example.com, dev@example.com")
///     .build()
///     .unwrap();
/// assert!(!format!("{mailer:?}").contains("app-password"));
/// ```
pub struct EmailChannel {
    transport: SmtpTransport,
    timeout: Duration,
    host: String,
    port: u16,
    tls: SmtpTls,
    from: Mailbox,
    to: Vec<Mailbox>,
    authenticated: bool,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )
            .field(
                "password",
                &if self.authenticated {
                    "<redacted>"
                } else {
                    "<none>"
                },
            )
            .finish()
    }
}

/// Settings for an [`EmailChannel`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct EmailChannelBuilder {
    host: String,
    port: u16,
    tls: Option<SmtpTls>,
    credentials: Option<(String, String)>,
    from: Option<String>,
    to: Option<String>,
    timeout: Duration,
    roots: crate::channels::tls::ExtraRoots,
}

impl fmt::Debug for EmailChannelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannelBuilder")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// Starts the settings for a server.
    pub fn builder(host: impl Into<String>, port: u16) -> EmailChannelBuilder {
        EmailChannelBuilder {
            host: host.into(),
            port,
            tls: None,
            credentials: None,
            from: None,
            to: None,
            timeout: Duration::from_secs(10),
            roots: crate::channels::tls::ExtraRoots::default(),
        }
    }
}

impl EmailChannelBuilder {
    /// TLS mode (default: from the port, see [`SmtpTls::for_port`]).
    pub fn tls(mut self, tls: SmtpTls) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Log in with these credentials.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((username.into(), password.into()));
        self
    }
    /// The sender (`Name <addr>` or `addr`).
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }
    /// The recipients, comma-separated.
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }
    /// Timeout of each SMTP command (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Also trusts the certificates of a PEM bundle (a company CA), besides
    /// the built-in roots. `ERRSNAP_TLS_CA_FILE` does this from settings.
    ///
    /// # Errors
    /// The bundle holds no certificate, or one that cannot be a root.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self> {
        self.roots = crate::channels::tls::ExtraRoots::from_pem(pem)
            .map_err(|why| Error::config(crate::settings::TLS_CA_FILE_KEY, why))?;
        Ok(self)
    }
    pub(crate) fn with_roots(mut self, roots: crate::channels::tls::ExtraRoots) -> Self {
        self.roots = roots;
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// A bad host, port 0, an address that does not parse (named, with the
    /// key it would come from), no recipients, or `SmtpTls::None` with
    /// credentials to a host that is not a loopback address.
    // Long by design: every setting of the builder is checked here, in the
    // order the errors name them; one check per block.
    pub fn build(self) -> Result<EmailChannel> {
        let host = self.host.trim().to_owned();
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(Error::config(
                "ERRSNAP_SMTP_HOST",
                format!("{host:?}: expected a host name"),
            ));
        }
        if self.port == 0 {
            return Err(Error::config(
                "ERRSNAP_SMTP_PORT",
                "\"0\": expected a port from 1 to 65535",
            ));
        }
        let tls = self.tls.unwrap_or_else(|| SmtpTls::for_port(self.port));
        let loopback = super::is_loopback(&host);
        if tls == SmtpTls::None && self.credentials.is_some() && !loopback {
            return Err(Error::config(
                "ERRSNAP_SMTP_TLS",
                "\"none\" would send the password in clear text: use implicit or starttls",
            ));
        }
        let from_text = self
            .from
            .or_else(|| self.credentials.as_ref().map(|(u, _)| u.clone()))
            .ok_or_else(|| {
                Error::config("ERRSNAP_EMAIL_FROM", "missing: a sender address is needed")
            })?;
        let from = Mailbox::from_str(from_text.trim()).map_err(|e| {
            Error::config(
                "ERRSNAP_EMAIL_FROM",
                format!("{from_text:?}: not an e-mail address ({e})"),
            )
        })?;
        let to_text = self.to.ok_or_else(|| {
            Error::config(
                "ERRSNAP_EMAIL_TO",
                "missing: at least one recipient is needed",
            )
        })?;
        let mut to = Vec::new();
        for part in to_text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            to.push(Mailbox::from_str(part).map_err(|e| {
                Error::config(
                    "ERRSNAP_EMAIL_TO",
                    format!("{part:?}: not an e-mail address ({e})"),
                )
            })?);
        }
        if to.is_empty() {
            return Err(Error::config(
                "ERRSNAP_EMAIL_TO",
                "empty: at least one recipient is needed",
            ));
        }
        let tls_params = || {
            let mut b = TlsParameters::builder(host.clone());
            if let Some(pem) = self.roots.pem() {
                let certs = lettre::transport::smtp::client::Certificate::from_pem(pem)
                    .map_err(|e| Error::config(crate::settings::TLS_CA_FILE_KEY, format!("{e}")))?;
                b = b.add_root_certificate(certs);
            }
            b.build_rustls().map_err(|e| {
                Error::config(
                    "ERRSNAP_SMTP_HOST",
                    format!("{host:?}: cannot set up TLS ({e})"),
                )
            })
        };
        let mut builder = SmtpTransport::builder_dangerous(host.clone())
            .port(self.port)
            .timeout(Some(self.timeout));
        builder = match tls {
            SmtpTls::Implicit => builder.tls(Tls::Wrapper(tls_params()?)),
            SmtpTls::StartTls => builder.tls(Tls::Required(tls_params()?)),
            SmtpTls::None => builder.tls(Tls::None),
        };
        let authenticated = self.credentials.is_some();
        if let Some((user, pass)) = self.credentials {
            builder = builder.credentials(Credentials::new(user, pass));
        }
        Ok(EmailChannel {
            transport: builder.build(),
            timeout: self.timeout,
            host,
            port: self.port,
            tls,
            from,
            to,
            authenticated,
        })
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> &str {
        super::EMAIL
    }

    fn min_level(&self) -> crate::level::Level {
        crate::level::Level::Fatal
    }

    fn per_minute(&self) -> u32 {
        10
    }

    fn render(&self, alert: &Alert) -> String {
        format!("Subject: {}\n\n{}", email_subject(alert), email_text(alert))
    }

    fn send(&self, alert: &Alert) -> std::result::Result<(), ChannelError> {
        let mut to = Mailboxes::new();
        for m in &self.to {
            to.push(m.clone());
        }
        let domain = self.from.email.domain().to_owned();
        let message = Message::builder()
            .from(self.from.clone())
            .mailbox(lettre::message::header::To::from(to))
            .subject(email_subject(alert))
            .date_now()
            .message_id(Some(format!(
                "<{}.{}.{}@{domain}>",
                alert.event_id,
                alert.kind.as_str(),
                crate::event::random_u64()
            )))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(email_text(alert)),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(email_html(alert)),
                    ),
            )
            .map_err(|e| ChannelError::rejected(format!("email: cannot build the message: {e}")))?;
        self.transport
            .send(&message)
            .map(|_| ())
            .map_err(|e| classify(e, self.timeout))
    }
}

/// The e-mail channel from settings (`ERRSNAP_SMTP_*`, `ERRSNAP_EMAIL_*`,
/// or the original design's keys); errors name the keys as written.
pub(crate) fn from_settings(
    config: &crate::settings::Config,
    host: &str,
    s: &crate::settings::Settings,
    roots: &crate::channels::tls::ExtraRoots,
) -> Result<EmailChannel> {
    let port: u16 = config.value("ERRSNAP_SMTP_PORT")?.unwrap_or(587);
    if port == 0 {
        return Err(config.rename(Error::config(
            "ERRSNAP_SMTP_PORT",
            "\"0\": expected a port from 1 to 65535",
        )));
    }
    let mut b = EmailChannel::builder(host, port)
        .timeout(s.alert_timeout)
        .with_roots(roots.clone());
    if let Some(tls) = config.value::<SmtpTls>("ERRSNAP_SMTP_TLS")? {
        b = b.tls(tls);
    }
    let missing = |key: &str, other: &str| {
        Error::config(
            key,
            format!("missing, but {} is set", config.name_of(other)),
        )
    };
    match (
        config.string("ERRSNAP_SMTP_USERNAME"),
        config.get("ERRSNAP_SMTP_PASSWORD"),
    ) {
        (Some(u), Some(p)) => b = b.credentials(u, p),
        (Some(_), None) => return Err(missing("ERRSNAP_SMTP_PASSWORD", "ERRSNAP_SMTP_USERNAME")),
        (None, Some(_)) => return Err(missing("ERRSNAP_SMTP_USERNAME", "ERRSNAP_SMTP_PASSWORD")),
        (None, None) => {}
    }
    if let Some(from) = config.string("ERRSNAP_EMAIL_FROM") {
        b = b.from(from);
    }
    if let Some(to) = config.string("ERRSNAP_EMAIL_TO") {
        b = b.to(to);
    }
    b.build().map_err(|e| config.rename(e))
}

fn classify(e: lettre::transport::smtp::Error, timeout: Duration) -> ChannelError {
    if crate::channels::tls::is_certificate_error(&e) {
        return ChannelError::channel_broken(format!(
            "email: the server's certificate was refused: {}; trust its CA with \
             ERRSNAP_TLS_CA_FILE",
            crate::util::internal_log::chain(&e)
        ));
    }
    if timed_out(&e) {
        return ChannelError::transient(
            format!(
                "email: timed out after {} (the server did not answer)",
                crate::util::time::seconds(timeout)
            ),
            None,
        );
    }
    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
    let text = format!("email: {e}");
    if e.is_permanent() {
        match code.as_str() {
            // Message too big / rejected for its content: only this alert.
            "552" | "554" => ChannelError::rejected(text),
            // Authentication, sender or recipient refused: the channel.
            _ => ChannelError::channel_broken(text),
        }
    } else {
        ChannelError::transient(text, None)
    }
}

/// Whether a socket read or write ran past its timeout (`EAGAIN` on Linux
/// for a socket timeout, `ETIMEDOUT` elsewhere).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}
