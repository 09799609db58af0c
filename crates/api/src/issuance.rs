//! Certificate issuance for a request's execution step (`POST /requests/{id}/certificatedata`):
//! each client CSR is checked (signature = proof of possession, algorithm and size against the
//! certificate template), each certificate is signed by the CA with the subject taken from the
//! directory, and the request moves Approved → Executing with its new profile (status New) and the
//! certificates recorded in the same transaction.

use crate::error::ApiError;
use crate::service::{change, visible, Decided};
use crate::AppState;
use base64::Engine;
use opencm_ca::{certs_only, parse_csr, pfx_aes256, IssueRequest};
use opencm_domain::certificate::{CertificateTemplate, KeyAlgorithmName, KeyUsage};
use opencm_domain::enums::profile_flags;
use opencm_domain::issued::CertificateStatus;
use opencm_domain::profile::ProfileStatus;
use opencm_domain::request::{self, Request};
use opencm_domain::{Guid, Principal, RequestStatus, RequestType, Timestamp};
use opencm_store::{CertificateRecord, Effect, ProfileRecord};

/// One certificate response, before it becomes wire JSON.
pub struct Delivered {
    pub template_common_name: String,
    pub pkcs7: Option<Vec<u8>>,
    pub pfx: Option<Vec<u8>>,
}

/// The certificate templates a request issues.
pub fn certificates_for(
    req: &Request,
    templates: &[CertificateTemplate],
) -> Vec<CertificateTemplate> {
    match req.request_type {
        RequestType::Enroll
        | RequestType::Renew
        | RequestType::Duplicate
        | RequestType::TemporaryCards => templates.to_vec(),
        _ => Vec::new(),
    }
}

fn refuse(code: &'static str, m: String) -> ApiError {
    ApiError::bad_request(code, m)
}

fn x509_key_usages(t: &CertificateTemplate) -> Vec<rcgen_ku::KeyUsagePurpose> {
    t.key_usages
        .iter()
        .map(|u| match u {
            KeyUsage::DigitalSignature => rcgen_ku::KeyUsagePurpose::DigitalSignature,
            KeyUsage::NonRepudiation => rcgen_ku::KeyUsagePurpose::ContentCommitment,
            KeyUsage::KeyEncipherment => rcgen_ku::KeyUsagePurpose::KeyEncipherment,
            KeyUsage::DataEncipherment => rcgen_ku::KeyUsagePurpose::DataEncipherment,
            KeyUsage::KeyAgreement => rcgen_ku::KeyUsagePurpose::KeyAgreement,
        })
        .collect()
}

fn x509_ekus(t: &CertificateTemplate) -> Result<Vec<rcgen_ku::ExtendedKeyUsagePurpose>, ApiError> {
    let oids = t.eku_oids().map_err(ApiError::internal)?;
    Ok(oids
        .iter()
        .map(|o| match o.as_str() {
            "1.3.6.1.5.5.7.3.1" => rcgen_ku::ExtendedKeyUsagePurpose::ServerAuth,
            "1.3.6.1.5.5.7.3.2" => rcgen_ku::ExtendedKeyUsagePurpose::ClientAuth,
            "1.3.6.1.5.5.7.3.3" => rcgen_ku::ExtendedKeyUsagePurpose::CodeSigning,
            "1.3.6.1.5.5.7.3.4" => rcgen_ku::ExtendedKeyUsagePurpose::EmailProtection,
            other => rcgen_ku::ExtendedKeyUsagePurpose::Other(
                other.split('.').filter_map(|p| p.parse().ok()).collect(),
            ),
        })
        .collect())
}

/// Re-exported rcgen types the CA's `IssueRequest` takes.
mod rcgen_ku {
    pub use opencm_ca::{ExtendedKeyUsagePurpose, KeyUsagePurpose};
}

