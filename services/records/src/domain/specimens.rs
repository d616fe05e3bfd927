//! Samples sent for testing: the test catalogue and a specimen's journey
//! requested -> collected -> dispatched -> received -> resulted, or rejected
//! once it exists (collected, dispatched or received).

use medsec_platform::Reader;
use medsec_proto::records::v1 as pb;
use uuid::Uuid;

medsec_platform::stored_enum!(
    /// Where a specimen is on its journey.
    SpecimenState, pb::SpecimenState, {
        Requested => "requested", Requested,
        Collected => "collected", Collected,
        Dispatched => "dispatched", Dispatched,
        Received => "received", Received,
        Resulted => "resulted", Resulted,
        Rejected => "rejected", Rejected,
    }
);

impl SpecimenState {
    /// The states a specimen may move to this one from.
    pub fn reachable_from(self) -> &'static [Self] {
        match self {
            Self::Requested => &[],
            Self::Collected => &[Self::Requested],
            Self::Dispatched => &[Self::Collected],
            Self::Received => &[Self::Dispatched],
            Self::Resulted => &[Self::Received],
            Self::Rejected => &[Self::Collected, Self::Dispatched, Self::Received],
        }
    }

    /// The verb of the move into this state, for error messages.
    pub fn action(self) -> &'static str {
        match self {
            Self::Requested => "request",
            Self::Collected => "collect",
            Self::Dispatched => "dispatch",
            Self::Received => "receive",
            Self::Resulted => "result",
            Self::Rejected => "reject",
        }
    }

    /// Awaiting the lab, so overdue once past the turnaround.
    pub fn is_with_lab(self) -> bool {
        matches!(self, Self::Dispatched | Self::Received)
    }
}

/// A move of a specimen, with what it records besides its new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Collect,
    Dispatch {
        courier: String,
        lab: String,
        tracking_reference: String,
    },
    Receive,
    Result {
        summary: String,
        abnormal: bool,
        /// A document on file holding the full result.
        document_id: Option<Uuid>,
    },
    Reject {
        reason: String,
    },
}

impl Step {
    /// The state the step moves into.
    pub fn to(&self) -> SpecimenState {
        match self {
            Self::Collect => SpecimenState::Collected,
            Self::Dispatch { .. } => SpecimenState::Dispatched,
            Self::Receive => SpecimenState::Received,
            Self::Result { .. } => SpecimenState::Resulted,
            Self::Reject { .. } => SpecimenState::Rejected,
        }
    }

    /// What the specimen's event log says of the step.
    pub fn details(&self) -> String {
        match self {
            Self::Collect | Self::Receive => String::new(),
            Self::Dispatch {
                courier,
                lab,
                tracking_reference,
            } => format!("courier={courier}; lab={lab}; tracking={tracking_reference}"),
            Self::Result {
                abnormal,
                document_id,
                ..
            } => match document_id {
                Some(document) => format!("abnormal={abnormal}; document={document}"),
                None => format!("abnormal={abnormal}"),
            },
            Self::Reject { reason } => format!("reason={reason}"),
        }
    }
}

/// A test to add to the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTestType {
    pub code: String,
    pub name: String,
    pub specimen_type: String,
    pub turnaround_hours: i32,
}

impl NewTestType {
    /// Reads a test type under `test_type.…`.
    pub fn read(r: &mut Reader, test: &pb::TestType) -> Option<Self> {
        let code = r.check("test_type.code", parse_test_code(&test.code));
        let name = r.required_line("test_type.name", &test.name, 200);
        let specimen_type = r.required_line("test_type.specimen_type", &test.specimen_type, 100);
        let turnaround_hours = r.check(
            "test_type.turnaround_hours",
            parse_turnaround(test.turnaround_hours),
        );
        Some(Self {
            code: code?,
            name: name?,
            specimen_type: specimen_type?,
            turnaround_hours: turnaround_hours?,
        })
    }
}

/// A test requested for a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSpecimen {
    pub patient_id: Uuid,
    pub test_code: String,
    pub notes: String,
}

/// A test code: letters, digits, '-' and '_', upper-cased.
pub fn parse_test_code(code: &str) -> Result<String, &'static str> {
    let code = code.trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > 32 {
        return Err("must be 1 to 32 characters");
    }
    if !code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("must be letters, digits, '-' or '_'");
    }
    Ok(code)
}

/// A lab's expected turnaround: an hour to a year.
fn parse_turnaround(hours: i32) -> Result<i32, &'static str> {
    if (1..=24 * 365).contains(&hours) {
        Ok(hours)
    } else {
        Err("must be 1 to 8760 hours")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journey_moves_forward_only() {
        use SpecimenState::*;
        let allowed = |from: SpecimenState, to: SpecimenState| to.reachable_from().contains(&from);
        assert!(allowed(Requested, Collected));
        assert!(allowed(Collected, Dispatched));
        assert!(allowed(Dispatched, Received));
        assert!(allowed(Received, Resulted));
        for from in [Collected, Dispatched, Received] {
            assert!(allowed(from, Rejected));
        }
        for &to in SpecimenState::ALL {
            assert!(!allowed(Resulted, to) && !allowed(Rejected, to), "terminal");
        }
        assert!(!allowed(Requested, Dispatched));
        assert!(!allowed(Dispatched, Resulted));
        assert!(!allowed(Requested, Rejected));
    }

    #[test]
    fn states_round_trip() {
        for &state in SpecimenState::ALL {
            assert_eq!(SpecimenState::from_stored(state.as_str()), Some(state));
            assert_eq!(SpecimenState::from_proto(state.to_proto()), Ok(state));
        }
    }

    #[test]
    fn each_step_says_what_it_recorded() {
        let dispatch = Step::Dispatch {
            courier: "CityLink".into(),
            lab: "St Thomas'".into(),
            tracking_reference: "CL-1".into(),
        };
        assert_eq!(dispatch.to(), SpecimenState::Dispatched);
        assert_eq!(
            dispatch.details(),
            "courier=CityLink; lab=St Thomas'; tracking=CL-1"
        );
        let result = Step::Result {
            summary: "Hb low".into(),
            abnormal: true,
            document_id: None,
        };
        assert_eq!(result.details(), "abnormal=true");
        assert_eq!(Step::Collect.details(), "");
    }

    #[test]
    fn test_codes() {
        assert_eq!(parse_test_code(" fbc ").unwrap(), "FBC");
        assert!(parse_test_code("U&E").is_err());
        assert!(parse_test_code("").is_err());
    }
}
