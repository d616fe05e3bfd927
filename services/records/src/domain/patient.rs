//! A patient's registered details, validated as a whole (create) or field by
//! field (update under a field mask).

use chrono::{Datelike as _, NaiveDate};
use medsec_platform::FieldViolations;
use medsec_platform::time::parse_civil_date;
use medsec_proto::records::v1 as pb;

use super::nhs_number::NhsNumber;
use super::postcode::Postcode;

const MAX_NAME_CHARS: usize = 100;
const MAX_ADDRESS_LINES: usize = 4;
const MAX_EMAIL_CHARS: usize = 254;
/// Nobody registering today was born before this year.
const EARLIEST_BIRTH_YEAR: i32 = 1880;

medsec_platform::stored_enum!(
    /// Administrative sex, as FHIR `AdministrativeGender`.
    Sex, pb::Sex, {
        Male => "male", Male,
        Female => "female", Female,
        Other => "other", Other,
        Unknown => "unknown", Unknown,
    }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub lines: Vec<String>,
    pub town: String,
    pub postcode: Postcode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpPractice {
    pub ods_code: String,
    pub name: String,
}

/// Everything a secretary records when registering a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientDetails {
    pub nhs_number: NhsNumber,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub address: Option<Address>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub gp_practice: Option<GpPractice>,
}

/// The fields an update may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientPatch {
    pub nhs_number: Option<NhsNumber>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub address: Option<Option<Address>>,
    pub phone: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub gp_practice: Option<Option<GpPractice>>,
}

/// The field-mask paths of an update.
pub const UPDATABLE_FIELDS: &[&str] = &[
    "nhs_number",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "address",
    "phone",
    "email",
    "gp_practice",
];

/// Validates one field of a proto patient, recording what is wrong under
/// `patient.<field>`.
struct FieldParser<'a> {
    patient: &'a pb::Patient,
    today: NaiveDate,
    violations: FieldViolations,
}

impl FieldParser<'_> {
    fn nhs_number(&mut self) -> Option<NhsNumber> {
        self.violations.check(
            "patient.nhs_number",
            NhsNumber::parse(&self.patient.nhs_number),
        )
    }

    fn name(&mut self, field: &str, value: &str) -> Option<String> {
        self.violations.check(
            format!("patient.{field}"),
            required_text(value, MAX_NAME_CHARS),
        )
    }

    fn birth_date(&mut self) -> Option<NaiveDate> {
        let result = match parse_civil_date(&self.patient.birth_date) {
            None => Err("must be a date in the form YYYY-MM-DD"),
            Some(date) if date > self.today => Err("must not be in the future"),
            Some(date) if date.year() < EARLIEST_BIRTH_YEAR => Err("is implausibly early"),
            Some(date) => Ok(date),
        };
        self.violations.check("patient.birth_date", result)
    }

    fn sex(&mut self) -> Option<Sex> {
        self.violations
            .check("patient.sex", Sex::from_proto(self.patient.sex))
    }

    fn address(&mut self) -> Option<Option<Address>> {
        let Some(address) = &self.patient.address else {
            return Some(None);
        };
        let before = self.violations.clone();
        if address.lines.len() > MAX_ADDRESS_LINES {
            self.violations
                .add("patient.address.lines", "must have at most 4 lines");
        }
        let mut lines = Vec::with_capacity(address.lines.len());
        for (i, line) in address.lines.iter().enumerate() {
            if let Some(line) = self.violations.check(
                format!("patient.address.lines[{i}]"),
                required_text(line, MAX_NAME_CHARS),
            ) {
                lines.push(line);
            }
        }
        let town = self.violations.check(
            "patient.address.town",
            optional_text(&address.town, MAX_NAME_CHARS),
        );
        let postcode = self.violations.check(
            "patient.address.postcode",
            Postcode::parse(&address.postcode),
        );
        if self.violations != before {
            return None;
        }
        Some(Some(Address {
            lines,
            town: town.unwrap_or_default(),
            postcode: postcode?,
        }))
    }

    fn phone(&mut self) -> Option<Option<String>> {
        let phone = self.patient.phone.trim();
        if phone.is_empty() {
            return Some(None);
        }
        self.violations
            .check("patient.phone", parse_phone(phone))
            .map(Some)
    }

    fn email(&mut self) -> Option<Option<String>> {
        let email = self.patient.email.trim();
        if email.is_empty() {
            return Some(None);
        }
        self.violations
            .check("patient.email", parse_email(email))
            .map(Some)
    }

    fn gp_practice(&mut self) -> Option<Option<GpPractice>> {
        let Some(practice) = &self.patient.gp_practice else {
            return Some(None);
        };
        let code = practice.ods_code.trim().to_ascii_uppercase();
        let code_ok =
            (3..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric());
        if !code_ok {
            self.violations.add(
                "patient.gp_practice.ods_code",
                "must be an ODS code of 3 to 8 letters or digits (e.g. A81001)",
            );
        }
        let name = self.violations.check(
            "patient.gp_practice.name",
            optional_text(&practice.name, 200),
        );
        (code_ok && name.is_some()).then(|| {
            Some(GpPractice {
                ods_code: code,
                name: name.unwrap_or_default(),
            })
        })
    }
}

