//! The embedded CA: an ECDSA P-256 key (by default) and a self-signed CA certificate made on first
//! start, or a subordinate certificate issued by an enterprise CA; issuance and CRLs with rcgen.

use crate::csr::VerifiedCsr;
use crate::{upper_hex, CaError, CertificateAuthority, Secret};
use opencm_domain::certificate::KeyUsage;
use opencm_domain::issued::RevocationReason;
use rcgen::PublicKeyData as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SanType,
    SerialNumber,
};
use sha1::Digest;
use time::OffsetDateTime;

/// What must be persisted to load the CA again: its certificate, its parents, and its key (to be
/// sealed before it is stored).
pub struct CaMaterial {
    pub cert_pem: String,
    pub chain_pem: String,
    pub key_pkcs8: Secret,
}

/// The CA's own key: ECDSA P-256 (the default) or RSA 2048/3072/4096.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaKeyAlgorithm {
    EcdsaP256,
    Rsa(u32),
}

impl std::fmt::Display for CaKeyAlgorithm {
    /// As the configuration names it: `ecdsa-p256`, `rsa-3072`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EcdsaP256 => f.write_str("ecdsa-p256"),
            Self::Rsa(bits) => write!(f, "rsa-{bits}"),
        }
    }
}

impl CaKeyAlgorithm {
    pub fn parse(s: &str) -> Option<CaKeyAlgorithm> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ecdsa-p256" | "p256" | "ecdsa" => Some(Self::EcdsaP256),
            "rsa-2048" => Some(Self::Rsa(2048)),
            "rsa-3072" => Some(Self::Rsa(3072)),
            "rsa-4096" => Some(Self::Rsa(4096)),
            _ => None,
        }
    }

    fn new_key(self) -> Result<KeyPair, CaError> {
        match self {
            Self::EcdsaP256 => Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?),
            Self::Rsa(bits) => {
                // ring signs with RSA keys but cannot make them; the RustCrypto rsa crate makes
                // the key (only key generation: every signature is ring's).
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits as usize)
                    .map_err(|e| CaError::Generate(format!("RSA key generation: {e}")))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| CaError::Generate(format!("RSA key encoding: {e}")))?;
                KeyPair::try_from(der.as_bytes())
                    .map_err(|e| CaError::Generate(format!("RSA key: {e}")))
            }
        }
    }
}

/// The CA's private key: in memory (sealed under the KEK at rest; the default), or on a token
/// over PKCS#11.
pub enum CaKey {
    Software(KeyPair),
    Hsm(crate::hsm::HsmKey),
}

impl rcgen::PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::Software(k) => k.der_bytes(),
            CaKey::Hsm(k) => k.der_bytes(),
        }
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            CaKey::Software(k) => rcgen::PublicKeyData::algorithm(k),
            CaKey::Hsm(k) => k.algorithm(),
        }
    }
}

impl rcgen::SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::Software(k) => k.sign(msg),
            CaKey::Hsm(k) => k.sign(msg),
        }
    }
}

pub struct EmbeddedCa {
    issuer: Issuer<'static, CaKey>,
    chain: Vec<Vec<u8>>,
    /// RSA signatures take milliseconds; ECDSA ones tens of microseconds.
    slow_signatures: bool,
    /// Where relying parties find the CRL and the CA's certificate, written into every
    /// certificate issued (CRL Distribution Points, Authority Information Access).
    publish: Option<Publish>,
}

#[derive(Clone, Debug)]
struct Publish {
    crl: String,
    ca_issuers: String,
    ocsp: Option<String>,
}

/// id-pe-authorityInfoAccess, id-ad-ocsp and id-ad-caIssuers.
const AIA_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const OCSP_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
const CA_ISSUERS_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];

