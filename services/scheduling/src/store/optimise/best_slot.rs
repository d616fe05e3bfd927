//! BookBestSlot's booking: the cheapest ranked slot that can still be
//! booked, idempotent on the request's key.

use medsec_platform::ApiError;
use medsec_platform::audit::{self, Actor};
use medsec_platform::db::begin_write;
use medsec_platform::idempotency::{Claimed, RequestKey};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::refusal;
use crate::domain::appointment::Booking;
use crate::store::IDEMPOTENCY_KEYS;
use crate::store::appointments::{self, book_in};
use crate::store::entities::appointment;

/// The scope of BookBestSlot's idempotency keys.
const SCOPE: &str = "BookBestSlot";

/// Books the referral into the first of `slots` (cheapest first) that can
/// still be booked, each tried in its own transaction; with `key`, a retry
/// returns the first call's appointment. `Err` when none could be booked,
/// with the reason each could not. The appointment booked (or replayed) is
/// audited in its transaction.
pub async fn book_first(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    patient_id: Uuid,
    referral_id: Uuid,
    slots: &[Uuid],
    actor: &Actor,
) -> Result<Result<appointment::Model, Vec<String>>, ApiError> {
    let mut reasons = Vec::new();
    for &slot_id in slots {
        let txn = begin_write(db).await?;
        let id = match IDEMPOTENCY_KEYS.claim_in(&txn, SCOPE, key).await? {
            Claimed::New(id) => id,
            Claimed::Replay(id) => {
                let appointment = appointments::get(&txn, id).await?;
                let appointment = audit::recorded(&txn, actor, appointment).await?;
                txn.commit().await?;
                return Ok(Ok(appointment));
            }
        };
        let booking = Booking {
            slot_id,
            patient_id,
            referral_id: Some(referral_id),
            reason: "best slot by the allocation model".to_owned(),
        };
        match book_in(&txn, id, booking).await {
            Ok(()) => {
                let appointment = appointments::get(&txn, id).await?;
                let appointment = audit::recorded(&txn, actor, appointment).await?;
                txn.commit().await?;
                return Ok(Ok(appointment));
            }
            Err(error) => {
                txn.rollback().await?;
                let Some(reason) = refusal(&error) else {
                    return Err(error);
                };
                reasons.push(format!("slot {slot_id}: {reason}"));
            }
        }
    }
    Ok(Err(reasons))
}

/// The appointment an earlier call with `key` made, if any; claims nothing,
/// so a retry is answered before the referral's state (booked by that very
/// call) is checked. The appointment's read is audited.
pub async fn replayed(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    actor: &Actor,
) -> Result<Option<appointment::Model>, ApiError> {
    let Some(key) = key else {
        return Ok(None);
    };
    let Some(resource_id) = IDEMPOTENCY_KEYS
        .lookup(db, SCOPE, &key.request_id, &key.request)
        .await?
    else {
        return Ok(None);
    };
    let id = Uuid::parse_str(&resource_id).map_err(ApiError::internal)?;
    Ok(Some(appointments::read(db, id, actor).await?))
}
