//! The RecordsService gRPC handlers: proto in, domain validation, one store
//! call, proto out. No SQL and no rules here; each area has its module and
//! this impl only routes.

mod audit;
mod context;
mod documents;
mod forms;
mod history;
mod patients;
mod specimens;

use medsec_platform::config::RecordsSettings;
use medsec_proto::records::v1 as pb;
use medsec_proto::records::v1::records_service_server::RecordsService;
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

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

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl RecordsService for RecordsApi {
    async fn create_patient(&self, r: Request<pb::CreatePatientRequest>) -> Reply<pb::Patient> {
        Ok(Response::new(patients::create(self, r).await?))
    }

    async fn get_patient(&self, r: Request<pb::GetPatientRequest>) -> Reply<pb::Patient> {
        Ok(Response::new(patients::get(self, r).await?))
    }

    async fn list_patients(
        &self,
        r: Request<pb::ListPatientsRequest>,
    ) -> Reply<pb::ListPatientsResponse> {
        Ok(Response::new(patients::list(self, r).await?))
    }

    async fn update_patient(&self, r: Request<pb::UpdatePatientRequest>) -> Reply<pb::Patient> {
        Ok(Response::new(patients::update(self, r).await?))
    }

    async fn archive_patient(&self, r: Request<pb::ArchivePatientRequest>) -> Reply<pb::Patient> {
        Ok(Response::new(patients::archive(self, r).await?))
    }

    async fn get_patient_summary(
        &self,
        r: Request<pb::GetPatientSummaryRequest>,
    ) -> Reply<pb::PatientSummary> {
        Ok(Response::new(history::summary(self, r).await?))
    }

    async fn create_form_template(
        &self,
        r: Request<pb::CreateFormTemplateRequest>,
    ) -> Reply<pb::FormTemplate> {
        Ok(Response::new(forms::create_template(self, r).await?))
    }

    async fn create_form_template_version(
        &self,
        r: Request<pb::CreateFormTemplateVersionRequest>,
    ) -> Reply<pb::FormTemplate> {
        Ok(Response::new(
            forms::create_template_version(self, r).await?,
        ))
    }

    async fn get_form_template(
        &self,
        r: Request<pb::GetFormTemplateRequest>,
    ) -> Reply<pb::FormTemplate> {
        Ok(Response::new(forms::get_template(self, r).await?))
    }

    async fn list_form_templates(
        &self,
        r: Request<pb::ListFormTemplatesRequest>,
    ) -> Reply<pb::ListFormTemplatesResponse> {
        Ok(Response::new(forms::list_templates(self, r).await?))
    }

    async fn submit_form_response(
        &self,
        r: Request<pb::SubmitFormResponseRequest>,
    ) -> Reply<pb::FormResponse> {
        Ok(Response::new(forms::submit(self, r).await?))
    }

    async fn revise_form_response(
        &self,
        r: Request<pb::ReviseFormResponseRequest>,
    ) -> Reply<pb::FormResponse> {
        Ok(Response::new(forms::revise(self, r).await?))
    }

    async fn get_form_response(
        &self,
        r: Request<pb::GetFormResponseRequest>,
    ) -> Reply<pb::FormResponse> {
        Ok(Response::new(forms::get_response(self, r).await?))
    }

    async fn list_form_responses(
        &self,
        r: Request<pb::ListFormResponsesRequest>,
    ) -> Reply<pb::ListFormResponsesResponse> {
        Ok(Response::new(forms::list_responses(self, r).await?))
    }

    async fn create_history_entry(
        &self,
        r: Request<pb::CreateHistoryEntryRequest>,
    ) -> Reply<pb::HistoryEntry> {
        Ok(Response::new(history::create(self, r).await?))
    }

    async fn update_history_entry(
        &self,
        r: Request<pb::UpdateHistoryEntryRequest>,
    ) -> Reply<pb::HistoryEntry> {
        Ok(Response::new(history::update(self, r).await?))
    }

    async fn get_history_entry(
        &self,
        r: Request<pb::GetHistoryEntryRequest>,
    ) -> Reply<pb::HistoryEntry> {
        Ok(Response::new(history::get(self, r).await?))
    }

    async fn list_history_entries(
        &self,
        r: Request<pb::ListHistoryEntriesRequest>,
    ) -> Reply<pb::ListHistoryEntriesResponse> {
        Ok(Response::new(history::list(self, r).await?))
    }

    async fn create_document(&self, r: Request<pb::CreateDocumentRequest>) -> Reply<pb::Document> {
        Ok(Response::new(documents::create(self, r).await?))
    }

    async fn create_document_version(
        &self,
        r: Request<pb::CreateDocumentVersionRequest>,
    ) -> Reply<pb::Document> {
        Ok(Response::new(documents::create_version(self, r).await?))
    }

    async fn get_document(&self, r: Request<pb::GetDocumentRequest>) -> Reply<pb::Document> {
        Ok(Response::new(documents::get(self, r).await?))
    }

    async fn get_document_content(
        &self,
        r: Request<pb::GetDocumentContentRequest>,
    ) -> Reply<pb::DocumentContent> {
        Ok(Response::new(documents::get_content(self, r).await?))
    }

    async fn list_documents(
        &self,
        r: Request<pb::ListDocumentsRequest>,
    ) -> Reply<pb::ListDocumentsResponse> {
        Ok(Response::new(documents::list(self, r).await?))
    }

    async fn create_test_type(&self, r: Request<pb::CreateTestTypeRequest>) -> Reply<pb::TestType> {
        Ok(Response::new(specimens::create_test_type(self, r).await?))
    }

    async fn list_test_types(
        &self,
        r: Request<pb::ListTestTypesRequest>,
    ) -> Reply<pb::ListTestTypesResponse> {
        Ok(Response::new(specimens::list_test_types(self, r).await?))
    }

    async fn request_specimen(
        &self,
        r: Request<pb::RequestSpecimenRequest>,
    ) -> Reply<pb::Specimen> {
        Ok(Response::new(specimens::request(self, r).await?))
    }

    async fn collect_specimen(
        &self,
        r: Request<pb::CollectSpecimenRequest>,
    ) -> Reply<pb::Specimen> {
        Ok(Response::new(specimens::collect(self, r).await?))
    }

    async fn dispatch_specimen(
        &self,
        r: Request<pb::DispatchSpecimenRequest>,
    ) -> Reply<pb::Specimen> {
        Ok(Response::new(specimens::dispatch(self, r).await?))
    }

    async fn receive_specimen(
        &self,
        r: Request<pb::ReceiveSpecimenRequest>,
    ) -> Reply<pb::Specimen> {
        Ok(Response::new(specimens::receive(self, r).await?))
    }

    async fn result_specimen(&self, r: Request<pb::ResultSpecimenRequest>) -> Reply<pb::Specimen> {
        Ok(Response::new(specimens::result(self, r).await?))
    }

    async fn reject_specimen(&self, r: Request<pb::RejectSpecimenRequest>) -> Reply<pb::Specimen> {
        Ok(Response::new(specimens::reject(self, r).await?))
    }

    async fn get_specimen(&self, r: Request<pb::GetSpecimenRequest>) -> Reply<pb::Specimen> {
        Ok(Response::new(specimens::get(self, r).await?))
    }

    async fn list_specimens(
        &self,
        r: Request<pb::ListSpecimensRequest>,
    ) -> Reply<pb::ListSpecimensResponse> {
        Ok(Response::new(specimens::list(self, r).await?))
    }

    async fn list_overdue_specimens(
        &self,
        r: Request<pb::ListOverdueSpecimensRequest>,
    ) -> Reply<pb::ListSpecimensResponse> {
        Ok(Response::new(specimens::list_overdue(self, r).await?))
    }

    async fn list_audit_events(
        &self,
        r: Request<pb::ListAuditEventsRequest>,
    ) -> Reply<pb::ListAuditEventsResponse> {
        Ok(Response::new(audit::list(self, r).await?))
    }
}
