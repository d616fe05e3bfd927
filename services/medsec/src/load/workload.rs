//! The workloads: each a step a member of staff takes, issuing one or a few
//! RPCs, each timed apart under its own name (the step as a whole too).
//!
//! | workload | one step |
//! |---|---|
//! | `booking` | take a waiting referral (or, with none left, any patient); `ListSlots` free slots of its specialty from a random time in the seeded weeks; `BookAppointment` one of them. About 5% of bookings are then cancelled by the patient (`CancelAppointment`) and 5% moved to another slot of the same page (`RescheduleAppointment`). With no free slot left, the hospital cancels the oldest booking instead, so a long run keeps a diary to book into. |
//! | `records` | `CreatePatient` (a new registration), `GetPatientSummary` of that patient, `ListPatients` by a family-name prefix |
//! | `billing` | `CreateCharge` for a new encounter of a patient, paid by the patient; `CreateInvoice`; `IssueInvoice`; `RecordPayment` of the balance (a quarter of payments are part payments of half) |
//! | `diary-read` | `GetDiary` of a clinician for a week from a random day |
//! | `mixed` | a secretary's day in proportion: 20% diary reads, 20% patient look-ups (`ListPatients` by prefix, then `GetPatient`), 25% booking steps, 15% registrations (`CreatePatient`), 15% billing steps, 5% cancellations of a booked appointment (a booking step when none is booked). The steps follow one round of 20 shared by every worker (`MIXED_ROUND`), so the proportions hold exactly over any 20 steps in a row |
//! | `ping`, `insert` | the ceiling: `Ping`, or `Insert` of one row |
//!
//! Contention a busy clinic meets by design is not an error: a slot taken
//! or a patient double-booked since the slot was listed
//! (`FAILED_PRECONDITION` on booking, moving or cancelling), a registration
//! whose NHS number is already held (`ALREADY_EXISTS`, only when runs share
//! a database), an invoice whose charge another invoice took
//! (`FAILED_PRECONDITION` on issue), and `ABORTED` anywhere (a concurrent
//! change won a race; the API says to re-read and retry).

use std::future::Future;
use std::sync::atomic::Ordering;

use chrono::Utc;
use medsec_platform::time::{format_civil_date, to_timestamp, today_in_london};
use medsec_proto::billing::v1 as billing;
use medsec_proto::ceiling::v1 as ceiling;
use medsec_proto::records::v1 as records;
use medsec_proto::scheduling::v1 as scheduling;
use tokio::time::Instant;
use tonic::{Code, Status};

use super::Workload;
use super::client::Clients;
use super::rng::Rng;
use super::seed::{self, PatientRef};
use super::stats::{Outcome, Recorder};
use super::world::{Booked, World, lock, nothing_seeded};

/// What a `mixed` step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chore {
    DiaryRead,
    PatientLookup,
    Booking,
    Registration,
    Billing,
    Cancellation,
}

/// The round of a secretary's day the `mixed` workload's steps go through,
/// the chores spread out: 4 diary reads, 4 look-ups, 5 bookings, 3
/// registrations, 3 billing steps, 1 cancellation.
const MIXED_ROUND: [Chore; 20] = {
    use Chore::{
        Billing as P, Booking as B, Cancellation as C, DiaryRead as D, PatientLookup as L,
        Registration as R,
    };
    [B, D, L, R, P, B, D, L, B, R, P, D, L, B, C, D, L, R, P, B]
};

/// Free slots a booking step lists at once.
const SLOT_PAGE: i32 = 20;

fn request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Times each RPC of a step; the step's first call is timed from the step's
/// scheduled start when it has one (the open loop), so time spent waiting
/// to be sent counts.
struct Timer<'a> {
    recorder: &'a Recorder,
    scheduled: Option<Instant>,
    /// The code of the last answer counted as contention.
    contended: Option<Code>,
}

impl Timer<'_> {
    /// Runs `call` as RPC `rpc`, counting `expected` codes (and ABORTED) as
    /// contention.
    async fn call<T>(
        &mut self,
        rpc: &'static str,
        expected: &[Code],
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        let start = self.scheduled.take().unwrap_or_else(Instant::now);
        match call.await {
            Ok(response) => {
                self.recorder.rpc(rpc, start, Outcome::Ok);
                Ok(response.into_inner())
            }
            Err(status) => {
                let code = status.code();
                let outcome = if code == Code::Aborted || expected.contains(&code) {
                    self.contended = Some(code);
                    Outcome::Contention(code)
                } else {
                    Outcome::Error(code)
                };
                self.recorder.rpc(rpc, start, outcome);
                Err(status)
            }
        }
    }
}

