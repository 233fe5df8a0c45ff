//! Forwarding to a Sentry-compatible server (Sentry, GlitchTip, Bugsink):
//! each event as an envelope with one `event` item, `POST
//! /api/<project>/envelope/` with `X-Sentry-Auth`; monitors' check-ins,
//! runs as sessions and errsnap's losses as client reports, one envelope
//! each (`sentry_items`).
//!
//! The server's answers are read as Sentry's transport documents them:
//! `X-Sentry-Rate-Limits`, on any status, pauses the channel for the
//! categories that cover events (`error`, `default`, or all); otherwise a
//! 429 pauses it for `Retry-After` (60 s without one); 413 and 400 reject
//! this event only; 401, 403 and 404 mean the DSN cannot work; anything
//! else is retried with backoff.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::super::tls::ExtraRoots;
use super::super::{http, ChannelError};
use super::{sentry_event, sentry_items, Forward};
use crate::error::{Error, Result};
use crate::store::upstream::{Item, ItemKind};
use crate::store::EventDetail;

/// The key of the DSN.
pub(crate) const KEY: &str = "ERRSNAP_SENTRY_DSN";
/// The longest pause a server's rate limit may impose.
const MAX_PAUSE: Duration = Duration::from_secs(24 * 3600);

/// A parsed DSN: `{scheme}://{public_key}[:{secret}]@{host}[:{port}]{path}/{project}`.
#[derive(Clone)]
pub(crate) struct Dsn {
    envelope_url: reqwest::Url,
    public_key: String,
    secret_key: Option<String>,
    /// The server and project, for messages (no key).
    shown: String,
}

impl Dsn {
    /// Parses and checks a DSN; errors name the key, never the value.
    pub(crate) fn parse(key: &str, dsn: &str) -> Result<Dsn> {
        let bad = |why: &str| Error::config(key, format!("{why} (value not shown)"));
        let url = http::webhook_url(key, dsn)?;
        let public_key = url.username().to_owned();
        if public_key.is_empty() {
            return Err(bad(
                "not a DSN: it has no public key (https://<key>@<host>/<project>)",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("not a DSN: it has a query or fragment"));
        }
        let secret_key = url.password().map(str::to_owned);
        let path = url.path().trim_end_matches('/');
        let (prefix, project) = path.rsplit_once('/').unwrap_or(("", path));
        if project.is_empty() || !project.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad(
                "not a DSN: its path does not end in a project id (https://<key>@<host>/<project>)",
            ));
        }
        let mut envelope_url = url.clone();
        let _ = envelope_url.set_username("");
        let _ = envelope_url.set_password(None);
        envelope_url.set_path(&format!("{prefix}/api/{project}/envelope/"));
        let shown = format!(
            "{}://{}{}/{project}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        Ok(Dsn {
            envelope_url,
            public_key,
            secret_key,
            shown,
        })
    }

    /// The `X-Sentry-Auth` header's value.
    fn auth(&self) -> String {
        let mut a = format!(
            "Sentry sentry_version=7, sentry_client=errsnap/{}, sentry_key={}",
            env!("CARGO_PKG_VERSION"),
            self.public_key
        );
        if let Some(s) = &self.secret_key {
            a.push_str(", sentry_secret=");
            a.push_str(s);
        }
        a
    }
}

/// Forwards events to a Sentry-compatible server.
pub(crate) struct SentryForwarder {
    dsn: Dsn,
    timeout: Duration,
    roots: ExtraRoots,
    /// Until when the server asked for no events (`X-Sentry-Rate-Limits`).
    paused_until: Mutex<Option<Instant>>,
    /// Whether a crash's minidump goes with its event
    /// (`ERRSNAP_SENTRY_MINIDUMP`).
    minidump: bool,
}

