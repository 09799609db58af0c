//! Card secrets: the master admin-key secrets (sealed under the KEK, versioned so the master can be
//! rotated without locking out cards personalised under an older one), the per-card diversified
//! admin key, the challenge-response that authenticates to a card as its administrator, and PINs
//! the server proposes.
//!
//! Each answer goes only to the executor of an approved or executing request on that card (the
//! first release moves it to Executing, as any execution step does), with the
//! card id the card reports matching the card; each release is first written as an audit
//! event in the request's history (no secret in it), so a secret is never out without its record.

use crate::error::{AppError, ErrorCode};
use crate::ports::{Effect, SmartcardRecord};
use crate::requests::Decided;
use crate::App;
use base64::Engine as _;
use opencm_ca::cardkey;
use opencm_ca::Secret;
use opencm_domain::request::{self, rights, Request};
use opencm_domain::smartcard::{
    PinCharacterSet, PinPolicy, SmartcardChange, SmartcardConfig, UserPinOption,
};
use opencm_domain::{Guid, Principal, RequestStatus, RequestType};
use rand::Rng;

/// Where the card a secret is asked for is: the request it executes under, the card as the store
/// has it, and what the card presented (`cardid`, `atr`).
pub struct CardPresented<'a> {
    pub request: Guid,
    pub card: Guid,
    pub card_id: &'a str,
    pub atr: Option<&'a str>,
}

const MASTER_BYTES: usize = 32;

