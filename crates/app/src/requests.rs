//! Requests: create, read, list, approve or deny, and finish (Completed, Canceled, Abandoned).
//!
//! Every change runs `change`: load the request (and whatever else the decision needs) → decide
//! with the domain → write with the versions read. A write that loses a race
//! (`WriteOutcome::Conflict`) is decided again from a fresh read, so the loser sees the winner's
//! result (an idempotent repeat, or a 409 for a transition no longer allowed) and never
//! overwrites it.

use crate::error::{AppError, ErrorCode};
use crate::ports::{Effect, ProfileRecord, RequestQuery, Write, WriteOutcome};
use crate::App;
use opencm_domain::profile::{self, ProfileStatus};
use opencm_domain::request::{
    self, rights, Approval, AuditEvent, Change, CreateInput, Decision, Request,
};
use opencm_domain::smartcard::{CardWork, FinishError, RequestCards};
use opencm_domain::{Guid, Outcome, Principal, RequestStatus, RequestType, Sid, Timestamp};
use std::future::Future;

const MAX_ATTEMPTS: usize = 16;
/// How long a write that keeps losing races is retried (after MAX_ATTEMPTS tries at least).
const RETRY_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// The largest page of requests a list returns.
pub const MAX_PAGE: u32 = 1000;

/// `POST /requests`, parsed from the wire.
pub struct NewRequest {
    /// The template; `None` when the request names an existing profile (its template is used).
    pub template: Option<Guid>,
    pub profile: Option<Guid>,
    /// The existing card the request acts on (its profile is the one in service on it).
    pub smartcard: Option<Guid>,
    pub request_type: RequestType,
    pub target: Option<Guid>,
    pub data: Vec<(String, Option<String>)>,
    pub comment: String,
    pub priority: Option<i64>,
}

/// Where a page of a list starts and how long it may be.
#[derive(Clone, Copy, Debug, Default)]
pub struct Page {
    /// The last id of the previous page.
    pub after: Option<Guid>,
    /// 1..=MAX_PAGE; `None` for the largest page.
    pub limit: Option<u32>,
}

impl Page {
    /// The page size, or 400 when outside 1..=MAX_PAGE.
    pub fn limit(&self) -> Result<u32, AppError> {
        match self.limit {
            None => Ok(MAX_PAGE),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(_) => Err(AppError::new(
                ErrorCode::InvalidQuery,
                format!("limit must be a whole number from 1 to {MAX_PAGE}."),
            )),
        }
    }

    /// The page that follows one that ended at `items`' last id, if it was full.
    pub(crate) fn next_after<T>(limit: u32, items: &[T], id: impl Fn(&T) -> Guid) -> Option<Guid> {
        (items.len() as u32 == limit)
            .then(|| items.last().map(id))
            .flatten()
    }
}

/// One page of a list, and where the next one starts when this one was full.
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_after: Option<Guid>,
}

/// `GET /requests` filters.
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    /// Only requests whose target is the caller (`targetuser=current`).
    pub target_is_caller: bool,
    pub status: Option<RequestStatus>,
    pub page: Page,
}

/// What a decision on the current request produced: the request as it must be stored, what to
/// record beside it, and the audit action.
pub(crate) struct Decided {
    pub next: Request,
    pub approval: Option<Approval>,
    pub action: &'static str,
    pub detail: String,
    pub effects: Vec<Effect>,
}

fn bad(message: &str) -> AppError {
    AppError::new(ErrorCode::InvalidBody, message)
}

