//! Load → decide → commit, the shape of every change of a request. `load` does all the IO a
//! decision needs (through the ports), `decide` is a synchronous call into the domain over what
//! was loaded, and the commit writes the request, its audit event and its effects in one
//! transaction, carrying the versions read. A commit that loses a race (`WriteOutcome::Conflict`)
//! is loaded and decided again from a fresh read, so the loser sees the winner's result (an
//! idempotent repeat, or a 409 for a transition no longer allowed) and never overwrites it.

use crate::error::{AppError, ErrorCode};
use crate::ports::{Effect, ProfileRecord, SmartcardRecord, Write, WriteOutcome};
use crate::App;
use opencm_domain::decided::AuditAction;
use opencm_domain::decided::Decided;
use opencm_domain::profile::{ProfileState, ProfileStatus};
use opencm_domain::request::executing::{self, Execution};
use opencm_domain::request::{AuditEvent, Request};
use opencm_domain::smartcard::{self, RequestCards, SmartcardStatus};
use opencm_domain::{Principal, RequestId, Timestamp, UserId};
use std::future::Future;

/// Whether a request of type `t` can take its card out of service (and so must know what else
/// was issued for it).
fn ends_service(t: opencm_domain::RequestType) -> bool {
    use opencm_domain::RequestType as T;
    matches!(
        t,
        T::Revoke
            | T::Retire
            | T::TemporaryCardDisable
            | T::TemporaryCardRetire
            | T::SuspendOrReinstate
    )
}

/// The status a history action set on the request's card, if it is a card status set; `now` for
/// the single action earlier versions recorded.
fn card_status_set(action: &str, now: SmartcardStatus) -> Option<SmartcardStatus> {
    match AuditAction::parse(action)? {
        AuditAction::SetSmartcard(set) => Some(set.unwrap_or(now)),
        _ => None,
    }
}

const MAX_ATTEMPTS: usize = 16;
/// How long a write that keeps losing races is retried (after MAX_ATTEMPTS tries at least).
const RETRY_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

impl App {
    /// Load → decide → commit, again from a fresh load when another writer got there first.
    /// `decide` answers `None` when there is nothing to change (the request is answered as it
    /// stands). Answers the request as written and the snapshot the winning decision read.
    pub(crate) async fn change_seen<S, L, Fut, D>(
        &self,
        caller: &Principal,
        id: RequestId,
        load: L,
        decide: D,
    ) -> Result<(Request, S), AppError>
    where
        L: Fn(Request) -> Fut,
        Fut: Future<Output = Result<S, AppError>>,
        D: Fn(&Request, &S, Timestamp) -> Result<Option<Decided>, AppError>,
    {
        // A write that keeps losing to others is decided again until it has tried at least
        // MAX_ATTEMPTS times and for RETRY_BUDGET: many writers on one request at once (a card
        // client's simultaneous secret calls) each win in turn. From the fourth loss on, a short
        // random pause spreads the contenders over the next group commits.
        let started = std::time::Instant::now();
        for attempt in 1.. {
            if attempt > MAX_ATTEMPTS && started.elapsed() >= RETRY_BUDGET {
                break;
            }
            if attempt > 4 {
                use rand::Rng;
                let pause = rand::thread_rng().gen_range(0..100 * attempt.min(50) as u64);
                tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
            }
            // Load.
            let current = self.request(caller, id).await?;
            let seen = load(current.clone()).await?;
            // Decide.
            let now = self.clock.now();
            let Some(d) = decide(&current, &seen, now)? else {
                return Ok((current, seen));
            };
            // Commit.
            let event = AuditEvent {
                request: id,
                at: now,
                actor: caller.uuid,
                action: d.action.name().into(),
                from: current.status,
                to: d.next.status,
                detail: d.detail,
            };
            // The notifications of the change, written with it (the transactional outbox).
            let mut effects = d.effects;
            // A one-time password the change makes (an approval under a policy that asks for
            // one), with the e-mails that carry it.
            effects.extend(self.secret_effects(Some(&current), &d.next, now).await?);
            let notices = self.outbox_rows(Some(current.status), &d.next, d.action, &effects, now);
            let notify =
                !notices.is_empty() || effects.iter().any(|e| matches!(e, Effect::Outbox(_)));
            effects.extend(notices.into_iter().map(|r| Effect::Outbox(Box::new(r))));
            // What the metrics count of it, once it has committed.
            let issued = effects
                .iter()
                .filter(|e| matches!(e, Effect::InsertCertificate(_)))
                .count();
            let w = Write::Update {
                request: d.next.clone(),
                approval: d.approval,
                event,
                effects,
            };
            if self.tx.write(w).await? == WriteOutcome::Done {
                crate::metrics::record_change(Some(current.status), &d.next, d.action, issued);
                if notify {
                    self.wake_dispatcher();
                }
                let written = Request {
                    version: d.next.version + 1,
                    ..d.next
                };
                return Ok((written, seen));
            }
        }
        Err(AppError::new(
            ErrorCode::ConcurrentUpdate,
            format!("Request {id} is being changed by others right now; retry."),
        ))
    }

    /// `change_seen`, for callers that need only the request.
    pub(crate) async fn change<S, L, Fut, D>(
        &self,
        caller: &Principal,
        id: RequestId,
        load: L,
        decide: D,
    ) -> Result<Request, AppError>
    where
        L: Fn(Request) -> Fut,
        Fut: Future<Output = Result<S, AppError>>,
        D: Fn(&Request, &S, Timestamp) -> Result<Option<Decided>, AppError>,
    {
        Ok(self.change_seen(caller, id, load, decide).await?.0)
    }

