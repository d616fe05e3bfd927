//! Who may call what, for every RPC of the suite, walked from the compiled
//! descriptor set and the policy table rather than listed by hand: no token
//! or a bad one is UNAUTHENTICATED, a role the table does not name is
//! PERMISSION_DENIED (and, on patient data, an audit event with outcome
//! denied), a role it names gets through to the handler; patient data needs
//! a purpose of use, break-glass a reason; health is open and reflection
//! needs a role.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use medsec::ServiceName;
use medsec_platform::audit::entities::event;
use medsec_platform::auth::dev_issuer::{DEV_ISSUER, DevIssuer};
use medsec_platform::auth::policy::Policy;
use medsec_platform::auth::{Purpose, Role};
use medsec_platform::both_backends;
use medsec_platform::testing::{
    Backend, Caller, TestDatabase, call_raw, violated_fields, with_token,
};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::json;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::descriptors::described_paths;
use crate::harness::{Suite, start};

both_backends!(
    every_rpc_refuses_a_caller_without_a_valid_token,
    every_rpc_admits_exactly_the_roles_its_policy_names,
    patient_data_needs_a_purpose_and_break_glass_a_reason,
    health_is_open_and_reflection_needs_a_role,
);

/// The suite's whole policy table.
fn policy() -> Policy {
    Policy::new(medsec::policies(), false)
}

#[test]
fn every_method_in_the_descriptor_set_has_a_policy_entry() {
    let described = described_paths();
    assert!(described.len() >= 100, "{} methods", described.len());
    let policy = policy();
    let listed: BTreeSet<String> = policy.rules().map(|(path, _)| path.to_owned()).collect();
    let missing: Vec<_> = described.difference(&listed).collect();
    assert!(missing.is_empty(), "RPCs with no policy entry: {missing:?}");
    let stale: Vec<_> = listed.difference(&described).collect();
    assert!(stale.is_empty(), "policy entries for no RPC: {stale:?}");
    for (path, rule) in policy.rules() {
        assert!(!rule.roles.is_empty(), "{path} names no role");
    }
}

/// Tokens that must be refused, each with what is wrong with it.
fn bad_tokens(suite: &Suite) -> Vec<(&'static str, String)> {
    let now = chrono::Utc::now().timestamp();
    let claims = |changes: serde_json::Value| {
        let mut claims = json!({
            "iss": DEV_ISSUER,
            "aud": suite.audience,
            "sub": "mallory",
            "roles": ["secretary", "clinician", "admin", "auditor", "billing_clerk",
                      "finance_approver", "waiting_list_manager"],
            "iat": now,
            "exp": now + 600,
        });
        for (key, value) in changes.as_object().unwrap() {
            claims[key] = value.clone();
        }
        claims
    };
    let stranger = DevIssuer::ephemeral().unwrap();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    let hmac = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(json!({})),
        &jsonwebtoken::EncodingKey::from_secret(b"guessable"),
    )
    .unwrap();
    vec![
        (
            "expired",
            suite
                .issuer
                .sign(&claims(json!({"exp": now - 3600})))
                .unwrap(),
        ),
        (
            "for another audience",
            suite
                .issuer
                .sign(&claims(json!({"aud": "someone-else"})))
                .unwrap(),
        ),
        (
            "from another issuer",
            suite
                .issuer
                .sign(&claims(json!({"iss": "https://evil.example"})))
                .unwrap(),
        ),
        (
            "signed by a stranger's key",
            stranger.sign(&claims(json!({}))).unwrap(),
        ),
        ("unsigned (alg none)", unsigned),
        ("signed with HMAC", hmac),
        ("not a token", "garbage".to_owned()),
    ]
}

async fn every_rpc_refuses_a_caller_without_a_valid_token(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    let caller = Caller::everyone();
    let bad = bad_tokens(&suite);
    for path in described_paths() {
        let status = call_raw(suite.plain.clone(), &path, Vec::new())
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{path} without a token"
        );
        for (what, token) in &bad {
            let channel = with_token(suite.plain.clone(), token, &caller);
            let status = call_raw(channel, &path, Vec::new()).await.unwrap_err();
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{path} with a token {what}"
            );
        }
    }
    suite.stop().await;
}

async fn every_rpc_admits_exactly_the_roles_its_policy_names(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    let channels: Vec<_> = Role::STAFF
        .into_iter()
        .map(|role| {
            let caller = Caller::staff(&format!("only.{role}"), &[role]);
            (role, suite.channel_as(&caller))
        })
        .collect();
    let policy = policy();
    let mut rules: Vec<_> = policy.rules().collect();
    rules.sort_by_key(|(path, _)| *path);
    // Every refusal of a call on patient data leaves a denied event.
    let mut refused = BTreeSet::new();
    for (path, rule) in rules {
        for (role, channel) in &channels {
            let answer = call_raw(channel.clone(), path, Vec::new()).await;
            let code = answer.as_ref().err().map_or(Code::Ok, tonic::Status::code);
            if rule.roles.contains(role) {
                assert!(
                    !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                    "{path} should admit {role}, answered {answer:?}"
                );
            } else {
                assert_eq!(code, Code::PermissionDenied, "{path} should refuse {role}");
                if rule.patient_data {
                    refused.insert((rule.method.to_owned(), format!("only.{role}")));
                }
            }
        }
    }
    suite.stop().await;
    let db = database.connect().await;
    let denied: BTreeSet<(String, String)> = event::Entity::find()
        .filter(event::Column::Outcome.eq("denied"))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|event| (event.method, event.subject))
        .collect();
    assert!(!refused.is_empty());
    assert_eq!(
        denied, refused,
        "one denied event per refused call on patient data"
    );
    db.close().await.ok();
}

