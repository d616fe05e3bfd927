//! Referrals on the waiting list as validated values: a new referral, the
//! periods its patient is unavailable, the fields an update may change, and
//! the rules of its clock start and its clinicians.

use chrono::{Duration, NaiveDate};
use medsec_platform::Reader;
use medsec_platform::time::civil;
use uuid::Uuid;

use super::staff::ClinicianMisfit;
use super::{Kind, Priority};

/// A referral to put on the waiting list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReferral {
    pub patient_id: Uuid,
    pub specialty: String,
    pub priority: Priority,
    pub clock_start: NaiveDate,
    pub kind: Kind,
    pub earliest: Option<NaiveDate>,
    pub unavailable: Vec<Period>,
    pub required_clinician: Option<Uuid>,
    pub preferred_clinician: Option<Uuid>,
    pub funding: Funding,
}

/// Who pays for a referral's care.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Funding {
    #[default]
    Nhs,
    SelfPay,
    Insurer {
        name: String,
        policy_number: String,
        preauthorisation_code: Option<String>,
    },
}

/// Longest insurer name, and policy or pre-authorisation code.
const MAX_INSURER_CHARS: usize = 100;
const MAX_POLICY_CHARS: usize = 64;

impl Funding {
    /// How it is stored (`referrals.funding_kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Nhs => "nhs",
            Self::SelfPay => "self_pay",
            Self::Insurer { .. } => "insurer",
        }
    }

    /// Reads a request's funding (`field`): absent or unspecified is the
    /// NHS; an insurer needs its name and the policy number, and only an
    /// insurer has them.
    pub fn read(
        r: &mut Reader,
        field: &str,
        kind: i32,
        insurer_name: &str,
        policy_number: &str,
        preauthorisation_code: &str,
    ) -> Option<Self> {
        let name = r.optional_line(
            &format!("{field}.insurer_name"),
            insurer_name,
            MAX_INSURER_CHARS,
        );
        let policy = r.optional_line(
            &format!("{field}.policy_number"),
            policy_number,
            MAX_POLICY_CHARS,
        );
        let preauthorisation = r.optional_line(
            &format!("{field}.preauthorisation_code"),
            preauthorisation_code,
            MAX_POLICY_CHARS,
        );
        let funding = match kind {
            0 | 1 => Self::Nhs,
            2 => Self::SelfPay,
            3 => {
                for (part, value) in [("insurer_name", &name), ("policy_number", &policy)] {
                    if value.is_empty() {
                        r.add(format!("{field}.{part}"), "is required for an insurer");
                    }
                }
                return Some(Self::Insurer {
                    name,
                    policy_number: policy,
                    preauthorisation_code: Some(preauthorisation).filter(|code| !code.is_empty()),
                });
            }
            _ => {
                r.add(format!("{field}.kind"), "is not a funding kind");
                return None;
            }
        };
        if !name.is_empty() || !policy.is_empty() || !preauthorisation.is_empty() {
            r.add(
                format!("{field}.insurer_name"),
                "only an insurer's funding names an insurer, a policy or a pre-authorisation",
            );
        }
        Some(funding)
    }

    /// The stored columns read back; the NHS when they make no sense.
    pub fn from_stored(
        kind: &str,
        insurer_name: Option<&str>,
        policy_number: Option<&str>,
        preauthorisation_code: Option<&str>,
    ) -> Self {
        match kind {
            "self_pay" => Self::SelfPay,
            "insurer" => Self::Insurer {
                name: insurer_name.unwrap_or_default().to_owned(),
                policy_number: policy_number.unwrap_or_default().to_owned(),
                preauthorisation_code: preauthorisation_code.map(str::to_owned),
            },
            _ => Self::Nhs,
        }
    }
}

/// Dates (both included) on which the patient cannot be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self, &'static str> {
        if to < from {
            return Err("must not be before from");
        }
        Ok(Self { from, to })
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from <= date && date <= self.to
    }
}

/// Most unavailable periods a referral holds.
pub const MAX_UNAVAILABLE_PERIODS: usize = 50;

/// The unavailable periods of a request, each a `(from, to)` pair of
/// civil dates under `field[i]`; more than [`MAX_UNAVAILABLE_PERIODS`] are
/// refused before any is read.
pub fn read_periods<'a>(
    r: &mut Reader,
    field: &str,
    ranges: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) -> Vec<Period> {
    if ranges.len() > MAX_UNAVAILABLE_PERIODS {
        r.add(
            field,
            format!("must have at most {MAX_UNAVAILABLE_PERIODS} items"),
        );
        return Vec::new();
    }
    let mut periods = Vec::new();
    for (i, (from, to)) in ranges.into_iter().enumerate() {
        let from = r.date(&format!("{field}[{i}].from"), from);
        let to_field = format!("{field}[{i}].to");
        let to = r.date(&to_field, to);
        if let (Some(from), Some(to)) = (from, to)
            && let Some(period) = r.check(&to_field, Period::new(from, to))
        {
            periods.push(period);
        }
    }
    periods
}

/// The earliest RTT clock start accepted: before it a wait is not a wait
/// but a mistyped date.
pub const EARLIEST_CLOCK_START: NaiveDate = civil(1990, 1, 1);

/// A clock starts in 1990 or later, and today or earlier; a day's grace lets
/// through a referral dated by a clock a little ahead of London's.
pub fn check_clock_start(
    r: &mut Reader,
    field: &str,
    clock_start: Option<NaiveDate>,
    today: NaiveDate,
) {
    if clock_start.is_some_and(|start| start > today + Duration::days(1)) {
        r.add(field, "must not be in the future");
    }
    if clock_start.is_some_and(|start| start < EARLIEST_CLOCK_START) {
        r.add(field, "must be on or after 1990-01-01");
    }
}

