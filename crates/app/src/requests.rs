//! Requests: create, read, list, approve or deny, and finish (Completed, Canceled, Abandoned).
//!
//! Every change of a request runs `change` (change.rs): one load (all IO) → one domain decision
//! (`request::finishing`, `request::approving`, `request::executing`) → one commit.

use crate::error::{AppError, ErrorCode};
use crate::ports::{ProfileRecord, RequestQuery, Write, WriteOutcome};
use crate::App;
use opencm_domain::request::approving::{self, ApprovalSnapshot};
use opencm_domain::request::creating::{self, CreateSnapshot};
use opencm_domain::request::executing;
use opencm_domain::request::finishing::{self, FinishSnapshot};
use opencm_domain::request::{self, rights, Approval, AuditEvent, Decision, Request};
use opencm_domain::{Guid, Outcome, Principal, RequestId, RequestStatus};

/// The largest page of requests a list returns.
pub const MAX_PAGE: u32 = 1000;

pub use opencm_domain::request::creating::NewRequest;

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
    /// Newest first (the portal); the API lists oldest first.
    pub newest_first: bool,
}

impl App {
    /// `POST /requests`: load (the card, profile, template and target the body names) → decide
    /// (`request::creating`) → commit.
    pub async fn create_request(
        &self,
        caller: &Principal,
        n: NewRequest,
    ) -> Result<Request, AppError> {
        creating::precheck(&n)?;
        // A request on a card acts on the profile in service on it.
        let card = match n.smartcard {
            Some(cid) => Some(self.card_on_request(caller, cid, n.profile).await?),
            None => None,
        };
        let profile = match creating::profile_to_load(&n, card.as_ref().map(|(_, p)| *p)) {
            Some(pid) => Some((pid, self.profiles.profile(pid).await?)),
            None => None,
        };
        let (card_record, profile_record) = (
            card.as_ref().map(|(c, _)| c),
            profile.as_ref().and_then(|(_, p)| p.as_ref()),
        );
        let template = match creating::template_to_load(&n, card_record, profile_record) {
            Some(t) => self.templates.get(t).await?,
            None => None,
        };
        // A profile on a card brings its card, even when the request named only the profile.
        let on_card = match (card_record, profile_record) {
            (Some(c), _) => Some(c.state()),
            (
                None,
                Some(ProfileRecord {
                    smartcard: Some(c), ..
                }),
            ) => self.smartcards.smartcard(*c).await?.map(|c| c.state()),
            _ => None,
        };
        let mut seen = CreateSnapshot {
            card,
            profile,
            template,
            target: None,
            target_enabled: true,
            on_card,
        };
        // Nothing about the target is looked up before the caller may act for them.
        if let Some(t) = creating::check_before_target(&seen, caller, &n)? {
            seen.target = self.directory.user_by_uuid(t).await?;
            if seen.target.is_some() {
                seen.target_enabled = self.user_enabled(t).await?;
            }
        }
        let now = self.clock.now();
        let (r, event) = creating::decide(&seen, caller, n, RequestId::new_time_ordered(), now)?;
        // Approved at creation under a policy with a one-time password: the secret is made with
        // the request (its hash and its e-mails) — a Create carries no other effects, so the
        // secret's row goes in the outbox list's transaction as a first step.
        let secret = self.secret_effects(None, &r, now).await?;
        let mut outbox = self.outbox_rows(
            None,
            &r,
            opencm_domain::decided::AuditAction::Create,
            &secret,
            now,
        );
        let mut secret_change = None;
        for e in secret {
            match e {
                opencm_domain::decided::Effect::Outbox(row) => outbox.push(*row),
                opencm_domain::decided::Effect::Secret(c) => secret_change = Some(c),
                _ => {}
            }
        }
        let notify = !outbox.is_empty();
        match self
            .tx
            .write(Write::Create {
                request: r.clone(),
                event,
                outbox,
                secret: secret_change,
            })
            .await?
        {
            WriteOutcome::Done => {
                if notify {
                    self.wake_dispatcher();
                }
                crate::metrics::record_change(
                    None,
                    &r,
                    opencm_domain::decided::AuditAction::Create,
                    0,
                );
                Ok(r)
            }
            WriteOutcome::Conflict => Err(AppError::internal("create conflicted on a fresh id")),
        }
    }

