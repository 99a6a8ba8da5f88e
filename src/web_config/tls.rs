//! `tls_server_config` → a rustls server configuration.
//!
//! What rustls (with the ring provider) can honour is honoured; the rest is
//! refused when the file is loaded, never silently dropped:
//!
//! - `min_version` / `max_version`: rustls speaks TLS 1.2 and 1.3 only.
//!   `TLS10` or `TLS11` as a minimum therefore means TLS 1.2 (stricter than
//!   asked); as a maximum it is an error.
//! - `cipher_suites` (Go's names) apply to TLS 1.2, as in Go: the ECDHE
//!   AES-GCM and ChaCha20-Poly1305 suites. CBC and static-RSA suites are
//!   refused; TLS 1.3 names are accepted and, as in Go, change nothing.
//! - `curve_preferences`: `X25519`, `CurveP256`, `CurveP384`; `CurveP521`
//!   is refused (ring has no P-521 key exchange).
//! - `client_allowed_sans` is refused (not implemented).
//! - `RequestClientCert` and `RequireAnyClientCert` take any client
//!   certificate without checking it against a CA (as Go does); the client
//!   must still prove it holds the certificate's key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{WebPkiSupportedAlgorithms, ring as provider};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoClientAuth, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use serde::Deserialize;

use super::{Error, Sources, resolve};

/// `tls_server_config` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

/// The client certificate policies of Go's `crypto/tls`, by their names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    NoClientCert,
    /// One is asked for, not required, not verified.
    RequestClientCert,
    /// One is required, not verified.
    RequireAnyClientCert,
    /// One is not required; when given, it must chain to `client_ca_file`.
    VerifyClientCertIfGiven,
    /// One is required and must chain to `client_ca_file`.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // "RequireClientCert" is exporter-toolkit's older spelling.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// TLS as loaded: the rustls configuration every new connection uses.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// Handed to `tokio_rustls::TlsAcceptor` for each connection.
    pub server_config: Arc<rustls::ServerConfig>,
    /// The client certificate policy.
    pub client_auth: ClientAuth,
    versions: &'static str,
}

impl TlsSettings {
    /// e.g. `on(TLS12-TLS13,RequireAndVerifyClientCert)`.
    pub(super) fn summary(&self) -> String {
        format!("on({},{:?})", self.versions, self.client_auth)
    }

    pub(super) fn build(file: TlsFile, dir: &Path, sources: &mut Sources) -> Result<Self, Error> {
        let cert_pem = pem_source("cert", file.cert, file.cert_file.as_deref(), dir, sources)?
            .ok_or_else(|| Error::new("tls_server_config: missing one of cert or cert_file"))?;
        let key_pem = pem_source("key", file.key, file.key_file.as_deref(), dir, sources)?
            .ok_or_else(|| Error::new("tls_server_config: missing one of key or key_file"))?;
        let ca_pem = pem_source(
            "client_ca",
            file.client_ca,
            file.client_ca_file.as_deref(),
            dir,
            sources,
        )?;
        if file.client_allowed_sans.is_some() {
            return Err(Error::new(
                "tls_server_config: client_allowed_sans is not supported by promgate",
            ));
        }
        let auth_name = file.client_auth_type.unwrap_or_default();
        let client_auth = ClientAuth::parse(&auth_name).ok_or_else(|| {
            Error::new(format!(
                "tls_server_config: invalid client_auth_type {auth_name:?} (NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)"
            ))
        })?;
        if ca_pem.is_some() && client_auth == ClientAuth::NoClientCert {
            return Err(Error::new(
                "tls_server_config: client CAs have been configured without a client_auth_type",
            ));
        }
        if ca_pem.is_none() && client_auth.verifies() {
            return Err(Error::new(format!(
                "tls_server_config: client_auth_type {auth_name} needs client_ca_file (or client_ca)"
            )));
        }

        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| Error::new(format!("tls_server_config: cert: {e}")))?;
        if certs.is_empty() {
            return Err(Error::new(
                "tls_server_config: cert holds no PEM certificate",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| Error::new(format!("tls_server_config: key: {e}")))?;

        let (versions, versions_name) = versions(
            file.min_version.as_deref().unwrap_or("TLS12"),
            file.max_version.as_deref().unwrap_or("TLS13"),
        )?;
        let mut crypto = provider::default_provider();
        if let Some(names) = &file.cipher_suites {
            crypto.cipher_suites = cipher_suites(names)?;
        }
        if let Some(names) = &file.curve_preferences {
            crypto.kx_groups = curves(names)?;
        }
        let crypto = Arc::new(crypto);

        let verifier: Arc<dyn ClientCertVerifier> = match client_auth {
            ClientAuth::NoClientCert => Arc::new(NoClientAuth),
            ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
                Arc::new(AnyClientCert {
                    mandatory: client_auth == ClientAuth::RequireAnyClientCert,
                    algorithms: crypto.signature_verification_algorithms,
                })
            }
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
                let mut roots = RootCertStore::empty();
                for ca in CertificateDer::pem_slice_iter(ca_pem.as_deref().unwrap_or_default()) {
                    let ca =
                        ca.map_err(|e| Error::new(format!("tls_server_config: client_ca: {e}")))?;
                    roots
                        .add(ca)
                        .map_err(|e| Error::new(format!("tls_server_config: client_ca: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(Error::new(
                        "tls_server_config: client_ca holds no PEM certificate",
                    ));
                }
                let builder =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto.clone());
                let builder = if client_auth == ClientAuth::VerifyClientCertIfGiven {
                    builder.allow_unauthenticated()
                } else {
                    builder
                };
                builder
                    .build()
                    .map_err(|e| Error::new(format!("tls_server_config: client_ca: {e}")))?
            }
        };

