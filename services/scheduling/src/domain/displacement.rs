//! The displaced-appointment rule: which appointments an absence or a
//! hospital cancellation displaces, which of them RebookDisplaced moves (and
//! why the others are not moved), and how and where each may move.

use std::collections::HashMap;

use medsec_platform::ApiError;
use medsec_platform::request::Reader;
use uuid::Uuid;

use super::allocation::{ModelError, Solved, Terms};
use super::{AppointmentStatus, CancelledBy, ReferralStatus};

/// What RebookDisplaced is asked to rebook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Displacement {
    /// The appointments an absence displaced: those still booked in its
    /// slots.
    Absence(Uuid),
    /// Appointments named one by one, each of which must be displaced.
    Appointments(Vec<Uuid>),
}

/// A displaced appointment (or one named as displaced), with what the rule
/// needs to know of its slot and referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub slot_id: Uuid,
    pub status: AppointmentStatus,
    pub cancelled_by: Option<CancelledBy>,
    pub reason: String,
    /// Its slot was made busy-unavailable (the clinician is away).
    pub slot_unavailable: bool,
    /// `None`: booked without a referral.
    pub referral: Option<Referral>,
}

/// The referral of a displaced appointment, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    pub id: Uuid,
    pub status: ReferralStatus,
    pub specialty: String,
}

/// How a displaced appointment moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Still booked: the appointment itself moves, only if it is still
    /// booked in the slot it was displaced from.
    Reschedule { from_slot: Uuid },
    /// Cancelled by the hospital: its referral is booked anew.
    BookAnew,
}

/// An appointment left where it is, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotMoved {
    pub appointment_id: Uuid,
    pub reason: String,
}

/// The displaced appointments to move, and those not moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub movable: Vec<Appointment>,
    pub not_moved: Vec<NotMoved>,
}

/// A displaced appointment's new slot, with the model's terms of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMove {
    pub from: Appointment,
    pub to_slot: Uuid,
    pub terms: Terms,
}

/// Most appointments one RebookDisplaced names.
pub const MAX_APPOINTMENTS: usize = 500;

impl Displacement {
    /// Reads a RebookDisplaced request's `absence_id` or `appointment_ids`
    /// (one of them, not both).
    pub fn read(r: &mut Reader, absence_id: &str, appointment_ids: &[String]) -> Option<Self> {
        let absence = r.optional_id("absence_id", absence_id);
        let mut bad_id = false;
        let ids = r.each(
            "appointment_ids",
            appointment_ids,
            MAX_APPOINTMENTS,
            |r, field, text| {
                let id = r.id(field, text);
                bad_id |= id.is_none();
                id
            },
        );
        match (absence_id.trim().is_empty(), appointment_ids.is_empty()) {
            (true, true) => {
                r.add("absence_id", "is required unless appointment_ids are given");
                None
            }
            (false, false) => {
                r.add("appointment_ids", "must be empty when absence_id is given");
                None
            }
            (false, true) => absence.map(Self::Absence),
            (true, false) => (!bad_id).then_some(Self::Appointments(ids)),
        }
    }

    /// Sorts the appointments found for this displacement (an absence's, in
    /// start order; or those named, in any order) into those to move and
    /// those not moved, with why.
    ///
    /// The set is read twice: first to learn which specialties to lock
    /// (`locked` is `None`), when a named appointment that is not displaced
    /// is refused; then under the run lock (`locked`: the specialties the run
    /// holds), when such an appointment is one dealt with meanwhile, and one
    /// whose referral's specialty the run does not hold was displaced after
    /// the run started.
    pub fn select(
        &self,
        found: Vec<Appointment>,
        locked: Option<&[String]>,
    ) -> Result<Selection, ApiError> {
        let mut not_moved = Vec::new();
        let displaced = match self {
            Self::Absence(_) => found
                .into_iter()
                .filter(|a| a.status == AppointmentStatus::Booked)
                .collect(),
            Self::Appointments(ids) => {
                let mut by_id: HashMap<Uuid, Appointment> =
                    found.into_iter().map(|a| (a.id, a)).collect();
                let mut displaced = Vec::with_capacity(ids.len());
                for &id in ids {
                    let appointment = by_id
                        .remove(&id)
                        .ok_or_else(|| ApiError::not_found("appointment", id.to_string()))?;
                    if appointment.is_displaced() {
                        displaced.push(appointment);
                    } else if locked.is_none() {
                        return Err(ApiError::wrong_state(
                            format!("appointments/{id}"),
                            appointment.status.as_str(),
                            "rebook it (only one cancelled by the hospital, or booked in a \
                             busy-unavailable slot, is displaced)",
                        ));
                    } else {
                        not_moved.push(NotMoved {
                            appointment_id: id,
                            reason: format!(
                                "is {} in slot {} and no longer displaced: already dealt with",
                                appointment.status, appointment.slot_id
                            ),
                        });
                    }
                }
                displaced
            }
        };

        let mut movable = Vec::new();
        for appointment in displaced {
            match appointment.not_movable() {
                Some(reason) => not_moved.push(NotMoved {
                    appointment_id: appointment.id,
                    reason,
                }),
                None => movable.push(appointment),
            }
        }
        if let Some(locked) = locked {
            let (held, unheld): (Vec<_>, Vec<_>) = movable
                .into_iter()
                .partition(|a| a.specialty().is_some_and(|s| locked.contains(s)));
            not_moved.extend(unheld.into_iter().map(|a| NotMoved {
                appointment_id: a.id,
                reason: "was displaced while this run started: run it again".to_owned(),
            }));
            movable = held;
        }
        Ok(Selection { movable, not_moved })
    }
}

