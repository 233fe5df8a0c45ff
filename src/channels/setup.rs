//! The registry: every alert channel of a logger's file is set up here, in
//! one place. The built-in ones (Slack, e-mail, the generic webhook, and
//! the forwarding channels: Sentry, OTLP) come from settings and the
//! builder; custom ones from the builder. Each gets its limits as
//! data: the channel's defaults, then the settings
//! (`ERRSNAP_<NAME>_MAX_PER_MINUTE`, `ERRSNAP_<NAME>_APP_NAME`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::forward::Forward;
#[cfg(any(feature = "sentry", feature = "otlp"))]
use super::forward::Forwarding;
use super::{AlertPolicy, Alerting, Channel, ChannelEntry};
use crate::error::{Error, Result};
use crate::level::LevelFilter;
use crate::settings::{keys, Config, Settings};

/// Alert settings given to the builder (they win over the configuration).
#[derive(Clone, Default)]
pub(crate) struct AlertOverrides {
    pub(crate) custom: Vec<Arc<dyn Channel>>,
    /// This logger's level per channel name.
    pub(crate) min_levels: BTreeMap<String, LevelFilter>,
    /// The first retry delay of a failed delivery (no key: code only).
    pub(crate) retry_base: Option<Duration>,
}

impl std::fmt::Debug for AlertOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertOverrides")
            .field(
                "custom",
                &self
                    .custom
                    .iter()
                    .map(|c| c.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .field("min_levels", &self.min_levels)
            .field("retry_base", &self.retry_base)
            .finish_non_exhaustive()
    }
}

/// The channels of a file, set up from settings and the builder.
///
/// # Errors
/// A channel's setting is invalid (named), a key of a channel whose feature
/// is off is set, or two channels share a name.
pub(crate) fn alerting(config: &Config, s: &Settings, o: &AlertOverrides) -> Result<Alerting> {
    let mut channels = Vec::new();
    for (channel, forward) in builtin(config, s)? {
        let mut e = entry(config, channel)?;
        e.forward = forward;
        channels.push(e);
    }
    for channel in &o.custom {
        let name = channel.name().to_owned();
        if name.is_empty() || channels.iter().any(|c: &ChannelEntry| *c.name == *name) {
            return Err(Error::config(
                "channel",
                format!("{name:?}: each channel needs a distinct, non-empty name"),
            ));
        }
        channels.push(ChannelEntry::new(channel.clone()));
    }
    Ok(Alerting {
        channels,
        policy: AlertPolicy {
            threshold: s.policy.threshold.max(1),
            ..s.policy.clone()
        },
        repo: s.repo.clone(),
    })
}

/// A built-in channel with its limits from settings.
fn entry(config: &Config, channel: Arc<dyn Channel>) -> Result<ChannelEntry> {
    let mut e = ChannelEntry::new(channel);
    if let Some(key) = keys::channel_key(&e.name, "MAX_PER_MINUTE") {
        if let Some(n) = config.count(key)? {
            e.per_minute = u32::try_from(n).unwrap_or(u32::MAX);
        }
    }
    if let Some(key) = keys::channel_key(&e.name, "APP_NAME") {
        e.app_name = config.string(key);
    }
    Ok(e)
}

/// A built-in channel, and what forwards events to it when it is a
/// forwarding channel.
type Builtin = (Arc<dyn Channel>, Option<Arc<dyn Forward>>);

