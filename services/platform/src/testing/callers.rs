//! Test callers: who a test calls as, and a channel carrying their token and
//! purpose, as a real client's calls would.

use tonic::Status;
use tonic::transport::Channel;

use crate::auth::dev_issuer::DevIssuer;
use crate::auth::{Purpose, Role};
use crate::config::Settings;

/// `channel` to a server on the database `settings` name, carrying a token
/// of that server's development issuer for a caller with every staff role.
pub async fn authorised_channel(settings: &Settings, channel: Channel) -> AuthChannel {
    let db = crate::db::connect(&settings.database)
        .await
        .expect("connect to the test database");
    let issuer = DevIssuer::open(&db).await.expect("the development issuer");
    db.close().await.ok();
    Caller::everyone().channel(&issuer, &settings.auth.audience, channel)
}

/// Who a test calls as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub roles: Vec<Role>,
    /// Sent as `x-medsec-purpose` when set.
    pub purpose: Option<Purpose>,
    /// Sent as `x-medsec-reason` when set.
    pub reason: Option<String>,
}

impl Caller {
    /// `subject` with `roles`, reading for direct care.
    pub fn staff(subject: &str, roles: &[Role]) -> Self {
        Self {
            subject: subject.to_owned(),
            roles: roles.to_vec(),
            purpose: Some(Purpose::DirectCare),
            reason: None,
        }
    }

    /// A caller holding every staff role.
    pub fn everyone() -> Self {
        Self::staff("test.user", &Role::STAFF)
    }

    /// A token `issuer` signs for this caller at `audience`, valid for an
    /// hour; the purpose goes in the header, not the token.
    pub fn token(&self, issuer: &DevIssuer, audience: &str) -> String {
        issuer
            .mint(
                &self.subject,
                &self.roles,
                audience,
                std::time::Duration::from_secs(3600),
                None,
            )
            .expect("mint a token")
    }

    /// `channel` carrying this caller's token from `issuer`, and its purpose
    /// and reason, on every call.
    pub fn channel(&self, issuer: &DevIssuer, audience: &str, channel: Channel) -> AuthChannel {
        with_token(channel, &self.token(issuer, audience), self)
    }
}

/// A channel that adds credentials to every call.
pub type AuthChannel = tonic::service::interceptor::InterceptedService<Channel, Credentials>;

/// The metadata a caller sends: its bearer token, purpose and reason.
#[derive(Debug, Clone)]
pub struct Credentials {
    headers: Vec<(&'static str, tonic::metadata::AsciiMetadataValue)>,
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        for (name, value) in &self.headers {
            request.metadata_mut().insert(*name, value.clone());
        }
        Ok(request)
    }
}

/// `channel` with `token` (and `caller`'s purpose and reason) on every call.
pub fn with_token(channel: Channel, token: &str, caller: &Caller) -> AuthChannel {
    let mut headers = vec![(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    )];
    if let Some(purpose) = caller.purpose {
        headers.push((
            crate::auth::PURPOSE_HEADER,
            purpose.as_str().parse().expect("ascii"),
        ));
    }
    if let Some(reason) = &caller.reason {
        headers.push((
            crate::auth::REASON_HEADER,
            reason.parse().expect("ascii reason"),
        ));
    }
    tonic::service::interceptor::InterceptedService::new(channel, Credentials { headers })
}
