//! A patient's registered details, validated as a whole (create) or field by
//! field (update under a field mask).

use chrono::{Datelike as _, NaiveDate};
use medsec_platform::Reader;
use medsec_platform::text::quoted;
use medsec_proto::records::v1 as pb;

use super::nhs_number::NhsNumber;
use super::postcode::Postcode;

const MAX_NAME_CHARS: usize = 100;
const MAX_ADDRESS_LINES: usize = 4;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_PHONE_CHARS: usize = 30;
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

/// Reads the fields of a proto patient, each under `patient.<field>`.
struct Fields<'a> {
    patient: &'a pb::Patient,
    today: NaiveDate,
}

impl Fields<'_> {
    fn nhs_number(&self, r: &mut Reader) -> Option<NhsNumber> {
        r.check(
            "patient.nhs_number",
            NhsNumber::parse(&self.patient.nhs_number),
        )
    }

    fn given_name(&self, r: &mut Reader) -> Option<String> {
        r.required_line(
            "patient.given_name",
            &self.patient.given_name,
            MAX_NAME_CHARS,
        )
    }

    fn family_name(&self, r: &mut Reader) -> Option<String> {
        r.required_line(
            "patient.family_name",
            &self.patient.family_name,
            MAX_NAME_CHARS,
        )
    }

    fn birth_date(&self, r: &mut Reader) -> Option<NaiveDate> {
        let date = r.date("patient.birth_date", &self.patient.birth_date)?;
        r.check("patient.birth_date", plausible_birth_date(date, self.today))
    }

    fn sex(&self, r: &mut Reader) -> Option<Sex> {
        r.enumerated("patient.sex", self.patient.sex)
    }

    fn address(&self, r: &mut Reader) -> Option<Option<Address>> {
        let Some(address) = &self.patient.address else {
            return Some(None);
        };
        // Counted before any line is read; then read one by one, not with
        // `Reader::each`: two lines may be alike.
        let lines: Option<Vec<Option<String>>> = if address.lines.len() > MAX_ADDRESS_LINES {
            r.add(
                "patient.address.lines",
                format!("must have at most {MAX_ADDRESS_LINES} items"),
            );
            None
        } else {
            Some(
                address
                    .lines
                    .iter()
                    .enumerate()
                    .map(|(i, line)| {
                        r.required_line(
                            &format!("patient.address.lines[{i}]"),
                            line,
                            MAX_NAME_CHARS,
                        )
                    })
                    .collect(),
            )
        };
        let town = r.optional_line("patient.address.town", &address.town, MAX_NAME_CHARS);
        let postcode = r.check(
            "patient.address.postcode",
            Postcode::parse(&address.postcode),
        );
        Some(Some(Address {
            lines: lines?.into_iter().collect::<Option<_>>()?,
            town,
            postcode: postcode?,
        }))
    }

    fn phone(&self, r: &mut Reader) -> Option<Option<String>> {
        optional(r, "patient.phone", &self.patient.phone, parse_phone)
    }

    fn email(&self, r: &mut Reader) -> Option<Option<String>> {
        optional(r, "patient.email", &self.patient.email, parse_email)
    }

    fn gp_practice(&self, r: &mut Reader) -> Option<Option<GpPractice>> {
        let Some(practice) = &self.patient.gp_practice else {
            return Some(None);
        };
        let ods_code = r.check(
            "patient.gp_practice.ods_code",
            parse_ods_code(&practice.ods_code),
        );
        let name = r.optional_line("patient.gp_practice.name", &practice.name, 200);
        Some(Some(GpPractice {
            ods_code: ods_code?,
            name,
        }))
    }
}

/// An optional text field: absent when blank, else parsed by `parse`.
fn optional(
    r: &mut Reader,
    field: &str,
    value: &str,
    parse: fn(&str) -> Result<String, &'static str>,
) -> Option<Option<String>> {
    let value = value.trim();
    if value.is_empty() {
        return Some(None);
    }
    r.check(field, parse(value)).map(Some)
}

