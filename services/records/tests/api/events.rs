//! The events RecordsService raises, read back from its outbox: each one
//! written with the change that raised it, none for a replay or a failure.

use medsec_platform::both_backends;
use medsec_platform::events::pb::{self as events, envelope::Data};
use medsec_platform::testing::Backend;
use medsec_platform::time::to_timestamp;
use medsec_proto::records::v1 as pb;
use medsec_records::domain::patient::UPDATABLE_FIELDS;
use medsec_records::store::specimens::{OVERDUE_BATCH, raise_overdue};
use tonic::Code;

use crate::helpers::{TestApp, patient, spawn_app, test_nhs_number};
use crate::patients::{archive, update};
use crate::specimens::{catalogue, collect, dispatch, receive, requested};

both_backends!(
    patient_changes_raise_events_as_they_commit,
    a_result_raises_specimen_resulted,
    the_overdue_sweep_raises_each_overdue_specimen_once,
    the_overdue_sweep_works_in_bounded_batches,
);

/// The events raised since `seen` were, and checks what every envelope says.
async fn raised_since(app: &TestApp, seen: &mut usize) -> Vec<(String, String, Data)> {
    let all = app.raised().await;
    let new = all[*seen..]
        .iter()
        .map(|envelope| {
            assert_eq!(envelope.source, "/medsec/records");
            assert_eq!(envelope.spec_version, "1.0");
            assert_eq!(envelope.position, 0, "numbered only when relayed");
            assert!(envelope.time.is_some());
            (
                envelope.r#type.clone(),
                envelope.subject.clone(),
                envelope.data.clone().expect("data"),
            )
        })
        .collect();
    *seen = all.len();
    new
}

fn registered(id: &str) -> (String, String, Data) {
    (
        "medsec.records.patient.registered".into(),
        format!("patients/{id}"),
        Data::PatientRegistered(events::PatientRegistered {
            patient_id: id.into(),
        }),
    )
}