/// The required or preferred clinician of a referral must be a clinician
/// of its specialty: what the client is told when not.
pub fn clinician_misfit(misfit: ClinicianMisfit) -> &'static str {
    match misfit {
        ClinicianMisfit::NotAClinician => "is not a clinician",
        ClinicianMisfit::OtherSpecialty => "does not work in the referral's specialty",
    }
}

/// The field-mask paths UpdateReferral accepts (the clock start never
/// changes).
pub const UPDATABLE: &[&str] = &[
    "priority",
    "earliest",
    "unavailable",
    "required_clinician",
    "preferred_clinician",
    "funding",
];

/// The fields an update names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mask(Vec<String>);

impl Mask {
    /// Reads `update_mask`: required, and only updatable fields or `*`.
    pub fn read(r: &mut Reader, paths: Vec<String>) -> Self {
        if paths.is_empty() {
            r.add(
                "update_mask",
                "is required: name the fields to change, or \"*\" for all",
            );
        }
        for path in &paths {
            if path != "*" && !UPDATABLE.contains(&path.as_str()) {
                r.add(
                    "update_mask",
                    format!(
                        "unknown or fixed field {path:?}; updatable: {}",
                        UPDATABLE.join(", ")
                    ),
                );
            }
        }
        Self(paths)
    }

    /// Whether the update changes `field`.
    pub fn wants(&self, field: &str) -> bool {
        self.0.iter().any(|path| path == "*" || path == field)
    }
}

/// New values for an update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralChange {
    pub priority: Option<Priority>,
    pub earliest: Option<Option<NaiveDate>>,
    pub unavailable: Option<Vec<Period>>,
    pub required_clinician: Option<Option<Uuid>>,
    pub preferred_clinician: Option<Option<Uuid>>,
    pub funding: Option<Funding>,
}

impl ReferralChange {
    /// The referral's fields the change sets, as update-mask paths.
    pub fn paths(&self) -> Vec<String> {
        [
            ("priority", self.priority.is_some()),
            ("earliest", self.earliest.is_some()),
            ("unavailable", self.unavailable.is_some()),
            ("required_clinician", self.required_clinician.is_some()),
            ("preferred_clinician", self.preferred_clinician.is_some()),
            ("funding", self.funding.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(path, _)| path.to_owned())
        .collect()
    }

    /// The clinicians the change names, with the field naming each.
    pub fn clinicians(&self) -> [(&'static str, Option<Uuid>); 2] {
        [
            (
                "referral.required_clinician",
                self.required_clinician.flatten(),
            ),
            (
                "referral.preferred_clinician",
                self.preferred_clinician.flatten(),
            ),
        ]
    }
}

impl NewReferral {
    /// The clinicians the referral names, with the field naming each.
    pub fn clinicians(&self) -> [(&'static str, Option<Uuid>); 2] {
        [
            ("referral.required_clinician", self.required_clinician),
            ("referral.preferred_clinician", self.preferred_clinician),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::date;
    use crate::domain::tests::violations;

    #[test]
    fn periods_are_read_by_index_and_ordered() {
        let mut r = Reader::new();
        let periods = read_periods(
            &mut r,
            "u",
            [
                ("2026-02-01", "2026-02-14"),
                ("2026-02-14", "2026-02-01"),
                ("14/02", "2026-02-01"),
            ]
            .into_iter(),
        );
        assert_eq!(
            periods,
            [Period {
                from: date("2026-02-01"),
                to: date("2026-02-14")
            }]
        );
        assert!(periods[0].contains(date("2026-02-14")));
        assert_eq!(
            violations(r),
            [
                "u[1].to: must not be before from",
                "u[2].from: must be a date in the form YYYY-MM-DD",
            ]
        );
    }

    #[test]
    fn too_many_periods_are_refused_before_any_is_read() {
        let mut r = Reader::new();
        let ranges = vec![("not a date", ""); MAX_UNAVAILABLE_PERIODS + 1];
        assert!(read_periods(&mut r, "u", ranges.into_iter()).is_empty());
        assert_eq!(violations(r), ["u: must have at most 50 items"]);
    }

    #[test]
    fn a_clock_starts_between_1990_and_tomorrow() {
        let today = date("2026-03-01");
        let mut r = Reader::new();
        check_clock_start(&mut r, "a", Some(date("2026-03-02")), today);
        check_clock_start(&mut r, "b", Some(date("2026-03-03")), today);
        check_clock_start(&mut r, "c", None, today);
        check_clock_start(&mut r, "d", Some(date("1989-12-31")), today);
        check_clock_start(&mut r, "e", Some(EARLIEST_CLOCK_START), today);
        assert_eq!(
            violations(r),
            [
                "b: must not be in the future",
                "d: must be on or after 1990-01-01"
            ]
        );
    }

    #[test]
    fn a_mask_names_updatable_fields_or_all() {
        let mut r = Reader::new();
        let mask = Mask::read(&mut r, vec!["earliest".into(), "clock_start".into()]);
        assert!(mask.wants("earliest") && !mask.wants("priority"));
        let all = Mask::read(&mut r, vec!["*".into()]);
        assert!(all.wants("priority"));
        Mask::read(&mut r, Vec::new());
        let failures = violations(r);
        assert_eq!(failures.len(), 2);
        assert!(failures[0].starts_with("update_mask: unknown or fixed field \"clock_start\""));
        assert!(failures[1].starts_with("update_mask: is required"));
    }
}
