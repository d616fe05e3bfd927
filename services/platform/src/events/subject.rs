//! NATS subject filters, so in-process delivery picks a consumer's events
//! exactly as JetStream would.

/// Whether `subject` (dot-separated tokens) matches `filter`, where `*`
/// matches one token and a final `>` one or more.
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    let mut filter_tokens = filter.split('.').peekable();
    while let Some(wanted) = filter_tokens.next() {
        if wanted == ">" && filter_tokens.peek().is_none() {
            return subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(token) if wanted == "*" || wanted == token => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn matches_as_nats_does() {
        let fulfilled = "medsec.scheduling.appointment.fulfilled";
        assert!(matches(fulfilled, fulfilled));
        assert!(matches("medsec.scheduling.appointment.>", fulfilled));
        assert!(matches("medsec.*.appointment.*", fulfilled));
        assert!(matches(">", fulfilled));
        assert!(!matches("medsec.scheduling.appointment", fulfilled));
        assert!(!matches(
            "medsec.scheduling.appointment.fulfilled.x",
            fulfilled
        ));
        assert!(!matches("medsec.records.>", fulfilled));
        assert!(!matches(
            "medsec.scheduling.appointment.>",
            "medsec.scheduling.appointment"
        ));
        assert!(!matches("medsec.*", fulfilled));
    }
}