/// One step in progress.
struct Step<'a> {
    clients: &'a mut Clients,
    world: &'a World,
    rng: &'a mut Rng,
    timer: Timer<'a>,
}

/// Runs one step of `workload` and records it: from `scheduled` when the
/// open loop scheduled it, else from now.
pub(crate) async fn run_step(
    workload: Workload,
    clients: &mut Clients,
    world: &World,
    rng: &mut Rng,
    recorder: &Recorder,
    scheduled: Option<Instant>,
) {
    let start = scheduled.unwrap_or_else(Instant::now);
    let mut step = Step {
        clients,
        world,
        rng,
        timer: Timer {
            recorder,
            scheduled,
            contended: None,
        },
    };
    let result = match workload {
        Workload::Booking => step.booking().await,
        Workload::Records => step.records().await,
        Workload::Billing => step.billing().await,
        Workload::DiaryRead => step.diary_read().await,
        Workload::Mixed => step.mixed().await,
        Workload::Ping => step.ping().await,
        Workload::Insert => step.insert().await,
    };
    let outcome = match result {
        Ok(()) => Outcome::Ok,
        Err(status) if step.timer.contended == Some(status.code()) => {
            Outcome::Contention(status.code())
        }
        Err(status) => Outcome::Error(status.code()),
    };
    recorder.step(start, outcome);
}

