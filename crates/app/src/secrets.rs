//! One-time passwords (MIM CM's `OneTimePasswordPolicy`), the app's half: a secret is made when
//! a request whose policy asks for one is approved (in the approval's own transaction: its hash
//! in `request_secrets`, the e-mails carrying it in the outbox, sealed under the KEK), presented
//! by the executor (`present_secret`), shown once to the originator (`show_secret`), or made
//! again by the help desk (`resend_secret`). Only the argon2id hash is kept past delivery.
//!
//! Where the MIM REST API has no place for the secret, opencm's extension routes carry it
//! (docs/COMPATIBILITY.md, "One-time passwords").

use crate::error::{AppError, ErrorCode};
use crate::outbox::EMAIL;
use crate::App;
use opencm_domain::decided::Effect;
use opencm_domain::notification::{EventType, OutboxRow};
use opencm_domain::policy::SecretDistribution;
use opencm_domain::request::secrets::{self, Refusal, SecretChange, SecretRecord};
use opencm_domain::request::{rights, Request};
use opencm_domain::{Principal, RequestId, Timestamp};
use std::time::Duration;

/// How long a one-time password works, unless `[notifications] secret_lifetime_hours` says.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(72 * 3600);
/// Tries before it stops working, unless `[notifications] secret_attempts` says.
pub const DEFAULT_ATTEMPTS: i64 = 5;

/// Letters and digits no one mistakes for one another (no 0/O, 1/I/L).
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// 12 characters of 31: 59 bits, hashed with argon2id, tried at most a handful of times.
const LENGTH: usize = 12;

