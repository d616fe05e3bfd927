use medsec_platform::both_backends;
use medsec_platform::testing::Backend;
use medsec_proto::scheduling::v1 as pb;

use crate::helpers::{TestApp, assert_precondition, patient, spawn_app, violated_fields};

both_backends!(
    referral_clocks_run_stop_and_restart,
    the_waiting_list_report_counts_bands_and_breaches,
    a_referral_is_updated_under_a_mask_and_an_etag,
    a_treated_referral_is_closed_once_its_appointment_is_over,
    a_referral_says_who_pays,
);

async fn referral(
    app: &mut TestApp,
    patient_id: &str,
    priority: pb::Priority,
    clock_start: &str,
) -> pb::Referral {
    app.client
        .create_referral(pb::CreateReferralRequest {
            referral: Some(pb::Referral {
                patient_id: patient_id.into(),
                specialty: "cardiology".into(),
                priority: priority as i32,
                clock_start: clock_start.into(),
                kind: pb::SlotKind::New as i32,
                unavailable: vec![pb::DateRange {
                    from: "2026-02-01".into(),
                    to: "2026-02-14".into(),
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn get(app: &mut TestApp, id: &str, as_of: &str) -> pb::Referral {
    app.client
        .get_referral(pb::GetReferralRequest {
            id: id.into(),
            as_of: as_of.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn referral_clocks_run_stop_and_restart(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let ada = patient();
    let created = referral(&mut app, &ada, pb::Priority::Routine, "2026-01-05").await;
    assert_eq!(created.status(), pb::ReferralStatus::Waiting);
    assert_eq!(created.due, "2026-05-11");
    assert_eq!(created.unavailable.len(), 1);
    assert_eq!(
        get(&mut app, &created.id, "2026-03-02").await.weeks_waited,
        8
    );

    let first = app
        .slot(&clinic, "2026-03-10T09:00:00Z", "2026-03-10T09:30:00Z", 1)
        .await;
    let booked = app.book(&first.id, &ada, &created.id).await.unwrap();
    assert_eq!(
        get(&mut app, &created.id, "").await.status(),
        pb::ReferralStatus::Booked
    );
    // A booked referral cannot be booked twice.
    let spare = app
        .slot(&clinic, "2026-03-11T09:00:00Z", "2026-03-11T09:30:00Z", 1)
        .await;
    assert_precondition(
        &app.book(&spare.id, &ada, &created.id).await.unwrap_err(),
        "booked",
    );

    // A hospital cancellation returns it to waiting, clock still running.
    app.cancel(&booked.id, pb::CancelledBy::Hospital, "consultant on call")
        .await
        .unwrap();
    let back = get(&mut app, &created.id, "2026-03-10").await;
    assert_eq!(back.status(), pb::ReferralStatus::Waiting);
    assert_eq!(back.clock_start, "2026-01-05");

    // A DNA at the first appointment restarts the clock on that day.
    let rebooked = app.book(&spare.id, &ada, &created.id).await.unwrap();
    app.did_not_attend(&rebooked.id).await.unwrap();
    let restarted = get(&mut app, &created.id, "2026-03-11").await;
    assert_eq!(restarted.status(), pb::ReferralStatus::Waiting);
    assert_eq!(restarted.clock_start, "2026-03-11");
    assert_eq!(restarted.weeks_waited, 0);
    assert_eq!(restarted.due, "2026-07-15");

    let removed = app
        .remove_referral(&created.id, "discharged to GP")
        .await
        .unwrap();
    assert_eq!(removed.status(), pb::ReferralStatus::Removed);
    let status = app.remove_referral(&created.id, "again").await.unwrap_err();
    assert_precondition(&status, "removed");

    let status = app
        .client
        .create_referral(pb::CreateReferralRequest {
            referral: Some(pb::Referral {
                patient_id: "nobody".into(),
                specialty: "cardio-logy".into(),
                priority: 0,
                clock_start: "2026-1-5".into(),
                kind: 9,
                unavailable: vec![pb::DateRange {
                    from: "2026-02-14".into(),
                    to: "2026-02-01".into(),
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "referral.patient_id",
            "referral.specialty",
            "referral.priority",
            "referral.clock_start",
            "referral.kind",
            "referral.unavailable[0].to"
        ]
    );
    let listed = app
        .client
        .list_referrals(pb::ListReferralsRequest {
            specialty: "cardiology".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.referrals.len(), 1);
}

async fn the_waiting_list_report_counts_bands_and_breaches(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let as_of = "2026-06-01";
    // Weeks waited on 2026-06-01: 1, 10, 20, 60, 70, 80, 110.
    for (start, priority) in [
        ("2026-05-25", pb::Priority::TwoWeekWait),
        ("2026-03-23", pb::Priority::Urgent),
        ("2026-01-12", pb::Priority::Routine),
        ("2025-04-07", pb::Priority::Routine),
        ("2025-01-27", pb::Priority::Routine),
        ("2024-12-02", pb::Priority::Routine),
        ("2024-04-22", pb::Priority::Routine),
    ] {
        referral(&mut app, &patient(), priority, start).await;
    }
    // Removed referrals are off the list.
    let gone = referral(&mut app, &patient(), pb::Priority::Routine, "2024-01-01").await;
    app.remove_referral(&gone.id, "treated").await.unwrap();

    let report = app
        .client
        .get_waiting_list_report(pb::GetWaitingListReportRequest {
            specialty: "cardiology".into(),
            as_of: as_of.into(),
            projected_at: "2026-06-10".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.waiting, 7);
    let counts: Vec<(i32, i32, i32)> = report
        .bands
        .iter()
        .map(|b| (b.min_weeks, b.max_weeks, b.count))
        .collect();
    assert_eq!(
        counts,
        [
            (0, 18, 2),
            (18, 52, 1),
            (52, 65, 1),
            (65, 78, 1),
            (78, 104, 1),
            (104, 0, 1)
        ]
    );
    // Breaching now: the urgent one (due 2026-04-20), the 20-week routine
    // one (due 2026-05-18) and the four over a year.
    assert_eq!(report.breaches, 6);
    // By 10 June the two-week-wait (due 8 June) breaches too.
    assert_eq!(report.projected_breaches, 7);

    let status = app
        .client
        .get_waiting_list_report(pb::GetWaitingListReportRequest {
            specialty: String::new(),
            as_of: "June".into(),
            projected_at: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["specialty", "as_of"]);
}

async fn update(
    app: &mut TestApp,
    referral: pb::Referral,
    paths: &[&str],
) -> Result<pb::Referral, tonic::Status> {
    app.client
        .update_referral(pb::UpdateReferralRequest {
            referral: Some(referral),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn a_referral_is_updated_under_a_mask_and_an_etag(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let created = referral(&mut app, &patient(), pb::Priority::Routine, "2026-01-05").await;
    assert_eq!(created.due, "2026-05-11");

    // A clinician upgrades the priority and the patient reports a holiday;
    // the clock start is never touched.
    let changed = update(
        &mut app,
        pb::Referral {
            id: created.id.clone(),
            etag: created.etag.clone(),
            priority: pb::Priority::Urgent as i32,
            clock_start: "2020-01-01".into(),
            unavailable: vec![pb::DateRange {
                from: "2026-03-01".into(),
                to: "2026-03-08".into(),
            }],
            preferred_clinician: clinic.clinician.clone(),
            ..Default::default()
        },
        &["priority", "unavailable", "preferred_clinician"],
    )
    .await
    .unwrap();
    assert_eq!(changed.priority(), pb::Priority::Urgent);
    assert_eq!(
        changed.due, "2026-02-02",
        "urgent: 28 days from the clock start"
    );
    assert_eq!(changed.clock_start, "2026-01-05");
    assert_eq!(changed.unavailable.len(), 1);
    assert_eq!(changed.unavailable[0].from, "2026-03-01");
    assert_eq!(changed.preferred_clinician, clinic.clinician);
    assert_ne!(changed.etag, created.etag);

    // The old etag is stale now.
    let stale = update(
        &mut app,
        pb::Referral {
            id: created.id.clone(),
            etag: created.etag.clone(),
            earliest: "2026-04-01".into(),
            ..Default::default()
        },
        &["earliest"],
    )
    .await
    .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);

    // Fixed fields, unknown fields and bad values are refused by name.
    let bad = update(
        &mut app,
        pb::Referral {
            id: created.id.clone(),
            earliest: "next week".into(),
            unavailable: vec![pb::DateRange {
                from: "2026-03-08".into(),
                to: "2026-03-01".into(),
            }],
            ..Default::default()
        },
        &["clock_start", "earliest", "unavailable"],
    )
    .await
    .unwrap_err();
    assert_eq!(
        violated_fields(&bad),
        [
            "update_mask",
            "referral.earliest",
            "referral.unavailable[0].to"
        ]
    );
    let not_a_clinician = update(
        &mut app,
        pb::Referral {
            id: created.id.clone(),
            required_clinician: patient(),
            ..Default::default()
        },
        &["required_clinician"],
    )
    .await
    .unwrap_err();
    assert_eq!(not_a_clinician.code(), tonic::Code::NotFound);
    assert_eq!(
        get(&mut app, &created.id, "").await.etag,
        changed.etag,
        "nothing changed"
    );

    // A removed referral is closed to changes.
    app.remove_referral(&created.id, "treated elsewhere")
        .await
        .unwrap();
    let removed = update(
        &mut app,
        pb::Referral {
            id: created.id.clone(),
            earliest: "2026-04-01".into(),
            ..Default::default()
        },
        &["earliest"],
    )
    .await
    .unwrap_err();
    assert_precondition(&removed, "removed");
}

async fn a_treated_referral_is_closed_once_its_appointment_is_over(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let ada = patient();
    let created = referral(&mut app, &ada, pb::Priority::Routine, "2026-01-05").await;
    let slot = app
        .slot(&clinic, "2026-02-16T09:00:00Z", "2026-02-16T09:30:00Z", 1)
        .await;
    let appointment = app.book(&slot.id, &ada, &created.id).await.unwrap();
    let remove = |id: &str| pb::RemoveReferralRequest {
        id: id.into(),
        reason: "treated".into(),
    };

    // While the appointment is still to come, the pathway stays open.
    let early = app
        .client
        .remove_referral(remove(&created.id))
        .await
        .unwrap_err();
    assert_precondition(&early, "booked");

    app.arrive(&appointment.id).await.unwrap();
    let during = app
        .client
        .remove_referral(remove(&created.id))
        .await
        .unwrap_err();
    assert_precondition(&during, "booked");

    app.fulfil(&appointment.id).await.unwrap();
    let closed = app
        .client
        .remove_referral(remove(&created.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.status(), pb::ReferralStatus::Removed);
    assert_eq!(closed.removal_reason, "treated");
    let again = app
        .client
        .remove_referral(remove(&created.id))
        .await
        .unwrap_err();
    assert_precondition(&again, "removed");
}

fn insurer(name: &str, policy: &str) -> pb::Funding {
    pb::Funding {
        kind: pb::FundingKind::Insurer as i32,
        insurer_name: name.into(),
        policy_number: policy.into(),
        preauthorisation_code: "PA-77".into(),
    }
}

async fn a_referral_says_who_pays(backend: Backend) {
    let mut app = spawn_app(backend).await;
    // Said nothing: the NHS.
    let nhs = referral(&mut app, &patient(), pb::Priority::Routine, "2026-01-05").await;
    let funding = nhs.funding.unwrap();
    assert_eq!(funding.kind(), pb::FundingKind::Nhs);
    assert_eq!(funding.insurer_name, "");

    // An insured patient: read back as written.
    let mut request = pb::Referral {
        patient_id: patient(),
        specialty: "cardiology".into(),
        priority: pb::Priority::Routine as i32,
        clock_start: "2026-01-05".into(),
        kind: pb::SlotKind::New as i32,
        funding: Some(insurer("Bupa", "BU-12345")),
        ..Default::default()
    };
    let insured = app
        .client
        .create_referral(pb::CreateReferralRequest {
            referral: Some(request.clone()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(insured.funding, Some(insurer("Bupa", "BU-12345")));
    let read = get(&mut app, &insured.id, "").await;
    assert_eq!(read.funding, insured.funding);

    // An insurer without a policy, and a self-payer with an insurer, are
    // refused by field.
    request.funding = Some(insurer("Bupa", ""));
    let refused = app
        .client
        .create_referral(pb::CreateReferralRequest {
            referral: Some(request.clone()),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&refused),
        ["referral.funding.policy_number"]
    );
    request.funding = Some(pb::Funding {
        kind: pb::FundingKind::SelfPay as i32,
        insurer_name: "Bupa".into(),
        ..Default::default()
    });
    let refused = app
        .client
        .create_referral(pb::CreateReferralRequest {
            referral: Some(request),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["referral.funding.insurer_name"]);

    // The patient decides to pay for themselves.
    let changed = update(
        &mut app,
        pb::Referral {
            id: insured.id.clone(),
            etag: read.etag.clone(),
            funding: Some(pb::Funding {
                kind: pb::FundingKind::SelfPay as i32,
                ..Default::default()
            }),
            ..Default::default()
        },
        &["funding"],
    )
    .await
    .unwrap();
    let funding = changed.funding.unwrap();
    assert_eq!(funding.kind(), pb::FundingKind::SelfPay);
    assert_eq!(funding.policy_number, "");
}
