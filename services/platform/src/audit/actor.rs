//! Who is acting, in which call: the verified principal with its roles and
//! purpose, the RPC, and the trace the call runs in. The authorisation
//! layer makes one for every call it admits and puts it in the request's
//! extensions; handlers take it with [`Actor::of`].

use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use uuid::Uuid;

use crate::auth::Principal;

/// The subject an event names when the caller proved no identity.
pub const ANONYMOUS: &str = "anonymous";
/// The subject an event names when a request somehow reached a handler
/// without the layer's actor (the layer gives every admitted call one).
const UNIDENTIFIED: &str = "unidentified";

/// Who did it, and why, and where: what every event of theirs records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's `sub` or the certificate's name; [`ANONYMOUS`] when the
    /// caller proved none.
    pub subject: String,
    /// The verified roles, comma-separated.
    pub roles: String,
    /// The purpose of use; empty when none was given (or not yet read).
    pub purpose: String,
    /// The reason given for break-glass access.
    pub reason: Option<String>,
    /// The service's short name (`records`, `scheduling`, `billing`).
    pub service: String,
    /// The RPC's name, e.g. `GetPatient`.
    pub method: String,
    /// The W3C trace id of the call; empty when it had none.
    pub trace_id: String,
}

impl Actor {
    /// The actor of `request`, as the authorisation layer put it in the
    /// request's extensions.
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        request
            .extensions()
            .get::<Self>()
            .cloned()
            .unwrap_or_else(|| Self {
                subject: UNIDENTIFIED.to_owned(),
                roles: String::new(),
                purpose: String::new(),
                reason: None,
                service: String::new(),
                method: String::new(),
                trace_id: String::new(),
            })
    }

    /// The caller of the RPC at `path` (`/package.Service/Method`):
    /// `principal` when it proved one, else [`ANONYMOUS`]. The trace id is
    /// the current span's when traces are exported, else the caller's
    /// `traceparent`.
    pub fn for_call(principal: Option<&Principal>, path: &str, headers: &http::HeaderMap) -> Self {
        let (service, method) = split_path(path);
        let traceparent = headers
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let (subject, roles, purpose, reason) = match principal {
            Some(principal) => (
                principal.subject.clone(),
                principal.roles_text(),
                principal
                    .purpose
                    .map(|purpose| purpose.as_str().to_owned())
                    .unwrap_or_default(),
                principal.reason.clone(),
            ),
            None => (ANONYMOUS.to_owned(), String::new(), String::new(), None),
        };
        Self {
            subject,
            roles,
            purpose,
            reason,
            service: short_service(service).to_owned(),
            method: method.to_owned(),
            trace_id: trace_id(traceparent),
        }
    }

    /// An actor of `service` and `method` for code that is not serving a
    /// call (a migration copying events written elsewhere).
    pub fn named(service: &str, method: &str, subject: &str) -> Self {
        Self {
            subject: subject.to_owned(),
            roles: String::new(),
            purpose: String::new(),
            reason: None,
            service: service.to_owned(),
            method: method.to_owned(),
            trace_id: String::new(),
        }
    }
}

/// The service and method of a gRPC path.
fn split_path(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", path))
}

/// `records` for `medsec.records.v1.RecordsService`; other services keep
/// their full name.
fn short_service(service: &str) -> &str {
    match service
        .strip_prefix("medsec.")
        .and_then(|rest| rest.split('.').next())
    {
        Some(name) if !name.is_empty() => name,
        _ => service,
    }
}

/// The trace this call runs in: the OpenTelemetry span's when tracing is
/// exported, else the caller's `traceparent` (`version-traceid-parentid-flags`).
fn trace_id(traceparent: &str) -> String {
    let span_context = tracing::Span::current()
        .context()
        .span()
        .span_context()
        .clone();
    if span_context.is_valid() {
        return span_context.trace_id().to_string();
    }
    match traceparent.split('-').collect::<Vec<_>>().as_slice() {
        [_, trace, _, _] if trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()) => {
            trace.to_ascii_lowercase()
        }
        _ => String::new(),
    }
}

/// What happened to the call an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The access happened (written in its transaction).
    Ok,
    /// The authorisation layer refused the call.
    Denied,
    /// The handler answered with an error; nothing it did was kept.
    Failed,
}

impl Outcome {
    pub const ALL: [Self; 3] = [Self::Ok, Self::Denied, Self::Failed];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

/// One access to record: which resource was touched, of which patient, and
/// for a search, the hash of its filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// e.g. `patients/0190…`, `appointments/0190…`.
    pub resource: String,
    pub patient_id: Option<Uuid>,
    /// SHA-256 (hex) of a search's filters.
    pub filter_hash: Option<String>,
}

impl Access {
    /// An access to `resource`, part of patient `patient_id`'s data.
    pub fn patient(resource: impl Into<String>, patient_id: Uuid) -> Self {
        Self::new(resource, Some(patient_id))
    }

    /// An access to `resource`, linked to no one patient (a proposal, a
    /// report, a search that found nothing).
    pub fn other(resource: impl Into<String>) -> Self {
        Self::new(resource, None)
    }

    /// An access to `resource`, of a patient when it names one.
    pub fn new(resource: impl Into<String>, patient_id: Option<Uuid>) -> Self {
        Self {
            resource: resource.into(),
            patient_id,
            filter_hash: None,
        }
    }

    /// The same access, made by a search with filters hashing to `hash`.
    pub fn filtered(mut self, hash: &str) -> Self {
        self.filter_hash = Some(hash.to_owned());
        self
    }
}

/// A record served or changed: what an access to it names.
pub trait Audited {
    fn access(&self) -> Access;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_names_the_service_shortly_and_the_method() {
        let actor = Actor::for_call(
            None,
            "/medsec.records.v1.RecordsService/GetPatient",
            &http::HeaderMap::new(),
        );
        assert_eq!(actor.service, "records");
        assert_eq!(actor.method, "GetPatient");
        assert_eq!(actor.subject, ANONYMOUS);
        let other = Actor::for_call(None, "/grpc.Other/Call", &http::HeaderMap::new());
        assert_eq!(other.service, "grpc.Other");
    }

    #[test]
    fn the_trace_id_comes_from_traceparent_without_exported_traces() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let actor = Actor::for_call(None, "/a.B/C", &headers);
        assert_eq!(actor.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        headers.insert("traceparent", "garbage".parse().unwrap());
        assert_eq!(Actor::for_call(None, "/a.B/C", &headers).trace_id, "");
    }

    #[test]
    fn outcomes_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(Outcome::parse("maybe"), None);
    }
}
