//! OCSP (RFC 6960, with RFC 5019's lightweight profile): a request read, the certificates it asks
//! about matched to this CA, and a response built and signed — by the CA's own key or by a
//! delegated responder certificate (`id-kp-OCSPSigning`, `id-pkix-ocsp-nocheck`) the CA issues.
//!
//! The ASN.1 types are RustCrypto's `x509-ocsp`. Its builder signs through the `signature`
//! traits, which the CA's keys (ring's, through rcgen; a PKCS#11 token later) do not implement, so
//! the `ResponseData` is encoded here and signed by the CA's own signing call; what the crate
//! lacks — matching a CertID to an issuer under each hash, and the signature algorithm identifiers
//! of our keys — is written here.

use crate::{CaError, CertificateAuthority, Issued, VerifiedCsr};
use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use der::asn1::{BitString, GeneralizedTime, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use opencm_domain::issued::RevocationReason;
use sha1::Digest;
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};

/// More certificates in one request than this is a malformed request (RFC 5019 clients ask for
/// one; openssl lets a user ask for a handful).
pub const MAX_CERTIFICATES_PER_REQUEST: usize = 32;
/// RFC 8954: a nonce is 1 to 32 octets.
const MAX_NONCE: usize = 32;

/// What a request cannot be answered with statuses: the response's `responseStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcspRefusal {
    /// Not a DER `OCSPRequest`, a version other than v1, no or too many certificates, a CertID
    /// hashed with an algorithm this responder does not compute, an unknown critical extension, or
    /// a nonce longer than 32 octets.
    Malformed,
    /// None of the certificates asked about was issued by this CA (RFC 5019 §2.2.3).
    Unauthorized,
    /// The status could not be read (the database did not answer): ask again.
    TryLater,
    /// The response could not be signed.
    InternalError,
}

impl OcspRefusal {
    /// The unsigned response carrying only this status.
    pub fn response_der(self) -> Vec<u8> {
        let r = match self {
            OcspRefusal::Malformed => OcspResponse::malformed_request(),
            OcspRefusal::Unauthorized => OcspResponse::unauthorized(),
            OcspRefusal::TryLater => OcspResponse::try_later(),
            OcspRefusal::InternalError => OcspResponse::internal_error(),
        };
        // A SEQUENCE holding one ENUMERATED always encodes.
        r.to_der()
            .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, 0x02])
    }

    /// As the metrics and logs name it.
    pub fn name(self) -> &'static str {
        match self {
            OcspRefusal::Malformed => "malformedRequest",
            OcspRefusal::Unauthorized => "unauthorized",
            OcspRefusal::TryLater => "tryLater",
            OcspRefusal::InternalError => "internalError",
        }
    }
}

