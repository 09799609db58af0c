//! Certificate issuance, the execution step of Enroll, Renew, OnlineUpdate, Duplicate and
//! TemporaryCards requests
//! (`certificaterequestgenerationoptions`, `certificatedata`), and Recover's delivery of archived
//! keys.
//!
//! Issuance claims before it signs: (1) the request moves Approved → Executing with its new
//! profile reserved, under the version check, so of two racing calls exactly one claims; (2) the
//! CA signs once, outside any retry loop; (3) the certificates are recorded on the claimed
//! profile — revoked at once if the request was canceled meanwhile, so a signed certificate is
//! never lost nor left valid. Checks that need no signing come first, so a bad call costs nothing.

use crate::error::{AppError, ErrorCode};
use crate::ports::{CertificateRecord, ProfileRecord};
use crate::{App, Issuing};
use base64::Engine;
use opencm_ca::{parse_csr, pfx_aes256, ProfileIssue, VerifiedCsr};
use opencm_domain::certificate::CertificateTemplate;
use opencm_domain::decided::RuleError;
use opencm_domain::request::{self, issuing, rights, ActionError, Request};
use opencm_domain::{Principal, ProfileId, RequestId, RequestStatus, RequestType};

/// A certificate the client makes a key for, and where a PIV card keeps it.
pub struct GenerationOption {
    pub certificate: CertificateTemplate,
    /// The PIV slot (`9a`, ...) the template's `piv_slots` names for it.
    pub piv_slot: Option<String>,
}

/// `POST /requests/{id}/certificatedata`, parsed from the wire.
pub struct CertificateData {
    /// Base64 PKCS#10 (PEM tolerated), one per generation option, in their order.
    pub csrs: Vec<String>,
    /// Protects the PKCS#12 of server-generated (or recovered) keys.
    pub pfx_password: Option<String>,
    pub comment: String,
}

/// One certificate response, before it becomes wire JSON.
pub use opencm_ca::Delivered;

fn refuse(code: ErrorCode, m: impl Into<String>) -> AppError {
    AppError::new(code, m)
}

