//! Who may call each RecordsService RPC (the README's role table). Clinical
//! history and specimen results are written by clinicians only; the audit
//! trail is read by auditors only; form templates and the test catalogue are
//! configuration, kept by admins.

use medsec_platform::auth::Role::{Admin, Auditor, BillingClerk, Clinician, Secretary, Service};
use medsec_platform::auth::policy::{Rule, ServicePolicy};

const CARE: &[medsec_platform::auth::Role] = &[Secretary, Clinician];

/// RecordsService's rows of the policy table.
pub const POLICY: ServicePolicy = ServicePolicy {
    service: crate::SERVICE_NAME,
    rules: &[
        Rule::patient("CreatePatient", CARE),
        Rule::patient("GetPatient", &[Secretary, Clinician, BillingClerk, Service]),
        Rule::patient("ListPatients", &[Secretary, Clinician, BillingClerk]),
        Rule::patient("UpdatePatient", CARE),
        Rule::patient("ArchivePatient", &[Secretary, Admin]),
        Rule::patient("GetPatientSummary", CARE),
        Rule::other("CreateFormTemplate", &[Admin]),
        Rule::other("CreateFormTemplateVersion", &[Admin]),
        Rule::other("GetFormTemplate", &[Secretary, Clinician, Admin]),
        Rule::other("ListFormTemplates", &[Secretary, Clinician, Admin]),
        Rule::patient("SubmitFormResponse", CARE),
        Rule::patient("ReviseFormResponse", CARE),
        Rule::patient("GetFormResponse", CARE),
        Rule::patient("ListFormResponses", CARE),
        Rule::patient("CreateHistoryEntry", &[Clinician]),
        Rule::patient("UpdateHistoryEntry", &[Clinician]),
        Rule::patient("GetHistoryEntry", CARE),
        Rule::patient("ListHistoryEntries", CARE),
        Rule::patient("CreateDocument", CARE),
        Rule::patient("CreateDocumentVersion", CARE),
        Rule::patient("GetDocument", CARE),
        Rule::patient("GetDocumentContent", CARE),
        Rule::patient("ListDocuments", CARE),
        Rule::other("CreateTestType", &[Admin]),
        Rule::other("ListTestTypes", &[Secretary, Clinician, Admin]),
        Rule::patient("RequestSpecimen", CARE),
        Rule::patient("CollectSpecimen", CARE),
        Rule::patient("DispatchSpecimen", CARE),
        Rule::patient("ReceiveSpecimen", CARE),
        Rule::patient("ResultSpecimen", &[Clinician]),
        Rule::patient("RejectSpecimen", CARE),
        Rule::patient("GetSpecimen", CARE),
        Rule::patient("ListSpecimens", CARE),
        Rule::patient("ListOverdueSpecimens", CARE),
        Rule::patient("ListAuditEvents", &[Auditor]),
    ],
};