/// The hash algorithms a CertID may be made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CertIdHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl CertIdHash {
    fn of(oid: &ObjectIdentifier) -> Option<CertIdHash> {
        use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512};
        match *oid {
            o if o == ID_SHA_1 => Some(CertIdHash::Sha1),
            o if o == ID_SHA_256 => Some(CertIdHash::Sha256),
            o if o == ID_SHA_384 => Some(CertIdHash::Sha384),
            o if o == ID_SHA_512 => Some(CertIdHash::Sha512),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            CertIdHash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            CertIdHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            CertIdHash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            CertIdHash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// What identifies the issuing CA in a CertID: the DER of its subject name and the bits of its
/// public key, hashed with whichever algorithm the request chose.
#[derive(Clone, Debug)]
pub struct IssuerIdentity {
    name_der: Vec<u8>,
    key_bits: Vec<u8>,
}

impl IssuerIdentity {
    pub fn of(ca_der: &[u8]) -> Result<IssuerIdentity, CaError> {
        let (_, cert) = x509_parser::parse_x509_certificate(ca_der)
            .map_err(|e| CaError::Load(format!("CA certificate: {e}")))?;
        Ok(IssuerIdentity {
            name_der: cert.subject().as_raw().to_vec(),
            key_bits: cert.public_key().subject_public_key.data.to_vec(),
        })
    }

    /// Whether `id` names this CA; `None` when its hash algorithm is not one computed here.
    fn names(&self, id: &CertId) -> Option<bool> {
        let hash = CertIdHash::of(&id.hash_algorithm.oid)?;
        Some(
            id.issuer_name_hash.as_bytes() == hash.digest(&self.name_der).as_slice()
                && id.issuer_key_hash.as_bytes() == hash.digest(&self.key_bits).as_slice(),
        )
    }
}

/// One certificate a request asks about.
#[derive(Clone, Debug)]
pub struct Asked {
    pub cert_id: CertId,
    /// The serial in upper-case hex without leading zeros, as opencm records serials; `None` when
    /// the CertID names another issuer.
    pub serial_hex: Option<String>,
    /// The CertID's DER: the key of a cached response.
    pub key: Vec<u8>,
}

/// A request read and matched to this CA.
#[derive(Clone, Debug)]
pub struct OcspQuery {
    pub asked: Vec<Asked>,
    /// The request's nonce extension, echoed in the response.
    pub nonce: Option<Extension>,
}

/// Reads a DER `OCSPRequest`. A request's signature, if any, is not checked: RFC 6960 lets a
/// responder ignore it, and opencm answers status to anyone, as its CRL does.
pub fn read_request(der: &[u8], issuer: &IssuerIdentity) -> Result<OcspQuery, OcspRefusal> {
    let req = OcspRequest::from_der(der).map_err(|_| OcspRefusal::Malformed)?;
    let tbs = &req.tbs_request;
    if tbs.version != Version::V1
        || tbs.request_list.is_empty()
        || tbs.request_list.len() > MAX_CERTIFICATES_PER_REQUEST
    {
        return Err(OcspRefusal::Malformed);
    }
    let mut nonce = None;
    let extensions: Vec<&Extension> = tbs.request_extensions.iter().flatten().collect();
    // RFC 5280 §4.2: an extension appears once.
    if extensions
        .iter()
        .enumerate()
        .any(|(i, e)| extensions[..i].iter().any(|o| o.extn_id == e.extn_id))
    {
        return Err(OcspRefusal::Malformed);
    }
    for ext in extensions {
        if ext.extn_id == ID_PKIX_OCSP_NONCE {
            // The nonce is an OCTET STRING inside extnValue (RFC 6960 §4.4.1); some old clients
            // put the bytes there bare. Either is echoed as sent, within RFC 8954's 32 octets.
            let len = OctetString::from_der(ext.extn_value.as_bytes())
                .map(|n| n.as_bytes().len())
                .unwrap_or(ext.extn_value.as_bytes().len());
            if len == 0 || len > MAX_NONCE {
                return Err(OcspRefusal::Malformed);
            }
            nonce = Some(ext.clone());
        } else if ext.critical {
            return Err(OcspRefusal::Malformed);
        }
    }
    let mut asked = Vec::with_capacity(tbs.request_list.len());
    for r in &tbs.request_list {
        if r.single_request_extensions
            .iter()
            .flatten()
            .any(|e| e.critical)
        {
            return Err(OcspRefusal::Malformed);
        }
        let id = &r.req_cert;
        // The hash's parameters are absent or NULL (RFC 5754); anything else would be copied
        // into the signed response.
        if id
            .hash_algorithm
            .parameters
            .as_ref()
            .is_some_and(|p| der::Tagged::tag(p) != der::Tag::Null || !p.value().is_empty())
        {
            return Err(OcspRefusal::Malformed);
        }
        let ours = issuer.names(id).ok_or(OcspRefusal::Malformed)?;
        let serial: Vec<u8> = id
            .serial_number
            .as_bytes()
            .iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect();
        asked.push(Asked {
            key: id.to_der().map_err(|_| OcspRefusal::Malformed)?,
            // Serial 0 (never issued: opencm's serials are positive) is asked of this CA all
            // the same: unknown, not unauthorized.
            serial_hex: ours.then(|| match serial.is_empty() {
                true => "00".to_string(),
                false => crate::upper_hex(&serial),
            }),
            cert_id: id.clone(),
        });
    }
    if asked.iter().all(|a| a.serial_hex.is_none()) {
        return Err(OcspRefusal::Unauthorized);
    }
    Ok(OcspQuery { asked, nonce })
}

/// A certificate's status as the responder states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcspStatus {
    Good,
    Revoked {
        at: OffsetDateTime,
        reason: RevocationReason,
    },
    /// Not a certificate this CA issued (or another issuer's).
    Unknown,
}