impl PatientDetails {
    /// Reads a whole patient, every bad field reported under `patient.…`.
    pub fn read(r: &mut Reader, patient: &pb::Patient, today: NaiveDate) -> Option<Self> {
        let f = Fields { patient, today };
        let nhs_number = f.nhs_number(r);
        let given_name = f.given_name(r);
        let family_name = f.family_name(r);
        let birth_date = f.birth_date(r);
        let sex = f.sex(r);
        let address = f.address(r);
        let phone = f.phone(r);
        let email = f.email(r);
        let gp_practice = f.gp_practice(r);
        Some(Self {
            nhs_number: nhs_number?,
            given_name: given_name?,
            family_name: family_name?,
            birth_date: birth_date?,
            sex: sex?,
            address: address?,
            phone: phone?,
            email: email?,
            gp_practice: gp_practice?,
        })
    }

    /// Takes every field `patch` holds.
    pub fn apply(&mut self, patch: PatientPatch) {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        set(&mut self.nhs_number, patch.nhs_number);
        set(&mut self.given_name, patch.given_name);
        set(&mut self.family_name, patch.family_name);
        set(&mut self.birth_date, patch.birth_date);
        set(&mut self.sex, patch.sex);
        set(&mut self.address, patch.address);
        set(&mut self.phone, patch.phone);
        set(&mut self.email, patch.email);
        set(&mut self.gp_practice, patch.gp_practice);
    }
}

impl PatientPatch {
    /// The fields the patch sets, as update-mask paths in the order of
    /// [`UPDATABLE_FIELDS`]: the mask as applied, `"*"` spelled out and a
    /// path named twice named once.
    pub fn paths(&self) -> Vec<String> {
        [
            self.nhs_number.is_some(),
            self.given_name.is_some(),
            self.family_name.is_some(),
            self.birth_date.is_some(),
            self.sex.is_some(),
            self.address.is_some(),
            self.phone.is_some(),
            self.email.is_some(),
            self.gp_practice.is_some(),
        ]
        .into_iter()
        .zip(UPDATABLE_FIELDS)
        .filter(|(set, _)| *set)
        .map(|(_, path)| (*path).to_owned())
        .collect()
    }

    /// Reads the fields named by `paths` ("*" names them all), reporting
    /// unknown paths under `update_mask` and bad values under their field.
    /// A field left out of the patch is one that was not named, or was bad
    /// (and then the reader has failed).
    pub fn read(r: &mut Reader, patient: &pb::Patient, paths: &[String], today: NaiveDate) -> Self {
        if paths.is_empty() {
            r.add(
                "update_mask",
                "is required: name the fields to change, or \"*\" for all",
            );
        }
        for path in paths {
            if path != "*" && !UPDATABLE_FIELDS.contains(&path.as_str()) {
                r.add(
                    "update_mask",
                    format!(
                        "unknown or read-only field {}; updatable: {}",
                        quoted(path),
                        UPDATABLE_FIELDS.join(", ")
                    ),
                );
            }
        }
        let all = paths.iter().any(|path| path == "*");
        let wants = |field: &str| all || paths.iter().any(|path| path == field);
        let f = Fields { patient, today };
        Self {
            nhs_number: wants("nhs_number").then(|| f.nhs_number(r)).flatten(),
            given_name: wants("given_name").then(|| f.given_name(r)).flatten(),
            family_name: wants("family_name").then(|| f.family_name(r)).flatten(),
            birth_date: wants("birth_date").then(|| f.birth_date(r)).flatten(),
            sex: wants("sex").then(|| f.sex(r)).flatten(),
            address: wants("address").then(|| f.address(r)).flatten(),
            phone: wants("phone").then(|| f.phone(r)).flatten(),
            email: wants("email").then(|| f.email(r)).flatten(),
            gp_practice: wants("gp_practice").then(|| f.gp_practice(r)).flatten(),
        }
    }
}

