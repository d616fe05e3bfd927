//! The error contract of every medsec API, mapped once to gRPC status codes
//! with `google.rpc` error details.

use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Everything a medsec handler can answer instead of a response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: every offending field with what is wrong with it.
    #[error("invalid argument: {0}")]
    InvalidArgument(FieldViolations),

    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },

    /// A uniqueness rule would be broken; names the resource already holding
    /// the value.
    #[error("{message}")]
    AlreadyExists {
        message: String,
        resource: &'static str,
        existing_id: String,
    },

    /// The resource is in a state that does not allow the operation.
    #[error("{message}")]
    FailedPrecondition {
        message: String,
        /// What kind of precondition failed.
        kind: PreconditionKind,
        /// The resource whose state it is, e.g. `patients/…`.
        subject: String,
    },

    /// The caller's roles do not allow this use of the RPC (checked by a
    /// handler where the policy table cannot see the request's body).
    #[error("{0}")]
    PermissionDenied(String),

    /// A concurrent change got there first (stale etag, a lost race, a
    /// serialisation failure or deadlock): re-read and retry.
    #[error("{0}")]
    Aborted(String),

    /// The request asks for more than this server gives (a run too large,
    /// every optimiser busy): retry later or ask for less.
    #[error("{0}")]
    ResourceExhausted(String),

    /// A passing fault (the database is busy, unreachable or restarting, or
    /// no pooled connection came free in time): retry after a pause.
    #[error("{0}")]
    Unavailable(String),

    /// Anything unexpected. Logged once when mapped to a status; the client
    /// sees only that an internal error happened.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// One bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = FieldViolations::default();
        violations.add(field, description);
        Self::InvalidArgument(violations)
    }

    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            resource,
            id: id.into(),
        }
    }

    /// The resource `subject` is in state `state`, which does not allow `action`.
    pub fn wrong_state(subject: impl Into<String>, state: &str, action: &str) -> Self {
        let subject = subject.into();
        Self::precondition(
            PreconditionKind::State,
            subject.clone(),
            format!("{subject} is {state}: cannot {action}"),
        )
    }

    /// A precondition of `kind` on `subject` failed, as `message` explains.
    pub fn precondition(
        kind: PreconditionKind,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::FailedPrecondition {
            message: message.into(),
            kind,
            subject: subject.into(),
        }
    }

    /// A concurrent change won a race this request lost; retrying is safe.
    pub fn lost_race() -> Self {
        Self::Aborted("a concurrent change got in the way; retry".to_owned())
    }

    pub fn stale_etag(subject: impl fmt::Display) -> Self {
        Self::Aborted(format!(
            "{subject} was changed since the etag was read; get it again and retry"
        ))
    }

    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(error.into())
    }
}

/// What kind of precondition failed: the `type` of the
/// `google.rpc.PreconditionFailure` violation a client receives. The table in
/// `proto/README.md` lists them for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreconditionKind {
    /// The resource's state forbids the operation (an archived patient, an
    /// issued invoice, a cancelled appointment, a run already in progress).
    State,
    /// The change would overlap what may not overlap (a clinician's
    /// sessions or absences, a patient's appointments, price-list versions).
    Overlap,
    /// The slot does not fit what is booked into it (kind, earliest date,
    /// clinician, a clinician away).
    Fit,
    /// Nobody on duty can take the work (enquiry routing).
    Rota,
    /// A budget would be overspent without a recorded override.
    Budget,
}

impl PreconditionKind {
    /// The wire spelling, as in `proto/README.md`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::State => "STATE",
            Self::Overlap => "OVERLAP",
            Self::Fit => "FIT",
            Self::Rota => "ROTA",
            Self::Budget => "BUDGET",
        }
    }

    /// The `google.rpc.ErrorInfo` reason of a failed precondition of this kind.
    pub fn reason(self) -> &'static str {
        match self {
            Self::State => "WRONG_STATE",
            Self::Overlap => "OVERLAPS",
            Self::Fit => "DOES_NOT_FIT",
            Self::Rota => "NOBODY_ON_DUTY",
            Self::Budget => "OVER_BUDGET",
        }
    }
}

