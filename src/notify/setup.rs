//! Builds the alert channels and policy from the configuration and the
//! builder.

use std::sync::Arc;
use std::time::Duration;

use super::{AlertPolicy, Alerting, Channel, Notifier};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::level::{Level, LevelFilter};

/// Alert settings given to the builder (they win over the configuration).
#[derive(Clone, Default)]
pub(crate) struct AlertOverrides {
    pub(crate) custom: Vec<(Arc<dyn Notifier>, Level)>,
    pub(crate) slack_min: Option<LevelFilter>,
    pub(crate) email_min: Option<LevelFilter>,
    pub(crate) cooldown: Option<Duration>,
    pub(crate) threshold: Option<(u32, Duration)>,
    pub(crate) retry_base: Option<Duration>,
    pub(crate) panic_wait: Option<Duration>,
}

impl std::fmt::Debug for AlertOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertOverrides")
            .field(
                "custom",
                &self
                    .custom
                    .iter()
                    .map(|(n, l)| (n.name().to_owned(), *l))
                    .collect::<Vec<_>>(),
            )
            .field("slack_min", &self.slack_min)
            .field("email_min", &self.email_min)
            .field("cooldown", &self.cooldown)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

fn ranged(config: &Config, key: &str, min: u64, max: u64, unit: &str) -> Result<Option<u64>> {
    let expected = format!("{unit} from {min} to {max}");
    match config.parse::<u64>(key, &expected)? {
        Some(v) if v < min || v > max => {
            Err(config.rename(Error::config(key, format!("\"{v}\": expected {expected}"))))
        }
        other => Ok(other),
    }
}

/// The keys that configure e-mail; any of them without a host is an error.
const EMAIL_KEYS: &[&str] = &[
    "ERRSNAP_SMTP_USERNAME",
    "ERRSNAP_SMTP_PASSWORD",
    "ERRSNAP_EMAIL_FROM",
    "ERRSNAP_EMAIL_TO",
];

