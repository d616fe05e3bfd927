//! Reading a request: ids, dates, instants, text, enums, etags, idempotency
//! keys and page tokens, each trimmed, parsed and checked, every bad field
//! collected, and the parsed values handed back together once all are good.
//!
//! ```
//! # use medsec_platform::request::Reader;
//! # fn demo(id: &str, day: &str, note: &str) -> Result<(), medsec_platform::ApiError> {
//! let mut r = Reader::new();
//! let id = r.id("id", id);
//! let day = r.date("day", day);
//! let note = r.optional_text("note", note, 2000);
//! let (id, day) = r.finish((id, day))?;
//! # let _ = (id, day, note); Ok(()) }
//! ```
//!
//! A reader of a required value returns `Option<T>`: `None` exactly when it
//! recorded a violation. [`Reader::finish`] fails with `INVALID_ARGUMENT`
//! naming every bad field, or hands back every required value at once, so no
//! handler unwraps after a check. A reader of an optional value returns the
//! value itself (`Option<T>` meaning absent, or an empty `String`); when it
//! was bad, `finish` fails, so the placeholder is never used.

use std::collections::HashSet;
use std::fmt::Display;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::error::{ApiError, FieldViolations};
use crate::idempotency::{MAX_REQUEST_ID_LEN, RequestKey};
use crate::pagination::PageRequest;
use crate::stored::StoredEnum;
use crate::text;
use crate::time::{
    EARLIEST_CIVIL_DATE, LATEST_CIVIL_DATE, from_timestamp, parse_civil_date, today_in_london,
};

/// What a client is told about a bad value: one message per kind of bad
/// value, the same in every service.
pub mod message {
    /// A required field is empty or missing.
    pub const REQUIRED: &str = "is required";
    /// An id that is not a UUID.
    pub const NOT_AN_ID: &str = "must be an id (a UUID)";
    /// A civil date not in its one wire form.
    pub const NOT_A_DATE: &str = "must be a date in the form YYYY-MM-DD";
    /// A civil date outside [`EARLIEST_CIVIL_DATE`, `LATEST_CIVIL_DATE`].
    ///
    /// [`EARLIEST_CIVIL_DATE`]: crate::time::EARLIEST_CIVIL_DATE
    /// [`LATEST_CIVIL_DATE`]: crate::time::LATEST_CIVIL_DATE
    pub const DATE_OUT_OF_RANGE: &str = "must be between 1880-01-01 and 2199-12-31";
    /// A `Timestamp` outside the range of instants.
    pub const NOT_AN_INSTANT: &str = "is not a valid instant";
    /// An etag this API did not issue.
    pub const NOT_AN_ETAG: &str = "is not an etag this API issued";
    /// An enum number this version does not know.
    pub const UNKNOWN_VALUE: &str = "is not a known value";
    /// A page token this API did not issue.
    pub const NOT_A_PAGE_TOKEN: &str = "is not a token this API issued";
    /// A `request_id` that is too long.
    pub const REQUEST_ID_TOO_LONG: &str = "must be at most 128 characters";
    /// A `request_id` with spaces or control characters.
    pub const REQUEST_ID_NOT_A_TOKEN: &str = "must not contain spaces or control characters";
    /// The same value twice in a list that names each thing once.
    pub const REPEATED: &str = "is repeated";
}

/// Most paths an `update_mask` may name: every updatable field of a
/// resource fits with room to spare.
pub const MAX_MASK_PATHS: usize = 32;
/// Longest path an `update_mask` may name.
pub const MAX_MASK_PATH_CHARS: usize = 100;

/// Field-by-field reader of one request. See the [module](self) docs.
#[derive(Debug, Default)]
pub struct Reader {
    violations: FieldViolations,
}