impl App {
    pub async fn create_request(
        &self,
        caller: &Principal,
        n: NewRequest,
    ) -> Result<Request, AppError> {
        // An enrolment makes its own card: naming one is a mistake in the body, said first.
        if n.smartcard.is_some() && n.request_type == RequestType::Enroll {
            return Err(request::CreateError::SmartcardNotAllowed(n.request_type).into());
        }
        // A request on a card acts on the profile in service on it.
        let card = match n.smartcard {
            Some(cid) => Some(self.card_on_request(caller, cid, n.profile).await?),
            None => None,
        };
        // TemporaryCards makes a new profile on a new card for the user of the card it names:
        // that card gives the template and the user, not its profile.
        let makes_profile = opencm_domain::profile::allowed_statuses(n.request_type).is_none();
        let profile_id = match &card {
            Some(_) if makes_profile => None,
            Some((_, p)) => Some(*p),
            None => n.profile,
        };
        // A request on an existing profile takes the profile's template and user.
        let profile = match profile_id {
            Some(pid) => {
                let not_found = || {
                    AppError::new(
                        ErrorCode::ProfileNotFound,
                        format!("Profile {pid} was not found."),
                    )
                };
                let p = self.profiles.profile(pid).await?.ok_or_else(not_found)?;
                if n.template.is_some_and(|t| t != p.template) {
                    return Err(bad(
                        "'profiletemplateuuid' is not the profile's template; omit it.",
                    ));
                }
                if n.target.is_some_and(|t| t != p.assigned_user) {
                    return Err(bad("'target' is not the profile's user; omit it."));
                }
                Some(p)
            }
            None => None,
        };
        let card_record = card.as_ref().map(|(c, _)| c);
        if let (Some(c), Some(t)) = (card_record, n.template) {
            if t != c.template {
                return Err(bad(
                    "'profiletemplateuuid' is not the card's template; omit it.",
                ));
            }
        }
        let template_id = match (&profile, card_record, n.template) {
            (Some(p), _, _) => p.template,
            (None, Some(c), _) => c.template,
            (None, None, Some(t)) => t,
            (None, None, None) => {
                return Err(bad("'profiletemplateuuid' (or 'profile') is required."))
            }
        };
        let template = self.templates.get(template_id).await?.ok_or_else(|| {
            AppError::new(
                ErrorCode::ProfileTemplateNotFound,
                format!("Profile template {template_id} was not found."),
            )
        })?;
        let owner = profile
            .as_ref()
            .map(|p| p.assigned_user)
            .or(card_record.map(|c| c.assigned_user));
        if let (Some(o), Some(t)) = (owner, n.target) {
            if o != t {
                return Err(bad("'target' is not the card's user; omit it."));
            }
        }
        let target_id = owner.or(n.target);
        // Whether the caller may act for someone else is decided before the target is looked up:
        // the same 403 whether that user exists or not.
        if profile.is_none() {
            request::may_initiate(
                &template,
                n.request_type,
                caller,
                target_id.is_some_and(|t| t != caller.uuid),
            )?;
        }
        let target = match target_id {
            Some(t) if t != caller.uuid => {
                self.directory.user_by_uuid(t).await?.ok_or_else(|| {
                    AppError::new(
                        ErrorCode::UserNotFound,
                        format!("Target user {t} was not found."),
                    )
                })?
            }
            _ => caller.clone(),
        };
        if let Some(p) = &profile {
            // Someone else's profile is invisible unless the caller may initiate for others.
            let initiator = template.policy(n.request_type).is_some_and(|pol| {
                opencm_domain::sddl::access_check(
                    &pol.authorized_initiator,
                    &caller.token_sids(),
                    rights::ROLE,
                )
                .is_granted()
            });
            let admin = caller.token_sids().contains(&Sid::administrators());
            if p.assigned_user != caller.uuid && !initiator && !admin {
                return Err(AppError::new(
                    ErrorCode::ProfileNotFound,
                    format!("Profile {} was not found.", p.uuid),
                ));
            }
        }
        // A profile on a card brings its card, even when the request named only the profile.
        let on_card = match (card, &profile) {
            (Some((c, _)), _) => Some(c.state()),
            (None, Some(p)) if !p.smartcard.is_nil() => self
                .smartcards
                .smartcard(p.smartcard)
                .await?
                .map(|c| c.state()),
            _ => None,
        };
        // Someone else may be disabled (offboarded); the caller signed in, so is not.
        let target_enabled = target.uuid == caller.uuid || self.user_enabled(target.uuid).await?;
        let now = self.clock.now();
        let r = request::create(CreateInput {
            id: Guid::new_time_ordered(),
            now,
            request_type: n.request_type,
            template: &template,
            caller,
            target: &target,
            data: n.data,
            comment: n.comment,
            priority: n.priority,
            on_profile: profile.as_ref().map(ProfileRecord::state),
            on_card,
            target_enabled,
        })?;
        let event = AuditEvent {
            request: r.uuid,
            at: now,
            actor: caller.uuid,
            action: "Create".into(),
            from: RequestStatus::None,
            to: r.status,
            detail: format!(
                "{} request from template '{}'",
                r.request_type, template.name
            ),
        };
        match self
            .tx
            .write(Write::Create {
                request: r.clone(),
                event,
            })
            .await?
        {
            WriteOutcome::Done => Ok(r),
            WriteOutcome::Conflict => Err(AppError::internal("create conflicted on a fresh id")),
        }
    }

    /// The request if the caller may read it; 404 otherwise (docs/API.md, "Rights").
    pub async fn request(&self, caller: &Principal, id: Guid) -> Result<Request, AppError> {
        let not_found = || {
            AppError::new(
                ErrorCode::RequestNotFound,
                format!("Request {id} was not found."),
            )
        };
        let r = self.requests.request(id).await?.ok_or_else(not_found)?;
        request::ensure_readable(&r, caller).map_err(|_| not_found())?;
        Ok(r)
    }

