//! Trace context carried by events: the raising call's, written into the
//! envelope, and taken up by the relay and by consumers so one trace shows
//! the call, the publish and every effect.

use std::collections::HashMap;

use opentelemetry::global;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::pb;

/// The current span's W3C `traceparent` and `tracestate` (empty when no
/// trace is being exported).
pub(super) fn current() -> (String, String) {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier);
    });
    (
        carrier.remove("traceparent").unwrap_or_default(),
        carrier.remove("tracestate").unwrap_or_default(),
    )
}

/// Makes `span` a child of the call that raised `event`.
pub(super) fn continue_in(span: &tracing::Span, event: &pb::Envelope) {
    if event.traceparent.is_empty() {
        return;
    }
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), event.traceparent.clone());
    if !event.tracestate.is_empty() {
        carrier.insert("tracestate".to_owned(), event.tracestate.clone());
    }
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    // Without an OpenTelemetry layer the span cannot take a parent; traces
    // are then not exported at all.
    let _ = span.set_parent(parent);
}
