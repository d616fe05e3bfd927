//! Who is asking: the principal the authorisation layer verified, with the
//! purpose of use, for the audit trail.

use medsec_platform::auth::Principal;
use opentelemetry::trace::TraceContextExt as _;
use tonic::Request;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::store::audit::Actor;

/// Who the audit trail names when a request somehow has no principal (the
/// layer puts one on every request that reaches a handler).
const UNIDENTIFIED: &str = "unidentified";

/// The verified caller, their roles and purpose, and the trace id.
pub(super) fn actor<T>(request: &Request<T>) -> Actor {
    let traceparent = request
        .metadata()
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let trace_id = trace_id(traceparent);
    match Principal::of(request) {
        Some(principal) => Actor {
            actor: principal.subject.clone(),
            role: principal.roles_text(),
            purpose: match (&principal.purpose, &principal.reason) {
                (Some(purpose), Some(reason)) => format!("{purpose}: {reason}"),
                (Some(purpose), None) => purpose.to_string(),
                (None, _) => String::new(),
            },
            trace_id,
        },
        None => Actor {
            actor: UNIDENTIFIED.to_owned(),
            role: String::new(),
            purpose: String::new(),
            trace_id,
        },
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
