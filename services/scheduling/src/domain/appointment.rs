//! Bookings, and the appointment state machine (FHIR Appointment.status):
//!
//! ```text
//! booked --arrive--> arrived --fulfil--> fulfilled
//!   |  \--fulfil-------------------------^
//!   |--cancel--> cancelled
//!   \--did not attend--> noshow
//! ```
//!
//! Only a booked appointment can be rescheduled. cancelled, fulfilled and
//! noshow are final.

use uuid::Uuid;

use super::AppointmentStatus;

/// A booking to make: a place in a slot for a patient, for one of their
/// referrals or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub slot_id: Uuid,
    pub patient_id: Uuid,
    pub referral_id: Option<Uuid>,
    pub reason: String,
}

/// Something done to an appointment that changes its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Arrive,
    Fulfil,
    DidNotAttend,
    Cancel,
    Reschedule,
}

impl Action {
    /// The states the action may start from.
    pub fn from_states(self) -> &'static [AppointmentStatus] {
        use AppointmentStatus::*;
        match self {
            Self::Arrive | Self::DidNotAttend | Self::Cancel | Self::Reschedule => &[Booked],
            Self::Fulfil => &[Booked, Arrived],
        }
    }

    /// The state it ends in.
    pub fn to_state(self) -> AppointmentStatus {
        match self {
            Self::Arrive => AppointmentStatus::Arrived,
            Self::Fulfil => AppointmentStatus::Fulfilled,
            Self::DidNotAttend => AppointmentStatus::Noshow,
            Self::Cancel => AppointmentStatus::Cancelled,
            Self::Reschedule => AppointmentStatus::Booked,
        }
    }

    /// For messages: "cannot mark arrived".
    pub fn verb(self) -> &'static str {
        match self {
            Self::Arrive => "mark arrived",
            Self::Fulfil => "mark fulfilled",
            Self::DidNotAttend => "mark did not attend",
            Self::Cancel => "cancel",
            Self::Reschedule => "reschedule",
        }
    }

    pub fn allowed_from(self, state: AppointmentStatus) -> bool {
        self.from_states().contains(&state)
    }
}

/// States whose appointment occupies its slot place and the patient's time.
pub const HOLDING: [AppointmentStatus; 2] = [AppointmentStatus::Booked, AppointmentStatus::Arrived];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_allow_nothing() {
        for action in [
            Action::Arrive,
            Action::Fulfil,
            Action::DidNotAttend,
            Action::Cancel,
            Action::Reschedule,
        ] {
            for state in [
                AppointmentStatus::Cancelled,
                AppointmentStatus::Fulfilled,
                AppointmentStatus::Noshow,
            ] {
                assert!(!action.allowed_from(state), "{action:?} from {state}");
            }
        }
        assert!(Action::Fulfil.allowed_from(AppointmentStatus::Arrived));
        assert!(!Action::DidNotAttend.allowed_from(AppointmentStatus::Arrived));
    }
}
