//! UK financial years (1 April to 31 March) and the budget rule: commitments
//! plus spend may not pass the allocation unless overridden with a reason.

use chrono::{Datelike as _, NaiveDate};
use medsec_proto::billing::v1 as pb;

medsec_platform::stored_enum!(
    /// What a budget entry records: money promised (a purchase order) or spent.
    EntryKind, pb::BudgetEntryKind, {
        Commitment => "commitment", Commitment,
        Spend => "spend", Spend,
    }
);

impl EntryKind {
    /// Checks that an entry of this kind may settle a commitment: only a
    /// spend does.
    pub fn may_settle(self, settles: Option<uuid::Uuid>) -> Result<(), &'static str> {
        match (self, settles) {
            (Self::Commitment, Some(_)) => Err("only a spend settles a commitment"),
            _ => Ok(()),
        }
    }

    /// How an entry of `amount` changes (committed, spent), releasing the
    /// `released` amount of a commitment it settles.
    pub fn deltas(self, amount: i64, released: i64) -> (i64, i64) {
        match self {
            Self::Commitment => (amount, 0),
            Self::Spend => (-released, amount),
        }
    }
}

/// A UK financial year, named by the calendar year it starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinancialYear(i32);

impl FinancialYear {
    pub const EARLIEST: i32 = 2000;
    pub const LATEST: i32 = 2100;

    pub fn new(start_year: i32) -> Result<Self, &'static str> {
        if !(Self::EARLIEST..=Self::LATEST).contains(&start_year) {
            return Err("must be a year from 2000 to 2100");
        }
        Ok(Self(start_year))
    }

    /// The financial year a civil date falls in.
    pub fn containing(date: NaiveDate) -> Self {
        if date.month() >= 4 {
            Self(date.year())
        } else {
            Self(date.year() - 1)
        }
    }

    pub fn start_year(self) -> i32 {
        self.0
    }

    /// "2026-27".
    pub fn label(self) -> String {
        format!("{}-{:02}", self.0, (self.0 + 1).rem_euclid(100))
    }

    pub fn contains(self, date: NaiveDate) -> bool {
        Self::containing(date) == self
    }
}

/// What a budget has left: the allocation less commitments and spend.
pub fn remaining(allocation: i64, committed: i64, spent: i64) -> i64 {
    allocation - committed - spent
}

/// Admits an entry of `amount` (settling `released` of commitments) to a
/// budget at `allocation`, `committed`, `spent`: `Ok` with the override
/// reason to record — only for an entry that needed it — or `Err` with what
/// remains when it would pass the allocation and no reason was given.
pub fn admit(
    allocation: i64,
    committed: i64,
    spent: i64,
    amount: i64,
    released: i64,
    override_reason: Option<String>,
) -> Result<Option<String>, i64> {
    if fits(allocation, committed, spent, amount, released) {
        return Ok(None);
    }
    match override_reason {
        Some(reason) => Ok(Some(reason)),
        None => Err(remaining(allocation, committed, spent)),
    }
}

/// Whether an entry of `amount` (after releasing `released` of commitments)
/// keeps commitments plus spend within the allocation.
pub fn fits(allocation: i64, committed: i64, spent: i64, amount: i64, released: i64) -> bool {
    committed + spent + amount - released <= allocation
}

/// The warning flag: 90% or more of the allocation committed or spent.
pub fn warning(allocation: i64, committed: i64, spent: i64) -> bool {
    let used = i128::from(committed) + i128::from(spent);
    used * 10 >= i128::from(allocation) * 9 && (allocation > 0 || used > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::date;

    #[test]
    fn years_run_from_april_to_march() {
        assert_eq!(
            FinancialYear::containing(date("2026-04-01")).start_year(),
            2026
        );
        assert_eq!(
            FinancialYear::containing(date("2027-03-31")).start_year(),
            2026
        );
        assert_eq!(
            FinancialYear::containing(date("2026-03-31")).start_year(),
            2025
        );
        assert_eq!(FinancialYear::new(2026).unwrap().label(), "2026-27");
        assert_eq!(FinancialYear::new(2099).unwrap().label(), "2099-00");
        assert!(FinancialYear::new(1999).is_err());
    }

    #[test]
    fn warns_at_ninety_percent_and_refuses_past_the_allocation() {
        assert!(!warning(1000, 400, 499));
        assert!(warning(1000, 400, 500));
        assert!(!warning(0, 0, 0));
        assert!(fits(1000, 500, 400, 100, 0));
        assert!(!fits(1000, 500, 400, 101, 0));
        assert!(fits(1000, 500, 400, 300, 200));
    }

    #[test]
    fn an_override_is_recorded_only_when_it_was_needed() {
        let reason = || Some("approved".to_owned());
        assert_eq!(remaining(1000, 500, 400), 100);
        assert_eq!(admit(1000, 500, 400, 100, 0, reason()), Ok(None));
        assert_eq!(admit(1000, 500, 400, 101, 0, None), Err(100));
        assert_eq!(admit(1000, 500, 400, 101, 0, reason()), Ok(reason()));
    }

    #[test]
    fn only_a_spend_settles_and_settling_releases_the_commitment() {
        let commitment = Some(uuid::Uuid::nil());
        assert!(EntryKind::Commitment.may_settle(commitment).is_err());
        assert!(EntryKind::Commitment.may_settle(None).is_ok());
        assert!(EntryKind::Spend.may_settle(commitment).is_ok());
        assert_eq!(EntryKind::Commitment.deltas(300, 0), (300, 0));
        assert_eq!(EntryKind::Spend.deltas(250, 300), (-300, 250));
        for &kind in EntryKind::ALL {
            assert_eq!(EntryKind::from_stored(kind.as_str()), Some(kind));
        }
    }
}
