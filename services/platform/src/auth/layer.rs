//! The one authorisation layer: a tower layer in the server shell that sees
//! each RPC's path before its body is read, authenticates the caller,
//! checks the policy table, requires a purpose of use where patient data is
//! touched, and puts the verified [`Principal`] in the request's extensions.
//! A refused call never reaches a handler: `UNAUTHENTICATED` for missing or
//! bad credentials, `PERMISSION_DENIED` for a role the table does not allow,
//! `INVALID_ARGUMENT` for a missing or unknown purpose.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use tonic::Status;

use super::jwt::Verifier;
use super::policy::{Access, Policy, Rule};
use super::{Credential, PURPOSE_HEADER, Principal, Purpose, REASON_HEADER};
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
}

impl AuthLayer {
    pub fn new(policy: Policy, authenticator: Authenticator) -> Self {
        Self {
            state: Arc::new(State {
                policy,
                authenticator,
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
            match state.admit(&mut request).await {
                Ok(()) => inner.call(request).await,
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

impl State {
    /// Lets `request` through with its principal in its extensions, or says
    /// why not.
    async fn admit<B>(&self, request: &mut http::Request<B>) -> Result<(), Status> {
        for header in UNTRUSTED_HEADERS {
            request.headers_mut().remove(header);
        }
        let path = request.uri().path().to_owned();
        let access = self.policy.lookup(&path);
        if access == Access::Open {
            return Ok(());
        }
        let mut principal = self
            .authenticator
            .authenticate(request.headers(), request.extensions())
            .await?;
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
                    return Err(denied(&rule));
                }
                if rule.patient_data {
                    read_purpose(&mut principal, request.headers())?;
                }
            }
        }
        request.extensions_mut().insert(principal);
        Ok(())
    }
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