async fn patient_data_needs_a_purpose_and_break_glass_a_reason(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    let list_patients = "/medsec.records.v1.RecordsService/ListPatients";
    let secretary = |purpose: Option<Purpose>, reason: Option<&str>| Caller {
        subject: "s.jones".to_owned(),
        roles: vec![Role::Secretary],
        purpose,
        reason: reason.map(str::to_owned),
    };

    let status = call_raw(
        suite.channel_as(&secretary(None, None)),
        list_patients,
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["x-medsec-purpose"]);

    let status = {
        let token = secretary(None, None).token(&suite.issuer, &suite.audience);
        let mut request =
            tonic::Request::new(medsec_proto::records::v1::ListPatientsRequest::default());
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
            .metadata_mut()
            .insert("x-medsec-purpose", "curiosity".parse().unwrap());
        medsec_proto::records::v1::records_service_client::RecordsServiceClient::new(
            suite.plain.clone(),
        )
        .list_patients(request)
        .await
        .unwrap_err()
    };
    assert_eq!(violated_fields(&status), ["x-medsec-purpose"]);

    let status = call_raw(
        suite.channel_as(&secretary(Some(Purpose::BreakGlass), None)),
        list_patients,
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["x-medsec-reason"]);

    call_raw(
        suite.channel_as(&secretary(
            Some(Purpose::BreakGlass),
            Some("unconscious in ED"),
        )),
        list_patients,
        Vec::new(),
    )
    .await
    .expect("break-glass with a reason gets through");

    // A purpose carried in the token serves as well as the header.
    let token = suite
        .issuer
        .mint(
            "s.jones",
            &[Role::Secretary],
            &suite.audience,
            std::time::Duration::from_secs(600),
            Some(Purpose::Administration),
        )
        .unwrap();
    call_raw(
        with_token(suite.plain.clone(), &token, &secretary(None, None)),
        list_patients,
        Vec::new(),
    )
    .await
    .expect("the purpose claim is enough");

    // Configuration touches no patient: no purpose needed.
    let admin = Caller {
        purpose: None,
        ..Caller::staff("a.admin", &[Role::Admin])
    };
    call_raw(
        suite.channel_as(&admin),
        "/medsec.records.v1.RecordsService/ListTestTypes",
        Vec::new(),
    )
    .await
    .expect("no purpose needed for the catalogue");
    suite.stop().await;
}

async fn health_is_open_and_reflection_needs_a_role(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    HealthClient::new(suite.plain.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health needs no credentials");
    for path in [
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ] {
        let status = call_raw(suite.plain.clone(), path, Vec::new())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{path}");
        let roleless = suite.channel_as(&Caller::staff("nobody", &[]));
        let status = call_raw(roleless, path, Vec::new()).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{path}");
    }
    suite.stop().await;
}

/// The role table a service's README shows, rendered from its policy.
fn role_table(service: ServiceName) -> String {
    let mut table = String::from(
        "| RPC | roles allowed | patient data (purpose of use required; every call audited, denials too) |\n|---|---|---|\n",
    );
    for rule in service.policy().rules {
        let roles: Vec<&str> = rule.roles.iter().map(|role| role.as_str()).collect();
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            rule.method,
            roles.join(", "),
            if rule.patient_data { "yes" } else { "no" }
        ));
    }
    table
}

/// `MEDSEC_BLESS=1 cargo test -p medsec-tests --test e2e readme` rewrites the
/// tables from the policy.
#[test]
fn each_service_readme_shows_its_policy_table() {
    for service in ServiceName::ALL {
        let name = format!("{service:?}").to_lowercase();
        let path = format!(
            "{}/../services/{name}/README.md",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut readme = std::fs::read_to_string(&path).unwrap();
        let expected = role_table(service);
        if std::env::var_os("MEDSEC_BLESS").is_some()
            && let Some((head, rest)) = readme.split_once("<!-- roles:begin -->\n")
            && let Some((_, tail)) = rest.split_once("<!-- roles:end -->")
        {
            readme = format!("{head}<!-- roles:begin -->\n{expected}<!-- roles:end -->{tail}");
            std::fs::write(&path, &readme).unwrap();
        }
        let shown = readme
            .split_once("<!-- roles:begin -->\n")
            .and_then(|(_, rest)| rest.split_once("<!-- roles:end -->"))
            .map(|(table, _)| table);
        assert_eq!(
            shown,
            Some(expected.as_str()),
            "{path} should show, between <!-- roles:begin --> and <!-- roles:end -->:\n{expected}"
        );
    }
}