pub async fn submit(
    state: &AppState,
    caller: &Principal,
    id: Guid,
    csrs: Vec<String>,
    pfx_password: Option<String>,
    comment: String,
) -> Result<Vec<Delivered>, ApiError> {
    // Checks that need no signing happen first, so a bad request costs nothing.
    let current = visible(state, caller, id).await?;
    request::begin_execution(&current, caller)?;
    let template = state
        .store
        .template(current.profile_template)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "ProfileTemplateNotFound",
                "The request's profile template no longer exists.",
            )
        })?;
    if matches!(
        current.request_type,
        RequestType::Recover | RequestType::RecoverOnBehalf
    ) {
        return recover(state, caller, &current, pfx_password.unwrap_or_default()).await;
    }
    // Already issued: say so before judging the CSRs of a call that must not issue at all.
    if already_issued(&current) {
        return Err(ApiError::conflict(
            "AlreadyIssued",
            format!("Certificates were already issued for request {id}."),
        ));
    }
    let wanted = certificates_for(&current, &template.certificates);
    if wanted.is_empty() {
        return Err(refuse(
            "NoCertificates",
            format!(
                "A {} request from '{}' issues no certificates.",
                current.request_type, template.name
            ),
        ));
    }
    let client: Vec<&CertificateTemplate> = wanted.iter().filter(|c| !c.server_generated).collect();
    if csrs.len() != client.len() {
        let names: Vec<&str> = client.iter().map(|c| c.common_name.as_str()).collect();
        return Err(refuse(
            "InvalidCertificateRequests",
            format!(
                "Expected {} certificate request(s), one for each of: {}; got {}.",
                client.len(),
                names.join(", "),
                csrs.len()
            ),
        ));
    }
    let mut verified = Vec::with_capacity(client.len());
    for (i, (t, text)) in client.iter().zip(&csrs).enumerate() {
        let csr = parse_csr(text).map_err(|e| {
            refuse(
                "InvalidCertificateRequest",
                format!(
                    "Certificate request {} (for '{}') is refused: {e}.",
                    i + 1,
                    t.common_name
                ),
            )
        })?;
        if csr.algorithm.mim_name() != t.key_algorithm.mim_name() || csr.key_bits < t.key_bits() {
            return Err(refuse(
                "InvalidCertificateRequest",
                format!(
                    "Certificate request {} (for '{}') has a {} {}-bit key; the template requires {} with at least {} bits.",
                    i + 1,
                    t.common_name,
                    csr.algorithm.mim_name(),
                    csr.key_bits,
                    t.key_algorithm.mim_name(),
                    t.key_bits()
                ),
            ));
        }
        verified.push(csr);
    }
    let password = pfx_password.unwrap_or_default();
    if wanted.iter().any(|c| c.server_generated) && password.is_empty() {
        return Err(refuse(
            "PfxPasswordRequired",
            "'pfxpassword' is required: this profile has server-generated keys.".into(),
        ));
    }
    let target = state
        .store
        .user_by_uuid(current.target)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "UserNotFound",
                "The request's target user no longer exists.",
            )
        })?;

    // 1. Claim: Approved -> Executing with the new profile reserved, under the request's (and
    //    the acted-on profile's) version. Of two racing calls exactly one claims; the other
    //    sees the claim on its fresh read and answers AlreadyIssued. Nothing is signed yet.
    let profile = Guid::new_random();
    let (template, comment) = (&template, &comment);
    let target_uuid = target.uuid;
    let claimed = change(state, caller, id, |current, now| async move {
        if already_issued(&current) {
            return Err(ApiError::conflict(
                "AlreadyIssued",
                format!("Certificates were already issued for request {id}."),
            ));
        }
        let executing = request::begin_execution(&current, caller)?;
        let (old, _) = crate::service::touched_profiles(state, &current).await?;
        let guard = opencm_domain::profile::on_execution(
            current.request_type,
            old.as_ref().map(ProfileRecord::state).as_ref(),
        )?;
        let mut effects = vec![Effect::InsertProfile(ProfileRecord {
            uuid: profile,
            status: ProfileStatus::New,
            flags: profile_flags::PRIMARY,
            parent: current.old_profile,
            primary: Guid::NIL,
            assigned_user: target_uuid,
            template: template.uuid,
            template_version: template.version,
            comment: comment.clone(),
            request: id,
            created: now,
            version: 0,
        })];
        effects.extend(guard.map(Effect::Profile));
        Ok(Some(Decided {
            next: Request {
                new_profile: profile,
                ..executing
            },
            approval: None,
            action: "Execute",
            detail: format!("profile {profile} reserved for issuance"),
            effects,
        }))
    })
    .await?;

    // 2. Sign, once, outside any retry loop. Server-side key generation with PBKDF2 for the
    //    PKCS#12, or an RSA CA's signature, takes milliseconds: that runs on the blocking pool. A
    //    P-256 signature for a client CSR (~20 us) costs less inline than the thread handoff
    //    (measured: -15% enrolments/s).
    let job = SignJob {
        ca: state.ca.clone(),
        kek: state.kek.clone(),
        wanted,
        csrs: verified,
        target,
        password,
        request: id,
        profile,
        now: state.clock.now(),
    };
    let n = job.wanted.len();
    let heavy = job.ca.slow_signatures() || job.wanted.iter().any(|t| t.server_generated);
    let (certificates, delivered) = if heavy {
        tokio::task::spawn_blocking(move || sign_all(job))
            .await
            .map_err(|e| ApiError::internal(format!("signing task failed: {e}")))??
    } else {
        sign_all(job)?
    };

    // 3. Record what was signed on the profile the claim reserved. Another writer may have
    //    changed the request meanwhile (a cancel): the certificates are recorded all the same, so
    //    none is ever lost, and revoked at once if the request no longer runs.
    let certificates = &certificates;
    let recorded = change(state, caller, id, |current, now| async move {
        if current.new_profile != claimed.new_profile {
            return Err(ApiError::internal(
                "the claimed profile changed under issuance",
            ));
        }
        let (status, reason) = opencm_domain::issued::status_at_issue(current.status);
        let effects = certificates
            .iter()
            .map(|c| {
                Effect::InsertCertificate(Box::new(CertificateRecord {
                    status,
                    revocation_reason: reason,
                    revoked_at: if reason.is_some() {
                        now
                    } else {
                        Timestamp::UNSET
                    },
                    ..c.clone()
                }))
            })
            .collect();
        Ok(Some(Decided {
            next: current.clone(),
            approval: None,
            action: "Issue",
            detail: format!("{n} certificate(s) issued"),
            effects,
        }))
    })
    .await?;
    if recorded.status != RequestStatus::Executing {
        return Err(ApiError::conflict(
            "InvalidTransition",
            format!(
                "Request {id} became {} while its certificates were issued; they were revoked.",
                recorded.status
            ),
        ));
    }
    Ok(delivered)
}