impl App {
    /// One entry per certificate the client must generate a key and request for, with the PIV
    /// slot the template puts it in, if it names one. Needs Execute.
    pub async fn generation_options(
        &self,
        caller: &Principal,
        id: RequestId,
    ) -> Result<Vec<GenerationOption>, AppError> {
        let r = self.request(caller, id).await?;
        if !r.allows(caller, rights::EXECUTE) {
            return Err(ActionError::Forbidden(rights::EXECUTE, id).into());
        }
        let Some(t) = self.templates.get(r.profile_template).await? else {
            return Ok(Vec::new());
        };
        let no_slots = Default::default();
        let slots = t.smartcard_config().map_or(&no_slots, |c| &c.piv_slots);
        Ok(t.certificates_issued_by(r.request_type)
            .iter()
            .filter(|c| !c.server_generated)
            .map(|c| GenerationOption {
                piv_slot: slots
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(&c.common_name))
                    .map(|(_, slot)| slot.to_ascii_lowercase()),
                certificate: c.clone(),
            })
            .collect())
    }

    pub async fn submit_certificate_data(
        &self,
        caller: &Principal,
        id: RequestId,
        data: CertificateData,
    ) -> Result<Vec<Delivered>, AppError> {
        let current = self.request(caller, id).await?;
        request::begin_execution(&current, caller)?;
        let template = self
            .templates
            .get(current.profile_template)
            .await?
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::ProfileTemplateNotFound,
                    "The request's profile template no longer exists.",
                )
            })?;
        let password = data.pfx_password.unwrap_or_default();
        if matches!(
            current.request_type,
            RequestType::Recover | RequestType::RecoverOnBehalf
        ) {
            return self.recover(caller, &current, password).await;
        }
        // Already issued: say so before judging the CSRs of a call that must not issue at all.
        if issuing::already_issued(&current) {
            return Err(RuleError::AlreadyIssued(id).into());
        }
        let wanted = template
            .certificates_issued_by(current.request_type)
            .to_vec();
        if wanted.is_empty() {
            return Err(refuse(
                ErrorCode::NoCertificates,
                format!(
                    "A {} request from '{}' issues no certificates.",
                    current.request_type, template.name
                ),
            ));
        }
        let verified = verify_csrs(&wanted, &data.csrs)?;
        if wanted.iter().any(|c| c.server_generated) && password.is_empty() {
            return Err(refuse(
                ErrorCode::PfxPasswordRequired,
                "'pfxpassword' is required: this profile has server-generated keys.",
            ));
        }
        let target = self
            .directory
            .user_by_uuid(current.target)
            .await?
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::UserNotFound,
                    "The request's target user no longer exists.",
                )
            })?;

        // A card request issues onto its bound card, within the card's room for certificates.
        let (card, card_expires) = self
            .card_for_issuance(&current, &template, wanted.len())
            .await?;

        // 1. Claim.
        let claim = issuing::Claim {
            profile: ProfileId::new_time_ordered(),
            template: &template,
            user: target.uuid,
            card,
            comment: &data.comment,
        };
        let profile = claim.profile;
        let claim = &claim;
        let load = |current: Request| async move {
            let now = self.clock.now();
            self.load_execution_for(&current, |x| {
                issuing::claim(&current, x, caller, claim, now)?;
                Ok(true)
            })
            .await
        };
        self.change(caller, id, load, |current, seen, now| {
            Ok(Some(issuing::claim(current, seen, caller, claim, now)?))
        })
        .await?;

        // 2. Sign, once. Server-side key generation with PBKDF2 for the PKCS#12, or an RSA CA's
        //    signature, takes milliseconds: that runs on the blocking pool. A P-256 signature for
        //    a client CSR (~20 µs) costs less inline than the thread handoff (measured: -15%
        //    enrolments/s).
        let issuing = self.issuing()?;
        let job = ProfileIssue {
            wanted,
            csrs: verified,
            subject: target,
            password,
            request: id,
            profile,
            now: self.clock.now(),
            not_after_cap: card_expires,
        };
        let Issuing { ca, keys } = issuing.clone();
        let heavy = ca.slow_signatures() || job.wanted.iter().any(|t| t.server_generated);
        let signed = crate::signing(heavy, move || opencm_ca::issue_profile(&*ca, &*keys, job))
            .await
            .map_err(|e| AppError::from_ca("issuance", e));
        let (certificates, delivered) = match signed {
            Ok(done) => done,
            Err(e) => {
                // Nothing was signed: give the claim back so the client can try again.
                self.release_claim(caller, id, profile).await?;
                return Err(e);
            }
        };

        // 3. Record what was signed on the claimed profile.
        let certificates = &certificates;
        let recorded = self
            .change(
                caller,
                id,
                |_| async { Ok(()) },
                |current, _, now| Ok(Some(issuing::record(current, profile, certificates, now)?)),
            )
            .await?;
        if recorded.status != RequestStatus::Executing {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!(
                    "Request {id} became {} while its certificates were issued; they were revoked.",
                    recorded.status
                ),
            ));
        }
        Ok(delivered)
    }

    /// Undoes a claim whose signing failed: the reserved profile is disabled (it holds nothing) and
    /// the request, still Executing, points at no new profile, so `certificatedata` may run again.
    async fn release_claim(
        &self,
        caller: &Principal,
        id: RequestId,
        profile: ProfileId,
    ) -> Result<Request, AppError> {
        let load = |current: Request| async move {
            let (_, reserved) = self.touched_profiles(&current).await?;
            Ok(reserved.as_ref().map(ProfileRecord::state))
        };
        self.change(caller, id, load, |current, reserved, _| {
            Ok(issuing::release_claim(current, profile, reserved.as_ref())?)
        })
        .await
    }

    /// Recover: the profile's archived keys, each delivered with its certificate in a new PKCS#12
    /// protected by the caller's `pfxpassword`. Keys are delivered once per request.
    async fn recover(
        &self,
        caller: &Principal,
        current: &Request,
        password: String,
    ) -> Result<Vec<Delivered>, AppError> {
        let id = current.uuid;
        if current.status == RequestStatus::Executing {
            return Err(RuleError::AlreadyDelivered(id).into());
        }
        if password.is_empty() {
            return Err(refuse(
                ErrorCode::PfxPasswordRequired,
                "'pfxpassword' is required to deliver recovered keys.",
            ));
        }
        // The profile must still be one a Recover acts on.
        self.load_execution_for(current, |x| {
            x.guard(current)?;
            Ok(true)
        })
        .await?
        .guard(current)?;
        // A Recover always names its profile (creation requires one).
        let Some(profile) = current.old_profile else {
            return Err(AppError::internal("a Recover request names no profile"));
        };
        let archived: Vec<CertificateRecord> = self
            .certificates
            .certificates_of_profile(profile)
            .await?
            .into_iter()
            .filter(|c| c.sealed_key.is_some())
            .collect();
        if archived.is_empty() {
            return Err(AppError::new(
                ErrorCode::NothingToRecover,
                format!("Profile {profile} has no archived keys."),
            ));
        }
        // Opening sealed keys and PBKDF2 for each PKCS#12 run on the blocking pool. Nothing leaves
        // before the version-checked write below wins: a racing second call gets nothing.
        let Issuing { ca, keys } = self.issuing()?.clone();
        let out = tokio::task::spawn_blocking(move || -> Result<Vec<Delivered>, AppError> {
            archived
                .iter()
                .map(|c| {
                    let key = keys
                        .open(c.sealed_key.as_deref().unwrap_or_default())
                        .map_err(|e| AppError::internal(format!("archived key: {e}")))?;
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(&c.der_b64)
                        .map_err(|e| AppError::internal(e.to_string()))?;
                    let mut chain = vec![der];
                    chain.extend(ca.chain_der().iter().cloned());
                    let pfx = pfx_aes256(&c.template_common_name, &key, &chain, &password)
                        .map_err(|e| AppError::internal(e.to_string()))?;
                    Ok(Delivered {
                        template_common_name: c.template_common_name.clone(),
                        pkcs7: None,
                        pfx: Some(pfx),
                    })
                })
                .collect()
        })
        .await
        .map_err(|e| AppError::internal(format!("recovery task failed: {e}")))??;
        let n = out.len();
        let load = |current: Request| async move {
            self.load_execution_for(&current, |x| {
                issuing::recover(&current, x, caller, n)?;
                Ok(true)
            })
            .await
        };
        self.change(caller, id, load, |current, seen, _| {
            Ok(Some(issuing::recover(current, seen, caller, n)?))
        })
        .await?;
        Ok(out)
    }
}

