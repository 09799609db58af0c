//! HTTPS: the server's certificate and key either from files (`tls_cert_file`, `tls_key_file`,
//! PEM), or — as step-ca does — issued at every start by the embedded CA for the configured
//! `tls_names`, with a fresh P-256 key that never leaves memory. Clients trust the CA's chain,
//! served at `/pki/ca.pem` and written to `opencm-ca.pem` beside the KEK file at start.

use crate::config::Config;
use anyhow::{bail, Context};
use opencm_ca::{CertificateAuthority, IssueRequest, KeyAlgorithm};
use opencm_domain::certificate::KeyUsage;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use time::OffsetDateTime;

/// How long a server certificate issued at start is valid; the next start issues a new one.
const ISSUED_VALIDITY_DAYS: i64 = 90;

pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// What was loaded or issued, for the start-up log.
    pub description: String,
    /// The CA chain clients should trust, when the embedded CA issued the certificate.
    pub ca_file: Option<std::path::PathBuf>,
}

/// The TLS set-up the configuration asks for, or `None` for plain HTTP.
pub fn from_config(
    cfg: &Config,
    ca: &dyn CertificateAuthority,
    now: OffsetDateTime,
) -> anyhow::Result<Option<Tls>> {
    match (&cfg.tls_cert_file, &cfg.tls_key_file) {
        (Some(cert), Some(key)) => {
            if !cfg.tls_names.is_empty() {
                bail!("tls_names is for a certificate the embedded CA issues; leave it empty when tls_cert_file and tls_key_file are set");
            }
            let (chain, key) = read_pair(cert, key)?;
            let acceptor = acceptor(chain, key, client_verifier(cfg, ca)?)?;
            Ok(Some(Tls {
                acceptor,
                description: format!("certificate from {}", cert.display()),
                ca_file: None,
            }))
        }
        (Some(_), None) | (None, Some(_)) => {
            bail!("tls_cert_file and tls_key_file go together: set both, or neither")
        }
        (None, None) if cfg.tls_names.is_empty() => {
            if !cfg.client_certificate_anchors.is_empty() || !cfg.client_certificate_crls.is_empty()
            {
                bail!("client_certificate_anchors and client_certificate_crls are for sign-in by client certificate, which needs HTTPS: set tls_names, or tls_cert_file and tls_key_file");
            }
            Ok(None)
        }
        (None, None) => {
            let (chain, key) = issue(ca, &cfg.tls_names, now)?;
            let ca_pem: String = ca
                .chain_der()
                .iter()
                .map(|d| opencm_ca::pem("CERTIFICATE", d))
                .collect();
            let ca_file = cfg.ca_kek_file.with_file_name("opencm-ca.pem");
            std::fs::write(&ca_file, ca_pem)
                .with_context(|| format!("writing {}", ca_file.display()))?;
            Ok(Some(Tls {
                acceptor: acceptor(chain, key, client_verifier(cfg, ca)?)?,
                description: format!(
                    "certificate for {} issued by the embedded CA, valid {ISSUED_VALIDITY_DAYS} days (a new one at every start)",
                    cfg.tls_names.join(", ")
                ),
                ca_file: Some(std::path::absolute(&ca_file).unwrap_or(ca_file)),
            }))
        }
    }
}

/// The PEM certificate chain and key of `tls_cert_file` and `tls_key_file`.
fn read_pair(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the TLS key {}", key.display()))?;
    Ok((chain, key))
}

/// Checks everything the TLS configuration names that exists before the CA does — the pairing
/// of its keys, the certificate and key files (and that they fit), the client-certificate anchors
/// and their CRLs — so that `serve` refuses a bad configuration before it creates anything.
pub fn check(cfg: &Config) -> anyhow::Result<()> {
    match (&cfg.tls_cert_file, &cfg.tls_key_file) {
        (Some(_), Some(_)) if !cfg.tls_names.is_empty() => {
            bail!("tls_names is for a certificate the embedded CA issues; leave it empty when tls_cert_file and tls_key_file are set")
        }
        (Some(cert), Some(key)) => {
            let (chain, key) = read_pair(cert, key)?;
            acceptor(chain, key, None)?;
        }
        (Some(_), None) | (None, Some(_)) => {
            bail!("tls_cert_file and tls_key_file go together: set both, or neither")
        }
        (None, None) if cfg.tls_names.is_empty() => {
            if !cfg.client_certificate_anchors.is_empty() || !cfg.client_certificate_crls.is_empty()
            {
                bail!("client_certificate_anchors and client_certificate_crls are for sign-in by client certificate, which needs HTTPS: set tls_names, or tls_cert_file and tls_key_file");
            }
        }
        (None, None) => {}
    }
    let mut anchors = Vec::new();
    for f in &cfg.client_certificate_anchors {
        anchors.extend(crate::client_auth::read_certificates(f)?);
    }
    if !anchors.is_empty() {
        crate::client_auth::ClientCertificates::verifier(
            provider(),
            &[],
            &anchors,
            &cfg.client_certificate_crls,
        )?;
    }
    Ok(())
}

/// The acceptor; with a client-certificate verifier, clients may present a certificate (sign-in
/// by client certificate; clients without one are served as before).
fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match clients {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trust anchors of sign-in by client certificate: opencm's own CA chain (unless turned
/// off) and the configured other CAs with their CRLs.
fn client_verifier(
    cfg: &Config,
    ca: &dyn CertificateAuthority,
) -> anyhow::Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>> {
    // The issuing certificate alone, not its parents: where opencm's CA is subordinate to an
    // enterprise root, that root's other certificates are not opencm's to vouch for.
    let own = if cfg.client_certificate_auth {
        ca.chain_der().iter().take(1).cloned().collect()
    } else {
        Vec::new()
    };
    let mut anchors = Vec::new();
    for f in &cfg.client_certificate_anchors {
        anchors.extend(crate::client_auth::read_certificates(f)?);
    }
    crate::client_auth::ClientCertificates::verifier(
        provider(),
        &own,
        &anchors,
        &cfg.client_certificate_crls,
    )
}

/// A server certificate (serverAuth, the names as subjectAltNames) and its chain, from the CA.
fn issue(
    ca: &dyn CertificateAuthority,
    names: &[String],
    now: OffsetDateTime,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (public, secret) = opencm_ca::generate_key(KeyAlgorithm::EcdsaP256)?;
    let mut serial = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut serial);
    let issued = ca
        .issue(&IssueRequest {
            key: &public,
            common_name: &names[0],
            upn: None,
            sid_extension: None,
            sid_uri: None,
            email: None,
            server_names: names,
            key_usages: &[KeyUsage::DigitalSignature],
            extended_key_usages: &["1.3.6.1.5.5.7.3.1".to_string()],
            not_before: now - time::Duration::minutes(5),
            not_after: now + time::Duration::days(ISSUED_VALIDITY_DAYS),
            serial,
        })
        .context("issuing the server's TLS certificate")?;
    let mut chain = vec![CertificateDer::from(issued.der)];
    chain.extend(ca.chain_der().iter().cloned().map(CertificateDer::from));
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(secret.0.clone()));
    Ok((chain, key))
}