/// A request has had its certificates issued once it points at a new profile of its own.
fn already_issued(r: &Request) -> bool {
    !r.new_profile.is_nil() && r.new_profile != r.old_profile
}

/// Everything the signing thread needs, owned.
struct SignJob {
    ca: std::sync::Arc<dyn opencm_ca::CertificateAuthority>,
    kek: std::sync::Arc<opencm_ca::Kek>,
    wanted: Vec<CertificateTemplate>,
    csrs: Vec<opencm_ca::VerifiedCsr>,
    target: Principal,
    password: String,
    request: Guid,
    profile: Guid,
    now: Timestamp,
}

/// Issues every certificate of the profile: the client's keys from their CSRs, the others made
/// here and delivered in a PKCS#12 (and sealed for Recover when the template archives them).
fn sign_all(job: SignJob) -> Result<(Vec<CertificateRecord>, Vec<Delivered>), ApiError> {
    let issuer = job
        .ca
        .chain_der()
        .first()
        .and_then(|c| opencm_ca::subject_common_name(c))
        .unwrap_or_default();
    let mut csrs = job.csrs.iter();
    let mut effects = Vec::new();
    let mut out = Vec::new();
    for t in &job.wanted {
        let (csr, server_key) = if t.server_generated {
            let alg = match t.key_algorithm {
                KeyAlgorithmName::EcdsaP384 => opencm_ca::KeyAlgorithm::EcdsaP384,
                _ => opencm_ca::KeyAlgorithm::EcdsaP256,
            };
            let (public, private) =
                opencm_ca::generate_key(alg).map_err(|e| ApiError::internal(e.to_string()))?;
            (public, Some(private))
        } else {
            let c = csrs
                .next()
                .ok_or_else(|| ApiError::internal("certificate requests ran out"))?;
            (c.clone(), None)
        };
        // One validity window, used for the certificate and for the record of it.
        let not_before = Timestamp::from_micros(job.now.micros() - 5 * 60_000_000);
        let not_after =
            Timestamp::from_micros(job.now.micros() + i64::from(t.validity_days) * 86_400_000_000);
        let issued = issue_one(&*job.ca, t, &csr, &job.target, not_before, not_after)?;
        let mut chain = vec![issued.der.clone()];
        chain.extend(job.ca.chain_der().iter().cloned());
        let (pkcs7, pfx) = match &server_key {
            Some(key) => {
                let pfx = pfx_aes256(&t.common_name, key, &chain, &job.password)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                (None, Some(pfx))
            }
            None => (Some(certs_only(&chain)), None),
        };
        effects.push(CertificateRecord {
            serial_hex: issued.serial_hex.clone(),
            profile: job.profile,
            request: job.request,
            user: job.target.uuid,
            template_common_name: t.common_name.clone(),
            der_b64: base64::engine::general_purpose::STANDARD.encode(&issued.der),
            thumbprint: issued.thumbprint.clone(),
            issuer: issuer.clone(),
            subject: job.target.display_name.clone(),
            not_before,
            not_after,
            status: CertificateStatus::Valid,
            revoked_at: Timestamp::UNSET,
            revocation_reason: None,
            server_generated: t.server_generated,
            sealed_key: server_key
                .as_ref()
                .filter(|_| t.archive_key)
                .map(|k| job.kek.seal(k)),
        });
        out.push(Delivered {
            template_common_name: t.common_name.clone(),
            pkcs7,
            pfx,
        });
    }
    Ok((effects, out))
}

