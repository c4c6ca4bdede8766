//! TLS for tests: a certificate authority, server and client certificates made
//! at test time (rcgen; no private key is checked in), and an HTTPS client on
//! hyper and rustls that can present a client certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio_rustls::TlsConnector;

/// A test CA and a server certificate it signed for `localhost` and 127.0.0.1.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

/// A client certificate and its key, PEM, and the SHA-256 of its DER in hex
/// (what a party is bound to).
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub sha256: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key")).expect("a CA certificate")
}

fn client_signed_by(issuer: &CertifiedIssuer<'static, KeyPair>, name: &str) -> ClientCert {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().expect("a key");
    let cert = params.signed_by(&key, issuer).expect("a client certificate");
    ClientCert {
        sha256: tir_server::certificate_sha256(cert.der()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

impl Pki {
    pub fn new() -> Pki {
        let ca = ca("tirhub test CA");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("server parameters");
        params.distinguished_name.push(DnType::CommonName, "tirhub test server");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("a key");
        let server = params.signed_by(&key, &ca).expect("a server certificate");
        Pki { ca_pem: ca.pem(), server_cert_pem: server.pem(), server_key_pem: key.serialize_pem(), ca }
    }

    /// A client certificate signed by this CA.
    pub fn client(&self, name: &str) -> ClientCert {
        client_signed_by(&self.ca, name)
    }

    /// A client certificate signed by another CA, unknown to the server.
    pub fn stranger(name: &str) -> ClientCert {
        client_signed_by(&ca("another CA"), name)
    }

    /// The server's TLS, with this CA as the client CA when `mutual`.
    pub fn server_tls(&self, mutual: bool) -> tir_server::Tls {
        let client_ca = mutual.then_some(self.ca_pem.as_bytes());
        tir_server::Tls::from_pem(self.server_cert_pem.as_bytes(), self.server_key_pem.as_bytes(), client_ca)
            .expect("the test certificates make a TLS set-up")
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

/// An HTTPS client trusting one CA, presenting `client`'s certificate if given.
/// One connection per request: each request is a fresh handshake.
pub struct Https {
    connector: TlsConnector,
    addr: SocketAddr,
}

impl Https {
    pub fn new(addr: SocketAddr, ca_pem: &str, client: Option<&ClientCert>) -> Https {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(ca.expect("a PEM CA")).expect("a usable CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some(client) => {
                let chain = CertificateDer::pem_slice_iter(client.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("a PEM certificate");
                let key = PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).expect("a PEM key");
                builder.with_client_auth_cert(chain, key).expect("a client certificate and its key")
            }
        };
        Https { connector: TlsConnector::from(Arc::new(config)), addr }
    }

    /// Sends one request with a bearer token (if any) and a JSON body (if any):
    /// the status and the JSON answer (`Value::Null` for an empty body), or
    /// why it failed (the TLS handshake refused, the connection closed).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::try_from("localhost").expect("a server name");
        let tls = self.connector.connect(name, tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| format!("HTTP: {e}"))?;
        tokio::spawn(connection);
        let mut request = hyper::Request::builder().method(method).uri(path).header("host", "localhost");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let content = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(content)).expect("a request");
        let answer = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
        let status = answer.status().as_u16();
        let bytes = answer.into_body().collect().await.map_err(|e| format!("answer body: {e}"))?.to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| format!("answer is not JSON ({e}): {bytes:?}"))?
        };
        Ok((status, json))
    }
}
