//! One HTTP POST for the webhook channels (Slack and the generic JSON
//! webhook), with what they share: a blocking client per notify thread,
//! the extra trusted roots, errors that never carry the URL (it is the
//! secret), and the common reading of an answer.

use std::cell::RefCell;
use std::io::Read;
use std::time::Duration;

use super::NotifyError;
use crate::notify::tls::ExtraRoots;

/// What a cached client was built for: its timeout and its extra roots.
type ClientKey = (Duration, Option<usize>);

thread_local! {
    /// One blocking client per notify thread: created and dropped on that
    /// thread, never inside an async runtime.
    static CLIENT: RefCell<Option<(ClientKey, reqwest::blocking::Client)>> = const { RefCell::new(None) };
}

fn with_client<T>(
    timeout: Duration,
    roots: &ExtraRoots,
    f: impl FnOnce(&reqwest::blocking::Client) -> T,
) -> Result<T, NotifyError> {
    let key: ClientKey = (timeout, roots.pem().map(|p| p.as_ptr() as usize));
    CLIENT
        .try_with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|(k, _)| *k != key) {
                let broken = |e: reqwest::Error| {
                    NotifyError::transient(
                        format!("building the HTTP client: {}", e.without_url()),
                        None,
                    )
                };
                let mut b = reqwest::blocking::Client::builder()
                    .connect_timeout(timeout)
                    .timeout(timeout)
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(pem) = roots.pem() {
                    for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(broken)? {
                        b = b.add_root_certificate(cert);
                    }
                }
                *slot = Some((key, b.build().map_err(broken)?));
            }
            match slot.as_ref() {
                Some((_, c)) => Ok(f(c)),
                None => Err(NotifyError::transient("no HTTP client", None)),
            }
        })
        .map_err(|_| NotifyError::transient("the notify thread is shutting down", None))?
}

/// A server's answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The body, trimmed, at most 4 KiB read.
    pub(crate) text: String,
    pub(crate) retry_after: Option<Duration>,
}

impl Answer {
    /// The body as shown in an error (at most 200 characters).
    pub(crate) fn shown(&self) -> String {
        self.text.chars().take(200).collect()
    }

    /// The reading shared by the webhooks: 2xx delivered; 429 later (after
    /// `Retry-After`); 400, 401, 403, 404, 410 a channel that cannot work;
    /// anything else later.
    pub(crate) fn outcome(&self, who: &str) -> Result<(), NotifyError> {
        let (status, shown) = (self.status, self.shown());
        match status {
            200..=299 => Ok(()),
            429 => Err(NotifyError::transient(
                format!("{who}: rate limited (429 {shown})"),
                self.retry_after,
            )),
            400 | 401 | 403 | 404 | 410 => Err(NotifyError::channel_broken(format!(
                "{who}: the webhook is not usable ({status} {shown})"
            ))),
            _ => Err(NotifyError::transient(
                format!("{who}: server error ({status} {shown})"),
                self.retry_after,
            )),
        }
    }
}

/// POSTs `body` as JSON to `url`, with an optional extra header.
pub(crate) fn post_json(
    who: &str,
    url: &reqwest::Url,
    body: String,
    header: Option<(&str, &str)>,
    timeout: Duration,
    roots: &ExtraRoots,
) -> Result<Answer, NotifyError> {
    let response = with_client(timeout, roots, |c| {
        let mut req = c
            .post(url.clone())
            .header("content-type", "application/json; charset=utf-8");
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        req.body(body).send()
    })?;
    let mut response = response.map_err(|e| {
        // reqwest errors carry the URL, which is the secret.
        let e = e.without_url();
        if crate::notify::tls::is_certificate_error(&e) {
            return NotifyError::channel_broken(format!(
                "{who}: the server's certificate was refused: {}; trust its CA with \
                 ERRSNAP_TLS_CA_FILE",
                crate::util::internal_log::chain(&e)
            ));
        }
        let what = if e.is_timeout() {
            format!("timed out after {}", crate::util::time::seconds(timeout))
        } else if e.is_connect() {
            "could not connect".to_owned()
        } else {
            "request failed".to_owned()
        };
        NotifyError::transient(format!("{who}: {what}: {e}"), None)
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut text = String::new();
    let _ = (&mut response).take(4096).read_to_string(&mut text);
    Ok(Answer {
        status,
        text: text.trim().to_owned(),
        retry_after,
    })
}

/// Checks a webhook URL: it parses, has a host, and is `https` (or `http`
/// to a loopback address, for tests). The message never repeats the URL.
pub(crate) fn webhook_url(key: &str, url: &str) -> crate::error::Result<reqwest::Url> {
    use crate::error::Error;
    let url = reqwest::Url::parse(url.trim())
        .map_err(|e| Error::config(key, format!("not a URL ({e}; value not shown)")))?;
    let host = url.host_str().unwrap_or("");
    if host.is_empty() {
        return Err(Error::config(key, "the URL has no host (value not shown)"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if super::is_loopback(host) => Ok(url),
        _ => Err(Error::config(
            key,
            "the URL must use https (http only to a loopback address; value not shown)",
        )),
    }
}