impl Step<'_> {
    async fn booking(&mut self) -> Result<(), Status> {
        let Some(&specialty) = self.rng.pick(&self.world.clinic.specialties) else {
            return Err(nothing_seeded());
        };
        let referral = self.world.take_referral(specialty, self.rng);
        let patient_id = match &referral {
            Some(referral) => referral.patient_id.clone(),
            None => match self.world.any_patient(self.rng) {
                Ok(patient) => patient.id,
                Err(status) => return Err(status),
            },
        };
        let slots = match self.free_slots(specialty).await {
            Ok(slots) => slots,
            Err(status) => {
                self.world.wait(referral);
                return Err(status);
            }
        };
        let Some(slot) = self.rng.pick(&slots).cloned() else {
            self.world.wait(referral);
            return self.cancel_oldest(scheduling::CancelledBy::Hospital).await;
        };
        let request = scheduling::BookAppointmentRequest {
            slot_id: slot.id.clone(),
            patient_id,
            referral_id: referral.as_ref().map(|r| r.id.clone()).unwrap_or_default(),
            reason: "new outpatient appointment".into(),
            request_id: request_id(),
        };
        let booked = self
            .timer
            .call(
                "BookAppointment",
                &[Code::FailedPrecondition],
                self.clients.scheduling.book_appointment(request),
            )
            .await;
        let appointment = match booked {
            Ok(appointment) => appointment,
            Err(status) => {
                self.world.wait(referral);
                return Err(status);
            }
        };
        let booked = Booked {
            appointment_id: appointment.id,
            referral,
        };
        match self.rng.below(100) {
            0..5 => self.cancel(booked, scheduling::CancelledBy::Patient).await,
            5..10 => {
                let others: Vec<_> = slots.iter().filter(|s| s.id != slot.id).collect();
                let Some(other) = self.rng.pick(&others).map(|s| s.id.clone()) else {
                    lock(&self.world.booked).push_back(booked);
                    return Ok(());
                };
                let moved = self
                    .timer
                    .call(
                        "RescheduleAppointment",
                        &[Code::FailedPrecondition],
                        self.clients.scheduling.reschedule_appointment(
                            scheduling::RescheduleAppointmentRequest {
                                id: booked.appointment_id.clone(),
                                new_slot_id: other,
                            },
                        ),
                    )
                    .await;
                // Moved or not, it is still booked.
                lock(&self.world.booked).push_back(booked);
                moved.map(drop)
            }
            _ => {
                lock(&self.world.booked).push_back(booked);
                Ok(())
            }
        }
    }

    /// A page of free slots of `specialty` from a random time in the seeded
    /// weeks, or from now when none is left after it.
    async fn free_slots(&mut self, specialty: &str) -> Result<Vec<scheduling::Slot>, Status> {
        let now = Utc::now();
        let minutes = self.rng.below(u64::from(self.world.clinic.days) * 24 * 60);
        let from = now + chrono::Duration::minutes(i64::try_from(minutes).unwrap_or(0));
        for after in [from, now] {
            let request = scheduling::ListSlotsRequest {
                page_size: SLOT_PAGE,
                specialty: specialty.to_owned(),
                kind: scheduling::SlotKind::New as i32,
                start_after: Some(to_timestamp(after)),
                free_only: true,
                ..Default::default()
            };
            let page = self
                .timer
                .call(
                    "ListSlots",
                    &[],
                    self.clients.scheduling.list_slots(request),
                )
                .await?;
            if !page.slots.is_empty() || after == now {
                return Ok(page.slots);
            }
        }
        Ok(Vec::new())
    }

    async fn cancel(&mut self, booked: Booked, by: scheduling::CancelledBy) -> Result<(), Status> {
        let cancelled = self
            .timer
            .call(
                "CancelAppointment",
                &[Code::FailedPrecondition],
                self.clients
                    .scheduling
                    .cancel_appointment(scheduling::CancelAppointmentRequest {
                        id: booked.appointment_id.clone(),
                        cancelled_by: by as i32,
                        reason: match by {
                            scheduling::CancelledBy::Hospital => "clinic rearranged".into(),
                            _ => "patient cannot attend".into(),
                        },
                    }),
            )
            .await;
        match &cancelled {
            // Cancelled now or before: its referral is waiting again.
            Ok(_) => self.world.wait(booked.referral),
            Err(status) if status.code() == Code::FailedPrecondition => {
                self.world.wait(booked.referral);
            }
            Err(_) => lock(&self.world.booked).push_back(booked),
        }
        cancelled.map(drop)
    }

    /// Cancels the longest-held booking, if any.
    async fn cancel_oldest(&mut self, by: scheduling::CancelledBy) -> Result<(), Status> {
        let oldest = lock(&self.world.booked).pop_front();
        match oldest {
            Some(booked) => self.cancel(booked, by).await,
            None => Ok(()),
        }
    }

    /// Registers a new patient.
    async fn register(&mut self) -> Result<PatientRef, Status> {
        let request = seed::registration(self.rng, self.world.nhs.next(), request_id());
        let patient = self
            .timer
            .call(
                "CreatePatient",
                &[Code::AlreadyExists],
                self.clients.records.create_patient(request),
            )
            .await?;
        let patient = PatientRef {
            id: patient.id,
            family_name: patient.family_name,
        };
        self.world.registered(patient.clone());
        Ok(patient)
    }

    async fn records(&mut self) -> Result<(), Status> {
        let patient = self.register().await?;
        self.timer
            .call(
                "GetPatientSummary",
                &[],
                self.clients
                    .records
                    .get_patient_summary(records::GetPatientSummaryRequest {
                        patient_id: patient.id,
                    }),
            )
            .await?;
        let someone = self.world.any_patient(self.rng)?;
        self.list_patients(&someone.family_name).await.map(drop)
    }

    /// Patients whose family name starts as `family_name` does (its first
    /// three letters, as a secretary types them).
    async fn list_patients(&mut self, family_name: &str) -> Result<Vec<records::Patient>, Status> {
        let request = records::ListPatientsRequest {
            page_size: 10,
            family_name_prefix: family_name.chars().take(3).collect(),
            ..Default::default()
        };
        let page = self
            .timer
            .call(
                "ListPatients",
                &[],
                self.clients.records.list_patients(request),
            )
            .await?;
        Ok(page.patients)
    }

    /// A secretary answering the phone: find the caller, open their record.
    async fn patient_lookup(&mut self) -> Result<(), Status> {
        let caller = self.world.any_patient(self.rng)?;
        let found = self.list_patients(&caller.family_name).await?;
        let id = found
            .iter()
            .find(|patient| patient.id == caller.id)
            .or_else(|| found.first())
            .map_or(caller.id, |patient| patient.id.clone());
        self.timer
            .call(
                "GetPatient",
                &[],
                self.clients
                    .records
                    .get_patient(records::GetPatientRequest { id }),
            )
            .await
            .map(drop)
    }

    async fn billing(&mut self) -> Result<(), Status> {
        let patient = self.world.take_payer(self.rng)?;
        let billed = self.bill(&patient.id).await;
        self.world.release_payer(patient);
        billed
    }

    async fn bill(&mut self, patient_id: &str) -> Result<(), Status> {
        let self_pay = || billing::Payer {
            kind: billing::PayerKind::SelfPay as i32,
            insurer: None,
        };
        let Some(code) = self.rng.pick(&self.world.clinic.price_codes).cloned() else {
            return Err(nothing_seeded());
        };
        let charge = billing::CreateChargeRequest {
            charge: Some(billing::Charge {
                appointment_id: request_id(),
                patient_id: patient_id.to_owned(),
                code,
                quantity: 1,
                service_date: format_civil_date(today_in_london()),
                payer: Some(self_pay()),
                ..Default::default()
            }),
        };
        self.timer
            .call(
                "CreateCharge",
                &[],
                self.clients.billing.create_charge(charge),
            )
            .await?;
        let draft = self
            .timer
            .call(
                "CreateInvoice",
                &[],
                self.clients
                    .billing
                    .create_invoice(billing::CreateInvoiceRequest {
                        patient_id: patient_id.to_owned(),
                        payer: Some(self_pay()),
                        request_id: request_id(),
                    }),
            )
            .await?;
        let issued = self
            .timer
            .call(
                "IssueInvoice",
                &[Code::FailedPrecondition],
                self.clients
                    .billing
                    .issue_invoice(billing::IssueInvoiceRequest {
                        id: draft.id,
                        etag: draft.etag,
                        ..Default::default()
                    }),
            )
            .await?;
        if issued.balance_pence <= 0 {
            return Ok(());
        }
        let amount = if self.rng.below(4) == 0 {
            (issued.balance_pence / 2).max(1)
        } else {
            issued.balance_pence
        };
        self.timer
            .call(
                "RecordPayment",
                &[],
                self.clients
                    .billing
                    .record_payment(billing::RecordPaymentRequest {
                        invoice_id: issued.id,
                        amount_pence: amount,
                        method: billing::PaymentMethod::Card as i32,
                        request_id: request_id(),
                        ..Default::default()
                    }),
            )
            .await
            .map(drop)
    }

    async fn diary_read(&mut self) -> Result<(), Status> {
        let Some(clinician) = self.rng.pick(&self.world.clinic.clinicians) else {
            return Err(nothing_seeded());
        };
        let offset = self.rng.below(u64::from(self.world.clinic.days));
        let date = self.world.clinic.first_day
            + chrono::Duration::days(i64::try_from(offset).unwrap_or(0));
        let request = scheduling::GetDiaryRequest {
            clinician_id: clinician.id.clone(),
            date: format_civil_date(date),
            span: scheduling::DiarySpan::Week as i32,
        };
        self.timer
            .call("GetDiary", &[], self.clients.scheduling.get_diary(request))
            .await
            .map(drop)
    }

    async fn mixed(&mut self) -> Result<(), Status> {
        let turn = self.world.mixed_turn.fetch_add(1, Ordering::Relaxed);
        match MIXED_ROUND[turn % MIXED_ROUND.len()] {
            Chore::DiaryRead => self.diary_read().await,
            Chore::PatientLookup => self.patient_lookup().await,
            Chore::Booking => self.booking().await,
            Chore::Registration => self.register().await.map(drop),
            Chore::Billing => self.billing().await,
            Chore::Cancellation => {
                let booked = lock(&self.world.booked).pop_front();
                match booked {
                    Some(booked) => self.cancel(booked, scheduling::CancelledBy::Patient).await,
                    None => self.booking().await,
                }
            }
        }
    }

    async fn ping(&mut self) -> Result<(), Status> {
        self.timer
            .call(
                "Ping",
                &[],
                self.clients.ceiling.ping(ceiling::PingRequest {}),
            )
            .await
            .map(drop)
    }

    async fn insert(&mut self) -> Result<(), Status> {
        let request = ceiling::InsertRequest {
            note: "medsec load".into(),
        };
        self.timer
            .call("Insert", &[], self.clients.ceiling.insert(request))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mixed_round_keeps_the_documented_proportions() {
        let count = |chore| MIXED_ROUND.iter().filter(|c| **c == chore).count();
        assert_eq!(count(Chore::DiaryRead) + count(Chore::PatientLookup), 8);
        assert_eq!(count(Chore::Booking), 5);
        assert_eq!(count(Chore::Registration), 3);
        assert_eq!(count(Chore::Billing), 3);
        assert_eq!(count(Chore::Cancellation), 1);
    }
}
