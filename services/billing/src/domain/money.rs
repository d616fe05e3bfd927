//! Money is integer pence (`i64`), never a float. A VAT rate is basis points
//! (2000 = 20%). VAT is worked out per line and rounded half up to the penny,
//! in integer arithmetic: `vat = (net * rate + 5000) / 10000` with `net >= 0`.
//! Every amount a caller sends is bounded here, so no sum can overflow; an
//! invoice's balance is worked out here too.

/// Largest unit price accepted: £10 million, so that no line, invoice or
/// budget total can come near `i64::MAX`.
pub const MAX_UNIT_PRICE_PENCE: i64 = 1_000_000_000;
/// Largest quantity on one charge.
pub const MAX_QUANTITY: i32 = 1000;
/// Largest single payment, credit or budget entry: £1 billion.
pub const MAX_AMOUNT_PENCE: i64 = 100_000_000_000;
/// 100% in basis points.
pub const MAX_VAT_RATE_BASIS_POINTS: i32 = 10_000;

/// VAT on `net_pence` at `rate_basis_points`, rounded half up to the penny.
/// Both inputs are validated non-negative and bounded before they get here;
/// the arithmetic is in `i128` so no bound can overflow it.
pub fn vat_half_up(net_pence: i64, rate_basis_points: i32) -> i64 {
    let exact_times_10000 = i128::from(net_pence) * i128::from(rate_basis_points);
    let rounded = (exact_times_10000 + 5_000).div_euclid(10_000);
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// The amounts of one invoice line or charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineAmounts {
    pub net_pence: i64,
    pub vat_pence: i64,
}

impl LineAmounts {
    pub fn gross_pence(self) -> i64 {
        self.net_pence + self.vat_pence
    }
}

/// Net and VAT of `quantity` units at `unit_price_pence`.
pub fn line_amounts(quantity: i32, unit_price_pence: i64, rate_basis_points: i32) -> LineAmounts {
    let net_pence = i64::from(quantity).saturating_mul(unit_price_pence);
    LineAmounts {
        net_pence,
        vat_pence: vat_half_up(net_pence, rate_basis_points),
    }
}

/// An invoice's totals: the sums of its lines' net and VAT.
pub fn invoice_totals(lines: impl IntoIterator<Item = LineAmounts>) -> LineAmounts {
    lines.into_iter().fold(
        LineAmounts {
            net_pence: 0,
            vat_pence: 0,
        },
        |sum, line| LineAmounts {
            net_pence: sum.net_pence + line.net_pence,
            vat_pence: sum.vat_pence + line.vat_pence,
        },
    )
}

/// Checks an amount of money a caller sends (a payment, credit or entry).
pub fn positive_amount(amount_pence: i64) -> Result<i64, &'static str> {
    if amount_pence <= 0 {
        return Err("must be at least 1 penny");
    }
    if amount_pence > MAX_AMOUNT_PENCE {
        return Err("must be at most 100000000000 pence");
    }
    Ok(amount_pence)
}

/// Checks a budget's allocation: nothing is allowed, up to £1 billion.
pub fn allocation(pence: i64) -> Result<i64, &'static str> {
    within(
        pence,
        0..=MAX_AMOUNT_PENCE,
        "must be from 0 to 100000000000 pence",
    )
}

/// Checks a price-list unit price: free is allowed, up to £10 million.
pub fn unit_price(pence: i64) -> Result<i64, &'static str> {
    within(
        pence,
        0..=MAX_UNIT_PRICE_PENCE,
        "must be from 0 to 1000000000 pence",
    )
}

/// Checks a VAT rate: 0% to 100% in basis points.
pub fn vat_rate(basis_points: i32) -> Result<i32, &'static str> {
    within(
        basis_points,
        0..=MAX_VAT_RATE_BASIS_POINTS,
        "must be from 0 to 10000 basis points",
    )
}

/// Checks the quantity of a charge.
pub fn quantity(quantity: i32) -> Result<i32, &'static str> {
    within(quantity, 1..=MAX_QUANTITY, "must be from 1 to 1000")
}

fn within<T: PartialOrd>(
    value: T,
    range: std::ops::RangeInclusive<T>,
    why: &'static str,
) -> Result<T, &'static str> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(why)
    }
}

/// What is still owed on an invoice: its total less what was paid and
/// credited. Never negative: payments and credits are refused past it.
pub fn balance(total_pence: i64, paid_pence: i64, credited_pence: i64) -> i64 {
    total_pence - paid_pence - credited_pence
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vat_rounds_half_up() {
        assert_eq!(vat_half_up(1000, 2000), 200);
        assert_eq!(vat_half_up(1, 2000), 0); // 0.2p
        assert_eq!(vat_half_up(3, 2000), 1); // 0.6p
        assert_eq!(vat_half_up(25, 2000), 5); // exactly 5p
        assert_eq!(vat_half_up(1, 5000), 1); // exactly 0.5p rounds up
        assert_eq!(vat_half_up(999, 0), 0);
        assert_eq!(vat_half_up(12_345, 500), 617); // 617.25p
    }

    #[test]
    fn caller_amounts_are_bounded() {
        assert_eq!(positive_amount(0), Err("must be at least 1 penny"));
        assert_eq!(positive_amount(MAX_AMOUNT_PENCE), Ok(MAX_AMOUNT_PENCE));
        assert!(positive_amount(MAX_AMOUNT_PENCE + 1).is_err());
        assert_eq!(allocation(0), Ok(0));
        assert!(allocation(-1).is_err());
        assert_eq!(unit_price(0), Ok(0));
        assert!(unit_price(MAX_UNIT_PRICE_PENCE + 1).is_err());
        assert_eq!(vat_rate(10_000), Ok(10_000));
        assert!(vat_rate(10_001).is_err());
        assert!(quantity(0).is_err());
        assert_eq!(quantity(1000), Ok(1000));
        assert!(quantity(1001).is_err());
    }

    #[test]
    fn the_balance_is_what_payments_and_credits_leave() {
        assert_eq!(balance(12_000, 3_000, 500), 8_500);
        assert_eq!(balance(12_000, 11_500, 500), 0);
    }

    proptest! {
        #[test]
        fn vat_is_the_nearest_penny_half_up(net in 0..MAX_UNIT_PRICE_PENCE * 1000, rate in 0..=MAX_VAT_RATE_BASIS_POINTS) {
            let vat = vat_half_up(net, rate);
            let exact = i128::from(net) * i128::from(rate);
            // Within half a penny of exact; an exact half penny rounds up.
            let diff = i128::from(vat) * 10_000 - exact;
            prop_assert!((-4_999..=5_000).contains(&diff), "net {net} rate {rate} vat {vat}");
        }

        #[test]
        fn totals_are_the_sums_of_lines(lines in proptest::collection::vec((1..=MAX_QUANTITY, 0..=MAX_UNIT_PRICE_PENCE, 0..=MAX_VAT_RATE_BASIS_POINTS), 0..20)) {
            let amounts: Vec<_> = lines.iter().map(|&(q, p, r)| line_amounts(q, p, r)).collect();
            let totals = invoice_totals(amounts.iter().copied());
            prop_assert_eq!(totals.net_pence, amounts.iter().map(|a| a.net_pence).sum::<i64>());
            prop_assert_eq!(totals.gross_pence(), amounts.iter().map(|a| a.gross_pence()).sum::<i64>());
        }
    }
}
