use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, violated_fields};
use medsec_proto::records::v1 as pb;
use tonic::Code;

use crate::helpers::{letter, spawn_app};

both_backends!(
    files_a_letter_and_a_new_version_with_checksums,
    refuses_bad_documents_and_oversized_content,
    lists_by_kind_and_date_and_pages,
);

async fn files_a_letter_and_a_new_version_with_checksums(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let patient_id = app.patient_id(1).await;
    let draft = b"%PDF-1.7 first draft";
    let first = app
        .file(letter(&patient_id), draft, "letter-1")
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(first.status(), pb::DocumentStatus::Current);
    assert_eq!(first.size_bytes, 20);
    assert_eq!(first.lineage_id, first.id);
    // sha256("%PDF-1.7 first draft"), computed independently.
    assert_eq!(first.sha256.len(), 64);
    assert_eq!(first.sha256, sha256_of(draft));

    let second = app
        .client
        .create_document_version(pb::CreateDocumentVersionRequest {
            document_id: first.id.clone(),
            etag: first.etag.clone(),
            title: "Discharge letter (corrected)".into(),
            content: b"%PDF-1.7 corrected".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.version, 2);
    assert_eq!(second.lineage_id, first.id);
    assert_eq!(second.supersedes_id, first.id);
    assert_eq!(second.author, "Dr A Khan", "unchanged fields carry over");
    assert_eq!(second.sha256, sha256_of(b"%PDF-1.7 corrected"));

    // The first version is still there, superseded, with its own content.
    let old = app
        .client
        .get_document_content(pb::GetDocumentContentRequest {
            id: first.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old.content, b"%PDF-1.7 first draft");
    assert_eq!(
        old.document.unwrap().status(),
        pb::DocumentStatus::Superseded
    );

    // Only the current version supersedes: a second new version of the old
    // one names its state.
    let status = app
        .client
        .create_document_version(pb::CreateDocumentVersionRequest {
            document_id: first.id.clone(),
            content: b"again".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("superseded"),
        "{}",
        status.message()
    );

    let stale = app
        .client
        .create_document_version(pb::CreateDocumentVersionRequest {
            document_id: second.id.clone(),
            etag: "99".into(),
            content: b"again".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // A retried create files nothing new.
    let retried = app
        .file(letter(&patient_id), draft, "letter-1")
        .await
        .unwrap();
    assert_eq!(retried.id, first.id);

    let listed = list(&mut app, &patient_id, |_| {}).await;
    assert_eq!(ids(&listed), [second.id.as_str()]);
    let all = list(&mut app, &patient_id, |r| r.include_superseded = true).await;
    assert_eq!(ids(&all), [first.id.as_str(), second.id.as_str()]);
}

async fn refuses_bad_documents_and_oversized_content(backend: Backend) {
    let database = medsec_platform::testing::TestDatabase::create(backend).await;
    let mut settings = database.settings();
    settings.records.max_document_bytes = 1024;
    let mut app = crate::helpers::spawn_app_with(database, settings).await;
    let patient_id = app.patient_id(1).await;

    let cases: Vec<(pb::Document, Vec<u8>, Vec<&str>)> = vec![
        (letter(&patient_id), vec![0; 1025], vec!["content"]),
        (letter(&patient_id), vec![], vec!["content"]),
        (
            pb::Document {
                title: String::new(),
                ..letter(&patient_id)
            },
            vec![1],
            vec!["document.title"],
        ),
        (
            pb::Document {
                kind: 0,
                ..letter(&patient_id)
            },
            vec![1],
            vec!["document.kind"],
        ),
        (
            pb::Document {
                content_type: "pdf".into(),
                ..letter(&patient_id)
            },
            vec![1],
            vec!["document.content_type"],
        ),
        (
            pb::Document {
                author: " ".into(),
                ..letter(&patient_id)
            },
            vec![1],
            vec!["document.author"],
        ),
        (
            pb::Document {
                patient_id: "x".into(),
                ..letter(&patient_id)
            },
            vec![1],
            vec!["document.patient_id"],
        ),
    ];
    for (document, content, expected) in cases {
        let status = app.file(document, &content, "").await.unwrap_err();
        assert_eq!(violated_fields(&status), expected);
    }
    let too_big = app
        .file(letter(&patient_id), &[0; 2048], "")
        .await
        .unwrap_err();
    assert!(
        too_big.message().contains("limit is 1024"),
        "{}",
        too_big.message()
    );

    let unknown_patient = app
        .file(letter("0190b9a4-7c1e-7000-8000-000000000000"), &[1], "")
        .await
        .unwrap_err();
    assert_eq!(unknown_patient.code(), Code::NotFound);
    assert!(
        list(&mut app, &patient_id, |r| r.include_superseded = true)
            .await
            .documents
            .is_empty()
    );
}

async fn lists_by_kind_and_date_and_pages(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let patient_id = app.patient_id(1).await;
    let other = app.patient_id(2).await;
    let mut created = Vec::new();
    for (n, kind) in [
        pb::DocumentKind::Letter,
        pb::DocumentKind::Result,
        pb::DocumentKind::Letter,
        pb::DocumentKind::Chart,
    ]
    .into_iter()
    .enumerate()
    {
        let document = pb::Document {
            kind: kind as i32,
            title: format!("doc {n}"),
            ..letter(&patient_id)
        };
        let filed = app.file(document, &[n as u8 + 1], "").await.unwrap();
        created.push(filed.id);
    }
    app.file(letter(&other), &[9], "").await.unwrap();

    let letters = list(&mut app, &patient_id, |r| {
        r.kind = pb::DocumentKind::Letter as i32
    })
    .await;
    assert_eq!(ids(&letters), [created[0].as_str(), created[2].as_str()]);

    let today = medsec_platform::time::format_civil_date(medsec_platform::time::today_in_london());
    let filed_today = list(&mut app, &patient_id, |r| {
        r.filed_from = today.clone();
        r.filed_to = today.clone();
    })
    .await;
    assert_eq!(filed_today.documents.len(), 4);
    let before = list(&mut app, &patient_id, |r| r.filed_to = "2020-01-01".into()).await;
    assert!(before.documents.is_empty());

    let first = list(&mut app, &patient_id, |r| r.page_size = 3).await;
    assert_eq!(first.documents.len(), 3);
    let rest = list(&mut app, &patient_id, |r| {
        r.page_size = 3;
        r.page_token = first.next_page_token.clone();
    })
    .await;
    assert_eq!(ids(&rest), [created[3].as_str()]);
    assert!(rest.next_page_token.is_empty());

    let status = app
        .client
        .list_documents(pb::ListDocumentsRequest {
            patient_id: patient_id.clone(),
            filed_from: "2026-02-01".into(),
            filed_to: "2026-01-01".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["filed_to"]);
}

async fn list(
    app: &mut crate::helpers::TestApp,
    patient_id: &str,
    change: impl FnOnce(&mut pb::ListDocumentsRequest),
) -> pb::ListDocumentsResponse {
    let mut request = pb::ListDocumentsRequest {
        patient_id: patient_id.into(),
        ..Default::default()
    };
    change(&mut request);
    app.client
        .list_documents(request)
        .await
        .unwrap()
        .into_inner()
}

fn ids(page: &pb::ListDocumentsResponse) -> Vec<&str> {
    page.documents.iter().map(|d| d.id.as_str()).collect()
}

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
