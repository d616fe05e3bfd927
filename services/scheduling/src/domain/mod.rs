//! Validated types and rules of diaries, appointments, the waiting list and
//! enquiry routing; no I/O.

pub mod allocation;
pub mod appointment;
pub mod displacement;
pub mod london;
pub mod offer;
pub mod ranking;
pub mod rtt;
pub mod text;

use medsec_proto::scheduling::v1 as pb;

/// An enum stored as lower-case text and sent as a proto enum.
macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident, $pb:ty, { $($variant:ident => $text:literal, $pbv:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn from_stored(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }

            /// A required proto value: UNSPECIFIED and unknown numbers are refused.
            pub fn from_proto(value: i32) -> Result<Self, &'static str> {
                match <$pb>::try_from(value) {
                    $(Ok(<$pb>::$pbv) => Ok(Self::$variant),)+
                    #[allow(unreachable_patterns)]
                    Ok(_) => Err("is required"),
                    Err(_) => Err("is not a known value"),
                }
            }

            /// An optional proto value (a filter): UNSPECIFIED means none.
            pub fn from_proto_optional(value: i32) -> Result<Option<Self>, &'static str> {
                if value == 0 {
                    return Ok(None);
                }
                Self::from_proto(value).map(Some)
            }

            pub fn to_proto(self) -> i32 {
                (match self { $(Self::$variant => <$pb>::$pbv),+ }) as i32
            }

            /// The proto value of stored text; UNSPECIFIED if the text is unknown.
            pub fn stored_to_proto(text: &str) -> i32 {
                Self::from_stored(text).map_or(0, Self::to_proto)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum!(
    /// What a staff member does.
    Role, pb::StaffRole, {
        Clinician => "clinician", Clinician,
        Secretary => "secretary", Secretary,
        Nurse => "nurse", Nurse,
        BillingClerk => "billing_clerk", BillingClerk,
        LabLiaison => "lab_liaison", LabLiaison,
        Manager => "manager", Manager,
    }
);

stored_enum!(
    /// What an enquiry is about, and the skill that answers it.
    Category, pb::EnquiryCategory, {
        Appointments => "appointments", Appointments,
        Billing => "billing", Billing,
        Results => "results", Results,
        Prescriptions => "prescriptions", Prescriptions,
        Clinical => "clinical", Clinical,
        Other => "other", Other,
    }
);

stored_enum!(
    /// New patient or follow-up, spelled as in the allocation model.
    Kind, pb::SlotKind, {
        New => "new", New,
        FollowUp => "follow_up", FollowUp,
    }
);

stored_enum!(
    /// How the patient is seen.
    Mode, pb::ConsultationMode, {
        FaceToFace => "face_to_face", FaceToFace,
        Telephone => "telephone", Telephone,
        Video => "video", Video,
    }
);

stored_enum!(
    /// Why a clinician is away.
    AbsenceReason, pb::AbsenceReason, {
        Leave => "leave", Leave,
        Sickness => "sickness", Sickness,
        Training => "training", Training,
        Other => "other", Other,
    }
);

stored_enum!(
    /// Who cancelled an appointment.
    CancelledBy, pb::CancelledBy, {
        Patient => "patient", Patient,
        Hospital => "hospital", Hospital,
    }
);

stored_enum!(
    /// Clinical priority, spelled as in the allocation model.
    Priority, pb::Priority, {
        TwoWeekWait => "two_week_wait", TwoWeekWait,
        Urgent => "urgent", Urgent,
        Routine => "routine", Routine,
    }
);

stored_enum!(
    /// Where a referral is on the waiting list.
    ReferralStatus, pb::ReferralStatus, {
        Waiting => "waiting", Waiting,
        Booked => "booked", Booked,
        Removed => "removed", Removed,
    }
);

stored_enum!(
    /// FHIR Appointment.status, as far as this service uses it.
    AppointmentStatus, pb::AppointmentStatus, {
        Booked => "booked", Booked,
        Arrived => "arrived", Arrived,
        Fulfilled => "fulfilled", Fulfilled,
        Cancelled => "cancelled", Cancelled,
        Noshow => "noshow", Noshow,
    }
);

stored_enum!(
    /// How soon an enquiry needs answering.
    Urgency, pb::Urgency, {
        Routine => "routine", Routine,
        Urgent => "urgent", Urgent,
    }
);

stored_enum!(
    /// Where an enquiry is.
    EnquiryStatus, pb::EnquiryStatus, {
        Open => "open", Open,
        Resolved => "resolved", Resolved,
    }
);
