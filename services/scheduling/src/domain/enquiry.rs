//! Enquiry routing: which of the staff on duty answers a call, and why.
//!
//! The rule: someone on duty with the enquiry's skill, the one with the
//! fewest open enquiries (ties by name, then id, so the choice is
//! repeatable); else a duty manager on duty, chosen the same way; else
//! nobody can take it.

use std::fmt;

use uuid::Uuid;

use super::{Category, Urgency};

/// An enquiry to route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnquiry {
    pub category: Category,
    pub urgency: Urgency,
    pub patient_id: Option<Uuid>,
    pub summary: String,
}

/// A staff member on duty when the enquiry comes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: Uuid,
    pub name: String,
    pub skills: Vec<Category>,
    pub duty_manager: bool,
    /// Enquiries assigned to them and still open.
    pub open_enquiries: u64,
}

/// Who takes an enquiry, and the reason recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub assignee: Uuid,
    pub reason: String,
}

/// Nobody on duty can take an enquiry of this category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NobodyOnDuty(pub Category);

impl fmt::Display for NobodyOnDuty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nobody on duty can take a {} enquiry and no duty manager is on duty",
            self.0
        )
    }
}

/// Chooses who on duty takes an enquiry of `category` (see the module docs).
pub fn choose(
    category: Category,
    urgency: Urgency,
    on_duty: &[Candidate],
) -> Result<Routing, NobodyOnDuty> {
    let (skilled, others): (Vec<&Candidate>, Vec<&Candidate>) = on_duty
        .iter()
        .partition(|member| member.skills.contains(&category));
    let managers: Vec<&Candidate> = others.into_iter().filter(|m| m.duty_manager).collect();
    let (member, reason) = if let Some(member) = least_loaded(&skilled) {
        let reason = format!(
            "{} is on duty with skill {category} and has the fewest open enquiries ({}) of {} so skilled",
            member.name,
            member.open_enquiries,
            skilled.len()
        );
        (member, reason)
    } else if let Some(member) = least_loaded(&managers) {
        let reason = format!(
            "nobody on duty has skill {category}; {} is the duty manager on duty ({} open enquiries)",
            member.name, member.open_enquiries
        );
        (member, reason)
    } else {
        return Err(NobodyOnDuty(category));
    };
    Ok(Routing {
        assignee: member.id,
        reason: match urgency {
            Urgency::Urgent => format!("urgent: {reason}"),
            Urgency::Routine => reason,
        },
    })
}

/// The member with the fewest open enquiries, ties by name, then id.
fn least_loaded<'a>(members: &[&'a Candidate]) -> Option<&'a Candidate> {
    members
        .iter()
        .copied()
        .min_by(|a, b| (a.open_enquiries, &a.name, a.id).cmp(&(b.open_enquiries, &b.name, b.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, skills: &[Category], duty_manager: bool, open: u64) -> Candidate {
        Candidate {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            skills: skills.to_vec(),
            duty_manager,
            open_enquiries: open,
        }
    }

    #[test]
    fn the_least_loaded_skilled_member_takes_it_ties_by_name() {
        let on_duty = [
            member("Ben", &[Category::Appointments], false, 0),
            member("Amy", &[Category::Appointments, Category::Other], false, 0),
            member("Cal", &[Category::Appointments], false, 2),
            member("Dee", &[], true, 0),
        ];
        let routing = choose(Category::Appointments, Urgency::Routine, &on_duty).unwrap();
        assert_eq!(routing.assignee, on_duty[1].id);
        assert_eq!(
            routing.reason,
            "Amy is on duty with skill appointments and has the fewest open enquiries (0) of 3 so skilled"
        );
        let busier = [
            member("Amy", &[Category::Appointments], false, 3),
            member("Ben", &[Category::Appointments], false, 1),
        ];
        let routing = choose(Category::Appointments, Urgency::Urgent, &busier).unwrap();
        assert_eq!(routing.assignee, busier[1].id);
        assert!(routing.reason.starts_with("urgent: Ben is on duty"));
    }

    #[test]
    fn a_duty_manager_takes_what_nobody_skilled_can() {
        let on_duty = [
            member("Amy", &[Category::Appointments], false, 0),
            member("Eve", &[], true, 4),
            member("Dee", &[], true, 1),
        ];
        let routing = choose(Category::Billing, Urgency::Routine, &on_duty).unwrap();
        assert_eq!(routing.assignee, on_duty[2].id);
        assert_eq!(
            routing.reason,
            "nobody on duty has skill billing; Dee is the duty manager on duty (1 open enquiries)"
        );
    }

    #[test]
    fn nobody_suitable_on_duty_is_said_so() {
        let on_duty = [member("Amy", &[Category::Appointments], false, 0)];
        let nobody = choose(Category::Billing, Urgency::Routine, &on_duty).unwrap_err();
        assert_eq!(
            nobody.to_string(),
            "nobody on duty can take a billing enquiry and no duty manager is on duty"
        );
        assert!(choose(Category::Billing, Urgency::Routine, &[]).is_err());
    }
}