/// The built-in channels the settings ask for.
// Long by design: one block per built-in channel, each with its feature's
// two sides (set up, or say the feature is off).
fn builtin(config: &Config, s: &Settings) -> Result<Vec<Builtin>> {
    #[cfg_attr(
        not(any(feature = "slack", feature = "email", feature = "webhook")),
        allow(unused_mut)
    )]
    let mut out: Vec<Arc<dyn Channel>> = Vec::new();
    #[cfg_attr(not(any(feature = "sentry", feature = "otlp")), allow(unused_mut))]
    let mut forwarders: Vec<Builtin> = Vec::new();
    #[cfg(any(
        feature = "slack",
        feature = "email",
        feature = "webhook",
        feature = "sentry",
        feature = "otlp"
    ))]
    let roots = super::tls::ExtraRoots::from_config(config)?;
    let _ = s;
    if let Some(url) = config.string("ERRSNAP_SLACK_WEBHOOK_URL") {
        #[cfg(feature = "slack")]
        out.push(Arc::new(
            super::SlackChannel::new(&url)
                .map_err(|e| config.rename(e))?
                .timeout(s.alert_timeout)
                .with_roots(roots.clone()),
        ));
        #[cfg(not(feature = "slack"))]
        return Err(feature_off("ERRSNAP_SLACK_WEBHOOK_URL", "slack", &url));
    }
    if let Some(host) = config.string("ERRSNAP_SMTP_HOST") {
        #[cfg(feature = "email")]
        out.push(Arc::new(super::email::from_settings(
            config, &host, s, &roots,
        )?));
        #[cfg(not(feature = "email"))]
        return Err(feature_off("ERRSNAP_SMTP_HOST", "email", &host));
    } else if let Some(k) = EMAIL_KEYS.iter().find(|k| config.string(k).is_some()) {
        return Err(Error::config(
            "ERRSNAP_SMTP_HOST",
            format!("missing, but {} is set", config.name_of(k)),
        ));
    }
    if let Some(url) = config.string("ERRSNAP_WEBHOOK_URL") {
        #[cfg(feature = "webhook")]
        {
            let mut hook = super::WebhookChannel::new(&url)?
                .timeout(s.alert_timeout)
                .with_roots(roots.clone());
            if let Some(h) = config.string("ERRSNAP_WEBHOOK_HEADER") {
                hook = hook.header(&h)?;
            }
            out.push(Arc::new(hook));
        }
        #[cfg(not(feature = "webhook"))]
        return Err(feature_off("ERRSNAP_WEBHOOK_URL", "webhook", &url));
    } else if config.string("ERRSNAP_WEBHOOK_HEADER").is_some() {
        return Err(Error::config(
            "ERRSNAP_WEBHOOK_URL",
            "missing, but ERRSNAP_WEBHOOK_HEADER is set",
        ));
    }
    if let Some(dsn) = config.string("ERRSNAP_SENTRY_DSN") {
        #[cfg(feature = "sentry")]
        {
            use super::forward::sentry::{Dsn, SentryForwarder, KEY};
            let dsn = Dsn::parse(KEY, &dsn).map_err(|e| config.rename(e))?;
            let minidump = config
                .value::<crate::settings::Flag>("ERRSNAP_SENTRY_MINIDUMP")?
                .is_some_and(|f| f.0);
            let f = Arc::new(SentryForwarder::new(
                dsn,
                s.alert_timeout,
                roots.clone(),
                minidump,
            ));
            let channel = Forwarding::new(super::SENTRY, f.clone());
            forwarders.push((Arc::new(channel), Some(f)));
        }
        #[cfg(not(feature = "sentry"))]
        return Err(feature_off("ERRSNAP_SENTRY_DSN", "sentry", &dsn));
    }
    if let Some(url) = config.string("ERRSNAP_OTLP_ENDPOINT") {
        #[cfg(feature = "otlp")]
        {
            let headers = config.string("ERRSNAP_OTLP_HEADERS");
            let f = Arc::new(
                super::forward::otlp::OtlpForwarder::new(
                    &url,
                    headers.as_deref(),
                    s.alert_timeout,
                    roots.clone(),
                )
                .map_err(|e| config.rename(e))?,
            );
            let channel = Forwarding::new(super::OTLP, f.clone());
            forwarders.push((Arc::new(channel), Some(f)));
        }
        #[cfg(not(feature = "otlp"))]
        return Err(feature_off("ERRSNAP_OTLP_ENDPOINT", "otlp", &url));
    } else if config.string("ERRSNAP_OTLP_HEADERS").is_some() {
        return Err(Error::config(
            "ERRSNAP_OTLP_ENDPOINT",
            "missing, but ERRSNAP_OTLP_HEADERS is set",
        ));
    }
    let mut all: Vec<Builtin> = out.into_iter().map(|c| (c, None)).collect();
    all.extend(forwarders);
    Ok(all)
}

/// The keys that configure e-mail; any of them without a host is an error.
const EMAIL_KEYS: &[&str] = &[
    "ERRSNAP_SMTP_USERNAME",
    "ERRSNAP_SMTP_PASSWORD",
    "ERRSNAP_EMAIL_FROM",
    "ERRSNAP_EMAIL_TO",
];

#[cfg(not(all(
    feature = "slack",
    feature = "email",
    feature = "webhook",
    feature = "sentry",
    feature = "otlp"
)))]
fn feature_off(key: &str, feature: &str, _value: &str) -> Error {
    Error::config(
        key,
        format!("is set, but errsnap was built without its `{feature}` feature"),
    )
}