        let mut config = rustls::ServerConfig::builder_with_provider(crypto)
            .with_protocol_versions(versions)
            .map_err(|e| Error::new(format!("tls_server_config: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| Error::new(format!("tls_server_config: cert and key: {e}")))?;
        // Go's default, and exporter-toolkit's: the order of cipher_suites
        // (or the provider's, strongest first) wins over the client's.
        config.ignore_client_order = file.prefer_server_cipher_suites.unwrap_or(true);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsSettings {
            server_config: Arc::new(config),
            client_auth,
            versions: versions_name,
        })
    }
}

/// The PEM text of `name`, given inline or as a file (not both).
fn pem_source(
    name: &str,
    inline: Option<String>,
    file: Option<&Path>,
    dir: &Path,
    sources: &mut Sources,
) -> Result<Option<Vec<u8>>, Error> {
    let file = file.filter(|p| !p.as_os_str().is_empty());
    let inline = inline.filter(|s| !s.is_empty());
    match (inline, file) {
        (Some(_), Some(_)) => Err(Error::new(format!(
            "tls_server_config: {name} and {name}_file are both set; use one"
        ))),
        (Some(text), None) => Ok(Some(text.into_bytes())),
        (None, Some(path)) => {
            let path = resolve(dir, path);
            sources
                .read(&path, &format!("tls_server_config.{name}_file"))
                .map(Some)
        }
        (None, None) => Ok(None),
    }
}

type Versions = &'static [&'static rustls::SupportedProtocolVersion];

static ONLY_TLS12: Versions = &[&rustls::version::TLS12];
static ONLY_TLS13: Versions = &[&rustls::version::TLS13];
static BOTH: Versions = &[&rustls::version::TLS13, &rustls::version::TLS12];

fn versions(min: &str, max: &str) -> Result<(Versions, &'static str), Error> {
    let rank = |v: &str| match v {
        "TLS10" => Some(10),
        "TLS11" => Some(11),
        "TLS12" => Some(12),
        "TLS13" => Some(13),
        _ => None,
    };
    let unknown = |v: &str| {
        Error::new(format!(
            "tls_server_config: unknown TLS version {v:?} (TLS10, TLS11, TLS12, TLS13)"
        ))
    };
    let lo = rank(min).ok_or_else(|| unknown(min))?;
    let hi = rank(max).ok_or_else(|| unknown(max))?;
    if lo > hi {
        return Err(Error::new(format!(
            "tls_server_config: min_version {min} is above max_version {max}"
        )));
    }
    match (lo.max(12), hi) {
        (_, 10 | 11) => Err(Error::new(format!(
            "tls_server_config: max_version {max} is not supported: promgate speaks TLS 1.2 and 1.3 only"
        ))),
        (12, 12) => Ok((ONLY_TLS12, "TLS12")),
        (12, _) => Ok((BOTH, "TLS12-TLS13")),
        _ => Ok((ONLY_TLS13, "TLS13")),
    }
}

