//! TLS for `serve` (rustls, ring provider), and mutual TLS: with a client CA,
//! clients may present a certificate signed by it, and a party bound to a
//! certificate (its SHA-256, `PUT /v1/admin/parties/{id}/certificate`) is
//! authenticated only over a connection that presented that certificate.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// The server's TLS: made once at start from PEM files, shared by every connection.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// Why the TLS files cannot be used: the file, and the reason.
#[derive(Debug)]
pub struct TlsError {
    /// The file at fault; `None` when the fault is between them (a key that does not match the certificate).
    pub file: Option<PathBuf>,
    pub reason: String,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: {}", file.display(), self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for TlsError {}

fn fault(file: &Path, reason: impl fmt::Display) -> TlsError {
    TlsError { file: Some(file.to_owned()), reason: reason.to_string() }
}

fn read(file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|e| fault(file, format!("cannot read: {e}")))
}

/// The CA certificates of a PEM bundle as trust anchors; a certificate that
/// is not one names the file.
fn ca_roots(file: &Path, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in certificates(file, pem, "CA certificate")? {
        roots.add(ca).map_err(|e| fault(file, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn certificates(file: &Path, pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fault(file, format!("not a PEM {what}: {e}")))?;
    if certificates.is_empty() {
        return Err(fault(file, format!("no {what} in it (a PEM block \"BEGIN CERTIFICATE\" is expected)")));
    }
    Ok(certificates)
}

impl Tls {
    /// Reads the server's certificate chain and private key (PEM), and the
    /// client CA bundle (PEM) when mutual TLS is wanted.
    pub fn from_pem_files(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Tls, TlsError> {
        let ca = client_ca.map(|file| read(file).map(|pem| (file, pem))).transpose()?;
        Tls::build((cert, &read(cert)?), (key, &read(key)?), ca.as_ref().map(|(file, pem)| (*file, pem.as_slice())))
    }

    /// As `from_pem_files`, from PEM text (tests); the paths only name the parts in errors.
    pub fn from_pem(cert: &[u8], key: &[u8], client_ca: Option<&[u8]>) -> Result<Tls, TlsError> {
        Tls::build(
            (Path::new("certificate"), cert),
            (Path::new("key"), key),
            client_ca.map(|pem| (Path::new("client CA"), pem)),
        )
    }

    fn build(cert: (&Path, &[u8]), key: (&Path, &[u8]), client_ca: Option<(&Path, &[u8])>) -> Result<Tls, TlsError> {
        let chain = certificates(cert.0, cert.1, "certificate")?;
        let private_key = PrivateKeyDer::from_pem_slice(key.1)
            .map_err(|e| fault(key.0, format!("no PEM private key (PKCS#8, PKCS#1 or SEC1) in it: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // TLS 1.2 and 1.3 only, rustls's safe defaults.
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError { file: None, reason: format!("TLS set-up: {e}") })?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some((file, pem)) => {
                let roots = ca_roots(file, pem)?;
                // Clients without a certificate are let through to the token check: holders and
                // chains use tokens alone; only a bound party needs its certificate (auth.rs).
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| fault(file, format!("not a usable client CA: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, private_key).map_err(|e| TlsError {
            file: None,
            reason: format!("the key {} does not fit the certificate {}: {e}", key.0.display(), cert.0.display()),
        })?;
        // hyper serves HTTP/1.1 only here.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(config)) })
    }
}

/// CA certificates (PEM) that push deliveries trust beside the Mozilla roots
/// (`--push-ca`): a customs administration's private CA for its endpoints.
#[derive(Clone, Debug)]
pub struct PushRoots(pub(crate) RootCertStore);

impl Default for PushRoots {
    fn default() -> PushRoots {
        PushRoots(RootCertStore::empty())
    }
}

impl PushRoots {
    pub fn from_pem_file(file: &Path) -> Result<PushRoots, TlsError> {
        PushRoots::from_pem(file, &read(file)?)
    }

    /// As `from_pem_file`, from PEM text; `file` names it in errors.
    pub fn from_pem(file: &Path, pem: &[u8]) -> Result<PushRoots, TlsError> {
        // Read here, at start, rather than at the first delivery.
        ca_roots(file, pem).map(PushRoots)
    }
}

/// The client certificate the connection presented, as the SHA-256 of its
/// DER in lowercase hex: a request extension, put there by the connection layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate(pub Arc<str>);

/// SHA-256 of `der`, lowercase hex: how a certificate is bound to a party.
pub fn certificate_sha256(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fingerprint as given to bind a party: 64 hex digits, either case, with
/// or without the colons of `openssl x509 -fingerprint -sha256`; lowercase
/// without colons, as stored; `None` when it is not one.
pub(crate) fn normalize_certificate_sha256(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
    let colons = text.len() - digits.len();
    let well_formed =
        digits.len() == 64 && digits.bytes().all(|b| b.is_ascii_hexdigit()) && (colons == 0 || colons == 31);
    well_formed.then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tir_testkit::tls::Pki;

    fn refusal(result: Result<Tls, TlsError>) -> String {
        result.expect_err("refused").to_string()
    }

    #[test]
    fn fingerprints_are_taken_in_either_case_with_or_without_colons_and_stored_lowercase() {
        let lower = "0123456789abcdef".repeat(4);
        assert_eq!(normalize_certificate_sha256(&lower).as_deref(), Some(lower.as_str()));
        assert_eq!(normalize_certificate_sha256(&lower.to_uppercase()).as_deref(), Some(lower.as_str()));
        let pairs: Vec<&str> = (0..32).map(|i| &lower[2 * i..2 * i + 2]).collect();
        assert_eq!(normalize_certificate_sha256(&pairs.join(":")).as_deref(), Some(lower.as_str()));
        for bad in ["", "ab", &lower[1..], &format!("{lower}0"), &"g".repeat(64), &format!(":{lower}"), &"é".repeat(32)]
        {
            assert_eq!(normalize_certificate_sha256(bad), None, "{bad:?}");
        }
        assert_eq!(certificate_sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bad_pem_is_refused_naming_the_part_and_the_reason() {
        let pki = Pki::new();
        let (cert, key) = (pki.server_cert_pem.as_bytes(), pki.server_key_pem.as_bytes());
        assert!(Tls::from_pem(cert, key, None).is_ok());
        assert!(Tls::from_pem(cert, key, Some(pki.ca_pem.as_bytes())).is_ok());

        let empty = refusal(Tls::from_pem(b"", key, None));
        assert!(empty.starts_with("certificate: no certificate in it"), "{empty}");
        let not_a_key = refusal(Tls::from_pem(cert, cert, None));
        assert!(not_a_key.starts_with("key: no PEM private key"), "{not_a_key}");
        let other = Pki::new();
        let mismatch = refusal(Tls::from_pem(cert, other.server_key_pem.as_bytes(), None));
        assert!(mismatch.contains("does not fit the certificate"), "{mismatch}");
        let ca = refusal(Tls::from_pem(cert, key, Some(b"not PEM at all")));
        assert!(ca.starts_with("client CA: no CA certificate in it"), "{ca}");
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let garbled = refusal(Tls::from_pem(broken.as_bytes(), key, None));
        assert!(garbled.starts_with("certificate: not a PEM certificate"), "{garbled}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let missing = Path::new("/nonexistent/tirhub-test/key.pem");
        let error = Tls::from_pem_files(missing, missing, None).expect_err("refused");
        assert_eq!(error.file.as_deref(), Some(missing));
        assert!(error.to_string().starts_with("/nonexistent/tirhub-test/key.pem: cannot read: "), "{error}");
    }
}
