//! Clinical documents: what a filed document must say about itself.

use medsec_platform::FieldViolations;
use medsec_proto::records::v1 as pb;
use sha2::{Digest, Sha256};

use medsec_platform::text;

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
    pub fn parse(document: &pb::Document, violations: &mut FieldViolations) -> Option<Self> {
        let title = violations.check("document.title", text::required_line(&document.title, 200));
        let kind = violations.check("document.kind", DocumentKind::from_proto(document.kind));
        let content_type = violations.check(
            "document.content_type",
            parse_content_type(&document.content_type),
        );
        let author = violations.check(
            "document.author",
            text::required_line(&document.author, 200),
        );
        Some(Self {
            title: title?,
            kind: kind?,
            content_type: content_type?,
            author: author?,
        })
    }
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
