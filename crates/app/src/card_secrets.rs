//! Card secrets: the master admin-key secrets (sealed under the KEK, versioned so the master can be
//! rotated without locking out cards personalised under an older one), the per-card diversified
//! admin key, the challenge-response that authenticates to a card as its administrator, and PINs
//! the server proposes.
//!
//! Each answer goes only to the executor of an approved or executing request, for that request's
//! own card (never the card a new one is copied from), while the card is in service, with the card
//! id and ATR the card reports matching the card — decided by the card rules
//! (`RequestCards::release`) with every other execution check, on what is current when the
//! release is written. The first release moves the request to Executing, as any execution step
//! does; each release is first written as an audit event in the request's history (no secret in
//! it), so a secret is never out without its record. The admin key and the PUK derive from the
//! card's binding (`key_diversifier`), so the next holder of a reused card gets secrets of its own.

use crate::error::{AppError, ErrorCode};
use crate::ports::{Effect, SmartcardRecord};
use crate::App;
use base64::Engine as _;
use opencm_ca::cardkey;
use opencm_ca::Secret;
use opencm_domain::decided::{AuditAction, Decided};
use opencm_domain::request::executing;
use opencm_domain::request::{self, rights, Request};
use opencm_domain::smartcard::{
    parse_atr, CardSecret, PinCharacterSet, PinPolicy, SmartcardChange, SmartcardConfig,
    SmartcardStatus, UserPinOption,
};
use opencm_domain::{Guid, Principal, RequestId, RequestStatus, SmartcardId};
use rand::Rng;

/// Where the card a secret is asked for is: the request it executes under, the card as the store
/// has it, and what the card presented (`cardid`, `atr`).
pub struct CardPresented<'a> {
    pub request: RequestId,
    pub card: SmartcardId,
    pub card_id: &'a str,
    pub atr: Option<&'a str>,
}

