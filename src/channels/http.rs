//! One HTTP POST for the HTTP channels (Slack, the generic JSON webhook,
//! Sentry and OTLP forwarding), with what they share: a blocking client per
//! notify thread,
//! the extra trusted roots, errors that never carry the URL (it is the
//! secret), and the common reading of an answer.

use std::cell::RefCell;
use std::io::Read;
use std::time::Duration;

use super::ChannelError;
use crate::channels::tls::ExtraRoots;

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
) -> Result<T, ChannelError> {
    let key: ClientKey = (timeout, roots.pem().map(|p| p.as_ptr() as usize));
    CLIENT
        .try_with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|(k, _)| *k != key) {
                let broken = |e: reqwest::Error| {
                    ChannelError::transient(
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
                None => Err(ChannelError::transient("no HTTP client", None)),
            }
        })
        .map_err(|_| ChannelError::transient("the notify thread is shutting down", None))?
}

/// A server's answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The body, trimmed, at most 4 KiB read.
    pub(crate) text: String,
    pub(crate) retry_after: Option<Duration>,
    /// `X-Sentry-Rate-Limits`, when the server sent it.
    #[cfg_attr(not(feature = "sentry"), allow(dead_code))]
    pub(crate) rate_limits: Option<String>,
    /// The body's first bytes (at most 4 KiB), for binary answers.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) bytes: Vec<u8>,
}

impl Answer {
    /// The body as shown in an error (at most 200 characters).
    pub(crate) fn shown(&self) -> String {
        self.text.chars().take(200).collect()
    }

    /// The reading shared by the webhooks: 2xx delivered; 429 later (after
    /// `Retry-After`); 400, 401, 403, 404, 410 a channel that cannot work;
    /// anything else later.
    #[cfg_attr(not(any(feature = "slack", feature = "webhook")), allow(dead_code))]
    pub(crate) fn outcome(&self, who: &str) -> Result<(), ChannelError> {
        let (status, shown) = (self.status, self.shown());
        match status {
            200..=299 => Ok(()),
            429 => Err(ChannelError::transient(
                format!("{who}: rate limited (429 {shown})"),
                self.retry_after,
            )),
            400 | 401 | 403 | 404 | 410 => Err(ChannelError::channel_broken(format!(
                "{who}: the webhook is not usable ({status} {shown})"
            ))),
            _ => Err(ChannelError::transient(
                format!("{who}: server error ({status} {shown})"),
                self.retry_after,
            )),
        }
    }
}

/// POSTs `body` as JSON to `url`, with an optional extra header.
#[cfg_attr(not(any(feature = "slack", feature = "webhook")), allow(dead_code))]
pub(crate) fn post_json(
    who: &str,
    url: &reqwest::Url,
    body: String,
    header: Option<(&str, &str)>,
    timeout: Duration,
    roots: &ExtraRoots,
) -> Result<Answer, ChannelError> {
    let headers: Vec<(&str, &str)> = header.into_iter().collect();
    post(
        who,
        url,
        "application/json; charset=utf-8",
        &headers,
        body.into_bytes(),
        timeout,
        roots,
    )
}

/// POSTs `body` to `url` as `content_type`, with extra headers (their
/// values may be secrets: they never reach an error message).
pub(crate) fn post(
    who: &str,
    url: &reqwest::Url,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    timeout: Duration,
    roots: &ExtraRoots,
) -> Result<Answer, ChannelError> {
    let response = with_client(timeout, roots, |c| {
        let mut req = c.post(url.clone()).header("content-type", content_type);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(body).send()
    })?;
    let mut response = response.map_err(|e| {
        // reqwest errors carry the URL, which is the secret.
        let e = e.without_url();
        if crate::channels::tls::is_certificate_error(&e) {
            return ChannelError::channel_broken(format!(
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
        ChannelError::transient(format!("{who}: {what}: {e}"), None)
    })?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    };
    let retry_after = header("retry-after").and_then(|v| retry_after(&v));
    let rate_limits = header("x-sentry-rate-limits");
    let mut bytes = Vec::new();
    let _ = (&mut response).take(4096).read_to_end(&mut bytes);
    Ok(Answer {
        status,
        text: String::from_utf8_lossy(&bytes).trim().to_owned(),
        retry_after,
        rate_limits,
        bytes,
    })
}

/// A `Retry-After` value: seconds, or an HTTP date (RFC 9110).
fn retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
        let d = retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(80) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(retry_after("soon"), None);
    }
}
