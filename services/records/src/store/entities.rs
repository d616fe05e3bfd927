//! Every table of RecordsService as a sea-orm entity, one module a table.
//! The schema itself is made by `migration`; these say how a row reads.

/// Declares the entity of one table: its row (`Model`), with no relations
/// and the default active-model behaviour, as every table here has.
macro_rules! entity {
    ($(#[$doc:meta])* $module:ident = $table:tt { $($fields:tt)* }) => {
        $(#[$doc])*
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model { $($fields)* }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

entity! {
    /// The register: one row per registration, archived or not.
    patient = "patients" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Ten digits; unique among active patients (partial unique index).
        pub nhs_number: String,
        pub given_name: String,
        pub family_name: String,
        /// `family_name` lower-cased, for case-insensitive prefix search.
        pub family_name_folded: String,
        pub birth_date: Date,
        /// A `Sex` in its stored spelling.
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
}

entity! {
    /// Records' first audit trail, copied into the suite's
    /// (`medsec_platform::audit`) by migration 3 and written no more:
    /// append-only (the database refuses updates and deletes).
    audit_event = "audit_events" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub time: DateTimeUtc,
        pub actor: String,
        pub role: String,
        pub purpose: String,
        pub action: String,
        pub resource: String,
        pub patient_id: Uuid,
        pub trace_id: String,
    }
}

entity! {
    /// Medical history: the typed details as JSON beside the columns that
    /// are queried.
    history_entry = "history_entries" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub patient_id: Uuid,
        /// A `HistoryKind` in its stored spelling.
        pub kind: String,
        /// `HistoryDetails` as JSON.
        pub details: String,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
        pub revision: i64,
    }
}

entity! {
    /// One version of a clinical document; its content is in
    /// `document_content`, so listings never load it.
    document = "documents" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The id of version 1, shared by every version.
        pub lineage_id: Uuid,
        pub patient_id: Uuid,
        pub version: i32,
        /// A `DocumentStatus` in its stored spelling.
        pub status: String,
        pub title: String,
        /// A `DocumentKind` in its stored spelling.
        pub kind: String,
        pub content_type: String,
        pub author: String,
        pub size_bytes: i64,
        pub sha256: String,
        pub supersedes_id: Option<Uuid>,
        pub create_time: DateTimeUtc,
        pub revision: i64,
    }
}

entity! {
    /// The bytes of one document version.
    document_content = "document_contents" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub document_id: Uuid,
        pub content: Vec<u8>,
    }
}

entity! {
    /// One immutable version of an intake form template.
    form_template = "form_templates" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        pub title: String,
        /// `Vec<FormItem>` as JSON.
        pub items: String,
        /// The newest version of its template.
        pub latest: bool,
        pub create_time: DateTimeUtc,
    }
}

entity! {
    /// A patient's response to one template version, at its latest revision.
    form_response = "form_responses" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub patient_id: Uuid,
        pub template_id: Uuid,
        pub template_version: i32,
        /// A `FormStatus` in its stored spelling.
        pub status: String,
        /// The latest revision; also the etag.
        pub revision: i32,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
    }
}

entity! {
    /// Every revision of a response, kept.
    form_response_revision = "form_response_revisions" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub response_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub revision: i32,
        /// A `FormStatus` in its stored spelling.
        pub status: String,
        /// `Vec<AnswerValue>` as JSON.
        pub answers: String,
        pub author: String,
        pub time: DateTimeUtc,
    }
}

entity! {
    /// The test catalogue, keyed by test code.
    test_type = "test_types" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        pub name: String,
        pub specimen_type: String,
        pub turnaround_hours: i32,
        pub create_time: DateTimeUtc,
    }
}

entity! {
    /// A sample sent for testing, in its current state.
    specimen = "specimens" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub patient_id: Uuid,
        pub test_code: String,
        /// A `SpecimenState` in its stored spelling.
        pub state: String,
        pub notes: String,
        pub courier: Option<String>,
        pub lab: Option<String>,
        pub tracking_reference: Option<String>,
        pub result_summary: Option<String>,
        pub abnormal: bool,
        pub result_document_id: Option<Uuid>,
        pub rejection_reason: Option<String>,
        pub dispatch_time: Option<DateTimeUtc>,
        /// `dispatch_time` plus the test's turnaround.
        pub due_time: Option<DateTimeUtc>,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
        pub revision: i64,
        /// When the overdue sweep raised `SpecimenOverdue` for it; `None`
        /// until then (once per specimen).
        pub overdue_raised_at: Option<DateTimeUtc>,
    }
}

entity! {
    /// One step of a specimen's journey, with who took it.
    specimen_event = "specimen_events" {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub specimen_id: Uuid,
        /// A `SpecimenState` in its stored spelling.
        pub state: String,
        pub time: DateTimeUtc,
        pub actor: String,
        pub details: String,
    }
}