const MASTER_BYTES: usize = 32;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl App {
    fn archive(&self) -> Result<&dyn crate::ports::KeyArchive, AppError> {
        Ok(&*self.issuing()?.keys)
    }

    /// The newest master version, making version 1 on first use (another node may make it at
    /// the same moment: whichever was stored is used).
    pub(crate) async fn newest_card_master(&self) -> Result<i64, AppError> {
        if let Some((v, _)) = self.smartcards.card_master(None).await? {
            return Ok(v);
        }
        let sealed = self.new_master_sealed()?;
        self.smartcards
            .add_card_master(1, &sealed, self.clock.now())
            .await?;
        Ok(self
            .smartcards
            .card_master(None)
            .await?
            .map(|(v, _)| v)
            .unwrap_or(1))
    }

    fn new_master_sealed(&self) -> Result<String, AppError> {
        let mut m = vec![0u8; MASTER_BYTES];
        rand::rngs::OsRng.fill(&mut m[..]);
        Ok(self.archive()?.seal(&Secret(m)))
    }

    /// `opencm card-master rotate`: a new master version for cards bound from now on; cards
    /// already personalised keep theirs. Answers the new version.
    pub async fn rotate_card_master(&self) -> Result<i64, AppError> {
        let next = self.newest_card_master().await? + 1;
        let sealed = self.new_master_sealed()?;
        if !self
            .smartcards
            .add_card_master(next, &sealed, self.clock.now())
            .await?
        {
            return Err(AppError::new(
                ErrorCode::ConcurrentUpdate,
                "Another rotation of the card master key happened at the same time; run it again.",
            ));
        }
        Ok(next)
    }

    fn unseal(&self, sealed: &str) -> Result<Secret, AppError> {
        self.archive()?
            .open(sealed)
            .map_err(|e| AppError::internal(format!("opening the card master key: {e}")))
    }

    /// The master secret the card was bound under, and its version.
    async fn card_master_of(&self, card: &SmartcardRecord) -> Result<(Secret, u32), AppError> {
        let (_, sealed) = self
            .smartcards
            .card_master(Some(card.key_version))
            .await?
            .ok_or_else(|| {
                AppError::internal(format!(
                    "card master key version {} is missing",
                    card.key_version
                ))
            })?;
        let version = u32::try_from(card.key_version)
            .map_err(|_| AppError::internal("card master key version out of range"))?;
        Ok((self.unseal(&sealed)?, version))
    }

    /// The card's admin key: diversified from the master version it was bound under and from
    /// its binding, or the template's default key when the template does not diversify.
    async fn card_admin_key(
        &self,
        card: &SmartcardRecord,
        config: &SmartcardConfig,
    ) -> Result<Secret, AppError> {
        if !config.diversify_admin_key {
            return Ok(Secret(config.default_admin_key()));
        }
        let (master, version) = self.card_master_of(card).await?;
        Ok(cardkey::diversify(
            &master,
            version,
            card.key_diversifier,
            config.admin_key_algorithm,
        ))
    }

    /// The checks that cost nothing, before anything is read for the release: the request is the
    /// caller's to execute (readers without Execute get the same 404 as strangers), the card id
    /// and ATR are well formed, the request is approved or executing, and the card and its
    /// template's card configuration exist. The card rules themselves are decided in the release's
    /// write (`release`), on what is current then.
    async fn card_under_execution(
        &self,
        caller: &Principal,
        at: &CardPresented<'_>,
    ) -> Result<(Presented, SmartcardConfig), AppError> {
        let not_found = || {
            AppError::new(
                ErrorCode::RequestNotFound,
                format!("Request {} was not found.", at.request),
            )
        };
        let r = self
            .request(caller, at.request)
            .await
            .map_err(|_| not_found())?;
        if !r.allows(caller, rights::EXECUTE) {
            return Err(not_found());
        }
        let presented = Presented::parse(at)?;
        if Some(at.card) != r.new_smartcard && Some(at.card) != r.old_smartcard {
            return Err(AppError::new(
                ErrorCode::SmartcardMismatch,
                format!(
                    "Smart card {} is not the card request {} works on.",
                    at.card, r.uuid
                ),
            ));
        }
        if !matches!(r.status, RequestStatus::Approved | RequestStatus::Executing) {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!(
                    "Request {} is {}: card secrets are released only while it is approved or executing.",
                    r.uuid, r.status
                ),
            ));
        }
        let card = self.smartcards.smartcard(at.card).await?.ok_or_else(|| {
            AppError::new(
                ErrorCode::SmartcardNotFound,
                format!("Smart card {} was not found.", at.card),
            )
        })?;
        let config = self.card_config(&card).await?;
        Ok((presented, config))
    }

    async fn card_config(&self, card: &SmartcardRecord) -> Result<SmartcardConfig, AppError> {
        self.templates
            .get(card.template)
            .await?
            .and_then(|t| t.smartcard_config().cloned())
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::SmartcardConfigurationNotFound,
                    "The card's template has no smart card configuration.",
                )
            })
    }

    /// Releases `secret` of the card to the executor: an execution step, decided and written on
    /// what is current at the write (every retry reads the request, its cards, its profile and its
    /// target afresh). The card must be the request's own, bound, in service, and be the card
    /// presented; the audit event of the release (no secret in it) is written with the request's
    /// move to Executing before the secret leaves. `decide` adds what the release writes besides
    /// (a PIN kept sealed; it is given the card's sealed PIN when the secret is the PIN) and says
    /// what the history records.
    async fn release<D>(
        &self,
        caller: &Principal,
        at: &Presented,
        secret: CardSecret,
        decide: D,
    ) -> Result<SmartcardRecord, AppError>
    where
        D: Fn(&Request, &SmartcardRecord, Option<&str>) -> Result<Released, AppError>,
    {
        let load = |current: Request| async move {
            let card = self.presented_card(at).await?;
            let execution = self
                .load_execution_for(&current, |x| {
                    executing::release_secret(&current, x, caller, card.uuid, secret)?;
                    Ok(true)
                })
                .await?;
            // The PIN kept sealed on the card, read for this very write (two PIN calls at once
            // then agree on one PIN).
            let sealed = match secret {
                CardSecret::Pin => self.smartcards.sealed_pin(card.uuid).await?,
                _ => None,
            };
            Ok((card, execution, sealed))
        };
        let (_, (card, ..)) = self
            .change_seen(
                caller,
                at.request,
                load,
                |current, (card, execution, sealed), _| {
                    let (executing, mut effects) =
                        executing::release_secret(current, execution, caller, card.uuid, secret)?;
                    let r = decide(current, card, sealed.as_deref())?;
                    effects.extend(r.effects);
                    Ok(Some(Decided {
                        effects,
                        ..Decided::new(executing, r.action, r.detail)
                    }))
                },
            )
            .await?;
        Ok(card)
    }

    /// The card the route names, as stored now, if it is the card the client presented (its card
    /// id, and its ATR when given).
    async fn presented_card(&self, at: &Presented) -> Result<SmartcardRecord, AppError> {
        let card = self.smartcards.smartcard(at.card).await?.ok_or_else(|| {
            AppError::new(
                ErrorCode::SmartcardNotFound,
                format!("Smart card {} was not found.", at.card),
            )
        })?;
        if card.card_id != at.card_id {
            return Err(AppError::new(
                ErrorCode::SmartcardMismatch,
                format!(
                    "Card id {} is not the id of smart card {}.",
                    at.card_id, card.uuid
                ),
            ));
        }
        if at.atr.as_ref().is_some_and(|a| *a != card.atr) {
            return Err(AppError::new(
                ErrorCode::SmartcardMismatch,
                format!(
                    "The card presents another answer to reset than smart card {} was bound with.",
                    card.uuid
                ),
            ));
        }
        Ok(card)
    }

    /// `GET …/requests/{reqid}/smartcards/{scid}/puk?cardid=&atr=` (opencm): the card's PUK, by
    /// the template's AdminPinPolicy, diversified from the card master and the card's binding like
    /// the admin key. PIV unblocks a PIN with the PUK, so it goes to the request that makes the
    /// card (which sets it in place of the factory PUK) and to an Unblock or OfflineUnblock on it;
    /// any other request type is 409 `PukNotReleased`. Each release is audited.
    pub async fn card_puk(
        &self,
        caller: &Principal,
        at: &CardPresented<'_>,
    ) -> Result<String, AppError> {
        let (at, config) = self.card_under_execution(caller, at).await?;
        let card = self
            .release(caller, &at, CardSecret::Puk, |_, card, _| {
                Ok(Released::audit(
                    AuditAction::ReleasePuk,
                    format!(
                        "PUK of card {} (master version {})",
                        card.uuid, card.key_version
                    ),
                ))
            })
            .await?;
        let (master, version) = self.card_master_of(&card).await?;
        let (alphabet, len) = pin_shape(&config.admin_pin_policy);
        Ok(cardkey::diversify_puk(
            &master,
            version,
            card.key_diversifier,
            alphabet,
            len,
        ))
    }

    /// `GET …/requests/{reqid}/smartcards/{scid}/diversifiedkey?cardid=&atr=`: the card's admin
    /// key, base64.
    pub async fn diversified_key(
        &self,
        caller: &Principal,
        at: &CardPresented<'_>,
    ) -> Result<String, AppError> {
        let (at, config) = self.card_under_execution(caller, at).await?;
        let alg = config.admin_key_algorithm.name();
        let card = self
            .release(caller, &at, CardSecret::AdminKey, |_, card, _| {
                Ok(Released::audit(
                    AuditAction::ReleaseAdminKey,
                    format!(
                        "admin key of card {} ({alg}, master version {})",
                        card.uuid, card.key_version
                    ),
                ))
            })
            .await?;
        let key = self.card_admin_key(&card, &config).await?;
        Ok(b64().encode(&key.0))
    }

    /// `GET …/authenticationresponse?cardid=&challenge=&diversified=&atr=`: E(key, challenge) with
    /// the template's default admin key, or with the card's own when `diversified`.
    pub async fn authentication_response(
        &self,
        caller: &Principal,
        at: &CardPresented<'_>,
        challenge_b64: &str,
        diversified: bool,
    ) -> Result<String, AppError> {
        let (at, config) = self.card_under_execution(caller, at).await?;
        let alg = config.admin_key_algorithm;
        let want = cardkey::challenge_len(alg);
        let challenge = b64()
            .decode(challenge_b64.trim())
            .ok()
            .filter(|c| c.len() == want)
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::InvalidQuery,
                    format!(
                        "'challenge' must be the card's {want}-byte challenge in base64 (a {} admin key).",
                        alg.name()
                    ),
                )
            })?;
        let card = self
            .release(caller, &at, CardSecret::ChallengeResponse, |_, card, _| {
                Ok(Released::audit(
                    AuditAction::AuthenticationResponse,
                    format!(
                        "card {} with its {} admin key",
                        card.uuid,
                        if diversified {
                            "diversified"
                        } else {
                            "default"
                        }
                    ),
                ))
            })
            .await?;
        let key = if diversified {
            self.card_admin_key(&card, &config).await?
        } else {
            Secret(config.default_admin_key())
        };
        let response = cardkey::respond(&key.0, alg, &challenge)
            .map_err(|e| AppError::internal(format!("challenge response: {e}")))?;
        Ok(b64().encode(response))
    }

    /// `GET /smartcards/{id}/serverproposedpin?cardid=&challenge=&atr=` (and under
    /// `/requests/{reqid}/`): a PIN that satisfies the template's UserPinPolicy, for a request that
    /// sets the card's PIN (one that makes the card, Unblock, OfflineUnblock; 409 `PinNotReleased`
    /// otherwise). ServerDistributed: made once per request, kept sealed, the same on every later
    /// call of that request; Randomized: a new one each time, never kept; otherwise the user
    /// chooses the PIN and the server proposes none.
    pub async fn proposed_pin(
        &self,
        caller: &Principal,
        at: &CardPresented<'_>,
    ) -> Result<String, AppError> {
        if let Some(pin) = self.distribute_kept_pin(caller, at).await? {
            return Ok(pin);
        }
        let (at, config) = self.card_under_execution(caller, at).await?;
        let keep = match config.user_pin_option {
            UserPinOption::ServerDistributed | UserPinOption::CustomServerDistributed => true,
            UserPinOption::Randomized => false,
            UserPinOption::None | UserPinOption::UserProvided => {
                return Err(AppError::new(
                    ErrorCode::PinNotServerProposed,
                    "The card's template leaves the PIN to the user: the server proposes none.",
                ))
            }
        };
        let pin = std::sync::Mutex::new(String::new());
        let pin_ref = &pin;
        self.release(caller, &at, CardSecret::Pin, |r, card, sealed| {
            // The PIN kept for this request is answered again; a PIN kept by an earlier request
            // on the card (the enrolment's, before an Unblock) is replaced by a new one.
            let kept = match (keep, sealed) {
                (true, Some(sealed)) => self.kept_pin(sealed, r.uuid)?,
                _ => None,
            };
            let (chosen, released) = match kept {
                Some(p) => (
                    p,
                    Released::audit(
                        AuditAction::ReleasePin,
                        format!("the kept PIN of card {}", card.uuid),
                    ),
                ),
                None => {
                    let p = propose_pin(&config.user_pin_policy);
                    let effects = if keep {
                        vec![Effect::SealPin {
                            card: card.uuid,
                            sealed: self
                                .archive()?
                                .seal(&Secret(format!("{} {p}", r.uuid).into_bytes())),
                        }]
                    } else {
                        Vec::new()
                    };
                    (
                        p,
                        Released {
                            action: AuditAction::ProposePin,
                            detail: format!(
                                "a PIN for card {} ({})",
                                card.uuid,
                                if keep { "kept sealed" } else { "not kept" }
                            ),
                            effects,
                        },
                    )
                }
            };
            if let Ok(mut slot) = pin_ref.lock() {
                *slot = chosen;
            }
            Ok(released)
        })
        .await?;
        let pin = pin.into_inner().unwrap_or_default();
        Ok(pin)
    }

    /// After execution, holders of DistributeSecrets on the request (BA by default) may read the
    /// PIN kept for its card (ServerDistributed), e.g. to send it to the user by another channel —
    /// while the card is in service and its user not disabled. `None` when this is not that case
    /// (the request is still executing, or the caller lacks the right), so the executor's path
    /// decides.
    async fn distribute_kept_pin(
        &self,
        caller: &Principal,
        at: &CardPresented<'_>,
    ) -> Result<Option<String>, AppError> {
        let Ok(r) = self.request(caller, at.request).await else {
            return Ok(None);
        };
        if matches!(r.status, RequestStatus::Approved | RequestStatus::Executing)
            || !r.allows(caller, rights::DISTRIBUTE_SECRETS)
        {
            return Ok(None);
        }
        let at = Presented::parse(at)?;
        let at = &at;
        let load = |current: Request| async move {
            let card = self.presented_card(at).await?;
            let cards = self.request_cards(&current).await?;
            // The card first: the target is read only for a card that may have its PIN sent.
            in_service(&current, &cards, &card)?;
            let enabled = self.user_enabled(current.target).await?;
            let sealed = self.smartcards.sealed_pin(card.uuid).await?;
            Ok((card, cards, enabled, sealed))
        };
        let pin = std::sync::Mutex::new(None);
        self.change(
            caller,
            at.request,
            load,
            |current, (card, cards, enabled, sealed), _| {
                in_service(current, cards, card)?;
                if !enabled {
                    return Err(request::TargetDisabled {
                        user: current.target,
                        request_type: current.request_type,
                    }
                    .into());
                }
                let kept = match sealed {
                    Some(sealed) => self.kept_pin(sealed, current.uuid)?,
                    None => None,
                };
                let Some(kept) = kept else {
                    return Err(AppError::new(
                        ErrorCode::PinNotServerProposed,
                        format!(
                            "No PIN is kept for smart card {} from this request.",
                            card.uuid
                        ),
                    ));
                };
                if let Ok(mut slot) = pin.lock() {
                    *slot = Some(kept);
                }
                Ok(Some(
                    Decided::new(
                        current.clone(),
                        AuditAction::DistributePin,
                        format!("the kept PIN of card {} distributed", card.uuid),
                    )
                    .with_effects(vec![Effect::Smartcard(
                        SmartcardChange::guard(&card.state()),
                    )]),
                ))
            },
        )
        .await?;
        Ok(pin.into_inner().ok().flatten())
    }

    /// The PIN in `sealed` (a card's kept PIN, sealed as `{request} {pin}`), if `request`
    /// proposed it.
    fn kept_pin(&self, sealed: &str, request: RequestId) -> Result<Option<String>, AppError> {
        let plain = String::from_utf8(self.unseal(sealed)?.0)
            .map_err(|_| AppError::internal("a kept PIN is not text"))?;
        Ok(plain
            .split_once(' ')
            .filter(|(by, _)| by.parse::<RequestId>().ok() == Some(request))
            .map(|(_, pin)| pin.to_string()))
    }

    /// `GET /smartcards/{id}/serverproposedpin` without a request names the request the card was
    /// bound for (requests on an existing card use the `/requests/{reqid}/` form). The checks of
    /// `proposed_pin` decide who gets anything.
    pub async fn card_request(&self, card: SmartcardId) -> Result<RequestId, AppError> {
        match self.smartcards.smartcard(card).await? {
            Some(c) => Ok(c.request),
            None => Err(AppError::new(
                ErrorCode::SmartcardNotFound,
                format!("Smart card {card} was not found."),
            )),
        }
    }
}

