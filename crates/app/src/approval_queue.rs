//! What an approver sees: the pending requests waiting for their decision, those waiting on
//! others, and what they decided — from the same access checks as `POST /requests/{id}/approvals`.

use crate::error::AppError;
use crate::requests::{Page, RequestFilter, MAX_PAGE};
use crate::App;
use opencm_domain::request::{rights, Approval, Request};
use opencm_domain::{Principal, RequestStatus};

/// The approval queue of one approver.
pub struct ApprovalQueue {
    /// Pending requests the caller may approve and has not decided.
    pub needs_me: Vec<Request>,
    /// Pending requests the caller can read but that wait for someone else: decided by the
    /// caller and waiting for more approvals, or the caller's own.
    pub waiting_on_others: Vec<Request>,
    /// The caller's decisions, newest request first.
    pub decided: Vec<(Request, Approval)>,
}

/// How many decisions the queue shows.
pub const DECIDED_SHOWN: u32 = 50;

impl App {
    /// Two queries: the pending requests the caller may read, and the caller's decisions.
    pub async fn approval_queue(&self, caller: &Principal) -> Result<ApprovalQueue, AppError> {
        let pending = self
            .list_requests(
                caller,
                RequestFilter {
                    status: Some(RequestStatus::Pending),
                    // The newest first: a queue longer than a page shows what came in last.
                    newest_first: true,
                    page: Page {
                        after: None,
                        limit: Some(MAX_PAGE),
                    },
                    ..Default::default()
                },
            )
            .await?
            .items;
        let decided = self
            .requests
            .decided_by(caller.uuid, DECIDED_SHOWN)
            .await?
            .into_iter()
            .filter(|(r, _)| r.allows(caller, rights::READ))
            .collect::<Vec<_>>();
        let (needs_me, waiting_on_others) = pending.into_iter().partition(|r| {
            r.allows(caller, rights::APPROVE) && !decided.iter().any(|(d, _)| d.uuid == r.uuid)
        });
        Ok(ApprovalQueue {
            needs_me,
            waiting_on_others,
            decided,
        })
    }
}
