//! The RecordsService gRPC handlers, one module per area: each reads its
//! request with one `Reader` (INVALID_ARGUMENT naming every bad field),
//! makes one store call, and converts the result back. No SQL and no rules
//! here; the table below only routes.

mod actor;
mod audit;
mod documents;
mod forms;
mod history;
mod patients;
mod specimens;

use crate::store::DatabaseConnection;
use medsec_platform::config::RecordsSettings;
use medsec_platform::pagination::PageRequest;
use medsec_platform::{ApiError, Reader};
use medsec_proto::records::v1 as pb;
use medsec_proto::records::v1::records_service_server::RecordsService;
use uuid::Uuid;

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
    RecordsApi as RecordsService {
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

/// The one id a Get request names.
fn read_id(field: &str, text: &str) -> Result<Uuid, ApiError> {
    let mut r = Reader::new();
    let id = r.id(field, text);
    r.finish(id)
}

/// The page a listing with no filters asks for.
fn read_page(page_size: i32, page_token: &str) -> Result<PageRequest, ApiError> {
    let mut r = Reader::new();
    let page = r.page(page_size, page_token, "");
    r.finish(page)
}

/// The patient a listing of their record names, and the page it asks for.
fn read_patient_page(
    patient_id: &str,
    page_size: i32,
    page_token: &str,
) -> Result<(Uuid, PageRequest), ApiError> {
    let mut r = Reader::new();
    let id = r.id("patient_id", patient_id);
    let page = r.page(page_size, page_token, patient_id);
    r.finish((id, page))
}

/// A version or revision to read: 0 means the latest.
fn read_version(r: &mut Reader, field: &str, value: i32) -> Option<Option<i32>> {
    match value {
        0 => Some(None),
        v if v > 0 => Some(Some(v)),
        _ => {
            r.add(field, "must not be negative");
            None
        }
    }
}