impl fmt::Debug for SentryForwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentryForwarder")
            .field("server", &self.dsn.shown)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SentryForwarder {
    pub(crate) fn new(
        dsn: Dsn,
        timeout: Duration,
        roots: ExtraRoots,
        minidump: bool,
    ) -> SentryForwarder {
        SentryForwarder {
            dsn,
            timeout,
            roots,
            paused_until: Mutex::new(None),
            minidump,
        }
    }

    fn who(&self) -> String {
        format!("sentry ({})", self.dsn.shown)
    }

    fn pause(&self, d: Duration) {
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        let until = Instant::now() + d.clamp(Duration::from_secs(1), MAX_PAUSE);
        *p = Some(p.map_or(until, |old| old.max(until)));
    }

    /// The envelope of one event: headers, the item's header, the payload;
    /// then, when given, the crash's minidump as an `event.minidump`
    /// attachment (Relay reads the dump's threads and modules into the
    /// event).
    fn envelope(event_id: &str, payload: &[u8], minidump: Option<&[u8]>) -> Vec<u8> {
        let head = serde_json::json!({
            "event_id": event_id,
            "sent_at": crate::util::time::rfc3339(crate::util::time::now_ms()),
            "sdk": { "name": "errsnap", "version": env!("CARGO_PKG_VERSION") },
        });
        let item = serde_json::json!({
            "type": "event",
            "length": payload.len(),
            "content_type": "application/json",
        });
        let mut out = Vec::with_capacity(payload.len() + 256);
        out.extend_from_slice(head.to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(item.to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(payload);
        out.push(b'\n');
        if let Some(dump) = minidump {
            let item = serde_json::json!({
                "type": "attachment",
                "length": dump.len(),
                "filename": crate::event::attachment::MINIDUMP_NAME,
                "content_type": crate::event::attachment::MINIDUMP_TYPE,
                "attachment_type": "event.minidump",
            });
            out.extend_from_slice(item.to_string().as_bytes());
            out.push(b'\n');
            out.extend_from_slice(dump);
            out.push(b'\n');
        }
        out
    }

    /// A rate-limited error while the server's pause lasts.
    fn check_paused(&self) -> std::result::Result<(), ChannelError> {
        if let Some(until) = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner()) {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(ChannelError::rate_limited(
                    format!(
                        "{}: rate limited by the server for {} more",
                        self.who(),
                        secs(left)
                    ),
                    left,
                ));
            }
        }
        Ok(())
    }

    /// Posts one envelope (of an event or of another item, `what`) and
    /// reads the server's answer.
    fn post(&self, body: Vec<u8>, what: &str) -> std::result::Result<(), ChannelError> {
        let who = self.who();
        let auth = self.dsn.auth();
        let answer = http::post(
            &who,
            &self.dsn.envelope_url,
            "application/x-sentry-envelope",
            &[("x-sentry-auth", auth.as_str())],
            body,
            self.timeout,
            &self.roots,
        )?;
        let limited = answer.rate_limits.as_deref().and_then(rate_limit);
        if let Some(d) = limited {
            self.pause(d);
        }
        let shown = answer.shown();
        match answer.status {
            200..=299 => Ok(()),
            429 => {
                let d = limited
                    .or(answer.retry_after)
                    .unwrap_or(Duration::from_secs(60))
                    .clamp(Duration::from_secs(1), MAX_PAUSE);
                self.pause(d);
                Err(ChannelError::rate_limited(
                    format!("{who}: rate limited (429 {shown}); paused for {}", secs(d)),
                    d,
                ))
            }
            413 => Err(ChannelError::rejected(format!(
                "{who}: the {what} is too large for the server (413 {shown})"
            ))),
            400 => Err(ChannelError::rejected(format!(
                "{who}: the server refused the {what} (400 {shown})"
            ))),
            401 | 403 | 404 => Err(ChannelError::channel_broken(format!(
                "{who}: the DSN is not accepted ({} {shown}); check ERRSNAP_SENTRY_DSN",
                answer.status
            ))),
            s => Err(ChannelError::transient(
                format!("{who}: server error ({s} {shown})"),
                answer.retry_after,
            )),
        }
    }

    /// The event's minidump, when one is to be sent.
    fn minidump_of<'a>(&self, event: &'a EventDetail) -> Option<&'a [u8]> {
        if !self.minidump {
            return None;
        }
        event
            .attachments
            .iter()
            .find(|a| a.is_minidump())
            .and_then(|a| a.data())
    }
}

impl Forward for SentryForwarder {
    fn forward(&self, event: &EventDetail) -> std::result::Result<(), ChannelError> {
        self.check_paused()?;
        let payload = sentry_event::payload(event);
        let body = Self::envelope(
            &super::hex_id(&event.row.id),
            &payload,
            self.minidump_of(event),
        );
        self.post(body, "event")
    }

    fn takes(&self) -> &'static [ItemKind] {
        &[ItemKind::CheckIn, ItemKind::Session, ItemKind::ClientReport]
    }

    fn send_item(&self, item: &Item) -> std::result::Result<(), ChannelError> {
        let now = crate::util::time::now_ms();
        let (kind, payload) = sentry_items::item(item, now)
            .map_err(|why| ChannelError::rejected(format!("{}: {why}", self.who())))?;
        self.check_paused()?;
        self.post(sentry_items::envelope(kind, &payload, now), kind)
    }

    fn preview(&self, event: &EventDetail) -> String {
        String::from_utf8_lossy(&sentry_event::payload(event)).into_owned()
    }
}

fn secs(d: Duration) -> String {
    crate::util::time::seconds(d)
}

