//! The one authorisation layer: a tower layer in the server shell that sees
//! each RPC's path before its body is read, authenticates the caller,
//! checks the policy table, requires a purpose of use where patient data is
//! touched, and puts the verified [`Principal`] in the request's extensions.
//! A refused call never reaches a handler: `UNAUTHENTICATED` for missing or
//! bad credentials, `PERMISSION_DENIED` for a role the table does not allow,
//! `INVALID_ARGUMENT` for a missing or unknown purpose.
//!
//! Calls on patient data are audited here as well as in the services: a
//! refused one is recorded as `denied` (naming the subject when it proved
//! one, else `anonymous`), and an admitted one whose handler answers with an
//! error as `failed` (read from the response's `grpc-status` header: a
//! unary error is a trailers-only response), each in a transaction of its
//! own. Every admitted call also gets the [`Actor`] the trail names, in the
//! request's extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use sea_orm::DatabaseConnection;
use tonic::Status;

use super::jwt::Verifier;
use super::policy::{Access, Policy, Rule};
use super::{Credential, PURPOSE_HEADER, Principal, Purpose, REASON_HEADER};
use crate::audit::{self, Actor, Outcome};
use crate::error::ApiError;

/// Longest break-glass reason accepted.
const MAX_REASON_CHARS: usize = 500;
/// Metadata callers once used to name themselves; never believed, removed.
const UNTRUSTED_HEADERS: [&str; 2] = ["x-medsec-actor", "x-medsec-role"];

/// Authenticates callers: bearer tokens of the configured (or development)
/// issuer, and services' client certificates.
#[derive(Debug, Clone)]
pub struct Authenticator {
    verifier: Verifier,
}

impl Authenticator {
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }

    /// An authenticator that accepts no credentials: for a server that serves
    /// health checks only.
    pub fn refusing_all() -> Self {
        let keys = super::jwks::KeySet::fixed(
            &jsonwebtoken::jwk::JwkSet { keys: Vec::new() },
            jsonwebtoken::Algorithm::ES256,
        );
        Self::new(Verifier::new(
            "urn:medsec:nobody",
            "nobody",
            jsonwebtoken::Algorithm::ES256,
            "roles",
            std::time::Duration::ZERO,
            keys,
        ))
    }

    /// The principal a request proves, or why not: its bearer token when it
    /// sends one, otherwise its connection's verified client certificate
    /// (a service, [`super::mtls`]). A token wins over a certificate: it
    /// names who the call is for, and a bad one is refused rather than
    /// passed over for the connection's identity.
    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<Principal, Status> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            if let Some(caller) = extensions.get::<crate::peers::InProcessCaller>() {
                return Ok(caller.principal());
            }
            if let Some(service) = super::mtls::service_principal(extensions) {
                return service;
            }
            return Err(Status::unauthenticated(
                "a bearer token or a client certificate is required (authorization: Bearer …)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated("the authorization header is not a bearer token")
            })?;
        let verified = self.verifier.verify(token).await.map_err(|error| {
            tracing::info!(%error, "bearer token refused");
            Status::unauthenticated("the bearer token is not valid")
        })?;
        Ok(Principal {
            subject: verified.subject,
            roles: verified.roles,
            credential: Credential::Token {
                issuer: self.verifier.issuer().to_owned(),
            },
            purpose: verified.purpose,
            reason: None,
        })
    }
}

/// Adds the authorisation check in front of every service of a server.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    policy: Policy,
    authenticator: Authenticator,
    /// Where refused and failed calls on patient data are recorded.
    trail: DatabaseConnection,
}