    /// What every execution step reads besides the request: the profiles it touches and its
    /// cards as they are now. Whether its target is still enabled is read apart (`with_target`).
    pub(crate) async fn load_execution(&self, r: &Request) -> Result<Execution, AppError> {
        let (old, new) = self.touched_profiles(r).await?;
        Ok(Execution {
            old: old.as_ref().map(ProfileRecord::state),
            new: new.as_ref().map(ProfileRecord::state),
            cards: self.request_cards(r).await?,
            target_enabled: None,
        })
    }

    /// `x` with whether the request's target is still enabled, read last and only when it can
    /// matter: the step gives the target something, and its decision — run first over `x` as if
    /// the target were enabled (`dry`) — neither refuses already nor changes nothing (`dry`
    /// answers whether the outcome may depend on the target). A caller who may not act, or a step
    /// the rules refuse anyway, so costs no directory lookup, and gets the same answer while the
    /// directory is down.
    pub(crate) async fn with_target(
        &self,
        r: &Request,
        mut x: Execution,
        dry: impl FnOnce(&Execution) -> Result<bool, AppError>,
    ) -> Result<Execution, AppError> {
        if !executing::needs_target(r, &x.cards, x.old.as_ref()) {
            return Ok(x);
        }
        x.target_enabled = Some(true);
        let depends = dry(&x)?;
        x.target_enabled = if depends {
            Some(self.user_enabled(r.target).await?)
        } else {
            None
        };
        Ok(x)
    }

    /// `load_execution` then `with_target`, for steps whose decision reads nothing else.
    pub(crate) async fn load_execution_for(
        &self,
        r: &Request,
        dry: impl FnOnce(&Execution) -> Result<bool, AppError>,
    ) -> Result<Execution, AppError> {
        let x = self.load_execution(r).await?;
        self.with_target(r, x, dry).await
    }

    /// Whether a user may still be given anything: known, and neither disabled in opencm
    /// (offboarded) nor in the directory.
    pub async fn user_enabled(&self, id: UserId) -> Result<bool, AppError> {
        // One point read for opencm's own users (a disabled one does not fall through to the
        // directory, as at sign-in); the directory finds no disabled account.
        if let Some(enabled) = self.identities.local_user_enabled(id).await? {
            return Ok(enabled);
        }
        Ok(match &self.external_directory {
            Some(d) => d.user_by_uuid(id).await?.is_some(),
            None => false,
        })
    }

    /// The profiles a request touches, as they are now: the one it acts on and the one it created.
    pub(crate) async fn touched_profiles(
        &self,
        r: &Request,
    ) -> Result<(Option<ProfileRecord>, Option<ProfileRecord>), AppError> {
        let old = match r.old_profile {
            Some(p) => self.profiles.profile(p).await?,
            None => None,
        };
        let new = match r.new_profile.filter(|p| r.old_profile != Some(*p)) {
            Some(p) => self.profiles.profile(p).await?,
            None => None,
        };
        Ok((old, new))
    }

    /// The request's cards as they are now (a temporary card past its expiry reads Disabled),
    /// and the status the request set on its own card, if it did: what every decision on the
    /// request's cards reads.
    pub(crate) async fn request_cards(&self, r: &Request) -> Result<RequestCards, AppError> {
        let (own, source) = smartcard::card_ids(r.request_type, r.old_smartcard, r.new_smartcard);
        let own_record = match own {
            Some(id) => self.smartcards.smartcard(id).await?,
            None => None,
        };
        let pending = match &own_record {
            Some(c) if ends_service(r.request_type) => self.pending_on(c).await?,
            _ => Vec::new(),
        };
        let own = own_record.map(|c| c.state());
        let source = match source {
            Some(id) => self.smartcards.smartcard(id).await?.map(|c| c.state()),
            None => None,
        };
        let set_during = match own {
            Some(c) => self.card_set_during(r, c.status).await?,
            None => None,
        };
        Ok(RequestCards {
            request_type: r.request_type,
            makes: smartcard::makes_card(r.request_type, r.old_smartcard, r.new_smartcard),
            own,
            source,
            set_during,
            pending,
        })
    }

    /// The profiles other requests reserved for `card` and have not completed (still New): on
    /// the card itself, and on cards made from it that are still being made.
    async fn pending_on(&self, card: &SmartcardRecord) -> Result<Vec<ProfileState>, AppError> {
        let mut cards = vec![card.uuid];
        cards.extend(
            self.smartcards
                .smartcards_of(Some(card.assigned_user))
                .await?
                .into_iter()
                .filter(|c| {
                    (c.primary == Some(card.uuid) || c.permanent == Some(card.uuid))
                        && c.status == SmartcardStatus::Assigned
                })
                .map(|c| c.uuid),
        );
        let mut pending = Vec::new();
        for c in cards {
            pending.extend(
                self.smartcards
                    .profiles_of_smartcard(c)
                    .await?
                    .iter()
                    .filter(|p| p.status == ProfileStatus::New)
                    .map(ProfileRecord::state),
            );
        }
        Ok(pending)
    }

    /// The status the request set on its own card during execution, from its history (the card
    /// `now` is in, for a set recorded before the status was part of the action).
    async fn card_set_during(
        &self,
        r: &Request,
        now: SmartcardStatus,
    ) -> Result<Option<SmartcardStatus>, AppError> {
        if !smartcard::sets_card_status(r.request_type) {
            return Ok(None);
        }
        Ok(self
            .audit
            .history(r.uuid)
            .await?
            .iter()
            .rev()
            .find_map(|e| card_status_set(&e.action, now)))
    }
}
