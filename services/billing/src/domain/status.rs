//! The invoice state machine: draft -> issued -> balanced; draft or issued
//! -> cancelled. Stored as text; every transition is a guarded UPDATE on the
//! stored state, so the database decides races.

use medsec_proto::billing::v1 as pb;

medsec_platform::stored_enum!(
    /// Where an invoice is in its life.
    InvoiceStatus, pb::InvoiceStatus, {
        Draft => "draft", Draft,
        Issued => "issued", Issued,
        Balanced => "balanced", Balanced,
        Cancelled => "cancelled", Cancelled,
    }
);

impl InvoiceStatus {
    /// Whether the machine has an edge from `self` to `next`.
    pub fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Draft, Self::Issued)
                | (Self::Issued, Self::Balanced)
                | (Self::Draft | Self::Issued, Self::Cancelled)
        )
    }

    /// The state a draft totalling `total_pence` is issued into: an invoice
    /// for nothing is settled the moment it exists.
    pub fn on_issue(total_pence: i64) -> Self {
        if total_pence == 0 {
            Self::Balanced
        } else {
            Self::Issued
        }
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
        let allowed: Vec<_> = InvoiceStatus::ALL
            .iter()
            .flat_map(|&a| InvoiceStatus::ALL.iter().map(move |&b| (a, b)))
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
        for &status in InvoiceStatus::ALL {
            assert_eq!(InvoiceStatus::from_stored(status.as_str()), Some(status));
            assert_eq!(InvoiceStatus::from_proto(status.to_proto()), Ok(status));
        }
    }

    #[test]
    fn an_invoice_for_nothing_is_balanced_when_issued() {
        assert_eq!(InvoiceStatus::on_issue(0), InvoiceStatus::Balanced);
        assert_eq!(InvoiceStatus::on_issue(1), InvoiceStatus::Issued);
    }

    #[test]
    fn numbers_are_zero_padded() {
        assert_eq!(document_number("INV", 2026, 123), "INV-2026-000123");
    }
}
