//! Medical history: conditions, allergies and intolerances, medications, as
//! FHIR Condition, AllergyIntolerance and MedicationStatement see them.

use chrono::NaiveDate;
use medsec_platform::Reader;
use medsec_platform::text::quoted;
use medsec_platform::time::format_civil_date;
use medsec_proto::records::v1 as pb;
use serde::{Deserialize, Serialize};

medsec_platform::stored_enum!(
    /// The kinds of history entry, as the `kind` column stores them.
    HistoryKind, pb::HistoryKind, {
        Condition => "condition", Condition,
        Allergy => "allergy", Allergy,
        Medication => "medication", Medication,
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HistoryDetails {
    Condition(Condition),
    Allergy(Allergy),
    Medication(Medication),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub description: String,
    pub snomed_code: Option<String>,
    pub onset_date: Option<NaiveDate>,
    pub clinical_status: ClinicalStatus,
}

medsec_platform::stored_enum!(
    /// FHIR's clinical status of a condition.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    ClinicalStatus, pb::ClinicalStatus, {
        Active => "active", Active,
        Recurrence => "recurrence", Recurrence,
        Remission => "remission", Remission,
        Resolved => "resolved", Resolved,
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allergy {
    pub substance: String,
    pub reaction: Option<String>,
    pub severity: Option<Severity>,
    pub criticality: Criticality,
}

medsec_platform::stored_enum!(
    /// How severe a reaction was.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    Severity, pb::Severity, {
        Mild => "mild", Mild,
        Moderate => "moderate", Moderate,
        Severe => "severe", Severe,
    }
);

medsec_platform::stored_enum!(
    /// The potential harm of a future reaction.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    Criticality, pb::Criticality, {
        Low => "low", Low,
        High => "high", High,
        UnableToAssess => "unable_to_assess", UnableToAssess,
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Medication {
    pub name: String,
    pub dose: String,
    pub route: String,
    pub frequency: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
}

impl HistoryDetails {
    pub fn kind(&self) -> HistoryKind {
        match self {
            Self::Condition(_) => HistoryKind::Condition,
            Self::Allergy(_) => HistoryKind::Allergy,
            Self::Medication(_) => HistoryKind::Medication,
        }
    }

    /// Part of the patient's current history on `today`.
    pub fn is_current(&self, today: NaiveDate) -> bool {
        match self {
            Self::Condition(condition) => condition.clinical_status != ClinicalStatus::Resolved,
            Self::Allergy(_) => true,
            Self::Medication(medication) => medication.end_date.is_none_or(|end| end >= today),
        }
    }

    /// Reads the entry of a request; `prefix` is its path ("entry").
    pub fn read(
        r: &mut Reader,
        entry: Option<&pb::history_entry::Entry>,
        prefix: &str,
        today: NaiveDate,
    ) -> Option<Self> {
        use pb::history_entry::Entry;
        match entry {
            Some(Entry::Condition(c)) => {
                read_condition(r, c, &format!("{prefix}.condition"), today).map(Self::Condition)
            }
            Some(Entry::Allergy(a)) => {
                read_allergy(r, a, &format!("{prefix}.allergy")).map(Self::Allergy)
            }
            Some(Entry::Medication(m)) => {
                read_medication(r, m, &format!("{prefix}.medication")).map(Self::Medication)
            }
            None => {
                r.add(prefix, "must hold a condition, an allergy or a medication");
                None
            }
        }
    }

    /// This entry with the fields `paths` name ("condition.clinical_status",
    /// or "*" for all) taken from `new_values`, read again as a whole under
    /// "entry". An entry's kind never changes.
    pub fn patched(
        &self,
        r: &mut Reader,
        new_values: &pb::history_entry::Entry,
        paths: &[String],
        today: NaiveDate,
    ) -> Option<Self> {
        let kind = self.kind();
        let mut merged = self.to_proto();
        if std::mem::discriminant(&merged) != std::mem::discriminant(new_values) {
            r.add(
                "entry",
                format!("this entry is a {kind}; its kind cannot change"),
            );
            return None;
        }
        let updatable = updatable_fields(kind);
        for path in paths {
            let fields: &[&str] = if path == "*" {
                updatable
            } else {
                match path
                    .strip_prefix(kind.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                    .and_then(|field| updatable.iter().find(|known| **known == field))
                {
                    Some(field) => std::slice::from_ref(field),
                    None => {
                        let known: Vec<String> =
                            updatable.iter().map(|f| format!("{kind}.{f}")).collect();
                        r.add(
                            "update_mask",
                            format!(
                                "unknown field {} for a {kind}; updatable: {}",
                                quoted(path),
                                known.join(", ")
                            ),
                        );
                        continue;
                    }
                }
            };
            for field in fields {
                overlay(&mut merged, new_values, field);
            }
        }
        if r.has_violations() {
            return None;
        }
        Self::read(r, Some(&merged), "entry", today)
    }

    pub fn to_proto(&self) -> pb::history_entry::Entry {
        use pb::history_entry::Entry;
        let date = |d: &Option<NaiveDate>| d.map(format_civil_date).unwrap_or_default();
        match self {
            Self::Condition(c) => Entry::Condition(pb::Condition {
                description: c.description.clone(),
                snomed_code: c.snomed_code.clone().unwrap_or_default(),
                onset_date: date(&c.onset_date),
                clinical_status: c.clinical_status.to_proto(),
            }),
            Self::Allergy(a) => Entry::Allergy(pb::Allergy {
                substance: a.substance.clone(),
                reaction: a.reaction.clone().unwrap_or_default(),
                severity: a.severity.map_or(0, Severity::to_proto),
                criticality: a.criticality.to_proto(),
            }),
            Self::Medication(m) => Entry::Medication(pb::Medication {
                name: m.name.clone(),
                dose: m.dose.clone(),
                route: m.route.clone(),
                frequency: m.frequency.clone(),
                start_date: format_civil_date(m.start_date),
                end_date: date(&m.end_date),
            }),
        }
    }
}

/// The field-mask paths each kind accepts, after its kind prefix.
pub fn updatable_fields(kind: HistoryKind) -> &'static [&'static str] {
    match kind {
        HistoryKind::Condition => &[
            "description",
            "snomed_code",
            "onset_date",
            "clinical_status",
        ],
        HistoryKind::Allergy => &["substance", "reaction", "severity", "criticality"],
        HistoryKind::Medication => &[
            "name",
            "dose",
            "route",
            "frequency",
            "start_date",
            "end_date",
        ],
    }
}

/// Copies `field` of `from` onto `onto`, both of one kind. Unknown fields
/// were refused before this is called.
fn overlay(onto: &mut pb::history_entry::Entry, from: &pb::history_entry::Entry, field: &str) {
    use pb::history_entry::Entry;
    match (onto, from) {
        (Entry::Condition(onto), Entry::Condition(from)) => match field {
            "description" => onto.description.clone_from(&from.description),
            "snomed_code" => onto.snomed_code.clone_from(&from.snomed_code),
            "onset_date" => onto.onset_date.clone_from(&from.onset_date),
            "clinical_status" => onto.clinical_status = from.clinical_status,
            _ => {}
        },
        (Entry::Allergy(onto), Entry::Allergy(from)) => match field {
            "substance" => onto.substance.clone_from(&from.substance),
            "reaction" => onto.reaction.clone_from(&from.reaction),
            "severity" => onto.severity = from.severity,
            "criticality" => onto.criticality = from.criticality,
            _ => {}
        },
        (Entry::Medication(onto), Entry::Medication(from)) => match field {
            "name" => onto.name.clone_from(&from.name),
            "dose" => onto.dose.clone_from(&from.dose),
            "route" => onto.route.clone_from(&from.route),
            "frequency" => onto.frequency.clone_from(&from.frequency),
            "start_date" => onto.start_date.clone_from(&from.start_date),
            "end_date" => onto.end_date.clone_from(&from.end_date),
            _ => {}
        },
        _ => {}
    }
}

fn read_condition(
    r: &mut Reader,
    c: &pb::Condition,
    prefix: &str,
    today: NaiveDate,
) -> Option<Condition> {
    let description = r.required_line(&format!("{prefix}.description"), &c.description, 500);
    let snomed_code = if c.snomed_code.trim().is_empty() {
        Some(None)
    } else {
        r.check(
            format!("{prefix}.snomed_code"),
            parse_snomed_code(&c.snomed_code),
        )
        .map(Some)
    };
    let onset_field = format!("{prefix}.onset_date");
    let onset_date = match r.optional_date(&onset_field, &c.onset_date) {
        Some(date) if date > today => {
            r.add(onset_field, "must not be in the future");
            None
        }
        date => Some(date),
    };
    let clinical_status = r.enumerated(&format!("{prefix}.clinical_status"), c.clinical_status);
    Some(Condition {
        description: description?,
        snomed_code: snomed_code?,
        onset_date: onset_date?,
        clinical_status: clinical_status?,
    })
}

fn read_allergy(r: &mut Reader, a: &pb::Allergy, prefix: &str) -> Option<Allergy> {
    let substance = r.required_line(&format!("{prefix}.substance"), &a.substance, 200);
    let reaction = r.optional_line(&format!("{prefix}.reaction"), &a.reaction, 200);
    let severity = r.optional_enum(&format!("{prefix}.severity"), a.severity);
    let criticality = r.enumerated(&format!("{prefix}.criticality"), a.criticality);
    Some(Allergy {
        substance: substance?,
        reaction: Some(reaction).filter(|r| !r.is_empty()),
        severity,
        criticality: criticality?,
    })
}

fn read_medication(r: &mut Reader, m: &pb::Medication, prefix: &str) -> Option<Medication> {
    let mut line =
        |field: &str, value: &str| r.required_line(&format!("{prefix}.{field}"), value, 200);
    let name = line("name", &m.name);
    let dose = line("dose", &m.dose);
    let route = line("route", &m.route);
    let frequency = line("frequency", &m.frequency);
    let start_date = r.date(&format!("{prefix}.start_date"), &m.start_date);
    let end_field = format!("{prefix}.end_date");
    let end_date = match (r.optional_date(&end_field, &m.end_date), start_date) {
        (Some(end), Some(start)) if end < start => {
            r.add(end_field, "must not be before start_date");
            None
        }
        (end, _) => Some(end),
    };
    Some(Medication {
        name: name?,
        dose: dose?,
        route: route?,
        frequency: frequency?,
        start_date: start_date?,
        end_date: end_date?,
    })
}

/// A SNOMED CT identifier: 6 to 18 digits, not starting with 0, whose last
/// digit is a Verhoeff check digit.
pub fn parse_snomed_code(code: &str) -> Result<String, &'static str> {
    let code = code.trim();
    if !(6..=18).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be a SNOMED CT id of 6 to 18 digits");
    }
    if code.starts_with('0') || !verhoeff_valid(code) {
        return Err("fails the SNOMED CT (Verhoeff) check digit");
    }
    Ok(code.to_owned())
}

fn verhoeff_valid(digits: &str) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let check = digits.bytes().rev().enumerate().fold(0u8, |c, (i, b)| {
        D[usize::from(c)][usize::from(P[i % 8][usize::from(b - b'0')])]
    });
    check == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snomed_codes_carry_a_verhoeff_check_digit() {
        // Real concept ids: diabetes mellitus, asthma, penicillin allergy.
        for code in ["73211009", "195967001", "91936005"] {
            assert!(parse_snomed_code(code).is_ok(), "{code}");
        }
        assert!(parse_snomed_code("73211008").is_err());
        assert!(parse_snomed_code("12345").is_err());
        assert!(parse_snomed_code("7321100X").is_err());
    }

    #[test]
    fn current_history() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let medication = |end: Option<NaiveDate>| {
            HistoryDetails::Medication(Medication {
                name: "metformin".into(),
                dose: "500 mg".into(),
                route: "oral".into(),
                frequency: "twice daily".into(),
                start_date: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
                end_date: end,
            })
        };
        assert!(medication(None).is_current(today));
        assert!(medication(Some(today)).is_current(today));
        assert!(!medication(today.pred_opt()).is_current(today));
    }

    #[test]
    fn details_round_trip_through_json() {
        let details = HistoryDetails::Allergy(Allergy {
            substance: "penicillin".into(),
            reaction: Some("urticaria".into()),
            severity: Some(Severity::Moderate),
            criticality: Criticality::High,
        });
        let json = serde_json::to_string(&details).unwrap();
        assert!(json.contains("\"kind\":\"allergy\""), "{json}");
        assert_eq!(
            serde_json::from_str::<HistoryDetails>(&json).unwrap(),
            details
        );
    }
}
