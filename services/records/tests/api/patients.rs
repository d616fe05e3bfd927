use std::collections::HashSet;

use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, precondition_type, violated_fields};
use medsec_proto::records::v1 as pb;
use prost_types::FieldMask;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::{TestApp, patient, spawn_app, test_nhs_number};

both_backends!(
    registers_a_patient_and_normalises_what_was_typed,
    refuses_every_bad_input_and_stores_nothing,
    a_duplicate_nhs_number_is_refused_without_naming_the_holder,
    gets_answer_not_found_and_invalid_ids,
    pages_through_every_patient_exactly_once,
    filters_by_nhs_number_name_birth_date_and_postcode,
    updates_the_masked_fields_under_an_etag,
    refuses_bad_updates_and_changes_nothing,
    archives_softly_and_frees_the_nhs_number,
    a_create_retried_concurrently_creates_once,
    concurrent_registrations_of_one_nhs_number_admit_one,
);

async fn registers_a_patient_and_normalises_what_was_typed(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut input = patient("943-476-5919", " Ada ", "Lovelace");
    input.address = Some(pb::Address {
        lines: vec!["12 St James's Square".into(), "St James's".into()],
        town: "London".into(),
        postcode: "sw1y4jh".into(),
    });
    input.phone = "+44 (0)20 7946 0018".into();
    let created = app.create(input).await;

    assert!(!created.id.is_empty());
    assert_eq!(created.nhs_number, "9434765919");
    assert_eq!(created.given_name, "Ada");
    assert_eq!(created.address.as_ref().unwrap().postcode, "SW1Y 4JH");
    assert_eq!(created.address.as_ref().unwrap().lines.len(), 2);
    assert_eq!(created.phone, "+4402079460018");
    assert_eq!(created.gp_practice.as_ref().unwrap().ods_code, "B86001");
    assert_eq!(created.state(), pb::PatientState::Active);
    assert!(created.create_time.is_some());
    assert_eq!(created.create_time, created.update_time);
    assert!(created.archive_time.is_none());
    assert!(!created.etag.is_empty());

    assert_eq!(get(&mut app, &created.id).await, created);

    // Optional fields may be left out entirely.
    let minimal = pb::Patient {
        address: None,
        phone: String::new(),
        email: String::new(),
        gp_practice: None,
        ..patient(&test_nhs_number(1), "Min", "Imal")
    };
    let created = app.create(minimal).await;
    assert!(created.address.is_none() && created.gp_practice.is_none());
    assert_eq!(app.stored_patients().await, 2);
}

