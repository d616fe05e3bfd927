//! Seeding a clinic through the API before the load: a location, clinicians
//! (one specialty each), a weekday session a day for each for some weeks
//! ahead and the slots made from them, patients with valid NHS numbers from
//! the never-issued 999 range, one waiting referral each, and a price list.
//!
//! Every create carries a `request_id` naming the run (`load-<run>-…`), so a
//! seed retried with the same run id makes nothing twice, and another run
//! against the same database makes a clinic of its own beside it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use chrono::{Datelike as _, Duration, NaiveDate};
use futures::{StreamExt as _, TryStreamExt as _};
use medsec_platform::time::{format_civil_date, today_in_london};
use medsec_proto::billing::v1 as billing;
use medsec_proto::records::v1 as records;
use medsec_proto::scheduling::v1 as scheduling;
use serde::{Deserialize, Serialize};

use super::client::Clients;
use super::rng::Rng;

/// The specialties clinicians are given in turn.
pub(crate) const SPECIALTIES: [&str; 4] = [
    "cardiology",
    "dermatology",
    "rheumatology",
    "ear_nose_throat",
];

/// Creates in flight at once while seeding.
const SEED_CONCURRENCY: usize = 16;

const GIVEN_NAMES: [&str; 16] = [
    "Amara", "Ben", "Chloe", "Dev", "Eleanor", "Farhan", "Grace", "Harry", "Isla", "Jack", "Kiran",
    "Lily", "Mohammed", "Niamh", "Oliver", "Priya",
];

const FAMILY_NAMES: [&str; 24] = [
    "Adams",
    "Baker",
    "Chaudhry",
    "Davies",
    "Evans",
    "Fletcher",
    "Green",
    "Hughes",
    "Iqbal",
    "Jones",
    "Khan",
    "Lewis",
    "Morgan",
    "Nowak",
    "Okafor",
    "Patel",
    "Quinn",
    "Roberts",
    "Smith",
    "Taylor",
    "Usman",
    "Walker",
    "Young",
    "Zielinski",
];

const POSTCODES: [&str; 8] = [
    "SW1A 1AA", "EC1A 1BB", "W1A 0AX", "M1 1AE", "B33 8TH", "CR2 6XH", "LS1 4AP", "CF10 1EP",
];

/// The price list each run adds: suffix of the code, description, pence.
const PRICES: [(&str, &str, i64); 3] = [
    ("NEW", "New outpatient consultation", 18_000),
    ("FUP", "Follow-up consultation", 9_500),
    ("ECG", "12-lead ECG", 4_500),
];

/// How big a clinic to seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedSize {
    /// Clinicians, each with a session every weekday.
    pub clinicians: usize,
    /// Weeks of slots, from tomorrow.
    pub weeks: u32,
    /// Patients, each with one waiting referral.
    pub patients: usize,
}

impl Default for SeedSize {
    fn default() -> Self {
        Self {
            clinicians: 8,
            weeks: 4,
            patients: 400,
        }
    }
}

/// What seeding made, for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedFigures {
    pub clinicians: usize,
    pub slots: u64,
    pub patients: usize,
    pub referrals: usize,
    pub price_items: usize,
    /// How long seeding took (not part of any workload's figures).
    pub seconds: f64,
}

/// A clinician of the seeded clinic.
#[derive(Debug, Clone)]
pub(crate) struct Clinician {
    pub(crate) id: String,
    pub(crate) specialty: &'static str,
}

/// A registered patient, with what the workloads search them by.
#[derive(Debug, Clone)]
pub(crate) struct PatientRef {
    pub(crate) id: String,
    pub(crate) family_name: String,
}

/// A referral on the waiting list.
#[derive(Debug, Clone)]
pub(crate) struct ReferralRef {
    pub(crate) id: String,
    pub(crate) patient_id: String,
    pub(crate) specialty: &'static str,
}

