//! The card lifecycle in the use cases: which card a request acts on, the guard that rechecks it
//! when the request executes, what its completion, cancelation or abandonment does to it (in the
//! same transaction as the request's change), `PUT /requests/{reqid}/smartcards/{scid}`, and what a
//! caller may see of a card (its operations and certificates).

use crate::error::{AppError, ErrorCode};
use crate::ports::{CertificateRecord, ProfileRecord, SmartcardRecord};
use crate::App;
use opencm_domain::profile::ProfileStatus;
use opencm_domain::request::executing;
use opencm_domain::request::{rights, Request};
use opencm_domain::smartcard::{self, SmartcardStatus};
use opencm_domain::template::ProfileTemplate;
use opencm_domain::{Principal, ProfileId, RequestId, SmartcardId, Timestamp};

fn card_not_found(id: SmartcardId) -> AppError {
    AppError::new(
        ErrorCode::SmartcardNotFound,
        format!("Smart card {id} was not found."),
    )
}

/// The enabled policies of the card's template whose initiator role the caller holds (a
/// helpdesk acting on others' cards).
fn initiator_policies<'t>(
    template: Option<&'t ProfileTemplate>,
    caller: &Principal,
) -> Vec<&'t opencm_domain::policy::WorkflowPolicy> {
    let sids = caller.token_sids();
    template
        .map(|t| {
            t.policies
                .values()
                .filter(|p| {
                    p.enabled
                        && opencm_domain::sddl::access_check(
                            &p.authorized_initiator,
                            &sids,
                            rights::ROLE,
                        )
                        .is_granted()
                })
                .collect()
        })
        .unwrap_or_default()
}

impl App {
    /// Whether the caller may start requests on the card for its user (a helpdesk): it holds an
    /// initiator role of the card's template whose scope, if the policy names target groups,
    /// takes in the card's user.
    pub(crate) async fn initiates_on(
        &self,
        caller: &Principal,
        card: &SmartcardRecord,
    ) -> Result<bool, AppError> {
        let template = self.templates.get(card.template).await?;
        let policies = initiator_policies(template.as_deref(), caller);
        if policies
            .iter()
            .any(|p| p.initiator_target_groups.is_empty())
        {
            return Ok(true);
        }
        if policies.is_empty() {
            return Ok(false);
        }
        Ok(
            match self.directory.user_by_uuid(card.assigned_user).await? {
                Some(owner) => policies.iter().any(|p| p.initiator_may_target(&owner)),
                None => false,
            },
        )
    }

    /// The card a new request names, visible to the caller, and the profile in service on it.
    pub(crate) async fn card_on_request(
        &self,
        caller: &Principal,
        id: SmartcardId,
        profile: Option<ProfileId>,
    ) -> Result<(SmartcardRecord, ProfileId), AppError> {
        let card = self
            .smartcards
            .smartcard(id)
            .await?
            .ok_or_else(|| card_not_found(id))?;
        if card.assigned_user != caller.uuid
            && !caller.is_administrator()
            && !self.initiates_on(caller, &card).await?
        {
            return Err(card_not_found(id));
        }
        let live = self
            .smartcards
            .profiles_of_smartcard(card.uuid)
            .await?
            .into_iter()
            .rev()
            .find(|p| !matches!(p.status, ProfileStatus::New | ProfileStatus::Retired));
        let Some(live) = live else {
            return Err(AppError::new(
                ErrorCode::smartcard_state(card.status),
                format!(
                    "Smart card {} is {} and holds no profile in service.",
                    card.uuid, card.status
                ),
            ));
        };
        if profile.is_some_and(|p| p != live.uuid) {
            return Err(AppError::new(
                ErrorCode::InvalidBody,
                "'profile' is not the profile on that card; give only 'smartcard'.",
            ));
        }
        Ok((card, live.uuid))
    }