fn plausible_birth_date(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, &'static str> {
    if date > today {
        return Err("must not be in the future");
    }
    if date.year() < EARLIEST_BIRTH_YEAR {
        return Err("is implausibly early");
    }
    Ok(date)
}

/// An ODS code, upper-cased: 3 to 8 letters or digits.
fn parse_ods_code(code: &str) -> Result<String, &'static str> {
    let code = code.trim().to_ascii_uppercase();
    if (3..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(code)
    } else {
        Err("must be an ODS code of 3 to 8 letters or digits (e.g. A81001)")
    }
}

/// Keeps the digits and a leading `+`; separators people type are dropped.
fn parse_phone(phone: &str) -> Result<String, &'static str> {
    if phone.chars().count() > MAX_PHONE_CHARS {
        return Err("must be at most 30 characters");
    }
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
    use medsec_platform::ApiError;

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

    /// What `read` made of `patient`, or the fields it found bad.
    fn read<T>(read: impl FnOnce(&mut Reader) -> Option<T>) -> Result<T, Vec<String>> {
        let mut r = Reader::new();
        let value = read(&mut r);
        r.finish(value).map_err(|error| match error {
            ApiError::InvalidArgument(violations) => {
                violations.fields().map(str::to_owned).collect()
            }
            other => panic!("not invalid: {other:?}"),
        })
    }

    #[test]
    fn parses_and_normalises_a_whole_patient() {
        let details = read(|r| PatientDetails::read(r, &valid(), today())).unwrap();
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
        let fields = read(|r| PatientDetails::read(r, &bad, today())).unwrap_err();
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
        let patch = |paths: &[&str]| {
            let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            read(|r| Some(PatientPatch::read(r, &request, &paths, today())))
        };
        let only_family = patch(&["family_name"]).unwrap();
        assert_eq!(only_family.family_name.as_deref(), Some("Byron"));
        assert!(only_family.nhs_number.is_none());

        let fields = patch(&["nhs_number", "create_time"]).unwrap_err();
        assert_eq!(fields, ["update_mask", "patient.nhs_number"]);

        assert_eq!(patch(&["email"]).unwrap().email, Some(None));
    }

    #[test]
    fn a_patch_names_the_paths_it_applies() {
        let patch = |paths: &[&str]| {
            let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            read(|r| Some(PatientPatch::read(r, &valid(), &paths, today()))).unwrap()
        };
        assert_eq!(
            patch(&["phone", "family_name", "phone"]).paths(),
            ["family_name", "phone"]
        );
        assert_eq!(patch(&["*"]).paths(), UPDATABLE_FIELDS);
        assert!(PatientPatch::default().paths().is_empty());
    }

    #[test]
    fn repeated_address_lines_are_kept() {
        let mut patient = valid();
        patient.address.as_mut().unwrap().lines = vec!["Flat 1".into(), "Flat 1".into()];
        let details = read(|r| PatientDetails::read(r, &patient, today())).unwrap();
        assert_eq!(details.address.unwrap().lines.len(), 2);
    }

    #[test]
    fn overlong_lists_and_strings_are_refused_before_they_are_read() {
        let mut patient = valid();
        // A bad line among too many is not read, so only the count is named.
        patient.address.as_mut().unwrap().lines = vec!["\0".into(); 1000];
        patient.nhs_number = format!("943 476 5919{}", " ".repeat(20));
        patient.nhs_number.push('0');
        patient.phone = format!("020 7946 0018{}1", " ".repeat(30));
        patient.address.as_mut().unwrap().postcode = format!("SW1A{}1AA", " ".repeat(10));
        assert_eq!(
            read(|r| PatientDetails::read(r, &patient, today())).unwrap_err(),
            [
                "patient.nhs_number",
                "patient.address.lines",
                "patient.address.postcode",
                "patient.phone",
            ]
        );
    }
}