async fn refuses_every_bad_input_and_stores_nothing(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let valid = || patient("9434765919", "Ada", "Lovelace");
    let cases: Vec<(&str, pb::CreatePatientRequest, Vec<&str>)> = vec![
        ("no patient", request(None, ""), vec!["patient"]),
        (
            "nhs number too short",
            with(|p| p.nhs_number = "943476591".into()),
            vec!["patient.nhs_number"],
        ),
        (
            "nhs number with letters",
            with(|p| p.nhs_number = "943 476 591X".into()),
            vec!["patient.nhs_number"],
        ),
        (
            "nhs check digit",
            with(|p| p.nhs_number = "9434765918".into()),
            vec!["patient.nhs_number"],
        ),
        (
            "no given name",
            with(|p| p.given_name = "  ".into()),
            vec!["patient.given_name"],
        ),
        (
            "no family name",
            with(|p| p.family_name = String::new()),
            vec!["patient.family_name"],
        ),
        (
            "family name too long",
            with(|p| p.family_name = "x".repeat(101)),
            vec!["patient.family_name"],
        ),
        (
            "control character",
            with(|p| p.given_name = "Ada\u{7}".into()),
            vec!["patient.given_name"],
        ),
        (
            "birth date form",
            with(|p| p.birth_date = "31/01/1970".into()),
            vec!["patient.birth_date"],
        ),
        (
            "birth date impossible",
            with(|p| p.birth_date = "1970-02-30".into()),
            vec!["patient.birth_date"],
        ),
        (
            "birth date future",
            with(|p| p.birth_date = "2999-01-01".into()),
            vec!["patient.birth_date"],
        ),
        ("sex unspecified", with(|p| p.sex = 0), vec!["patient.sex"]),
        (
            "sex unknown value",
            with(|p| p.sex = 42),
            vec!["patient.sex"],
        ),
        (
            "postcode",
            with(|p| p.address.as_mut().unwrap().postcode = "LS1".into()),
            vec!["patient.address.postcode"],
        ),
        (
            "postcode missing",
            with(|p| p.address.as_mut().unwrap().postcode = String::new()),
            vec!["patient.address.postcode"],
        ),
        (
            "too many address lines",
            with(|p| p.address.as_mut().unwrap().lines = vec!["a".into(); 5]),
            vec!["patient.address.lines"],
        ),
        (
            "empty address line",
            with(|p| p.address.as_mut().unwrap().lines = vec![" ".into()]),
            vec!["patient.address.lines[0]"],
        ),
        (
            "phone letters",
            with(|p| p.phone = "0113 CALL ME".into()),
            vec!["patient.phone"],
        ),
        (
            "phone too short",
            with(|p| p.phone = "0113".into()),
            vec!["patient.phone"],
        ),
        (
            "email",
            with(|p| p.email = "ada.example.org".into()),
            vec!["patient.email"],
        ),
        (
            "gp ods code",
            with(|p| p.gp_practice.as_mut().unwrap().ods_code = "B8-6001".into()),
            vec!["patient.gp_practice.ods_code"],
        ),
        (
            "request id",
            pb::CreatePatientRequest {
                patient: Some(valid()),
                request_id: "has space".into(),
            },
            vec!["request_id"],
        ),
        (
            "several at once",
            with(|p| {
                p.nhs_number = "1".into();
                p.birth_date = "tomorrow".into();
                p.email = "@".into();
            }),
            vec!["patient.nhs_number", "patient.birth_date", "patient.email"],
        ),
    ];
    for (case, request, expected) in cases {
        let status = app.client.create_patient(request).await.unwrap_err();
        assert_eq!(violated_fields(&status), expected, "{case}");
        assert!(
            status.message().contains(expected[0]),
            "{case}: {}",
            status.message()
        );
    }
    assert_eq!(app.stored_patients().await, 0);

    fn request(patient: Option<pb::Patient>, request_id: &str) -> pb::CreatePatientRequest {
        pb::CreatePatientRequest {
            patient,
            request_id: request_id.into(),
        }
    }
    fn with(change: impl FnOnce(&mut pb::Patient)) -> pb::CreatePatientRequest {
        let mut p = patient("9434765919", "Ada", "Lovelace");
        change(&mut p);
        request(Some(p), "")
    }
}

