//! Verifying staff bearer tokens: a JWT signed with the pinned algorithm
//! (RS256 or ES256; `none` and HMAC are never accepted) by a key of the
//! issuer's set, with `iss`, `aud`, `exp` and `sub` required and a small
//! leeway for clocks; roles from a configurable claim.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde_json::Value;

use super::jwks::KeySet;
use super::{Purpose, Role};

/// Why a token was refused; logged, never told to the caller in detail.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token signed with {0:?}, not the configured algorithm")]
    Algorithm(Algorithm),
    #[error("no key of the issuer has id {0:?}")]
    UnknownKey(Option<String>),
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the token has no subject")]
    NoSubject,
}

/// What a verified token says of its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub subject: String,
    /// The staff roles named in the roles claim; unknown names are ignored.
    pub roles: Vec<Role>,
    /// The `purpose` claim, when the token carries one.
    pub purpose: Option<Purpose>,
}

/// Verifies tokens of one issuer for one audience.
#[derive(Debug, Clone)]
pub struct Verifier {
    issuer: String,
    audience: String,
    algorithm: Algorithm,
    roles_claim: String,
    leeway: Duration,
    keys: KeySet,
}

impl Verifier {
    pub fn new(
        issuer: &str,
        audience: &str,
        algorithm: Algorithm,
        roles_claim: &str,
        leeway: Duration,
        keys: KeySet,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            algorithm,
            roles_claim: roles_claim.to_owned(),
            leeway,
            keys,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Checks `token`'s signature, issuer, audience and lifetime, and reads
    /// its subject, roles and purpose.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let header =
            decode_header(token).map_err(|error| TokenError::Malformed(error.to_string()))?;
        if header.alg != self.algorithm {
            return Err(TokenError::Algorithm(header.alg));
        }
        let key = self
            .keys
            .key(header.kid.as_deref())
            .await
            .ok_or(TokenError::UnknownKey(header.kid))?;
        let mut validation = Validation::new(self.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        let claims = decode::<Value>(token, &key, &validation)?.claims;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|subject| !subject.trim().is_empty())
            .ok_or(TokenError::NoSubject)?
            .to_owned();
        Ok(VerifiedToken {
            subject,
            roles: roles(&claims, &self.roles_claim),
            purpose: claims
                .get("purpose")
                .and_then(Value::as_str)
                .and_then(Purpose::parse),
        })
    }
}

/// The staff roles at `path` in `claims` (dots walk into objects, as in
/// Keycloak's `realm_access.roles`): an array of names, or one string of
/// names separated by spaces.
fn roles(claims: &Value, path: &str) -> Vec<Role> {
    let found = path
        .split('.')
        .try_fold(claims, |value, step| value.get(step));
    let names: Vec<&str> = match found {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(text)) => text.split_whitespace().collect(),
        _ => Vec::new(),
    };
    let mut roles: Vec<Role> = names.into_iter().filter_map(Role::parse_staff).collect();
    roles.sort();
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_come_from_the_configured_claim() {
        let claims = json!({
            "roles": ["secretary", "clinician", "secretary", "service", "unknown"],
            "realm_access": { "roles": ["auditor"] },
            "scope": "admin billing_clerk",
        });
        assert_eq!(roles(&claims, "roles"), [Role::Secretary, Role::Clinician]);
        assert_eq!(roles(&claims, "realm_access.roles"), [Role::Auditor]);
        assert_eq!(roles(&claims, "scope"), [Role::BillingClerk, Role::Admin]);
        assert!(roles(&claims, "missing.path").is_empty());
    }
}
