use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, violated_fields};
use medsec_proto::records::v1 as pb;
use pb::history_entry::Entry;
use prost_types::FieldMask;
use tonic::{Code, Status};

use crate::helpers::{TestApp, spawn_app};

both_backends!(
    records_history_and_summarises_what_is_current,
    updates_history_under_a_mask_and_refuses_bad_entries,
);

async fn record(app: &mut TestApp, patient_id: &str, entry: Entry) -> pb::HistoryEntry {
    try_record(app, patient_id, Some(entry)).await.unwrap()
}

async fn try_record(
    app: &mut TestApp,
    patient_id: &str,
    entry: Option<Entry>,
) -> Result<pb::HistoryEntry, Status> {
    app.client
        .create_history_entry(pb::CreateHistoryEntryRequest {
            entry: Some(pb::HistoryEntry {
                patient_id: patient_id.into(),
                entry,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Changes the fields `paths` names of entry `id`, as of `etag`, to those of
/// `entry`.
async fn update(
    app: &mut TestApp,
    entry: &Entry,
    id: &str,
    etag: &str,
    paths: &[&str],
) -> Result<pb::HistoryEntry, Status> {
    app.client
        .update_history_entry(pb::UpdateHistoryEntryRequest {
            entry: Some(pb::HistoryEntry {
                id: id.into(),
                etag: etag.into(),
                entry: Some(entry.clone()),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn diabetes(status: pb::ClinicalStatus) -> Entry {
    Entry::Condition(pb::Condition {
        description: "Type 2 diabetes mellitus".into(),
        snomed_code: "44054006".into(),
        onset_date: "2019-03-01".into(),
        clinical_status: status as i32,
    })
}

fn penicillin() -> Entry {
    Entry::Allergy(pb::Allergy {
        substance: "penicillin".into(),
        reaction: "urticaria".into(),
        severity: pb::Severity::Moderate as i32,
        criticality: pb::Criticality::High as i32,
    })
}

fn metformin(end_date: &str) -> Entry {
    Entry::Medication(pb::Medication {
        name: "metformin".into(),
        dose: "500 mg".into(),
        route: "oral".into(),
        frequency: "twice daily".into(),
        start_date: "2019-03-15".into(),
        end_date: end_date.into(),
    })
}

async fn records_history_and_summarises_what_is_current(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let patient_id = app.patient_id(1).await;
    let active = record(&mut app, &patient_id, diabetes(pb::ClinicalStatus::Active)).await;
    record(
        &mut app,
        &patient_id,
        diabetes(pb::ClinicalStatus::Resolved),
    )
    .await;
    let allergy = record(&mut app, &patient_id, penicillin()).await;
    let current = record(&mut app, &patient_id, metformin("")).await;
    record(&mut app, &patient_id, metformin("2020-01-01")).await;
    // Another patient's history never leaks in.
    let other = app.patient_id(2).await;
    record(&mut app, &other, penicillin()).await;

    let summary = app
        .client
        .get_patient_summary(pb::GetPatientSummaryRequest {
            patient_id: patient_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.patient.unwrap().id, patient_id);
    let ids =
        |entries: &[pb::HistoryEntry]| entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&summary.conditions), std::slice::from_ref(&active.id));
    assert_eq!(ids(&summary.allergies), std::slice::from_ref(&allergy.id));
    assert_eq!(ids(&summary.medications), std::slice::from_ref(&current.id));
    assert_eq!(summary.allergies[0].entry, Some(penicillin()));

    let conditions = app
        .client
        .list_history_entries(pb::ListHistoryEntriesRequest {
            patient_id: patient_id.clone(),
            kind: pb::HistoryKind::Condition as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        conditions.entries.len(),
        2,
        "resolved conditions stay in the history"
    );
    let everything = app
        .client
        .list_history_entries(pb::ListHistoryEntriesRequest {
            patient_id: patient_id.clone(),
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(everything.entries.len(), 3);
    assert!(!everything.next_page_token.is_empty());
}

async fn updates_history_under_a_mask_and_refuses_bad_entries(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let patient_id = app.patient_id(1).await;
    let entry = record(&mut app, &patient_id, diabetes(pb::ClinicalStatus::Active)).await;

    let remission = Entry::Condition(pb::Condition {
        clinical_status: pb::ClinicalStatus::Remission as i32,
        description: "ignored".into(),
        ..Default::default()
    });
    let status_only = ["condition.clinical_status"];
    let updated = update(&mut app, &remission, &entry.id, &entry.etag, &status_only)
        .await
        .unwrap();
    let Some(Entry::Condition(condition)) = &updated.entry else {
        panic!("not a condition")
    };
    assert_eq!(condition.clinical_status(), pb::ClinicalStatus::Remission);
    assert_eq!(condition.description, "Type 2 diabetes mellitus");
    assert_ne!(updated.etag, entry.etag);

    let stale = update(&mut app, &remission, &entry.id, &entry.etag, &status_only)
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    let wrong_kind = update(
        &mut app,
        &penicillin(),
        &entry.id,
        "",
        &["allergy.substance"],
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&wrong_kind), ["entry"]);
    let unknown_path = update(&mut app, &remission, &entry.id, "", &["condition.colour"])
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&unknown_path), ["update_mask"]);
    let bad_snomed = Entry::Condition(pb::Condition {
        snomed_code: "44054005".into(),
        ..Default::default()
    });
    let bad_value = update(
        &mut app,
        &bad_snomed,
        &entry.id,
        "",
        &["condition.snomed_code"],
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&bad_value), ["entry.condition.snomed_code"]);

    // Creation refuses every bad field at once, and stores nothing.
    let cases: Vec<(Entry, Vec<&str>)> = vec![
        (
            Entry::Condition(pb::Condition {
                description: String::new(),
                snomed_code: "12".into(),
                onset_date: "2999-01-01".into(),
                clinical_status: 0,
            }),
            vec![
                "entry.condition.description",
                "entry.condition.snomed_code",
                "entry.condition.onset_date",
                "entry.condition.clinical_status",
            ],
        ),
        (
            Entry::Allergy(pb::Allergy {
                substance: "nuts".into(),
                ..Default::default()
            }),
            vec!["entry.allergy.criticality"],
        ),
        (metformin("2019-01-01"), vec!["entry.medication.end_date"]),
        (
            Entry::Medication(pb::Medication {
                start_date: "soon".into(),
                ..Default::default()
            }),
            vec![
                "entry.medication.name",
                "entry.medication.dose",
                "entry.medication.route",
                "entry.medication.frequency",
                "entry.medication.start_date",
            ],
        ),
    ];
    for (entry, expected) in cases {
        let status = try_record(&mut app, &patient_id, Some(entry))
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), expected);
    }
    let empty = try_record(&mut app, &patient_id, None).await.unwrap_err();
    assert_eq!(violated_fields(&empty), ["entry"]);
    let all = app
        .client
        .list_history_entries(pb::ListHistoryEntriesRequest {
            patient_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.entries.len(), 1);
}
