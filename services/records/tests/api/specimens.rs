use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, precondition_type, violated_fields};
use medsec_platform::time::to_timestamp;
use medsec_proto::records::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, letter, spawn_app, traced};

both_backends!(
    a_blood_sample_goes_out_and_comes_back,
    every_invalid_transition_names_the_current_state,
    overdue_samples_against_a_controlled_clock,
    the_catalogue_refuses_bad_and_duplicate_tests,
);

pub(crate) async fn catalogue(app: &mut TestApp, code: &str, hours: i32) {
    app.client
        .create_test_type(pb::CreateTestTypeRequest {
            test_type: Some(pb::TestType {
                code: code.into(),
                name: format!("{code} test"),
                specimen_type: "blood (EDTA)".into(),
                turnaround_hours: hours,
            }),
            request_id: format!("add-{code}"),
        })
        .await
        .unwrap();
}

pub(crate) async fn requested(app: &mut TestApp, patient_id: &str, code: &str) -> pb::Specimen {
    app.client
        .request_specimen(pb::RequestSpecimenRequest {
            patient_id: patient_id.into(),
            test_code: code.into(),
            notes: "fasting".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

pub(crate) async fn collect(app: &mut TestApp, id: &str) -> Result<pb::Specimen, tonic::Status> {
    collect_at(app, id, "").await
}

async fn collect_at(
    app: &mut TestApp,
    id: &str,
    etag: &str,
) -> Result<pb::Specimen, tonic::Status> {
    app.client
        .collect_specimen(pb::CollectSpecimenRequest {
            id: id.into(),
            etag: etag.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn dispatch(app: &mut TestApp, id: &str) -> Result<pb::Specimen, tonic::Status> {
    app.client
        .dispatch_specimen(pb::DispatchSpecimenRequest {
            id: id.into(),
            etag: String::new(),
            courier: "CityLink".into(),
            lab: "St Thomas' Pathology".into(),
            tracking_reference: "CL-12345".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn receive(app: &mut TestApp, id: &str) -> Result<pb::Specimen, tonic::Status> {
    app.client
        .receive_specimen(pb::ReceiveSpecimenRequest {
            id: id.into(),
            etag: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn a_blood_sample_goes_out_and_comes_back(backend: Backend) {
    let mut app = spawn_app(backend).await;
    catalogue(&mut app, "fbc", 24).await;
    let patient_id = app.patient_id(1).await;
    let sample = requested(&mut app, &patient_id, "FBC").await;
    assert_eq!(sample.state(), pb::SpecimenState::Requested);
    assert_eq!(sample.test_code, "FBC");

    let collected = app
        .secretary()
        .collect_specimen(traced(pb::CollectSpecimenRequest {
            id: sample.id.clone(),
            etag: sample.etag.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(collected.state(), pb::SpecimenState::Collected);

    let dispatched = dispatch(&mut app, &sample.id).await.unwrap();
    assert_eq!(dispatched.courier, "CityLink");
    assert_eq!(dispatched.tracking_reference, "CL-12345");
    let (sent, due) = (
        dispatched.dispatch_time.unwrap(),
        dispatched.due_time.unwrap(),
    );
    assert_eq!(due.seconds - sent.seconds, 24 * 3600);

    receive(&mut app, &sample.id).await.unwrap();
    let result = pb::Document {
        title: "FBC result".into(),
        kind: pb::DocumentKind::Result as i32,
        content_type: "text/plain".into(),
        author: "St Thomas' Pathology".into(),
        ..letter(&patient_id)
    };
    let report = app.file(result, b"Hb 131 g/L", "").await.unwrap();
    let resulted = app
        .client
        .result_specimen(pb::ResultSpecimenRequest {
            id: sample.id.clone(),
            etag: String::new(),
            summary: "Hb low".into(),
            abnormal: true,
            document_id: report.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resulted.state(), pb::SpecimenState::Resulted);
    assert!(resulted.abnormal);
    assert_eq!(resulted.result_document_id, report.id);

    let states: Vec<_> = resulted.events.iter().map(|e| e.state()).collect();
    use pb::SpecimenState::*;
    assert_eq!(
        states,
        [Requested, Collected, Dispatched, Received, Resulted]
    );
    assert_eq!(
        resulted.events[1].actor, "s.jones",
        "each step names its actor"
    );
    assert!(resulted.events.iter().all(|e| e.time.is_some()));
    assert!(resulted.events[2].details.contains("CL-12345"));

    let listed = app
        .client
        .list_specimens(pb::ListSpecimensRequest {
            patient_id: patient_id.clone(),
            state: Resulted as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.specimens.len(), 1);
}

async fn every_invalid_transition_names_the_current_state(backend: Backend) {
    let mut app = spawn_app(backend).await;
    catalogue(&mut app, "UE", 12).await;
    let patient_id = app.patient_id(1).await;
    let sample = requested(&mut app, &patient_id, "UE").await;

    // From requested only collection is possible.
    let status = dispatch(&mut app, &sample.id).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("requested"),
        "{}",
        status.message()
    );
    assert_eq!(
        receive(&mut app, &sample.id).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let reject = |app: &mut TestApp, id: String| {
        let mut client = app.client.clone();
        async move {
            client
                .reject_specimen(pb::RejectSpecimenRequest {
                    id,
                    etag: String::new(),
                    reason: "haemolysed".into(),
                })
                .await
        }
    };
    assert_eq!(
        reject(&mut app, sample.id.clone())
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );

    collect(&mut app, &sample.id).await.unwrap();
    assert!(
        collect(&mut app, &sample.id)
            .await
            .unwrap_err()
            .message()
            .contains("collected")
    );
    dispatch(&mut app, &sample.id).await.unwrap();
    let rejected = reject(&mut app, sample.id.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.state(), pb::SpecimenState::Rejected);
    assert_eq!(rejected.rejection_reason, "haemolysed");

    // Rejected is final.
    for status in [
        receive(&mut app, &sample.id).await.unwrap_err(),
        dispatch(&mut app, &sample.id).await.unwrap_err(),
        reject(&mut app, sample.id.clone()).await.unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(
            status.message().contains("rejected"),
            "{}",
            status.message()
        );
        assert_eq!(precondition_type(&status), "STATE");
    }

    // A stale etag on a valid move.
    let fresh = requested(&mut app, &patient_id, "UE").await;
    let stale = collect_at(&mut app, &fresh.id, "7").await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // Bad input names the field.
    let status = app
        .client
        .dispatch_specimen(pb::DispatchSpecimenRequest {
            id: fresh.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["courier", "lab", "tracking_reference"]
    );
    let status = app
        .client
        .request_specimen(pb::RequestSpecimenRequest {
            patient_id: patient_id.clone(),
            test_code: "NOPE".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["test_code"]);
}

async fn overdue_samples_against_a_controlled_clock(backend: Backend) {
    let mut app = spawn_app(backend).await;
    catalogue(&mut app, "FAST", 24).await;
    catalogue(&mut app, "SLOW", 72).await;
    let patient_id = app.patient_id(1).await;
    let mut sent = Vec::new();
    for code in ["SLOW", "FAST", "FAST", "FAST"] {
        let sample = requested(&mut app, &patient_id, code).await;
        collect(&mut app, &sample.id).await.unwrap();
        sent.push(dispatch(&mut app, &sample.id).await.unwrap());
    }
    // One back at the lab (still overdue-able), one resulted (never overdue).
    receive(&mut app, &sent[2].id).await.unwrap();
    receive(&mut app, &sent[3].id).await.unwrap();
    app.client
        .result_specimen(pb::ResultSpecimenRequest {
            id: sent[3].id.clone(),
            summary: "normal".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // And one never dispatched.
    requested(&mut app, &patient_id, "FAST").await;

    let now = chrono::Utc::now();
    let overdue_at = |hours: i64| {
        let mut client = app.client.clone();
        async move {
            let page = client
                .list_overdue_specimens(pb::ListOverdueSpecimensRequest {
                    as_of: Some(to_timestamp(now + chrono::Duration::hours(hours))),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            page.specimens.into_iter().map(|s| s.id).collect::<Vec<_>>()
        }
    };
    assert!(overdue_at(0).await.is_empty(), "nothing is late yet");
    assert_eq!(
        overdue_at(25).await,
        [sent[1].id.clone(), sent[2].id.clone()]
    );
    assert_eq!(
        overdue_at(73).await,
        [sent[0].id.clone(), sent[1].id.clone(), sent[2].id.clone()],
        "oldest dispatch first"
    );

    // Pages keep that order without gaps.
    let first = app
        .client
        .list_overdue_specimens(pb::ListOverdueSpecimensRequest {
            as_of: Some(to_timestamp(now + chrono::Duration::hours(73))),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let second = app
        .client
        .list_overdue_specimens(pb::ListOverdueSpecimensRequest {
            as_of: Some(to_timestamp(now + chrono::Duration::hours(73))),
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let paged: Vec<_> = first
        .specimens
        .iter()
        .chain(&second.specimens)
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(
        paged,
        [sent[0].id.clone(), sent[1].id.clone(), sent[2].id.clone()]
    );
    assert!(second.next_page_token.is_empty());
}

async fn the_catalogue_refuses_bad_and_duplicate_tests(backend: Backend) {
    let mut app = spawn_app(backend).await;
    catalogue(&mut app, "FBC", 24).await;
    // A retried add answers with the test it added.
    catalogue(&mut app, "FBC", 24).await;
    let duplicate = app
        .client
        .create_test_type(pb::CreateTestTypeRequest {
            test_type: Some(pb::TestType {
                code: "fbc".into(),
                name: "again".into(),
                specimen_type: "blood".into(),
                turnaround_hours: 1,
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    let bad = app
        .client
        .create_test_type(pb::CreateTestTypeRequest {
            test_type: Some(pb::TestType {
                code: "U&E".into(),
                name: String::new(),
                specimen_type: "blood".into(),
                turnaround_hours: 0,
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&bad),
        [
            "test_type.code",
            "test_type.name",
            "test_type.turnaround_hours"
        ]
    );
    let listed = app
        .client
        .list_test_types(pb::ListTestTypesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.test_types.len(), 1);
}
