//! Page sizes, opaque page tokens and keyset pages for every List RPC: the
//! one pagination path (read the request with
//! [`Reader::page`](crate::request::Reader::page), restrict the query with
//! [`PageRequest::by_id`] or [`PageRequest::by_then_id`], answer with
//! [`PageRequest::tail`]).
//!
//! A token carries the sort key of the last item served and a fingerprint of
//! the request's filters: it resumes exactly after that item (keyset
//! pagination, so pages never skip or repeat while rows are added), and a
//! token presented with other filters is refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter as _, QueryOrder as _, QuerySelect as _,
    Select,
};

use crate::error::ApiError;
use crate::request::message::NOT_A_PAGE_TOKEN;

/// Page size when the request names none.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Largest page served; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// A validated page request: how many items, and after which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u64,
    /// The sort key of the last item of the previous page.
    pub after: Option<String>,
    filter_fingerprint: String,
    /// SHA-256 (hex) of the filters: what the audit trail records of a
    /// search.
    filter_hash: String,
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Last key served.
    k: String,
    /// Fingerprint of the filters the token belongs to.
    f: String,
}

impl PageRequest {
    /// Validates `page_size` and `page_token` of a List request whose filters
    /// are described by `filters` (any stable text naming every filter value).
    pub fn parse(page_size: i32, page_token: &str, filters: &str) -> Result<Self, ApiError> {
        Self::read(page_size, page_token, filters)
            .map_err(|(field, why)| ApiError::invalid(field, why))
    }

    /// As [`PageRequest::parse`], with the bad field and why; for
    /// [`Reader::page`](crate::request::Reader::page).
    pub(crate) fn read(
        page_size: i32,
        page_token: &str,
        filters: &str,
    ) -> Result<Self, (&'static str, &'static str)> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(("page_size", "must not be negative")),
            n => u64::from(n.unsigned_abs()).min(MAX_PAGE_SIZE),
        };
        let digest = Sha256::digest(filters.as_bytes());
        let filter_fingerprint = URL_SAFE_NO_PAD.encode(&digest[..12]);
        let filter_hash = crate::audit::hex(&digest);
        let after = if page_token.is_empty() {
            None
        } else {
            let token = decode(page_token).ok_or(("page_token", NOT_A_PAGE_TOKEN))?;
            if token.f != filter_fingerprint {
                return Err(("page_token", "belongs to a request with other filters"));
            }
            Some(token.k)
        };
        Ok(Self {
            size,
            after,
            filter_fingerprint,
            filter_hash,
        })
    }

    /// Restricts `query` to this page of rows ordered by the UUID `id`.
    pub fn by_id<E, C>(&self, query: Select<E>, id: C) -> Result<Select<E>, ApiError>
    where
        E: EntityTrait,
        C: ColumnTrait,
    {
        let query = match self.after.as_deref() {
            Some(after) => query.filter(id.gt(parse_id(after)?)),
            None => query,
        };
        Ok(query.order_by_asc(id).limit(self.fetch_limit()))
    }

    /// Restricts `query` to this page of rows ordered by the text `key`
    /// (unique), such as a code.
    pub fn by_text<E, C>(&self, query: Select<E>, key: C) -> Select<E>
    where
        E: EntityTrait,
        C: ColumnTrait,
    {
        let query = match self.after.as_deref() {
            Some(after) => query.filter(key.gt(after)),
            None => query,
        };
        query.order_by_asc(key).limit(self.fetch_limit())
    }

    /// Restricts `query` to this page of rows ordered by `sort` (a start
    /// instant, a dispatch time), then by the UUID `id` among equals.
    pub fn by_then_id<E, S, C, V>(
        &self,
        query: Select<E>,
        sort: S,
        id: C,
    ) -> Result<Select<E>, ApiError>
    where
        E: EntityTrait,
        S: ColumnTrait,
        C: ColumnTrait,
        V: SortKey,
    {
        let query = match self.after.as_deref() {
            Some(after) => {
                let (at, last) = after.split_once('/').ok_or_else(bad_token)?;
                let at = V::decode(at).ok_or_else(bad_token)?;
                let last = parse_id(last)?;
                query.filter(
                    Condition::any()
                        .add(sort.gt(at.clone()))
                        .add(Condition::all().add(sort.eq(at)).add(id.gt(last))),
                )
            }
            None => query,
        };
        Ok(query
            .order_by_asc(sort)
            .order_by_asc(id)
            .limit(self.fetch_limit()))
    }

    /// SHA-256 (hex) of the request's filters, as the audit trail records
    /// a search.
    pub fn filter_hash(&self) -> &str {
        &self.filter_hash
    }

    /// How many rows to fetch: one more than the page, to learn whether
    /// another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// How many of `fetched` rows (fetched with `fetch_limit`) are served.
    pub fn served(&self, fetched: usize) -> usize {
        fetched.min(usize::try_from(self.size).unwrap_or(usize::MAX))
    }

    /// Trims `items` (fetched with `fetch_limit`) to the page and returns the
    /// next page's token, empty on the last page.
    pub fn finish<T>(&self, items: &mut Vec<T>, key_of: impl Fn(&T) -> String) -> String {
        let page_len = self.served(usize::MAX);
        if items.len() <= page_len {
            return String::new();
        }
        items.truncate(page_len);
        items.last().map_or_else(String::new, |last| {
            encode(&Token {
                k: key_of(last),
                f: self.filter_fingerprint.clone(),
            })
        })
    }

    /// The tail of every List handler: the page's rows converted by
    /// `to_proto`, and the token of the next page (empty on the last), made
    /// from the key of the last row served (see [`keys`]).
    pub fn tail<T, P>(
        &self,
        mut rows: Vec<T>,
        key_of: impl Fn(&T) -> String,
        to_proto: impl FnMut(&T) -> P,
    ) -> (Vec<P>, String) {
        let next_page_token = self.finish(&mut rows, key_of);
        (rows.iter().map(to_proto).collect(), next_page_token)
    }
}

