//! The invoice state machine: draft -> issued -> balanced; draft or issued
//! -> cancelled. Stored as text; every transition is a guarded UPDATE on the
//! stored state, so the database decides races.

/// Where an invoice is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Draft,
    Issued,
    Balanced,
    Cancelled,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Issued => "issued",
            Self::Balanced => "balanced",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        Some(match text {
            "draft" => Self::Draft,
            "issued" => Self::Issued,
            "balanced" => Self::Balanced,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Whether the machine has an edge from `self` to `next`.
    pub fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Draft, Self::Issued)
                | (Self::Issued, Self::Balanced)
                | (Self::Draft | Self::Issued, Self::Cancelled)
        )
    }
}

/// Formats a document number: `INV-2026-000123`.
pub fn document_number(series: &str, year: i32, sequence: i64) -> String {
    format!("{series}-{year}-{sequence:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_moves_exist() {
        use InvoiceStatus::*;
        let all = [Draft, Issued, Balanced, Cancelled];
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|&a| all.iter().map(move |&b| (a, b)))
            .filter(|&(a, b)| a.can_become(b))
            .collect();
        assert_eq!(
            allowed,
            [
                (Draft, Issued),
                (Draft, Cancelled),
                (Issued, Balanced),
                (Issued, Cancelled)
            ]
        );
        for status in all {
            assert_eq!(InvoiceStatus::from_stored(status.as_str()), Some(status));
        }
    }

    #[test]
    fn numbers_are_zero_padded() {
        assert_eq!(document_number("INV", 2026, 123), "INV-2026-000123");
    }
}