impl fmt::Display for PreconditionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Database errors reach clients by what a client can do about them: a
/// retryable fault is `ABORTED` (retry now) or `UNAVAILABLE` (retry after a
/// pause), never `INTERNAL`. See [`crate::db::classify`].
impl From<sea_orm::DbErr> for ApiError {
    fn from(error: sea_orm::DbErr) -> Self {
        use crate::db::DbFault;
        match crate::db::classify(&error) {
            DbFault::Conflict => {
                tracing::info!(error = %ErrorChain(&error), "database conflict: client told to retry");
                Self::lost_race()
            }
            DbFault::Unavailable => {
                tracing::warn!(error = %ErrorChain(&error), "database unavailable: client told to retry");
                Self::Unavailable("the database is unavailable for the moment; retry".to_owned())
            }
            DbFault::Other => Self::internal(error),
        }
    }
}

/// The `domain` of errors raised outside any one service (the server's own
/// layers, calls with no service path).
pub const SUITE_DOMAIN: &str = "medsec";

/// The `google.rpc.ErrorInfo` domain naming the service of a gRPC service
/// name: `medsec.records.v1.RecordsService` → `records.medsec`.
pub fn domain_of(grpc_service: &str) -> String {
    match grpc_service.strip_prefix("medsec.") {
        Some(rest) => match rest.split_once('.') {
            Some((service, _)) if !service.is_empty() => format!("{service}.{SUITE_DOMAIN}"),
            _ => SUITE_DOMAIN.to_owned(),
        },
        None => SUITE_DOMAIN.to_owned(),
    }
}

/// The `google.rpc.ErrorInfo` reason of a status that carries no reason of
/// its own (raised by tonic or the server's layers), from its code.
pub fn reason_of(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_REQUEST",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "ROLE_NOT_ALLOWED",
        Code::ResourceExhausted => "OVERLOADED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "CONCURRENT_CHANGE",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "NOT_IMPLEMENTED",
        Code::Internal => "INTERNAL_ERROR",
        Code::Unavailable => "TEMPORARILY_UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "NOT_AUTHENTICATED",
    }
}

/// How long a client should wait before retrying a passing fault.
const RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

impl ApiError {
    /// The `google.rpc.ErrorInfo` reason (AIP-193): what went wrong, in
    /// UPPER_SNAKE_CASE, stable for clients to match on.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_FIELDS",
            Self::NotFound { .. } => "RESOURCE_NOT_FOUND",
            Self::AlreadyExists { .. } => "RESOURCE_ALREADY_EXISTS",
            Self::FailedPrecondition { kind, .. } => kind.reason(),
            Self::PermissionDenied(_) => "ROLE_NOT_ALLOWED",
            Self::Aborted(_) => "CONCURRENT_CHANGE",
            Self::ResourceExhausted(_) => "CAPACITY_EXCEEDED",
            Self::Unavailable(_) => "TEMPORARILY_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The gRPC status a client receives, with `google.rpc.ErrorInfo` (this
    /// error's reason, `domain` naming the service, and metadata naming the
    /// resource or fields concerned) beside the detail of its kind.
    pub fn into_status(self, domain: &str) -> Status {
        let reason = self.reason();
        let mut metadata = std::collections::HashMap::new();
        let mut details = ErrorDetails::new();
        let (code, message) = match self {
            Self::InvalidArgument(violations) => {
                let fields: Vec<&str> = violations.fields().collect();
                metadata.insert("fields".to_owned(), fields.join(","));
                let message = violations.to_string();
                details.set_bad_request(violations.into_details());
                (Code::InvalidArgument, message)
            }
            Self::NotFound { resource, id } => {
                details.set_resource_info(resource, &id, "", "not found");
                metadata.insert("resource".to_owned(), resource.to_owned());
                let message = format!("{resource} {id} not found");
                metadata.insert("id".to_owned(), id);
                (Code::NotFound, message)
            }
            Self::AlreadyExists {
                message,
                resource,
                existing_id,
            } => {
                details.set_resource_info(resource, &existing_id, "", message.clone());
                metadata.insert("resource".to_owned(), resource.to_owned());
                metadata.insert("existing_id".to_owned(), existing_id);
                (Code::AlreadyExists, message)
            }
            Self::FailedPrecondition {
                message,
                kind,
                subject,
            } => {
                details.add_precondition_failure_violation(kind.as_str(), &subject, &message);
                metadata.insert("kind".to_owned(), kind.as_str().to_owned());
                metadata.insert("subject".to_owned(), subject);
                (Code::FailedPrecondition, message)
            }
            Self::PermissionDenied(message) => (Code::PermissionDenied, message),
            Self::Aborted(message) => {
                details.set_retry_info(Some(std::time::Duration::ZERO));
                (Code::Aborted, message)
            }
            Self::ResourceExhausted(message) => (Code::ResourceExhausted, message),
            Self::Unavailable(message) => {
                details.set_retry_info(Some(RETRY_DELAY));
                (Code::Unavailable, message)
            }
            Self::Internal(source) => {
                tracing::error!(error = %ErrorChain(source.as_ref()), "internal error");
                (Code::Internal, "internal error".to_owned())
            }
        };
        details.set_error_info(reason, domain, metadata);
        Status::with_error_details(code, message, details)
    }
}

