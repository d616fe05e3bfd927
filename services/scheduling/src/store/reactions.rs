//! What SchedulingService does when other services' events arrive
//! (`medsec_platform::events::Consumer`): each effect runs in the
//! transaction that also writes the event's inbox row, so it happens once.

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::audit::{self, Access, Actor};
use medsec_platform::events::{Consumer, pb};
use medsec_platform::request::parse_uuid;
use sea_orm::{
    ColumnTrait as _, DatabaseTransaction, EntityTrait as _, QueryFilter as _, QueryOrder as _,
};

use super::appointments::cancel_in;
use super::diary::get_slot;
use super::entities::{appointment, referral};
use super::optimise::holds::{cancelled_from, hold_in, slot_state};
use super::optimise::instance::{self, Scope};
use super::referrals::remove_in;
use crate::domain::allocation::{self, Horizon};
use crate::domain::diary::SlotState;
use crate::domain::offer;
use crate::domain::{AppointmentStatus, CancelledBy, ReferralStatus};

/// The reason given on everything a patient's archiving cancels or removes.
pub const PATIENT_ARCHIVED: &str = "patient archived";

/// On `medsec.records.patient.archived`: the patient's appointments still to
/// come are cancelled (by the hospital, "patient archived") and their
/// waiting referrals removed, each raising its own events.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArchivedPatients;

#[sea_orm::prelude::async_trait::async_trait]
impl Consumer for ArchivedPatients {
    fn name(&self) -> &'static str {
        "scheduling-archived-patients"
    }

    fn filter(&self) -> &'static str {
        "medsec.records.patient.archived"
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &pb::Envelope,
    ) -> Result<(), ApiError> {
        let Some(pb::envelope::Data::PatientArchived(archived)) = &event.data else {
            return Ok(());
        };
        let patient_id =
            parse_uuid(&archived.patient_id).map_err(|why| ApiError::invalid("patient_id", why))?;
        let actor = Actor::named("scheduling", "OnPatientArchived", "medsec-scheduling");
        let now = Utc::now().timestamp();
        let upcoming = appointment::Entity::find()
            .filter(appointment::Column::PatientId.eq(patient_id))
            .filter(appointment::Column::Status.eq(AppointmentStatus::Booked.as_str()))
            .filter(appointment::Column::StartAt.gt(now))
            .order_by_asc(appointment::Column::StartAt)
            .all(txn)
            .await?;
        let mut accesses = Vec::new();
        for booked in upcoming {
            cancel_in(txn, booked.id, CancelledBy::Hospital, PATIENT_ARCHIVED).await?;
            accesses.push(Access::patient(
                format!("appointments/{}", booked.id),
                patient_id,
            ));
        }
        // Cancelling put their referrals back on the list: all go now.
        let waiting = referral::Entity::find()
            .filter(referral::Column::PatientId.eq(patient_id))
            .filter(referral::Column::Status.eq(ReferralStatus::Waiting.as_str()))
            .order_by_asc(referral::Column::Id)
            .all(txn)
            .await?;
        for listed in waiting {
            remove_in(txn, listed.id, PATIENT_ARCHIVED).await?;
            accesses.push(Access::patient(
                format!("referrals/{}", listed.id),
                patient_id,
            ));
        }
        audit::record(txn, &actor, accesses).await
    }
}

/// On `medsec.scheduling.slot.freed`, when the clinic offers freed slots by
/// itself (`scheduling.automatic_offers`): the slot is held for the waiting
/// referral the optimiser places in it, as `OfferFreedSlot` would, until
/// `hold_for` from now (never past the slot's start). A slot booked or held
/// again meanwhile, already started, or suiting nobody is left alone.
#[derive(Debug, Clone, Copy)]
pub struct FreedSlots {
    pub hold_for: std::time::Duration,
}

#[sea_orm::prelude::async_trait::async_trait]
impl Consumer for FreedSlots {
    fn name(&self) -> &'static str {
        "scheduling-freed-slots"
    }

    fn filter(&self) -> &'static str {
        "medsec.scheduling.slot.freed"
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &pb::Envelope,
    ) -> Result<(), ApiError> {
        let Some(pb::envelope::Data::SlotFreed(freed)) = &event.data else {
            return Ok(());
        };
        let slot_id =
            parse_uuid(&freed.slot_id).map_err(|why| ApiError::invalid("slot_id", why))?;
        let slot = get_slot(txn, slot_id).await?;
        let now = Utc::now();
        if slot_state(&slot, now.timestamp()) != SlotState::Free || slot.start_at <= now.timestamp()
        {
            return Ok(());
        }
        let mut scope = Scope::new(vec![slot.specialty.clone()], Horizon::day(slot.date));
        scope.only_slot = Some(slot_id);
        scope.exclude_referrals = cancelled_from(txn, slot_id).await?;
        let built = instance::build(txn, &scope).await?;
        let span = tracing::Span::current();
        let solved = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                allocation::solve(&built.instance, &medsec_scheduler::SolveOptions::default())
            })
        })
        .await
        .map_err(ApiError::internal)??;
        let Ok(chosen) = offer::choose(slot_id, &solved) else {
            return Ok(());
        };
        let hold_for = chrono::TimeDelta::from_std(self.hold_for).unwrap_or_default();
        let until = (now + hold_for).timestamp().min(slot.start_at);
        let actor = Actor::named("scheduling", "OnSlotFreed", "medsec-scheduling");
        hold_in(txn, slot_id, chosen.referral_id, until, &actor).await?;
        tracing::info!(slot = %slot_id, referral = %chosen.referral_id, "freed slot offered by itself");
        Ok(())
    }
}
