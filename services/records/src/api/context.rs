//! What every handler needs from a request: who is asking (for the audit
//! trail) and the common parsing of ids and etags.

use medsec_platform::ApiError;
use opentelemetry::trace::TraceContextExt as _;
use tonic::Request;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use uuid::Uuid;

use crate::store::audit::Actor;

/// Metadata naming the caller until authentication exists.
pub(crate) const ACTOR_HEADER: &str = "x-medsec-actor";
pub(crate) const ROLE_HEADER: &str = "x-medsec-role";
pub(crate) const PURPOSE_HEADER: &str = "x-medsec-purpose";
const UNIDENTIFIED: &str = "unidentified";
const MAX_HEADER_CHARS: usize = 200;

/// The caller and purpose from request metadata, and the trace id.
pub(crate) fn actor<T>(request: &Request<T>) -> Actor {
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

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, &'static str> {
    if text.is_empty() {
        return Err("is required");
    }
    Uuid::parse_str(text).map_err(|_| "must be an id (a UUID)")
}

pub(crate) fn parse_id(field: &str, text: &str) -> Result<Uuid, ApiError> {
    parse_uuid(text).map_err(|why| ApiError::invalid(field, why))
}

/// The etag is the revision; empty means "no check".
pub(crate) fn parse_etag(etag: &str) -> Result<Option<i64>, &'static str> {
    if etag.is_empty() {
        return Ok(None);
    }
    etag.parse::<i64>()
        .map(Some)
        .map_err(|_| "is not an etag this API issued")
}
