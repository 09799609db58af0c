//! Requests: create, read, list, approve or deny, and finish (Completed, Canceled, Abandoned).
//!
//! Every change of a request runs `change` (change.rs): one load (all IO) → one domain decision
//! (`request::finishing`, `request::approving`, `request::executing`) → one commit.

use crate::error::{AppError, ErrorCode};
use crate::ports::{ProfileRecord, RequestQuery, Write, WriteOutcome};
use crate::App;
use opencm_domain::decided::AuditAction;
use opencm_domain::request::approving::{self, ApprovalSnapshot};
use opencm_domain::request::executing;
use opencm_domain::request::finishing::{self, FinishSnapshot};
use opencm_domain::request::{self, rights, Approval, AuditEvent, CreateInput, Decision, Request};
use opencm_domain::{Guid, Outcome, Principal, RequestStatus, RequestType, Sid};

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
            action: AuditAction::Create.name().into(),
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

    /// `PUT /requests/{id}` `{"status": outcome}`: the request ends, and its cards and profiles
    /// follow in the same write (`request::finishing`).
    pub async fn finish(
        &self,
        caller: &Principal,
        id: Guid,
        outcome: Outcome,
    ) -> Result<Request, AppError> {
        let load = |current: Request| async move {
            let execution = self.load_execution(&current).await?;
            let template = self.templates.get(current.profile_template).await?;
            // Only a completion asks whether the new profile holds anything.
            let new_has_certificates = match &execution.new {
                Some(p) if outcome == Outcome::Completed => {
                    self.certificates.has_certificates(p.uuid).await?
                }
                _ => false,
            };
            Ok(FinishSnapshot {
                execution,
                template,
                new_has_certificates,
            })
        };
        self.change(caller, id, load, |current, seen, now| {
            Ok(finishing::decide(current, seen, caller, outcome, now)?)
        })
        .await
    }

    /// `POST /requests/{id}/approvals` (`request::approving`).
    pub async fn decide(
        &self,
        caller: &Principal,
        id: Guid,
        decision: Decision,
        comment: String,
    ) -> Result<Request, AppError> {
        let load = |current: Request| async move {
            let approvals_needed = self
                .templates
                .get(current.profile_template)
                .await?
                .as_ref()
                .and_then(|t| t.policy(current.request_type))
                .map(|p| p.approvals_needed);
            Ok(ApprovalSnapshot {
                approvals_needed,
                prior: self.requests.approvals(current.uuid).await?,
                execution: self.load_execution(&current).await?,
            })
        };
        self.change(caller, id, load, |current, seen, now| {
            Ok(Some(approving::decide(
                current, seen, caller, decision, &comment, now,
            )?))
        })
        .await
    }

    /// Approved → Executing, for the execution steps (card binding, certificate data); the
    /// profile the request acts on is checked again and guarded.
    pub async fn begin_execution(&self, caller: &Principal, id: Guid) -> Result<Request, AppError> {
        let load = |current: Request| async move { self.load_execution(&current).await };
        self.change(caller, id, load, |current, seen, _| {
            Ok(executing::begin(current, seen, caller)?)
        })
        .await
    }
}