/// Signs one certificate. The subject comes from the directory: CN = display name, UPN =
/// login, and the login as e-mail address when it is one.
fn issue_one(
    ca: &dyn opencm_ca::CertificateAuthority,
    t: &CertificateTemplate,
    csr: &opencm_ca::VerifiedCsr,
    target: &Principal,
    not_before: Timestamp,
    not_after: Timestamp,
) -> Result<opencm_ca::Issued, ApiError> {
    use rand::RngCore;
    let mut serial = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut serial);
    let login = target.login.as_str();
    ca.issue(&IssueRequest {
        key: csr,
        common_name: &target.display_name,
        upn: Some(login),
        email: login.contains('@').then_some(login),
        key_usages: &x509_key_usages(t),
        extended_key_usages: &x509_ekus(t)?,
        not_before: not_before.to_offset_date_time(),
        not_after: not_after.to_offset_date_time(),
        serial,
    })
    .map_err(|e| ApiError::internal(format!("issuance failed: {e}")))
}

/// Recover: the profile's archived keys, each delivered with its certificate in a new PKCS#12
/// protected by the caller's `pfxpassword`. Keys are delivered once per request.
async fn recover(
    state: &AppState,
    caller: &Principal,
    current: &Request,
    password: String,
) -> Result<Vec<Delivered>, ApiError> {
    let id = current.uuid;
    if current.status == opencm_domain::RequestStatus::Executing {
        return Err(ApiError::conflict(
            "AlreadyDelivered",
            format!("The archived keys were already delivered for request {id}."),
        ));
    }
    if password.is_empty() {
        return Err(refuse(
            "PfxPasswordRequired",
            "'pfxpassword' is required to deliver recovered keys.".into(),
        ));
    }
    let archived: Vec<CertificateRecord> = state
        .store
        .certificates_of_profile(current.old_profile)
        .await?
        .into_iter()
        .filter(|c| c.sealed_key.is_some())
        .collect();
    if archived.is_empty() {
        return Err(ApiError::conflict(
            "NothingToRecover",
            format!("Profile {} has no archived keys.", current.old_profile),
        ));
    }
    // Opening sealed keys and PBKDF2 for each PKCS#12 run on the blocking pool.
    let (ca, kek) = (state.ca.clone(), state.kek.clone());
    let out = tokio::task::spawn_blocking(move || -> Result<Vec<Delivered>, ApiError> {
        let mut out = Vec::new();
        for c in &archived {
            let key = kek
                .open(c.sealed_key.as_deref().unwrap_or_default())
                .map_err(|e| ApiError::internal(format!("archived key: {e}")))?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(&c.der_b64)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let mut chain = vec![der];
            chain.extend(ca.chain_der().iter().cloned());
            let pfx = pfx_aes256(&c.template_common_name, &key, &chain, &password)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            out.push(Delivered {
                template_common_name: c.template_common_name.clone(),
                pkcs7: None,
                pfx: Some(pfx),
            });
        }
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::internal(format!("recovery task failed: {e}")))??;
    let n = out.len();
    change(state, caller, id, |current, _| async move {
        if current.status == opencm_domain::RequestStatus::Executing {
            return Err(ApiError::conflict(
                "AlreadyDelivered",
                format!("The archived keys were already delivered for request {id}."),
            ));
        }
        let next = request::begin_execution(&current, caller)?;
        let (old, _) = crate::service::touched_profiles(state, &current).await?;
        let guard = opencm_domain::profile::on_execution(
            current.request_type,
            old.as_ref().map(ProfileRecord::state).as_ref(),
        )?;
        Ok(Some(Decided {
            next,
            approval: None,
            action: "Recover",
            detail: format!("{n} archived key(s) delivered"),
            effects: guard.map(Effect::Profile).into_iter().collect(),
        }))
    })
    .await?;
    Ok(out)
}