    /// The requests the caller may read, a page at a time, by id.
    pub async fn list_requests(
        &self,
        caller: &Principal,
        f: RequestFilter,
    ) -> Result<Paged<Request>, AppError> {
        let limit = f.page.limit()?;
        let sids = caller.token_sids();
        let q = RequestQuery {
            // Request descriptors always grant everything to BA: no pre-filter for them.
            reader_sids: (!sids.contains(&Sid::administrators()))
                .then(|| sids.iter().map(|s| s.to_string()).collect()),
            target: f.target_is_caller.then_some(caller.uuid),
            status: f.status,
            after: f.page.after,
            limit,
        };
        let rows = self.requests.list_requests(&q).await?;
        // The next page starts after the last row read, visible to the caller or not.
        let next_after = Page::next_after(limit, &rows, |r| r.uuid);
        Ok(Paged {
            items: rows
                .into_iter()
                .filter(|r| r.allows(caller, rights::READ))
                .collect(),
            next_after,
        })
    }

    pub async fn history(&self, caller: &Principal, id: Guid) -> Result<Vec<AuditEvent>, AppError> {
        self.request(caller, id).await?;
        Ok(self.audit.history(id).await?)
    }

    pub async fn approvals(&self, caller: &Principal, id: Guid) -> Result<Vec<Approval>, AppError> {
        self.request(caller, id).await?;
        Ok(self.requests.approvals(id).await?)
    }

