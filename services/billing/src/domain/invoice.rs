//! The rules of an invoice's dates and money: payment terms (30 days unless
//! given, at most 365), the dates the books may carry, how a payment is made,
//! and outstanding debt aged by days past due.

use chrono::{Datelike as _, Days, NaiveDate};
use medsec_platform::Reader;
use medsec_proto::billing::v1 as pb;

medsec_platform::stored_enum!(
    /// How a payment was made.
    PaymentMethod, pb::PaymentMethod, {
        Card => "card", Card,
        Cash => "cash", Cash,
        BankTransfer => "bank_transfer", BankTransfer,
        Cheque => "cheque", Cheque,
        InsurerRemittance => "insurer_remittance", InsurerRemittance,
    }
);

/// Payment terms when IssueInvoice names none.
pub const DEFAULT_PAYMENT_TERMS_DAYS: i32 = 30;
/// Longest payment terms accepted.
pub const MAX_PAYMENT_TERMS_DAYS: i32 = 365;

/// Days from issue to due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentTerms {
    days: u32,
}

impl PaymentTerms {
    /// Terms as a client sends them: 0 means the default of 30 days.
    pub fn new(days: i32) -> Result<Self, &'static str> {
        match days {
            0 => Self::new(DEFAULT_PAYMENT_TERMS_DAYS),
            1..=MAX_PAYMENT_TERMS_DAYS => Ok(Self {
                days: days.unsigned_abs(),
            }),
            _ => Err("must be from 1 to 365 (0 means 30)"),
        }
    }

    pub fn days(self) -> u32 {
        self.days
    }

    /// When an invoice issued on `issue_date` falls due.
    pub fn due_date(self, issue_date: NaiveDate) -> NaiveDate {
        issue_date
            .checked_add_days(Days::new(u64::from(self.days)))
            .unwrap_or(NaiveDate::MAX)
    }
}

/// A date the books may carry (an issue date, a payment's date): not in the
/// future, since an invoice dated ahead would take next year's numbers early,
/// and not before 2000, so every document number has a four-digit year.
pub fn recent_date(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, &'static str> {
    if date > today {
        return Err("must not be in the future");
    }
    if date.year() < 2000 {
        return Err("must not be before 2000-01-01");
    }
    Ok(date)
}

/// Reads a date the books may carry ([`recent_date`]) from `field`; empty
/// is `today`.
pub fn read_book_date(
    r: &mut Reader,
    field: &str,
    text: &str,
    today: NaiveDate,
) -> Option<NaiveDate> {
    if text.trim().is_empty() {
        return Some(today);
    }
    let date = r.date(field, text)?;
    r.check(field, recent_date(date, today))
}

/// Outstanding debt by days past due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgedDebt {
    pub not_due: i64,
    pub days_0_30: i64,
    pub days_31_60: i64,
    pub days_61_90: i64,
    pub days_over_90: i64,
    pub invoices: i32,
}

impl AgedDebt {
    /// Adds the `balance` of an invoice due on `due`, aged on `as_of`.
    pub fn add(&mut self, balance: i64, due: NaiveDate, as_of: NaiveDate) {
        let bucket = match (as_of - due).num_days() {
            ..0 => &mut self.not_due,
            0..=30 => &mut self.days_0_30,
            31..=60 => &mut self.days_31_60,
            61..=90 => &mut self.days_61_90,
            _ => &mut self.days_over_90,
        };
        *bucket += balance;
        self.invoices += 1;
    }

    pub fn total(&self) -> i64 {
        self.not_due + self.days_0_30 + self.days_31_60 + self.days_61_90 + self.days_over_90
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{bad_fields, date};

    #[test]
    fn terms_default_to_thirty_days_and_stop_at_a_year() {
        assert_eq!(PaymentTerms::new(0).unwrap().days(), 30);
        assert_eq!(PaymentTerms::new(365).unwrap().days(), 365);
        assert!(PaymentTerms::new(366).is_err());
        assert!(PaymentTerms::new(-1).is_err());
        let terms = PaymentTerms::new(14).unwrap();
        assert_eq!(terms.due_date(date("2026-05-20")), date("2026-06-03"));
    }

    #[test]
    fn the_books_carry_no_future_dates_and_none_before_2000() {
        let today = date("2026-05-20");
        assert_eq!(recent_date(today, today), Ok(today));
        assert_eq!(
            recent_date(date("2000-01-01"), today),
            Ok(date("2000-01-01"))
        );
        assert_eq!(
            recent_date(date("2026-05-21"), today),
            Err("must not be in the future")
        );
        assert_eq!(
            recent_date(date("1999-12-31"), today),
            Err("must not be before 2000-01-01")
        );
    }

    #[test]
    fn an_empty_book_date_is_today_and_a_bad_one_is_named() {
        let today = date("2026-05-20");
        let mut r = Reader::new();
        assert_eq!(read_book_date(&mut r, "paid_on", "", today), Some(today));
        assert_eq!(
            read_book_date(&mut r, "paid_on", "2026-05-01", today),
            Some(date("2026-05-01"))
        );
        assert!(r.finish(()).is_ok());
        let mut r = Reader::new();
        assert_eq!(read_book_date(&mut r, "a", "2026-02-30", today), None);
        assert_eq!(read_book_date(&mut r, "b", "2026-05-21", today), None);
        assert_eq!(bad_fields(r), ["a", "b"]);
    }

    #[test]
    fn debt_is_aged_by_days_past_due() {
        let as_of = date("2026-06-30");
        let mut report = AgedDebt::default();
        for (balance, due) in [
            (1, "2026-07-01"),
            (10, "2026-06-30"),
            (100, "2026-05-31"),
            (1_000, "2026-05-01"),
            (10_000, "2026-04-01"),
            (100_000, "2026-03-31"),
        ] {
            report.add(balance, date(due), as_of);
        }
        assert_eq!(
            report,
            AgedDebt {
                not_due: 1,
                days_0_30: 110,
                days_31_60: 1_000,
                days_61_90: 10_000,
                days_over_90: 100_000,
                invoices: 6,
            }
        );
        assert_eq!(report.total(), 111_111);
    }
}
