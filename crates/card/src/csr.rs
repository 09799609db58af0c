//! PKCS#10 requests signed by the card (rcgen builds them; the signature is the card's), and the
//! certificate out of the server's PKCS#7 answer.

use crate::piv::{KeyAlgorithm, Piv, Slot};
use anyhow::{anyhow, Context, Result};
use sha2::Digest;

/// A key that lives on the card: rcgen asks it to sign the request, the card signs the digest.
struct CardKey<'a> {
    piv: &'a Piv,
    slot: Slot,
    alg: KeyAlgorithm,
    point: Vec<u8>,
}

impl rcgen::PublicKeyData for CardKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.alg {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

impl rcgen::SigningKey for CardKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let digest = match self.alg {
            KeyAlgorithm::EcdsaP256 => sha2::Sha256::digest(msg).to_vec(),
            KeyAlgorithm::EcdsaP384 => sha2::Sha384::digest(msg).to_vec(),
        };
        self.piv
            .sign_digest(self.slot, self.alg, &digest)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// A PKCS#10 request (DER) for the card key in `slot`, signed by the card. The subject is a
/// placeholder: the server takes the subject from its directory.
pub fn request(piv: &Piv, slot: Slot, alg: KeyAlgorithm, point: Vec<u8>) -> Result<Vec<u8>> {
    let key = CardKey {
        piv,
        slot,
        alg,
        point,
    };
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "opencm card key");
    let csr = params
        .serialize_request(&key)
        .with_context(|| format!("the card could not sign the request for slot {slot}"))?;
    Ok(csr.der().to_vec())
}

/// The end-entity certificate (DER) of a base64 PKCS#7 certs-only answer: the one not issued by
/// itself.
pub fn leaf_of_pkcs7(der: &[u8]) -> Result<Vec<u8>> {
    use der::{Decode, Encode};
    let ci = cms::content_info::ContentInfo::from_der(der).context("the answer is not PKCS#7")?;
    let sd: cms::signed_data::SignedData = ci
        .content
        .decode_as()
        .context("the PKCS#7 answer is not SignedData")?;
    let certs = sd
        .certificates
        .ok_or_else(|| anyhow!("the PKCS#7 answer holds no certificate"))?;
    for c in certs.0.iter() {
        if let cms::cert::CertificateChoices::Certificate(cert) = c {
            let tbs = cert.tbs_certificate();
            if tbs.subject() != tbs.issuer() {
                return cert.to_der().context("re-encode the certificate");
            }
        }
    }
    Err(anyhow!(
        "the PKCS#7 answer holds only self-signed certificates"
    ))
}