/// Go's names for the TLS 1.2 suites rustls implements.
const TLS12_SUITES: [(&str, rustls::SupportedCipherSuite); 6] = [
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Suites Go knows that rustls does not implement (CBC, static RSA).
const GO_ONLY_SUITES: [&str; 8] = [
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

/// The TLS 1.3 suites (always on, as in Go) then the listed TLS 1.2 ones in
/// the listed order.
fn cipher_suites(names: &[String]) -> Result<Vec<rustls::SupportedCipherSuite>, Error> {
    let mut suites: Vec<_> = provider::ALL_CIPHER_SUITES
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    for name in names {
        // Go also accepts the RFC 7905 names without the hash suffix.
        let full = match name.as_str() {
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            }
            other => other,
        };
        if let Some((_, suite)) = TLS12_SUITES.iter().find(|(n, _)| *n == full) {
            if !suites.contains(suite) {
                suites.push(*suite);
            }
        } else if matches!(
            full,
            "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256"
        ) {
            // TLS 1.3 suites are not configurable, in Go as here.
        } else if GO_ONLY_SUITES.contains(&full) {
            return Err(Error::new(format!(
                "tls_server_config: cipher suite {name} is not supported by rustls (supported: {})",
                TLS12_SUITES.map(|(n, _)| n).join(", ")
            )));
        } else {
            return Err(Error::new(format!(
                "tls_server_config: unknown cipher suite {name:?}"
            )));
        }
    }
    Ok(suites)
}

fn curves(names: &[String]) -> Result<Vec<&'static dyn rustls::crypto::SupportedKxGroup>, Error> {
    names
        .iter()
        .map(|name| match name.as_str() {
            "X25519" => Ok(provider::kx_group::X25519),
            "CurveP256" => Ok(provider::kx_group::SECP256R1),
            "CurveP384" => Ok(provider::kx_group::SECP384R1),
            "CurveP521" => Err(Error::new(
                "tls_server_config: curve CurveP521 is not supported (X25519, CurveP256, CurveP384)",
            )),
            other => Err(Error::new(format!(
                "tls_server_config: unknown curve {other:?} (X25519, CurveP256, CurveP384)"
            ))),
        })
        .collect()
}

/// Go's `RequestClientCert` / `RequireAnyClientCert`: any certificate is
/// taken, unverified; the handshake signature is still checked, so the
/// client holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_rustls_can_speak() {
        assert_eq!(versions("TLS12", "TLS13").unwrap().1, "TLS12-TLS13");
        assert_eq!(versions("TLS10", "TLS12").unwrap().1, "TLS12");
        assert_eq!(versions("TLS13", "TLS13").unwrap().1, "TLS13");
        assert!(versions("TLS10", "TLS11").is_err());
        assert!(versions("TLS13", "TLS12").is_err());
        assert!(versions("SSL3", "TLS13").is_err());
    }

    #[test]
    fn cipher_suites_by_go_name() {
        let s = cipher_suites(&["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into()]).unwrap();
        let tls12: Vec<_> = s
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .collect();
        assert_eq!(tls12.len(), 1);
        assert!(s.len() == 4, "TLS 1.3 suites stay on");
        let e = cipher_suites(&["TLS_RSA_WITH_AES_128_CBC_SHA".into()]).unwrap_err();
        assert!(e.to_string().contains("not supported by rustls"), "{e}");
        assert!(cipher_suites(&["TLS_FOO".into()]).is_err());
        assert!(curves(&["CurveP521".into()]).is_err());
        assert_eq!(
            curves(&["X25519".into(), "CurveP256".into()])
                .unwrap()
                .len(),
            2
        );
    }
}