fn updated(id: &str, paths: &[&str]) -> (String, String, Data) {
    (
        "medsec.records.patient.updated".into(),
        format!("patients/{id}"),
        Data::PatientUpdated(events::PatientUpdated {
            patient_id: id.into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    )
}

fn archived(id: &str) -> (String, String, Data) {
    (
        "medsec.records.patient.archived".into(),
        format!("patients/{id}"),
        Data::PatientArchived(events::PatientArchived {
            patient_id: id.into(),
        }),
    )
}

async fn patient_changes_raise_events_as_they_commit(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut seen = 0;
    let create = |request_id: &str| pb::CreatePatientRequest {
        patient: Some(patient(&test_nhs_number(1), "Ada", "Lovelace")),
        request_id: request_id.into(),
    };
    let ada = app
        .client
        .create_patient(create("reg-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(raised_since(&app, &mut seen).await, [registered(&ada.id)]);

    // A replay answers with the same patient and raises nothing new.
    let again = app
        .client
        .create_patient(create("reg-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, ada.id);
    assert!(raised_since(&app, &mut seen).await.is_empty());
    // Nor does a registration refused (the number is taken).
    let status = app
        .client
        .create_patient(create("reg-2"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(raised_since(&app, &mut seen).await.is_empty());

    // An update names the paths it applied, a path named twice once.
    let change = pb::Patient {
        family_name: "Byron".into(),
        phone: "0113 000 0000".into(),
        ..ada.clone()
    };
    let byron = update(&mut app, change, &["phone", "family_name", "phone"])
        .await
        .unwrap();
    assert_eq!(
        raised_since(&app, &mut seen).await,
        [updated(&ada.id, &["family_name", "phone"])]
    );
    // "*" is every updatable field.
    let everything = update(&mut app, byron.clone(), &["*"]).await.unwrap();
    assert_eq!(
        raised_since(&app, &mut seen).await,
        [updated(&ada.id, UPDATABLE_FIELDS)]
    );

    // Failed updates raise nothing: a stale etag, a bad value, no patient.
    let status = update(&mut app, byron.clone(), &["family_name"])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let bad = pb::Patient {
        email: "nobody".into(),
        ..everything.clone()
    };
    let status = update(&mut app, bad, &["email"]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let ghost = pb::Patient {
        id: uuid::Uuid::now_v7().to_string(),
        etag: String::new(),
        ..everything.clone()
    };
    let status = update(&mut app, ghost, &["family_name"]).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(raised_since(&app, &mut seen).await.is_empty());

    // Archiving: refused ones raise nothing; the one that archives raises
    // one event; archiving again is refused and raises nothing.
    let status = archive(&mut app, &ada.id, &byron.etag).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "stale etag: {status:?}");
    let status = archive(&mut app, &uuid::Uuid::now_v7().to_string(), "")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(raised_since(&app, &mut seen).await.is_empty());
    archive(&mut app, &ada.id, &everything.etag).await.unwrap();
    assert_eq!(raised_since(&app, &mut seen).await, [archived(&ada.id)]);
    let status = archive(&mut app, &ada.id, "").await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = update(&mut app, everything, &["family_name"])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(raised_since(&app, &mut seen).await.is_empty());

    // Another registration, keyless, raises its own event.
    let grace = app.patient_id(2).await;
    assert_eq!(raised_since(&app, &mut seen).await, [registered(&grace)]);
}

async fn a_result_raises_specimen_resulted(backend: Backend) {
    let mut app = spawn_app(backend).await;
    catalogue(&mut app, "FBC", 24).await;
    let patient_id = app.patient_id(1).await;
    let mut seen = 0;
    raised_since(&app, &mut seen).await;

    // The steps before a result raise nothing.
    let sample = requested(&mut app, &patient_id, "FBC").await;
    collect(&mut app, &sample.id).await.unwrap();
    dispatch(&mut app, &sample.id).await.unwrap();
    receive(&mut app, &sample.id).await.unwrap();
    assert!(raised_since(&app, &mut seen).await.is_empty());

    let result = |id: &str, abnormal: bool| pb::ResultSpecimenRequest {
        id: id.into(),
        summary: "Hb low".into(),
        abnormal,
        ..Default::default()
    };
    app.client
        .result_specimen(result(&sample.id, true))
        .await
        .unwrap();
    assert_eq!(
        raised_since(&app, &mut seen).await,
        [(
            "medsec.records.specimen.resulted".to_owned(),
            format!("specimens/{}", sample.id),
            Data::SpecimenResulted(events::SpecimenResulted {
                specimen_id: sample.id.clone(),
                patient_id: patient_id.clone(),
                test_code: "FBC".into(),
                abnormal: true,
            }),
        )]
    );

    // A result refused (already resulted, or not yet at the lab) raises
    // nothing; a normal result raises abnormal: false.
    let status = app
        .client
        .result_specimen(result(&sample.id, false))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let normal = requested(&mut app, &patient_id, "FBC").await;
    let status = app
        .client
        .result_specimen(result(&normal.id, false))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(raised_since(&app, &mut seen).await.is_empty());
    collect(&mut app, &normal.id).await.unwrap();
    dispatch(&mut app, &normal.id).await.unwrap();
    receive(&mut app, &normal.id).await.unwrap();
    app.client
        .result_specimen(result(&normal.id, false))
        .await
        .unwrap();
    let raised = raised_since(&app, &mut seen).await;
    assert!(
        matches!(
            &raised[..],
            [(_, _, Data::SpecimenResulted(r))] if r.specimen_id == normal.id && !r.abnormal
        ),
        "{raised:?}"
    );
}

fn overdue(specimen: &pb::Specimen) -> (String, String, Data) {
    (
        "medsec.records.specimen.overdue".into(),
        format!("specimens/{}", specimen.id),
        Data::SpecimenOverdue(events::SpecimenOverdue {
            specimen_id: specimen.id.clone(),
            patient_id: specimen.patient_id.clone(),
            test_code: specimen.test_code.clone(),
            due_time: specimen.due_time,
        }),
    )
}

async fn the_overdue_sweep_raises_each_overdue_specimen_once(backend: Backend) {
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
    let mut seen = 0;
    raised_since(&app, &mut seen).await;

    let now = chrono::Utc::now();
    let at = |hours: i64| now + chrono::Duration::hours(hours);
    assert_eq!(raise_overdue(&app.db, at(0)).await.unwrap(), 0);
    assert!(raised_since(&app, &mut seen).await.is_empty());

    // Oldest dispatch first, each with its due time.
    assert_eq!(raise_overdue(&app.db, at(25)).await.unwrap(), 2);
    assert_eq!(
        raised_since(&app, &mut seen).await,
        [overdue(&sent[1]), overdue(&sent[2])]
    );
    assert_eq!(raise_overdue(&app.db, at(25)).await.unwrap(), 0, "once");
    assert!(raised_since(&app, &mut seen).await.is_empty());

    assert_eq!(raise_overdue(&app.db, at(73)).await.unwrap(), 1);
    assert_eq!(raised_since(&app, &mut seen).await, [overdue(&sent[0])]);
    assert_eq!(raise_overdue(&app.db, at(100)).await.unwrap(), 0);
    assert!(raised_since(&app, &mut seen).await.is_empty());

    // Raised or not, they are still listed as overdue.
    let listed = app
        .client
        .list_overdue_specimens(pb::ListOverdueSpecimensRequest {
            as_of: Some(to_timestamp(at(73))),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.specimens.len(), 3);
}

async fn the_overdue_sweep_works_in_bounded_batches(backend: Backend) {
    use medsec_records::store::entities::specimen;
    use sea_orm::{ActiveValue::Set, EntityTrait as _};

    let mut app = spawn_app(backend).await;
    catalogue(&mut app, "FAST", 24).await;
    let patient_id: uuid::Uuid = app.patient_id(1).await.parse().unwrap();
    // More overdue specimens than a sweep takes, written behind the API.
    let now = chrono::Utc::now();
    let backlog = OVERDUE_BATCH + 1;
    let rows: Vec<specimen::ActiveModel> = (0..backlog)
        .map(|n| {
            let dispatched =
                now - chrono::Duration::hours(48) + chrono::Duration::seconds(n as i64);
            specimen::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                patient_id: Set(patient_id),
                test_code: Set("FAST".into()),
                state: Set("dispatched".into()),
                notes: Set(String::new()),
                courier: Set(Some("CityLink".into())),
                lab: Set(Some("St Thomas' Pathology".into())),
                tracking_reference: Set(None),
                result_summary: Set(None),
                abnormal: Set(false),
                result_document_id: Set(None),
                rejection_reason: Set(None),
                dispatch_time: Set(Some(dispatched)),
                due_time: Set(Some(dispatched + chrono::Duration::hours(24))),
                create_time: Set(dispatched),
                update_time: Set(dispatched),
                revision: Set(3),
                overdue_raised_at: Set(None),
            }
        })
        .collect();
    for chunk in rows.chunks(100) {
        specimen::Entity::insert_many(chunk.to_vec())
            .exec(&app.db)
            .await
            .unwrap();
    }
    let mut seen = 0;
    raised_since(&app, &mut seen).await;

    assert_eq!(raise_overdue(&app.db, now).await.unwrap(), OVERDUE_BATCH);
    assert_eq!(
        raised_since(&app, &mut seen).await.len() as u64,
        OVERDUE_BATCH
    );
    assert_eq!(raise_overdue(&app.db, now).await.unwrap(), 1);
    assert_eq!(raised_since(&app, &mut seen).await.len(), 1);
    assert_eq!(raise_overdue(&app.db, now).await.unwrap(), 0);
    assert!(raised_since(&app, &mut seen).await.is_empty());
    let mut subjects: Vec<String> = app
        .raised()
        .await
        .into_iter()
        .filter(|envelope| envelope.r#type == "medsec.records.specimen.overdue")
        .map(|envelope| envelope.subject)
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len() as u64, backlog, "each specimen raised once");
}