/// The AuthorityInfoAccess extension's value (RFC 5280 §4.2.2.1): the OCSP responder's URI when
/// there is one, then the caIssuers URI. rcgen writes CRL distribution points but not this
/// extension, so it is built here with yasna.
fn aia(ocsp: Option<&str>, ca_issuers: &str) -> Vec<u8> {
    let access = |w: yasna::DERWriter<'_>, method: &[u64], uri: &str| {
        w.write_sequence(|w| {
            w.next()
                .write_oid(&yasna::models::ObjectIdentifier::from_slice(method));
            // GeneralName uniformResourceIdentifier: [6] IMPLICIT IA5String.
            w.next()
                .write_tagged_implicit(yasna::Tag::context(6), |w| w.write_ia5_string(uri));
        })
    };
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            if let Some(uri) = ocsp {
                access(w.next(), OCSP_OID, uri);
            }
            access(w.next(), CA_ISSUERS_OID, ca_issuers);
        });
    })
}

/// The subject of a certificate comes from the directory, never from the request. Usages are the
/// domain's (certificate templates name them); this crate maps them to X.509.
pub struct IssueRequest<'a> {
    pub key: &'a VerifiedCsr,
    pub common_name: &'a str,
    /// User principal name, written as a Microsoft UPN otherName (smart card logon needs it).
    pub upn: Option<&'a str>,
    /// The user's SID (`S-1-5-21-…`), written as Active Directory's strong-mapping extension
    /// (`szOID_NTDS_CA_SECURITY_EXT`, KB5014754) exactly as AD CS writes it.
    pub sid_extension: Option<&'a str>,
    /// The user's SID written as the subjectAltName URI `tag:microsoft.com,2022-09-14:sid:<SID>`
    /// (the other strong mapping domain controllers accept).
    pub sid_uri: Option<&'a str>,
    pub email: Option<&'a str>,
    /// DNS names or IP addresses written as subjectAltNames: the names of a TLS server.
    pub server_names: &'a [String],
    pub key_usages: &'a [KeyUsage],
    /// Dotted OIDs.
    pub extended_key_usages: &'a [String],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// 16 random bytes; the caller makes them so it can record the serial first.
    pub serial: [u8; 16],
}

#[derive(Debug)]
pub struct Issued {
    pub der: Vec<u8>,
    /// Upper-case hex, as MIM shows serial numbers.
    pub serial_hex: String,
    /// Upper-case hex SHA-1 of the DER, as MIM and Windows show thumbprints.
    pub thumbprint: String,
}

#[derive(Clone, Debug)]
pub struct Revocation {
    pub serial: Vec<u8>,
    pub at: OffsetDateTime,
    pub reason: RevocationReason,
}

const UPN_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 20, 2, 3];

/// `szOID_NTDS_CA_SECURITY_EXT`: the account's SID in a certificate, which domain controllers map
/// to the account since KB5014754 (strong certificate mapping).
pub const NTDS_CA_SECURITY_EXT_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 25, 2];
/// `szOID_NTDS_OBJECTSID`: the otherName type inside that extension.
const NTDS_OBJECTSID_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 25, 2, 1];
/// The prefix of the SAN URI form of the same mapping.
pub const SID_URI_PREFIX: &str = "tag:microsoft.com,2022-09-14:sid:";

/// The value of `szOID_NTDS_CA_SECURITY_EXT` for `sid`, as AD CS writes it ([MS-WCCE]
/// 2.2.2.7.7.4): GeneralNames holding one otherName of type `szOID_NTDS_OBJECTSID` whose value,
/// `[0] EXPLICIT`, is an OCTET STRING of the SID's text form. rcgen writes otherNames only with
/// string values, so this one is built here with yasna.
pub fn sid_extension_value(sid: &str) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            // GeneralName otherName: [0] IMPLICIT SEQUENCE { type-id, [0] EXPLICIT value }.
            w.next().write_tagged_implicit(yasna::Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next()
                        .write_oid(&yasna::models::ObjectIdentifier::from_slice(
                            NTDS_OBJECTSID_OID,
                        ));
                    w.next()
                        .write_tagged(yasna::Tag::context(0), |w| w.write_bytes(sid.as_bytes()));
                })
            });
        });
    })
}

