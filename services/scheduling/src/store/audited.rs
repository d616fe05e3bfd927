//! What an access to each of SchedulingService's records names in the
//! suite's audit trail (`medsec_platform::audit`): the resource and, when
//! the record is a patient's, the patient.

use medsec_platform::audit::{Access, Audited};

use super::entities::{appointment, enquiry, proposal, proposal_allocation, referral};

impl Audited for appointment::Model {
    fn access(&self) -> Access {
        Access::patient(format!("appointments/{}", self.id), self.patient_id)
    }
}

impl Audited for referral::Model {
    fn access(&self) -> Access {
        Access::patient(format!("referrals/{}", self.id), self.patient_id)
    }
}

/// An enquiry names a patient when it is about one.
impl Audited for enquiry::Model {
    fn access(&self) -> Access {
        Access::new(format!("enquiries/{}", self.id), self.patient_id)
    }
}

/// A proposal's own figures name no patient; its allocations do.
impl Audited for proposal::Model {
    fn access(&self) -> Access {
        Access::other(format!("proposals/{}", self.id))
    }
}

impl Audited for proposal_allocation::Model {
    fn access(&self) -> Access {
        Access::patient(
            format!(
                "proposals/{}/allocations/{}",
                self.proposal_id, self.referral_id
            ),
            self.patient_id,
        )
    }
}
