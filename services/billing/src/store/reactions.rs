//! What BillingService does when scheduling's events arrive
//! (`medsec_platform::events::Consumer`): the charge is created in the
//! transaction that also writes the event's inbox row, so an appointment
//! is charged once however often its event is delivered.

use medsec_platform::ApiError;
use medsec_platform::audit::{self, Actor};
use medsec_platform::config::ChargeRules;
use medsec_platform::events::{Consumer, pb};
use medsec_platform::request::parse_uuid;
use medsec_platform::time::from_timestamp;
use sea_orm::DatabaseTransaction;

use super::charges::{NewCharge, create_in};
use crate::domain::Payer;
use crate::domain::charge_rule::charge_code;

/// On `medsec.scheduling.appointment.fulfilled`: a charge at the price valid
/// on the appointment's day, coded by the clinic's rules from the slot's
/// kind and specialty, to the referral's payer. On
/// `….did_not_attend`: the clinic's DNA fee, when it has one.
#[derive(Debug, Clone)]
pub struct AppointmentCharges {
    pub rules: ChargeRules,
}

#[sea_orm::prelude::async_trait::async_trait]
impl Consumer for AppointmentCharges {
    fn name(&self) -> &'static str {
        "billing-appointment-charges"
    }

    fn filter(&self) -> &'static str {
        "medsec.scheduling.appointment.>"
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &pb::Envelope,
    ) -> Result<(), ApiError> {
        use pb::envelope::Data;
        let (facts, template) = match &event.data {
            Some(Data::AppointmentFulfilled(fulfilled)) => {
                let template = if fulfilled
                    .appointment
                    .as_ref()
                    .is_some_and(|facts| facts.kind == "follow_up")
                {
                    &self.rules.follow_up
                } else {
                    &self.rules.new
                };
                (fulfilled.appointment.as_ref(), template)
            }
            Some(Data::AppointmentDidNotAttend(missed)) => match &self.rules.did_not_attend {
                Some(template) => (missed.appointment.as_ref(), template),
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        let Some(facts) = facts else {
            return Err(ApiError::invalid(
                "appointment",
                "is missing from the event",
            ));
        };
        let charge = NewCharge {
            appointment_id: parse_uuid(&facts.appointment_id)
                .map_err(|why| ApiError::invalid("appointment.appointment_id", why))?,
            patient_id: parse_uuid(&facts.patient_id)
                .map_err(|why| ApiError::invalid("appointment.patient_id", why))?,
            code: charge_code(template, &facts.specialty),
            quantity: 1,
            service_date: facts
                .start_time
                .as_ref()
                .and_then(from_timestamp)
                .map(medsec_platform::time::london_date)
                .ok_or_else(|| ApiError::invalid("appointment.start_time", "is missing"))?,
            payer: payer(facts.funding.as_ref()),
        };
        let actor = Actor::named("billing", "OnAppointmentAttended", "medsec-billing");
        let created = create_in(txn, &charge).await?;
        audit::recorded(txn, &actor, created).await?;
        Ok(())
    }
}

/// The payer a referral's funding names; the NHS when it names none.
fn payer(funding: Option<&pb::Funding>) -> Payer {
    match funding.map(|funding| funding.kind.as_str()) {
        Some("self_pay") => Payer::SelfPay,
        Some("insurer") => {
            let funding = funding.cloned().unwrap_or_default();
            Payer::Insurer {
                name: funding.insurer_name,
                policy_number: funding.policy_number,
                preauthorisation_code: Some(funding.preauthorisation_code)
                    .filter(|code| !code.is_empty()),
            }
        }
        _ => Payer::Nhs,
    }
}