impl PatientDetails {
    /// Validates a whole patient, reporting every bad field at once.
    pub fn parse(patient: &pb::Patient, today: NaiveDate) -> Result<Self, FieldViolations> {
        let mut p = FieldParser {
            patient,
            today,
            violations: FieldViolations::default(),
        };
        let nhs_number = p.nhs_number();
        let given_name = p.name("given_name", &patient.given_name);
        let family_name = p.name("family_name", &patient.family_name);
        let birth_date = p.birth_date();
        let sex = p.sex();
        let address = p.address();
        let phone = p.phone();
        let email = p.email();
        let gp_practice = p.gp_practice();
        match (
            nhs_number,
            given_name,
            family_name,
            birth_date,
            sex,
            address,
            phone,
            email,
            gp_practice,
        ) {
            (
                Some(nhs_number),
                Some(given_name),
                Some(family_name),
                Some(birth_date),
                Some(sex),
                Some(address),
                Some(phone),
                Some(email),
                Some(gp_practice),
            ) if p.violations.is_empty() => Ok(Self {
                nhs_number,
                given_name,
                family_name,
                birth_date,
                sex,
                address,
                phone,
                email,
                gp_practice,
            }),
            _ => Err(p.violations),
        }
    }

    pub fn apply(&mut self, patch: PatientPatch) {
        let PatientPatch {
            nhs_number,
            given_name,
            family_name,
            birth_date,
            sex,
            address,
            phone,
            email,
            gp_practice,
        } = patch;
        if let Some(v) = nhs_number {
            self.nhs_number = v;
        }
        if let Some(v) = given_name {
            self.given_name = v;
        }
        if let Some(v) = family_name {
            self.family_name = v;
        }
        if let Some(v) = birth_date {
            self.birth_date = v;
        }
        if let Some(v) = sex {
            self.sex = v;
        }
        if let Some(v) = address {
            self.address = v;
        }
        if let Some(v) = phone {
            self.phone = v;
        }
        if let Some(v) = email {
            self.email = v;
        }
        if let Some(v) = gp_practice {
            self.gp_practice = v;
        }
    }
}

impl PatientPatch {
    /// Validates the fields named by `paths` ("*" names them all), reporting
    /// unknown paths under `update_mask` and bad values under their field.
    pub fn parse(
        patient: &pb::Patient,
        paths: &[String],
        today: NaiveDate,
    ) -> Result<Self, FieldViolations> {
        let mut p = FieldParser {
            patient,
            today,
            violations: FieldViolations::default(),
        };
        if paths.is_empty() {
            p.violations.add(
                "update_mask",
                "is required: name the fields to change, or \"*\" for all",
            );
        }
        let all = paths.iter().any(|path| path == "*");
        let wants = |field: &str| all || paths.iter().any(|path| path == field);
        for path in paths {
            if path != "*" && !UPDATABLE_FIELDS.contains(&path.as_str()) {
                p.violations.add(
                    "update_mask",
                    format!(
                        "unknown or read-only field {path:?}; updatable: {}",
                        UPDATABLE_FIELDS.join(", ")
                    ),
                );
            }
        }
        let mut patch = Self::default();
        if wants("nhs_number") {
            patch.nhs_number = p.nhs_number();
        }
        if wants("given_name") {
            patch.given_name = p.name("given_name", &patient.given_name);
        }
        if wants("family_name") {
            patch.family_name = p.name("family_name", &patient.family_name);
        }
        if wants("birth_date") {
            patch.birth_date = p.birth_date();
        }
        if wants("sex") {
            patch.sex = p.sex();
        }
        if wants("address") {
            patch.address = p.address();
        }
        if wants("phone") {
            patch.phone = p.phone();
        }
        if wants("email") {
            patch.email = p.email();
        }
        if wants("gp_practice") {
            patch.gp_practice = p.gp_practice();
        }
        if p.violations.is_empty() {
            Ok(patch)
        } else {
            Err(p.violations)
        }
    }
}

