//! Staff members, locations, rooms and duty shifts as validated values, and
//! the rules of roles: who has a grade and specialties, and who may hold a
//! clinic.

use chrono::{DateTime, Duration, Utc};
use medsec_platform::Reader;
use uuid::Uuid;

use super::{Category, Role};

/// Longest grade ("consultant", "registrar").
pub const MAX_GRADE_CHARS: usize = 100;

/// Longest duty shift, and what a client is told of a longer one.
pub const LONGEST_SHIFT: (Duration, &str) = (Duration::hours(24), "a shift lasts at most 24 hours");

/// A staff member to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStaffMember {
    pub name: String,
    pub role: Role,
    /// A clinician's grade; `None` for other roles.
    pub grade: Option<String>,
    /// A clinician's specialties, each once.
    pub specialties: Vec<String>,
    /// The enquiry categories the member answers, each once.
    pub skills: Vec<Category>,
    pub duty_manager: bool,
}

/// A location to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLocation {
    pub name: String,
    pub address: String,
}

/// A room to create at a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoom {
    pub location_id: Uuid,
    pub name: String,
}

/// A duty shift to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDutyShift {
    pub staff_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What a role asks of a new member (fields under `prefix`): a clinician
/// has a grade and at least one specialty (`specialties` counts those sent);
/// nobody else has specialties.
pub fn check_role(r: &mut Reader, prefix: &str, role: Role, grade: &str, specialties: usize) {
    if role == Role::Clinician {
        if grade.trim().is_empty() {
            r.add(format!("{prefix}.grade"), "is required for a clinician");
        }
        if specialties == 0 {
            r.add(
                format!("{prefix}.specialties"),
                "a clinician needs at least one",
            );
        }
    } else if specialties > 0 {
        r.add(
            format!("{prefix}.specialties"),
            "only clinicians have specialties",
        );
    }
}

/// Whether a staff member may hold clinics or referrals of `specialty`:
/// `Err` says why not, for the field naming them.
pub fn clinician_of(
    role: Option<Role>,
    specialties: &[String],
    specialty: &str,
) -> Result<(), ClinicianMisfit> {
    if role != Some(Role::Clinician) {
        return Err(ClinicianMisfit::NotAClinician);
    }
    if !specialties.iter().any(|s| s == specialty) {
        return Err(ClinicianMisfit::OtherSpecialty);
    }
    Ok(())
}

/// Why a staff member cannot be the clinician a resource names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClinicianMisfit {
    NotAClinician,
    OtherSpecialty,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::violations;

    #[test]
    fn a_clinician_has_a_grade_and_a_specialty_and_nobody_else_a_specialty() {
        let mut r = Reader::new();
        check_role(&mut r, "m", Role::Clinician, " ", 0);
        check_role(&mut r, "n", Role::Clinician, "consultant", 1);
        check_role(&mut r, "o", Role::Secretary, "", 1);
        check_role(&mut r, "p", Role::Secretary, "", 0);
        assert_eq!(
            violations(r),
            [
                "m.grade: is required for a clinician",
                "m.specialties: a clinician needs at least one",
                "o.specialties: only clinicians have specialties",
            ]
        );
    }

    #[test]
    fn only_a_clinician_of_the_specialty_fits() {
        let cardiology = ["cardiology".to_owned()];
        let clinician = Some(Role::Clinician);
        assert_eq!(clinician_of(clinician, &cardiology, "cardiology"), Ok(()));
        assert_eq!(
            clinician_of(Some(Role::Nurse), &cardiology, "cardiology"),
            Err(ClinicianMisfit::NotAClinician)
        );
        assert_eq!(
            clinician_of(clinician, &cardiology, "dermatology"),
            Err(ClinicianMisfit::OtherSpecialty)
        );
    }
}
