//! Certificates made at test time: a CA per test ([`TestCa`]) that issues
//! server and client certificates as PEM files in a folder of its own
//! (removed when the CA is dropped), the tonic client TLS settings to reach
//! a test server with them, and a bare handshake ([`handshake`]) that shows
//! whether the server took a connection or which alert refused it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::config::{ClientAuth, ServerTlsSettings};

/// The name test servers' certificates carry and clients check.
pub const SERVER_NAME: &str = "localhost";

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA's certificate (PEM), as a trust anchor.
    pub cert_pem: String,
    /// Where [`TestCa::cert_pem`] is written.
    pub cert_file: PathBuf,
    dir: PathBuf,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

/// A certificate and its private key, issued by a [`TestCa`].
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The certificate's DER bytes.
    pub der: Vec<u8>,
}

impl TestCa {
    /// A new CA named `name` (its common name), with its certificate written
    /// to a fresh folder.
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("medsec-tls-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("make the certificates' folder");
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("a self-signed CA");
        let cert_file = dir.join("ca.crt");
        std::fs::write(&cert_file, cert.pem()).expect("write the CA certificate");
        Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            cert_file,
            dir,
        }
    }

    /// A server certificate for [`SERVER_NAME`] and 127.0.0.1.
    pub fn server_cert(&self) -> Leaf {
        self.server_cert_named("server")
    }

    /// As [`TestCa::server_cert`], written as `stem.crt` and `stem.key`.
    pub fn server_cert_named(&self, stem: &str) -> Leaf {
        self.issue(
            stem,
            vec![
                SanType::DnsName(SERVER_NAME.try_into().expect("ia5 name")),
                SanType::IpAddress([127, 0, 0, 1].into()),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate naming a service by the DNS name `dns`.
    pub fn service_cert(&self, dns: &str) -> Leaf {
        self.client_cert(dns, &[dns], &[])
    }

    /// A client certificate with these DNS and URI subject alternative
    /// names, written as `stem.crt` and `stem.key`.
    pub fn client_cert(&self, stem: &str, dns: &[&str], uris: &[&str]) -> Leaf {
        let names = dns
            .iter()
            .map(|name| SanType::DnsName((*name).try_into().expect("ia5 name")))
            .chain(
                uris.iter()
                    .map(|uri| SanType::URI((*uri).try_into().expect("ia5 uri"))),
            )
            .collect();
        self.issue(stem, names, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, stem: &str, names: Vec<SanType>, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().expect("a leaf key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
        params.subject_alt_names = names;
        params.distinguished_name.push(DnType::CommonName, stem);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).expect("sign a leaf");
        let cert_file = self.dir.join(format!("{stem}.crt"));
        let key_file = self.dir.join(format!("{stem}.key"));
        std::fs::write(&cert_file, cert.pem()).expect("write a certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("write a key");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_file,
            key_file,
            der: cert.der().to_vec(),
        }
    }

    /// The CA as a trust anchor for a tonic client or server.
    pub fn certificate(&self) -> Certificate {
        Certificate::from_pem(&self.cert_pem)
    }

    /// `[server.tls]` for a server holding `server` (issued by this CA) that
    /// takes client certificates from `clients` when given.
    pub fn server_tls(
        &self,
        server: &Leaf,
        clients: Option<&TestCa>,
        client_auth: ClientAuth,
    ) -> ServerTlsSettings {
        ServerTlsSettings {
            cert_file: server.cert_file.clone(),
            key_file: server.key_file.clone(),
            client_ca_file: clients.map(|ca| ca.cert_file.clone()),
            client_auth,
            handshake_timeout_secs: 10,
        }
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Leaf {
    /// The certificate and key as a tonic identity.
    pub fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }
}

/// Client TLS trusting `server_ca` for [`SERVER_NAME`], presenting `client`
/// when given.
pub fn client_tls(server_ca: &TestCa, client: Option<&Leaf>) -> ClientTlsConfig {
    let config = ClientTlsConfig::new()
        .ca_certificate(server_ca.certificate())
        .domain_name(SERVER_NAME);
    match client {
        Some(leaf) => config.identity(leaf.identity()),
        None => config,
    }
}

/// A TLS channel to `addr` with `tls`, or the error that refused it.
pub async fn tls_channel(
    addr: SocketAddr,
    tls: ClientTlsConfig,
) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("https://{addr}"))
        .expect("valid uri")
        .tls_config(tls)?
        .connect()
        .await
}

/// The client's opening of an HTTP/2 connection: the preface and an empty
/// SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Connects to `addr` as a gRPC client would (TLS 1.3 or 1.2 with ALPN
/// `h2`, trusting `server_ca`, presenting `client` when given), opens HTTP/2
/// and waits for the server's first frame. `Ok` when the server took the
/// connection; otherwise the TLS error that ended it (such as the alert
/// `UnknownCA`). With TLS 1.3 the client finishes its side of the handshake
/// before the server has checked its certificate, so the server's verdict
/// arrives as the first read.
pub async fn handshake(
    addr: SocketAddr,
    server_ca: &TestCa,
    client: Option<&Leaf>,
) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server_ca.cert_pem.as_bytes()).expect("CA pem"))
        .expect("a trust anchor");
    let builder = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots);
    let mut config = match client {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).expect("pem")],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key pem"),
            )
            .expect("a client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|error| format!("tcp: {error}"))?;
        let name = ServerName::try_from(SERVER_NAME).expect("a server name");
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|error| format!("handshake: {error}"))?;
        tls.write_all(H2_PREFACE)
            .await
            .map_err(|error| format!("write: {error}"))?;
        let mut frame_header = [0u8; 9];
        tls.read_exact(&mut frame_header)
            .await
            .map_err(|error| format!("read: {error}"))?;
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}