/// The audit action of a kept PIN read after its request's execution.
const DISTRIBUTE_PIN: &str = "DistributePin";

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
            return Err(AppError::conflict(
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

    /// The card's admin key: diversified from the master version it was bound under, or the
    /// template's default key when the template does not diversify.
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
            card.card_id,
            config.admin_key_algorithm,
        ))
    }

    /// The request executing on the card, the card, and its template's card configuration —
    /// after every check that decides who may have a card secret. Readers of the request without
    /// the Execute right get the same 404 as strangers.
    async fn card_under_execution(
        &self,
        caller: &Principal,
        at: &CardPresented<'_>,
    ) -> Result<(Request, SmartcardRecord, SmartcardConfig), AppError> {
        let not_found = || {
            AppError::not_found(
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
        let card_id: Guid = at.card_id.trim().parse().map_err(|_| {
            AppError::invalid(
                ErrorCode::InvalidGuid,
                format!(
                    "'cardid' must be the card's id, a GUID (got '{}').",
                    opencm_domain::limits::excerpt(at.card_id)
                ),
            )
        })?;
        if let Some(atr) = at.atr {
            let a = atr.trim();
            if a.len() > 66 || !a.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(AppError::invalid(
                    ErrorCode::InvalidQuery,
                    "'atr' must be the card's answer to reset in hexadecimal.",
                ));
            }
        }
        if at.card != r.new_smartcard && at.card != r.old_smartcard {
            return Err(AppError::conflict(
                ErrorCode::SmartcardMismatch,
                format!(
                    "Smart card {} is not the card request {} executes on.",
                    at.card, r.uuid
                ),
            ));
        }
        if !matches!(r.status, RequestStatus::Approved | RequestStatus::Executing) {
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                format!(
                    "Request {} is {}: card secrets are released only while it is approved or executing.",
                    r.uuid, r.status
                ),
            ));
        }
        let card = self.smartcards.smartcard(at.card).await?.ok_or_else(|| {
            AppError::not_found(
                ErrorCode::SmartcardNotFound,
                format!("Smart card {} was not found.", at.card),
            )
        })?;
        if card.card_id != card_id {
            return Err(AppError::conflict(
                ErrorCode::SmartcardMismatch,
                format!(
                    "Card id {card_id} is not the id of smart card {} bound to this request.",
                    card.uuid
                ),
            ));
        }
        let config = self
            .templates
            .get(card.template)
            .await?
            .and_then(|t| t.smartcard_config())
            .ok_or_else(|| {
                AppError::not_found(
                    ErrorCode::SmartcardConfigurationNotFound,
                    "The card's template has no smart card configuration.",
                )
            })?;
        Ok((r, card, config))
    }

    /// Writes the audit event of a release (and guards the card's version) before the secret
    /// leaves; `effects` are written with it.
    async fn record_release(
        &self,
        caller: &Principal,
        r: &Request,
        card: &SmartcardRecord,
        action: &'static str,
        detail: String,
        extra: Vec<Effect>,
    ) -> Result<(), AppError> {
        let (detail, extra, state) = (&detail, &extra, card.state());
        self.change(caller, r.uuid, |current, _| async move {
            // A release during execution is an execution step: it moves an approved request to
            // Executing. A kept PIN distributed later leaves the request as it is.
            let executing = if action == DISTRIBUTE_PIN {
                current
            } else {
                request::begin_execution(&current, caller)?
            };
            let mut effects = vec![Effect::Smartcard(SmartcardChange::guard(&state))];
            effects.extend(extra.iter().cloned());
            Ok(Some(Decided {
                next: executing,
                approval: None,
                action,
                detail: detail.clone(),
                effects,
            }))
        })
        .await?;
        Ok(())
    }

    /// `GET …/requests/{reqid}/smartcards/{scid}/puk?cardid=&atr=` (opencm): the card's PUK, by
    /// the template's AdminPinPolicy, diversified from the card master like the admin key. PIV
    /// unblocks a PIN with the PUK, so it goes to the executor of an Unblock or OfflineUnblock on
    /// the card, and to the request that bound the card (which sets it in place of the factory
    /// PUK); any other request type is 409 `PukNotReleased`. Each release is audited.
    pub async fn card_puk(
        &self,
        caller: &Principal,
        at: &CardPresented<'_>,
    ) -> Result<String, AppError> {
        let (r, card, config) = self.card_under_execution(caller, at).await?;
        let personalising = card.request == r.uuid;
        let unblocking = matches!(
            r.request_type,
            RequestType::Unblock | RequestType::OfflineUnblock
        );
        if !personalising && !unblocking {
            return Err(AppError::conflict(
                ErrorCode::PukNotReleased,
                format!(
                    "A {} request neither personalises nor unblocks card {}: its PUK is not released to it.",
                    r.request_type, card.uuid
                ),
            ));
        }
        let (master, version) = self.card_master_of(&card).await?;
        let (alphabet, len) = pin_shape(&config.admin_pin_policy);
        let puk = cardkey::diversify_puk(&master, version, card.card_id, alphabet, len);
        self.record_release(
            caller,
            &r,
            &card,
            "ReleasePuk",
            format!(
                "PUK of card {} (master version {})",
                card.uuid, card.key_version
            ),
            Vec::new(),
        )
        .await?;
        Ok(puk)
    }

    /// `GET …/requests/{reqid}/smartcards/{scid}/diversifiedkey?cardid=&atr=`: the card's admin
    /// key, base64.
    pub async fn diversified_key(
        &self,
        caller: &Principal,
        at: &CardPresented<'_>,
    ) -> Result<String, AppError> {
        let (r, card, config) = self.card_under_execution(caller, at).await?;
        let key = self.card_admin_key(&card, &config).await?;
        self.record_release(
            caller,
            &r,
            &card,
            "ReleaseAdminKey",
            format!(
                "admin key of card {} ({}, master version {})",
                card.uuid,
                config.admin_key_algorithm.name(),
                card.key_version
            ),
            Vec::new(),
        )
        .await?;
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
        let (r, card, config) = self.card_under_execution(caller, at).await?;
        let alg = config.admin_key_algorithm;
        let want = cardkey::challenge_len(alg);
        let challenge = b64()
            .decode(challenge_b64.trim())
            .ok()
            .filter(|c| c.len() == want)
            .ok_or_else(|| {
                AppError::invalid(
                    ErrorCode::InvalidQuery,
                    format!(
                        "'challenge' must be the card's {want}-byte challenge in base64 (a {} admin key).",
                        alg.name()
                    ),
                )
            })?;
        let key = if diversified {
            self.card_admin_key(&card, &config).await?
        } else {
            Secret(config.default_admin_key())
        };
        let response = cardkey::respond(&key.0, alg, &challenge)
            .map_err(|e| AppError::internal(format!("challenge response: {e}")))?;
        self.record_release(
            caller,
            &r,
            &card,
            "AuthenticationResponse",
            format!(
                "card {} with its {} admin key",
                card.uuid,
                if diversified {
                    "diversified"
                } else {
                    "default"
                }
            ),
            Vec::new(),
        )
        .await?;
        Ok(b64().encode(response))
    }

    /// `GET /smartcards/{id}/serverproposedpin?cardid=&challenge=&atr=` (and under
    /// `/requests/{reqid}/`): a PIN that satisfies the template's UserPinPolicy. ServerDistributed:
    /// made once, kept sealed, the same on every later call; Randomized: a new one each time, never
    /// kept; otherwise the user chooses the PIN and the server proposes none.
    pub async fn proposed_pin(
        &self,
        caller: &Principal,
        at: &CardPresented<'_>,
    ) -> Result<String, AppError> {
        if let Some(pin) = self.distribute_kept_pin(caller, at).await? {
            return Ok(pin);
        }
        let (r, card, config) = self.card_under_execution(caller, at).await?;
        let keep = match config.user_pin_option {
            UserPinOption::ServerDistributed | UserPinOption::CustomServerDistributed => true,
            UserPinOption::Randomized => false,
            UserPinOption::None | UserPinOption::UserProvided => {
                return Err(AppError::conflict(
                    ErrorCode::PinNotServerProposed,
                    "The card's template leaves the PIN to the user: the server proposes none.",
                ))
            }
        };
        // The PIN kept for this request is answered again; a PIN kept by an earlier request on
        // the card (the enrolment's, before an Unblock) is replaced by a new one.
        if keep {
            if let Some(pin) = self.kept_pin(card.uuid, r.uuid).await? {
                self.record_release(
                    caller,
                    &r,
                    &card,
                    "ReleasePin",
                    format!("the kept PIN of card {}", card.uuid),
                    Vec::new(),
                )
                .await?;
                return Ok(pin);
            }
        }
        let pin = propose_pin(&config.user_pin_policy);
        let extra = if keep {
            vec![Effect::SealPin {
                card: card.uuid,
                sealed: self
                    .archive()?
                    .seal(&Secret(format!("{} {pin}", r.uuid).into_bytes())),
            }]
        } else {
            Vec::new()
        };
        self.record_release(
            caller,
            &r,
            &card,
            "ProposePin",
            format!(
                "a PIN for card {} ({})",
                card.uuid,
                if keep { "kept sealed" } else { "not kept" }
            ),
            extra,
        )
        .await?;
        Ok(pin)
    }

    /// After execution, holders of DistributeSecrets on the request (BA by default) may read the
    /// PIN kept for its card (ServerDistributed), e.g. to send it to the user by another channel;
    /// `None` when this is not that case (the request is still executing, or the caller lacks the
    /// right), so the executor's path decides.
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
            || (at.card != r.new_smartcard && at.card != r.old_smartcard)
        {
            return Ok(None);
        }
        let Some(card) = self.smartcards.smartcard(at.card).await? else {
            return Ok(None);
        };
        if at.card_id.trim().parse::<Guid>().ok() != Some(card.card_id) {
            return Err(AppError::conflict(
                ErrorCode::SmartcardMismatch,
                format!(
                    "Card id {} is not the id of smart card {}.",
                    opencm_domain::limits::excerpt(at.card_id),
                    card.uuid
                ),
            ));
        }
        let Some(pin) = self.kept_pin(card.uuid, r.uuid).await? else {
            return Err(AppError::conflict(
                ErrorCode::PinNotServerProposed,
                format!(
                    "No PIN is kept for smart card {} from this request.",
                    card.uuid
                ),
            ));
        };
        self.record_release(
            caller,
            &r,
            &card,
            DISTRIBUTE_PIN,
            format!("the kept PIN of card {} distributed", card.uuid),
            Vec::new(),
        )
        .await?;
        Ok(Some(pin))
    }

    /// The PIN kept for `card`, if `request` proposed it. Kept sealed as `{request} {pin}`.
    async fn kept_pin(&self, card: Guid, request: Guid) -> Result<Option<String>, AppError> {
        let Some(sealed) = self.smartcards.sealed_pin(card).await? else {
            return Ok(None);
        };
        let plain = String::from_utf8(self.unseal(&sealed)?.0)
            .map_err(|_| AppError::internal("a kept PIN is not text"))?;
        Ok(plain
            .split_once(' ')
            .filter(|(by, _)| by.parse::<Guid>().ok() == Some(request))
            .map(|(_, pin)| pin.to_string()))
    }

    /// `GET /smartcards/{id}/serverproposedpin` without a request names the request the card was
    /// bound for (requests on an existing card use the `/requests/{reqid}/` form). The checks of
    /// `proposed_pin` decide who gets anything.
    pub async fn card_request(&self, card: Guid) -> Result<Guid, AppError> {
        match self.smartcards.smartcard(card).await? {
            Some(c) => Ok(c.request),
            None => Err(AppError::not_found(
                ErrorCode::SmartcardNotFound,
                format!("Smart card {card} was not found."),
            )),
        }
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