impl Reader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is bad for the reason `why`.
    pub fn add(&mut self, field: impl Into<String>, why: impl Into<String>) {
        self.violations.add(field, why);
    }

    /// The value of `result`, or its error recorded under `field`.
    pub fn check<T, E: Display>(
        &mut self,
        field: impl Into<String>,
        result: Result<T, E>,
    ) -> Option<T> {
        self.violations.check(field, result)
    }

    /// The value of a parse that reports several fields at once.
    pub fn merge<T>(&mut self, result: Result<T, FieldViolations>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violations) => {
                self.violations.extend(violations);
                None
            }
        }
    }

    /// Whether anything was bad so far.
    pub fn has_violations(&self) -> bool {
        !self.violations.is_empty()
    }

    /// A required sub-message. When it is missing there is nothing more to
    /// read, so the request fails at once with every violation so far.
    pub fn message<'m, M>(&mut self, field: &str, value: Option<&'m M>) -> Result<&'m M, ApiError> {
        match value {
            Some(value) => Ok(value),
            None => {
                self.add(field, message::REQUIRED);
                Err(ApiError::InvalidArgument(std::mem::take(
                    &mut self.violations,
                )))
            }
        }
    }

    /// A required id.
    pub fn id(&mut self, field: &str, text: &str) -> Option<Uuid> {
        if text.trim().is_empty() {
            self.add(field, message::REQUIRED);
            return None;
        }
        self.check(field, parse_uuid(text))
    }

    /// An optional id: empty is `None`.
    pub fn optional_id(&mut self, field: &str, text: &str) -> Option<Uuid> {
        if text.trim().is_empty() {
            return None;
        }
        self.id(field, text)
    }

    /// A required civil date, `YYYY-MM-DD`, between 1880 and 2199.
    pub fn date(&mut self, field: &str, text: &str) -> Option<NaiveDate> {
        if text.trim().is_empty() {
            self.add(field, message::REQUIRED);
            return None;
        }
        let date = parse_civil_date(text.trim()).ok_or(message::NOT_A_DATE);
        let date = date.and_then(|date| {
            (EARLIEST_CIVIL_DATE..=LATEST_CIVIL_DATE)
                .contains(&date)
                .then_some(date)
                .ok_or(message::DATE_OUT_OF_RANGE)
        });
        self.check(field, date)
    }

    /// An optional civil date: empty is `None`.
    pub fn optional_date(&mut self, field: &str, text: &str) -> Option<NaiveDate> {
        if text.trim().is_empty() {
            return None;
        }
        self.date(field, text)
    }

    /// The request's "today": the date in `field`, or today in Europe/London
    /// when it is empty.
    pub fn as_of(&mut self, field: &str, text: &str) -> NaiveDate {
        self.optional_date(field, text)
            .unwrap_or_else(today_in_london)
    }

    /// A required instant.
    pub fn instant(
        &mut self,
        field: &str,
        timestamp: Option<&prost_types::Timestamp>,
    ) -> Option<DateTime<Utc>> {
        let Some(timestamp) = timestamp else {
            self.add(field, message::REQUIRED);
            return None;
        };
        self.check(
            field,
            from_timestamp(timestamp).ok_or(message::NOT_AN_INSTANT),
        )
    }

    /// An optional instant: unset is `None`.
    pub fn optional_instant(
        &mut self,
        field: &str,
        timestamp: Option<&prost_types::Timestamp>,
    ) -> Option<DateTime<Utc>> {
        timestamp?;
        self.instant(field, timestamp)
    }

    /// Required single-line text (a name, a code), trimmed, at most `max_chars`.
    pub fn required_line(&mut self, field: &str, value: &str, max_chars: usize) -> Option<String> {
        self.check(field, text::required_line(value, max_chars))
    }

    /// Optional single-line text, trimmed; empty when absent.
    pub fn optional_line(&mut self, field: &str, value: &str, max_chars: usize) -> String {
        self.check(field, text::optional_line(value, max_chars))
            .unwrap_or_default()
    }

    /// An optional text filter (a name, a prefix), trimmed: `None` when
    /// empty. Like every text it refuses control characters (a NUL byte, which
    /// PostgreSQL cannot store, included), so a filter reaches no query
    /// unchecked.
    pub fn filter(&mut self, field: &str, value: &str, max_chars: usize) -> Option<String> {
        Some(self.optional_line(field, value, max_chars)).filter(|text| !text.is_empty())
    }

    /// Required free text (newlines and tabs allowed), trimmed.
    pub fn required_text(&mut self, field: &str, value: &str, max_chars: usize) -> Option<String> {
        self.check(field, text::required(value, max_chars))
    }

    /// Optional free text, trimmed; empty when absent.
    pub fn optional_text(&mut self, field: &str, value: &str, max_chars: usize) -> String {
        self.check(field, text::optional(value, max_chars))
            .unwrap_or_default()
    }

    /// A required proto enum value (UNSPECIFIED is refused).
    pub fn enumerated<E: StoredEnum>(&mut self, field: &str, value: i32) -> Option<E> {
        self.check(field, E::from_proto(value))
    }

    /// An optional proto enum value (a filter): UNSPECIFIED is `None`.
    pub fn optional_enum<E: StoredEnum>(&mut self, field: &str, value: i32) -> Option<E> {
        if value == 0 {
            return None;
        }
        self.enumerated(field, value)
    }

    /// Whether a repeated field holds at most `max_items`; records a
    /// violation otherwise. Check before any per-item work, so a request with
    /// a million items costs no more than one with too many by one.
    pub fn at_most<I>(&mut self, field: &str, items: &[I], max_items: usize) -> bool {
        if items.len() <= max_items {
            return true;
        }
        self.add(field, format!("must have at most {max_items} items"));
        false
    }

    /// Each item of a repeated field of at most `max_items`, read by `read`
    /// under its own name (`field[i]`), repeats dropped. Hashing keeps this
    /// linear; an overlong list is refused before any item is read.
    pub fn each<I, T: Eq + std::hash::Hash + Clone>(
        &mut self,
        field: &str,
        items: &[I],
        max_items: usize,
        mut read: impl FnMut(&mut Self, &str, &I) -> Option<T>,
    ) -> Vec<T> {
        if !self.at_most(field, items, max_items) {
            return Vec::new();
        }
        let mut seen = HashSet::with_capacity(items.len());
        let mut values = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(value) = read(self, &format!("{field}[{i}]"), item)
                && seen.insert(value.clone())
            {
                values.push(value);
            }
        }
        values
    }

    /// The paths of an update's `update_mask` (none when it is unset), or
    /// `None` when there are more than [`MAX_MASK_PATHS`] or one is longer
    /// than [`MAX_MASK_PATH_CHARS`]: refused under `update_mask` before any
    /// path is looked at, so an unknown path echoed back is short.
    pub fn mask_paths<'m>(
        &mut self,
        mask: Option<&'m prost_types::FieldMask>,
    ) -> Option<&'m [String]> {
        let paths = mask.map(|mask| mask.paths.as_slice()).unwrap_or_default();
        if paths.len() > MAX_MASK_PATHS {
            self.add(
                "update_mask",
                format!("must have at most {MAX_MASK_PATHS} paths"),
            );
            return None;
        }
        if paths
            .iter()
            .any(|path| path.chars().count() > MAX_MASK_PATH_CHARS)
        {
            self.add(
                "update_mask",
                format!("must name paths of at most {MAX_MASK_PATH_CHARS} characters"),
            );
            return None;
        }
        Some(paths)
    }

    /// An etag: the revision the client read, or `None` (empty) for "no check".
    pub fn etag(&mut self, field: &str, text: &str) -> Option<i64> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        self.check(field, text.parse::<i64>().map_err(|_| message::NOT_AN_ETAG))
    }

    /// The idempotency key of a create: `None` when `request_id` is empty.
    /// The request with its id blanked (by `blank_id`) is "the same request".
    pub fn request_key<M: prost::Message + Clone>(
        &mut self,
        request_id: &str,
        request: &M,
        blank_id: impl FnOnce(&mut M),
    ) -> Option<RequestKey> {
        if request_id.is_empty() {
            return None;
        }
        self.check("request_id", check_request_id(request_id))?;
        RequestKey::of(request_id, request, blank_id)
    }

    /// The idempotency key of an RPC that must not run twice (it moves money):
    /// a `request_id` is required, and `why` tells the client what a retry
    /// without one would do.
    pub fn required_request_key<M: prost::Message + Clone>(
        &mut self,
        request_id: &str,
        request: &M,
        blank_id: impl FnOnce(&mut M),
        why: &str,
    ) -> Option<RequestKey> {
        if request_id.is_empty() {
            self.add("request_id", format!("{}: {why}", message::REQUIRED));
            return None;
        }
        self.request_key(request_id, request, blank_id)
    }

    /// The page a List request asks for; `filters` names every filter value
    /// (see [`PageRequest`]).
    pub fn page(&mut self, page_size: i32, page_token: &str, filters: &str) -> Option<PageRequest> {
        match PageRequest::read(page_size, page_token, filters) {
            Ok(page) => Some(page),
            Err((field, why)) => {
                self.add(field, why);
                None
            }
        }
    }

    /// Finishes the reading of a List request: the page it asks for, and
    /// every bad field named at once. A page token is good only for the same
    /// `list` with the same `filters` (their `Debug` form names every value).
    pub fn finish_page(
        mut self,
        list: &str,
        filters: &impl std::fmt::Debug,
        page_size: i32,
        page_token: &str,
    ) -> Result<PageRequest, ApiError> {
        let page = self.page(page_size, page_token, &format!("{list};{filters:?}"));
        self.finish(page)
    }

    /// Fails with every bad field, or hands back every required value read.
    pub fn finish<V: Parsed>(self, values: V) -> Result<V::Output, ApiError> {
        self.violations.into_result()?;
        values.all().ok_or_else(|| {
            ApiError::internal("a required request field was read without a value or a violation")
        })
    }
}

