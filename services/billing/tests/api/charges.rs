//! The price list and charges through the API: versions that never overlap,
//! charges priced once per (appointment, code), refusals, and lists.

use std::collections::HashSet;

use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, violated_fields};
use medsec_proto::billing::v1 as pb;
use tonic::Code;

use crate::helpers::{assert_wrong_state, every_page, insurer, new_id, nhs, self_pay, spawn_app};

both_backends!(
    price_versions_never_overlap_and_a_price_change_alters_nothing_billed,
    refuses_bad_price_items_and_charges,
    charges_are_idempotent_on_appointment_and_code,
    lists_charges_page_by_page_with_filters,
);

async fn price_versions_never_overlap_and_a_price_change_alters_nothing_billed(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let first = app.price("cons-new", 15_000, 0, "2026-01-01").await;
    // A retried create with its request_id makes nothing new.
    let retry = pb::CreatePriceItemRequest {
        price_item: Some(pb::PriceItem {
            code: "SCAN".into(),
            description: "Ultrasound scan".into(),
            unit_price_pence: 30_000,
            valid_from: "2026-01-01".into(),
            ..Default::default()
        }),
        request_id: "price-scan-1".into(),
    };
    let scan = app
        .client
        .create_price_item(retry.clone())
        .await
        .unwrap()
        .into_inner();
    let again = app
        .client
        .create_price_item(retry)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(scan, again);
    assert_eq!(first.code, "CONS-NEW");
    assert_eq!(first.valid_to, "");

    // A second open-ended version overlaps the first.
    let status = app
        .client
        .create_price_item(pb::CreatePriceItemRequest {
            price_item: Some(pb::PriceItem {
                code: "CONS-NEW".into(),
                description: "New consultation".into(),
                unit_price_pence: 18_000,
                valid_from: "2026-06-01".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains(&first.id), "{}", status.message());

    let patient = new_id();
    let charge = app.charge(&patient, "CONS-NEW", 1, self_pay()).await;
    assert_eq!(charge.unit_price_pence, 15_000);
    let invoice = app.draft(&patient, self_pay()).await;
    let issued = app.issue(&invoice.id, "2026-05-06").await;

    // The price changes from June: end the old version, add the new one.
    let ended = app
        .client
        .end_price_item(pb::EndPriceItemRequest {
            id: first.id.clone(),
            valid_to: "2026-05-31".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ended.valid_to, "2026-05-31");
    let status = app
        .client
        .end_price_item(pb::EndPriceItemRequest {
            id: first.id.clone(),
            valid_to: "2026-05-30".into(),
        })
        .await
        .unwrap_err();
    assert_wrong_state(&status, "ended");
    let second = app.price("CONS-NEW", 18_000, 0, "2026-06-01").await;

    let on_date = |date: &str| pb::ListPriceItemsRequest {
        code: "cons-new".into(),
        valid_on: date.into(),
        ..Default::default()
    };
    let may = app
        .client
        .list_price_items(on_date("2026-05-31"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        may.price_items.iter().map(|p| &p.id).collect::<Vec<_>>(),
        [&first.id]
    );
    let june = app
        .client
        .list_price_items(on_date("2026-06-01"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        june.price_items.iter().map(|p| &p.id).collect::<Vec<_>>(),
        [&second.id]
    );

    // Nothing already charged or issued moved.
    assert_eq!(app.get(&issued.id).await, issued);
    let charges = app
        .client
        .list_charges(pb::ListChargesRequest {
            patient_id: patient.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(charges.charges[0].unit_price_pence, 15_000);

    // A charge for a date with no version is refused naming the code.
    let status = app
        .client
        .create_charge(pb::CreateChargeRequest {
            charge: Some(pb::Charge {
                appointment_id: new_id(),
                patient_id: patient,
                code: "CONS-NEW".into(),
                quantity: 1,
                service_date: "2025-12-31".into(),
                payer: Some(self_pay()),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["charge.code"]);
}

async fn refuses_bad_price_items_and_charges(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let item = |change: fn(&mut pb::PriceItem)| {
        let mut item = pb::PriceItem {
            code: "XRAY".into(),
            description: "Chest X-ray".into(),
            unit_price_pence: 9_500,
            vat_rate_basis_points: 2000,
            valid_from: "2026-04-01".into(),
            ..Default::default()
        };
        change(&mut item);
        pb::CreatePriceItemRequest {
            price_item: Some(item),
            request_id: String::new(),
        }
    };
    let cases: Vec<(pb::CreatePriceItemRequest, Vec<&str>)> = vec![
        (pb::CreatePriceItemRequest::default(), vec!["price_item"]),
        (item(|i| i.code = "X RAY".into()), vec!["price_item.code"]),
        (
            item(|i| i.description = " ".into()),
            vec!["price_item.description"],
        ),
        (
            item(|i| i.unit_price_pence = -1),
            vec!["price_item.unit_price_pence"],
        ),
        (
            item(|i| i.vat_rate_basis_points = 10_001),
            vec!["price_item.vat_rate_basis_points"],
        ),
        (
            item(|i| i.valid_from = "01/04/2026".into()),
            vec!["price_item.valid_from"],
        ),
        (
            item(|i| i.valid_to = "2026-03-31".into()),
            vec!["price_item.valid_to"],
        ),
        (
            item(|i| {
                i.code = String::new();
                i.unit_price_pence = -5;
            }),
            vec!["price_item.code", "price_item.unit_price_pence"],
        ),
    ];
    for (request, expected) in cases {
        let status = app.client.create_price_item(request).await.unwrap_err();
        assert_eq!(violated_fields(&status), expected);
    }
    let none = app
        .client
        .list_price_items(pb::ListPriceItemsRequest::default())
        .await
        .unwrap();
    assert!(none.into_inner().price_items.is_empty(), "nothing stored");

    app.price("XRAY", 9_500, 2000, "2026-04-01").await;
    let patient = new_id();
    let bad_insurer = pb::Payer {
        kind: pb::PayerKind::Insurer as i32,
        insurer: Some(pb::Insurer::default()),
    };
    let cases: Vec<(&str, &str, i32, pb::Payer, Vec<&str>)> = vec![
        (
            "not-a-uuid",
            patient.as_str(),
            1,
            self_pay(),
            vec!["charge.appointment_id"],
        ),
        (
            "",
            "x",
            1,
            self_pay(),
            vec!["charge.appointment_id", "charge.patient_id"],
        ),
        (
            "",
            patient.as_str(),
            0,
            self_pay(),
            vec!["charge.appointment_id", "charge.quantity"],
        ),
        (
            "",
            patient.as_str(),
            1,
            pb::Payer::default(),
            vec!["charge.appointment_id", "charge.payer.kind"],
        ),
        (
            "",
            patient.as_str(),
            1,
            bad_insurer,
            vec![
                "charge.appointment_id",
                "charge.payer.insurer.name",
                "charge.payer.insurer.policy_number",
            ],
        ),
    ];
    for (appointment, patient, quantity, payer, expected) in cases {
        let status = app
            .try_charge(appointment, patient, "XRAY", quantity, payer)
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), expected);
    }
    let status = app
        .try_charge(&new_id(), &patient, "NOPE", 1, self_pay())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["charge.code"]);
    let charges = app
        .client
        .list_charges(pb::ListChargesRequest::default())
        .await
        .unwrap();
    assert!(charges.into_inner().charges.is_empty(), "nothing stored");
}

async fn charges_are_idempotent_on_appointment_and_code(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("XRAY", 9_999, 2000, "2026-04-01").await;
    let (appointment, patient) = (new_id(), new_id());
    let calls = (0..10).map(|_| {
        let mut app_client = app.client.clone();
        let request = pb::CreateChargeRequest {
            charge: Some(pb::Charge {
                appointment_id: appointment.clone(),
                patient_id: patient.clone(),
                code: "XRAY".into(),
                quantity: 2,
                service_date: "2026-05-05".into(),
                payer: Some(insurer("PA-1")),
                ..Default::default()
            }),
        };
        tokio::spawn(async move { app_client.create_charge(request).await })
    });
    let ids: HashSet<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("every retry succeeds").into_inner().id)
        .collect();
    assert_eq!(ids.len(), 1, "a retried charge is made once");

    let charge = app
        .try_charge(&appointment, &patient, "xray", 2, insurer("PA-1"))
        .await
        .unwrap();
    assert_eq!(charge.net_pence, 19_998);

    // Even after the price list no longer covers the service date, a retry
    // is answered with the charge already made.
    let version = app
        .client
        .list_price_items(pb::ListPriceItemsRequest {
            code: "XRAY".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .price_items
        .remove(0);
    app.client
        .end_price_item(pb::EndPriceItemRequest {
            id: version.id,
            valid_to: "2026-04-30".into(),
        })
        .await
        .unwrap();
    let retried = app
        .try_charge(&appointment, &patient, "XRAY", 2, insurer("PA-1"))
        .await
        .unwrap();
    assert_eq!(retried.id, charge.id);
    assert_eq!(charge.vat_pence, 4_000); // 3999.6p rounds half up
    assert_eq!(
        charge
            .payer
            .as_ref()
            .unwrap()
            .insurer
            .as_ref()
            .unwrap()
            .preauthorisation_code,
        "PA-1"
    );

    let status = app
        .try_charge(&appointment, &patient, "XRAY", 3, insurer("PA-1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().contains(&charge.id));

    // Another code on the same appointment is another charge; NHS care is recorded too.
    app.price("BLOODS", 2_500, 0, "2026-04-01").await;
    app.try_charge(&appointment, &patient, "BLOODS", 1, nhs())
        .await
        .unwrap();
    let listed = app
        .client
        .list_charges(pb::ListChargesRequest {
            appointment_id: appointment.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.charges.len(), 2);
}

async fn lists_charges_page_by_page_with_filters(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("XRAY", 100, 0, "2026-04-01").await;
    let (ada, bob) = (new_id(), new_id());
    let mut expected = Vec::new();
    for n in 0..7 {
        let patient = if n % 2 == 0 { &ada } else { &bob };
        let charge = app.charge(patient, "XRAY", 1, self_pay()).await;
        if n % 2 == 0 {
            expected.push(charge.id);
        }
    }
    let seen = every_page(async |page_token| {
        let request = pb::ListChargesRequest {
            page_size: 3,
            page_token,
            patient_id: ada.clone(),
            ..Default::default()
        };
        let page = app.client.list_charges(request).await.unwrap().into_inner();
        (page.charges, page.next_page_token)
    })
    .await;
    assert_eq!(seen.into_iter().map(|c| c.id).collect::<Vec<_>>(), expected);

    let first = app
        .client
        .list_charges(pb::ListChargesRequest {
            page_size: 1,
            patient_id: ada.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let status = app
        .client
        .list_charges(pb::ListChargesRequest {
            page_size: 1,
            page_token: first.next_page_token,
            patient_id: bob,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
    let status = app
        .client
        .list_charges(pb::ListChargesRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);
}
