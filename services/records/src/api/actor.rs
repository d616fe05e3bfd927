//! Who is asking: the caller and purpose a request names in its metadata,
//! for the audit trail, until authentication replaces them.

use opentelemetry::trace::TraceContextExt as _;
use tonic::Request;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::store::audit::Actor;

/// Metadata naming the caller until authentication exists.
const ACTOR_HEADER: &str = "x-medsec-actor";
const ROLE_HEADER: &str = "x-medsec-role";
const PURPOSE_HEADER: &str = "x-medsec-purpose";
const UNIDENTIFIED: &str = "unidentified";
const MAX_HEADER_CHARS: usize = 200;

/// The caller and purpose from request metadata, and the trace id.
pub(super) fn actor<T>(request: &Request<T>) -> Actor {
    let header = |name: &str| {
        request
            .metadata()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                value
                    .trim()
                    .chars()
                    .take(MAX_HEADER_CHARS)
                    .collect::<String>()
            })
            .unwrap_or_default()
    };
    let actor = header(ACTOR_HEADER);
    Actor {
        actor: if actor.is_empty() {
            UNIDENTIFIED.to_owned()
        } else {
            actor
        },
        role: header(ROLE_HEADER),
        purpose: header(PURPOSE_HEADER),
        trace_id: trace_id(&header("traceparent")),
    }
}

/// The trace this request runs in: the OpenTelemetry span's when tracing is
/// exported, else the caller's `traceparent`.
fn trace_id(traceparent: &str) -> String {
    let span_context = tracing::Span::current()
        .context()
        .span()
        .span_context()
        .clone();
    if span_context.is_valid() {
        return span_context.trace_id().to_string();
    }
    // version-traceid-parentid-flags
    match traceparent.split('-').collect::<Vec<_>>().as_slice() {
        [_, trace, _, _] if trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()) => {
            trace.to_ascii_lowercase()
        }
        _ => String::new(),
    }
}