/// Without a service to name, the domain is the suite's.
impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        error.into_status(SUITE_DOMAIN)
    }
}

/// Displays an error with its causes, `outer: inner: root`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// Most violations reported for one request; the rest are counted, so a
/// request with a million bad items costs no more to answer than one with
/// fifty, and the answer fits a client's metadata limit.
pub const MAX_VIOLATIONS: usize = 50;
/// Longest field name or description kept (characters).
const MAX_VIOLATION_CHARS: usize = 200;

/// Bad fields collected while validating one request, so that a client learns
/// every problem at once (the first [`MAX_VIOLATIONS`] of them, and how many
/// more there were).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldViolations {
    violations: Vec<(String, String)>,
    more: usize,
}

impl FieldViolations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.violations.len() >= MAX_VIOLATIONS {
            self.more += 1;
            return;
        }
        self.violations
            .push((bounded(field.into()), bounded(description.into())));
    }

    /// Records the error of `result` under `field`, and yields its value.
    pub fn check<T, E: fmt::Display>(
        &mut self,
        field: impl Into<String>,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.violations.iter().map(|(field, _)| field.as_str())
    }

    /// Each bad field with what is wrong with it (the first
    /// [`MAX_VIOLATIONS`]).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.violations
            .iter()
            .map(|(field, description)| (field.as_str(), description.as_str()))
    }

    /// Adds every violation of `other`.
    pub fn extend(&mut self, other: Self) {
        for (field, description) in other.violations {
            self.add(field, description);
        }
        self.more += other.more;
    }

    /// `Ok` when nothing was wrong.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self))
        }
    }

    fn into_details(self) -> Vec<FieldViolation> {
        let more = self.more_line();
        self.violations
            .into_iter()
            .map(|(field, description)| FieldViolation::new(field, description))
            .chain(more.map(|more| FieldViolation::new("…", more)))
            .collect()
    }

    fn more_line(&self) -> Option<String> {
        (self.more > 0).then(|| format!("and {} more", self.more))
    }
}

/// At most [`MAX_VIOLATION_CHARS`] characters, so no bad value a client sent
/// comes back at length.
fn bounded(text: String) -> String {
    if text.chars().count() <= MAX_VIOLATION_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_VIOLATION_CHARS - 1).collect();
    cut.push('…');
    cut
}

impl fmt::Display for FieldViolations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (field, description)) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{field}: {description}")?;
        }
        if let Some(more) = self.more_line() {
            write!(f, "; …{more}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_field() {
        let mut violations = FieldViolations::default();
        violations.add("patient.nhs_number", "fails its check digit");
        violations.add("patient.birth_date", "is in the future");
        let status = Status::from(violations.into_result().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("patient.nhs_number"));
        let bad_request = status.get_details_bad_request().unwrap();
        let fields: Vec<_> = bad_request
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["patient.nhs_number", "patient.birth_date"]);
    }

    #[test]
    fn violations_stop_at_fifty_and_count_the_rest() {
        let mut violations = FieldViolations::default();
        for i in 0..1_000_000 {
            violations.add(format!("items[{i}]"), "is required");
        }
        violations.add("x".repeat(1000), "y".repeat(1000));
        let status = Status::from(violations.into_result().unwrap_err());
        let details = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(details.len(), MAX_VIOLATIONS + 1);
        assert_eq!(details[MAX_VIOLATIONS].description, "and 999951 more");
        assert!(status.message().ends_with("…and 999951 more"));
        assert!(
            status.message().len() < 8 * 1024,
            "fits a client's metadata limit"
        );
    }

    #[test]
    fn internal_errors_leak_nothing() {
        let status = Status::from(ApiError::internal("connection refused to 10.0.0.7"));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn wrong_state_names_the_state() {
        let status = Status::from(ApiError::wrong_state("patients/x", "archived", "archive"));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("archived"));
        let failure = status.get_details_precondition_failure().unwrap();
        assert_eq!(failure.violations[0].r#type, "STATE");
    }
}