/// A signature over some bytes and its algorithm identifier (DER), from a CA key or a responder's.
pub struct RawSignature {
    pub algorithm_der: Vec<u8>,
    pub signature: Vec<u8>,
}

/// The AlgorithmIdentifier of the signatures an rcgen key makes, and the signature.
pub(crate) fn sign_with(
    key: &(impl rcgen::SigningKey + ?Sized),
    data: &[u8],
) -> Result<RawSignature, CaError> {
    // ecdsa-with-SHA256 / SHA384 (no parameters), sha256WithRSAEncryption (NULL parameters).
    let algorithm_der: &[u8] = if key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
        &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ]
    } else if key.algorithm() == &rcgen::PKCS_ECDSA_P384_SHA384 {
        &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ]
    } else if key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
        &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
            0x00,
        ]
    } else {
        return Err(CaError::Generate(
            "this key's signature algorithm cannot sign OCSP responses".into(),
        ));
    };
    Ok(RawSignature {
        algorithm_der: algorithm_der.to_vec(),
        signature: key.sign(data)?,
    })
}

/// id-kp-OCSPSigning.
pub const OCSP_SIGNING_EKU: &str = "1.3.6.1.5.5.7.3.9";
/// id-pkix-ocsp-nocheck: relying parties do not check the responder certificate's own status.
pub(crate) const OCSP_NOCHECK_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];

/// A delegated OCSP responder: a key made in this process and a short-lived certificate the CA
/// issued for it, renewed before it ends.
pub struct DelegatedResponder {
    key: rcgen::KeyPair,
    issued: Issued,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl DelegatedResponder {
    /// A new key and its certificate, valid from `now` for `validity`.
    pub fn issue(
        ca: &dyn CertificateAuthority,
        now: OffsetDateTime,
        validity: time::Duration,
    ) -> Result<DelegatedResponder, CaError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let public = VerifiedCsr {
            algorithm: crate::KeyAlgorithm::EcdsaP256,
            key_bits: 256,
            raw_key: key.public_key_raw().to_vec(),
        };
        let not_before = now - time::Duration::minutes(5);
        let not_after = now + validity;
        let issued = ca.issue_ocsp_responder(&public, not_before, not_after)?;
        Ok(DelegatedResponder {
            key,
            issued,
            not_before,
            not_after,
        })
    }

    /// Whether less than a third of its life is left at `now`: time to issue the next one.
    pub fn due_for_renewal(&self, now: OffsetDateTime) -> bool {
        let life = self.not_after - self.not_before;
        self.not_after - now < life / 3
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.issued.der
    }

