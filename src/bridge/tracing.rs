//! A `tracing_subscriber::Layer` that records tracing events.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::capture::trace::SpanLookup;
use crate::capture::{error_chain, CallSite};
use crate::event::{ChainLink, EventKind, Location};
use crate::level::{Level, LevelFilter};
use crate::logger::{EventLogger, PushOptions};

/// Records `tracing` events into an [`EventLogger`].
///
/// Events at or above the capture level (default error) become errsnap
/// events: the `message` field is the message, the other fields go to
/// `extra`, an error field (`error = &err as &dyn Error`) brings its chain,
/// and the spans in scope (root first, with their fields) go to
/// `extra.spans`; the target and the innermost span are tags. Events at or
/// above the breadcrumb level (default info) are kept as breadcrumbs.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let logger = errsnap::EventLogger::builder()
///     .name("service")
///     # .db_path(dir.path().join("L.db")).config(errsnap::Config::empty())
///     .build()?;
/// let subscriber = tracing_subscriber::registry().with(errsnap::tracing::ErrsnapLayer::new(logger.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!("loading the cart");               // a breadcrumb
///     tracing::error!(order_id = 42, "payment failed"); // an event, with the breadcrumb
/// });
/// # assert!(logger.flush(std::time::Duration::from_secs(10)));
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
#[derive(Debug, Clone)]
pub struct ErrsnapLayer {
    logger: EventLogger,
    capture: Level,
    breadcrumbs: LevelFilter,
}

impl ErrsnapLayer {
    /// A layer capturing error and fatal, keeping info and up as breadcrumbs.
    pub fn new(logger: EventLogger) -> Self {
        ErrsnapLayer {
            logger,
            capture: Level::Error,
            breadcrumbs: LevelFilter::Info,
        }
    }

    /// Events at or above this level become errsnap events.
    #[must_use]
    pub fn capture_level(mut self, level: Level) -> Self {
        self.capture = level;
        self
    }

    /// Events at or above this (and below the capture level) become
    /// breadcrumbs; `LevelFilter::Off` for none.
    #[must_use]
    pub fn breadcrumb_level(mut self, level: impl Into<LevelFilter>) -> Self {
        self.breadcrumbs = level.into();
        self
    }
}

fn level_of(l: &tracing::Level) -> Level {
    match *l {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warn,
        tracing::Level::INFO => Level::Info,
        tracing::Level::DEBUG => Level::Debug,
        _ => Level::Trace,
    }
}

/// Collects fields as JSON, the message apart, and an error's chain.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Map<String, Value>,
    chain: Vec<ChainLink>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.fields
                .insert(field.name().to_owned(), Value::String(text));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.fields
                .insert(field.name().to_owned(), Value::String(value.to_owned()));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().to_owned(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.fields
            .insert(field.name().to_owned(), Value::String(value.to_string()));
        if self.chain.is_empty() {
            self.chain = error_chain(value, None);
        }
    }
}

/// A span's recorded fields, kept in its extensions.
struct SpanFields(Map<String, Value>);

/// The span lookup errsnap's capture path finds through `downcast_raw`,
/// for the subscriber type `S`.
struct Lookup<S>(std::marker::PhantomData<S>);

impl<S> Lookup<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    const LOOKUP: SpanLookup = SpanLookup(spans_of::<S>);
}

/// The span `id` and its parents in the subscriber `S` of `dispatch`.
fn spans_of<S>(dispatch: &tracing::Dispatch, id: &Id) -> Vec<Value>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(subscriber) = dispatch.downcast_ref::<S>() else {
        return Vec::new();
    };
    let Some(span) = subscriber.span(id) else {
        return Vec::new();
    };
    span.scope().from_root().map(|s| describe(&s)).collect()
}

/// One span as `{name, fields}`.
fn describe<'a, R: LookupSpan<'a>>(span: &tracing_subscriber::registry::SpanRef<'a, R>) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), span.name().into());
    if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
        if !fields.is_empty() {
            entry.insert("fields".into(), Value::Object(fields.clone()));
        }
    }
    Value::Object(entry)
}

impl<S> tracing_subscriber::Layer<S> for ErrsnapLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // SAFETY: each pointer returned is to a value of the type asked for:
    // `self` for `ErrsnapLayer`, a `'static` promoted constant for
    // `SpanLookup`.
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == std::any::TypeId::of::<SpanLookup>() {
            let lookup: &'static SpanLookup = &Lookup::<S>::LOOKUP;
            Some(lookup as *const SpanLookup as *const ())
        } else {
            None
        }
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if super::ignored(attrs.metadata().target()) {
            return;
        }
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(f.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut f = Fields::default();
        values.record(&mut f);
        let mut ext = span.extensions_mut();
        if let Some(SpanFields(map)) = ext.get_mut::<SpanFields>() {
            map.extend(f.fields);
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if super::ignored(meta.target()) {
            return;
        }
        let level = level_of(meta.level());
        let crumb = level < self.capture && self.breadcrumbs.allows(level);
        if level < self.capture && !crumb {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let message = f.message.take().unwrap_or_else(|| meta.name().to_owned());
        if crumb {
            let text = if f.fields.is_empty() {
                message
            } else {
                format!("{message} {}", Value::Object(f.fields))
            };
            self.logger.add_breadcrumb(level, meta.target(), text);
            return;
        }
        let mut options = PushOptions::default();
        options
            .tags
            .insert("target".into(), meta.target().to_owned());
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            spans.extend(scope.from_root().map(|span| describe(&span)));
        }
        if let Some(inner) = spans.last().and_then(|s| s["name"].as_str()) {
            options.tags.insert("span".into(), inner.to_owned());
        }
        if !spans.is_empty() {
            options.extra.insert("spans".into(), Value::Array(spans));
        }
        if !f.fields.is_empty() {
            options
                .extra
                .insert("fields".into(), Value::Object(f.fields));
        }
        let site = meta.file().map(|file| {
            CallSite::Owned(Location {
                file: file.to_owned(),
                line: meta.line().unwrap_or(0),
                column: 0,
            })
        });
        let kind = if f.chain.is_empty() {
            EventKind::Message
        } else {
            EventKind::Error
        };
        self.logger
            .record(level, kind, message, f.chain, site, options);
    }
}