pub(crate) fn alerting(config: &Config, o: AlertOverrides) -> Result<Alerting> {
    let timeout = Duration::from_secs(
        ranged(config, "ERRSNAP_ALERT_TIMEOUT_SECS", 1, 300, "seconds")?.unwrap_or(10),
    );
    let mut channels = Vec::new();
    #[cfg(any(feature = "slack", feature = "email"))]
    let roots = crate::tls::ExtraRoots::from_config(config)?;

    if let Some(url) = config.string("ERRSNAP_SLACK_WEBHOOK_URL") {
        #[cfg(feature = "slack")]
        {
            let hook = super::SlackWebhook::new(&url)
                .map_err(|e| config.rename(e))?
                .timeout(timeout)
                .with_roots(roots.clone());
            channels.push(Channel {
                name: Arc::from("slack"),
                notifier: Arc::new(hook),
                // Each logger refines this with its own settings.
                min_level: LevelFilter::Error,
                per_minute: ranged(
                    config,
                    "ERRSNAP_SLACK_MAX_PER_MINUTE",
                    1,
                    6000,
                    "alerts per minute",
                )?
                .unwrap_or(60) as u32,
                app_name: config.string("ERRSNAP_SLACK_APP_NAME"),
            });
        }
        #[cfg(not(feature = "slack"))]
        {
            let _ = url;
            return Err(Error::config(
                "ERRSNAP_SLACK_WEBHOOK_URL",
                "is set, but errsnap was built without its `slack` feature",
            ));
        }
    }

    match config.string("ERRSNAP_SMTP_HOST") {
        Some(host) => {
            #[cfg(feature = "email")]
            {
                let port =
                    match config.parse::<u16>("ERRSNAP_SMTP_PORT", "a port from 1 to 65535")? {
                        Some(0) => {
                            return Err(config.rename(Error::config(
                                "ERRSNAP_SMTP_PORT",
                                "\"0\": expected a port from 1 to 65535",
                            )))
                        }
                        Some(p) => p,
                        None => 587,
                    };
                let mut b = super::SmtpMailer::builder(host, port)
                    .timeout(timeout)
                    .with_roots(roots.clone());
                if let Some(tls) = config
                    .parse::<super::SmtpTls>("ERRSNAP_SMTP_TLS", "implicit, starttls or none")?
                {
                    b = b.tls(tls);
                }
                match (
                    config.string("ERRSNAP_SMTP_USERNAME"),
                    config.get("ERRSNAP_SMTP_PASSWORD"),
                ) {
                    (Some(u), Some(p)) => b = b.credentials(u, p),
                    (Some(_), None) => {
                        return Err(Error::config(
                            "ERRSNAP_SMTP_PASSWORD",
                            format!(
                                "missing, but {} is set",
                                config.name_of("ERRSNAP_SMTP_USERNAME")
                            ),
                        ))
                    }
                    (None, Some(_)) => {
                        return Err(Error::config(
                            "ERRSNAP_SMTP_USERNAME",
                            format!(
                                "missing, but {} is set",
                                config.name_of("ERRSNAP_SMTP_PASSWORD")
                            ),
                        ))
                    }
                    (None, None) => {}
                }
                if let Some(from) = config.string("ERRSNAP_EMAIL_FROM") {
                    b = b.from(from);
                }
                if let Some(to) = config.string("ERRSNAP_EMAIL_TO") {
                    b = b.to(to);
                }
                channels.push(Channel {
                    name: Arc::from("email"),
                    notifier: Arc::new(b.build().map_err(|e| config.rename(e))?),
                    min_level: LevelFilter::Fatal,
                    per_minute: ranged(
                        config,
                        "ERRSNAP_EMAIL_MAX_PER_MINUTE",
                        1,
                        600,
                        "alerts per minute",
                    )?
                    .unwrap_or(10) as u32,
                    app_name: config.string("ERRSNAP_EMAIL_APP_NAME"),
                });
            }
            #[cfg(not(feature = "email"))]
            {
                let _ = host;
                return Err(Error::config(
                    "ERRSNAP_SMTP_HOST",
                    "is set, but errsnap was built without its `email` feature",
                ));
            }
        }
        None => {
            if let Some(k) = EMAIL_KEYS.iter().find(|k| config.string(k).is_some()) {
                return Err(Error::config(
                    "ERRSNAP_SMTP_HOST",
                    format!("missing, but {} is set", config.name_of(k)),
                ));
            }
        }
    }

    for (notifier, min_level) in o.custom {
        let name = notifier.name().to_owned();
        if name.is_empty() || channels.iter().any(|c: &Channel| *c.name == *name) {
            return Err(Error::config(
                "notifier",
                format!("{name:?}: each notifier needs a distinct, non-empty name"),
            ));
        }
        channels.push(Channel {
            name: Arc::from(name.as_str()),
            notifier,
            min_level: min_level.into(),
            per_minute: 60,
            app_name: None,
        });
    }

    #[cfg(not(any(feature = "slack", feature = "email")))]
    let _ = timeout;
    let d = AlertPolicy::default();
    let threshold = match o.threshold {
        Some(t) => t,
        None => (
            ranged(config, "ERRSNAP_ALERT_THRESHOLD", 1, 1_000_000, "a count")?.unwrap_or(1) as u32,
            ranged(
                config,
                "ERRSNAP_ALERT_WINDOW_SECS",
                1,
                30 * 86_400,
                "seconds",
            )?
            .map_or(d.window, Duration::from_secs),
        ),
    };
    let policy = AlertPolicy {
        cooldown: match o.cooldown {
            Some(c) => c,
            None => ranged(
                config,
                "ERRSNAP_ALERT_COOLDOWN_SECS",
                0,
                7 * 86_400,
                "seconds",
            )?
            .map_or(d.cooldown, Duration::from_secs),
        },
        threshold: threshold.0.max(1),
        window: threshold.1,
        retry_base: o.retry_base.unwrap_or(d.retry_base),
        give_up_after: d.give_up_after,
        panic_wait: match o.panic_wait {
            Some(w) => w,
            None => ranged(
                config,
                "ERRSNAP_PANIC_ALERT_WAIT_MS",
                0,
                60_000,
                "milliseconds",
            )?
            .map_or(d.panic_wait, Duration::from_millis),
        },
    };
    Ok(Alerting { channels, policy })
}
