//! What the workers of a run share: the seeded clinic and the pools its
//! work draws from and returns to.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use medsec_platform::time::today_in_london;
use tonic::Status;

use super::rng::Rng;
use super::seed::{self, Clinic, NhsNumbers, PatientRef, ReferralRef, Seeded};

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The pools hold plain data; a worker that panicked holding one leaves
    // nothing half-changed worth stopping for.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An appointment a booking step made and left booked.
#[derive(Debug, Clone)]
pub(super) struct Booked {
    pub(super) appointment_id: String,
    pub(super) referral: Option<ReferralRef>,
}

/// What the workers share: the seeded clinic, and the pools its work draws
/// from and returns to (the waiting list, the booked appointments, the
/// patients, who is being billed).
#[derive(Debug)]
pub(crate) struct World {
    pub(super) clinic: Clinic,
    pub(super) patients: RwLock<Vec<PatientRef>>,
    /// Patients no billing step is billing now; a step takes one, so two
    /// steps rarely invoice one patient's charges at once.
    pub(super) payers: Mutex<VecDeque<PatientRef>>,
    pub(super) waiting: Mutex<HashMap<&'static str, Vec<ReferralRef>>>,
    pub(super) booked: Mutex<VecDeque<Booked>>,
    pub(super) nhs: NhsNumbers,
    /// How many `mixed` steps have begun: the next one's place in the round.
    pub(super) mixed_turn: AtomicUsize,
}

impl World {
    pub(crate) fn new(seeded: Seeded, nhs: NhsNumbers) -> Self {
        let mut waiting: HashMap<&'static str, Vec<ReferralRef>> = HashMap::new();
        for referral in seeded.referrals {
            waiting
                .entry(referral.specialty)
                .or_default()
                .push(referral);
        }
        Self {
            clinic: seeded.clinic,
            payers: Mutex::new(seeded.patients.iter().cloned().collect()),
            patients: RwLock::new(seeded.patients),
            waiting: Mutex::new(waiting),
            booked: Mutex::new(VecDeque::new()),
            nhs,
            mixed_turn: AtomicUsize::new(0),
        }
    }

    /// No clinic: enough for the ceiling's workloads alone.
    pub(crate) fn bare(nhs: NhsNumbers) -> Self {
        Self::new(
            Seeded {
                clinic: Clinic {
                    clinicians: Vec::new(),
                    specialties: Vec::new(),
                    first_day: today_in_london(),
                    days: 1,
                    price_codes: Vec::new(),
                },
                patients: Vec::new(),
                referrals: Vec::new(),
                figures: seed::SeedFigures::default(),
            },
            nhs,
        )
    }

    pub(super) fn any_patient(&self, rng: &mut Rng) -> Result<PatientRef, Status> {
        let patients = self.patients.read().unwrap_or_else(PoisonError::into_inner);
        rng.pick(&patients).cloned().ok_or_else(nothing_seeded)
    }

    pub(super) fn registered(&self, patient: PatientRef) {
        self.patients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(patient);
    }

    /// A waiting referral of `specialty`, taken off the pool.
    pub(super) fn take_referral(&self, specialty: &str, rng: &mut Rng) -> Option<ReferralRef> {
        let mut waiting = lock(&self.waiting);
        let pool = waiting.get_mut(specialty)?;
        if pool.is_empty() {
            return None;
        }
        let index = rng.index(pool.len());
        Some(pool.swap_remove(index))
    }

    /// Puts a referral back on the waiting list.
    pub(super) fn wait(&self, referral: Option<ReferralRef>) {
        if let Some(referral) = referral {
            lock(&self.waiting)
                .entry(referral.specialty)
                .or_default()
                .push(referral);
        }
    }

    pub(super) fn take_payer(&self, rng: &mut Rng) -> Result<PatientRef, Status> {
        let idle = lock(&self.payers).pop_front();
        match idle {
            Some(patient) => Ok(patient),
            None => self.any_patient(rng),
        }
    }

    pub(super) fn release_payer(&self, patient: PatientRef) {
        lock(&self.payers).push_back(patient);
    }
}

pub(super) fn nothing_seeded() -> Status {
    Status::failed_precondition("the load generator seeded no clinic for this workload")
}