/// A kept PIN is distributed only for the request's own card while it is in service.
fn in_service(
    r: &Request,
    cards: &opencm_domain::smartcard::RequestCards,
    card: &SmartcardRecord,
) -> Result<(), AppError> {
    let own = cards.own_card(r.uuid, card.uuid)?;
    if own.status != SmartcardStatus::Active {
        return Err(AppError::new(
            ErrorCode::smartcard_state(own.status),
            format!(
                "Smart card {} is {}: its PIN is distributed only while it is in service.",
                card.uuid, own.status
            ),
        ));
    }
    Ok(())
}

/// What a release writes besides the request's move: its history entry (no secret in it) and any
/// effect (a PIN kept sealed).
struct Released {
    action: AuditAction,
    detail: String,
    effects: Vec<Effect>,
}

impl Released {
    fn audit(action: AuditAction, detail: String) -> Self {
        Released {
            action,
            detail,
            effects: Vec::new(),
        }
    }
}

/// The card as its client presented it on a secret route, parsed: the request, the card record
/// named in the path, and the card id and ATR the card reported.
struct Presented {
    request: RequestId,
    card: SmartcardId,
    card_id: Guid,
    atr: Option<String>,
}

impl Presented {
    fn parse(at: &CardPresented<'_>) -> Result<Self, AppError> {
        let card_id: Guid = at.card_id.trim().parse().map_err(|_| {
            AppError::new(
                ErrorCode::InvalidQuery,
                format!(
                    "'cardid' must be the card's id, a GUID (got '{}').",
                    opencm_domain::limits::excerpt(at.card_id)
                ),
            )
        })?;
        if card_id.is_nil() {
            return Err(AppError::new(
                ErrorCode::InvalidQuery,
                "'cardid' must be the card's own id; the all-zero GUID names no card.",
            ));
        }
        let atr = at
            .atr
            .map(parse_atr)
            .transpose()
            .map_err(|e| AppError::new(ErrorCode::InvalidQuery, e.to_string()))?;
        Ok(Presented {
            request: at.request,
            card: at.card,
            card_id,
            atr,
        })
    }
}

