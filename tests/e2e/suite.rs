use std::collections::BTreeSet;
use std::time::Duration;

use medsec::ServiceName;
use medsec_platform::both_backends;
use medsec_platform::testing::{AuthChannel, Backend, TestDatabase};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::fixtures::registration;
use crate::harness::start;

both_backends!(
    every_service_reports_serving,
    reflection_lists_the_services_in_both_versions,
    one_service_can_run_alone,
    shutdown_reports_not_serving_before_draining,
    a_restart_finds_its_data_and_migrates_nothing,
    replicas_starting_together_migrate_once,
    an_oversized_message_is_refused,
);

const ALL: [&str; 3] = [
    "medsec.records.v1.RecordsService",
    "medsec.scheduling.v1.SchedulingService",
    "medsec.billing.v1.BillingService",
];

async fn every_service_reports_serving(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    assert_eq!(suite.health("").await.unwrap(), ServingStatus::Serving);
    for service in ALL {
        assert_eq!(
            suite.health(service).await.unwrap(),
            ServingStatus::Serving,
            "{service}"
        );
    }
    let unknown = suite.health("medsec.nothing.v1.Nothing").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    suite.stop().await;
}

async fn reflection_lists_the_services_in_both_versions(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;

    let v1 = list_services_v1(&suite.channel).await;
    let v1alpha = list_services_v1alpha(&suite.channel).await;
    for service in ALL.iter().chain(&["grpc.health.v1.Health"]) {
        assert!(v1.contains(*service), "v1 lacks {service}: {v1:?}");
        assert!(
            v1alpha.contains(*service),
            "v1alpha lacks {service}: {v1alpha:?}"
        );
    }

    // A client can fetch the schema of an RPC by symbol.
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let response = reflect_v1(
        &suite.channel,
        MessageRequest::FileContainingSymbol(
            "medsec.records.v1.RecordsService.CreatePatient".into(),
        ),
    )
    .await;
    let Some(MessageResponse::FileDescriptorResponse(files)) = response else {
        panic!("no descriptor for CreatePatient: {response:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    suite.stop().await;
}

async fn one_service_can_run_alone(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[ServiceName::Records]).await;
    assert_eq!(
        suite
            .health("medsec.records.v1.RecordsService")
            .await
            .unwrap(),
        ServingStatus::Serving
    );
    for absent in &ALL[1..] {
        assert_eq!(
            suite.health(absent).await.unwrap_err().code(),
            Code::NotFound
        );
    }
    let listed = list_services_v1(&suite.channel).await;
    assert!(listed.contains("medsec.records.v1.RecordsService"));
    assert!(
        !listed.contains("medsec.billing.v1.BillingService"),
        "{listed:?}"
    );
    suite.stop().await;
}

async fn shutdown_reports_not_serving_before_draining(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut settings = database.settings();
    settings.server.shutdown_grace_millis = 1500;
    let mut suite = start(&settings, &[]).await;
    assert_eq!(suite.health("").await.unwrap(), ServingStatus::Serving);

    let _ = suite.server.stop.take().unwrap().send(());
    // During the grace period the server still answers, saying NOT_SERVING.
    let mut reported = Vec::new();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        reported.push(
            suite
                .health("medsec.records.v1.RecordsService")
                .await
                .unwrap(),
        );
        if reported.last() == Some(&ServingStatus::NotServing) {
            break;
        }
    }
    assert_eq!(
        reported.last(),
        Some(&ServingStatus::NotServing),
        "{reported:?}"
    );
    assert_eq!(suite.health("").await.unwrap(), ServingStatus::NotServing);
    tokio::time::timeout(Duration::from_secs(10), suite.server.handle)
        .await
        .expect("the server stops after its grace period")
        .unwrap();
}

async fn a_restart_finds_its_data_and_migrates_nothing(backend: Backend) {
    use medsec_proto::records::v1 as pb;
    use medsec_proto::records::v1::records_service_client::RecordsServiceClient;

    let database = TestDatabase::create(backend).await;
    let settings = database.settings();
    let suite = start(&settings, &[]).await;
    let created = RecordsServiceClient::new(suite.channel.clone())
        .create_patient(registration(
            "9434765919",
            "Ada",
            "Lovelace",
            "1985-12-10",
            "first-boot",
        ))
        .await
        .unwrap()
        .into_inner();
    suite.stop().await;

    let suite = start(&settings, &[]).await;
    let fetched = RecordsServiceClient::new(suite.channel.clone())
        .get_patient(pb::GetPatientRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, created);
    suite.stop().await;
}

async fn list_services_v1(channel: &AuthChannel) -> BTreeSet<String> {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    match reflect_v1(channel, MessageRequest::ListServices(String::new())).await {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    }
}

async fn reflect_v1(
    channel: &AuthChannel,
    request: tonic_reflection::pb::v1::server_reflection_request::MessageRequest,
) -> Option<tonic_reflection::pb::v1::server_reflection_response::MessageResponse> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection call")
        .into_inner();
    responses
        .message()
        .await
        .expect("reflection answer")
        .and_then(|response| response.message_response)
}

async fn list_services_v1alpha(channel: &AuthChannel) -> BTreeSet<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection call")
        .into_inner();
    match responses
        .message()
        .await
        .expect("answer")
        .and_then(|r| r.message_response)
    {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    }
}

async fn replicas_starting_together_migrate_once(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let settings = database.settings();
    let replicas = (0..4).map(|_| {
        let settings = settings.clone();
        tokio::spawn(async move { start(&settings, &[]).await })
    });
    let mut suites = Vec::new();
    for replica in futures::future::join_all(replicas).await {
        suites.push(replica.expect("every replica starts"));
    }
    for suite in &suites {
        assert_eq!(suite.health("").await.unwrap(), ServingStatus::Serving);
    }
    for suite in suites {
        suite.stop().await;
    }
}

async fn an_oversized_message_is_refused(backend: Backend) {
    use medsec_proto::records::v1 as pb;
    use medsec_proto::records::v1::records_service_client::RecordsServiceClient;

    let database = TestDatabase::create(backend).await;
    let mut settings = database.settings();
    settings.records.max_message_bytes = 4096;
    let suite = start(&settings, &[]).await;
    let status = RecordsServiceClient::new(suite.channel.clone())
        .create_patient(pb::CreatePatientRequest {
            patient: Some(pb::Patient {
                given_name: "x".repeat(10_000),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    // tonic answers OUT_OF_RANGE where other gRPC stacks say RESOURCE_EXHAUSTED.
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    assert!(status.message().contains("too large"), "{status:?}");
    suite.stop().await;
}
