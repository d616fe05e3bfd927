//! Validated types and pure rules of staff and the rota, diaries,
//! appointments, the waiting list and enquiry routing; no I/O. The enums
//! here are stored as text and sent as proto enums (`stored_enum!`).

pub mod allocation;
pub mod appointment;
pub mod diary;
pub mod displacement;
pub mod enquiry;
pub mod london;
pub mod offer;
pub mod ranking;
pub mod referral;
pub mod rtt;
pub mod span;
pub mod staff;
pub mod text;

use medsec_proto::scheduling::v1 as pb;

medsec_platform::stored_enum!(
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

medsec_platform::stored_enum!(
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

medsec_platform::stored_enum!(
    /// New patient or follow-up, spelled as in the allocation model.
    Kind, pb::SlotKind, {
        New => "new", New,
        FollowUp => "follow_up", FollowUp,
    }
);

medsec_platform::stored_enum!(
    /// How the patient is seen.
    Mode, pb::ConsultationMode, {
        FaceToFace => "face_to_face", FaceToFace,
        Telephone => "telephone", Telephone,
        Video => "video", Video,
    }
);

medsec_platform::stored_enum!(
    /// Why a clinician is away.
    AbsenceReason, pb::AbsenceReason, {
        Leave => "leave", Leave,
        Sickness => "sickness", Sickness,
        Training => "training", Training,
        Other => "other", Other,
    }
);

medsec_platform::stored_enum!(
    /// Who cancelled an appointment.
    CancelledBy, pb::CancelledBy, {
        Patient => "patient", Patient,
        Hospital => "hospital", Hospital,
    }
);

medsec_platform::stored_enum!(
    /// Clinical priority, spelled as in the allocation model.
    Priority, pb::Priority, {
        TwoWeekWait => "two_week_wait", TwoWeekWait,
        Urgent => "urgent", Urgent,
        Routine => "routine", Routine,
    }
);

medsec_platform::stored_enum!(
    /// Where a referral is on the waiting list.
    ReferralStatus, pb::ReferralStatus, {
        Waiting => "waiting", Waiting,
        Booked => "booked", Booked,
        Removed => "removed", Removed,
    }
);

medsec_platform::stored_enum!(
    /// FHIR Appointment.status, as far as this service uses it.
    AppointmentStatus, pb::AppointmentStatus, {
        Booked => "booked", Booked,
        Arrived => "arrived", Arrived,
        Fulfilled => "fulfilled", Fulfilled,
        Cancelled => "cancelled", Cancelled,
        Noshow => "noshow", Noshow,
    }
);

medsec_platform::stored_enum!(
    /// How soon an enquiry needs answering.
    Urgency, pb::Urgency, {
        Routine => "routine", Routine,
        Urgent => "urgent", Urgent,
    }
);

medsec_platform::stored_enum!(
    /// Where an enquiry is.
    EnquiryStatus, pb::EnquiryStatus, {
        Open => "open", Open,
        Resolved => "resolved", Resolved,
    }
);

#[cfg(test)]
pub(crate) mod tests {
    use chrono::NaiveDate;
    use medsec_platform::{ApiError, Reader};

    /// A civil date written `YYYY-MM-DD`.
    pub(crate) fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// The violations a reader recorded, as `field: why`.
    pub(crate) fn violations(r: Reader) -> Vec<String> {
        match r.finish(()) {
            Ok(()) => Vec::new(),
            Err(ApiError::InvalidArgument(violations)) => violations
                .iter()
                .map(|(field, why)| format!("{field}: {why}"))
                .collect(),
            Err(other) => panic!("{other:?}"),
        }
    }
}
