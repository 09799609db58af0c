//! Offboarding: listing and revoking API tokens, disabling and enabling users, changing group
//! membership and certificate mappings — from the CLI (`opencm token|user|group`) or, for
//! administrators, over HTTP. Each use case authorizes its actor first, loads, asks the domain
//! (`opencm_domain::offboarding`), and records the change with its audit event in one transaction
//! that moves the identity epoch, so it takes effect on every node at the next request (see
//! `TokenAuthenticator`).

use crate::error::{AppError, ErrorCode};
use crate::ports::TokenRecord;
use crate::App;
use opencm_domain::offboarding::{self as rules, Decided, OffboardingError};
use opencm_domain::Principal;

pub use opencm_domain::offboarding::{token_id, Actor, TOKEN_ID_LEN, TOKEN_ID_MIN};

/// A token as administrators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub record: TokenRecord,
}

impl From<TokenRecord> for TokenInfo {
    fn from(record: TokenRecord) -> Self {
        TokenInfo {
            id: token_id(&record.hash),
            record,
        }
    }
}

impl From<OffboardingError> for AppError {
    fn from(e: OffboardingError) -> Self {
        use OffboardingError as E;
        let code = match &e {
            E::NotAdministrator => ErrorCode::AccessDenied,
            E::TokenNotFound(_) => ErrorCode::TokenNotFound,
            E::AlreadyRevoked(_) => ErrorCode::AlreadyRevoked,
            E::TokenGiven
            | E::TokenIdMalformed
            | E::TokenAmbiguous(_)
            | E::NotASid(..)
            | E::SidOfAUser { .. }
            | E::NotStrongMapping(_) => ErrorCode::InvalidRequest,
        };
        AppError::new(code, e.to_string())
    }
}

impl App {
    /// Every token, or a user's; revoked and expired ones included.
    pub async fn tokens(
        &self,
        actor: Actor<'_>,
        login: Option<&str>,
    ) -> Result<Vec<TokenInfo>, AppError> {
        actor.authorize()?;
        let all = self.identities.tokens().await?;
        Ok(all
            .into_iter()
            .filter(|t| login.is_none_or(|l| t.login.eq_ignore_ascii_case(l)))
            .map(TokenInfo::from)
            .collect())
    }

    /// Revokes the one token whose id starts with `id` (at least 8 hex characters).
    pub async fn revoke_token(&self, actor: Actor<'_>, id: &str) -> Result<TokenInfo, AppError> {
        actor.authorize()?;
        let prefix = rules::token_prefix(id)?;
        let tokens = self.identities.tokens().await?;
        let now = self.clock.now();
        let (token, decided) = rules::revoke_token(&actor, &prefix, &tokens, now)?;
        if !self.commit(decided).await? {
            // Revoked by someone else since it was read.
            return Err(OffboardingError::AlreadyRevoked(token_id(&token.hash)).into());
        }
        let mut info = TokenInfo::from(token);
        info.record.revoked = Some(now);
        Ok(info)
    }

    /// Disables (`enabled` false) or enables a user: a disabled user's tokens stop working at
    /// once. Returns whether anything changed.
    pub async fn set_user_enabled(
        &self,
        actor: Actor<'_>,
        login: &str,
        enabled: bool,
    ) -> Result<bool, AppError> {
        actor.authorize()?;
        let user = self.user_named(login).await?;
        let decided = rules::set_user_enabled(&actor, &user, enabled, self.clock.now());
        self.commit(decided).await
    }

    /// Adds `login` to, or removes it from, a group given by SID. Returns whether anything
    /// changed.
    pub async fn set_member(
        &self,
        actor: Actor<'_>,
        login: &str,
        group_sid: &str,
        member: bool,
    ) -> Result<bool, AppError> {
        actor.authorize()?;
        let user = self.user_named(login).await?;
        let group = rules::group_sid(group_sid)?;
        // Only joining a user's own SID is refused: leaving it needs no lookup.
        let owner = match member {
            true => self.identities.user_with_sid(&group.to_string()).await?,
            false => None,
        };
        let decided = rules::set_member(
            &actor,
            &user,
            &group,
            member,
            owner.as_deref(),
            self.clock.now(),
        )?;
        self.commit(decided).await
    }

    /// Adds (`mapped`) or removes an explicit certificate mapping of a local user (strong forms
    /// only). Returns whether anything changed.
    pub async fn set_certificate_mapping(
        &self,
        actor: Actor<'_>,
        login: &str,
        mapping: &str,
        mapped: bool,
    ) -> Result<bool, AppError> {
        actor.authorize()?;
        let user = self.user_named(login).await?;
        let decided =
            rules::set_certificate_mapping(&actor, &user, mapping, mapped, self.clock.now())?;
        self.commit(decided).await
    }

    /// One administrative change with its audit event, in one transaction; whether it changed
    /// anything.
    async fn commit(&self, (change, event): Decided) -> Result<bool, AppError> {
        Ok(self.identities.change_identity(&change, &event).await?)
    }

    async fn user_named(&self, login: &str) -> Result<Principal, AppError> {
        self.local_user(login).await
    }
}