/// The keys a page token resumes after, matching the orders of
/// [`PageRequest::by_id`], [`PageRequest::by_text`] and
/// [`PageRequest::by_then_id`].
pub mod keys {
    use super::SortKey;
    use uuid::Uuid;

    /// The key of a row ordered by id.
    pub fn id(id: Uuid) -> String {
        id.to_string()
    }

    /// The key of a row ordered by `sort`, then id.
    pub fn then_id<V: SortKey>(sort: &V, id: Uuid) -> String {
        format!("{}/{id}", sort.encode())
    }
}

/// A value a list is ordered by before its id, as it travels in a token.
pub trait SortKey: Into<sea_orm::Value> + Clone + Sized {
    fn encode(&self) -> String;
    fn decode(text: &str) -> Option<Self>;
}

impl SortKey for i64 {
    fn encode(&self) -> String {
        self.to_string()
    }
    fn decode(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

/// Instants travel to the nanosecond, as precise as either database keeps
/// them, so a page never resumes before or after a row it served.
impl SortKey for chrono::DateTime<chrono::Utc> {
    fn encode(&self) -> String {
        format!("{}.{:09}", self.timestamp(), self.timestamp_subsec_nanos())
    }
    fn decode(text: &str) -> Option<Self> {
        let (seconds, nanos) = text.split_once('.')?;
        if nanos.len() != 9 {
            return None;
        }
        chrono::DateTime::from_timestamp(seconds.parse().ok()?, nanos.parse().ok()?)
    }
}

fn bad_token() -> ApiError {
    ApiError::invalid("page_token", NOT_A_PAGE_TOKEN)
}

fn parse_id(text: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(text).map_err(|_| bad_token())
}

/// Bytes of the signature a token ends with (HMAC-SHA256).
const SIGNATURE_BYTES: usize = 32;

static TOKEN_KEY: std::sync::OnceLock<ring::hmac::Key> = std::sync::OnceLock::new();

/// Sets the key page tokens are signed with (`server.page_token_key`), once,
/// at start: every replica given the same key accepts the others' tokens.
/// Without it, each process signs with a random key of its own, so a token
/// resumes only on the process that issued it.
pub fn set_token_key(key: &[u8]) {
    let _ = TOKEN_KEY.set(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key));
}

fn token_key() -> &'static ring::hmac::Key {
    TOKEN_KEY.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"medsec"))
    })
}

