//! The `patients` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "patients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Ten digits; unique among active patients (partial unique index).
    pub nhs_number: String,
    pub given_name: String,
    pub family_name: String,
    /// `family_name` lower-cased, for case-insensitive prefix search.
    pub family_name_folded: String,
    pub birth_date: Date,
    pub sex: String,
    /// Street lines joined by newlines (a line never holds one).
    pub address_lines: Option<String>,
    pub address_town: Option<String>,
    pub address_postcode: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub gp_ods_code: Option<String>,
    pub gp_name: Option<String>,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
    pub archive_time: Option<DateTimeUtc>,
    /// Bumped by every change; the etag.
    pub revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