/// The seeded clinic: what does not change while the load runs.
#[derive(Debug, Clone)]
pub(crate) struct Clinic {
    pub(crate) clinicians: Vec<Clinician>,
    /// The specialties that have a clinician.
    pub(crate) specialties: Vec<&'static str>,
    /// The first and last day with slots.
    pub(crate) first_day: NaiveDate,
    pub(crate) days: u32,
    pub(crate) price_codes: Vec<String>,
}

/// A seeded clinic with its patients and waiting list.
#[derive(Debug)]
pub(crate) struct Seeded {
    pub(crate) clinic: Clinic,
    pub(crate) patients: Vec<PatientRef>,
    pub(crate) referrals: Vec<ReferralRef>,
    pub(crate) figures: SeedFigures,
}

/// How many taken NHS numbers one seeded registration skips before giving up.
const MAX_NUMBER_RETRIES: u32 = 20;

/// Valid NHS numbers of the never-issued 999 range, each handed out once
/// per run: from a start the run id chooses, skipping the stems whose
/// modulus 11 check digit would be 10.
#[derive(Debug)]
pub(crate) struct NhsNumbers {
    start: u64,
    next: AtomicU64,
}

impl NhsNumbers {
    /// Stems in the 999 range: 999 000 000 to 999 999 999.
    const RANGE: u64 = 1_000_000;

    pub(crate) fn for_run(run_id: &str) -> Self {
        Self {
            start: Rng::seed_of(run_id) % Self::RANGE,
            next: AtomicU64::new(0),
        }
    }

    pub(crate) fn next(&self) -> String {
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let stem = 999_000_000 + (self.start + n) % Self::RANGE;
            if let Some(number) = nhs_number(stem) {
                return number;
            }
        }
    }
}

/// The NHS number whose first nine digits are `stem`, or `None` when its
/// check digit would be 10 (no such number is issued).
pub(crate) fn nhs_number(stem: u64) -> Option<String> {
    let digits = format!("{stem:09}");
    let sum: u32 = digits
        .bytes()
        .zip((2..=10u32).rev())
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return None,
        check => check,
    };
    Some(format!("{digits}{check}"))
}

/// A registration with made-up but valid details.
pub(crate) fn registration(
    rng: &mut Rng,
    nhs_number: String,
    request_id: String,
) -> records::CreatePatientRequest {
    let given = GIVEN_NAMES[rng.index(GIVEN_NAMES.len())];
    let family = FAMILY_NAMES[rng.index(FAMILY_NAMES.len())];
    let born = NaiveDate::from_ymd_opt(1930, 1, 1).unwrap_or_default()
        + Duration::days(i64::try_from(rng.below(90 * 365)).unwrap_or(0));
    records::CreatePatientRequest {
        patient: Some(records::Patient {
            nhs_number,
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            birth_date: format_civil_date(born),
            sex: (if rng.below(2) == 0 {
                records::Sex::Female
            } else {
                records::Sex::Male
            }) as i32,
            address: Some(records::Address {
                lines: vec![format!("{} High Street", 1 + rng.below(200))],
                town: "Testham".into(),
                postcode: POSTCODES[rng.index(POSTCODES.len())].to_owned(),
            }),
            ..Default::default()
        }),
        request_id,
    }
}

/// Fails with the RPC's name and the status's code and message.
fn failed(rpc: &str, status: &tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "{rpc}: {}: {}",
        super::stats::code_name(status.code()),
        status.message()
    )
}

