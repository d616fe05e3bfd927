//! Clinical documents: what a filed document must say about itself.

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Europe::London;
use medsec_platform::Reader;
use medsec_proto::records::v1 as pb;
use sha2::{Digest, Sha256};

/// Longest title, author or content type.
const MAX_LINE_CHARS: usize = 200;

medsec_platform::stored_enum!(
    /// What a filed document is.
    DocumentKind, pb::DocumentKind, {
        Chart => "chart", Chart,
        Report => "report", Report,
        Letter => "letter", Letter,
        Result => "result", Result,
    }
);

medsec_platform::stored_enum!(
    /// Whether a version is the one in force: filing a new version
    /// supersedes the current one.
    DocumentStatus, pb::DocumentStatus, {
        Current => "current", Current,
        Superseded => "superseded", Superseded,
    }
);

/// The validated description of a document to file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentMeta {
    pub title: String,
    pub kind: DocumentKind,
    pub content_type: String,
    pub author: String,
}

impl DocumentMeta {
    /// Reads the description of a document to file, under `document.…`.
    pub fn read(r: &mut Reader, document: &pb::Document) -> Option<Self> {
        let title = r.required_line("document.title", &document.title, MAX_LINE_CHARS);
        let kind = r.enumerated("document.kind", document.kind);
        let content_type = r.check(
            "document.content_type",
            parse_content_type(&document.content_type),
        );
        let author = r.required_line("document.author", &document.author, MAX_LINE_CHARS);
        Some(Self {
            title: title?,
            kind: kind?,
            content_type: content_type?,
            author: author?,
        })
    }

    /// The description of a new version: what `changes` names, the rest
    /// carried over from this one.
    pub fn revised(self, changes: VersionChanges) -> Self {
        Self {
            title: changes.title.unwrap_or(self.title),
            kind: self.kind,
            content_type: changes.content_type.unwrap_or(self.content_type),
            author: changes.author.unwrap_or(self.author),
        }
    }
}

/// Changes a new version may make; `None` keeps the previous value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionChanges {
    pub title: Option<String>,
    pub content_type: Option<String>,
    pub author: Option<String>,
}

impl VersionChanges {
    /// Reads the optional changes of a CreateDocumentVersion request: a
    /// blank field keeps the previous value.
    pub fn read(r: &mut Reader, title: &str, content_type: &str, author: &str) -> Self {
        let line = |r: &mut Reader, field: &str, value: &str| {
            Some(r.optional_line(field, value, MAX_LINE_CHARS)).filter(|value| !value.is_empty())
        };
        Self {
            title: line(r, "title", title),
            content_type: (!content_type.trim().is_empty())
                .then(|| r.check("content_type", parse_content_type(content_type)))
                .flatten(),
            author: line(r, "author", author),
        }
    }
}

/// A filing-date range as instants: civil dates are London days, so it
/// starts at the first instant of its first day (inclusive) and ends where
/// the day after its last begins (exclusive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FiledRange {
    pub from: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
}

impl FiledRange {
    /// The range of London days `from` to `to`, either open.
    pub fn of_days(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Self, &'static str> {
        if let (Some(from), Some(to)) = (from, to)
            && to < from
        {
            return Err("must not be before filed_from");
        }
        Ok(Self {
            from: from.and_then(start_of_london_day),
            before: to
                .and_then(|to| to.succ_opt())
                .and_then(start_of_london_day),
        })
    }
}

fn start_of_london_day(date: NaiveDate) -> Option<DateTime<Utc>> {
    // Midnight exists on every London day (clocks change at 01:00 and 02:00).
    London
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|instant| instant.with_timezone(&Utc))
}

/// A MIME type, `type/subtype` with optional parameters, lower-cased.
pub fn parse_content_type(value: &str) -> Result<String, &'static str> {
    const BAD: &str = "must be a MIME type such as application/pdf";
    let value = value.trim();
    let essence = value.split(';').next().unwrap_or_default().trim();
    let (kind, subtype) = essence.split_once('/').ok_or(BAD)?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !token(kind) || !token(subtype) || value.len() > 200 {
        return Err(BAD);
    }
    Ok(value.to_ascii_lowercase())
}

/// The SHA-256 of a document's content, lower-case hex.
pub fn sha256_hex(content: &[u8]) -> String {
    Sha256::digest(content)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Checks the content against the configured size limit.
pub fn check_content(content: &[u8], max_bytes: usize) -> Result<(), String> {
    if content.is_empty() {
        return Err("is required".into());
    }
    if content.len() > max_bytes {
        return Err(format!(
            "is {} bytes; the limit is {max_bytes} bytes",
            content.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            parse_content_type("Application/PDF").unwrap(),
            "application/pdf"
        );
        assert!(parse_content_type("text/plain; charset=utf-8").is_ok());
        for bad in ["", "pdf", "application/", "/pdf", "a b/c"] {
            assert!(parse_content_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checksums_are_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn filing_ranges_are_london_days() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 7, d);
        let range = FiledRange::of_days(day(1), day(2)).unwrap();
        // British Summer Time: London's midnight is 23:00 UTC the day before.
        assert_eq!(
            range.from.unwrap().to_rfc3339(),
            "2026-06-30T23:00:00+00:00"
        );
        assert_eq!(
            range.before.unwrap().to_rfc3339(),
            "2026-07-02T23:00:00+00:00"
        );
        assert!(FiledRange::of_days(day(2), day(1)).is_err());
        assert_eq!(FiledRange::of_days(None, None), Ok(FiledRange::default()));
    }

    #[test]
    fn size_limit() {
        assert!(check_content(b"", 10).is_err());
        assert!(check_content(&[0; 10], 10).is_ok());
        assert!(
            check_content(&[0; 11], 10)
                .unwrap_err()
                .contains("limit is 10")
        );
    }
}