/// The token: its JSON, then its signature, in URL-safe base64. A client
/// cannot forge or alter one: a token is only ever what this API issued.
fn encode(token: &Token) -> String {
    // Serialising two strings cannot fail.
    let mut bytes = serde_json::to_vec(token).unwrap_or_default();
    let signature = ring::hmac::sign(token_key(), &bytes);
    bytes.extend_from_slice(signature.as_ref());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode(text: &str) -> Option<Token> {
    // A token is a few hundred bytes at most; refuse anything longer unread.
    if text.len() > 4096 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let split = bytes.len().checked_sub(SIGNATURE_BYTES)?;
    let (json, signature) = bytes.split_at(split);
    ring::hmac::verify(token_key(), json, signature).ok()?;
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_and_altered_tokens_are_refused() {
        let page = PageRequest::parse(1, "", "f").unwrap();
        let mut items = vec![
            "0190a5b2-7c1e-7000-8000-000000000001".to_owned(),
            "x".to_owned(),
        ];
        let token = page.finish(&mut items, Clone::clone);
        assert!(PageRequest::parse(1, &token, "f").is_ok());
        // The same JSON without a signature, as the unsigned tokens were.
        let unsigned = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Token {
                k: "0190a5b2-7c1e-7000-8000-000000000009".into(),
                f: page.filter_fingerprint.clone(),
            })
            .unwrap(),
        );
        assert!(PageRequest::parse(1, &unsigned, "f").is_err());
        // One bit flipped anywhere.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[3] ^= 1;
        assert!(PageRequest::parse(1, &URL_SAFE_NO_PAD.encode(&bytes), "f").is_err());
    }

    #[test]
    fn instants_travel_in_tokens_to_the_nanosecond() {
        let instant = chrono::DateTime::from_timestamp(1_764_550_000, 123_456_789).unwrap();
        let encoded = instant.encode();
        assert_eq!(encoded, "1764550000.123456789");
        assert_eq!(chrono::DateTime::decode(&encoded), Some(instant));
        assert_eq!(chrono::DateTime::<chrono::Utc>::decode("1764550000"), None);
        assert_eq!(chrono::DateTime::<chrono::Utc>::decode("x.123456789"), None);
    }

    #[test]
    fn sizes_default_clamp_and_refuse_negatives() {
        assert_eq!(
            PageRequest::parse(0, "", "").unwrap().size,
            DEFAULT_PAGE_SIZE
        );
        assert_eq!(PageRequest::parse(7, "", "").unwrap().size, 7);
        assert_eq!(
            PageRequest::parse(1_000_000, "", "").unwrap().size,
            MAX_PAGE_SIZE
        );
        assert!(PageRequest::parse(-1, "", "").is_err());
    }

    #[test]
    fn tokens_resume_after_the_last_item_and_keep_their_filters() {
        let first = PageRequest::parse(2, "", "family=smith").unwrap();
        let mut items = vec!["a", "b", "c"];
        let token = first.finish(&mut items, |s| s.to_string());
        assert_eq!(items, ["a", "b"]);
        assert!(!token.is_empty());

        let second = PageRequest::parse(2, &token, "family=smith").unwrap();
        assert_eq!(second.after.as_deref(), Some("b"));
        let mut last = vec!["c"];
        assert_eq!(second.finish(&mut last, |s| s.to_string()), "");

        assert!(PageRequest::parse(2, &token, "family=jones").is_err());
        assert!(PageRequest::parse(2, "garbage!", "family=smith").is_err());
    }

    proptest::proptest! {
        /// Any size and any token: a page or INVALID_ARGUMENT naming the
        /// field, never a panic.
        #[test]
        fn any_page_request_is_answered(size in proptest::num::i32::ANY, token in ".{0,200}", filters in ".{0,20}") {
            match PageRequest::parse(size, &token, &filters) {
                Ok(page) => proptest::prop_assert!(page.size >= 1 && page.size <= MAX_PAGE_SIZE),
                Err(ApiError::InvalidArgument(violations)) => {
                    let fields: Vec<&str> = violations.fields().collect();
                    proptest::prop_assert!(fields == ["page_size"] || fields == ["page_token"]);
                }
                Err(other) => proptest::prop_assert!(false, "{other:?}"),
            }
        }

        /// A token this API issued resumes after its key, for its filters only.
        #[test]
        fn issued_tokens_round_trip(key in "[a-z0-9/.-]{1,60}", filters in ".{0,20}") {
            let first = PageRequest::parse(1, "", &filters).unwrap();
            let mut items = vec![key.clone(), "next".to_owned()];
            let token = first.finish(&mut items, Clone::clone);
            let next = PageRequest::parse(1, &token, &filters).unwrap();
            proptest::prop_assert_eq!(next.after.as_deref(), Some(key.as_str()));
            let other_filters = format!("{filters}x");
            proptest::prop_assert!(PageRequest::parse(1, &token, &other_filters).is_err());
        }
    }
}
