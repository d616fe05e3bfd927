//! The audit trail through RecordsService: every access recorded once with
//! who, why and how it ended; reading the trail audited too; records' first
//! trail moved onto the suite's, its chains intact; and the database
//! refusing to change or remove an event.

use medsec_platform::audit::entities::event;
use medsec_platform::auth::Role;
use medsec_platform::both_backends;
use medsec_platform::testing::{AuthChannel, Caller, TestDatabase};
use medsec_platform::testing::{Backend, violated_fields};
use medsec_proto::records::v1 as pb;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
};
use sea_orm_migration::MigratorTrait;
use tonic::Code;

use crate::helpers::{letter, patient, spawn_app, spawn_app_with, test_nhs_number, traced};

both_backends!(
    every_access_is_audited_once_with_who_and_why,
    reading_the_trail_is_audited_and_refusals_and_failures_are_recorded,
    the_trail_cannot_be_changed_or_removed,
    records_first_trail_moves_onto_the_suites_and_verifies,
    concurrent_reads_are_each_recorded_once_in_intact_chains,
);

/// Audited reads share their commits (the group commit): many at once,
/// of a few patients, each answer only with its event recorded, every
/// event is there once, and every chain verifies.
async fn concurrent_reads_are_each_recorded_once_in_intact_chains(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for n in 1..=4 {
        ids.push(app.patient_id(n).await);
    }
    let reads = (0..64).map(|n| {
        let mut client = app.client.clone();
        let id = ids[n % ids.len()].clone();
        async move { client.get_patient(pb::GetPatientRequest { id }).await }
    });
    for answer in futures::future::join_all(reads).await {
        answer.unwrap();
    }
    let events = events_of(&app.db, "GetPatient", "ok").await;
    assert_eq!(events.len(), 64, "one event per read");
    for id in &ids {
        let of_patient = events
            .iter()
            .filter(|event| event.patient_id.map(|p| p.to_string()).as_ref() == Some(id))
            .count();
        assert_eq!(of_patient, 16, "patient {id}");
    }
    let report = medsec_platform::audit::verify(&app.db).await.unwrap();
    assert!(report.intact(), "{report}");
}

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

    // The trail is read by an auditor; the read itself is recorded after it.
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
        assert_eq!(event.outcome(), pb::AuditOutcome::Ok);
        assert!(event.time.is_some());
    }
    assert_eq!(events[0].resource, format!("patients/{id}"));
    assert_eq!(events[5].resource, format!("documents/{}", document.id));

    // Paginated like every list: the first read and the first page's read
    // are on the trail by the time the second page is read.
    let first = page(auditor, &id, 5, "").await;
    let rest = page(auditor, &id, 5, &first.next_page_token).await;
    assert_eq!(first.events.len() + rest.events.len(), expected.len() + 2);
    assert!(
        rest.events[rest.events.len() - 2..]
            .iter()
            .all(|e| e.action == "ListAuditEvents" && e.actor == "test.user"),
        "{rest:?}"
    );

    // A caller naming itself in metadata, without a token, gets nowhere.
    let mut anonymous = RecordsServiceClient::new(app.running.channel.clone());
    let mut request = tonic::Request::new(pb::GetPatientRequest { id: id.clone() });
    request
        .metadata_mut()
        .insert("x-medsec-actor", "s.jones".parse().unwrap());
    let status = anonymous.get_patient(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // And a secretary may not read the trail.
    let status = try_page(&mut secretary, &id, 0, "").await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn page(
    client: &mut RecordsServiceClient<AuthChannel>,
    patient_id: &str,
    page_size: i32,
    page_token: &str,
) -> pb::ListAuditEventsResponse {
    try_page(client, patient_id, page_size, page_token)
        .await
        .unwrap()
}

/// A page of a patient's trail, or why it was refused.
async fn try_page(
    client: &mut RecordsServiceClient<AuthChannel>,
    patient_id: &str,
    page_size: i32,
    page_token: &str,
) -> Result<pb::ListAuditEventsResponse, tonic::Status> {
    client
        .list_audit_events(pb::ListAuditEventsRequest {
            patient_id: patient_id.into(),
            page_size,
            page_token: page_token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Events of one call, by RPC name and outcome, in the suite's trail.
async fn events_of(db: &DatabaseConnection, method: &str, outcome: &str) -> Vec<event::Model> {
    event::Entity::find()
        .filter(event::Column::Method.eq(method))
        .filter(event::Column::Outcome.eq(outcome))
        .all(db)
        .await
        .unwrap()
}

async fn reading_the_trail_is_audited_and_refusals_and_failures_are_recorded(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let id = app.patient_id(1).await;

    // The auditor's read: in the patient's own chain, by the auditor, for
    // audit.
    let auditor = Caller {
        purpose: Some(medsec_platform::auth::Purpose::Audit),
        ..Caller::staff("a.udit", &[Role::Auditor])
    };
    let mut client = app.client_as(&auditor);
    page(&mut client, &id, 0, "").await;
    let read = events_of(&app.db, "ListAuditEvents", "ok").await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].subject, "a.udit");
    assert_eq!(read[0].roles, "auditor");
    assert_eq!(read[0].purpose, "audit");
    assert_eq!(read[0].patient_id.map(|p| p.to_string()), Some(id.clone()));
    assert_eq!(read[0].chain, format!("records/patient/{id}"));

    // A secretary may not read the trail: refused, and recorded as denied
    // in a chain of its own (no patient is known before the body is read).
    let status = try_page(&mut app.secretary(), &id, 0, "")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let denied = events_of(&app.db, "ListAuditEvents", "denied").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].subject, "s.jones");
    assert_eq!(denied[0].roles, "secretary");
    assert_eq!(denied[0].patient_id, None);
    assert!(denied[0].chain.starts_with("records/ListAuditEvents/"));

    // A call with no credentials at all is recorded as anonymous.
    let mut anonymous = RecordsServiceClient::new(app.running.channel.clone());
    let status = anonymous
        .get_patient(pb::GetPatientRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let denied = events_of(&app.db, "GetPatient", "denied").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].subject, "anonymous");

    // A call the handler refuses is recorded as failed; nothing it did is.
    let status = app
        .secretary()
        .get_patient(pb::GetPatientRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let failed = events_of(&app.db, "GetPatient", "failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].subject, "s.jones");
    assert_eq!(failed[0].purpose, "direct_care");
    assert!(events_of(&app.db, "GetPatient", "ok").await.is_empty());

    // Configuration touches no patient: a refusal there is not recorded.
    let status = app
        .secretary()
        .create_test_type(pb::CreateTestTypeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        events_of(&app.db, "CreateTestType", "denied")
            .await
            .is_empty()
    );

    let report = medsec_platform::audit::verify(&app.db).await.unwrap();
    assert!(report.intact(), "{report}");
}

async fn the_trail_cannot_be_changed_or_removed(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let id = app.patient_id(1).await;
    let id = uuid::Uuid::parse_str(&id).unwrap();
    // Records' first trail, written no more, still refuses changes to what
    // it holds.
    write_old_event(&app.db, id, "GetPatient", "direct_care").await;
    let mut refused = vec![
        "UPDATE audit_trail SET subject = 'someone else'",
        "DELETE FROM audit_trail",
        "UPDATE audit_chain_heads SET seq = 0",
        "DELETE FROM audit_chain_heads",
        // Records' first trail stays as it was.
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
    ];
    match backend {
        Backend::Postgres => {
            refused.extend(["TRUNCATE audit_trail", "TRUNCATE audit_chain_heads"]);
        }
        Backend::Sqlite => {
            // REPLACE deletes the row it replaces: the delete trigger fires
            // (recursive triggers are on for every connection).
            refused.push(
                "INSERT OR REPLACE INTO audit_trail \
                 SELECT id, chain, seq, prev_hash, hash, time, service, method, \
                 'someone else', roles, purpose, reason, outcome, resource, patient_id, \
                 filter_hash, trace_id FROM audit_trail",
            );
            refused.push(
                "REPLACE INTO audit_chain_heads SELECT chain, seq, hash FROM audit_chain_heads",
            );
        }
    }
    for statement in refused {
        let error = app
            .db
            .execute_unprepared(statement)
            .await
            .expect_err(statement);
        let text = error.to_string();
        assert!(
            text.contains("append-only") || text.contains("only move forward"),
            "{statement}: {text}"
        );
    }
    assert_eq!(event::Entity::find().count(&app.db).await.unwrap(), 1);
    let subjects = events_of(&app.db, "CreatePatient", "ok").await;
    assert_eq!(subjects[0].subject, "test.user");
    assert!(
        medsec_platform::audit::verify(&app.db)
            .await
            .unwrap()
            .intact()
    );
}

/// Events as records wrote them before the suite's trail: three patients'
/// accesses, one of them break-glass.
async fn write_first_trail(db: &DatabaseConnection) -> Vec<(uuid::Uuid, uuid::Uuid)> {
    use medsec_records::store::entities::patient as patient_row;
    use sea_orm::{ActiveModelTrait, IntoActiveModel};
    let mut written = Vec::new();
    for n in 1..=3_u32 {
        let patient_id = uuid::Uuid::now_v7();
        let now = chrono::Utc::now();
        patient_row::Model {
            id: patient_id,
            nhs_number: test_nhs_number(n),
            given_name: "Pat".into(),
            family_name: format!("Ient{n}"),
            family_name_folded: format!("ient{n}"),
            birth_date: chrono::NaiveDate::from_ymd_opt(1970, 1, 31).unwrap(),
            sex: "female".into(),
            address_lines: None,
            address_town: None,
            address_postcode: None,
            phone: None,
            email: None,
            gp_ods_code: None,
            gp_name: None,
            create_time: now,
            update_time: now,
            archive_time: None,
            revision: 1,
        }
        .into_active_model()
        .reset_all()
        .insert(db)
        .await
        .unwrap();
        for (action, purpose) in [
            ("CreatePatient", "direct_care"),
            ("GetPatient", "direct_care"),
            ("GetPatient", "break_glass: unconscious in ED"),
        ] {
            let id = write_old_event(db, patient_id, action, purpose).await;
            written.push((patient_id, id));
        }
    }
    written
}

/// An event in records' first trail, as records wrote it.
async fn write_old_event(
    db: &DatabaseConnection,
    patient_id: uuid::Uuid,
    action: &str,
    purpose: &str,
) -> uuid::Uuid {
    use medsec_records::store::entities::audit_event;
    use sea_orm::{ActiveModelTrait, IntoActiveModel};
    let id = uuid::Uuid::now_v7();
    audit_event::Model {
        id,
        // Nanoseconds, as SQLite kept them: the trail keeps microseconds.
        time: chrono::Utc::now(),
        actor: "s.jones".into(),
        role: "secretary".into(),
        purpose: purpose.into(),
        action: action.into(),
        resource: format!("patients/{patient_id}"),
        patient_id,
        trace_id: String::new(),
    }
    .into_active_model()
    .reset_all()
    .insert(db)
    .await
    .unwrap();
    id
}

async fn records_first_trail_moves_onto_the_suites_and_verifies(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    // The schema as it was before the suite's trail: records' first two
    // migrations, and events written to its own table.
    medsec_records::store::Migrator::up(&db, Some(2))
        .await
        .unwrap();
    let written = write_first_trail(&db).await;
    medsec_records::migrate(&db).await.unwrap();
    // Migrating again finds nothing to do (and copies nothing twice).
    medsec_records::migrate(&db).await.unwrap();

    let report = medsec_platform::audit::verify(&db).await.unwrap();
    assert!(report.intact(), "{report}");
    assert_eq!((report.chains, report.events), (3, 9), "{report}");
    for (n, (patient_id, id)) in written.iter().enumerate() {
        let moved = event::Entity::find_by_id(*id)
            .one(&db)
            .await
            .unwrap()
            .expect("every old event is on the trail");
        assert_eq!(moved.chain, format!("records/patient/{patient_id}"));
        assert_eq!(moved.seq, i64::try_from(n % 3 + 1).unwrap(), "in order");
        assert_eq!(moved.service, "records");
        assert_eq!(moved.outcome, "ok");
        assert_eq!(moved.subject, "s.jones");
    }
    let glass = event::Entity::find()
        .filter(event::Column::Purpose.eq("break_glass"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(glass.len(), 3);
    assert!(
        glass
            .iter()
            .all(|e| e.reason.as_deref() == Some("unconscious in ED"))
    );
    db.close().await.ok();

    // Served, the moved events are each patient's trail, and new accesses
    // follow them in the same chains.
    let settings = database.settings();
    let mut app = spawn_app_with(database, settings).await;
    let (patient_id, first_id) = written[0];
    app.client
        .get_patient(pb::GetPatientRequest {
            id: patient_id.to_string(),
        })
        .await
        .unwrap();
    let events = page(&mut app.client, &patient_id.to_string(), 0, "")
        .await
        .events;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["CreatePatient", "GetPatient", "GetPatient", "GetPatient"]
    );
    assert_eq!(events[0].id, first_id.to_string());
    assert_eq!(events[2].purpose, "break_glass: unconscious in ED");
    let report = medsec_platform::audit::verify(&app.db).await.unwrap();
    assert!(report.intact(), "{report}");
    assert_eq!(
        report.events, 11,
        "the moved events, a read and its listing"
    );
}