/// The characters and the length of a PIN or PUK by `p`: 8 long, or the nearest the policy
/// allows.
fn pin_shape(p: &PinPolicy) -> (&'static [u8], usize) {
    const DIGITS: &[u8] = b"0123456789";
    // Letters and digits that cannot be mistaken for one another when read from a letter.
    const ALNUM: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    const ANY: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ!#%+-=?@";
    let chars = match p.character_set {
        PinCharacterSet::Numeric => DIGITS,
        PinCharacterSet::Alphanumeric => ALNUM,
        PinCharacterSet::Any => ANY,
    };
    let min = p.min_length.max(4) as usize;
    let max = if p.max_length == 0 {
        usize::MAX
    } else {
        p.max_length as usize
    };
    (chars, 8usize.clamp(min, max.max(min)))
}

/// A PIN by the policy, drawn from the operating system's CSPRNG.
pub(crate) fn propose_pin(p: &PinPolicy) -> String {
    let (chars, len) = pin_shape(p);
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| chars[rng.gen_range(0..chars.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposed_pins_follow_the_policy() {
        let numeric = PinPolicy {
            min_length: 6,
            max_length: 6,
            ..PinPolicy::default()
        };
        for _ in 0..50 {
            let pin = propose_pin(&numeric);
            assert_eq!(pin.len(), 6);
            assert!(pin.bytes().all(|b| b.is_ascii_digit()), "{pin}");
        }
        let alnum = PinPolicy {
            min_length: 10,
            max_length: 127,
            character_set: PinCharacterSet::Alphanumeric,
            ..PinPolicy::default()
        };
        let pins: std::collections::HashSet<String> =
            (0..50).map(|_| propose_pin(&alnum)).collect();
        assert_eq!(pins.len(), 50, "drawn at random");
        assert!(pins
            .iter()
            .all(|p| p.len() == 10 && p.bytes().all(|b| b.is_ascii_alphanumeric())));
    }
}