    /// The request if the caller may read it; 404 otherwise (docs/API.md, "Rights").
    pub async fn request(&self, caller: &Principal, id: RequestId) -> Result<Request, AppError> {
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
            reader_sids: (!caller.is_administrator())
                .then(|| sids.iter().map(|s| s.to_string()).collect()),
            target: f.target_is_caller.then_some(caller.uuid),
            status: f.status,
            after: f.page.after.map(RequestId::from),
            limit,
            newest_first: f.newest_first,
        };
        let rows = self.requests.list_requests(&q).await?;
        // The next page starts after the last row read, visible to the caller or not.
        let next_after = Page::next_after(limit, &rows, |r| r.uuid.guid());
        Ok(Paged {
            items: rows
                .into_iter()
                .filter(|r| r.allows(caller, rights::READ))
                .collect(),
            next_after,
        })
    }

    pub async fn history(
        &self,
        caller: &Principal,
        id: RequestId,
    ) -> Result<Vec<AuditEvent>, AppError> {
        self.request(caller, id).await?;
        Ok(self.audit.history(id).await?)
    }

    pub async fn approvals(
        &self,
        caller: &Principal,
        id: RequestId,
    ) -> Result<Vec<Approval>, AppError> {
        self.request(caller, id).await?;
        Ok(self.requests.approvals(id).await?)
    }

    /// `PUT /requests/{id}` `{"status": outcome}`: the request ends, and its cards and profiles
    /// follow in the same write (`request::finishing`).
    pub async fn finish(
        &self,
        caller: &Principal,
        id: RequestId,
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
            let mut seen = FinishSnapshot {
                execution,
                template,
                new_has_certificates,
            };
            // Only a completion gives the target anything.
            let now = self.clock.now();
            seen.execution = self
                .with_target(&current, seen.execution.clone(), |x| {
                    let dry = FinishSnapshot {
                        execution: x.clone(),
                        ..seen.clone()
                    };
                    let changes = finishing::decide(&current, &dry, caller, outcome, now)?;
                    Ok(outcome == Outcome::Completed && changes.is_some())
                })
                .await?;
            Ok(seen)
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
        id: RequestId,
        decision: Decision,
        comment: String,
    ) -> Result<Request, AppError> {
        opencm_domain::limits::check("'comment'", &comment, opencm_domain::limits::COMMENT_MAX)
            .map_err(|e| AppError::new(ErrorCode::InvalidBody, format!("{e}.")))?;
        let comment = &comment;
        let load = |current: Request| async move {
            let policy = self
                .templates
                .get(current.profile_template)
                .await?
                .as_ref()
                .and_then(|t| t.policy(current.request_type))
                .map(|p| (p.approvals_needed, p.secrets()));
            let mut seen = ApprovalSnapshot {
                approvals_needed: policy.map(|p| p.0),
                secrets: policy.map_or(opencm_domain::policy::SecretDistribution::None, |p| p.1),
                prior: self.requests.approvals(current.uuid).await?,
                execution: None,
            };
            // Only an approval gives the target anything; a denial always goes.
            if decision == Decision::Approve {
                let x = self.load_execution(&current).await?;
                let now = self.clock.now();
                let x = self
                    .with_target(&current, x, |x| {
                        let dry = ApprovalSnapshot {
                            execution: Some(x.clone()),
                            ..seen.clone()
                        };
                        approving::decide(&current, &dry, caller, decision, comment, now)?;
                        Ok(true)
                    })
                    .await?;
                seen.execution = Some(x);
            }
            Ok(seen)
        };
        self.change(caller, id, load, |current, seen, now| {
            Ok(Some(approving::decide(
                current, seen, caller, decision, comment, now,
            )?))
        })
        .await
    }

    /// Approved → Executing, for the execution steps (card binding, certificate data); the
    /// profile the request acts on is checked again and guarded.
    pub async fn begin_execution(
        &self,
        caller: &Principal,
        id: RequestId,
    ) -> Result<Request, AppError> {
        let load = |current: Request| async move {
            self.load_execution_for(&current, |x| {
                Ok(executing::begin(&current, x, caller)?.is_some())
            })
            .await
        };
        self.change(caller, id, load, |current, seen, _| {
            Ok(executing::begin(current, seen, caller)?)
        })
        .await
    }
}