impl AuthLayer {
    /// Checks calls against `policy`, authenticating callers with
    /// `authenticator`, and records refused and failed calls on patient
    /// data in the audit trail of `trail`.
    pub fn new(policy: Policy, authenticator: Authenticator, trail: DatabaseConnection) -> Self {
        Self {
            state: Arc::new(State {
                policy,
                authenticator,
                trail,
            }),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authorise<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorise {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authorise<S> {
    inner: S,
    state: Arc<State>,
}

impl<S, B> tower::Service<http::Request<B>> for Authorise<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The readied service serves this call; its clone waits for the next.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let state = self.state.clone();
        Box::pin(async move {
            let audited = match state.admit(&mut request).await {
                Ok(audited) => audited,
                Err(status) => return Ok(status.into_http()),
            };
            let response = inner.call(request).await?;
            if let Some(actor) = audited
                && failed(&response)
            {
                state.record(&actor, Outcome::Failed).await;
            }
            Ok(response)
        })
    }
}

impl State {
    /// Lets `request` through with its principal and its [`Actor`] in its
    /// extensions, or says why not; a refused call on patient data is
    /// recorded as denied. Answers the actor of an admitted call on patient
    /// data, whose failure is to be recorded.
    async fn admit<B>(&self, request: &mut http::Request<B>) -> Result<Option<Actor>, Status> {
        for header in UNTRUSTED_HEADERS {
            request.headers_mut().remove(header);
        }
        let path = request.uri().path().to_owned();
        let access = self.policy.lookup(&path);
        if access == Access::Open {
            return Ok(None);
        }
        let patient_data = matches!(access, Access::Rule(rule) if rule.patient_data);
        let authenticated = self
            .authenticator
            .authenticate(request.headers(), request.extensions())
            .await;
        let mut principal = match authenticated {
            Ok(principal) => principal,
            Err(status) => {
                let actor = Actor::for_call(None, &path, request.headers());
                return Err(self.refuse(patient_data, &actor, status).await);
            }
        };
        match access {
            Access::Open => {}
            Access::AnyRole if principal.roles.is_empty() => {
                return Err(Status::permission_denied("a role is required"));
            }
            Access::AnyRole => {}
            Access::Unlisted => {
                tracing::warn!(%path, subject = %principal.subject, "call to an RPC missing from the policy table");
                return Err(Status::permission_denied(format!(
                    "no role may call {path}"
                )));
            }
            Access::Rule(rule) => {
                if !principal.has_any(rule.roles) {
                    let actor = Actor::for_call(Some(&principal), &path, request.headers());
                    return Err(self.refuse(rule.patient_data, &actor, denied(&rule)).await);
                }
                if rule.patient_data
                    && let Err(status) = read_purpose(&mut principal, request.headers())
                {
                    let actor = Actor::for_call(Some(&principal), &path, request.headers());
                    return Err(self.refuse(true, &actor, status).await);
                }
            }
        }
        let actor = Actor::for_call(Some(&principal), &path, request.headers());
        request.extensions_mut().insert(actor.clone());
        request.extensions_mut().insert(principal);
        Ok(patient_data.then_some(actor))
    }

    /// `status`, after recording the refusal when the call was on patient
    /// data.
    async fn refuse(&self, patient_data: bool, actor: &Actor, status: Status) -> Status {
        if patient_data {
            self.record(actor, Outcome::Denied).await;
        }
        status
    }

    /// Records a call that did not happen as asked, in a transaction of its
    /// own; the caller's answer does not wait on whether the trail could be
    /// written, but an operator hears of it.
    async fn record(&self, actor: &Actor, outcome: Outcome) {
        let resource = format!("rpc/{}/{}", actor.service, actor.method);
        if let Err(error) = audit::record_call(&self.trail, actor, outcome, &resource).await {
            tracing::error!(
                %error,
                outcome = outcome.as_str(),
                method = %actor.method,
                subject = %actor.subject,
                "cannot record a call in the audit trail"
            );
        }
    }
}

/// Whether a handler answered with an error: a non-OK `grpc-status` in the
/// response's headers (a successful unary response carries its status in
/// the trailers).
fn failed(response: &http::Response<tonic::body::Body>) -> bool {
    response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|code| code != "0")
}

fn denied(rule: &Rule) -> Status {
    let roles: Vec<&str> = rule.roles.iter().map(|role| role.as_str()).collect();
    Status::permission_denied(format!(
        "{} needs one of the roles {}",
        rule.method,
        roles.join(", ")
    ))
}

/// The purpose of use, from the token's claim or the `x-medsec-purpose`
/// header, and the reason break-glass access needs.
fn read_purpose(principal: &mut Principal, headers: &http::HeaderMap) -> Result<(), Status> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let purpose = match (principal.purpose, header(PURPOSE_HEADER)) {
        (_, Some(text)) => Purpose::parse(text).ok_or_else(|| {
            Status::from(ApiError::invalid(
                PURPOSE_HEADER,
                format!("must be one of {}", purposes()),
            ))
        })?,
        (Some(claimed), None) => claimed,
        (None, None) => {
            return Err(Status::from(ApiError::invalid(
                PURPOSE_HEADER,
                format!("is required to read patient data: one of {}", purposes()),
            )));
        }
    };
    if purpose == Purpose::BreakGlass {
        let reason = header(REASON_HEADER).ok_or_else(|| {
            Status::from(ApiError::invalid(
                REASON_HEADER,
                "is required for break-glass access",
            ))
        })?;
        if reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
            return Err(Status::from(ApiError::invalid(
                REASON_HEADER,
                "must be one line of at most 500 characters",
            )));
        }
        principal.reason = Some(reason.to_owned());
    }
    principal.purpose = Some(purpose);
    Ok(())
}

fn purposes() -> String {
    Purpose::ALL
        .iter()
        .map(|purpose| purpose.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
