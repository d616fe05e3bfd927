use medsec_platform::both_backends;
use medsec_platform::testing::AuthChannel;
use medsec_platform::testing::{Backend, violated_fields};
use medsec_proto::records::v1 as pb;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use sea_orm::ConnectionTrait;
use tonic::Code;

use crate::helpers::{letter, patient, spawn_app, test_nhs_number, traced};

both_backends!(
    every_access_is_audited_once_with_who_and_why,
    the_trail_cannot_be_changed_or_removed,
);

async fn every_access_is_audited_once_with_who_and_why(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut secretary = app.secretary();
    let c = &mut secretary;
    let created = c
        .create_patient(traced(pb::CreatePatientRequest {
            patient: Some(patient(&test_nhs_number(1), "Ada", "Lovelace")),
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    let id = created.id.clone();
    let mut expected = vec!["CreatePatient"];

    c.get_patient(traced(pb::GetPatientRequest { id: id.clone() }))
        .await
        .unwrap();
    expected.push("GetPatient");
    c.list_patients(traced(pb::ListPatientsRequest::default()))
        .await
        .unwrap();
    expected.push("ListPatients");
    c.update_patient(traced(pb::UpdatePatientRequest {
        patient: Some(pb::Patient {
            id: id.clone(),
            family_name: "King".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["family_name".into()],
        }),
    }))
    .await
    .unwrap();
    expected.push("UpdatePatient");
    let document = c
        .create_document(traced(pb::CreateDocumentRequest {
            document: Some(letter(&id)),
            content: b"Dear colleague".to_vec(),
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    expected.push("CreateDocument");
    c.get_document_content(traced(pb::GetDocumentContentRequest {
        id: document.id.clone(),
    }))
    .await
    .unwrap();
    expected.push("GetDocumentContent");
    c.list_documents(traced(pb::ListDocumentsRequest {
        patient_id: id.clone(),
        ..Default::default()
    }))
    .await
    .unwrap();
    expected.push("ListDocuments");
    c.get_patient_summary(traced(pb::GetPatientSummaryRequest {
        patient_id: id.clone(),
    }))
    .await
    .unwrap();
    expected.push("GetPatientSummary");

    // Failed calls touch nothing and are not audited as accesses.
    let status = c
        .update_patient(traced(pb::UpdatePatientRequest {
            patient: Some(pb::Patient {
                id: id.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["birth_date".into()],
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["patient.birth_date"]);

    // Someone else's record is someone else's trail.
    c.create_patient(pb::CreatePatientRequest {
        patient: Some(patient(&test_nhs_number(2), "Other", "Person")),
        request_id: String::new(),
    })
    .await
    .unwrap();

    // The trail is read by an auditor.
    let auditor = &mut app.client;
    let events = page(auditor, &id, 0, "").await.events;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, expected, "one event per operation, in order");
    for event in &events {
        assert_eq!(event.actor, "s.jones", "the token's subject");
        assert_eq!(event.role, "secretary", "the token's roles");
        assert_eq!(event.purpose, "direct_care");
        assert_eq!(event.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(event.patient_id, id);
        assert!(event.time.is_some());
    }
    assert_eq!(events[0].resource, format!("patients/{id}"));
    assert_eq!(events[5].resource, format!("documents/{}", document.id));

    // Paginated like every list.
    let first = page(auditor, &id, 5, "").await;
    let rest = page(auditor, &id, 5, &first.next_page_token).await;
    assert_eq!(first.events.len() + rest.events.len(), expected.len());

    // A caller naming itself in metadata, without a token, gets nowhere.
    let mut anonymous = RecordsServiceClient::new(app.running.channel.clone());
    let mut request = tonic::Request::new(pb::GetPatientRequest { id: id.clone() });
    request
        .metadata_mut()
        .insert("x-medsec-actor", "s.jones".parse().unwrap());
    let status = anonymous.get_patient(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // And a secretary may not read the trail.
    let status = secretary
        .list_audit_events(pb::ListAuditEventsRequest {
            patient_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn page(
    client: &mut RecordsServiceClient<AuthChannel>,
    patient_id: &str,
    page_size: i32,
    page_token: &str,
) -> pb::ListAuditEventsResponse {
    client
        .list_audit_events(pb::ListAuditEventsRequest {
            patient_id: patient_id.into(),
            page_size,
            page_token: page_token.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn the_trail_cannot_be_changed_or_removed(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.patient_id(1).await;
    for statement in [
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
    ] {
        let refused = app.db.execute_unprepared(statement).await;
        let error = refused.expect_err("the database refuses");
        assert!(error.to_string().contains("append-only"), "{error}");
    }
    let count: u64 = {
        use medsec_records::store::entities::audit_event::Entity as Events;
        use sea_orm::{EntityTrait, PaginatorTrait};
        Events::find().count(&app.db).await.unwrap()
    };
    assert_eq!(count, 1);
}
