//! Samples sent for testing: the test catalogue and a specimen's journey
//! requested -> collected -> dispatched -> received -> resulted, or rejected
//! once it exists (collected, dispatched or received).

use medsec_proto::records::v1 as pb;

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
    fn test_codes() {
        assert_eq!(parse_test_code(" fbc ").unwrap(), "FBC");
        assert!(parse_test_code("U&E").is_err());
        assert!(parse_test_code("").is_err());
    }
}