    /// Read → decide → write with the version read, again from a fresh read when another writer
    /// got there first. `decide` returns `None` when there is nothing to change (the request is
    /// answered as it stands).
    pub(crate) async fn change<'a, F, Fut>(
        &'a self,
        caller: &'a Principal,
        id: Guid,
        decide: F,
    ) -> Result<Request, AppError>
    where
        F: Fn(Request, Timestamp) -> Fut,
        Fut: Future<Output = Result<Option<Decided>, AppError>> + 'a,
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
            let current = self.request(caller, id).await?;
            let from = current.status;
            let now = self.clock.now();
            let Some(d) = decide(current.clone(), now).await? else {
                return Ok(current);
            };
            let event = AuditEvent {
                request: id,
                at: now,
                actor: caller.uuid,
                action: d.action.into(),
                from,
                to: d.next.status,
                detail: d.detail,
            };
            let w = Write::Update {
                request: d.next.clone(),
                approval: d.approval,
                event,
                effects: d.effects,
            };
            if self.tx.write(w).await? == WriteOutcome::Done {
                return Ok(Request {
                    version: d.next.version + 1,
                    ..d.next
                });
            }
        }
        Err(AppError::new(
            ErrorCode::ConcurrentUpdate,
            format!("Request {id} is being changed by others right now; retry."),
        ))
    }

    /// `PUT /requests/{id}` `{"status": outcome}`.
    pub async fn finish(
        &self,
        caller: &Principal,
        id: Guid,
        outcome: Outcome,
    ) -> Result<Request, AppError> {
        self.change(caller, id, |current, now| async move {
            Ok(match request::finish(&current, caller, outcome, now)? {
                Change::AlreadyDone => None,
                Change::To(next) => Some(Decided {
                    effects: self.outcome_effects(&current, &next, outcome).await?,
                    next: *next,
                    approval: None,
                    action: outcome.action(),
                    detail: String::new(),
                }),
            })
        })
        .await
    }

    /// `POST /requests/{id}/approvals`.
    pub async fn decide(
        &self,
        caller: &Principal,
        id: Guid,
        decision: Decision,
        comment: String,
    ) -> Result<Request, AppError> {
        let comment = &comment;
        self.change(caller, id, |current, now| async move {
            let needed = self
                .templates
                .get(current.profile_template)
                .await?
                .as_ref()
                .and_then(|t| t.policy(current.request_type))
                .map(|p| p.approvals_needed)
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::PolicyNotFound,
                        "The request's workflow policy no longer exists.",
                    )
                })?;
            // Approving for a disabled user would give them something; denying always goes.
            if decision == Decision::Approve {
                let (old, _) = self.touched_profiles(&current).await?;
                let cards = self.request_cards(&current).await?;
                self.ensure_target_served(&current, &cards, old.as_ref())
                    .await?;
            }
            let prior = self.requests.approvals(id).await?;
            let (next, approval) = request::decide(
                &current,
                needed,
                caller,
                &prior,
                decision,
                comment.clone(),
                now,
            )?;
            Ok(Some(Decided {
                next,
                approval: Some(approval),
                action: decision.name(),
                detail: comment.clone(),
                effects: Vec::new(),
            }))
        })
        .await
    }

    /// Approved → Executing, for the execution steps (card binding, certificate data); the
    /// profile the request acts on is checked again and guarded.
    pub async fn begin_execution(&self, caller: &Principal, id: Guid) -> Result<Request, AppError> {
        self.change(caller, id, |current, _| async move {
            let next = request::begin_execution(&current, caller)?;
            if next.status == current.status {
                return Ok(None);
            }
            Ok(Some(Decided {
                next,
                approval: None,
                action: "Execute",
                detail: String::new(),
                effects: self.execution_guard(&current).await?,
            }))
        })
        .await
    }

    /// The check every execution step shares (binding, issuance, a card secret's release, a card
    /// status set, the move to Executing): the profile the request acts on is still in a status
    /// its type allows, its cards still in service for it (`RequestCards::check_execution`), and
    /// its target not disabled if it gives them anything. The write carries the versions read.
    pub(crate) async fn execution_guard(&self, r: &Request) -> Result<Vec<Effect>, AppError> {
        let (old, _) = self.touched_profiles(r).await?;
        let guard = profile::on_execution(
            r.request_type,
            old.as_ref().map(ProfileRecord::state).as_ref(),
        )?;
        let cards = self.request_cards(r).await?;
        let card_guards = cards.check_execution()?;
        self.ensure_target_served(r, &cards, old.as_ref()).await?;
        let mut effects: Vec<Effect> = guard.map(Effect::Profile).into_iter().collect();
        effects.extend(card_guards.into_iter().map(Effect::Smartcard));
        Ok(effects)
    }

    /// Refuses (409 `UserDisabled`) a step that would give something to a disabled target: a
    /// certificate, a card, a secret, or service back (`request::gives_to_target`).
    pub(crate) async fn ensure_target_served(
        &self,
        r: &Request,
        cards: &RequestCards,
        old: Option<&ProfileRecord>,
    ) -> Result<(), AppError> {
        let reinstating = r.request_type == RequestType::SuspendOrReinstate
            && match cards.work() {
                Some(w) => w == CardWork::Reinstates,
                None => old.is_some_and(|p| p.status == ProfileStatus::Suspended),
            };
        if !request::gives_to_target(r.request_type, reinstating) {
            return Ok(());
        }
        let enabled = self.user_enabled(r.target).await?;
        Ok(request::check_target(
            r.request_type,
            reinstating,
            r.target,
            enabled,
        )?)
    }

    /// Whether a user may still be given anything: known, and neither disabled in opencm
    /// (offboarded) nor in the directory.
    pub(crate) async fn user_enabled(&self, id: Guid) -> Result<bool, AppError> {
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
        let old = if r.old_profile.is_nil() {
            None
        } else {
            self.profiles.profile(r.old_profile).await?
        };
        let new = if r.new_profile.is_nil() || r.new_profile == r.old_profile {
            None
        } else {
            self.profiles.profile(r.new_profile).await?
        };
        Ok((old, new))
    }

    /// What completing, canceling or abandoning does to the profiles and cards a request
    /// touches, decided by the domain from their current state (docs/API.md, "The request lifecycle"), written in the
    /// transition's transaction with the versions read.
    async fn outcome_effects(
        &self,
        current: &Request,
        next: &Request,
        outcome: Outcome,
    ) -> Result<Vec<Effect>, AppError> {
        let (old, new) = self.touched_profiles(next).await?;
        let template = self.templates.get(next.profile_template).await?;
        let smartcard_template = template.as_ref().is_some_and(|t| t.kind.is_smartcard());
        let cards = self.request_cards(next).await?;
        let decided = cards.finish(
            next.uuid,
            outcome,
            old.as_ref().map(ProfileRecord::state).as_ref(),
            new.as_ref().map(ProfileRecord::state).as_ref(),
            smartcard_template,
        );
        // The card first: completing a card enrolment without a card says so before anything
        // else; then whether it delivered what it must; then the profiles.
        if let Err(FinishError::Card(e)) = decided {
            return Err(e.into());
        }
        if outcome == Outcome::Completed {
            // Whether the request must deliver something before it completes: the certificates of
            // a new profile (onto its card, for a smart card template), or a Recover's archived
            // keys.
            let recover = matches!(
                next.request_type,
                RequestType::Recover | RequestType::RecoverOnBehalf
            );
            let issues = template.as_ref().is_some_and(|t| {
                recover || !t.certificates_issued_by(next.request_type).is_empty()
            });
            let delivered = match (&new, next.request_type) {
                (_, RequestType::Recover | RequestType::RecoverOnBehalf) => {
                    current.status == RequestStatus::Executing
                }
                (Some(p), _) => self.certificates.has_certificates(p.uuid).await?,
                (None, _) => false,
            };
            profile::ensure_issued(next.uuid, next.request_type, issues, delivered)?;
        }
        let effects = crate::card_lifecycle::effects_of(decided?);
        if outcome == Outcome::Completed {
            self.ensure_target_served(next, &cards, old.as_ref())
                .await?;
        }
        Ok(effects)
    }
}
