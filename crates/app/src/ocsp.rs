//! The OCSP responder (RFC 6960, RFC 5019): a request read, each certificate's status read from
//! the certificates table (so a revocation is answered as soon as its transaction commits, on
//! every node), and a response signed by the CA or by a delegated responder certificate the CA
//! issues to this process and renews before it ends.
//!
//! Signing is the cost, the status read is not: a response for one certificate without a nonce
//! (RFC 5019's form) is kept and served again while the certificate's status is the one it states
//! and less than half its validity has passed. The status is still read on every request, so a
//! kept response never outlives a revocation, whichever node revoked.

use crate::ports::SerialStatus;
use crate::App;
use opencm_ca::ocsp::{
    read_request, respond, DelegatedResponder, IssuerIdentity, OcspRefusal, OcspStatus, Signer,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// How the responder signs and how long its answers hold (`[ocsp]`).
#[derive(Clone, Debug)]
pub struct OcspSettings {
    /// A delegated responder certificate signs (default); otherwise the CA's own key.
    pub delegated: bool,
    /// `nextUpdate - thisUpdate` of every response.
    pub response_validity: time::Duration,
    /// The delegated responder certificate's lifetime; a new one is issued when a third is left.
    pub responder_validity: time::Duration,
}

impl Default for OcspSettings {
    fn default() -> Self {
        OcspSettings {
            delegated: true,
            response_validity: time::Duration::hours(1),
            responder_validity: time::Duration::days(7),
        }
    }
}

/// Responses kept at most; beyond it the cache starts again (a full scan of a large CA would
/// otherwise grow it without bound).
const CACHE_MAX: usize = 50_000;

struct Kept {
    status: OcspStatus,
    der: Arc<Vec<u8>>,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
}

pub(crate) struct Responder {
    settings: OcspSettings,
    issuer: IssuerIdentity,
    delegated: Mutex<Option<Arc<DelegatedResponder>>>,
    kept: Mutex<HashMap<Vec<u8>, Kept>>,
}

impl Responder {
    pub(crate) fn new(
        settings: OcspSettings,
        ca: &dyn opencm_ca::CertificateAuthority,
    ) -> Result<Responder, opencm_ca::CaError> {
        let issuer = IssuerIdentity::of(
            ca.chain_der()
                .first()
                .ok_or_else(|| opencm_ca::CaError::Load("the CA has no certificate".into()))?,
        )?;
        Ok(Responder {
            settings,
            issuer,
            delegated: Mutex::new(None),
            kept: Mutex::new(HashMap::new()),
        })
    }
}

/// What the responder answers: the DER `OCSPResponse`, its status for metrics and logs, and —
/// for a response without a nonce — its validity, which HTTP caches may honour (RFC 5019 §6).
#[derive(Clone, Debug)]
pub struct OcspAnswer {
    pub der: Arc<Vec<u8>>,
    /// `successful`, `malformedRequest`, `unauthorized`, `tryLater` or `internalError`.
    pub status: &'static str,
    pub cacheable: Option<(OffsetDateTime, OffsetDateTime)>,
}

impl OcspAnswer {
    fn refused(r: OcspRefusal) -> OcspAnswer {
        OcspAnswer {
            der: Arc::new(r.response_der()),
            status: r.name(),
            cacheable: None,
        }
    }
}

impl App {
    /// Answers OCSP from now on, signing as `settings` say.
    pub fn with_ocsp(self, settings: OcspSettings) -> Result<App, crate::AppError> {
        let ca = &self.issuing()?.ca;
        let responder = Responder::new(settings, ca.as_ref())
            .map_err(|e| crate::AppError::internal(format!("OCSP responder: {e}")))?;
        Ok(App {
            ocsp: Some(Arc::new(responder)),
            ..self
        })
    }

    pub fn offers_ocsp(&self) -> bool {
        self.ocsp.is_some()
    }

    /// The answer to a DER `OCSPRequest`. Never an error: what cannot be answered is an
    /// `OCSPResponse` with the RFC's status for it.
    pub async fn ocsp(&self, request: &[u8]) -> OcspAnswer {
        let (Some(responder), Ok(issuing)) = (self.ocsp.as_ref(), self.issuing()) else {
            return OcspAnswer::refused(OcspRefusal::Unauthorized);
        };
        let query = match read_request(request, &responder.issuer) {
            Ok(q) => q,
            Err(r) => return OcspAnswer::refused(r),
        };
        let mut statuses = Vec::with_capacity(query.asked.len());
        for asked in &query.asked {
            let status = match &asked.serial_hex {
                None => OcspStatus::Unknown,
                Some(serial) => match self.certificates.serial_status(serial).await {
                    Ok(SerialStatus::Unknown) => OcspStatus::Unknown,
                    Ok(SerialStatus::Valid) => OcspStatus::Good,
                    Ok(SerialStatus::Revoked(r)) => OcspStatus::Revoked {
                        at: r.revoked_at.to_offset_date_time(),
                        reason: r.reason,
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "OCSP: the certificate's status could not be read; answered tryLater");
                        return OcspAnswer::refused(OcspRefusal::TryLater);
                    }
                },
            };
            statuses.push((asked.cert_id.clone(), status));
        }
        let now = self.clock.now().to_offset_date_time();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        // RFC 5019's form: one certificate, no nonce. Its response may be kept and reused.
        let key =
            (query.nonce.is_none() && query.asked.len() == 1).then(|| query.asked[0].key.clone());
        if let Some(k) = &key {
            if let Some(hit) = responder.kept_answer(k, statuses[0].1, now) {
                return hit;
            }
        }
        let slow = issuing.ca.slow_signatures();
        let delegated = if responder.settings.delegated {
            // Issuing a new responder certificate is a CA signature (on the token, for an HSM).
            let (r, ca) = (responder.clone(), issuing.ca.clone());
            match crate::signing(slow, move || r.delegated_for(ca.as_ref(), now)).await {
                Ok(d) => Some(d),
                Err(opencm_ca::CaError::Unavailable(why)) => {
                    tracing::warn!(reason = %why, "OCSP: the CA's key is unavailable to issue a responder certificate; answered tryLater");
                    return OcspAnswer::refused(OcspRefusal::TryLater);
                }
                Err(e) => {
                    tracing::error!(error = %e, "OCSP: no delegated responder certificate; answered internalError");
                    return OcspAnswer::refused(OcspRefusal::InternalError);
                }
            }
        } else {
            None
        };
        let next_update = now + responder.settings.response_validity;
        let cacheable = query.nonce.is_none().then_some((now, next_update));
        let ca = issuing.ca.clone();
        let sign = move || {
            let signer = match &delegated {
                Some(d) => Signer::Delegated(d),
                None => Signer::Ca(ca.as_ref()),
            };
            respond(
                &signer,
                &statuses,
                query.nonce.as_ref(),
                now,
                now,
                next_update,
            )
            .map(|der| (der, statuses))
        };
        // The CA's own key may be slow (RSA, an HSM); the delegated responder's is ECDSA in memory.
        let signed = crate::signing(slow && !responder.settings.delegated, sign).await;
        match signed {
            Ok((der, statuses)) => {
                let der = Arc::new(der);
                if let Some(k) = key {
                    responder.keep(k, statuses[0].1, der.clone(), now, next_update);
                }
                OcspAnswer {
                    der,
                    status: "successful",
                    cacheable,
                }
            }
            // A CA key on a token that did not answer: ask again later.
            Err(opencm_ca::CaError::Unavailable(why)) => {
                tracing::warn!(reason = %why, "OCSP: the CA's key is unavailable; answered tryLater");
                OcspAnswer::refused(OcspRefusal::TryLater)
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP: the response could not be signed; answered internalError");
                OcspAnswer::refused(OcspRefusal::InternalError)
            }
        }
    }
}

