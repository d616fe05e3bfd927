//! The one handler shape: every RPC is served by a function
//! `verb(api: &XApi, request: Request<pb::T>) -> Result<pb::U, ApiError>` in
//! the module of its resource, and a service's tonic trait is implemented by
//! a routing table, [`grpc_handlers!`](crate::grpc_handlers), that only
//! names them.

/// Implements a generated tonic service trait by routing each RPC to its
/// handler; the request (with its metadata and extensions) reaches the
/// handler whole, and its `ApiError` becomes the gRPC status, whose
/// `google.rpc.ErrorInfo` names the service by the domain given
/// (the same as [`domain_of`](crate::error::domain_of) gives for its gRPC
/// name, so errors raised by the server's layers agree).
///
/// ```ignore
/// medsec_platform::grpc_handlers! {
///     RecordsApi as RecordsService, domain = "records.medsec" {
///         create_patient(pb::CreatePatientRequest) -> pb::Patient = patients::create;
///         get_patient(pb::GetPatientRequest) -> pb::Patient = patients::get;
///     }
/// }
/// ```
#[macro_export]
macro_rules! grpc_handlers {
    ($api:ty as $service:path, domain = $domain:literal {
        $($method:ident($request:ty) -> $response:ty = $handler:path;)+
    }) => {
        #[::tonic::async_trait]
        impl $service for $api {
            $(
                async fn $method(
                    &self,
                    request: ::tonic::Request<$request>,
                ) -> ::std::result::Result<::tonic::Response<$response>, ::tonic::Status> {
                    match $handler(self, request).await {
                        Ok(response) => Ok(::tonic::Response::new(response)),
                        Err(error) => Err(error.into_status($domain)),
                    }
                }
            )+
        }
    };
}