    /// The card a smart card request issues onto (`None` for software templates): bound, in a
    /// status the request acts on, with room for `n` more certificates (MaxNumberOfCertificates,
    /// 0 = unlimited; the certificates of the profile a Renew replaces do not count). With it,
    /// when the card expires (a temporary card): no certificate on it outlives it.
    pub(crate) async fn card_for_issuance(
        &self,
        r: &Request,
        template: &ProfileTemplate,
        n: usize,
    ) -> Result<(Option<SmartcardId>, Option<Timestamp>), AppError> {
        let Some(config) = template.smartcard_config() else {
            return Ok((None, None));
        };
        self.request_cards(r).await?.check_issuance(r.uuid)?;
        let bound = r
            .new_smartcard
            .ok_or(smartcard::CardRuleError::NotBound(r.uuid))?;
        let card = self
            .smartcards
            .smartcard(bound)
            .await?
            .ok_or_else(|| AppError::internal(format!("bound card {bound} is missing")))?;
        let max = config.max_number_of_certificates as usize;
        if max > 0 {
            let mut held = 0;
            for p in self.smartcards.profiles_of_smartcard(card.uuid).await? {
                if Some(p.uuid) == r.old_profile || p.status == ProfileStatus::Retired {
                    continue;
                }
                held += self
                    .certificates
                    .certificates_of_profile(p.uuid)
                    .await?
                    .len();
            }
            if held + n > max {
                return Err(AppError::new(
                    ErrorCode::SmartcardFull,
                    format!(
                        "Smart card {} holds {held} certificate(s); template '{}' allows {max}, and this request issues {n}.",
                        card.uuid, template.name
                    ),
                ));
            }
        }
        Ok((Some(card.uuid), card.expires))
    }

    /// `PUT /requests/{reqid}/smartcards/{scid}` `{"status": ...}`: the executor sets its own
    /// card's status during execution, within what the request does to it (a Retire sets Retired;
    /// the profile on the card follows a status out of service at once, certificates included).
    pub async fn set_card_status(
        &self,
        caller: &Principal,
        request_id: RequestId,
        card_id: SmartcardId,
        to: SmartcardStatus,
    ) -> Result<SmartcardRecord, AppError> {
        let load = |current: Request| async move {
            self.load_execution_for(&current, |x| {
                let changes = executing::set_card_status(&current, x, caller, card_id, to)?;
                Ok(changes.is_some())
            })
            .await
        };
        self.change(caller, request_id, load, |current, seen, _| {
            Ok(executing::set_card_status(
                current, seen, caller, card_id, to,
            )?)
        })
        .await?;
        self.smartcards
            .smartcard(card_id)
            .await?
            .ok_or_else(|| card_not_found(card_id))
    }

    /// The operations (lowercase MIM names) the caller may start now on a card: those of the
    /// profile in service on it that the card's status allows, plus unblocking.
    pub async fn card_operations(
        &self,
        caller: &Principal,
        id: SmartcardId,
    ) -> Result<Vec<&'static str>, AppError> {
        let card = self.smartcard(caller, id).await?;
        let Some(template) = self.templates.get(card.template).await? else {
            return Ok(Vec::new());
        };
        let Some(live) = self.live_profile(&card).await? else {
            return Ok(Vec::new());
        };
        let own = card.assigned_user == caller.uuid;
        Ok(
            smartcard::operations(&template, live.status, card.status, caller, own)
                .into_iter()
                .collect(),
        )
    }

    /// The profile in service on a card (neither new nor retired), if any.
    pub(crate) async fn live_profile(
        &self,
        card: &SmartcardRecord,
    ) -> Result<Option<ProfileRecord>, AppError> {
        Ok(self
            .smartcards
            .profiles_of_smartcard(card.uuid)
            .await?
            .into_iter()
            .rev()
            .find(|p| !matches!(p.status, ProfileStatus::New | ProfileStatus::Retired)))
    }

    /// Every certificate issued onto the card, oldest profile first.
    pub async fn card_certificates(
        &self,
        caller: &Principal,
        id: SmartcardId,
    ) -> Result<Vec<CertificateRecord>, AppError> {
        let card = self.smartcard(caller, id).await?;
        let mut out = Vec::new();
        for p in self.smartcards.profiles_of_smartcard(card.uuid).await? {
            out.extend(self.certificates.certificates_of_profile(p.uuid).await?);
        }
        Ok(out)
    }
}