impl Responder {
    /// A kept response for this CertID that states `status` and has more than half its validity
    /// left.
    fn kept_answer(
        &self,
        key: &[u8],
        status: OcspStatus,
        now: OffsetDateTime,
    ) -> Option<OcspAnswer> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let k = kept.get(key)?;
        let half = (k.next_update - k.this_update) / 2;
        (k.status == status && now < k.this_update + half).then(|| OcspAnswer {
            der: k.der.clone(),
            status: "successful",
            cacheable: Some((k.this_update, k.next_update)),
        })
    }

    fn keep(
        &self,
        key: Vec<u8>,
        status: OcspStatus,
        der: Arc<Vec<u8>>,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= CACHE_MAX {
            kept.clear();
        }
        kept.insert(
            key,
            Kept {
                status,
                der,
                this_update,
                next_update,
            },
        );
    }

    /// The delegated responder, issued now when there is none or a third of its life is left.
    /// Responses kept under the previous one are dropped with it.
    fn delegated_for(
        &self,
        ca: &dyn opencm_ca::CertificateAuthority,
        now: OffsetDateTime,
    ) -> Result<Arc<DelegatedResponder>, opencm_ca::CaError> {
        let mut current = self.delegated.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = current.as_ref().filter(|d| !d.due_for_renewal(now)) {
            return Ok(d.clone());
        }
        match DelegatedResponder::issue(ca, now, self.settings.responder_validity) {
            Ok(d) => {
                tracing::info!(
                    serial = d.serial_hex(),
                    not_after = %d.not_after(),
                    "OCSP: issued a delegated responder certificate to this node"
                );
                let d = Arc::new(d);
                *current = Some(d.clone());
                self.kept.lock().unwrap_or_else(|p| p.into_inner()).clear();
                Ok(d)
            }
            // A renewal that fails leaves the current certificate in use while it is valid.
            Err(e) => match current.as_ref().filter(|d| d.not_after() > now) {
                Some(d) => {
                    tracing::warn!(error = %e, "OCSP: renewing the delegated responder certificate failed; the current one stays in use");
                    Ok(d.clone())
                }
                None => Err(e),
            },
        }
    }
}
