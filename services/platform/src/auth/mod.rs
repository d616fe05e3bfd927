//! Who is calling, and may they: staff verified by OpenID Connect bearer
//! tokens ([`jwt`]), services by mutual TLS ([`mtls`]), the roles and purpose
//! of use each carries ([`Principal`]), and the one authorisation layer
//! ([`layer`]) that checks every RPC against the policy table ([`policy`])
//! before its body is read. With no issuer configured, a development issuer
//! ([`dev_issuer`]) signs tokens for `medsec token`.

pub mod dev_issuer;
pub mod jwks;
pub mod jwt;
pub mod layer;
pub mod mtls;
pub mod policy;

use std::fmt;

pub use layer::AuthLayer;
pub use policy::{Policy, Rule};

/// What a principal may do. Staff roles come from the token's roles claim;
/// services authenticated by certificate hold [`Role::Service`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Books, registers, types: the medical secretary.
    Secretary,
    /// Writes clinical history, results specimens, dictates.
    Clinician,
    /// Charges, invoices and payments.
    BillingClerk,
    /// Voids, credit notes, budget overrides.
    FinanceApprover,
    /// Runs and commits the optimiser over the waiting list.
    WaitingListManager,
    /// Reads the audit trail.
    Auditor,
    /// Configuration: price list, staff, rota, diaries, templates.
    Admin,
    /// Another medsec service, authenticated by its client certificate.
    Service,
}

impl Role {
    /// The staff roles a token may carry (not [`Role::Service`]).
    pub const STAFF: [Self; 7] = [
        Self::Secretary,
        Self::Clinician,
        Self::BillingClerk,
        Self::FinanceApprover,
        Self::WaitingListManager,
        Self::Auditor,
        Self::Admin,
    ];

    /// Every role, in the order the READMEs' tables list them: the staff
    /// roles, then [`Role::Service`].
    pub const ALL: [Self; 8] = {
        let mut all = [Self::Service; 8];
        let mut i = 0;
        while i < Self::STAFF.len() {
            all[i] = Self::STAFF[i];
            i += 1;
        }
        all
    };

    /// The spelling in tokens, configuration and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secretary => "secretary",
            Self::Clinician => "clinician",
            Self::BillingClerk => "billing_clerk",
            Self::FinanceApprover => "finance_approver",
            Self::WaitingListManager => "waiting_list_manager",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
            Self::Service => "service",
        }
    }

    /// A staff role by its spelling; `service` is never taken from a token.
    pub fn parse_staff(text: &str) -> Option<Self> {
        Self::STAFF.into_iter().find(|role| role.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why patient data is being read: required on every RPC that touches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    DirectCare,
    Administration,
    Billing,
    Audit,
    /// Emergency access outside the usual rules: needs a reason
    /// (`x-medsec-reason`) and is flagged in the audit trail.
    BreakGlass,
}

impl Purpose {
    pub const ALL: [Self; 5] = [
        Self::DirectCare,
        Self::Administration,
        Self::Billing,
        Self::Audit,
        Self::BreakGlass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DirectCare => "direct_care",
            Self::Administration => "administration",
            Self::Billing => "billing",
            Self::Audit => "audit",
            Self::BreakGlass => "break_glass",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|purpose| purpose.as_str() == text)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A bearer token from the OpenID Connect issuer (or the development
    /// issuer).
    Token { issuer: String },
    /// A client certificate from the configured CA.
    Certificate,
}

/// The verified caller of one RPC, put in the request's extensions by the
/// authorisation layer; handlers read it with [`Principal::of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`, or the certificate's subject alternative name.
    pub subject: String,
    pub roles: Vec<Role>,
    pub credential: Credential,
    /// Why patient data is read, when the RPC reads it.
    pub purpose: Option<Purpose>,
    /// The reason given for break-glass access.
    pub reason: Option<String>,
}

impl Principal {
    /// The principal the authorisation layer verified for `request`.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&Self> {
        request.extensions().get::<Self>()
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|role| roles.contains(role))
    }

    /// Fails with `PERMISSION_DENIED` unless `request`'s principal holds
    /// `role`; for a use of an RPC the policy table cannot see (a field of
    /// the body), explained by `what`.
    pub fn require<T>(
        request: &tonic::Request<T>,
        role: Role,
        what: &str,
    ) -> Result<(), crate::ApiError> {
        match Self::of(request) {
            Some(principal) if principal.roles.contains(&role) => Ok(()),
            _ => Err(crate::ApiError::PermissionDenied(format!(
                "{what} needs the role {role}"
            ))),
        }
    }

    /// The roles as one comma-separated string, for audit events.
    pub fn roles_text(&self) -> String {
        self.roles
            .iter()
            .map(|role| role.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Request metadata naming the purpose of use, when the token has no
/// `purpose` claim.
pub const PURPOSE_HEADER: &str = "x-medsec-purpose";
/// Request metadata giving the reason for break-glass access.
pub const REASON_HEADER: &str = "x-medsec-reason";

/// Why the server cannot authenticate callers as configured.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(
        "the development issuer serves only on loopback, and {0} is not: configure \
         auth.issuer (an OpenID Connect issuer), or set auth.allow_dev_issuer for a \
         development stack"
    )]
    DevIssuerOffLoopback(std::net::SocketAddr),
    #[error(transparent)]
    Jwks(#[from] jwks::JwksError),
    #[error(transparent)]
    DevIssuer(#[from] dev_issuer::DevIssuerError),
}

/// The authenticator `settings` describe for a server listening on
/// `listen`: the configured issuer's, or the development issuer's (its key
/// kept in `db`).
pub async fn authenticator(
    settings: &crate::config::AuthSettings,
    listen: std::net::SocketAddr,
    db: &sea_orm::DatabaseConnection,
) -> Result<layer::Authenticator, AuthSetupError> {
    use crate::config::TokenAlgorithm;
    use jsonwebtoken::Algorithm;
    let leeway = std::time::Duration::from_secs(settings.leeway_secs);
    let verifier = match &settings.issuer {
        Some(issuer) => {
            let jwks_url = match &settings.jwks_url {
                Some(url) => url.clone(),
                None => jwks::discover(issuer).await?,
            };
            let algorithm = match settings.algorithm {
                TokenAlgorithm::RS256 => Algorithm::RS256,
                TokenAlgorithm::ES256 => Algorithm::ES256,
            };
            let keys = jwks::KeySet::remote(
                &jwks_url,
                algorithm,
                std::time::Duration::from_secs(settings.jwks_refresh_secs.max(1)),
                std::time::Duration::from_secs(settings.jwks_refetch_min_secs),
            )
            .await?;
            tracing::info!(%issuer, %jwks_url, "staff tokens from the configured issuer");
            jwt::Verifier::new(
                issuer,
                &settings.audience,
                algorithm,
                &settings.roles_claim,
                leeway,
                keys,
            )
        }
        None => {
            if !listen.ip().is_loopback() && !settings.allow_dev_issuer {
                return Err(AuthSetupError::DevIssuerOffLoopback(listen));
            }
            let issuer = dev_issuer::DevIssuer::open(db).await?;
            tracing::warn!(
                "no auth.issuer configured: the development issuer signs tokens \
                 (`medsec token`); configure an OpenID Connect issuer for real use"
            );
            jwt::Verifier::new(
                dev_issuer::DEV_ISSUER,
                &settings.audience,
                Algorithm::ES256,
                "roles",
                leeway,
                issuer.key_set(),
            )
        }
    };
    Ok(layer::Authenticator::new(verifier))
}
