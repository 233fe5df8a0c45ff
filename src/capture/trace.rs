//! Trace context on the caller's thread: the current `tracing` span (its
//! name and fields, root first) when errsnap's tracing layer is installed,
//! and the current OpenTelemetry trace and span ids (feature
//! `opentelemetry`, which reads `opentelemetry::Context::current()`, where
//! tracing-opentelemetry ≥ 0.32 puts the entered span's context).

/// What errsnap's tracing layer answers to `downcast_raw`: how to list a
/// span and its parents (root first) as `{name, fields}` objects, knowing
/// the subscriber's type.
#[cfg(feature = "tracing")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanLookup(
    pub(crate) fn(&tracing::Dispatch, &tracing::span::Id) -> Vec<serde_json::Value>,
);

/// The spans of the current span, root first (`None`: no span, or no
/// errsnap layer in the current subscriber). Inside the subscriber (an
/// event that the layer itself records) the current dispatcher is the
/// no-op one: the layer adds its spans itself.
#[cfg(feature = "tracing")]
pub(crate) fn current_spans() -> Option<Vec<serde_json::Value>> {
    tracing::dispatcher::get_default(|d| {
        let lookup = d.downcast_ref::<SpanLookup>()?;
        let current = d.current_span();
        let id = current.id()?;
        let spans = (lookup.0)(d, id);
        (!spans.is_empty()).then_some(spans)
    })
}

/// The current OpenTelemetry trace id (32 hex digits) and span id (16),
/// when the current context holds a valid span.
#[cfg(feature = "opentelemetry")]
pub(crate) fn otel_ids() -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt;
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
    })
}

/// Adds the trace context to an event's tags and extra (what the event
/// already has wins).
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn add_to(
    tags: &mut std::collections::BTreeMap<String, String>,
    extra: &mut serde_json::Map<String, serde_json::Value>,
) {
    #[cfg(feature = "opentelemetry")]
    if !tags.contains_key("trace_id") {
        if let Some((trace, span)) = otel_ids() {
            tags.insert("trace_id".into(), trace);
            tags.entry("span_id".into()).or_insert(span);
        }
    }
    #[cfg(feature = "tracing")]
    if !extra.contains_key("spans") {
        if let Some(spans) = current_spans() {
            if let Some(name) = spans.last().and_then(|s| s["name"].as_str()) {
                tags.entry("span".into()).or_insert_with(|| name.to_owned());
            }
            extra.insert("spans".into(), serde_json::Value::Array(spans));
        }
    }
}