/// How long `request` may run: its client's deadline (`grpc-timeout`), or
/// the server's request timeout when that is sooner or the client set none.
pub fn time_left<T>(
    request: &tonic::Request<T>,
    server_timeout: std::time::Duration,
) -> std::time::Duration {
    request
        .metadata()
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map_or(server_timeout, |client| client.min(server_timeout))
}

/// A `grpc-timeout` header: at most eight digits and a unit.
fn parse_grpc_timeout(text: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The one id a request names (a Get, a mark): `INVALID_ARGUMENT` naming
/// `field` when it is missing or not an id.
pub fn read_id(field: &str, text: &str) -> Result<Uuid, ApiError> {
    let mut r = Reader::new();
    let id = r.id(field, text);
    r.finish(id)
}

/// A UUID id in its text form.
pub fn parse_uuid(text: &str) -> Result<Uuid, &'static str> {
    Uuid::parse_str(text.trim()).map_err(|_| message::NOT_AN_ID)
}

fn check_request_id(request_id: &str) -> Result<(), &'static str> {
    if request_id.len() > MAX_REQUEST_ID_LEN {
        return Err(message::REQUEST_ID_TOO_LONG);
    }
    if request_id
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(message::REQUEST_ID_NOT_A_TOKEN);
    }
    Ok(())
}