fn required_text(value: &str, max_chars: usize) -> Result<String, String> {
    medsec_platform::text::required_line(value, max_chars)
}

fn optional_text(value: &str, max_chars: usize) -> Result<String, String> {
    medsec_platform::text::optional_line(value, max_chars)
}

/// Keeps the digits and a leading `+`; separators people type are dropped.
fn parse_phone(phone: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(phone.len());
    for (i, c) in phone.chars().enumerate() {
        match c {
            '+' if i == 0 => out.push(c),
            '0'..='9' => out.push(c),
            ' ' | '-' | '(' | ')' | '.' => {}
            _ => return Err("must be a telephone number of digits, spaces, dashes or brackets"),
        }
    }
    let digits = out.trim_start_matches('+').len();
    if !(10..=15).contains(&digits) {
        return Err("must have 10 to 15 digits");
    }
    Ok(out)
}

fn parse_email(email: &str) -> Result<String, &'static str> {
    const BAD: &str = "must be an email address such as name@example.nhs.uk";
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err("must be at most 254 characters");
    }
    let (local, domain) = email.split_once('@').ok_or(BAD)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local.is_empty()
        || !domain_ok
        || domain.contains('@')
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(BAD);
    }
    Ok(email.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn valid() -> pb::Patient {
        pb::Patient {
            nhs_number: "943 476 5919".into(),
            given_name: " Ada ".into(),
            family_name: "Lovelace".into(),
            birth_date: "1985-12-10".into(),
            sex: pb::Sex::Female as i32,
            address: Some(pb::Address {
                lines: vec!["12 St James's Square".into()],
                town: "London".into(),
                postcode: "sw1y4jh".into(),
            }),
            phone: "020 7946 0018".into(),
            email: "ada@example.org".into(),
            gp_practice: Some(pb::GpPractice {
                ods_code: "a81001".into(),
                name: "Riverside Surgery".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn parses_and_normalises_a_whole_patient() {
        let details = PatientDetails::parse(&valid(), today()).unwrap();
        assert_eq!(details.nhs_number.as_str(), "9434765919");
        assert_eq!(details.given_name, "Ada");
        assert_eq!(details.address.unwrap().postcode.as_str(), "SW1Y 4JH");
        assert_eq!(details.phone.as_deref(), Some("02079460018"));
        assert_eq!(details.gp_practice.unwrap().ods_code, "A81001");
    }

    #[test]
    fn reports_every_bad_field_together() {
        let bad = pb::Patient {
            nhs_number: "943 476 5918".into(),
            given_name: "".into(),
            birth_date: "2030-01-01".into(),
            sex: 0,
            phone: "call me".into(),
            email: "nobody".into(),
            address: Some(pb::Address {
                postcode: "nowhere".into(),
                ..Default::default()
            }),
            ..valid()
        };
        let violations = PatientDetails::parse(&bad, today()).unwrap_err();
        let fields: Vec<_> = violations.fields().collect();
        assert_eq!(
            fields,
            [
                "patient.nhs_number",
                "patient.given_name",
                "patient.birth_date",
                "patient.sex",
                "patient.address.postcode",
                "patient.phone",
                "patient.email",
            ]
        );
    }

    #[test]
    fn a_patch_checks_only_its_fields() {
        let request = pb::Patient {
            family_name: "Byron".into(),
            nhs_number: "garbage".into(),
            ..Default::default()
        };
        let patch = PatientPatch::parse(&request, &["family_name".into()], today()).unwrap();
        assert_eq!(patch.family_name.as_deref(), Some("Byron"));
        assert!(patch.nhs_number.is_none());

        let violations = PatientPatch::parse(
            &request,
            &["nhs_number".into(), "create_time".into()],
            today(),
        )
        .unwrap_err();
        let fields: Vec<_> = violations.fields().collect();
        assert_eq!(fields, ["update_mask", "patient.nhs_number"]);

        let clears = PatientPatch::parse(&request, &["email".into()], today()).unwrap();
        assert_eq!(clears.email, Some(None));
    }
}
