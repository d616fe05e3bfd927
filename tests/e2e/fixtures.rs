//! What several whole-suite tests set up through the API: a clinic with its
//! slots, and the requests for a patient's registration, referral, price
//! and charge.

use chrono::{Duration, NaiveDate};
use medsec_platform::testing::AuthChannel;
use medsec_platform::time::{format_civil_date, today_in_london};
use medsec_proto::billing::v1 as billing;
use medsec_proto::records::v1 as records;
use medsec_proto::scheduling::v1 as scheduling;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;

/// A cardiology clinic: one consultant at one location, and the slots of
/// its sessions.
pub(crate) struct Clinic {
    pub(crate) clinician: scheduling::StaffMember,
    /// How many slots GenerateSlots made.
    pub(crate) generated: i32,
    pub(crate) slots: Vec<scheduling::Slot>,
}

/// When a clinic sits: from 09:00 to `until` on `weekdays` (1 is Monday)
/// between `from` and `to`, in half-hour slots each for `capacity`
/// patients.
pub(crate) struct Sessions {
    pub(crate) weekdays: Vec<i32>,
    pub(crate) from: NaiveDate,
    pub(crate) to: NaiveDate,
    pub(crate) until: &'static str,
    pub(crate) capacity: i32,
}

/// Mornings on weekdays for the next two weeks, for `capacity` a slot.
pub(crate) async fn clinic(
    scheduling: &mut SchedulingServiceClient<AuthChannel>,
    capacity: i32,
) -> Clinic {
    let sessions = Sessions {
        weekdays: (1..=5).collect(),
        from: today_in_london() + Duration::days(1),
        to: today_in_london() + Duration::days(14),
        until: "13:00",
        capacity,
    };
    let clinic = clinic_sitting(scheduling, sessions).await;
    assert!(clinic.slots.len() >= 40, "{} slots", clinic.slots.len());
    clinic
}

/// A clinic sitting as `sessions` say, its slots generated.
pub(crate) async fn clinic_sitting(
    scheduling: &mut SchedulingServiceClient<AuthChannel>,
    sessions: Sessions,
) -> Clinic {
    let clinician = scheduling
        .create_staff_member(scheduling::CreateStaffMemberRequest {
            staff_member: Some(scheduling::StaffMember {
                name: "Dr Faye Ult".into(),
                role: scheduling::StaffRole::Clinician as i32,
                grade: "consultant".into(),
                specialties: vec!["cardiology".into()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let location = scheduling
        .create_location(scheduling::CreateLocationRequest {
            location: Some(scheduling::Location {
                name: "Outpatients F".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let (from, to) = (
        format_civil_date(sessions.from),
        format_civil_date(sessions.to),
    );
    for weekday in sessions.weekdays {
        scheduling
            .create_session_template(scheduling::CreateSessionTemplateRequest {
                session_template: Some(scheduling::SessionTemplate {
                    clinician_id: clinician.id.clone(),
                    specialty: "cardiology".into(),
                    location_id: location.id.clone(),
                    weekday,
                    start_time: "09:00".into(),
                    end_time: sessions.until.into(),
                    slot_minutes: 30,
                    kind: scheduling::SlotKind::New as i32,
                    mode: scheduling::ConsultationMode::FaceToFace as i32,
                    capacity: sessions.capacity,
                    valid_from: from.clone(),
                    valid_to: to.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let generated = scheduling
        .generate_slots(scheduling::GenerateSlotsRequest {
            from_date: from,
            to_date: to,
            clinician_id: clinician.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .created;
    let slots = scheduling
        .list_slots(scheduling::ListSlotsRequest {
            clinician_id: clinician.id.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .slots;
    Clinic {
        clinician,
        generated,
        slots,
    }
}

/// The registration of a woman with these details, under `request_id`.
pub(crate) fn registration(
    nhs_number: &str,
    given_name: &str,
    family_name: &str,
    birth_date: &str,
    request_id: &str,
) -> records::CreatePatientRequest {
    records::CreatePatientRequest {
        patient: Some(records::Patient {
            nhs_number: nhs_number.into(),
            given_name: given_name.into(),
            family_name: family_name.into(),
            birth_date: birth_date.into(),
            sex: records::Sex::Female as i32,
            ..Default::default()
        }),
        request_id: request_id.into(),
    }
}

/// The `n`th valid NHS number of the never-issued 999 range.
pub(crate) fn nhs_number(n: u32) -> String {
    medsec_records::domain::NhsNumber::at_or_after(999_100_000 + n * 10).to_string()
}

/// `count` patients registered in records (numbered from `first`), their
/// ids: scheduling books and refers only patients records knows.
pub(crate) async fn registered(channel: &AuthChannel, first: u32, count: u32) -> Vec<String> {
    let mut records = medsec_proto::records::v1::records_service_client::RecordsServiceClient::new(
        channel.clone(),
    );
    let mut ids = Vec::new();
    for n in first..first + count {
        let registration =
            registration(&nhs_number(n), "Pat", &format!("Ient{n}"), "1970-01-31", "");
        ids.push(
            records
                .create_patient(registration)
                .await
                .unwrap()
                .into_inner()
                .id,
        );
    }
    ids
}

/// Ada Lovelace's registration.
pub(crate) fn ada() -> records::CreatePatientRequest {
    registration(
        "943 476 5919",
        "Ada",
        "Lovelace",
        "1985-12-10",
        "register-ada",
    )
}

/// A routine referral to cardiology for a new appointment, its clock
/// started `waiting` ago.
pub(crate) fn referral(patient_id: &str, waiting: Duration) -> scheduling::CreateReferralRequest {
    scheduling::CreateReferralRequest {
        referral: Some(scheduling::Referral {
            patient_id: patient_id.into(),
            specialty: "cardiology".into(),
            priority: scheduling::Priority::Routine as i32,
            clock_start: format_civil_date(today_in_london() - waiting),
            kind: scheduling::SlotKind::New as i32,
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

/// A price without VAT, valid from the start of 2026.
pub(crate) fn price(code: &str, description: &str, pence: i64) -> billing::CreatePriceItemRequest {
    billing::CreatePriceItemRequest {
        price_item: Some(billing::PriceItem {
            code: code.into(),
            description: description.into(),
            unit_price_pence: pence,
            vat_rate_basis_points: 0,
            valid_from: "2026-01-01".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

pub(crate) fn self_pay() -> billing::Payer {
    billing::Payer {
        kind: billing::PayerKind::SelfPay as i32,
        insurer: None,
    }
}

/// One of `code` for the appointment, paid by the patient.
pub(crate) fn charge(
    appointment_id: &str,
    patient_id: &str,
    code: &str,
    service_date: &str,
) -> billing::CreateChargeRequest {
    billing::CreateChargeRequest {
        charge: Some(billing::Charge {
            appointment_id: appointment_id.into(),
            patient_id: patient_id.into(),
            code: code.into(),
            quantity: 1,
            service_date: service_date.into(),
            payer: Some(self_pay()),
            ..Default::default()
        }),
    }
}
