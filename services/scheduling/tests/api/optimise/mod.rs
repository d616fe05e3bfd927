//! The optimising scheduler through the API: proposals and their commit
//! (`proposals`), the one-run-per-specialty lock (`lock`), and the
//! optimiser for one referral, slot or displacement (`rebooking`); with the
//! fixtures they and the end-to-end test share.

mod lock;
mod proposals;
mod rebooking;

use medsec_proto::scheduling::v1 as pb;
use tonic::{Response, Status};

use crate::helpers::{Clinic, TestApp, answer, ts};

/// The answer of a call that must succeed.
pub(crate) async fn ok<T>(call: impl Future<Output = Result<Response<T>, Status>>) -> T {
    answer(call.await).expect("the call succeeds")
}

/// Why a call that must fail was refused.
pub(crate) async fn refused<T: std::fmt::Debug>(
    call: impl Future<Output = Result<Response<T>, Status>>,
) -> Status {
    call.await.expect_err("the call is refused")
}

/// A waiting cardiology referral for a new-patient slot, as a request
/// gives it.
pub(crate) fn waiting(patient_id: &str, priority: pb::Priority, clock_start: &str) -> pb::Referral {
    pb::Referral {
        patient_id: patient_id.into(),
        specialty: "cardiology".into(),
        priority: priority as i32,
        clock_start: clock_start.into(),
        kind: pb::SlotKind::New as i32,
        ..Default::default()
    }
}

pub(crate) async fn create_referral(app: &mut TestApp, referral: pb::Referral) -> pb::Referral {
    ok(app.client.create_referral(pb::CreateReferralRequest {
        referral: Some(referral),
        request_id: String::new(),
    }))
    .await
}

/// A waiting cardiology referral for a new-patient slot.
pub(crate) async fn referral(
    app: &mut TestApp,
    patient_id: &str,
    priority: pb::Priority,
    clock_start: &str,
) -> pb::Referral {
    create_referral(app, waiting(patient_id, priority, clock_start)).await
}

/// A slot at 09:00Z on `date` (10:00 in London in summer).
pub(crate) async fn day_slot(
    app: &mut TestApp,
    clinic: &Clinic,
    date: &str,
    capacity: i32,
) -> pb::Slot {
    app.slot(
        clinic,
        &format!("{date}T09:00:00Z"),
        &format!("{date}T09:30:00Z"),
        capacity,
    )
    .await
}

/// A slot as the request gives it, e.g. another clinician's or another kind.
pub(crate) async fn create_slot(app: &mut TestApp, slot: pb::Slot) -> pb::Slot {
    ok(app.client.create_slot(pb::CreateSlotRequest {
        slot: Some(slot),
        request_id: String::new(),
    }))
    .await
}

/// A run of `specialty` (empty: every specialty) over the horizon.
pub(crate) fn run(specialty: &str, start: &str, end: &str) -> pb::ProposeAllocationRequest {
    pb::ProposeAllocationRequest {
        specialty: specialty.into(),
        horizon_start: start.into(),
        horizon_end: end.into(),
    }
}

/// A cardiology run over the horizon.
pub(crate) async fn propose(
    app: &mut TestApp,
    start: &str,
    end: &str,
) -> Result<pb::Proposal, Status> {
    let request = run("cardiology", start, end);
    answer(app.client.propose_allocation(request).await)
}

/// Every allocation of a proposal, read two to a page.
pub(crate) async fn allocations(
    app: &mut TestApp,
    proposal_id: &str,
) -> Vec<pb::ProposedAllocation> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = ok(app
            .client
            .list_proposal_allocations(pb::ListProposalAllocationsRequest {
                proposal_id: proposal_id.into(),
                page_size: 2,
                page_token: token,
            }))
        .await;
        all.extend(page.allocations);
        if page.next_page_token.is_empty() {
            return all;
        }
        token = page.next_page_token;
    }
}

pub(crate) async fn commit(app: &mut TestApp, id: &str) -> pb::CommitProposalResponse {
    ok(app
        .client
        .commit_proposal(pb::CommitProposalRequest { id: id.into() }))
    .await
}

/// `hours` from now, as a request's `hold_until`.
pub(crate) fn hours_ahead(hours: i64) -> prost_types::Timestamp {
    let until = chrono::Utc::now() + chrono::Duration::hours(hours);
    prost_types::Timestamp {
        seconds: until.timestamp(),
        nanos: 0,
    }
}

/// An offer of a freed slot, held for `hours`.
pub(crate) fn offer_of(slot_id: &str, hours: i64) -> pb::OfferFreedSlotRequest {
    pb::OfferFreedSlotRequest {
        slot_id: slot_id.into(),
        hold_until: Some(hours_ahead(hours)),
    }
}

/// Offers a freed slot, held for two hours.
pub(crate) async fn offer(app: &mut TestApp, slot_id: &str) -> Result<pb::SlotOffer, Status> {
    answer(app.client.offer_freed_slot(offer_of(slot_id, 2)).await)
}

/// The clinician is away from `start` to `end`, for `reason`.
pub(crate) async fn absence(
    app: &mut TestApp,
    clinician_id: &str,
    (start, end): (prost_types::Timestamp, prost_types::Timestamp),
    reason: pb::AbsenceReason,
) -> pb::Absence {
    ok(app.client.create_absence(pb::CreateAbsenceRequest {
        absence: Some(pb::Absence {
            clinician_id: clinician_id.into(),
            start_time: Some(start),
            end_time: Some(end),
            reason: reason as i32,
            ..Default::default()
        }),
        request_id: String::new(),
    }))
    .await
}

/// Sick on 1 June 2026 (UTC).
pub(crate) async fn sick_on_1_june(app: &mut TestApp, clinician_id: &str) -> pb::Absence {
    let day = (ts("2026-06-01T00:00:00Z"), ts("2026-06-02T00:00:00Z"));
    absence(app, clinician_id, day, pb::AbsenceReason::Sickness).await
}

/// RebookDisplaced over June 2026 for an absence or the named appointments.
pub(crate) fn rebook_in_june(
    absence_id: &str,
    appointment_ids: &[&str],
) -> pb::RebookDisplacedRequest {
    pb::RebookDisplacedRequest {
        absence_id: absence_id.into(),
        appointment_ids: appointment_ids.iter().map(|id| (*id).to_owned()).collect(),
        horizon_start: "2026-06-01".into(),
        horizon_end: "2026-06-30".into(),
    }
}

pub(crate) async fn rebook(
    app: &mut TestApp,
    request: pb::RebookDisplacedRequest,
) -> Result<pb::RebookDisplacedResponse, Status> {
    answer(app.client.rebook_displaced(request).await)
}

/// A referral as it stands today.
pub(crate) async fn referral_now(app: &mut TestApp, id: &str) -> pb::Referral {
    ok(app.client.get_referral(pb::GetReferralRequest {
        id: id.into(),
        as_of: String::new(),
    }))
    .await
}

pub(crate) async fn appointment(app: &mut TestApp, id: &str) -> pb::Appointment {
    ok(app
        .client
        .get_appointment(pb::GetAppointmentRequest { id: id.into() }))
    .await
}

/// A page of appointments (`request` names the filters and the size).
pub(crate) async fn appointments(
    app: &mut TestApp,
    request: pb::ListAppointmentsRequest,
) -> Vec<pb::Appointment> {
    ok(app.client.list_appointments(request)).await.appointments
}
