//! The gRPC listener's settings: address, deadlines, limits and TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The gRPC listener and its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Trace health checks and reflection too (off: probes every few
    /// seconds would swamp the traces; their metrics are kept either way).
    pub trace_health_and_reflection: bool,
    /// Also serve CeilingService (a no-op and a one-row insert, for the
    /// admin role and services): the stack's own ceiling that
    /// `medsec load --ceiling` measures workloads against.
    pub ceiling: bool,
    /// Deadline applied to every RPC unless the client asks for a shorter one.
    pub request_timeout_secs: u64,
    /// Largest message accepted or sent, in bytes, by the shell's own
    /// services (health, reflection); each medsec service has its own limit.
    pub max_message_bytes: usize,
    /// How long health reports NOT_SERVING before the listener closes, so load
    /// balancers stop routing here before in-flight requests are drained.
    pub shutdown_grace_millis: u64,
    /// Longest the drain of in-flight requests may take at shutdown; what is
    /// still running then is cut off.
    pub drain_timeout_secs: u64,
    /// RPCs in flight in this process at most; beyond, a call is refused at
    /// once with RESOURCE_EXHAUSTED (load shedding) rather than queued.
    /// Health checks are never refused.
    pub max_in_flight: usize,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// How often an idle connection is pinged, and how long a ping may go
    /// unanswered before the connection is closed.
    pub http2_keepalive_interval_secs: u64,
    pub http2_keepalive_timeout_secs: u64,
    /// TCP keepalive of accepted connections.
    pub tcp_keepalive_secs: u64,
    /// A connection is closed (gracefully, after the grace) once this old, so
    /// clients reconnect and spread over replicas.
    pub max_connection_age_secs: u64,
    pub max_connection_age_grace_secs: u64,
    /// How long a create's `request_id` is remembered: a retry within it
    /// answers with what the first call made; older keys are purged in the
    /// background, and a retry after that creates again.
    pub request_id_retention_hours: u64,
    /// The key page tokens are signed with (any long random text), the same
    /// for every replica of a service so each accepts the others' tokens.
    /// Unset: a random key per process, so a token resumes only on the
    /// replica that issued it. Kept out of logs.
    #[serde(default)]
    pub page_token_key: Option<secrecy::SecretString>,
    /// TLS, and client certificates for services (`[server.tls]`); unset:
    /// plaintext, for loopback development.
    #[serde(default)]
    pub tls: Option<ServerTlsSettings>,
}

/// The server's certificate and, for mutual TLS, the CA that issues the
/// services' client certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsSettings {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// The CA (PEM; several certificates allowed) whose client certificates
    /// identify services. Unset: no client certificate is asked for.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Whether a client certificate is required, or optional so staff with
    /// bearer tokens can connect without one. Either way a certificate that
    /// is sent must come from `client_ca_file`.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Longest a TLS handshake may take before the connection is dropped.
    #[serde(default = "default_handshake_timeout_secs")]
    pub handshake_timeout_secs: u64,
}

fn default_handshake_timeout_secs() -> u64 {
    10
}

impl ServerTlsSettings {
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }
}

/// Whether a TLS client must present a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Clients may connect without a certificate (staff with bearer tokens);
    /// one that is sent is still verified.
    #[default]
    Optional,
    /// Every client presents a certificate from the client CA: service
    /// traffic only.
    Required,
}

impl ServerSettings {
    pub fn request_id_retention(&self) -> Duration {
        Duration::from_secs(self.request_id_retention_hours.saturating_mul(3600))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_millis)
    }
}
