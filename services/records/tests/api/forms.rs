use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, violated_fields};
use medsec_proto::records::v1 as pb;
use pb::FormResponseStatus::{Completed, InProgress};
use pb::answer::Value;
use tonic::{Code, Status};

use crate::helpers::{TestApp, spawn_app};

both_backends!(
    templates_are_versioned_and_never_change,
    a_response_is_validated_completed_and_amended,
    every_bad_answer_is_reported_together_and_nothing_stored,
    too_many_items_options_or_answers_are_refused_unread,
);

fn item(link_id: &str, item_type: pb::ItemType, required: bool) -> pb::FormItem {
    pb::FormItem {
        link_id: link_id.into(),
        text: format!("About {link_id}?"),
        r#type: item_type as i32,
        required,
        ..Default::default()
    }
}

fn intake_items() -> Vec<pb::FormItem> {
    let mut smoking = item("smoking", pb::ItemType::Choice, true);
    smoking.options = vec!["never".into(), "former".into(), "current".into()];
    let mut symptoms = item("symptoms", pb::ItemType::MultiChoice, false);
    symptoms.options = vec!["cough".into(), "fever".into(), "pain".into()];
    let mut vitals = item("vitals", pb::ItemType::Group, false);
    vitals.items = vec![
        item("weight_kg", pb::ItemType::Decimal, true),
        item("children", pb::ItemType::Integer, false),
    ];
    vec![
        item("reason", pb::ItemType::Text, true),
        item("pregnant", pb::ItemType::Boolean, false),
        item("last_period", pb::ItemType::Date, false),
        smoking,
        symptoms,
        vitals,
    ]
}