/// The SID an `szOID_NTDS_CA_SECURITY_EXT` value carries, if it is one.
pub fn sid_from_extension_value(der: &[u8]) -> Option<String> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let sid = r.next().read_tagged_implicit(yasna::Tag::context(0), |r| {
                r.read_sequence(|r| {
                    let oid = r.next().read_oid()?;
                    let bytes = r
                        .next()
                        .read_tagged(yasna::Tag::context(0), |r| r.read_bytes())?;
                    Ok((oid, bytes))
                })
            })?;
            Ok(sid)
        })
    })
    .ok()
    .filter(|(oid, _)| oid.components().as_slice() == NTDS_OBJECTSID_OID)
    .and_then(|(_, bytes)| String::from_utf8(bytes).ok())
}

impl EmbeddedCa {
    /// A new self-signed root: ECDSA P-256, valid `years` from `now`.
    pub fn generate(
        common_name: &str,
        now: OffsetDateTime,
        years: i64,
    ) -> Result<(EmbeddedCa, CaMaterial), CaError> {
        Self::generate_with(common_name, now, years, CaKeyAlgorithm::EcdsaP256)
    }

    /// A new self-signed root with the chosen key algorithm.
    pub fn generate_with(
        common_name: &str,
        now: OffsetDateTime,
        years: i64,
        algorithm: CaKeyAlgorithm,
    ) -> Result<(EmbeddedCa, CaMaterial), CaError> {
        let key = algorithm.new_key()?;
        let cert = root_params(common_name, now, years)?.self_signed(&key)?;
        let material = CaMaterial {
            cert_pem: cert.pem(),
            chain_pem: String::new(),
            key_pkcs8: Secret(key.serialize_der()),
        };
        let ca = EmbeddedCa::load(&material.cert_pem, "", &material.key_pkcs8)?;
        Ok((ca, material))
    }

    /// The CA from its certificate (PEM), its parents (PEM, possibly empty) and its PKCS#8 key.
    pub fn load(
        cert_pem: &str,
        chain_pem: &str,
        key_pkcs8: &Secret,
    ) -> Result<EmbeddedCa, CaError> {
        let key = KeyPair::try_from(key_pkcs8.0.as_slice())
            .map_err(|e| CaError::Load(format!("key: {e}")))?;
        Self::load_with(cert_pem, chain_pem, CaKey::Software(key))
    }

    /// A new self-signed root whose key is on a token (`opencm ca init --pkcs11`): its
    /// certificate's PEM and the CA.
    pub fn generate_on_token(
        common_name: &str,
        now: OffsetDateTime,
        years: i64,
        key: crate::hsm::HsmKey,
    ) -> Result<(EmbeddedCa, String), CaError> {
        let key = CaKey::Hsm(key);
        let params = root_params(common_name, now, years)?;
        let cert = signed(&key, params.self_signed(&key))?;
        let pem = cert.pem();
        Ok((Self::load_with(&pem, "", key)?, pem))
    }

    /// The CA from its certificate (PEM), its parents (PEM, possibly empty) and its key, wherever
    /// that key is.
    pub fn load_with(cert_pem: &str, chain_pem: &str, key: CaKey) -> Result<EmbeddedCa, CaError> {
        let cert_der = pem_blocks(cert_pem)
            .into_iter()
            .next()
            .ok_or_else(|| CaError::Load("no CA certificate".into()))?;
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| CaError::Load(format!("certificate: {e}")))?;
        if x509.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(CaError::KeyMismatch);
        }
        // An HSM's signature is a round trip to the token: off the async workers too.
        let slow_signatures =
            key.algorithm() == &rcgen::PKCS_RSA_SHA256 || matches!(key, CaKey::Hsm(_));
        let issuer = Issuer::from_ca_cert_der(&cert_der.clone().into(), key)
            .map_err(|e| CaError::Load(e.to_string()))?;
        let mut chain = vec![cert_der];
        chain.extend(pem_blocks(chain_pem));
        Ok(EmbeddedCa {
            issuer,
            chain,
            slow_signatures,
            publish: None,
        })
    }

    /// Every certificate issued from now on names `{base}/pki/crl` as its CRL distribution point
    /// and `{base}/pki/ca.cer` (the issuing CA certificate, DER) as its CA issuers location:
    /// `base` is the server's public URL.
    pub fn with_public_url(mut self, base: &str) -> EmbeddedCa {
        let base = base.trim_end_matches('/');
        self.publish = Some(Publish {
            crl: format!("{base}/pki/crl"),
            ca_issuers: format!("{base}/pki/ca.cer"),
            ocsp: None,
        });
        self
    }

    /// Every certificate issued from now on names `url` as its OCSP responder (Authority
    /// Information Access, before the CA issuers location). Call after `with_public_url`.
    pub fn with_ocsp_url(mut self, url: &str) -> EmbeddedCa {
        if let Some(p) = self.publish.as_mut() {
            p.ocsp = Some(url.to_string());
        }
        self
    }

    pub fn chain_pem(&self) -> String {
        self.chain
            .iter()
            .map(|c| crate::pem("CERTIFICATE", c))
            .collect()
    }
}