    pub fn serial_hex(&self) -> &str {
        &self.issued.serial_hex
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
}

/// Who signs a response.
pub enum Signer<'a> {
    /// The CA's own key; the response carries no certificate (relying parties have the CA's).
    Ca(&'a dyn CertificateAuthority),
    /// A delegated responder; its certificate travels in the response.
    Delegated(&'a DelegatedResponder),
}

impl Signer<'_> {
    fn certificate_der(&self) -> Result<&[u8], CaError> {
        match self {
            Signer::Ca(ca) => ca
                .chain_der()
                .first()
                .map(Vec::as_slice)
                .ok_or_else(|| CaError::Load("the CA has no certificate".into())),
            Signer::Delegated(d) => Ok(d.certificate_der()),
        }
    }

    fn sign(&self, data: &[u8]) -> Result<RawSignature, CaError> {
        match self {
            Signer::Ca(ca) => ca.sign(data),
            Signer::Delegated(d) => sign_with(&d.key, data),
        }
    }
}

fn generalized(t: OffsetDateTime) -> Result<OcspGeneralizedTime, CaError> {
    let secs = t.unix_timestamp().max(0) as u64;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map(OcspGeneralizedTime)
        .map_err(|e| CaError::Generate(format!("OCSP time: {e}")))
}

fn crl_reason(r: RevocationReason) -> CrlReason {
    match r {
        RevocationReason::Unspecified => CrlReason::Unspecified,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    }
}

/// A signed, successful `OCSPResponse` stating `statuses` (one per certificate asked about, in
/// order), valid from `this_update` to `next_update`, produced at `produced_at`, echoing `nonce`.
/// The responder is named by the hash of its key (RFC 5019 §2.2.3).
pub fn respond(
    signer: &Signer<'_>,
    statuses: &[(CertId, OcspStatus)],
    nonce: Option<&Extension>,
    produced_at: OffsetDateTime,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Result<Vec<u8>, CaError> {
    let der_err = |e: der::Error| CaError::Generate(format!("OCSP encoding: {e}"));
    let signer_der = signer.certificate_der()?;
    let (_, signer_cert) = x509_parser::parse_x509_certificate(signer_der)
        .map_err(|e| CaError::Load(format!("responder certificate: {e}")))?;
    let key_hash = sha1::Sha1::digest(signer_cert.public_key().subject_public_key.data.as_ref());
    let mut responses = Vec::with_capacity(statuses.len());
    for (id, status) in statuses {
        let cert_status = match status {
            OcspStatus::Good => CertStatus::good(),
            OcspStatus::Unknown => CertStatus::unknown(),
            // As in the CRL, "unspecified" is not written (RFC 5280 §5.3.1).
            OcspStatus::Revoked { at, reason } => CertStatus::revoked(RevokedInfo {
                revocation_time: generalized(*at)?,
                revocation_reason: (*reason != RevocationReason::Unspecified)
                    .then(|| crl_reason(*reason)),
            }),
        };
        responses.push(SingleResponse {
            cert_id: id.clone(),
            cert_status,
            this_update: generalized(this_update)?,
            next_update: Some(generalized(next_update)?),
            single_extensions: None,
        });
    }
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(key_hash.to_vec()).map_err(der_err)?),
        produced_at: generalized(produced_at)?,
        responses,
        response_extensions: nonce.map(|n| vec![n.clone()]),
    };
    let tbs = data.to_der().map_err(der_err)?;
    let signed = signer.sign(&tbs)?;
    let certs = match signer {
        Signer::Ca(_) => None,
        Signer::Delegated(d) => Some(vec![
            x509_cert::Certificate::from_der(d.certificate_der()).map_err(der_err)?
        ]),
    };
    let basic = BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: AlgorithmIdentifierOwned::from_der(&signed.algorithm_der)
            .map_err(der_err)?,
        signature: BitString::from_bytes(&signed.signature).map_err(der_err)?,
        certs,
    };
    OcspResponse::successful(basic)
        .and_then(|r| r.to_der())
        .map_err(der_err)
}

