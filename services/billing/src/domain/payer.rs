//! Who pays a charge or an invoice: the patient, an insurer, or the NHS —
//! whose funded care is recorded but never invoiced.

use medsec_platform::Reader;
use medsec_proto::billing::v1 as pb;

medsec_platform::stored_enum!(
    /// The kind of a payer, as stored and as sent.
    PayerKind, pb::PayerKind, {
        SelfPay => "self_pay", SelfPay,
        Insurer => "insurer", Insurer,
        Nhs => "nhs", Nhs,
    }
);

/// Why an invoice to the NHS is refused.
pub const NHS_NEVER_INVOICED: &str = "NHS-funded care is never invoiced";

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
    /// Reads `payer`, reporting bad fields under `field` (e.g. `charge.payer`).
    pub fn read(r: &mut Reader, field: &str, payer: Option<&pb::Payer>) -> Option<Self> {
        let Some(payer) = payer else {
            r.add(field, medsec_platform::request::message::REQUIRED);
            return None;
        };
        match r.enumerated::<PayerKind>(&format!("{field}.kind"), payer.kind)? {
            // Insurer details with another payer are a mistake the client
            // must hear of, not details silently dropped.
            PayerKind::SelfPay | PayerKind::Nhs if payer.insurer.is_some() => {
                r.add(
                    format!("{field}.insurer"),
                    "must be empty unless the payer is an insurer",
                );
                None
            }
            PayerKind::SelfPay => Some(Self::SelfPay),
            PayerKind::Nhs => Some(Self::Nhs),
            PayerKind::Insurer => {
                let Some(insurer) = &payer.insurer else {
                    r.add(format!("{field}.insurer"), "is required for an insurer");
                    return None;
                };
                let name = r.required_line(&format!("{field}.insurer.name"), &insurer.name, 100);
                let policy_number = r.required_line(
                    &format!("{field}.insurer.policy_number"),
                    &insurer.policy_number,
                    64,
                );
                let preauthorisation_code = r.optional_line(
                    &format!("{field}.insurer.preauthorisation_code"),
                    &insurer.preauthorisation_code,
                    64,
                );
                Some(Self::Insurer {
                    name: name?,
                    policy_number: policy_number?,
                    preauthorisation_code: Some(preauthorisation_code)
                        .filter(|code| !code.is_empty()),
                })
            }
        }
    }

    /// Reads the payer of an invoice: any payer but the NHS.
    pub fn read_invoiced(r: &mut Reader, field: &str, payer: Option<&pb::Payer>) -> Option<Self> {
        let payer = Self::read(r, field, payer)?;
        r.check(format!("{field}.kind"), payer.invoiceable())
    }

    /// The payer, when an invoice may be made out to it: NHS-funded care is
    /// never invoiced.
    pub fn invoiceable(self) -> Result<Self, &'static str> {
        match self {
            Self::Nhs => Err(NHS_NEVER_INVOICED),
            payer => Ok(payer),
        }
    }

    pub fn kind(&self) -> PayerKind {
        match self {
            Self::SelfPay => PayerKind::SelfPay,
            Self::Insurer { .. } => PayerKind::Insurer,
            Self::Nhs => PayerKind::Nhs,
        }
    }

    /// Identifies the payer among a patient's charges: an invoice gathers the
    /// unbilled charges of one patient with one key.
    pub fn key(&self) -> String {
        match self {
            Self::SelfPay => PayerKind::SelfPay.as_str().to_owned(),
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
            Self::Nhs => PayerKind::Nhs.as_str().to_owned(),
        }
    }

    /// The insurer's name and policy number, as stored beside the kind.
    pub fn insurer(&self) -> (Option<String>, Option<String>) {
        match self {
            Self::Insurer {
                name,
                policy_number,
                ..
            } => (Some(name.clone()), Some(policy_number.clone())),
            Self::SelfPay | Self::Nhs => (None, None),
        }
    }

    /// The pre-authorisation code of an insurer's episode.
    pub fn preauthorisation_code(&self) -> Option<String> {
        match self {
            Self::Insurer {
                preauthorisation_code,
                ..
            } => preauthorisation_code.clone(),
            Self::SelfPay | Self::Nhs => None,
        }
    }

    /// The payer as stored columns are read back.
    pub fn from_stored(
        kind: &str,
        insurer_name: Option<&str>,
        policy_number: Option<&str>,
        preauthorisation_code: Option<&str>,
    ) -> Option<Self> {
        Some(match PayerKind::from_stored(kind)? {
            PayerKind::SelfPay => Self::SelfPay,
            PayerKind::Nhs => Self::Nhs,
            PayerKind::Insurer => Self::Insurer {
                name: insurer_name?.to_owned(),
                policy_number: policy_number?.to_owned(),
                preauthorisation_code: preauthorisation_code.map(str::to_owned),
            },
        })
    }

    pub fn to_proto(&self) -> pb::Payer {
        pb::Payer {
            kind: self.kind().to_proto(),
            insurer: match self {
                Self::SelfPay | Self::Nhs => None,
                Self::Insurer {
                    name,
                    policy_number,
                    preauthorisation_code,
                } => Some(pb::Insurer {
                    name: name.clone(),
                    policy_number: policy_number.clone(),
                    preauthorisation_code: preauthorisation_code.clone().unwrap_or_default(),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::bad_fields;

    fn insurer(name: &str, policy: &str) -> pb::Payer {
        pb::Payer {
            kind: pb::PayerKind::Insurer as i32,
            insurer: Some(pb::Insurer {
                name: name.into(),
                policy_number: policy.into(),
                preauthorisation_code: String::new(),
            }),
        }
    }

    #[test]
    fn insurer_details_are_refused_for_any_other_payer() {
        for kind in [pb::PayerKind::SelfPay, pb::PayerKind::Nhs] {
            let payer = pb::Payer {
                kind: kind as i32,
                ..insurer("Bupa", "POL-1")
            };
            let mut r = Reader::new();
            assert_eq!(Payer::read(&mut r, "charge.payer", Some(&payer)), None);
            assert_eq!(bad_fields(r), ["charge.payer.insurer"]);
        }
    }

    #[test]
    fn nhs_funded_care_is_never_invoiced() {
        let nhs = pb::Payer {
            kind: pb::PayerKind::Nhs as i32,
            insurer: None,
        };
        let mut r = Reader::new();
        assert_eq!(Payer::read(&mut r, "payer", Some(&nhs)), Some(Payer::Nhs));
        assert!(r.finish(()).is_ok());
        let mut r = Reader::new();
        assert_eq!(Payer::read_invoiced(&mut r, "payer", Some(&nhs)), None);
        assert_eq!(bad_fields(r), ["payer.kind"]);
        assert_eq!(Payer::SelfPay.invoiceable(), Ok(Payer::SelfPay));
        assert_eq!(Payer::Nhs.invoiceable(), Err(NHS_NEVER_INVOICED));
    }

    #[test]
    fn an_insurer_needs_a_name_and_a_policy() {
        let mut r = Reader::new();
        assert_eq!(Payer::read(&mut r, "payer", Some(&insurer(" ", ""))), None);
        assert_eq!(
            bad_fields(r),
            ["payer.insurer.name", "payer.insurer.policy_number"]
        );
        let mut r = Reader::new();
        assert_eq!(Payer::read(&mut r, "payer", None), None);
        assert_eq!(bad_fields(r), ["payer"]);
    }

    #[test]
    fn keys_keep_insurers_apart_and_stored_payers_read_back() {
        let read = |payer| Payer::read(&mut Reader::new(), "payer", Some(&payer)).unwrap();
        let a = read(insurer("ab", "c"));
        let b = read(insurer("a", "bc"));
        assert_ne!(a.key(), b.key());
        let (name, policy) = a.insurer();
        let stored =
            Payer::from_stored(a.kind().as_str(), name.as_deref(), policy.as_deref(), None);
        assert_eq!(stored, Some(a));
        assert_eq!(Payer::from_stored("nobody", None, None, None), None);
    }
}