impl Appointment {
    /// Displaced: cancelled by the hospital, or still booked in a slot made
    /// busy-unavailable.
    pub fn is_displaced(&self) -> bool {
        match self.status {
            AppointmentStatus::Cancelled => self.cancelled_by == Some(CancelledBy::Hospital),
            AppointmentStatus::Booked => self.slot_unavailable,
            _ => false,
        }
    }

    /// How it moves.
    pub fn how_to_move(&self) -> Move {
        if self.status == AppointmentStatus::Booked {
            Move::Reschedule {
                from_slot: self.slot_id,
            }
        } else {
            Move::BookAnew
        }
    }

    fn specialty(&self) -> Option<&String> {
        self.referral.as_ref().map(|r| &r.specialty)
    }

    /// Why a displaced appointment is not for the optimiser to move: it has
    /// no referral, or its referral has moved on (booked elsewhere after a
    /// cancellation, removed, already rebooked).
    fn not_movable(&self) -> Option<String> {
        let Some(referral) = &self.referral else {
            return Some("has no referral to re-allocate: rebook it by hand".to_owned());
        };
        // While displaced, the referral is booked as long as its appointment
        // is, and waiting once the hospital cancelled it.
        let expected = if self.status == AppointmentStatus::Booked {
            ReferralStatus::Booked
        } else {
            ReferralStatus::Waiting
        };
        (referral.status != expected).then(|| {
            format!(
                "referral {} is {}: already dealt with",
                referral.id, referral.status
            )
        })
    }
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.movable.is_empty()
    }

    /// The specialties of the referrals to move, each once, in order.
    pub fn specialties(&self) -> Vec<String> {
        let mut specialties: Vec<String> = Vec::new();
        for specialty in self.movable.iter().filter_map(Appointment::specialty) {
            if !specialties.contains(specialty) {
                specialties.push(specialty.clone());
            }
        }
        specialties
    }

    /// The referrals to place.
    pub fn referral_ids(&self) -> Vec<Uuid> {
        self.movable
            .iter()
            .filter_map(|a| a.referral.as_ref().map(|r| r.id))
            .collect()
    }

    /// The appointments moving: not counted as their patients' other
    /// commitments when the new places are chosen.
    pub fn appointment_ids(&self) -> Vec<Uuid> {
        self.movable.iter().map(|a| a.id).collect()
    }

    /// The slots the appointments are displaced from: never offered back.
    pub fn came_from(&self) -> Vec<Uuid> {
        self.movable.iter().map(|a| a.slot_id).collect()
    }

    /// Where `solved` (an instance of these referrals) places each
    /// appointment's referral; one it leaves out is not moved, and joins
    /// those already not moved.
    pub fn plan(self, solved: &Solved) -> Result<(Vec<PlannedMove>, Vec<NotMoved>), ModelError> {
        let Self {
            movable,
            mut not_moved,
        } = self;
        let mut planned = Vec::with_capacity(movable.len());
        for from in movable {
            let Some(referral) = &from.referral else {
                continue;
            };
            match solved.placed(referral.id)? {
                Some(placement) => planned.push(PlannedMove {
                    to_slot: placement.slot_id,
                    terms: placement.terms,
                    from,
                }),
                None => not_moved.push(NotMoved {
                    appointment_id: from.id,
                    reason: "no feasible free slot in the horizon".to_owned(),
                }),
            }
        }
        Ok((planned, not_moved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::allocation::tests::{id, instance, referral, slot};
    use crate::domain::tests::violations;
    use medsec_scheduler::model::Priority;

    /// Appointment `n` for referral `n` (patient `n + 1000`), booked in slot
    /// `n + 100`, cardiology.
    fn booked(n: u128) -> Appointment {
        Appointment {
            id: id(n + 500),
            patient_id: id(n + 1000),
            slot_id: id(n + 100),
            status: AppointmentStatus::Booked,
            cancelled_by: None,
            reason: "chest pain".into(),
            slot_unavailable: true,
            referral: Some(Referral {
                id: id(n),
                status: ReferralStatus::Booked,
                specialty: "cardiology".into(),
            }),
        }
    }

    fn cancelled_by_hospital(n: u128) -> Appointment {
        let mut a = booked(n);
        a.status = AppointmentStatus::Cancelled;
        a.cancelled_by = Some(CancelledBy::Hospital);
        a.slot_unavailable = false;
        a.referral.as_mut().unwrap().status = ReferralStatus::Waiting;
        a
    }

    fn ids(appointments: &[Appointment]) -> Vec<Uuid> {
        appointments.iter().map(|a| a.id).collect()
    }

    fn reasons(selection: &Selection) -> Vec<(Uuid, &str)> {
        selection
            .not_moved
            .iter()
            .map(|n| (n.appointment_id, n.reason.as_str()))
            .collect()
    }

    #[test]
    fn displaced_means_cancelled_by_the_hospital_or_booked_in_a_busy_unavailable_slot() {
        assert!(booked(1).is_displaced());
        assert!(cancelled_by_hospital(1).is_displaced());
        let mut working = booked(1);
        working.slot_unavailable = false;
        assert!(!working.is_displaced());
        let mut by_patient = cancelled_by_hospital(1);
        by_patient.cancelled_by = Some(CancelledBy::Patient);
        assert!(!by_patient.is_displaced());
        let mut arrived = booked(1);
        arrived.status = AppointmentStatus::Arrived;
        assert!(!arrived.is_displaced());
    }

    #[test]
    fn a_booked_appointment_moves_from_its_slot_and_a_cancelled_one_is_booked_anew() {
        assert_eq!(
            booked(1).how_to_move(),
            Move::Reschedule { from_slot: id(101) }
        );
        assert_eq!(cancelled_by_hospital(1).how_to_move(), Move::BookAnew);
    }

    #[test]
    fn an_absence_moves_its_booked_appointments_that_have_a_waiting_list_referral() {
        let mut arrived = booked(1);
        arrived.status = AppointmentStatus::Arrived;
        let mut no_referral = booked(2);
        no_referral.referral = None;
        let mut rebooked = booked(3);
        rebooked.referral.as_mut().unwrap().status = ReferralStatus::Removed;
        let found = vec![arrived, no_referral, booked(4), rebooked, booked(5)];
        let selection = Displacement::Absence(id(9))
            .select(found.clone(), None)
            .unwrap();
        assert_eq!(ids(&selection.movable), [id(504), id(505)]);
        assert_eq!(
            reasons(&selection),
            [
                (id(502), "has no referral to re-allocate: rebook it by hand"),
                (
                    id(503),
                    format!("referral {} is removed: already dealt with", id(3)).as_str()
                ),
            ]
        );
        assert_eq!(selection.came_from(), [id(104), id(105)]);
        assert_eq!(selection.referral_ids(), [id(4), id(5)]);
        assert_eq!(selection.appointment_ids(), [id(504), id(505)]);
        // The same read under the run lock of cardiology finds the same.
        let locked = ["cardiology".to_owned()];
        let again = Displacement::Absence(id(9))
            .select(found, Some(&locked))
            .unwrap();
        assert_eq!(again, selection);
    }

    #[test]
    fn a_cancelled_appointments_referral_must_still_be_waiting() {
        let mut booked_again = cancelled_by_hospital(2);
        booked_again.referral.as_mut().unwrap().status = ReferralStatus::Booked;
        let named = Displacement::Appointments(vec![id(501), id(502)]);
        let selection = named
            .select(vec![booked_again, cancelled_by_hospital(1)], None)
            .unwrap();
        assert_eq!(ids(&selection.movable), [id(501)]);
        assert_eq!(
            reasons(&selection),
            [(
                id(502),
                format!("referral {} is booked: already dealt with", id(2)).as_str()
            )]
        );
    }

    #[test]
    fn a_named_appointment_not_displaced_is_refused_first_and_dealt_with_under_the_lock() {
        let mut working = booked(2);
        working.slot_unavailable = false;
        let named = Displacement::Appointments(vec![id(501), id(502)]);
        let found = vec![booked(1), working];
        let error = named.select(found.clone(), None).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "appointments/{} is booked: cannot rebook",
                id(502)
            )),
            "{message}"
        );
        let locked = ["cardiology".to_owned()];
        let selection = named.select(found, Some(&locked)).unwrap();
        assert_eq!(ids(&selection.movable), [id(501)]);
        assert_eq!(
            reasons(&selection),
            [(
                id(502),
                format!(
                    "is booked in slot {} and no longer displaced: already dealt with",
                    id(102)
                )
                .as_str()
            )]
        );
        let missing = Displacement::Appointments(vec![id(501), id(777)]);
        let error = missing.select(vec![booked(1)], None).unwrap_err();
        assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    }

    #[test]
    fn under_the_lock_only_the_specialties_the_run_holds_are_moved() {
        let mut skin = booked(2);
        skin.referral.as_mut().unwrap().specialty = "dermatology".into();
        let found = vec![booked(1), skin, booked(3)];
        let first = Displacement::Absence(id(9))
            .select(found.clone(), None)
            .unwrap();
        assert_eq!(first.specialties(), ["cardiology", "dermatology"]);
        let locked = ["cardiology".to_owned()];
        let selection = Displacement::Absence(id(9))
            .select(found, Some(&locked))
            .unwrap();
        assert_eq!(ids(&selection.movable), [id(501), id(503)]);
        assert_eq!(
            reasons(&selection),
            [(
                id(502),
                "was displaced while this run started: run it again"
            )]
        );
    }

    #[test]
    fn the_plan_follows_the_solve_and_keeps_the_reasons_in_order() {
        let mut selection = Displacement::Absence(id(9))
            .select(vec![booked(1), booked(2)], None)
            .unwrap();
        selection.not_moved.push(NotMoved {
            appointment_id: id(600),
            reason: "earlier".into(),
        });
        // One free slot: the urgent referral 2 gets it, referral 1 does not.
        let solved = crate::domain::allocation::solve(
            &instance(
                vec![slot(200, 90, "2026-06-08")],
                vec![
                    referral(1, Priority::Routine, "2026-05-20"),
                    referral(2, Priority::Urgent, "2026-05-20"),
                ],
            ),
            &medsec_scheduler::SolveOptions::default(),
        )
        .unwrap();
        let (planned, not_moved) = selection.plan(&solved).unwrap();
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].from, booked(2));
        assert_eq!(planned[0].to_slot, id(200));
        assert_eq!(planned[0].terms.wait_days, 19);
        let reasons: Vec<_> = not_moved.iter().map(|n| n.appointment_id).collect();
        assert_eq!(reasons, [id(600), id(501)]);
        assert_eq!(not_moved[1].reason, "no feasible free slot in the horizon");
    }

    /// The displacement read, or the fields refused.
    fn read(absence_id: &str, appointment_ids: &[&str]) -> Result<Displacement, Vec<String>> {
        let mut r = Reader::new();
        let ids: Vec<String> = appointment_ids.iter().map(|s| (*s).to_owned()).collect();
        let read = Displacement::read(&mut r, absence_id, &ids);
        read.ok_or_else(|| {
            let bad = violations(r);
            bad.iter()
                .map(|v| v.split(':').next().unwrap_or_default().to_owned())
                .collect()
        })
    }

    #[test]
    fn a_request_names_an_absence_or_appointments_not_both() {
        let (a, b) = (id(1).to_string(), id(2).to_string());
        assert_eq!(read(&a, &[]), Ok(Displacement::Absence(id(1))));
        assert_eq!(
            read("", &[&a, &b, &a]),
            Ok(Displacement::Appointments(vec![id(1), id(2)]))
        );
        assert_eq!(read("", &[]), Err(vec!["absence_id".to_owned()]));
        assert_eq!(read(" ", &[]), Err(vec!["absence_id".to_owned()]));
        assert_eq!(read(&a, &[&b]), Err(vec!["appointment_ids".to_owned()]));
        assert_eq!(
            read("x", &[&a, "y"]),
            Err(vec![
                "absence_id".to_owned(),
                "appointment_ids[1]".to_owned(),
                "appointment_ids".to_owned()
            ])
        );
        assert_eq!(read("", &["y"]), Err(vec!["appointment_ids[0]".to_owned()]));
    }
}