/// A self-signed root's certificate: CA, keyCertSign, cRLSign, digitalSignature, valid `years`.
fn root_params(
    common_name: &str,
    now: OffsetDateTime,
    years: i64,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "opencm");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365 * years);
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.key_identifier_method = KeyIdMethod::Sha256;
    Ok(params)
}

/// A signing step's result: a token that did not sign is `Unavailable` (503, tried again later),
/// with its reason; any other failure is rcgen's.
fn signed<T>(key: &CaKey, r: Result<T, rcgen::Error>) -> Result<T, CaError> {
    r.map_err(|e| match (key, e) {
        (CaKey::Hsm(k), rcgen::Error::RemoteKeyError) => CaError::Unavailable(
            k.take_failure()
                .unwrap_or_else(|| "the HSM did not sign".into()),
        ),
        (_, e) => e.into(),
    })
}

impl CertificateAuthority for EmbeddedCa {
    fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    fn slow_signatures(&self) -> bool {
        self.slow_signatures
    }

    fn issue(&self, req: &IssueRequest<'_>) -> Result<Issued, CaError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, req.common_name);
        params.distinguished_name = dn;
        if let Some(upn) = req.upn {
            params.subject_alt_names.push(SanType::OtherName((
                UPN_OID.to_vec(),
                rcgen::OtherNameValue::Utf8String(upn.to_string()),
            )));
        }
        if let Some(email) = req.email {
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(email.try_into()?));
        }
        if let Some(sid) = req.sid_uri {
            params.subject_alt_names.push(SanType::URI(
                format!("{SID_URI_PREFIX}{sid}").as_str().try_into()?,
            ));
        }
        if let Some(sid) = req.sid_extension {
            // Non-critical, as AD CS marks it.
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    NTDS_CA_SECURITY_EXT_OID,
                    sid_extension_value(sid),
                ));
        }
        for name in req.server_names {
            params
                .subject_alt_names
                .push(match name.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(name.as_str().try_into()?),
                });
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = req.key_usages.iter().map(|u| key_usage(*u)).collect();
        params.extended_key_usages = req
            .extended_key_usages
            .iter()
            .map(|o| extended_key_usage(o))
            .collect::<Result<_, _>>()?;
        params.not_before = req.not_before;
        params.not_after = req.not_after;
        // A positive INTEGER: clear the top bit so DER needs no leading zero and the serial
        // shown (upper hex) is exactly these bytes.
        let mut serial = req.serial;
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        if let Some(p) = &self.publish {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![p.crl.clone()],
            }];
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    AIA_OID,
                    aia(p.ocsp.as_deref(), &p.ca_issuers),
                ));
        }
        let cert = signed(self.issuer.key(), params.signed_by(req.key, &self.issuer))?;
        let der = cert.der().to_vec();
        Ok(Issued {
            serial_hex: upper_hex(&serial),
            thumbprint: upper_hex(&sha1::Sha1::digest(&der)),
            der,
        })
    }

    fn crl(
        &self,
        revoked: &[Revocation],
        number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, CaError> {
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&r.serial),
                    revocation_time: r.at,
                    reason_code: Some(crl_reason(r.reason)),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(signed(self.issuer.key(), params.signed_by(&self.issuer))?
            .der()
            .to_vec())
    }

    fn sign(&self, data: &[u8]) -> Result<crate::ocsp::RawSignature, CaError> {
        let key = self.issuer.key();
        match (crate::ocsp::sign_with(key, data), key) {
            (Err(CaError::Generate(_)), CaKey::Hsm(k)) => Err(CaError::Unavailable(
                k.take_failure()
                    .unwrap_or_else(|| "the HSM did not sign".into()),
            )),
            (r, _) => r,
        }
    }

    fn issue_ocsp_responder(
        &self,
        key: &VerifiedCsr,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Issued, CaError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "opencm OCSP responder");
        dn.push(DnType::OrganizationName, "opencm");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        // id-pkix-ocsp-nocheck: its value is NULL (RFC 6960 §4.2.2.2.1).
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                crate::ocsp::OCSP_NOCHECK_OID,
                vec![0x05, 0x00],
            ));
        params.not_before = not_before;
        params.not_after = not_after;
        let serial = random_serial();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = signed(self.issuer.key(), params.signed_by(key, &self.issuer))?;
        let der = cert.der().to_vec();
        Ok(Issued {
            serial_hex: upper_hex(&serial),
            thumbprint: upper_hex(&sha1::Sha1::digest(&der)),
            der,
        })
    }
}

