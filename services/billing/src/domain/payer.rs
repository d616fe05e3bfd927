//! Who pays a charge or an invoice: the patient, an insurer, or the NHS.

use medsec_platform::FieldViolations;
use medsec_proto::billing::v1 as pb;

use medsec_platform::text::{optional_line as optional_text, required_line as required_text};

/// A validated payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payer {
    SelfPay,
    Insurer {
        name: String,
        policy_number: String,
        /// Per episode, so it is kept on charges and lines, not in the key.
        preauthorisation_code: Option<String>,
    },
    /// NHS-funded care: recorded, never invoiced.
    Nhs,
}

impl Payer {
    /// Parses `payer`, reporting bad fields under `field` (e.g. `charge.payer`).
    pub fn parse(
        payer: Option<&pb::Payer>,
        field: &str,
        violations: &mut FieldViolations,
    ) -> Option<Self> {
        let Some(payer) = payer else {
            violations.add(field, "is required");
            return None;
        };
        match pb::PayerKind::try_from(payer.kind) {
            Ok(pb::PayerKind::SelfPay) => Some(Self::SelfPay),
            Ok(pb::PayerKind::Nhs) => Some(Self::Nhs),
            Ok(pb::PayerKind::Insurer) => {
                let Some(insurer) = &payer.insurer else {
                    violations.add(format!("{field}.insurer"), "is required for an insurer");
                    return None;
                };
                let name = violations.check(
                    format!("{field}.insurer.name"),
                    required_text(&insurer.name, 100),
                );
                let policy_number = violations.check(
                    format!("{field}.insurer.policy_number"),
                    required_text(&insurer.policy_number, 64),
                );
                let preauthorisation_code = violations.check(
                    format!("{field}.insurer.preauthorisation_code"),
                    optional_text(&insurer.preauthorisation_code, 64),
                );
                Some(Self::Insurer {
                    name: name?,
                    policy_number: policy_number?,
                    preauthorisation_code: Some(preauthorisation_code?)
                        .filter(|code| !code.is_empty()),
                })
            }
            Ok(pb::PayerKind::Unspecified) => {
                violations.add(format!("{field}.kind"), "is required");
                None
            }
            Err(_) => {
                violations.add(format!("{field}.kind"), "is not a known value");
                None
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::SelfPay => "self_pay",
            Self::Insurer { .. } => "insurer",
            Self::Nhs => "nhs",
        }
    }

    /// Identifies the payer among a patient's charges: an invoice gathers the
    /// unbilled charges of one patient with one key.
    pub fn key(&self) -> String {
        match self {
            Self::SelfPay => "self_pay".to_owned(),
            Self::Insurer {
                name,
                policy_number,
                ..
            } => {
                // Length-prefixed so no name or policy can run into the other.
                format!(
                    "insurer|{}:{name}|{}:{policy_number}",
                    name.len(),
                    policy_number.len()
                )
            }
            Self::Nhs => "nhs".to_owned(),
        }
    }

    /// The payer as stored columns are read back.
    pub fn from_stored(
        kind: &str,
        insurer_name: Option<&str>,
        policy_number: Option<&str>,
        preauthorisation_code: Option<&str>,
    ) -> Option<Self> {
        Some(match kind {
            "self_pay" => Self::SelfPay,
            "nhs" => Self::Nhs,
            "insurer" => Self::Insurer {
                name: insurer_name?.to_owned(),
                policy_number: policy_number?.to_owned(),
                preauthorisation_code: preauthorisation_code.map(str::to_owned),
            },
            _ => return None,
        })
    }

    pub fn to_proto(&self) -> pb::Payer {
        match self {
            Self::SelfPay => pb::Payer {
                kind: pb::PayerKind::SelfPay as i32,
                insurer: None,
            },
            Self::Nhs => pb::Payer {
                kind: pb::PayerKind::Nhs as i32,
                insurer: None,
            },
            Self::Insurer {
                name,
                policy_number,
                preauthorisation_code,
            } => pb::Payer {
                kind: pb::PayerKind::Insurer as i32,
                insurer: Some(pb::Insurer {
                    name: name.clone(),
                    policy_number: policy_number.clone(),
                    preauthorisation_code: preauthorisation_code.clone().unwrap_or_default(),
                }),
            },
        }
    }
}

/// The stored kind of a proto payer kind, for filters.
pub fn kind_of_proto(kind: pb::PayerKind) -> Option<&'static str> {
    match kind {
        pb::PayerKind::SelfPay => Some("self_pay"),
        pb::PayerKind::Insurer => Some("insurer"),
        pb::PayerKind::Nhs => Some("nhs"),
        pb::PayerKind::Unspecified => None,
    }
}