/// The pause an `X-Sentry-Rate-Limits` header imposes on events: the
/// longest limit whose categories are empty (all), `error` or `default`.
/// `None` when no limit covers events (`transaction` limits, say, which
/// Bugsink sends with every answer).
pub(crate) fn rate_limit(header: &str) -> Option<Duration> {
    let mut longest: Option<Duration> = None;
    for limit in header.split(',') {
        let mut parts = limit.trim().split(':');
        let (Some(secs), Some(categories)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(secs) = secs.trim().parse::<f64>() else {
            continue;
        };
        // A limit of 0 s (or less) limits nothing.
        if !secs.is_finite() || secs <= 0.0 {
            continue;
        }
        let covers = categories.trim().is_empty()
            || categories
                .split(';')
                .any(|c| matches!(c.trim(), "error" | "default"));
        if covers {
            let d = Duration::from_secs_f64(secs.ceil().min(MAX_PAUSE.as_secs_f64()));
            longest = Some(longest.map_or(d, |l| l.max(d)));
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dsn_gives_the_envelope_url_and_the_auth_header() {
        let d = Dsn::parse(KEY, "https://abc123@o1.ingest.example.com/42").unwrap();
        assert_eq!(
            d.envelope_url.as_str(),
            "https://o1.ingest.example.com/api/42/envelope/"
        );
        assert!(d.auth().contains("sentry_key=abc123"));
        assert!(d.auth().starts_with("Sentry sentry_version=7, "));
        assert!(!d.auth().contains("sentry_secret"));
        let d = Dsn::parse(KEY, "http://k:s@127.0.0.1:9000/sub/path/7/").unwrap();
        assert_eq!(
            d.envelope_url.as_str(),
            "http://127.0.0.1:9000/sub/path/api/7/envelope/"
        );
        assert!(d.auth().ends_with(", sentry_secret=s"));
        assert_eq!(d.shown, "http://127.0.0.1:9000/7");
    }

    #[test]
    fn a_minidump_goes_as_the_event_minidump_attachment_only_when_asked() {
        let env = SentryForwarder::envelope("0123", b"{}", Some(b"MDMP\n\x00x"));
        let mut lines = env.splitn(5, |&c| c == b'\n');
        let _head = lines.next().unwrap();
        let _item = lines.next().unwrap();
        assert_eq!(lines.next().unwrap(), b"{}");
        let item: serde_json::Value = serde_json::from_slice(lines.next().unwrap()).unwrap();
        assert_eq!(item["type"], "attachment");
        assert_eq!(item["attachment_type"], "event.minidump");
        assert_eq!(item["filename"], "minidump.dmp");
        assert_eq!(item["length"], 7);
        assert_eq!(lines.next().unwrap(), b"MDMP\n\x00x\n");
        // The forwarder sends it only with ERRSNAP_SENTRY_MINIDUMP.
        let mut event = super::super::test_event(&crate::channels::format::tests::sample("crash"));
        event.attachments = vec![crate::event::StoredAttachment {
            name: "minidump.dmp".into(),
            content_type: Some("application/x-dmp".into()),
            size: 4,
            data: Some(b"MDMP".to_vec()),
            dropped: None,
        }];
        let dsn = || Dsn::parse(KEY, "http://k@127.0.0.1:9/1").unwrap();
        let off = SentryForwarder::new(dsn(), Duration::from_secs(1), ExtraRoots::default(), false);
        assert_eq!(off.minidump_of(&event), None);
        let on = SentryForwarder::new(dsn(), Duration::from_secs(1), ExtraRoots::default(), true);
        assert_eq!(on.minidump_of(&event), Some(&b"MDMP"[..]));
        event.attachments[0].content_type = Some("text/plain".into());
        assert_eq!(on.minidump_of(&event), None, "only a minidump");
    }

    #[test]
    fn bad_dsns_name_the_key_and_never_the_key_inside() {
        for bad in [
            "https://o1.example.com/42",
            "https://secretkey@o1.example.com/",
            "https://secretkey@o1.example.com/4-2",
            "https://secretkey@o1.example.com/42?x=1",
            "http://secretkey@example.com/42",
            "secretkey",
        ] {
            let e = Dsn::parse(KEY, bad).err().unwrap().to_string();
            assert!(e.contains(KEY), "{e}");
            assert!(!e.contains("secretkey"), "{e}");
        }
    }

    #[test]
    fn rate_limits_cover_events_only_for_their_categories() {
        assert_eq!(rate_limit("86400:transaction;span:organization"), None);
        assert_eq!(
            rate_limit("60::key, 86400:transaction;span:organization"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            rate_limit("2.5:error:project, 10:default;security:org"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(rate_limit("30:error"), Some(Duration::from_secs(30)));
        assert_eq!(rate_limit("garbage, :error, -1:error"), None);
        assert_eq!(rate_limit("0:error"), None);
        assert_eq!(rate_limit("0.2:error"), Some(Duration::from_secs(1)));
        assert_eq!(rate_limit("9999999:error"), Some(MAX_PAUSE));
    }

    #[test]
    fn the_envelope_has_its_three_lines_and_the_length() {
        let env = SentryForwarder::envelope("0123456789abcdef0123456789abcdef", b"{\"a\":1}", None);
        let text = String::from_utf8(env).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 4);
        let head: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(head["event_id"], "0123456789abcdef0123456789abcdef");
        let item: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(item["type"], "event");
        assert_eq!(item["length"], 7);
        assert_eq!(lines[2], "{\"a\":1}");
        assert_eq!(lines[3], "");
    }
}
