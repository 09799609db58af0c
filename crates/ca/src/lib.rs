//! opencm's certificate authority: the embedded CA's keys and certificate, issuance from verified
//! certificate requests, the responses MIM CM clients expect (PKCS#7 certs-only, PKCS#12), and CRLs.
//!
//! The CA is behind the `CertificateAuthority` trait so an external CA (AD CS, EJBCA, a cloud CA)
//! can be added later without touching callers. This crate does no IO: keys come in sealed or
//! plain, results go out as DER; persistence is the store's job. Private keys are never logged
//! (`Secret` redacts itself) and are sealed with AES-256-GCM under a key-encryption key at rest.

mod assemble;
mod authority;
pub mod cardkey;
mod csr;
pub mod hsm;
pub mod ocsp;
mod pfx;
mod pkcs7;
mod seal;

use opencm_domain::certmap::PresentedCertificate;
use opencm_domain::Sid;

pub use assemble::{issue_profile, Delivered, KeyArchive, ProfileIssue};
pub use authority::{
    pem_decode, sid_extension_value, sid_from_extension_value, CaKey, CaKeyAlgorithm, CaMaterial,
    EmbeddedCa, IssueRequest, Issued, Revocation, NTDS_CA_SECURITY_EXT_OID, SID_URI_PREFIX,
};
pub use csr::{parse_csr, CsrError, KeyAlgorithm, VerifiedCsr};
pub use pfx::pfx_aes256;
pub use pkcs7::certs_only;
pub use seal::{Kek, SealError, Secret};

/// A key generated on the server (for PKCS#12 delivery): its public half, ready for `issue`, and
/// its PKCS#8 private key.
pub fn generate_key(alg: KeyAlgorithm) -> Result<(VerifiedCsr, Secret), CaError> {
    let (sig, bits) = match alg {
        KeyAlgorithm::EcdsaP256 => (&rcgen::PKCS_ECDSA_P256_SHA256, 256),
        KeyAlgorithm::EcdsaP384 => (&rcgen::PKCS_ECDSA_P384_SHA384, 384),
        KeyAlgorithm::Rsa => {
            return Err(CaError::Generate(
                "server-generated RSA keys are not supported".into(),
            ))
        }
    };
    let kp = rcgen::KeyPair::generate_for(sig)?;
    Ok((
        VerifiedCsr {
            algorithm: alg,
            key_bits: bits,
            raw_key: kp.public_key_raw().to_vec(),
        },
        Secret(kp.serialize_der()),
    ))
}

/// What a client certificate says of its holder, as Windows smart card logon reads it: the UPN of
/// its subject alternative name (Microsoft's otherName 1.3.6.1.4.1.311.20.2.3), the SID it
/// carries for strong mapping (`szOID_NTDS_CA_SECURITY_EXT`, else the SAN URI
/// `tag:microsoft.com,2022-09-14:sid:<SID>`), its issuer's name in the order
/// `altSecurityIdentities` writes it, its serial number and subject key identifier. `None` for a
/// certificate without a UPN (it names nobody) or that does not parse.
pub fn presented_certificate(der: &[u8]) -> Option<PresentedCertificate> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut upn = None;
    let mut sids = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::OtherName(oid, value)
                    if oid.to_id_string() == "1.3.6.1.4.1.311.20.2.3" =>
                {
                    upn = upn.or_else(|| explicit_string(value));
                }
                GeneralName::URI(uri) => {
                    if let Some(sid) = uri.strip_prefix(SID_URI_PREFIX) {
                        sids.extend(Sid::parse(sid).ok());
                    }
                }
                _ => {}
            }
        }
    }
    let mut subject_key_id = None;
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == "1.3.6.1.4.1.311.25.2" {
            sids.extend(sid_from_extension_value(ext.value).and_then(|s| Sid::parse(&s).ok()));
        }
        if let ParsedExtension::SubjectKeyIdentifier(k) = ext.parsed_extension() {
            subject_key_id = Some(k.0.to_vec());
        }
    }
    Some(PresentedCertificate {
        upn: upn?,
        sids,
        issuer: name_in_certificate_order(cert.issuer()),
        serial: cert
            .raw_serial()
            .iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect(),
        subject_key_id,
    })
}

/// The string inside an otherName's `[0] EXPLICIT` value (a UTF8String for the UPN).
fn explicit_string(value: &[u8]) -> Option<String> {
    let (_, any) = x509_parser::der_parser::parse_der(value).ok()?;
    let inner = match any.content {
        x509_parser::der_parser::ber::BerObjectContent::Unknown(ref a) => {
            x509_parser::der_parser::parse_der(a.data).ok()?.1
        }
        _ => any,
    };
    inner.as_str().ok().map(str::to_string)
}

