//! Page sizes and opaque page tokens for every List RPC.
//!
//! A token carries the sort key of the last item served and a fingerprint of
//! the request's filters: it resumes exactly after that item (keyset
//! pagination, so pages never skip or repeat while rows are added), and a
//! token presented with other filters is refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

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
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(ApiError::invalid("page_size", "must not be negative")),
            n => u64::from(n.unsigned_abs()).min(MAX_PAGE_SIZE),
        };
        let filter_fingerprint = fingerprint(filters);
        let after = if page_token.is_empty() {
            None
        } else {
            let token = decode(page_token)
                .ok_or_else(|| ApiError::invalid("page_token", "is not a token this API issued"))?;
            if token.f != filter_fingerprint {
                return Err(ApiError::invalid(
                    "page_token",
                    "belongs to a request with other filters",
                ));
            }
            Some(token.k)
        };
        Ok(Self {
            size,
            after,
            filter_fingerprint,
        })
    }

    /// The last key served as a UUID, for lists ordered by a UUID v7 id.
    pub fn after_uuid(&self) -> Result<Option<uuid::Uuid>, ApiError> {
        self.after
            .as_deref()
            .map(|after| {
                uuid::Uuid::parse_str(after)
                    .map_err(|_| ApiError::invalid("page_token", "is not a token this API issued"))
            })
            .transpose()
    }

    /// Restricts `query` to this page of rows ordered by the UUID `id`.
    pub fn by_id<E, C>(
        &self,
        query: sea_orm::Select<E>,
        id: C,
    ) -> Result<sea_orm::Select<E>, ApiError>
    where
        E: sea_orm::EntityTrait,
        C: sea_orm::ColumnTrait,
    {
        use sea_orm::{QueryFilter as _, QueryOrder as _, QuerySelect as _};
        let query = match self.after_uuid()? {
            Some(after) => query.filter(id.gt(after)),
            None => query,
        };
        Ok(query.order_by_asc(id).limit(self.fetch_limit()))
    }

    /// How many rows to fetch: one more than the page, to learn whether
    /// another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Trims `items` (fetched with `fetch_limit`) to the page and returns the
    /// next page's token, empty on the last page.
    pub fn finish<T>(&self, items: &mut Vec<T>, key_of: impl Fn(&T) -> String) -> String {
        let page_len = usize::try_from(self.size).unwrap_or(usize::MAX);
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
}

fn fingerprint(filters: &str) -> String {
    let digest = Sha256::digest(filters.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

fn encode(token: &Token) -> String {
    // Serialising two strings cannot fail.
    let json = serde_json::to_vec(token).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

fn decode(text: &str) -> Option<Token> {
    let json = URL_SAFE_NO_PAD.decode(text).ok()?;
    serde_json::from_slice(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
