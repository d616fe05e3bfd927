//! Charges for encounters. The database holds one charge per (appointment,
//! code), which makes CreateCharge idempotent for callers that retry.

use chrono::{NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::audit::{self, Access, Actor, Audited};
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryTrait as _,
    Set,
};
use uuid::Uuid;

use super::entities::charge::{ActiveModel, Column, Entity as Charges, Model};
use super::price_list;
use crate::domain::{Payer, line_amounts};

/// A validated charge request.
#[derive(Debug, Clone)]
pub struct NewCharge {
    pub appointment_id: Uuid,
    pub patient_id: Uuid,
    pub code: String,
    pub quantity: i32,
    pub service_date: NaiveDate,
    pub payer: Payer,
}

/// Filters of ListCharges; its `Debug` form, naming every value, is the
/// fingerprint of its page tokens.
#[derive(Debug, Default, Clone)]
pub struct ChargeFilter {
    pub patient_id: Option<Uuid>,
    pub appointment_id: Option<Uuid>,
    pub unbilled_only: bool,
}

/// A charge is its patient's.
impl Audited for Model {
    fn access(&self) -> Access {
        Access::patient(format!("charges/{}", self.id), self.patient_id)
    }
}

/// Records a charge at the price valid on its service date. A retry (same
/// appointment and code, same content) returns the first charge. Audited
/// in the same transaction.
pub async fn create(
    db: &DatabaseConnection,
    charge: NewCharge,
    actor: &Actor,
) -> Result<Model, ApiError> {
    audit::audited_one(db, actor, async |txn| create_in(txn, &charge).await).await
}

pub(crate) async fn create_in(
    db: &impl ConnectionTrait,
    charge: &NewCharge,
) -> Result<Model, ApiError> {
    // A retry is answered from the first charge before any price is looked
    // up: the price list may have changed since.
    if let Some(stored) = find(db, charge).await? {
        return same_or_conflict(stored, charge);
    }
    let Some(price) = price_list::valid_on(db, &charge.code, charge.service_date).await? else {
        return Err(ApiError::invalid(
            "charge.code",
            format!("has no price-list version valid on {}", charge.service_date),
        ));
    };
    let amounts = line_amounts(
        charge.quantity,
        price.unit_price_pence,
        price.vat_rate_basis_points,
    );
    let (insurer_name, policy_number) = charge.payer.insurer();
    let row = ActiveModel {
        id: Set(Uuid::now_v7()),
        appointment_id: Set(charge.appointment_id),
        patient_id: Set(charge.patient_id),
        code: Set(charge.code.clone()),
        price_item_id: Set(price.id),
        description: Set(price.description.clone()),
        quantity: Set(charge.quantity),
        unit_price_pence: Set(price.unit_price_pence),
        vat_rate_basis_points: Set(price.vat_rate_basis_points),
        net_pence: Set(amounts.net_pence),
        vat_pence: Set(amounts.vat_pence),
        service_date: Set(charge.service_date),
        payer_kind: Set(charge.payer.kind().as_str().to_owned()),
        payer_key: Set(charge.payer.key()),
        insurer_name: Set(insurer_name),
        policy_number: Set(policy_number),
        preauthorisation_code: Set(charge.payer.preauthorisation_code()),
        invoice_id: Set(None),
        create_time: Set(Utc::now()),
    };
    // The unique index decides which of racing retries inserts; the others
    // wait for its transaction and find its row.
    Charges::insert(row)
        .on_conflict(
            OnConflict::columns([Column::AppointmentId, Column::Code])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    let stored = find(db, charge)
        .await?
        .ok_or_else(|| ApiError::internal("charge vanished after insert"))?;
    same_or_conflict(stored, charge)
}

async fn find(db: &impl ConnectionTrait, charge: &NewCharge) -> Result<Option<Model>, ApiError> {
    Ok(Charges::find()
        .filter(Column::AppointmentId.eq(charge.appointment_id))
        .filter(Column::Code.eq(charge.code.as_str()))
        .one(db)
        .await?)
}

/// The stored charge when it is the same charge; ALREADY_EXISTS when the
/// appointment was charged for the code with other details.
fn same_or_conflict(stored: Model, charge: &NewCharge) -> Result<Model, ApiError> {
    let same = stored.patient_id == charge.patient_id
        && stored.quantity == charge.quantity
        && stored.service_date == charge.service_date
        && stored.payer_key == charge.payer.key()
        && stored.preauthorisation_code == charge.payer.preauthorisation_code();
    if !same {
        return Err(ApiError::AlreadyExists {
            message: format!(
                "appointment {} is already charged for {} by charge {} with other details",
                charge.appointment_id, charge.code, stored.id
            ),
            resource: "charge",
            existing_id: stored.id.to_string(),
        });
    }
    Ok(stored)
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    super::row::<Charges>(db, "charge", id).await
}

/// One page of charges by id (creation) order; every charge served is
/// audited, with the filters' hash.
pub async fn list(
    db: &DatabaseConnection,
    filter: &ChargeFilter,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<Model>, ApiError> {
    let query = Charges::find()
        .apply_if(filter.patient_id, |q, id| {
            q.filter(Column::PatientId.eq(id))
        })
        .apply_if(filter.appointment_id, |q, id| {
            q.filter(Column::AppointmentId.eq(id))
        })
        .apply_if(filter.unbilled_only.then_some(()), |q, ()| {
            q.filter(Column::InvoiceId.is_null())
        });
    audit::audited(db, actor, async |txn| {
        let rows = page.by_id(query, Column::Id)?.all(txn).await?;
        let served = audit::served(page, &rows, "charges");
        Ok((rows, served))
    })
    .await
}
