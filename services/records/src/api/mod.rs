//! The RecordsService gRPC handlers, one module per area: each reads its
//! request with one `Reader` (INVALID_ARGUMENT naming every bad field),
//! makes one store call, and converts the result back. No SQL and no rules
//! here; the table below only routes.

mod audit;
mod documents;
mod forms;
mod history;
mod patients;
mod policy;
mod read;
mod specimens;

pub use policy::POLICY;

use medsec_platform::config::RecordsSettings;
use medsec_proto::records::v1 as pb;
use medsec_proto::records::v1::records_service_server::RecordsService;

use crate::store::DatabaseConnection;

/// RecordsService over one database.
#[derive(Debug, Clone)]
pub struct RecordsApi {
    db: DatabaseConnection,
    settings: RecordsSettings,
}

impl RecordsApi {
    pub fn new(db: DatabaseConnection, settings: RecordsSettings) -> Self {
        Self { db, settings }
    }
}

medsec_platform::grpc_handlers! {
    RecordsApi as RecordsService, domain = "records.medsec" {
        create_patient(pb::CreatePatientRequest) -> pb::Patient = patients::create;
        get_patient(pb::GetPatientRequest) -> pb::Patient = patients::get;
        list_patients(pb::ListPatientsRequest) -> pb::ListPatientsResponse = patients::list;
        update_patient(pb::UpdatePatientRequest) -> pb::Patient = patients::update;
        archive_patient(pb::ArchivePatientRequest) -> pb::Patient = patients::archive;
        get_patient_summary(pb::GetPatientSummaryRequest) -> pb::PatientSummary = history::summary;
        create_form_template(pb::CreateFormTemplateRequest) -> pb::FormTemplate = forms::create_template;
        create_form_template_version(pb::CreateFormTemplateVersionRequest) -> pb::FormTemplate = forms::create_template_version;
        get_form_template(pb::GetFormTemplateRequest) -> pb::FormTemplate = forms::get_template;
        list_form_templates(pb::ListFormTemplatesRequest) -> pb::ListFormTemplatesResponse = forms::list_templates;
        submit_form_response(pb::SubmitFormResponseRequest) -> pb::FormResponse = forms::submit;
        revise_form_response(pb::ReviseFormResponseRequest) -> pb::FormResponse = forms::revise;
        get_form_response(pb::GetFormResponseRequest) -> pb::FormResponse = forms::get_response;
        list_form_responses(pb::ListFormResponsesRequest) -> pb::ListFormResponsesResponse = forms::list_responses;
        create_history_entry(pb::CreateHistoryEntryRequest) -> pb::HistoryEntry = history::create;
        update_history_entry(pb::UpdateHistoryEntryRequest) -> pb::HistoryEntry = history::update;
        get_history_entry(pb::GetHistoryEntryRequest) -> pb::HistoryEntry = history::get;
        list_history_entries(pb::ListHistoryEntriesRequest) -> pb::ListHistoryEntriesResponse = history::list;
        create_document(pb::CreateDocumentRequest) -> pb::Document = documents::create;
        create_document_version(pb::CreateDocumentVersionRequest) -> pb::Document = documents::create_version;
        get_document(pb::GetDocumentRequest) -> pb::Document = documents::get;
        get_document_content(pb::GetDocumentContentRequest) -> pb::DocumentContent = documents::get_content;
        list_documents(pb::ListDocumentsRequest) -> pb::ListDocumentsResponse = documents::list;
        create_test_type(pb::CreateTestTypeRequest) -> pb::TestType = specimens::create_test_type;
        list_test_types(pb::ListTestTypesRequest) -> pb::ListTestTypesResponse = specimens::list_test_types;
        request_specimen(pb::RequestSpecimenRequest) -> pb::Specimen = specimens::request;
        collect_specimen(pb::CollectSpecimenRequest) -> pb::Specimen = specimens::collect;
        dispatch_specimen(pb::DispatchSpecimenRequest) -> pb::Specimen = specimens::dispatch;
        receive_specimen(pb::ReceiveSpecimenRequest) -> pb::Specimen = specimens::receive;
        result_specimen(pb::ResultSpecimenRequest) -> pb::Specimen = specimens::result;
        reject_specimen(pb::RejectSpecimenRequest) -> pb::Specimen = specimens::reject;
        get_specimen(pb::GetSpecimenRequest) -> pb::Specimen = specimens::get;
        list_specimens(pb::ListSpecimensRequest) -> pb::ListSpecimensResponse = specimens::list;
        list_overdue_specimens(pb::ListOverdueSpecimensRequest) -> pb::ListSpecimensResponse = specimens::list_overdue;
        list_audit_events(pb::ListAuditEventsRequest) -> pb::ListAuditEventsResponse = audit::list;
    }
}
