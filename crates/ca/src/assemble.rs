//! A profile's certificates assembled, once approved: for each certificate template the key (the
//! client's, from its verified CSR, or one made here), the serial, the validity window (capped by
//! the card a certificate goes onto), the subject from the directory, the signature, and what is
//! delivered — a PKCS#7 of the chain, or an AES-256 PKCS#12 for a key made here, which is also
//! sealed under the KEK when the template archives it for Recover.

use crate::{
    certs_only, generate_key, pfx_aes256, subject_common_name, CaError, CertificateAuthority,
    IssueRequest, Issued, KeyAlgorithm, Secret, VerifiedCsr,
};
use base64::Engine as _;
use opencm_domain::certificate::{CertificateTemplate, KeyAlgorithmName};
use opencm_domain::issued::{CertificateRecord, CertificateStatus};
use opencm_domain::{Principal, ProfileId, RequestId, Timestamp};

/// Seals private keys kept for Recover (AES-256-GCM under the KEK) and opens them again.
pub trait KeyArchive: Send + Sync + 'static {
    fn seal(&self, key: &Secret) -> String;
    fn open(&self, sealed: &str) -> Result<Secret, String>;
}

impl KeyArchive for crate::Kek {
    fn seal(&self, key: &Secret) -> String {
        crate::Kek::seal(self, key)
    }
    fn open(&self, sealed: &str) -> Result<Secret, String> {
        crate::Kek::open(self, sealed).map_err(|e| e.to_string())
    }
}

/// One certificate as its caller receives it.
pub struct Delivered {
    pub template_common_name: String,
    pub pkcs7: Option<Vec<u8>>,
    pub pfx: Option<Vec<u8>>,
}

/// Everything a profile's issuance needs, owned (it runs on the blocking pool when slow).
pub struct ProfileIssue {
    /// The certificate templates to issue, in order.
    pub wanted: Vec<CertificateTemplate>,
    /// The client's verified CSRs, one per template whose key is not made here, in order.
    pub csrs: Vec<VerifiedCsr>,
    /// The user the certificates are for, as the directory has them.
    pub subject: Principal,
    /// Protects the PKCS#12 of keys made here.
    pub password: String,
    pub request: RequestId,
    pub profile: ProfileId,
    pub now: Timestamp,
    /// No certificate outlives the card it goes onto (a temporary card's expiry).
    pub not_after_cap: Option<Timestamp>,
}

/// Issues every certificate of the profile: the records to store and what to deliver.
pub fn issue_profile(
    ca: &dyn CertificateAuthority,
    keys: &dyn KeyArchive,
    job: ProfileIssue,
) -> Result<(Vec<CertificateRecord>, Vec<Delivered>), CaError> {
    let issuer = ca
        .chain_der()
        .first()
        .and_then(|c| subject_common_name(c))
        .unwrap_or_default();
    let mut csrs = job.csrs.iter();
    let mut records = Vec::new();
    let mut out = Vec::new();
    for t in &job.wanted {
        let (csr, server_key) = if t.server_generated {
            let alg = match t.key_algorithm {
                KeyAlgorithmName::EcdsaP384 => KeyAlgorithm::EcdsaP384,
                _ => KeyAlgorithm::EcdsaP256,
            };
            let (public, private) = generate_key(alg)?;
            (public, Some(private))
        } else {
            let c = csrs
                .next()
                .ok_or_else(|| CaError::Generate("certificate requests ran out".into()))?;
            (c.clone(), None)
        };
        // One validity window, used for the certificate and for the record of it.
        let not_before = Timestamp::from_micros(job.now.micros() - 5 * 60_000_000);
        let mut not_after =
            Timestamp::from_micros(job.now.micros() + i64::from(t.validity_days) * 86_400_000_000);
        if let Some(cap) = job.not_after_cap.filter(|cap| *cap < not_after) {
            not_after = cap;
        }
        let issued = issue_one(ca, t, &csr, &job.subject, not_before, not_after)?;
        let mut chain = vec![issued.der.clone()];
        chain.extend(ca.chain_der().iter().cloned());
        let (pkcs7, pfx) = match &server_key {
            Some(key) => (
                None,
                Some(pfx_aes256(&t.common_name, key, &chain, &job.password)?),
            ),
            None => (Some(certs_only(&chain)), None),
        };
        records.push(CertificateRecord {
            serial_hex: issued.serial_hex.clone(),
            profile: job.profile,
            request: job.request,
            user: job.subject.uuid,
            template_common_name: t.common_name.clone(),
            der_b64: base64::engine::general_purpose::STANDARD.encode(&issued.der),
            thumbprint: issued.thumbprint.clone(),
            issuer: issuer.clone(),
            subject: job.subject.display_name.clone(),
            not_before,
            not_after,
            status: CertificateStatus::Valid,
            revoked_at: None,
            revocation_reason: None,
            server_generated: t.server_generated,
            sealed_key: server_key
                .as_ref()
                .filter(|_| t.archive_key)
                .map(|k| keys.seal(k)),
        });
        out.push(Delivered {
            template_common_name: t.common_name.clone(),
            pkcs7,
            pfx,
        });
    }
    Ok((records, out))
}

/// Signs one certificate. The subject comes from the directory: CN = display name, the UPN
/// (the directory's, else the login), the e-mail address (the directory's, else the login when it
/// is one), and the user's SID for strong certificate mapping (KB5014754) unless the certificate
/// template turns it off.
fn issue_one(
    ca: &dyn CertificateAuthority,
    t: &CertificateTemplate,
    csr: &VerifiedCsr,
    target: &Principal,
    not_before: Timestamp,
    not_after: Timestamp,
) -> Result<Issued, CaError> {
    use rand::RngCore;
    let mut serial = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut serial);
    let ekus: Vec<String> = t
        .extended_key_usages
        .iter()
        .map(|e| e.oid().to_string())
        .collect();
    // Only an account SID of a domain (S-1-5-21-…) is one a domain controller can map.
    let sid = target.sid.is_domain_account().then(|| target.sid.as_str());
    ca.issue(&IssueRequest {
        key: csr,
        common_name: &target.display_name,
        upn: Some(target.upn()),
        sid_extension: sid.filter(|_| t.sid_extension),
        sid_uri: sid.filter(|_| t.sid_san_uri),
        email: target.email(),
        server_names: &[],
        key_usages: &t.key_usages,
        extended_key_usages: &ekus,
        not_before: not_before.to_offset_date_time(),
        not_after: not_after.to_offset_date_time(),
        serial,
    })
}
