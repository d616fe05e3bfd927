//! Reading request fields into checked values, collecting every bad field.

use chrono::{DateTime, NaiveDate, Utc};
use medsec_platform::time::{from_timestamp, parse_civil_date, today_in_london};
use medsec_platform::{ApiError, FieldViolations, idempotency};
use uuid::Uuid;

use crate::store::RequestKey;

/// Field-by-field reader of one request.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    pub(crate) violations: FieldViolations,
}

impl Reader {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn check<T>(
        &mut self,
        field: &str,
        result: Result<T, impl std::fmt::Display>,
    ) -> Option<T> {
        self.violations.check(field, result)
    }

    pub(crate) fn add(&mut self, field: &str, why: impl Into<String>) {
        self.violations.add(field, why);
    }

    /// A required id.
    pub(crate) fn id(&mut self, field: &str, text: &str) -> Option<Uuid> {
        if text.is_empty() {
            self.add(field, "is required");
            return None;
        }
        self.check(
            field,
            Uuid::parse_str(text).map_err(|_| "must be an id (a UUID)"),
        )
    }

    /// An optional id: empty is `None`.
    pub(crate) fn optional_id(&mut self, field: &str, text: &str) -> Option<Uuid> {
        if text.is_empty() {
            return None;
        }
        self.id(field, text)
    }

    pub(crate) fn instant(
        &mut self,
        field: &str,
        timestamp: Option<&prost_types::Timestamp>,
    ) -> Option<DateTime<Utc>> {
        let Some(timestamp) = timestamp else {
            self.add(field, "is required");
            return None;
        };
        self.check(
            field,
            from_timestamp(timestamp).ok_or("is not a valid instant"),
        )
    }

    pub(crate) fn optional_instant(
        &mut self,
        field: &str,
        timestamp: Option<&prost_types::Timestamp>,
    ) -> Option<DateTime<Utc>> {
        timestamp?;
        self.instant(field, timestamp)
    }

    pub(crate) fn date(&mut self, field: &str, text: &str) -> Option<NaiveDate> {
        if text.is_empty() {
            self.add(field, "is required");
            return None;
        }
        self.check(
            field,
            parse_civil_date(text).ok_or("must be a date in the form YYYY-MM-DD"),
        )
    }

    pub(crate) fn optional_date(&mut self, field: &str, text: &str) -> Option<NaiveDate> {
        if text.is_empty() {
            return None;
        }
        self.date(field, text)
    }

    /// The request's "today": `as_of`, or today in Europe/London.
    pub(crate) fn as_of(&mut self, field: &str, text: &str) -> NaiveDate {
        self.optional_date(field, text)
            .unwrap_or_else(today_in_london)
    }

    pub(crate) fn request_id(&mut self, request_id: &str) {
        self.check("request_id", idempotency::validate_request_id(request_id));
    }

    /// `Ok` when every field was good.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        self.violations.into_result()
    }
}

/// The idempotency key of a create: the request minus its `request_id`
/// identifies "the same request".
pub(crate) fn request_key(request_id: &str, request_without_key: Vec<u8>) -> Option<RequestKey> {
    (!request_id.is_empty()).then(|| RequestKey {
        request_id: request_id.to_owned(),
        request: request_without_key,
    })
}

/// A value read as `Some` whenever its reader recorded no violation; used
/// after `finish()` succeeded.
pub(crate) fn present<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::invalid(field, "is required"))
}