/// Seeds a clinic of `size` through `clients`, its keys naming `run_id`.
pub(crate) async fn seed(
    clients: &Clients,
    size: &SeedSize,
    run_id: &str,
    nhs: &NhsNumbers,
) -> anyhow::Result<Seeded> {
    let began = Instant::now();
    let key = |what: &str| format!("load-{run_id}-{what}");
    let mut rng = Rng::new(Rng::seed_of(run_id));
    let mut scheduling = clients.scheduling.clone();
    let first_day = today_in_london() + Duration::days(1);
    let days = size.weeks.max(1) * 7;
    let last_day = first_day + Duration::days(i64::from(days) - 1);

    let location = scheduling
        .create_location(scheduling::CreateLocationRequest {
            location: Some(scheduling::Location {
                name: format!("Outpatients (load {run_id})"),
                ..Default::default()
            }),
            request_id: key("location"),
        })
        .await
        .map_err(|s| failed("CreateLocation", &s))?
        .into_inner();

    let mut clinicians = Vec::with_capacity(size.clinicians);
    let mut slots = 0u64;
    for i in 0..size.clinicians.max(1) {
        let specialty = SPECIALTIES[i % SPECIALTIES.len()];
        let family = FAMILY_NAMES[rng.index(FAMILY_NAMES.len())];
        let staff = scheduling
            .create_staff_member(scheduling::CreateStaffMemberRequest {
                staff_member: Some(scheduling::StaffMember {
                    name: format!("Dr {} {family}", GIVEN_NAMES[i % GIVEN_NAMES.len()]),
                    role: scheduling::StaffRole::Clinician as i32,
                    grade: "consultant".into(),
                    specialties: vec![specialty.into()],
                    ..Default::default()
                }),
                request_id: key(&format!("clinician-{i}")),
            })
            .await
            .map_err(|s| failed("CreateStaffMember", &s))?
            .into_inner();
        for weekday in 1..=5 {
            scheduling
                .create_session_template(scheduling::CreateSessionTemplateRequest {
                    session_template: Some(scheduling::SessionTemplate {
                        clinician_id: staff.id.clone(),
                        specialty: specialty.into(),
                        location_id: location.id.clone(),
                        weekday,
                        start_time: "09:00".into(),
                        end_time: "17:00".into(),
                        slot_minutes: 20,
                        kind: scheduling::SlotKind::New as i32,
                        mode: scheduling::ConsultationMode::FaceToFace as i32,
                        capacity: 1,
                        valid_from: format_civil_date(first_day),
                        valid_to: format_civil_date(last_day),
                        ..Default::default()
                    }),
                    request_id: key(&format!("template-{i}-{weekday}")),
                })
                .await
                .map_err(|s| failed("CreateSessionTemplate", &s))?;
        }
        let generated = scheduling
            .generate_slots(scheduling::GenerateSlotsRequest {
                from_date: format_civil_date(first_day),
                to_date: format_civil_date(last_day),
                clinician_id: staff.id.clone(),
            })
            .await
            .map_err(|s| failed("GenerateSlots", &s))?
            .into_inner();
        slots += u64::try_from(generated.created.max(0) + generated.existing.max(0)).unwrap_or(0);
        clinicians.push(Clinician {
            id: staff.id,
            specialty,
        });
    }

    let registrations: Vec<_> = (0..size.patients)
        .map(|i| registration(&mut rng, nhs.next(), key(&format!("patient-{i}"))))
        .collect();
    let patients: Vec<PatientRef> = futures::stream::iter(registrations)
        .map(|mut request| {
            let mut records = clients.records.clone();
            async move {
                // A number an earlier run on this database registered is
                // taken: register the patient under the run's next one.
                let mut retries = 0;
                let patient = loop {
                    match records.create_patient(request.clone()).await {
                        Ok(created) => break created.into_inner(),
                        Err(status)
                            if status.code() == tonic::Code::AlreadyExists
                                && retries < MAX_NUMBER_RETRIES =>
                        {
                            retries += 1;
                            if let Some(patient) = request.patient.as_mut() {
                                patient.nhs_number = nhs.next();
                            }
                            request.request_id = format!("{}-{retries}", request.request_id);
                        }
                        Err(status) => return Err(failed("CreatePatient", &status)),
                    }
                };
                Ok::<_, anyhow::Error>(PatientRef {
                    id: patient.id,
                    family_name: patient.family_name,
                })
            }
        })
        .buffered(SEED_CONCURRENCY)
        .try_collect()
        .await?;

    let today = today_in_london();
    let specialties: Vec<&'static str> = SPECIALTIES
        .iter()
        .copied()
        .filter(|s| clinicians.iter().any(|c| c.specialty == *s))
        .collect();
    let waiting: Vec<_> = patients
        .iter()
        .enumerate()
        .map(|(i, patient)| {
            let specialty = specialties[i % specialties.len()];
            let priority = match rng.below(10) {
                0 => scheduling::Priority::TwoWeekWait,
                1 | 2 => scheduling::Priority::Urgent,
                _ => scheduling::Priority::Routine,
            };
            let waited = Duration::days(i64::try_from(rng.below(20 * 7)).unwrap_or(0));
            (
                patient.id.clone(),
                specialty,
                scheduling::CreateReferralRequest {
                    referral: Some(scheduling::Referral {
                        patient_id: patient.id.clone(),
                        specialty: specialty.into(),
                        priority: priority as i32,
                        clock_start: format_civil_date(today - waited),
                        kind: scheduling::SlotKind::New as i32,
                        ..Default::default()
                    }),
                    request_id: key(&format!("referral-{i}")),
                },
            )
        })
        .collect();
    let referrals: Vec<ReferralRef> = futures::stream::iter(waiting)
        .map(|(patient_id, specialty, request)| {
            let mut scheduling = clients.scheduling.clone();
            async move {
                let referral = scheduling
                    .create_referral(request)
                    .await
                    .map_err(|s| failed("CreateReferral", &s))?
                    .into_inner();
                Ok::<_, anyhow::Error>(ReferralRef {
                    id: referral.id,
                    patient_id,
                    specialty,
                })
            }
        })
        .buffered(SEED_CONCURRENCY)
        .try_collect()
        .await?;

    let mut billing = clients.billing.clone();
    let code_stem: String = run_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect::<String>()
        .to_ascii_uppercase();
    let mut price_codes = Vec::with_capacity(PRICES.len());
    for (suffix, description, pence) in PRICES {
        let code = format!("LOAD-{code_stem}-{suffix}");
        billing
            .create_price_item(billing::CreatePriceItemRequest {
                price_item: Some(billing::PriceItem {
                    code: code.clone(),
                    description: description.into(),
                    unit_price_pence: pence,
                    vat_rate_basis_points: 0,
                    valid_from: format_civil_date(
                        NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).unwrap_or(today),
                    ),
                    ..Default::default()
                }),
                request_id: key(&format!("price-{suffix}")),
            })
            .await
            .map_err(|s| failed("CreatePriceItem", &s))
            .context("cannot add the price list")?;
        price_codes.push(code);
    }

    let figures = SeedFigures {
        clinicians: clinicians.len(),
        slots,
        patients: patients.len(),
        referrals: referrals.len(),
        price_items: price_codes.len(),
        seconds: began.elapsed().as_secs_f64(),
    };
    Ok(Seeded {
        clinic: Clinic {
            clinicians,
            specialties,
            first_day,
            days,
            price_codes,
        },
        patients,
        referrals,
        figures,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_number_handed_out_is_valid_and_new() {
        let numbers = NhsNumbers::for_run("a-run");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let number = numbers.next();
            assert!(number.starts_with("999"), "{number}");
            medsec_records::domain::NhsNumber::parse(&number).unwrap();
            assert!(seen.insert(number));
        }
    }

    #[test]
    fn stems_whose_check_digit_is_ten_have_no_number() {
        // 943 476 591 has check digit 9; some stem among the next eleven
        // has none.
        assert_eq!(nhs_number(943_476_591).as_deref(), Some("9434765919"));
        assert!((0..11).any(|n| nhs_number(999_000_000 + n).is_none()));
    }

    #[test]
    fn registrations_are_valid_for_records() {
        let mut rng = Rng::new(7);
        let request = registration(&mut rng, "9434765919".into(), "key".into());
        let patient = request.patient.unwrap();
        let born = medsec_platform::time::parse_civil_date(&patient.birth_date).unwrap();
        assert!(born < today_in_london());
        medsec_records::domain::Postcode::parse(&patient.address.unwrap().postcode).unwrap();
    }
}