async fn a_duplicate_nhs_number_is_refused_without_naming_the_holder(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let first = app.create(patient("9434765919", "Ada", "Lovelace")).await;
    let status = app
        .try_create(patient("943 476 5919", "Someone", "Else"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(
        status.message().contains("patient.nhs_number"),
        "{}",
        status.message()
    );
    // Neither the number nor the other patient's id is told to the caller.
    for secret in [first.id.as_str(), "9434765919", "943 476 5919"] {
        assert!(!status.message().contains(secret), "{}", status.message());
        let info = status.get_details_resource_info().expect("resource info");
        assert_eq!(info.resource_type, "patient");
        assert!(!info.resource_name.contains(secret));
        assert!(!info.description.contains(secret));
    }
    assert_eq!(app.stored_patients().await, 1);
}

async fn gets_answer_not_found_and_invalid_ids(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let missing = "0190b9a4-7c1e-7000-8000-000000000000";
    let status = try_get(&mut app, missing).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains(missing));

    for bad in ["", "not-a-uuid"] {
        let status = try_get(&mut app, bad).await.unwrap_err();
        assert_eq!(violated_fields(&status), ["id"]);
    }
}

async fn pages_through_every_patient_exactly_once(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut created = HashSet::new();
    for n in 0..23 {
        let family = if n % 2 == 0 { "Even" } else { "Odd" };
        created.insert(
            app.create(patient(&test_nhs_number(n), "P", family))
                .await
                .id,
        );
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list(&mut app, 5, &token, |_| {}).await;
        pages += 1;
        assert!(page.patients.len() <= 5);
        seen.extend(page.patients.into_iter().map(|p| p.id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23, "no duplicates");
    assert_eq!(
        seen.iter().cloned().collect::<HashSet<_>>(),
        created,
        "no gaps"
    );

    // Filters paginate too, and a token only fits the filters it came from.
    let first = list(&mut app, 4, "", |r| r.family_name_prefix = "even".into()).await;
    assert_eq!(first.patients.len(), 4);
    let rest = list(&mut app, 100, &first.next_page_token, |r| {
        r.family_name_prefix = "even".into();
    })
    .await;
    assert_eq!(first.patients.len() + rest.patients.len(), 12);
    assert!(rest.next_page_token.is_empty());
    let status = try_list(&mut app, 4, &first.next_page_token, |r| {
        r.family_name_prefix = "odd".into();
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);

    // Defaults, clamping and nonsense.
    assert_eq!(list(&mut app, 0, "", |_| {}).await.patients.len(), 23);
    assert_eq!(
        list(&mut app, 1_000_000, "", |_| {}).await.patients.len(),
        23
    );
    for (size, token, field) in [(-1, "", "page_size"), (5, "not-a-token", "page_token")] {
        let status = try_list(&mut app, size, token, |_| {}).await.unwrap_err();
        assert_eq!(violated_fields(&status), [field]);
    }
}

async fn filters_by_nhs_number_name_birth_date_and_postcode(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut smith = patient(&test_nhs_number(1), "Jo", "Smith");
    smith.birth_date = "1990-05-17".into();
    let smith = app.create(smith).await;
    let mut smithson = patient(&test_nhs_number(2), "Al", "SMITHSON");
    smithson.address.as_mut().unwrap().postcode = "LS2 9JT".into();
    let smithson = app.create(smithson).await;
    let goldsmith = app
        .create(patient(&test_nhs_number(3), "Bo", "Goldsmith"))
        .await;
    let percent = app
        .create(patient(&test_nhs_number(4), "Cy", "Sm%th"))
        .await;

    let ids = |page: pb::ListPatientsResponse| {
        page.patients.into_iter().map(|p| p.id).collect::<Vec<_>>()
    };
    let by_name = ids(list(&mut app, 50, "", |r| r.family_name_prefix = "smi".into()).await);
    assert_eq!(by_name, [smith.id.clone(), smithson.id.clone()]);
    // LIKE wildcards in the prefix are literal.
    let literal = ids(list(&mut app, 50, "", |r| r.family_name_prefix = "sm%".into()).await);
    assert_eq!(literal, [percent.id.as_str()]);

    let by_nhs = ids(list(&mut app, 50, "", |r| {
        r.nhs_number = format!("{} ", &test_nhs_number(3));
    })
    .await);
    assert_eq!(by_nhs, [goldsmith.id.as_str()]);

    let by_birth = ids(list(&mut app, 50, "", |r| r.birth_date = "1990-05-17".into()).await);
    assert_eq!(by_birth, [smith.id.as_str()]);

    let by_postcode = ids(list(&mut app, 50, "", |r| r.postcode = "ls29jt".into()).await);
    assert_eq!(by_postcode, [smithson.id.as_str()]);
    let by_district = ids(list(&mut app, 50, "", |r| r.postcode = "LS1".into()).await);
    assert_eq!(by_district.len(), 3);

    let combined = ids(list(&mut app, 50, "", |r| {
        r.family_name_prefix = "SMITH".into();
        r.postcode = "LS1".into();
    })
    .await);
    assert_eq!(combined, [smith.id.as_str()]);

    for (field, change) in [
        (
            "nhs_number",
            Box::new(|r: &mut pb::ListPatientsRequest| r.nhs_number = "123".into())
                as Box<dyn Fn(&mut pb::ListPatientsRequest)>,
        ),
        (
            "birth_date",
            Box::new(|r: &mut pb::ListPatientsRequest| r.birth_date = "17/05/1990".into()),
        ),
        (
            "postcode",
            Box::new(|r: &mut pb::ListPatientsRequest| r.postcode = "NOT A POSTCODE".into()),
        ),
    ] {
        let status = try_list(&mut app, 0, "", change).await.unwrap_err();
        assert_eq!(violated_fields(&status), [field]);
    }
}

async fn updates_the_masked_fields_under_an_etag(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let created = app.create(patient("9434765919", "Ada", "Lovelace")).await;

    let changes = pb::Patient {
        id: created.id.clone(),
        etag: created.etag.clone(),
        family_name: "King".into(),
        given_name: "ignored because unmasked".into(),
        email: String::new(),
        ..Default::default()
    };
    let updated = update(&mut app, changes, &["family_name", "email"])
        .await
        .unwrap();
    assert_eq!(updated.family_name, "King");
    assert_eq!(updated.given_name, "Ada");
    assert_eq!(updated.email, "", "a masked empty field is cleared");
    assert_eq!(updated.nhs_number, created.nhs_number);
    assert_ne!(updated.etag, created.etag);
    let seconds = |t: &Option<prost_types::Timestamp>| t.map(|t| (t.seconds, t.nanos));
    assert!(seconds(&updated.update_time) > seconds(&created.update_time));
    assert_eq!(updated.create_time, created.create_time);

    // Without an etag the update is unconditional.
    let changes = pb::Patient {
        id: created.id.clone(),
        address: Some(pb::Address {
            lines: vec![],
            town: String::new(),
            postcode: "m1 1ae".into(),
        }),
        ..Default::default()
    };
    let moved = update(&mut app, changes, &["address"]).await.unwrap();
    assert_eq!(moved.address.unwrap().postcode, "M1 1AE");

    // "*" replaces every updatable field.
    let mut everything = patient(&test_nhs_number(9), "Augusta", "Byron");
    everything.id = created.id.clone();
    let replaced = update(&mut app, everything, &["*"]).await.unwrap();
    assert_eq!(replaced.nhs_number, test_nhs_number(9));
    assert_eq!(replaced.given_name, "Augusta");

    let stale = pb::Patient {
        id: created.id.clone(),
        etag: created.etag.clone(),
        family_name: "Stale".into(),
        ..Default::default()
    };
    let status = update(&mut app, stale, &["family_name"]).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    let current = get(&mut app, &created.id).await;
    assert_eq!(current.family_name, "Byron");
}

async fn refuses_bad_updates_and_changes_nothing(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let ada = app.create(patient("9434765919", "Ada", "Lovelace")).await;
    let other = app
        .create(patient(&test_nhs_number(5), "Other", "Person"))
        .await;
    let with = |change: fn(&mut pb::Patient)| {
        let mut p = pb::Patient {
            id: ada.id.clone(),
            ..Default::default()
        };
        change(&mut p);
        p
    };

    let cases: Vec<(pb::Patient, Vec<&str>, Vec<&str>)> = vec![
        (with(|_| {}), vec![], vec!["update_mask"]),
        (with(|_| {}), vec!["create_time"], vec!["update_mask"]),
        (
            with(|p| p.nhs_number = "9434765918".into()),
            vec!["nhs_number"],
            vec!["patient.nhs_number"],
        ),
        (
            with(|p| p.birth_date = "2999-12-31".into()),
            vec!["birth_date"],
            vec!["patient.birth_date"],
        ),
        (
            with(|p| p.given_name = String::new()),
            vec!["given_name"],
            vec!["patient.given_name"],
        ),
        (
            with(|p| p.etag = "W/nonsense".into()),
            vec!["family_name"],
            vec!["patient.etag", "patient.family_name"],
        ),
        (
            with(|p| p.id = "nope".into()),
            vec!["sex"],
            vec!["patient.id", "patient.sex"],
        ),
    ];
    for (changes, mask, expected) in cases {
        let status = update(&mut app, changes, &mask).await.unwrap_err();
        assert_eq!(violated_fields(&status), expected, "mask {mask:?}");
    }

    // Taking another active patient's NHS number.
    let steal = pb::Patient {
        id: ada.id.clone(),
        nhs_number: other.nhs_number.clone(),
        ..Default::default()
    };
    let status = update(&mut app, steal, &["nhs_number"]).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(
        !status.message().contains(&other.id),
        "the holder is not named"
    );

    let missing = pb::Patient {
        id: "0190b9a4-7c1e-7000-8000-000000000000".into(),
        family_name: "X".into(),
        ..Default::default()
    };
    assert_eq!(
        update(&mut app, missing, &["family_name"])
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    assert_eq!(get(&mut app, &ada.id).await, ada, "nothing changed");
}

async fn archives_softly_and_frees_the_nhs_number(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let ada = app.create(patient("9434765919", "Ada", "Lovelace")).await;

    let stale = archive(&mut app, &ada.id, "999").await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    let archived = archive(&mut app, &ada.id, &ada.etag).await.unwrap();
    assert_eq!(archived.state(), pb::PatientState::Archived);
    assert!(archived.archive_time.is_some());

    let again = archive(&mut app, &ada.id, "").await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("archived"), "{}", again.message());
    assert_eq!(precondition_type(&again), "STATE");

    let changes = pb::Patient {
        id: ada.id.clone(),
        family_name: "King".into(),
        ..Default::default()
    };
    let status = update(&mut app, changes, &["family_name"])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    // Still readable, hidden from lists unless asked for, nothing deleted.
    assert_eq!(
        get(&mut app, &ada.id).await.state(),
        pb::PatientState::Archived
    );
    assert!(list(&mut app, 10, "", |_| {}).await.patients.is_empty());
    assert_eq!(
        list(&mut app, 10, "", |r| r.include_archived = true)
            .await
            .patients
            .len(),
        1
    );

    // The NHS number is free for a new active registration.
    let again = app.create(patient("9434765919", "Ada", "Lovelace")).await;
    assert_ne!(again.id, ada.id);
    assert_eq!(app.stored_patients().await, 2);
}

async fn a_create_retried_concurrently_creates_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = pb::CreatePatientRequest {
        patient: Some(patient("9434765919", "Ada", "Lovelace")),
        request_id: "7f1c2a8e-retry-me".into(),
    };
    let calls = (0..12).map(|_| {
        let mut client = app.client.clone();
        let request = request.clone();
        tokio::spawn(async move { client.create_patient(request).await })
    });
    let results = futures::future::join_all(calls).await;
    let ids: HashSet<String> = results
        .into_iter()
        .map(|joined| {
            joined
                .unwrap()
                .expect("every retry succeeds")
                .into_inner()
                .id
        })
        .collect();
    assert_eq!(ids.len(), 1, "every retry returns the first result");
    assert_eq!(app.stored_patients().await, 1);

    // The same key with different content is refused.
    let mut client = app.client.clone();
    let status = client
        .create_patient(pb::CreatePatientRequest {
            patient: Some(patient(&test_nhs_number(7), "Someone", "Else")),
            ..request
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["request_id"]);
    assert_eq!(app.stored_patients().await, 1);
}

async fn concurrent_registrations_of_one_nhs_number_admit_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let calls = (0..8).map(|n| {
        let mut client = app.client.clone();
        tokio::spawn(async move {
            client
                .create_patient(pb::CreatePatientRequest {
                    patient: Some(patient("9434765919", &format!("Twin{n}"), "Race")),
                    request_id: format!("twin-{n}"),
                })
                .await
        })
    });
    let results = futures::future::join_all(calls).await;
    let (ok, refused): (Vec<_>, Vec<_>) = results
        .into_iter()
        .map(|r| r.unwrap())
        .partition(Result::is_ok);
    assert_eq!(ok.len(), 1);
    for status in refused.into_iter().map(Result::unwrap_err) {
        assert!(
            matches!(status.code(), Code::AlreadyExists | Code::Aborted),
            "{status:?}"
        );
    }
    assert_eq!(app.stored_patients().await, 1);
}

async fn list(
    app: &mut TestApp,
    page_size: i32,
    page_token: &str,
    filters: impl FnOnce(&mut pb::ListPatientsRequest),
) -> pb::ListPatientsResponse {
    try_list(app, page_size, page_token, filters).await.unwrap()
}

async fn try_list(
    app: &mut TestApp,
    page_size: i32,
    page_token: &str,
    filters: impl FnOnce(&mut pb::ListPatientsRequest),
) -> Result<pb::ListPatientsResponse, Status> {
    let mut request = pb::ListPatientsRequest {
        page_size,
        page_token: page_token.into(),
        ..Default::default()
    };
    filters(&mut request);
    app.client
        .list_patients(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn get(app: &mut TestApp, id: &str) -> pb::Patient {
    try_get(app, id).await.unwrap()
}

async fn try_get(app: &mut TestApp, id: &str) -> Result<pb::Patient, Status> {
    let request = pb::GetPatientRequest { id: id.into() };
    app.client
        .get_patient(request)
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn archive(
    app: &mut TestApp,
    id: &str,
    etag: &str,
) -> Result<pb::Patient, Status> {
    let request = pb::ArchivePatientRequest {
        id: id.into(),
        etag: etag.into(),
    };
    app.client
        .archive_patient(request)
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn update(
    app: &mut TestApp,
    patient: pb::Patient,
    mask: &[&str],
) -> Result<pb::Patient, Status> {
    app.client
        .update_patient(pb::UpdatePatientRequest {
            patient: Some(patient),
            update_mask: Some(FieldMask {
                paths: mask.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}