async fn template(app: &mut TestApp) -> pb::FormTemplate {
    app.client
        .create_form_template(pb::CreateFormTemplateRequest {
            template: Some(pb::FormTemplate {
                title: "New patient intake".into(),
                items: intake_items(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn answer(link_id: &str, value: Value) -> pb::Answer {
    pb::Answer {
        link_id: link_id.into(),
        value: Some(value),
    }
}

fn full_answers() -> Vec<pb::Answer> {
    vec![
        answer("reason", Value::Text("chest pain on exertion".into())),
        answer("pregnant", Value::Boolean(false)),
        answer("smoking", Value::Choice("former".into())),
        answer(
            "symptoms",
            Value::Choices(pb::Choices {
                values: vec!["cough".into(), "pain".into()],
            }),
        ),
        answer("weight_kg", Value::Decimal("72.5".into())),
        answer("children", Value::Integer(2)),
    ]
}

async fn templates_are_versioned_and_never_change(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let v1 = template(&mut app).await;
    assert_eq!(v1.version, 1);

    let mut items = intake_items();
    items.push(item("alcohol_units", pb::ItemType::Integer, false));
    let new_version = pb::CreateFormTemplateVersionRequest {
        template_id: v1.id.clone(),
        title: "New patient intake (2027)".into(),
        items,
        request_id: "intake-2027".into(),
    };
    let v2 = app
        .client
        .create_form_template_version(new_version.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v2.id.as_str(), v2.version), (v1.id.as_str(), 2));
    let retried = app
        .client
        .create_form_template_version(new_version)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, v2, "a retry adds no third version");

    let get = |version: i32| {
        let mut client = app.client.clone();
        let id = v1.id.clone();
        async move {
            client
                .get_form_template(pb::GetFormTemplateRequest {
                    template_id: id,
                    version,
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(get(1).await, v1, "version 1 is unchanged");
    assert_eq!(get(0).await, v2, "0 means the latest");
    let listed = app
        .client
        .list_form_templates(pb::ListFormTemplatesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.templates, std::slice::from_ref(&v2));

    let missing = app
        .client
        .get_form_template(pb::GetFormTemplateRequest {
            template_id: v1.id.clone(),
            version: 3,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let bad = app
        .client
        .create_form_template(pb::CreateFormTemplateRequest {
            template: Some(pb::FormTemplate {
                title: "Broken".into(),
                items: vec![
                    item("a", pb::ItemType::Choice, true),
                    item("a", pb::ItemType::Group, false),
                ],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&bad),
        [
            "template.items[0].options",
            "template.items[1].link_id",
            "template.items[1].items"
        ]
    );
}

async fn a_response_is_validated_completed_and_amended(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let form = template(&mut app).await;
    let patient_id = app.patient_id(1).await;
    let reason = || vec![answer("reason", Value::Text("chest pain".into()))];

    // Saved part-way: required answers are not yet enforced.
    let draft = submit(&mut app, &patient_id, &form.id, 1, InProgress, reason())
        .await
        .unwrap();
    assert_eq!(draft.status(), InProgress);
    assert_eq!(draft.revision, 1);

    // Completing requires every required answer.
    let incomplete = revise(&mut app, &draft, reason(), true).await.unwrap_err();
    assert_eq!(
        violated_fields(&incomplete),
        ["answers.smoking", "answers.weight_kg"]
    );

    let completed = revise(&mut app, &draft, full_answers(), true)
        .await
        .unwrap();
    assert_eq!(completed.status(), pb::FormResponseStatus::Completed);
    assert_eq!(completed.revision, 2);
    assert_eq!(completed.answers, full_answers());

    let mut amended_answers = full_answers();
    amended_answers[4] = answer("weight_kg", Value::Decimal("70.25".into()));
    let amended = revise(&mut app, &completed, amended_answers.clone(), false)
        .await
        .unwrap();
    assert_eq!(amended.status(), pb::FormResponseStatus::Amended);
    assert_eq!(amended.revision, 3);

    // Earlier answers stay retrievable, revision by revision.
    let revision = |n: i32| {
        let mut client = app.client.clone();
        let id = draft.id.clone();
        async move {
            client
                .get_form_response(pb::GetFormResponseRequest { id, revision: n })
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(revision(2).await.answers, full_answers());
    assert_eq!(revision(1).await.status(), InProgress);
    assert_eq!(revision(0).await.answers, amended_answers);

    let stale = revise(&mut app, &completed, full_answers(), false)
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // A second response; the list shows each at its latest revision.
    let second = submit(&mut app, &patient_id, &form.id, 1, InProgress, reason())
        .await
        .unwrap();
    let listed = responses(&mut app, &patient_id).await;
    assert_eq!(listed, vec![amended, second]);
}

async fn every_bad_answer_is_reported_together_and_nothing_stored(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let form = template(&mut app).await;
    let patient_id = app.patient_id(1).await;
    let answers = vec![
        answer("smoking", Value::Choice("sometimes".into())),
        answer(
            "symptoms",
            Value::Choices(pb::Choices {
                values: vec!["cough".into(), "itch".into()],
            }),
        ),
        answer("weight_kg", Value::Text("heavy".into())),
        answer("children", Value::Decimal("1.5".into())),
        answer("last_period", Value::Date("31/12/2025".into())),
        answer("vitals", Value::Text("group".into())),
        answer("shoe_size", Value::Integer(9)),
    ];
    let status = submit(&mut app, &patient_id, &form.id, 1, Completed, answers)
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "response.answers.smoking",
            "response.answers.symptoms",
            "response.answers.weight_kg",
            "response.answers.children",
            "response.answers.last_period",
            "response.answers.vitals",
            "response.answers[6].link_id",
            "response.answers.reason",
        ]
    );

    let wrong_version = submit(&mut app, &patient_id, &form.id, 2, InProgress, vec![])
        .await
        .unwrap_err();
    assert_eq!(wrong_version.code(), Code::NotFound);

    assert!(responses(&mut app, &patient_id).await.is_empty());
}

async fn too_many_items_options_or_answers_are_refused_unread(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut choice = item("choice", pb::ItemType::Choice, false);
    choice.options = (0..101).map(|i| format!("option {i}")).collect();
    let mut items = vec![item("q", pb::ItemType::String, false); 501];
    items[0] = choice;
    let status = app
        .client
        .create_form_template(pb::CreateFormTemplateRequest {
            template: Some(pb::FormTemplate {
                title: "Too long".into(),
                items,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    // The items are counted before any is read, so the options are not.
    assert_eq!(violated_fields(&status), ["template.items"]);

    let form = template(&mut app).await;
    let patient_id = app.patient_id(1).await;
    let answers = vec![answer("reason", Value::Text("x".into())); 501];
    let status = submit(&mut app, &patient_id, &form.id, 1, InProgress, answers)
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["response.answers"]);
    assert!(responses(&mut app, &patient_id).await.is_empty());
}

async fn submit(
    app: &mut TestApp,
    patient_id: &str,
    template_id: &str,
    template_version: i32,
    status: pb::FormResponseStatus,
    answers: Vec<pb::Answer>,
) -> Result<pb::FormResponse, Status> {
    app.client
        .submit_form_response(pb::SubmitFormResponseRequest {
            response: Some(pb::FormResponse {
                patient_id: patient_id.into(),
                template_id: template_id.into(),
                template_version,
                status: status as i32,
                answers,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Revises `response` as last read (its etag).
async fn revise(
    app: &mut TestApp,
    response: &pb::FormResponse,
    answers: Vec<pb::Answer>,
    complete: bool,
) -> Result<pb::FormResponse, Status> {
    app.client
        .revise_form_response(pb::ReviseFormResponseRequest {
            id: response.id.clone(),
            etag: response.etag.clone(),
            answers,
            complete,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn responses(app: &mut TestApp, patient_id: &str) -> Vec<pb::FormResponse> {
    app.client
        .list_form_responses(pb::ListFormResponsesRequest {
            patient_id: patient_id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .responses
}
