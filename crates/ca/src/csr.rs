//! PKCS#10 certificate requests as clients send them (base64 DER, with or without line breaks, or
//! PEM): parsed, signature checked (proof of possession of the private key), public key described.

use base64::Engine;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa,
    EcdsaP256,
    EcdsaP384,
}

impl KeyAlgorithm {
    /// The WinRT `KeyAlgorithmNames` value MIM clients use.
    pub fn mim_name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "RSA",
            KeyAlgorithm::EcdsaP256 => "ECDSA_P256",
            KeyAlgorithm::EcdsaP384 => "ECDSA_P384",
        }
    }
}

/// A request whose signature verified, reduced to what issuance needs: the subject's public key.
#[derive(Clone, Debug)]
pub struct VerifiedCsr {
    pub algorithm: KeyAlgorithm,
    pub key_bits: u32,
    pub(crate) raw_key: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrError {
    #[error("it is not base64 or PEM")]
    Encoding,
    #[error("it is not a PKCS#10 certificate request")]
    Parse,
    #[error("its signature does not verify (no proof of possession of the private key)")]
    Signature,
    #[error("its key algorithm is not supported (RSA, ECDSA P-256 and P-384 are)")]
    Algorithm,
    #[error("its RSA key has {0} bits; at least 2048 are required")]
    RsaTooSmall(u32),
    #[error("it is signed with {0}, which is not allowed (SHA-256, SHA-384 or SHA-512 are)")]
    Hash(String),
}

/// The signature algorithms a CSR may use (RSA PKCS#1 v1.5 and ECDSA with SHA-2), by OID.
const ALLOWED_SIGNATURES: &[&str] = &[
    "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
    "1.2.840.113549.1.1.12", // sha384WithRSAEncryption
    "1.2.840.113549.1.1.13", // sha512WithRSAEncryption
    "1.2.840.10045.4.3.2",   // ecdsa-with-SHA256
    "1.2.840.10045.4.3.3",   // ecdsa-with-SHA384
    "1.2.840.10045.4.3.4",   // ecdsa-with-SHA512
];

/// A readable name for a refused signature algorithm.
fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.4" => "MD5 with RSA".into(),
        "1.2.840.113549.1.1.5" => "SHA-1 with RSA".into(),
        "1.2.840.113549.1.1.14" => "SHA-224 with RSA".into(),
        "1.2.840.10045.4.1" => "ECDSA with SHA-1".into(),
        "1.2.840.10045.4.3.1" => "ECDSA with SHA-224".into(),
        other => format!("the signature algorithm {other}"),
    }
}

pub fn parse_csr(text: &str) -> Result<VerifiedCsr, CsrError> {
    // Literal "\r\n" escapes (a body escaped twice) are removed whole: base64 has no backslash.
    let text = text.replace("\\r", "").replace("\\n", "");
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| CsrError::Encoding)?;
    let (rest, csr) = X509CertificationRequest::from_der(&der).map_err(|_| CsrError::Parse)?;
    if !rest.is_empty() {
        return Err(CsrError::Parse);
    }
    let spki = &csr.certification_request_info.subject_pki;
    let (algorithm, key_bits) = match spki.parsed().map_err(|_| CsrError::Algorithm)? {
        PublicKey::RSA(rsa) => (KeyAlgorithm::Rsa, rsa.key_size() as u32),
        PublicKey::EC(point) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => (KeyAlgorithm::EcdsaP256, 256),
                "1.3.132.0.34" => (KeyAlgorithm::EcdsaP384, 384),
                _ => {
                    let _ = point;
                    return Err(CsrError::Algorithm);
                }
            }
        }
        _ => return Err(CsrError::Algorithm),
    };
    if algorithm == KeyAlgorithm::Rsa && key_bits < 2048 {
        return Err(CsrError::RsaTooSmall(key_bits));
    }
    let signed_with = csr.signature_algorithm.algorithm.to_id_string();
    if !ALLOWED_SIGNATURES.contains(&signed_with.as_str()) {
        return Err(CsrError::Hash(signature_name(&signed_with)));
    }
    csr.verify_signature().map_err(|_| CsrError::Signature)?;
    Ok(VerifiedCsr {
        algorithm,
        key_bits,
        raw_key: spki.subject_public_key.data.to_vec(),
    })
}

impl rcgen::PublicKeyData for VerifiedCsr {
    fn der_bytes(&self) -> &[u8] {
        &self.raw_key
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.algorithm {
            KeyAlgorithm::Rsa => &rcgen::PKCS_RSA_SHA256,
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}