/// An `OCSPRequest` for one certificate of `issuer_der` by serial, its CertID hashed with SHA-1
/// or SHA-256, with a nonce when given: what a client sends (the benchmark's requests).
pub fn request_der(
    issuer_der: &[u8],
    serial: &[u8],
    sha256: bool,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, CaError> {
    let der_err = |e: der::Error| CaError::Generate(format!("OCSP encoding: {e}"));
    let issuer = IssuerIdentity::of(issuer_der)?;
    let (hash, oid) = if sha256 {
        (CertIdHash::Sha256, const_oid::db::rfc5912::ID_SHA_256)
    } else {
        (CertIdHash::Sha1, const_oid::db::rfc5912::ID_SHA_1)
    };
    let id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        },
        issuer_name_hash: OctetString::new(hash.digest(&issuer.name_der)).map_err(der_err)?,
        issuer_key_hash: OctetString::new(hash.digest(&issuer.key_bits)).map_err(der_err)?,
        serial_number: x509_cert::serial_number::SerialNumber::new(serial).map_err(der_err)?,
    };
    let request_extensions = match nonce {
        Some(n) => Some(vec![Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(
                OctetString::new(n)
                    .map_err(der_err)?
                    .to_der()
                    .map_err(der_err)?,
            )
            .map_err(der_err)?,
        }]),
        None => None,
    };
    OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            request_list: vec![x509_ocsp::Request {
                req_cert: id,
                single_request_extensions: None,
            }],
            request_extensions,
            ..Default::default()
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(der_err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;
    use crate::EmbeddedCa;

    fn ca() -> EmbeddedCa {
        EmbeddedCa::generate("OCSP Test CA", OffsetDateTime::now_utc(), 1)
            .map(|(ca, _)| ca)
            .expect("CA")
    }

    #[test]
    fn garbage_is_malformed_and_another_issuer_is_unauthorized() {
        let ca = ca();
        let me = IssuerIdentity::of(&ca.chain_der()[0]).expect("identity");
        assert_eq!(
            read_request(b"\x30\x03\x02\x01\x01", &me).err(),
            Some(OcspRefusal::Malformed)
        );
        let other = self::ca();
        let id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_SHA_1,
                parameters: None,
            },
            issuer_name_hash: OctetString::new(vec![1; 20]).expect("octets"),
            issuer_key_hash: OctetString::new(vec![2; 20]).expect("octets"),
            serial_number: x509_cert::serial_number::SerialNumber::new(&[1, 2, 3]).expect("serial"),
        };
        let req = OcspRequest {
            tbs_request: x509_ocsp::TbsRequest {
                request_list: vec![x509_ocsp::Request {
                    req_cert: id,
                    single_request_extensions: None,
                }],
                ..Default::default()
            },
            optional_signature: None,
        }
        .to_der()
        .expect("request");
        let other_id = IssuerIdentity::of(&other.chain_der()[0]).expect("identity");
        assert_eq!(
            read_request(&req, &other_id).err(),
            Some(OcspRefusal::Unauthorized)
        );
        assert_eq!(
            OcspRefusal::Malformed.response_der(),
            vec![0x30, 0x03, 0x0a, 0x01, 0x01]
        );
    }

    #[test]
    fn a_request_is_read_back_and_answered_with_a_signed_response_that_parses() {
        let ca = ca();
        let me = IssuerIdentity::of(&ca.chain_der()[0]).expect("identity");
        for sha256 in [false, true] {
            let der = request_der(&ca.chain_der()[0], &[0x42, 0x01], sha256, Some(&[7; 16]))
                .expect("request");
            let q = read_request(&der, &me).expect("ours");
            assert_eq!(q.asked.len(), 1);
            assert_eq!(q.asked[0].serial_hex.as_deref(), Some("4201"));
            assert!(q.nonce.is_some());
            let now = OffsetDateTime::now_utc();
            let d =
                DelegatedResponder::issue(&ca, now, time::Duration::days(7)).expect("responder");
            assert!(!d.due_for_renewal(now));
            assert!(d.due_for_renewal(now + time::Duration::days(5)));
            let resp = respond(
                &Signer::Delegated(&d),
                &[(q.asked[0].cert_id.clone(), OcspStatus::Good)],
                q.nonce.as_ref(),
                now,
                now,
                now + time::Duration::hours(1),
            )
            .expect("signed");
            let parsed = OcspResponse::from_der(&resp).expect("parses");
            assert_eq!(
                parsed.response_status,
                x509_ocsp::OcspResponseStatus::Successful
            );
            let basic = BasicOcspResponse::from_der(
                parsed.response_bytes.expect("bytes").response.as_bytes(),
            )
            .expect("basic");
            assert_eq!(basic.certs.as_ref().map(Vec::len), Some(1));
            assert!(basic.nonce().is_some());
        }
        // A nonce longer than 32 octets is malformed (RFC 8954).
        let der = request_der(&ca.chain_der()[0], &[1], false, Some(&[7; 33])).expect("request");
        assert_eq!(read_request(&der, &me).err(), Some(OcspRefusal::Malformed));
        // Serial 0 of this CA is asked of it (unknown), not another issuer's (unauthorized).
        let der = request_der(&ca.chain_der()[0], &[0], false, None).expect("request");
        assert_eq!(
            read_request(&der, &me).expect("ours").asked[0]
                .serial_hex
                .as_deref(),
            Some("00")
        );
        // Two nonces, or hash parameters other than NULL: malformed.
        let mut req = OcspRequest::from_der(
            &request_der(&ca.chain_der()[0], &[1], false, Some(&[7; 8])).expect("request"),
        )
        .expect("parses");
        let mut twice = req.clone();
        if let Some(exts) = twice.tbs_request.request_extensions.as_mut() {
            let again = exts[0].clone();
            exts.push(again);
        }
        assert_eq!(
            read_request(&twice.to_der().expect("der"), &me).err(),
            Some(OcspRefusal::Malformed)
        );
        req.tbs_request.request_list[0]
            .req_cert
            .hash_algorithm
            .parameters = Some(der::Any::new(der::Tag::Integer, vec![5]).expect("any"));
        assert_eq!(
            read_request(&req.to_der().expect("der"), &me).err(),
            Some(OcspRefusal::Malformed)
        );
    }
}