/// Each client CSR checked against its certificate template: signature (proof of possession),
/// key algorithm and size. One CSR per certificate the client makes a key for, in order.
fn verify_csrs(
    wanted: &[CertificateTemplate],
    csrs: &[String],
) -> Result<Vec<VerifiedCsr>, AppError> {
    let client: Vec<&CertificateTemplate> = wanted.iter().filter(|c| !c.server_generated).collect();
    if csrs.len() != client.len() {
        let names: Vec<&str> = client.iter().map(|c| c.common_name.as_str()).collect();
        return Err(refuse(
            ErrorCode::InvalidCertificateRequests,
            format!(
                "Expected {} certificate request(s), one for each of: {}; got {}.",
                client.len(),
                names.join(", "),
                csrs.len()
            ),
        ));
    }
    let mut verified = Vec::with_capacity(client.len());
    for (i, (t, text)) in client.iter().zip(csrs).enumerate() {
        let csr = parse_csr(text).map_err(|e| {
            refuse(
                ErrorCode::InvalidCertificateRequest,
                format!(
                    "Certificate request {} (for '{}') is refused: {e}.",
                    i + 1,
                    t.common_name
                ),
            )
        })?;
        if csr.algorithm.mim_name() != t.key_algorithm.mim_name() || csr.key_bits < t.key_bits() {
            return Err(refuse(
                ErrorCode::InvalidCertificateRequest,
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
    Ok(verified)
}
