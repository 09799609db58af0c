//! The audit trail across requests, for administrators.

use crate::error::{AppError, ErrorCode};
use crate::ports::AuditQuery;
use crate::requests::MAX_PAGE;
use crate::App;
use opencm_domain::request::AuditEvent;
use opencm_domain::Principal;

impl App {
    /// Administrators search every request's history, newest first.
    pub async fn audit_search(
        &self,
        caller: &Principal,
        mut q: AuditQuery,
    ) -> Result<Vec<(i64, AuditEvent)>, AppError> {
        if !caller.is_administrator() {
            return Err(AppError::new(
                ErrorCode::AccessDenied,
                "Only administrators search the audit trail.",
            ));
        }
        q.limit = q.limit.clamp(1, MAX_PAGE);
        Ok(self.audit.search(&q).await?)
    }
}