/// Values read as `Option`s, all present once the reader found nothing bad:
/// `()`, one `Option<T>`, or a tuple of them.
pub trait Parsed {
    type Output;
    /// Every value, or `None` if any is missing.
    fn all(self) -> Option<Self::Output>;
}

impl Parsed for () {
    type Output = ();
    fn all(self) -> Option<()> {
        Some(())
    }
}

impl<T> Parsed for Option<T> {
    type Output = T;
    fn all(self) -> Option<T> {
        self
    }
}

macro_rules! parsed_tuple {
    ($($value:ident),+) => {
        impl<$($value),+> Parsed for ($(Option<$value>,)+) {
            type Output = ($($value,)+);
            #[allow(non_snake_case)]
            fn all(self) -> Option<Self::Output> {
                let ($($value,)+) = self;
                Some(($($value?,)+))
            }
        }
    };
}

parsed_tuple!(A);
parsed_tuple!(A, B);
parsed_tuple!(A, B, C);
parsed_tuple!(A, B, C, D);
parsed_tuple!(A, B, C, D, E);
parsed_tuple!(A, B, C, D, E, F);
parsed_tuple!(A, B, C, D, E, F, G);
parsed_tuple!(A, B, C, D, E, F, G, H);
parsed_tuple!(A, B, C, D, E, F, G, H, I);
parsed_tuple!(A, B, C, D, E, F, G, H, I, J);
parsed_tuple!(A, B, C, D, E, F, G, H, I, J, K);
parsed_tuple!(A, B, C, D, E, F, G, H, I, J, K, L);

#[cfg(test)]
mod tests;
