//! Which client certificates the TLS handshake accepts, for sign-in by client certificate.
//!
//! Two kinds of trust anchor, checked differently:
//! - **opencm's own CA.** The handshake checks the chain only; whether the certificate may sign
//!   in (issued to that user, not revoked or on hold) is decided per request from opencm's own
//!   records, so a revocation applies at once, without a CRL.
//! - **Other CAs** (`client_certificate_anchors`: an enterprise CA such as AD CS issuing smart
//!   card logon certificates). opencm has no records of their certificates, so the handshake
//!   checks the end-entity certificate against the CAs' CRLs (`client_certificate_crls`),
//!   strictly: a certificate whose issuer has no CRL, or whose CRL is past its nextUpdate, is
//!   refused. The CRL files are read again when they change (checked at each handshake that needs
//!   them), so a cron job that fetches fresh CRLs is all it takes.
//!
//! rustls' `WebPkiClientVerifier` does each check — one per anchor, each with the CRLs that
//! anchor's key signed; this type only puts them side by side, which rustls has no builder for.

use anyhow::{bail, Context};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[derive(Debug)]
pub struct ClientCertificates {
    provider: Arc<CryptoProvider>,
    /// opencm's own CA: chain only.
    own: Option<Arc<dyn ClientCertVerifier>>,
    external: Option<External>,
    hints: Vec<DistinguishedName>,
}

#[derive(Debug)]
struct External {
    anchors: Vec<CertificateDer<'static>>,
    crl_files: Vec<PathBuf>,
    current: Mutex<Loaded>,
}

/// One verifier per anchor, each with the CRLs that anchor's key signed, and the CRL files'
/// modification times when they were read.
type Loaded = (Vec<Arc<dyn ClientCertVerifier>>, Vec<Option<SystemTime>>);

impl External {
    /// One verifier per anchor, each trusting that anchor alone and checking against the CRLs its
    /// key signed: two CAs of one name (a CA renewed with a new key) each keep their own CRLs,
    /// which a single verifier, matching CRLs by issuer name, would mix up. An anchor with no CRL
    /// of its own is a configuration error: its revoked certificates could not be refused.
    fn build(
        anchors: &[CertificateDer<'static>],
        crl_files: &[PathBuf],
        provider: &Arc<CryptoProvider>,
    ) -> anyhow::Result<Vec<Arc<dyn ClientCertVerifier>>> {
        let crls = crl_files
            .iter()
            .map(|f| read_crl(f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anchors
            .iter()
            .map(|anchor| {
                let own: Vec<CertificateRevocationListDer<'static>> = crls
                    .iter()
                    .filter(|c| opencm_ca::crl_signed_by(c.as_ref(), anchor.as_ref()))
                    .cloned()
                    .collect();
                if own.is_empty() {
                    bail!(
                        "client_certificate_crls holds no CRL signed by the anchor '{}': add its CRL, so that its revoked certificates cannot sign in",
                        opencm_ca::subject_common_name(anchor.as_ref()).unwrap_or_default()
                    );
                }
                let mut roots = RootCertStore::empty();
                roots
                    .add(anchor.clone())
                    .context("a client_certificate_anchors certificate as a trust anchor")?;
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .allow_unauthenticated()
                    .with_crls(own)
                    .only_check_end_entity_revocation()
                    .enforce_revocation_expiration()
                    .build()
                    .context("the client-certificate verifier for client_certificate_anchors")
            })
            .collect()
    }

    /// The verifiers over the CRLs as they are now on disk; CRLs that no longer read keep the
    /// last good set (and say so), rather than taking sign-in down.
    fn verifiers(&self, provider: &Arc<CryptoProvider>) -> Vec<Arc<dyn ClientCertVerifier>> {
        let now = modified(&self.crl_files);
        // A poisoned lock still holds the last verifiers built (building never panics midway).
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.1 != now {
            match Self::build(&self.anchors, &self.crl_files, provider) {
                Ok(v) => {
                    tracing::info!("client-certificate CRLs reloaded");
                    *current = (v, now);
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "client-certificate CRLs did not reload; keeping the last ones");
                    current.1 = now;
                }
            }
        }
        current.0.clone()
    }
}

/// PEM certificates from a file, every one of them.
pub fn read_certificates(path: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

/// A CRL file, PEM or DER.
fn read_crl(path: &std::path::Path) -> anyhow::Result<CertificateRevocationListDer<'static>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the CRL {}", path.display()))?;
    if bytes.starts_with(b"-----") {
        CertificateRevocationListDer::from_pem_slice(&bytes)
            .with_context(|| format!("{} is not a PEM CRL", path.display()))
    } else {
        Ok(CertificateRevocationListDer::from(bytes))
    }
}

fn modified(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

impl ClientCertificates {
    /// The verifier, or `None` when no client certificate can sign in. `own`: opencm's issuing
    /// CA (empty when sign-in by opencm's certificates is off); `anchors` and `crl_files`: other
    /// CAs and their CRLs.
    pub fn verifier(
        provider: Arc<CryptoProvider>,
        own: &[Vec<u8>],
        anchors: &[CertificateDer<'static>],
        crl_files: &[PathBuf],
    ) -> anyhow::Result<Option<Arc<dyn ClientCertVerifier>>> {
        if !anchors.is_empty() && crl_files.is_empty() {
            bail!("client_certificate_anchors needs client_certificate_crls: the CRL of every CA that issues client certificates, so that a revoked certificate cannot sign in");
        }
        let mut hints = Vec::new();
        let own = if own.is_empty() {
            None
        } else {
            let mut roots = RootCertStore::empty();
            for r in own {
                roots
                    .add(CertificateDer::from(r.clone()))
                    .context("the CA certificate as a client-certificate trust anchor")?;
            }
            hints.extend(roots.subjects());
            Some(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .allow_unauthenticated()
                    .build()
                    .context("the client-certificate verifier")?,
            )
        };
        let external = if anchors.is_empty() {
            None
        } else {
            let mut roots = RootCertStore::empty();
            for a in anchors {
                roots
                    .add(a.clone())
                    .context("a client_certificate_anchors certificate as a trust anchor")?;
            }
            hints.extend(roots.subjects());
            let verifiers = External::build(anchors, crl_files, &provider)?;
            Some(External {
                anchors: anchors.to_vec(),
                crl_files: crl_files.to_vec(),
                current: Mutex::new((verifiers, modified(crl_files))),
            })
        };
        if own.is_none() && external.is_none() {
            return Ok(None);
        }
        Ok(Some(Arc::new(ClientCertificates {
            provider,
            own,
            external,
            hints,
        })))
    }
}

impl ClientCertVerifier for ClientCertificates {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let mut refused = None;
        if let Some(own) = &self.own {
            match own.verify_client_cert(end_entity, intermediates, now) {
                Ok(v) => return Ok(v),
                Err(e) => refused = Some(e),
            }
        }
        if let Some(external) = &self.external {
            for verifier in external.verifiers(&self.provider) {
                match verifier.verify_client_cert(end_entity, intermediates, now) {
                    Ok(v) => return Ok(v),
                    Err(e) => refused = Some(e),
                }
            }
        }
        let e = refused.unwrap_or(rustls::Error::General(
            "no client-certificate anchors".into(),
        ));
        tracing::info!(error = %e, "client certificate refused at the handshake");
        Err(e)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
