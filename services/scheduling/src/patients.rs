//! What scheduling asks records of a patient before it books them or puts
//! them on the waiting list: that they are registered and not archived.
//! Records answers over gRPC — in this process through its server directly,
//! or over the network as this service (mutual TLS) — with a deadline,
//! bounded retries and a circuit breaker (`medsec_platform::peers`).

use medsec_platform::auth::PURPOSE_HEADER;
use medsec_platform::config::PeerSettings;
use medsec_platform::peers::{Lookup, resilient};
use medsec_platform::{ApiError, PreconditionKind};
use medsec_proto::records::v1 as records;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use tonic::{Code, Status};
use tower::ServiceExt as _;
use uuid::Uuid;

/// Whether a patient may be booked or referred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Active,
    Archived,
}

/// Records, as scheduling asks it about patients.
#[derive(Clone)]
pub struct Patients {
    lookup: Option<Lookup<Uuid, Standing>>,
}

impl std::fmt::Debug for Patients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patients")
            .field("checked", &self.lookup.is_some())
            .finish()
    }
}

impl Patients {
    /// No records to ask (scheduling alone, as in its own tests): every
    /// patient id is taken as given.
    pub fn unchecked() -> Self {
        Self { lookup: None }
    }

    /// Asks records through `client`.
    pub fn through<T>(client: RecordsServiceClient<T>, settings: &PeerSettings) -> Self
    where
        T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + Sync + 'static,
        T::Future: Send,
        T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        <T::ResponseBody as http_body::Body>::Error:
            Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let lookup = resilient("records", settings, move |id: Uuid| {
            let mut client = client.clone();
            async move {
                let mut request =
                    tonic::Request::new(records::GetPatientRequest { id: id.to_string() });
                request.metadata_mut().insert(
                    PURPOSE_HEADER,
                    tonic::metadata::MetadataValue::from_static("direct_care"),
                );
                medsec_platform::telemetry::inject_trace_context(request.metadata_mut());
                let patient = client.get_patient(request).await?.into_inner();
                Ok(if patient.archive_time.is_some() {
                    Standing::Archived
                } else {
                    Standing::Active
                })
            }
        });
        Self {
            lookup: Some(lookup),
        }
    }

    /// Patient `id` (named by request field `field`) is registered and not
    /// archived: INVALID_ARGUMENT naming the field when records has no such
    /// patient, FAILED_PRECONDITION when archived, UNAVAILABLE when records
    /// cannot say.
    pub async fn ensure_active(&self, field: &str, id: Uuid) -> Result<(), ApiError> {
        let Some(lookup) = &self.lookup else {
            return Ok(());
        };
        match lookup.clone().oneshot(id).await {
            Ok(Standing::Active) => Ok(()),
            Ok(Standing::Archived) => Err(ApiError::precondition(
                PreconditionKind::State,
                format!("patients/{id}"),
                format!("patients/{id} is archived: they cannot be booked or referred"),
            )),
            Err(status) => Err(refusal(field, id, &status)),
        }
    }
}

fn refusal(field: &str, id: Uuid, status: &Status) -> ApiError {
    match status.code() {
        Code::NotFound => ApiError::invalid(field, "names no patient registered in records"),
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted => {
            tracing::warn!(patient = %id, %status, "records could not say whether a patient is active");
            ApiError::Unavailable(
                "records cannot be asked about the patient at the moment; retry".to_owned(),
            )
        }
        _ => ApiError::internal(format!("records refused scheduling's question: {status:?}")),
    }
}