/// A new secret, as people read it: `ABCD-EFGH-JKMN`.
fn new_secret() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    let chars: Vec<char> = (0..LENGTH)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// What is compared: the letters and digits, in upper case (dashes, spaces and case do not
/// matter).
fn canonical(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl App {
    fn secret_lifetime(&self) -> (Duration, i64) {
        match &self.notifications {
            Some(n) => (n.settings.secret_lifetime, n.settings.secret_attempts),
            None => (DEFAULT_LIFETIME, DEFAULT_ATTEMPTS),
        }
    }

    /// The secret of a request just approved under a policy that asks for one: its record (the
    /// hash; sealed for the originator when they are shown it) and the e-mail carrying it to
    /// the target and/or their manager. `None` when `next` needs none (or already had one).
    pub(crate) async fn make_secret(
        &self,
        before: Option<&Request>,
        next: &Request,
        now: Timestamp,
    ) -> Result<Option<(SecretChange, Vec<OutboxRow>)>, AppError> {
        if !next.secret_required || before.is_some_and(|b| b.secret_required) {
            return Ok(None);
        }
        let distribution = self
            .templates
            .get(next.profile_template)
            .await?
            .as_ref()
            .and_then(|t| t.policy(next.request_type))
            .map_or(SecretDistribution::User, |p| p.secrets());
        self.secret_for(next, distribution, now).await.map(Some)
    }

    async fn secret_for(
        &self,
        r: &Request,
        distribution: SecretDistribution,
        now: Timestamp,
    ) -> Result<(SecretChange, Vec<OutboxRow>), AppError> {
        let (lifetime, attempts) = self.secret_lifetime();
        let secret = new_secret();
        // argon2 is tens of milliseconds of CPU: off the async workers, as portal passwords.
        let canonical_secret = canonical(&secret);
        let hash =
            tokio::task::spawn_blocking(move || crate::sessions::hash_password(&canonical_secret))
                .await
                .map_err(|e| AppError::internal(format!("hashing a one-time password: {e}")))??;
        let keys = &self.issuing()?.keys;
        let seal = |s: &str| keys.seal(&opencm_ca::Secret(s.as_bytes().to_vec()));
        let record = SecretRecord {
            request: r.uuid,
            hash,
            expires: Timestamp::from_micros(now.micros() + lifetime.as_micros() as i64),
            attempts_left: attempts,
            for_originator: (distribution == SecretDistribution::Originator).then(|| seal(&secret)),
        };
        let parts: Vec<(&str, String)> = match distribution {
            SecretDistribution::None | SecretDistribution::Originator => Vec::new(),
            SecretDistribution::User => vec![("user", secret.clone())],
            SecretDistribution::Manager => vec![("manager", secret.clone())],
            // The first half to the user, the second to the manager (6 characters each).
            SecretDistribution::UserAndManager => vec![
                ("user", secret[..7].trim_end_matches('-').to_string()),
                ("manager", secret[7..].to_string()),
            ],
        };
        let mut rows = Vec::new();
        if !parts.is_empty() {
            match self.notifications.as_ref().filter(|n| n.settings.email) {
                Some(_) => {
                    let id = opencm_domain::Guid::new_time_ordered();
                    let payload = serde_json::json!({
                        "type": EventType::SecretsDistributed.name(),
                        "id": id.to_string(),
                        "timestamp": crate::outbox::rfc3339(now),
                        "data": {
                            "requestUuid": r.uuid.to_string(),
                            "requestType": r.request_type.name(),
                            "expires": crate::outbox::rfc3339(record.expires),
                            "split": parts.len() > 1,
                            // Sealed under the KEK: only this node's dispatcher opens them, to
                            // write them into the e-mails.
                            "secrets": parts.iter().map(|(to, s)| serde_json::json!({
                                "to": to, "sealed": seal(s),
                            })).collect::<Vec<_>>(),
                        },
                    })
                    .to_string();
                    rows.push(OutboxRow::new(
                        id,
                        EventType::SecretsDistributed,
                        EMAIL.to_string(),
                        payload,
                        now,
                    ));
                }
                None => {
                    tracing::error!(request = %r.uuid, "a one-time password is to be e-mailed, but no SMTP server is configured ([notifications.smtp]): nobody can receive it; configure one and have the help desk send a new one")
                }
            }
        }
        Ok((SecretChange::Put(record), rows))
    }

    /// The effects a change adds for a secret it makes (see `make_secret`).
    pub(crate) async fn secret_effects(
        &self,
        before: Option<&Request>,
        next: &Request,
        now: Timestamp,
    ) -> Result<Vec<Effect>, AppError> {
        Ok(match self.make_secret(before, next, now).await? {
            None => Vec::new(),
            Some((change, rows)) => std::iter::once(Effect::Secret(change))
                .chain(rows.into_iter().map(|r| Effect::Outbox(Box::new(r))))
                .collect(),
        })
    }

    /// `POST /opencm/v1/requests/{id}/onetimepassword`: the executor presents the secret. A
    /// wrong, expired or exhausted one is refused (403) after the try is in the history.
    pub async fn present_secret(
        &self,
        caller: &Principal,
        id: RequestId,
        presented: &str,
    ) -> Result<Request, AppError> {
        if presented.len() > 256 {
            return Err(AppError::new(
                ErrorCode::InvalidBody,
                "'Password' is at most 256 characters.",
            ));
        }
        let presented = canonical(presented);
        let load = |current: Request| {
            let presented = presented.clone();
            async move {
                // argon2 is costly: never computed for a caller who may not execute the request.
                opencm_domain::request::may_execute(&current, caller)?;
                let record = self.requests.secret(current.uuid).await?;
                let matches = match record.as_ref().map(|s| s.hash.clone()) {
                    Some(hash) => tokio::task::spawn_blocking(move || {
                        crate::sessions::verify(&presented, &hash)
                    })
                    .await
                    .unwrap_or(false),
                    None => false,
                };
                Ok::<_, AppError>((record, matches))
            }
        };
        let refused = std::sync::Mutex::new(None);
        let written = self
            .change(caller, id, load, |current, (record, matches), now| {
                let (d, refusal) =
                    secrets::present(current, caller, record.as_ref(), *matches, now)?;
                if let Ok(mut r) = refused.lock() {
                    *r = refusal;
                }
                Ok(Some(d))
            })
            .await?;
        let refusal = refused.lock().ok().and_then(|r| *r);
        match refusal {
            None => Ok(written),
            Some(why) => {
                tracing::warn!(request = %id, caller = %caller.login, ?why, "one-time password refused");
                Err(AppError::new(
                    ErrorCode::OneTimePasswordRefused,
                    match why {
                        Refusal::Wrong { attempts_left } => format!(
                            "That is not the one-time password of request {id}; {attempts_left} tries left."
                        ),
                        Refusal::Expired => format!(
                            "The one-time password of request {id} has expired: ask the help desk to send a new one."
                        ),
                        Refusal::NoAttemptsLeft => format!(
                            "The one-time password of request {id} was tried too often: ask the help desk to send a new one."
                        ),
                    },
                ))
            }
        }
    }

    /// `GET /opencm/v1/requests/{id}/onetimepassword`: the originator is shown the secret, once
    /// (policy `originator`); the release is in the history.
    pub async fn show_secret(&self, caller: &Principal, id: RequestId) -> Result<String, AppError> {
        let load = |current: Request| async move {
            Ok::<_, AppError>(self.requests.secret(current.uuid).await?)
        };
        let (_, record) = self
            .change_seen(caller, id, load, |current, record, _| {
                Ok(Some(secrets::show(current, caller, record.as_ref())?))
            })
            .await?;
        let sealed = record
            .and_then(|r| r.for_originator)
            .ok_or_else(|| AppError::internal("the shown secret was not loaded"))?;
        let secret = self
            .issuing()?
            .keys
            .open(&sealed)
            .map_err(|e| AppError::internal(format!("opening a one-time password: {e}")))?;
        String::from_utf8(secret.0)
            .map_err(|_| AppError::internal("a one-time password is not text"))
    }

    /// `POST /opencm/v1/requests/{id}/onetimepassword/resend`: a new secret for a request still
    /// waiting for one (the old one stops working), distributed as its policy says. By an
    /// initiator of the policy (the help desk), an approver of the request, or an administrator.
    pub async fn resend_secret(
        &self,
        caller: &Principal,
        id: RequestId,
    ) -> Result<Request, AppError> {
        // The help desk may not read a request a user made for themselves (its descriptor names
        // the user, approvers and executors): who may send a secret is decided first, from the
        // stored request, and then the change is made with that authority — for this one use
        // case; the history names the caller.
        let stored = self.requests.request(id).await?;
        let may = match &stored {
            Some(r) => self.may_distribute(caller, r).await?,
            None => false,
        };
        if !may {
            return Err(AppError::new(
                ErrorCode::RequestNotFound,
                format!("Request {id} was not found."),
            ));
        }
        let mut acting = caller.clone();
        acting.groups.push(opencm_domain::Sid::administrators());
        let load = |current: Request| async move {
            let template = self.templates.get(current.profile_template).await?;
            let distribution = template
                .as_ref()
                .and_then(|t| t.policy(current.request_type))
                .map_or(SecretDistribution::User, |p| p.secrets());
            let may = self.may_distribute(caller, &current).await?;
            // Made here, where it may wait for argon2; only when the rules will take it.
            let made = match secrets::may_resend(&current, may) {
                Ok(()) => Some(
                    self.secret_for(&current, distribution, self.clock.now())
                        .await?,
                ),
                Err(_) => None,
            };
            Ok::<_, AppError>((may, made))
        };
        self.change(&acting, id, load, |current, (may, made), _| {
            secrets::may_resend(current, *may)?;
            let Some((SecretChange::Put(record), rows)) = made.clone() else {
                return Err(AppError::internal("no new secret was made for a resend"));
            };
            let mut d = secrets::resend(current, *may, record)?;
            d.effects
                .extend(rows.into_iter().map(|r| Effect::Outbox(Box::new(r))));
            Ok(Some(d))
        })
        .await
    }

    /// Who may send a request's secret again: an administrator, an approver of the request, or
    /// an initiator of its policy who may act for its target (the help desk of their scope).
    async fn may_distribute(&self, caller: &Principal, r: &Request) -> Result<bool, AppError> {
        if caller.is_administrator() || r.allows(caller, rights::APPROVE) {
            return Ok(true);
        }
        let template = self.templates.get(r.profile_template).await?;
        let Some(policy) = template.as_ref().and_then(|t| t.policy(r.request_type)) else {
            return Ok(false);
        };
        if !policy.is_initiator(&caller.token_sids()) {
            return Ok(false);
        }
        Ok(match self.directory.user_by_uuid(r.target).await? {
            Some(target) => policy.initiator_may_target(&target),
            None => false,
        })
    }

    /// The e-mails of a `secrets.distributed` row: each part to its person, opened from its seal.
    pub(crate) async fn secret_mails(
        &self,
        data: &serde_json::Value,
        r: &Request,
    ) -> Result<Vec<(Principal, serde_json::Value)>, crate::outbox::DeliveryError> {
        use crate::outbox::DeliveryError;
        let keys = &self
            .issuing()
            .map_err(|e| DeliveryError::permanent(e.message.clone()))?
            .keys;
        let target = self
            .directory
            .user_by_uuid(r.target)
            .await
            .map_err(|e| DeliveryError::transient(e.to_string()))?;
        let mut out = Vec::new();
        let parts = data["secrets"].as_array().cloned().unwrap_or_default();
        for (i, part) in parts.iter().enumerate() {
            let person = match part["to"].as_str() {
                Some("manager") => match &target {
                    Some(t) => self
                        .directory
                        .manager_of(t)
                        .await
                        .map_err(|e| DeliveryError::transient(e.to_string()))?,
                    None => None,
                },
                _ => target.clone(),
            };
            let Some(person) = person else {
                return Err(DeliveryError::permanent(format!(
                    "nobody to send the one-time password of request {} to: the directory names no {}",
                    r.uuid,
                    part["to"].as_str().unwrap_or("user")
                )));
            };
            let sealed = part["sealed"].as_str().unwrap_or_default();
            let secret = keys.open(sealed).map_err(|e| {
                DeliveryError::permanent(format!("a sealed one-time password: {e}"))
            })?;
            let secret = String::from_utf8(secret.0)
                .map_err(|_| DeliveryError::permanent("a one-time password is not text"))?;
            let half = match (parts.len(), i) {
                (1, _) => serde_json::Value::Null,
                (_, 0) => "first".into(),
                _ => "second".into(),
            };
            out.push((
                person,
                serde_json::json!({"secret": secret, "half": half, "expires": data["expires"]}),
            ));
        }
        Ok(out)
    }
}
