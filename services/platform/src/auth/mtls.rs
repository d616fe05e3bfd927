//! Services by mutual TLS: a client certificate, verified during the
//! handshake against `server.tls.client_ca_file`, names a service principal
//! by its subject alternative name.
//!
//! The subject is the certificate's first DNS name (`scheduling.medsec.internal`),
//! or, when it has none, its first URI (a SPIFFE ID such as
//! `spiffe://medsec.internal/scheduling`). Other names, and the subject
//! distinguished name, are not read: the SAN is what issuers put the
//! service's identity in and what clients check. The principal holds
//! [`Role::Service`] and nothing else.
//!
//! The certificate comes from the [`TlsConnectInfo`] tonic's TLS acceptor
//! puts in every request's extensions. The acceptor only asks for a
//! certificate when a client CA is configured, and a certificate it hands on
//! has already been verified against that CA (chain, validity period, and
//! client-authentication usage); one from another CA ends the handshake.

use tonic::Status;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use x509_parser::extensions::GeneralName;

use super::{Credential, Principal, Role};

/// Longest subject alternative name taken as a service's name.
const MAX_NAME_CHARS: usize = 255;

/// The service principal of the client certificate verified on `extensions`'
/// connection: `None` for a plaintext connection or a TLS client that sent
/// no certificate; an error for a certificate that names no service.
pub fn service_principal(extensions: &http::Extensions) -> Option<Result<Principal, Status>> {
    let info = extensions.get::<TlsConnectInfo<TcpConnectInfo>>()?;
    let certificates = info.peer_certs()?;
    let leaf = certificates.first()?;
    Some(subject_of(leaf.as_ref()).map(|subject| Principal {
        subject,
        roles: vec![Role::Service],
        credential: Credential::Certificate,
        purpose: None,
        reason: None,
    }))
}

/// The service name a DER certificate carries: its first DNS name, else its
/// first URI.
pub fn subject_of(der: &[u8]) -> Result<String, Status> {
    let refused = |why: &str| {
        tracing::info!(why, "client certificate names no service");
        Status::unauthenticated(
            "the client certificate names no service (a DNS or URI subject alternative name)",
        )
    };
    let (_, certificate) =
        x509_parser::parse_x509_certificate(der).map_err(|_| refused("unreadable certificate"))?;
    let names = certificate
        .subject_alternative_name()
        .map_err(|_| refused("unreadable subject alternative names"))?
        .map(|extension| extension.value.general_names.clone())
        .unwrap_or_default();
    let dns = names.iter().find_map(|name| match name {
        GeneralName::DNSName(dns) => Some(*dns),
        _ => None,
    });
    let uri = names.iter().find_map(|name| match name {
        GeneralName::URI(uri) => Some(*uri),
        _ => None,
    });
    let name = dns.or(uri).ok_or_else(|| refused("no dns or uri name"))?;
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || !name.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(refused("malformed name"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair, SanType};
    use tonic::Code;

    use super::subject_of;

    fn certificate(names: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = names;
        params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec()
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().unwrap())
    }

    fn uri(name: &str) -> SanType {
        SanType::URI(name.try_into().unwrap())
    }

    #[test]
    fn the_first_dns_name_is_the_service() {
        let der = certificate(vec![
            uri("spiffe://medsec.internal/billing"),
            dns("scheduling.medsec.internal"),
            dns("scheduling"),
        ]);
        assert_eq!(subject_of(&der).unwrap(), "scheduling.medsec.internal");
    }

    #[test]
    fn a_uri_names_the_service_when_there_is_no_dns_name() {
        let der = certificate(vec![
            SanType::IpAddress([10, 0, 0, 1].into()),
            uri("spiffe://medsec.internal/billing"),
        ]);
        assert_eq!(
            subject_of(&der).unwrap(),
            "spiffe://medsec.internal/billing"
        );
    }

    #[test]
    fn a_certificate_naming_no_service_is_unauthenticated() {
        for names in [vec![], vec![SanType::IpAddress([10, 0, 0, 1].into())]] {
            let status = subject_of(&certificate(names)).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        }
        let status = subject_of(b"not a certificate").unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
}