/// A name as `altSecurityIdentities` writes it: RDNs in the certificate's order, `TYPE=value`
/// joined by commas (`DC=com,DC=contoso,CN=Contoso CA`), with Windows' short names.
fn name_in_certificate_order(name: &x509_parser::x509::X509Name<'_>) -> String {
    let short = |oid: &str| match oid {
        "2.5.4.3" => "CN".to_string(),
        "2.5.4.6" => "C".to_string(),
        "2.5.4.7" => "L".to_string(),
        "2.5.4.8" => "S".to_string(),
        "2.5.4.10" => "O".to_string(),
        "2.5.4.11" => "OU".to_string(),
        "0.9.2342.19200300.100.1.25" => "DC".to_string(),
        "1.2.840.113549.1.9.1" => "E".to_string(),
        other => format!("OID.{other}"),
    };
    name.iter()
        .flat_map(|rdn| rdn.iter())
        .map(|a| {
            format!(
                "{}={}",
                short(&a.attr_type().to_id_string()),
                a.as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `issuer_der`'s key signed certificate `der` (its name as issuer, and the signature).
/// Used after a TLS handshake verified the chain, to tell certificates of opencm's own CA from
/// those of other trust anchors — by key, not by name: another CA may carry the same name.
pub fn issued_by(der: &[u8], issuer_der: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, issuer))) = (
        x509_parser::parse_x509_certificate(der),
        x509_parser::parse_x509_certificate(issuer_der),
    ) else {
        return false;
    };
    cert.issuer().as_raw() == issuer.subject().as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Whether CRL `crl_der` was signed by the key of CA certificate `ca_der` (and names it as its
/// issuer): which CA a CRL file belongs to, even among CAs of one name (a CA renewed with a new
/// key keeps its name).
pub fn crl_signed_by(crl_der: &[u8], ca_der: &[u8]) -> bool {
    let (Ok((_, crl)), Ok((_, ca))) = (
        x509_parser::parse_x509_crl(crl_der),
        x509_parser::parse_x509_certificate(ca_der),
    ) else {
        return false;
    };
    crl.issuer().as_raw() == ca.subject().as_raw() && crl.verify_signature(ca.public_key()).is_ok()
}

/// The subject common name of a DER certificate.
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

/// Whether the certificate in `cert_pem` (the first) may act as opencm's issuing CA at `now`:
/// basicConstraints CA:TRUE, keyCertSign and cRLSign when it has a keyUsage (opencm signs both
/// certificates and CRLs), and a validity that has begun and not ended. (The key is checked against
/// it when the CA is loaded.)
pub fn check_ca_certificate(cert_pem: &str, now: time::OffsetDateTime) -> Result<(), CaError> {
    let der = pem_decode(cert_pem)
        .into_iter()
        .next()
        .ok_or_else(|| CaError::Load("no PEM certificate found".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CaError::Load(format!("certificate: {e}")))?;
    let not_a_ca = |why: &str| Err(CaError::NotACa(why.to_string()));
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {}
        Ok(_) => return not_a_ca("its basicConstraints do not say CA:TRUE"),
        Err(e) => return Err(CaError::Load(format!("basicConstraints: {e}"))),
    }
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.key_cert_sign() => {
            return not_a_ca("its keyUsage lacks keyCertSign")
        }
        Ok(Some(ku)) if !ku.value.crl_sign() => return not_a_ca("its keyUsage lacks cRLSign"),
        Ok(_) => {}
        Err(e) => return Err(CaError::Load(format!("keyUsage: {e}"))),
    }
    let validity = cert.validity();
    let at = x509_parser::time::ASN1Time::from(now);
    if validity.not_before > at {
        return not_a_ca("its validity has not begun");
    }
    if validity.not_after <= at {
        return not_a_ca("it has expired");
    }
    Ok(())
}

/// What any certificate authority opencm talks to must do.
pub trait CertificateAuthority: Send + Sync + 'static {
    /// The issuing certificate first, then its parents (DER).
    fn chain_der(&self) -> &[Vec<u8>];
    /// Whether one signature costs milliseconds (an RSA key): callers then move issuance off
    /// their async workers; fast ECDSA signatures are cheaper inline than a thread handoff.
    fn slow_signatures(&self) -> bool;
    fn issue(&self, req: &IssueRequest<'_>) -> Result<Issued, CaError>;
    /// A CRL listing `revoked`, numbered `number`, valid from `this_update` to `next_update`.
    fn crl(
        &self,
        revoked: &[Revocation],
        number: u64,
        this_update: time::OffsetDateTime,
        next_update: time::OffsetDateTime,
    ) -> Result<Vec<u8>, CaError>;
    /// Signs `data` with the CA's key (an OCSP response the CA answers itself).
    fn sign(&self, data: &[u8]) -> Result<ocsp::RawSignature, CaError>;
    /// A delegated OCSP responder's certificate for `key`: `id-kp-OCSPSigning`,
    /// `id-pkix-ocsp-nocheck`, digitalSignature, valid from `not_before` to `not_after`.
    fn issue_ocsp_responder(
        &self,
        key: &VerifiedCsr,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<Issued, CaError>;
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("the CA certificate or key could not be read: {0}")]
    Load(String),
    #[error("the CA key does not match the CA certificate")]
    KeyMismatch,
    #[error("the certificate cannot be a CA: {0}")]
    NotACa(String),
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The key's token (an HSM) did not answer: the operation may succeed when it is back.
    #[error("the CA's key is unavailable: {0}")]
    Unavailable(String),
}

impl From<rcgen::Error> for CaError {
    fn from(e: rcgen::Error) -> Self {
        CaError::Generate(e.to_string())
    }
}

/// DER to PEM with the given label.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Upper-case hex, as MIM writes serial numbers and thumbprints.
pub fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The subject (as openssl prints it, RFC 4514) and the end of validity of a DER certificate.
pub fn subject_and_expiry(der: &[u8]) -> Option<(String, time::OffsetDateTime)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some((
        cert.subject().to_string(),
        cert.validity().not_after.to_datetime(),
    ))
}