fn key_usage(u: KeyUsage) -> KeyUsagePurpose {
    match u {
        KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
        KeyUsage::NonRepudiation => KeyUsagePurpose::ContentCommitment,
        KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
        KeyUsage::DataEncipherment => KeyUsagePurpose::DataEncipherment,
        KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
    }
}

fn extended_key_usage(oid: &str) -> Result<ExtendedKeyUsagePurpose, CaError> {
    Ok(match oid {
        "1.3.6.1.5.5.7.3.1" => ExtendedKeyUsagePurpose::ServerAuth,
        "1.3.6.1.5.5.7.3.2" => ExtendedKeyUsagePurpose::ClientAuth,
        "1.3.6.1.5.5.7.3.3" => ExtendedKeyUsagePurpose::CodeSigning,
        "1.3.6.1.5.5.7.3.4" => ExtendedKeyUsagePurpose::EmailProtection,
        other => ExtendedKeyUsagePurpose::Other(
            other
                .split('.')
                .map(|arc| arc.parse::<u64>())
                .collect::<Result<_, _>>()
                .map_err(|_| CaError::Generate(format!("'{other}' is not a dotted OID")))?,
        ),
    })
}

fn crl_reason(r: RevocationReason) -> rcgen::RevocationReason {
    use rcgen::RevocationReason as R;
    match r {
        RevocationReason::Unspecified => R::Unspecified,
        RevocationReason::KeyCompromise => R::KeyCompromise,
        RevocationReason::CaCompromise => R::CaCompromise,
        RevocationReason::AffiliationChanged => R::AffiliationChanged,
        RevocationReason::Superseded => R::Superseded,
        RevocationReason::CessationOfOperation => R::CessationOfOperation,
        RevocationReason::CertificateHold => R::CertificateHold,
        RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => R::AaCompromise,
    }
}

fn random_serial() -> [u8; 16] {
    use rand::RngCore;
    let mut s = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s[0] = (s[0] & 0x7f) | 0x01;
    s
}

/// The DER of every PEM block in `text`.
pub fn pem_decode(text: &str) -> Vec<Vec<u8>> {
    pem_blocks(text)
}

fn pem_blocks(text: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("-----BEGIN") {
            cur = Some(String::new());
        } else if l.starts_with("-----END") {
            if let Some(b) = cur.take() {
                if let Ok(d) = base64::engine::general_purpose::STANDARD.decode(b) {
                    out.push(d);
                }
            }
        } else if let Some(b) = cur.as_mut() {
            b.push_str(l);
        }
    }
    out
}
